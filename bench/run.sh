#!/usr/bin/env bash
# bench/run.sh [GROUP...]: runs benchmark groups and writes bench/RESULTS.md
# (and bench/chart.png) from the latest output of every group. Called by
# `make bench` (all groups) and `make bench BENCH="percall rss"`.
#
# (BENCH=report: run nothing, only rewrite RESULTS.md from bench/out/.)
# Groups: percall  client:create per call vs the C libcurl loop and the Lua
#                  peers (bench/percall/percall.sh; BENCH_N, BENCH_RUNS, ...)
#         rss      RSS before/after 100,000 calls, and per client (bench/rss.lua)
#         limiter  `make bench-limiter`    ngx    `make bench-ngx`
#         redis    `make bench-redis` (the limiter across hosts through Redis)
#         batch    `make bench-batch`      sandbox  bench/sandbox.sh
# A group whose target does not exist yet is skipped with a note. Each
# group's output is kept in bench/out/GROUP/, so running one group alone
# refreshes its section and leaves the others as they were (each section
# says when it ran). Exit status: 0 when every group run met its claims.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$PWD
out=$root/bench/out
MAKE=${MAKE:-make}
ALL="percall rss limiter ngx batch sandbox redis"
groups=${*:-$ALL}
mkdir -p "$out"
eval "$($MAKE -s env)"
status=0

