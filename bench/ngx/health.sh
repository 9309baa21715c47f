# shellcheck shell=bash
# bench/ngx/health.sh, sourced by bench/ngx.sh and bench/ngx_health.sh
# (from the tree's root): the /health reading under slow calls, and the
# helpers both scripts use.
#
#   median                  the median of stdin's numbers, one a line
#   pin_tree PIDFILE CPUS   an nginx (master and workers) onto CPUS
#   worker_ns PIDFILE       CPU ns the nginx's workers used so far
#                           (/proc/PID/schedstat: exact, not 10 ms ticks)
#   health_phases PORT URL SHAPE PIDFILE PROBE_CPUS LOAD_CPUS OUT
#       one paced probe (probe.lua: a GET /health every 1 ms over 4
#       kept-alive connections) runs through HEALTH_CYCLES cycles (5) of
#       HEALTH_OFF s (3) with nothing else, then HEALTH_ON s (3) of 16
#       /book calls in flight (wrk -t2 -c16 on URL/book, BOOK_SHAPE=SHAPE;
#       the gateway's upstream answers in 200 ms), the probe on PROBE_CPUS,
#       wrk on LOAD_CPUS ("" for anywhere). Each sample is placed by the
#       time it was sent: idle from 0.4 s after a load ended (its last
#       calls answered) until the next starts, busy from 0.5 s after a load
#       started until it ends; the rest is not counted. Both phases take
#       turns every few seconds, so the machine's drift (a shared VM's
#       minutes) falls on both alike, and each p99 is read from ~12,000
#       pooled samples, not one 4 s window's 40 slowest. Appends to OUT:
#         idle_p50 idle_p99 busy_p50 busy_p99 paired aa_p99 n_idle n_busy us_book rps
#       (the p50s and p99s of the pooled samples, ms); paired: the median of
#       the cycles' busy p99 / the p99 of the idle phase right before it (as
#       bench/ngx.sh pairs /book windows: a disturbed cycle, a shared VM's
#       neighbour, moves one pair, not the median);
#       aa_p99: idle p99 of the odd cycles / of the even ones (an A/A pair:
#       how far two readings of the same thing fall apart here); us_book:
#       the workers' CPU per slow /book (their CPU while loaded, less the
#       probe's own share at the idle phases' rate, / the calls wrk made);
#       rps: the slow /book calls a second wrk made (16 / 0.2 s = 80 at most).

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

