#!/usr/bin/env bash
# bench/ngx_health.sh: bench/ngx.sh's /health reading, beside what it is
# compared with and a control it must catch. Each contender serves /book
# from a sandbox that answers in 200 ms, pinned as bench/ngx.sh's "pinned"
# rows are (the nginx and the probe on the last core, wrk and the sandbox on
# the others), read by bench/ngx/health.sh's health_phases (one paced probe
# through cycles of 3 s idle and 3 s with 16 slow /book in flight, samples
# pooled by phase):
#
#   gw       the example gateway (examples/nginx.conf)
#   px       nginx's own proxy_pass (bench/ngx/proxy.conf): the floor
#   raw      the example's nginx.conf with /book a 40-line Lua cosocket proxy
#            (bench/ngx/raw_cosocket.lua): the floor for a Lua handler
#   burn     the example gateway whose /book first spins BENCH_HEALTH_BURN_US
#            (300) us of CPU: a /book as heavy as that must read higher,
#            or the reading cannot tell a heavy /book from a light one
#
# Per contender: /health p99 idle and busy (pooled), busy / idle (pooled,
# where bench/ngx.sh reads the bound; the median of the cycles' pairs), the
# idle A/A pair (the odd cycles' p99 / the even ones'), the workers' CPU per
# slow /book.
#
#   bash bench/ngx_health.sh          (or: make bench-ngx-health)
#   BENCH_HEALTH_RUNS=6               cycles per contender (1-20)
#   BENCH_HEALTH_BURN_US=300          the control's extra CPU a /book (0-5000)
# Needs wrk, taskset, nginx with the Lua module, `make luajit`. Loopback only;
# everything started here is stopped by its pid file on exit.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
runs=${BENCH_HEALTH_RUNS:-6} burn_us=${BENCH_HEALTH_BURN_US:-300}
if ! [[ $runs =~ ^[0-9]+$ ]] || [ "$runs" -lt 1 ] || [ "$runs" -gt 20 ]; then
    echo "BENCH_HEALTH_RUNS: 1-20" >&2
    exit 2
fi
if ! [[ $burn_us =~ ^[0-9]+$ ]] || [ "$burn_us" -gt 5000 ]; then
    echo "BENCH_HEALTH_BURN_US: 0-5000" >&2
    exit 2
fi
command -v wrk >/dev/null || { echo "bench/ngx_health.sh: wrk not found" >&2; exit 2; }
command -v taskset >/dev/null || { echo "bench/ngx_health.sh: taskset not found" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "bench/ngx_health.sh: needs 2 cores" >&2; exit 2; }
[ -f build/luajit/mediquo/core.so ] || { echo "bench/ngx_health.sh: run 'make luajit' first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-health.XXXXXX")
base=$((20000 + RANDOM % 9000))
slow_port=$base gw_port=$((base + 1)) px_port=$((base + 2)) burn_port=$((base + 3)) raw_port=$((base + 4))
cleanup() {
    examples/gateway.sh stop --prefix "$work/gw" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/burn" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/raw" >/dev/null 2>&1
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
# the control: the same gateway, its /book spinning burn_us of CPU first
sed -e "s|require(\"gateway\").book()|local t = os.clock() + $burn_us / 1e6; repeat until os.clock() >= t; &|" \
    examples/nginx.conf > "$work/burn.conf.in"
grep -q 'os.clock' "$work/burn.conf.in" || { echo "bench/ngx_health.sh: no /book in examples/nginx.conf" >&2; exit 2; }
burn=$(MEDIQUO_GATEWAY_CONF=$work/burn.conf.in MEDIQUO_BASE_URL=$slow MEDIQUO_RL_DIR=$work \
       MEDIQUO_RL_KEY=bench-health-burn-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
       examples/gateway.sh start --port "$burn_port" --prefix "$work/burn") || exit 1
# the floor for a Lua handler: /book a bare cosocket proxy
sed -e "s|require(\"gateway\").book()|package.path = \"$root/bench/ngx/?.lua;\" .. package.path; require(\"raw_cosocket\").book($slow_port)|" \
    examples/nginx.conf > "$work/raw.conf.in"
raw=$(MEDIQUO_GATEWAY_CONF=$work/raw.conf.in MEDIQUO_BASE_URL=$slow MEDIQUO_RL_DIR=$work \
      MEDIQUO_RL_KEY=bench-health-raw-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
      examples/gateway.sh start --port "$raw_port" --prefix "$work/raw") || exit 1
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$raw/book")" != 502 ] ||
    { echo "bench/ngx_health.sh: the raw cosocket /book does not reach the sandbox" >&2; exit 2; }
bash bench/ngx/proxy_conf.sh "$work/px" "$px_port" "$slow_port" || exit 1
nginx -p "$work/px" -c "$work/px/nginx.conf" -e "$work/px/logs/error.log" || exit 1
px=http://127.0.0.1:$px_port
for _ in $(seq 1 100); do curl -sf -o /dev/null "$px/health" && break; sleep 0.05; done
eval "$(make -s env 2>/dev/null)"
. bench/ngx/health.sh

last=$(( $(nproc) - 1 ))
for tag in gw burn raw px; do pin_tree "$work/$tag/nginx.pid" "$last"; done
pin_tree "$work/slow/nginx.pid" "0-$((last - 1))"

echo "# bench/ngx_health.sh: $runs cycles of 3 s idle + 3 s busy each, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
declare -A url=([gw]=$gw [burn]=$burn [raw]=$raw [px]=$px)
declare -A port=([gw]=$gw_port [burn]=$burn_port [raw]=$raw_port [px]=$px_port)
declare -A shape=([gw]=gateway [burn]=gateway [raw]=api [px]=api)
declare -A label=([gw]="mediquo.ngx" [burn]="mediquo.ngx + ${burn_us} us a /book (control)"
                  [raw]="a bare Lua cosocket proxy" [px]="proxy_pass")
for tag in gw px raw burn; do
    : > "$work/$tag.txt"
    HEALTH_CYCLES=$runs health_phases "${port[$tag]}" "${url[$tag]}" "${shape[$tag]}" "$work/$tag/nginx.pid" \
        "$last" "0-$((last - 1))" "$work/$tag.txt"
    awk -v l="${label[$tag]}" '{ printf "%s: /health p99 idle %s ms, busy %s ms: busy / idle %.2f (the cycles\047 pairs, median: %s); idle A/A %s; %d / %d samples; workers %s us a slow /book, %s /book a second\n", l, $2, $4, $4 / $2, $5, $6, $7, $8, $9, $10 }' "$work/$tag.txt"
done
