# plot_sizes.gp -- a measure vs message size, native vs socker-mpi (log-log), for mpi-benchmarks/run.
# gnuplot -e "data='F.dat'; out='F.png'; ttl='...'; ylab='...'; ncols=N; ymin=...; ymax=..." plot_sizes.gp
# F.dat: a header line (column titles), then: size value... ("?" where missing).
# Series come in (native, socker-mpi) pairs; styles 1/2, 3/4, 5/6 go with them.
set terminal pngcairo size 900,560 enhanced font 'DejaVu Sans,10'
set output out
set datafile missing '?'
set key autotitle columnhead
set title ttl
set xlabel 'message size (bytes)'
set ylabel ylab
set logscale xy
set xrange [0.8:6e6]
if (exists("ymin") && exists("ymax")) { set yrange [ymin:ymax] }
set xtics ("1 B" 1, "8 B" 8, "64 B" 64, "512 B" 512, "4 KiB" 4096, "32 KiB" 32768, "256 KiB" 262144, "1 MiB" 1048576, "4 MiB" 4194304)
set format y "%g"
set grid xtics ytics mytics lc rgb '#dddddd'
set key top left box opaque
set style line 1 lc rgb '#1f5fbf' lw 2 pt 7 ps 0.8 dt 1
set style line 2 lc rgb '#e0701a' lw 2 pt 9 ps 0.9 dt 2
set style line 3 lc rgb '#2a9d3a' lw 2 pt 5 ps 0.8 dt 1
set style line 4 lc rgb '#c0282d' lw 2 pt 13 ps 0.9 dt 2
set style line 5 lc rgb '#7b4fbf' lw 2 pt 11 ps 0.8 dt 1
set style line 6 lc rgb '#8c564b' lw 2 pt 15 ps 0.9 dt 2
plot for [i=2:ncols] data using 1:i with linespoints ls (i-1)