pin_tree() {
    local m p
    m=$(cat "$1") || return 0
    for p in $m $(pgrep -P "$m"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1; done
}

worker_ns() {
    local t=0 p
    for p in $(pgrep -P "$(cat "$1")"); do t=$((t + $(cut -d' ' -f1 "/proc/$p/schedstat"))); done
    echo "$t"
}

# on_cpus CPULIST CMD...: CMD on those CPUs ("" or no taskset: anywhere)
on_cpus() {
    local cpus=$1
    shift
    if [ -n "$cpus" ] && command -v taskset >/dev/null; then taskset -c "$cpus" "$@"; else "$@"; fi
}

health_phases() {
    local port=$1 url=$2 shape=$3 pidfile=$4 probe_cpus=$5 load_cpus=$6 out=$7
    local cycles=${HEALTH_CYCLES:-5} on=${HEALTH_ON:-3} off=${HEALTH_OFF:-3}
    local tmp probe c a b e ta tb te n books=0 busy_ns=0 on_s=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-health.XXXXXX") || return 1
    on_cpus "$probe_cpus" lua5.4 bench/ngx/probe.lua "$port" "$((cycles * (on + off) + 2))" 1 4 "$tmp/samples" \
        > /dev/null &
    probe=$!
    : > "$tmp/phases"
    for c in $(seq 1 "$cycles"); do
        sleep 0.4                               # the last load's calls answered
        a=$(worker_ns "$pidfile") ta=$EPOCHREALTIME
        sleep "$(awk -v o="$off" 'BEGIN { print o - 0.4 }')"
        b=$(worker_ns "$pidfile") tb=$EPOCHREALTIME
        n=$(BOOK_SHAPE=$shape on_cpus "$load_cpus" wrk -t2 -c16 -d"${on}s" -s bench/ngx/book.lua "$url/book" |
            awk '/requests in/ { print $1 }')
        e=$(worker_ns "$pidfile") te=$EPOCHREALTIME
        echo "$c $tb $te" >> "$tmp/phases"
        # the loaded span's CPU less the probe's, at this cycle's idle rate
        busy_ns=$(awk -v s="$busy_ns" -v a="$a" -v b="$b" -v e="$e" -v ta="$ta" -v tb="$tb" -v te="$te" \
            'BEGIN { printf "%.0f", s + (e - b) - (b - a) / (tb - ta) * (te - tb) }')
        books=$((books + ${n:-0}))
        on_s=$(awk -v s="$on_s" -v a="$tb" -v b="$te" 'BEGIN { print s + b - a }')
    done
    wait "$probe"
    # samples "t ms" -> "class cycle ms", class idle or busy (cycle k + 1:
    # the idle after the last load, which has no busy cycle beside it)
    awk -v off="$off" '
        NR == FNR { s[$1] = $2; e[$1] = $3; k = $1; next }
        {
            t = $1
            for (i = 1; i <= k; i++) {
                if (t >= s[i] + 0.5 && t <= e[i]) { print "busy", i, $2; next }
                prev = (i == 1) ? s[1] - off + 0.4 : e[i - 1] + 0.4
                if (t >= prev && t < s[i]) { print "idle", i, $2; next }
            }
            if (t >= e[k] + 0.4) print "idle", k + 1, $2
        }' "$tmp/phases" "$tmp/samples" > "$tmp/cls"
    # p50/p99 of each class pooled ("idle" / "busy"), of each cycle's class
    # ("idle 3"), of idle's odd and even cycles ("idle odd"): "group p50 p99 n"
    {
        awk '{ print $1, $3 }' "$tmp/cls"
        awk '{ print $1 " " $2, $3 }' "$tmp/cls"
        awk '$1 == "idle" { print "idle " ($2 % 2 ? "odd" : "even"), $3 }' "$tmp/cls"
    } | awk '{ v = $NF; $NF = ""; print $0 "|" v }' | sort -t'|' -k1,1 -k2,2g | awk -F'|' '
        function flush() {
            if (n) printf "%s %s %s %d\n", g, a[int(n * 0.5 + 0.999999)], a[int(n * 0.99 + 0.999999)], n
        }
        $1 != g { flush(); g = $1; n = 0 }
        { a[++n] = $2 }
        END { flush() }' | sed 's/  */ /g' > "$tmp/pct"
    # the median of the cycles' busy / idle p99 ratios (each busy phase with
    # the idle one right before it), as bench/ngx.sh pairs /book windows
    pick() { awk -v g="$1" -v f="$2" '{ k = $1; for (i = 2; i < NF - 2; i++) k = k " " $i } k == g { print $(NF - 3 + f) }' "$tmp/pct"; }
    paired=$(for c in $(seq 1 "$cycles"); do
                 awk -v a="$(pick "busy $c" 2)" -v b="$(pick "idle $c" 2)" 'BEGIN { if (a != "" && b > 0) printf "%.3f\n", a / b }'
             done | median)
    printf '%s %s %s %s %s %s %s %s %s %s\n' "$(pick idle 1)" "$(pick idle 2)" "$(pick busy 1)" "$(pick busy 2)" \
        "${paired:-0}" \
        "$(awk -v a="$(pick "idle odd" 2)" -v b="$(pick "idle even" 2)" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
        "$(pick idle 3)" "$(pick busy 3)" \
        "$(awk -v s="$busy_ns" -v n="$books" 'BEGIN { printf "%.0f", (n > 0 ? s / n / 1000 : 0) }')" \
        "$(awk -v n="$books" -v s="$on_s" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')" >> "$out"
    rm -rf "$tmp"
}
