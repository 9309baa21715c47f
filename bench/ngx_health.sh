#!/usr/bin/env bash
# bench/ngx_health.sh: how steady bench/ngx.sh's /health reading is, and
# what moves it. For the example gateway (examples/nginx.conf) and for
# nginx's own proxy_pass (bench/ngx/proxy.conf), each on a sandbox that
# answers in 200 ms, pinned as bench/ngx.sh's "pinned" rows are (the
# nginx and the probe on the last core, wrk and the sandbox on the others):
#
#  1. per run, three /health p99s of the paced probe (bench/ngx/probe.lua,
#     4,000 samples in 4 s): idle, idle again (an A/A pair: how far two
#     readings of the same thing fall apart here), and with 16 slow /book
#     in flight (wrk -c16, bench/ngx.sh's "busy");
#  2. per run, the workers' CPU per slow /book (/proc: user + system,
#     10 ms ticks, over a 6 s wrk -c16 run: ~80 /book a
#     second): what a /book costs the event loop when it is not hot.
#
#   bash bench/ngx_health.sh          (or: make bench-ngx-health)
#   BENCH_HEALTH_RUNS=6               runs per contender (1-20)
# Needs wrk, taskset, nginx with the Lua module, `make luajit`. Loopback only;
# everything started here is stopped by its pid file on exit.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
runs=${BENCH_HEALTH_RUNS:-6}
if ! [[ $runs =~ ^[0-9]+$ ]] || [ "$runs" -lt 1 ] || [ "$runs" -gt 20 ]; then
    echo "BENCH_HEALTH_RUNS: 1-20" >&2
    exit 2
fi
command -v wrk >/dev/null || { echo "bench/ngx_health.sh: wrk not found" >&2; exit 2; }
command -v taskset >/dev/null || { echo "bench/ngx_health.sh: taskset not found" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "bench/ngx_health.sh: needs 2 cores" >&2; exit 2; }
[ -f build/luajit/mediquo/core.so ] || { echo "bench/ngx_health.sh: run 'make luajit' first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-health.XXXXXX")
base=$((20000 + RANDOM % 9000))
slow_port=$base gw_port=$((base + 1)) px_port=$((base + 2))
cleanup() {
    examples/gateway.sh stop --prefix "$work/gw" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/px" >/dev/null 2>&1   # same pid-file stop
    bin/mediquo-sandbox stop --prefix "$work/slow" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

export MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret
slow=$(bin/mediquo-sandbox start --port "$slow_port" --prefix "$work/slow" --per-minute 1000000000 \
       --latency-ms 200) || exit 1
gw=$(MEDIQUO_BASE_URL=$slow MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-health-$$ MEDIQUO_RL_PER_MINUTE=1000000 \
     MEDIQUO_RL_PERIOD=1 examples/gateway.sh start --port "$gw_port" --prefix "$work/gw") || exit 1
bash bench/ngx/proxy_conf.sh "$work/px" "$px_port" "$slow_port" || exit 1
nginx -p "$work/px" -c "$work/px/nginx.conf" -e "$work/px/logs/error.log" || exit 1
px=http://127.0.0.1:$px_port
for _ in $(seq 1 100); do curl -sf -o /dev/null "$px/health" && break; sleep 0.05; done
eval "$(make -s env 2>/dev/null)"

last=$(( $(nproc) - 1 ))
# pin PREFIX CPUS: an nginx (master and workers) onto CPUS
pin() {
    local m p
    m=$(cat "$1/nginx.pid") || return 1
    for p in $m $(pgrep -P "$m"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1; done
}
pin "$work/gw" "$last"; pin "$work/px" "$last"; pin "$work/slow" "0-$((last - 1))"

probe() { taskset -c "$last" lua5.4 bench/ngx/probe.lua "$1" 4 1 4 | cut -d' ' -f2; }
# cpu_s PREFIX: the workers' CPU seconds so far (/proc: user + system)
cpu_s() {
    local t=0 p
    for p in $(pgrep -P "$(cat "$1/nginx.pid")"); do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
    awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f\n", t / hz }'
}

echo "# bench/ngx_health.sh: $runs runs, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# contender run: /health p99 ms idle, idle again, 16 slow /book in flight; workers' CPU us per slow /book"
declare -A url=([gw]=$gw [px]=$px) port=([gw]=$gw_port [px]=$px_port) shape=([gw]=gateway [px]=api)
for tag in gw px; do : > "$work/$tag.txt"; done
for i in $(seq 1 "$runs"); do
    for tag in gw px; do
        a=$(probe "${port[$tag]}")
        b=$(probe "${port[$tag]}")
        c0=$(cpu_s "$work/$tag")
        out=$(BOOK_SHAPE=${shape[$tag]} taskset -c "0-$((last - 1))" wrk -t2 -c16 -d6s \
              -s bench/ngx/book.lua "${url[$tag]}/book" &
              sleep 1; probe "${port[$tag]}" > "$work/busy"; wait)
        c1=$(cpu_s "$work/$tag")
        n=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
        us=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" 'BEGIN { printf "%.0f", (n > 0 ? (b - a) * 1e6 / n : 0) }')
        echo "$a $b $(cat "$work/busy") $us" >> "$work/$tag.txt"
        echo "$tag run $i: $a $b $(cat "$work/busy") $us"
    done
done
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$1" | median; }
for tag in gw px; do
    f=$work/$tag.txt
    aa=$(awk '{ printf "%.2f ", $2 / $1 }' "$f")
    printf '%s: p99 idle %s, idle again %s, busy %s ms (medians); busy / idle %.2f; A/A pairs %s; %s us a slow /book\n' \
        "$([ "$tag" = gw ] && echo "mediquo.ngx" || echo "proxy_pass")" "$(col "$f" 1)" "$(col "$f" 2)" "$(col "$f" 3)" \
        "$(awk -v a="$(col "$f" 3)" -v b="$(col "$f" 1)" 'BEGIN { print a / b }')" "$aa" "$(col "$f" 4)"
done
