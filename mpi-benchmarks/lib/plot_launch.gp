# plot_launch.gp -- job-step launch time of /bin/true per launcher (median), clustered by ranks.
# gnuplot -e "data='F.dat'; out='F.png'; ncols=N" plot_launch.gp
# F.dat: header "launcher <ranks>..." then one line per launcher, times in ms ("?" = not run).
set terminal pngcairo size 1000,580 enhanced font 'DejaVu Sans,10'
set output out
set datafile missing '?'
set title 'Slurm job-step launch time of /bin/true (median; lower is better)'
set ylabel 'step launch time (ms, log scale)'
set xlabel 'launcher (each wrapped under srun as a user would)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.9
set logscale y
set yrange [10:*]
set format y "%g"
set grid ytics mytics lc rgb '#dddddd'
set key top left box opaque autotitle columnhead
set xtics nomirror rotate by -20
set linetype 1 lc rgb '#1f5fbf'
set linetype 2 lc rgb '#e0701a'
set linetype 3 lc rgb '#2a9d3a'
w = 1.0/(ncols)
plot for [i=2:ncols] data using i:xtic(1) lt (i-1), \
     for [i=2:ncols] data using ($0 + (i-2-(ncols-2)/2.0)*w):i:(sprintf('%.0f', column(i))) \
         with labels offset 0,0.6 font ',7' notitle
