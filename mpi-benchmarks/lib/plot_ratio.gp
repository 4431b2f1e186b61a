# plot_ratio.gp -- socker-mpi / native ratio of the medians vs message size, with the targets.
# gnuplot -e "data='F.dat'; out='F.png'; ncols=N" plot_ratio.gp
set terminal pngcairo size 900,560 enhanced font 'DejaVu Sans,10'
set output out
set datafile missing '?'
set key autotitle columnhead
set title 'socker-mpi / native (ratio of medians; 1 = identical)'
set xlabel 'message size (bytes)'
set ylabel 'ratio socker-mpi / native'
set logscale x
set xrange [0.8:6e6]
set logscale y
set yrange [0.5:2]
set ytics (0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2)
set xtics ("1 B" 1, "8 B" 8, "64 B" 64, "512 B" 512, "4 KiB" 4096, "32 KiB" 32768, "256 KiB" 262144, "1 MiB" 1048576, "4 MiB" 4194304)
set grid xtics ytics lc rgb '#dddddd'
set format y '%g'
set key top right box opaque
set style line 1 lc rgb '#1f5fbf' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#e0701a' lw 2 pt 9 ps 0.8
set style line 3 lc rgb '#2a9d3a' lw 2 pt 5 ps 0.8
set style line 4 lc rgb '#c0282d' lw 2 pt 13 ps 0.8
set style line 5 lc rgb '#7b4fbf' lw 2 pt 11 ps 0.8
plot for [i=2:ncols] data using 1:i with linespoints ls (i-1), \
     1.03 title 'latency target (≤ 1.03)' lc rgb '#777777' dt 3 lw 1.5, \
     0.97 title 'bandwidth target (≥ 0.97)' lc rgb '#777777' dt 2 lw 1.5
