# plot_launch.gp -- bars per launcher, clustered by column: job-step launch time of /bin/true
# (median) per rank count by default; also the in-step launch and MTC plots (ttl, ylab, ...).
# gnuplot -e "data='F.dat'; out='F.png'; ncols=N[; ttl='..'; ylab='..'; xlab='..'; ymin=10;
#             logy=1; lfmt='%.0f']" plot_launch.gp
# F.dat: header "launcher <column>..." then one line per launcher ("?" = not run).
if (!exists("ttl")) ttl = 'Slurm job-step launch time of /bin/true (median; lower is better)'
if (!exists("ylab")) ylab = 'step launch time (ms, log scale)'
if (!exists("xlab")) xlab = 'launcher (each wrapped under srun as a user would)'
if (!exists("ymin")) ymin = 10
if (!exists("logy")) logy = 1
if (!exists("lfmt")) lfmt = '%.0f'
set terminal pngcairo size 1000,580 enhanced font 'DejaVu Sans,10'
set output out
set datafile missing '?'
set title ttl
set ylabel ylab
set xlabel xlab
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.9
if (logy) set logscale y
set yrange [ymin:*]
set format y "%g"
set grid ytics mytics lc rgb '#dddddd'
set key top left box opaque autotitle columnhead
set xtics nomirror rotate by -20
set linetype 1 lc rgb '#1f5fbf'
set linetype 2 lc rgb '#e0701a'
set linetype 3 lc rgb '#2a9d3a'
set linetype 4 lc rgb '#8e44ad'
set linetype 5 lc rgb '#c0392b'
w = 1.0/(ncols)
plot for [i=2:ncols] data using i:xtic(1) lt (i-1), \
     for [i=2:ncols] data using ($0 + (i-2-(ncols-2)/2.0)*w):i:(sprintf(lfmt, column(i))) \
         with labels offset 0,0.6 font ',7' notitle
