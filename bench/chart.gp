# bench/chart.gp: the per-call figures as clustered bars (median µs per
# call, log scale), one cluster per contender, one bar per mode.
#   gnuplot -e "datafile='bench/out/percall/percall.dat'; outfile='bench/chart.png'" bench/chart.gp
if (!exists("datafile")) datafile = 'bench/out/percall/percall.dat'
if (!exists("outfile")) outfile = 'bench/chart.png'
set terminal pngcairo size 1100,520 font "DejaVu Sans,10"
set output outfile
set title "client:create vs the C libcurl loop and Lua peers (µs per call, median; lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [5:*]
set ylabel "µs per call (log scale)"
set grid ytics
set key top left
set xtics rotate by -25 noenhanced
plot for [col=2:*] datafile using col:xtic(1) title columnheader(col)