# a target named in the Makefile or an mk/ fragment (make -n would run
# recipes that call $(MAKE))
has_target() { grep -q -E "^$1:" Makefile mk/*.mk 2>/dev/null; }
stamp() { date -u '+%Y-%m-%d %H:%M UTC' >"$out/$1/when"; }

# The fixed-answer nginx for the rss group (percall starts its own).
rss_group() {
    local prefix=$out/rss/nginx port rc
    port=$(lua5.4 -e 'local s = require("socket").bind("127.0.0.1", 0); local _, p = s:getsockname(); s:close(); print(p)')
    bench/percall/server.sh start "$prefix" "$port" || return 1
    timeout 300 lua5.4 bench/rss.lua "http://127.0.0.1:$port/v1" 100000 200 | tee "$out/rss/summary"
    rc=${PIPESTATUS[0]}
    bench/percall/server.sh stop "$prefix"
    return "$rc"
}

run_group() {
    local g=$1 rc=0
    rm -rf "${out:?}/$g"
    mkdir -p "$out/$g"
    echo "== bench group $g"
    case $g in
    percall) bash bench/percall/percall.sh "$out/percall" 2>&1 | tee "$out/percall/log"
             rc=${PIPESTATUS[0]} ;;
    rss) rss_group 2>&1 | tee "$out/rss/log"; rc=${PIPESTATUS[0]} ;;
    limiter|ngx|batch|redis)
        if has_target "bench-$g"; then
            timeout 900 $MAKE --no-print-directory "bench-$g" 2>&1 | tee "$out/$g/log"
            rc=${PIPESTATUS[0]}
        else
            echo "not run: there is no \`make bench-$g\` target yet" | tee "$out/$g/skipped"
        fi ;;
    sandbox)
        if [ -f bench/sandbox.sh ]; then
            timeout 300 bash bench/sandbox.sh 2>&1 | tee "$out/$g/log"
            rc=${PIPESTATUS[0]}
        else
            echo "not run: bench/sandbox.sh does not exist yet" | tee "$out/$g/skipped"
        fi ;;
    *) echo "unknown group $g (groups: $ALL)" >&2; return 2 ;;
    esac
    echo "$rc" >"$out/$g/rc"
    stamp "$g"
    return "$rc"
}

for g in $groups; do
    [ "$g" = report ] && continue   # "report": only rewrite RESULTS.md
    run_group "$g" || { echo "bench group $g: exit $?" >&2; status=1; }
done

# ---- the chart -------------------------------------------------------------
if [ -s "$out/percall/percall.dat" ] && command -v gnuplot >/dev/null; then
    gnuplot -e "datafile='$out/percall/percall.dat'; outfile='$root/bench/chart.png'" bench/chart.gp \
        || echo "gnuplot failed: chart not updated" >&2
fi

# ---- RESULTS.md --------------------------------------------------------------
section_state() {   # how a group's last run went, for its heading
    local g=$1
    if [ -f "$out/$g/skipped" ]; then cat "$out/$g/skipped"
    elif [ -f "$out/$g/rc" ]; then
        printf 'finished %s, exit %s' "$(cat "$out/$g/when" 2>/dev/null)" "$(cat "$out/$g/rc")"
    else echo "not run yet (make bench BENCH=$g)"; fi
}
tail_of() {   # the last lines of a group's log, as a code block
    [ -f "$out/$1/log" ] || return 0
    echo '```'
    grep -v -E '^(make|gcc|cc)(\[| )' "$out/$1/log" | tail -n "${2:-25}"
    echo '```'
}
{
    cat <<HDR
# Benchmarks

Written by \`bench/run.sh\`; reproduce with **\`make bench\`** (one group:
\`make bench BENCH=percall\`; groups: $ALL). Loopback only; every loop is
bounded in calls and time.

Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs$(lscpu | sed -n 's/^Hypervisor vendor: *\(.*\)/ (\1 guest)/p' | head -1),
Linux $(uname -r), $(curl --version | head -1 | cut -d' ' -f1-2 | sed 's/^curl/libcurl/'), nginx $(nginx -v 2>&1 | sed 's|.*/||'),
$(lua5.4 -v 2>&1 | cut -d' ' -f1-2), $(luajit -v 2>&1 | cut -d' ' -f1-2). The CPUs were shared with other work
while this ran: each ratio is to a baseline measured in the same round.

## Per call: client:create next to the C limit and the Lua peers

$(section_state percall)

Sequential POSTs of the same appointment (same body, same \`X-API-Key\`,
\`X-Secret-Key\`, \`Content-Type\`, \`Accept\` headers) on one kept-alive
connection (LuaSocket: a connection per call, as \`socket.http\` does) to a
fixed-answer nginx location (\`bench/percall/fixed.conf.in\`), so the
server's work is out. Every call's answer is checked (status 200, the
appointment decoded from JSON); one failure fails the run. Each figure is the
median of the runs (min–max after it); each ratio is the median of the
per-round ratios to the C loop of the same round and mode. In pinned mode
every contender runs right after a C loop run of its own and its ratio is
to that run (the C loop's figure is the median of all its runs): load from
other work on this shared machine comes and goes within seconds, so the
nearest baseline is the fairest (\`BENCH_PAIRED\`). client:create
runs with \`rate_limit = false\` except in the "shared limiter on" row
(\`per_minute = burst = 1,000,000\`, so it never waits: only its cost shows).
Modes: **pinned** = server and client both on CPU 0 (\`taskset -c 0\`), the
setting of the claim; **split** = server on CPU 1, client on CPU 0;
**unpinned** = the scheduler's choice. Cross-core wake-ups dominate on this
machine (see split).

HDR
    if [ -f "$out/percall/percall.md" ]; then
        cat "$out/percall/percall.md"
        echo
        echo '![per-call cost, median µs](chart.png)'
        # the hand-written profile of the gap (dated; redo it when the
        # figures above move)
        [ -f bench/percall/PROFILE.md ] && { echo; cat bench/percall/PROFILE.md; }
    else
        tail_of percall
    fi
    echo
    echo "## Memory"
    echo
    echo "$(section_state rss)"
    echo
    echo "One Lua 5.4 process, one client (\`rate_limit = false\`), 1,000 warm-up"
    echo "creates, then RSS (\`/proc/self/status\` VmRSS) before and after 100,000"
    echo "more creates and a full collection; then 200 more clients, each with one"
    echo "call done and its connection open. Bound for \"no growth\": 256 KiB."
    echo
    tail_of rss 6
    for g in limiter ngx batch sandbox redis; do
        echo
        case $g in
        limiter) echo "## The shared limiter (\`make bench-limiter\`)" ;;
        ngx) echo "## mediquo.ngx in nginx (\`make bench-ngx\`)" ;;
        batch) echo "## Batches (\`make bench-batch\`)" ;;
        sandbox) echo "## The sandbox (\`bench/sandbox.sh\`)" ;;
        redis) echo "## One budget across hosts through Redis (\`make bench-redis\`)" ;;
        esac
        echo
        section_state "$g"
        echo
        tail_of "$g" 25
    done
} >bench/RESULTS.md
echo "wrote bench/RESULTS.md"
exit "$status"
