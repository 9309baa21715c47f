#!/usr/bin/env bash
# bench/ngx.sh: mediquo.ngx in nginx, measured against nginx itself.
#
#  1. /book throughput and latency: the example gateway (examples/nginx.conf,
#     2 workers, mediquo.ngx: validation, shared limiter, retries, metrics)
#     vs nginx's own proxy_pass to the same sandbox (bench/ngx/proxy.conf,
#     2 workers: the upper bound), each contender's window paired with a
#     proxy_pass window taken in turns with it (BENCH_NGX_SLICES slices a
#     side, A B B A ...; the contenders' order turning by one each run),
#     median of BENCH_NGX_RUNS pairs of BENCH_NGX_SECONDS a side (wrk -t2
#     -c32).
#     A third contender, the same gateway with its transport swapped for
#     a subrequest to nginx's proxy module (bench/ngx/subrequest.lua,
#     keepalive upstream): the design the issue asked to weigh. A fourth,
#     the gateway taking webhooks (MEDIQUO_WEBHOOK_SECRET set), whose /book
#     also writes the example's consultation URL -> booking map.
#  2. /health p50/p99 on the gateway: idle, and while 16 /book calls wait on
#     an upstream that answers in 200 ms (a second sandbox, --latency-ms
#     200), from one paced probe (bench/ngx/probe.lua) through BENCH_NGX_RUNS
#     cycles of 3 s idle and 3 s busy, samples pooled by phase
#     (bench/ngx/health.sh); twice: every process on the shared cores, and
#     pinned (taskset: the gateway and the probe on one core, the load on
#     the other), where the bound is read (see the section's comment).
#  3. 200 /book calls at once against an upstream that answers in 500 ms (a
#     third sandbox, --latency-ms 500): the time until the last answer
#     (bench/ngx/burst.lua); all in flight at once, it is ~0.5 s.
#
#   bash bench/ngx.sh            (or: make bench BENCH=ngx, make bench-ngx)
#   BENCH_NGX_RUNS=5 BENCH_NGX_SECONDS=5 BENCH_NGX_SLICES=5 BENCH_NGX_CONNS=32 BENCH_NGX_BURST=200
#  4. the same /book with the budget in Redis (rate_limit.redis: a real
#     redis-server on loopback, started and stopped here by its PID),
#     paired with proxy_pass in the same runs (skipped without redis-server);
#     once with the default burst (60) and once with burst 1000 (a lease
#     may outgrow the burst, up to what the rule's pacing starts in its life:
#     both should ask about as often); and /health under 16 slow calls with
#     the budget in Redis.
# Needs wrk, nginx with the Lua module, and `make luajit`. Loopback only.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
runs=${BENCH_NGX_RUNS:-5} secs=${BENCH_NGX_SECONDS:-5} conns=${BENCH_NGX_CONNS:-32}
command -v wrk >/dev/null || { echo "bench/ngx.sh: wrk not found" >&2; exit 2; }
[ -f build/luajit/mediquo/core.so ] || { echo "bench/ngx.sh: run 'make luajit' first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-ngx.XXXXXX")
base=$((20000 + RANDOM % 9000))
sb_port=$base slow_port=$((base + 1)) gw_port=$((base + 2)) px_port=$((base + 3)) gw2_port=$((base + 4))
slower_port=$((base + 5)) gw3_port=$((base + 6)) sub_port=$((base + 7)) burst=${BENCH_NGX_BURST:-200}
gwr_port=$((base + 8)) redis_port=$((base + 9)) redis_pid= gw2r_port=$((base + 10)) gwrb_port=$((base + 11))
gww_port=$((base + 12))

cleanup() {
    examples/gateway.sh stop --prefix "$work/gw" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gw2" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gw3" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gww" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/sub" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gwr" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gw2r" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/gwrb" >/dev/null 2>&1
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    bin/mediquo-sandbox stop --prefix "$work/slower" >/dev/null 2>&1
    examples/gateway.sh stop --prefix "$work/px" >/dev/null 2>&1   # same pid-file stop
    bin/mediquo-sandbox stop --prefix "$work/sb" >/dev/null 2>&1
    bin/mediquo-sandbox stop --prefix "$work/slow" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

sb=$(bin/mediquo-sandbox start --port "$sb_port" --prefix "$work/sb" --per-minute 1000000000) || exit 1
slow=$(bin/mediquo-sandbox start --port "$slow_port" --prefix "$work/slow" --per-minute 1000000000 \
       --latency-ms 200) || exit 1
slower=$(bin/mediquo-sandbox start --port "$slower_port" --prefix "$work/slower" --per-minute 1000000000 \
         --latency-ms 500) || exit 1
export MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret
# the limiter stays on (as in production) with a budget the bench cannot
# reach: 1,000,000 starts a second (period 1 s). With the 60 s default the
# rule's spacing (period / per_minute = 60 us) capped a gateway at 16,667
# starts a second -- the "throughput" the earlier runs measured
gw=$(MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-ngx-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
     examples/gateway.sh start --port "$gw_port" --prefix "$work/gw") || exit 1
# the same gateway taking webhooks (MEDIQUO_WEBHOOK_SECRET set): its /book
# also writes the consultation URL -> booking map (a shared-dict insert),
# the example's own work, which a gateway without webhooks skips
gww=$(MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-ngx-wh-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
     MEDIQUO_WEBHOOK_SECRET=bench-webhook-secret examples/gateway.sh start --port "$gww_port" --prefix "$work/gww") || exit 1
gw2=$(MEDIQUO_BASE_URL=$slow MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-ngx-slow-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
      examples/gateway.sh start --port "$gw2_port" --prefix "$work/gw2") || exit 1
gw3=$(MEDIQUO_BASE_URL=$slower MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-ngx-slower-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
      examples/gateway.sh start --port "$gw3_port" --prefix "$work/gw3") || exit 1

# the gateway with its budget in Redis
gwr=
if command -v redis-server >/dev/null; then
    . "$root/bench/ngx/redis.sh"
    start_redis "$redis_port" "$work/redis"
    gwr=$(MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work/redis MEDIQUO_RL_KEY=bench-ngx-redis-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
          MEDIQUO_RL_REDIS=redis://127.0.0.1:$redis_port examples/gateway.sh start --port "$gwr_port" --prefix "$work/gwr") || exit 1
    # ...and with a burst of 1,000: until a lease could outgrow the burst,
    # the default (60) meant a round trip every 60 /book; now both lease up
    # to 1,024 slots at this rate (lease_most in src/limiter_redis.c)
    gwrb=$(MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work/redis MEDIQUO_RL_KEY=bench-ngx-redis-b-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
          MEDIQUO_RL_BURST=1000 MEDIQUO_RL_REDIS=redis://127.0.0.1:$redis_port \
          examples/gateway.sh start --port "$gwrb_port" --prefix "$work/gwrb") || exit 1
    # ...and on the 200 ms upstream, for /health under slow calls
    gw2r=$(MEDIQUO_BASE_URL=$slow MEDIQUO_RL_DIR=$work/redis MEDIQUO_RL_KEY=bench-ngx-redis-slow-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
          MEDIQUO_RL_REDIS=redis://127.0.0.1:$redis_port examples/gateway.sh start --port "$gw2r_port" --prefix "$work/gw2r") || exit 1
fi

# the subrequest variant of the gateway (same engine, limiter, metrics)
sed -e "s|^\( *\)lua_ssl_verify_depth 5;|&\n\1upstream mq_up { server 127.0.0.1:$sb_port; keepalive 64; }|" \
    -e "s|^\( *\)local env = os.getenv|\1package.path = \"@ROOT@/bench/ngx/?.lua;\" .. package.path; require(\"subrequest\")\n&|" \
    -e "s|^\( *\)location = /health|\1location /__mq/ { internal; proxy_pass http://mq_up/; proxy_http_version 1.1; proxy_next_upstream off; proxy_pass_request_headers off; proxy_set_header Connection \"\"; proxy_set_header Host 127.0.0.1; proxy_set_header Accept application/json; proxy_set_header Content-Type application/json; proxy_set_header X-API-Key \$mq_k; proxy_set_header X-Secret-Key \$mq_s; set \$mq_k sandbox-key; set \$mq_s sandbox-secret; }\n&|" \
    examples/nginx.conf > "$work/sub.conf.in"
sub=$(MEDIQUO_GATEWAY_CONF=$work/sub.conf.in MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work \
      MEDIQUO_RL_KEY=bench-ngx-sub-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1 \
      examples/gateway.sh start --port "$sub_port" --prefix "$work/sub") || exit 1

# the proxy_pass baseline, from its template
bash bench/ngx/proxy_conf.sh "$work/px" "$px_port" "$sb_port" || exit 1
nginx -p "$work/px" -c "$work/px/nginx.conf" -e "$work/px/logs/error.log" || exit 1
px=http://127.0.0.1:$px_port
for _ in $(seq 1 100); do curl -sf -o /dev/null "$px/health" && break; sleep 0.05; done

reset_sb() { curl -s -o /dev/null -X POST "${sb%/v1}/__sandbox/reset"; }

# median, pin_tree, worker_ns (the workers' CPU ns, exact), health_phases
. "$root/bench/ngx/health.sh"
# slice PREFIX URL SHAPE SECS: one wrk window of SECS on a fresh sandbox
# -> "requests seconds p50_ms p99_ms non2xx cpu_ns" (its workers' CPU)
slice() {
    local prefix=$1 url=$2 shape=$3 c0 c1 out
    reset_sb
    c0=$(worker_ns "$prefix/nginx.pid")
    out=$(BOOK_SHAPE=$shape wrk -t2 -c"$conns" -d"$4s" --latency -s bench/ngx/book.lua "$url/book")
    c1=$(worker_ns "$prefix/nginx.pid")
    printf '%s\n' "$out" | awk -v a="$c0" -v b="$c1" '
    function ms(v) { if (v ~ /us$/) return v * 0.001; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1; d = $4; sub(/s,?$/, "", d) }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    END { printf "%d %.3f %.3f %.3f %d %d\n", n, d, p50, p99, bad + 0, b - a }'
}
# slices FILE -> one window's line from its slices' lines: "rps p50_ms
# p99_ms non2xx cpu_us_per_request" (rps and CPU over all the slices'
# requests; p50, p99: the median of the slices')
slices() {
    awk -v p50="$(col "$1" 3)" -v p99="$(col "$1" 4)" '{ n += $1; d += $2; bad += $5; cpu += $6 }
        END { printf "%.1f %s %s %d %.1f\n", (d > 0 ? n / d : 0), p50, p99, bad + 0, (n ? cpu / 1000 / n : 0) }' "$1"
}

# EVALSHA calls redis-server answered so far (0 without the Redis contender)
evalsha_calls() {
    [ -n "$redis_pid" ] || { echo 0; return; }
    bash bench/ngx/evalsha_calls.sh "$redis_port"
}
# col FILE N: the median of column N
col() { cut -d' ' -f"$2" "$1" | median; }
# ratios TAG: each run's throughput / its own proxy_pass window's (px_TAG.txt)
ratios() { paste -d' ' "$work/$1.txt" "$work/px_$1.txt" | awk '{ printf "%.3f\n", $1 / $6 }'; }

# the contenders, each paired with a proxy_pass window of its own, the two
# taken in turns: BENCH_NGX_SLICES (5) slices of BENCH_NGX_SECONDS /
# slices each, in the order A B B A A B ... (A: proxy_pass in odd runs,
# the contender in even ones), so the machine's drift within a pair falls
# on both sides alike. Until session 16 a pair was two whole windows one
# after the other, and its ratio swung 0.79-1.15 within one run (session
# 15's logs): a shared VM's load changes over seconds
tags="gw sub gww"
[ -n "$gwr" ] && tags="$tags gwr gwrb"
declare -A url=([gw]=$gw [sub]=$sub [gww]=$gww [gwr]=$gwr [gwrb]=$gwrb)
declare -A label=([gw]=mediquo.ngx [sub]=subrequest [gww]="with the webhook map" [gwr]="redis budget"
                  [gwrb]="redis, burst 1000")
nslices=${BENCH_NGX_SLICES:-5}
slice_s=$(( secs / nslices )); [ "$slice_s" -ge 1 ] || slice_s=1

echo "# bench/ngx.sh: $runs runs x ${nslices}x${slice_s}s a side, wrk -t2 -c$conns, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
: > "$work/px.txt"
for tag in $tags; do : > "$work/$tag.txt"; : > "$work/${tag}_rt.txt"; : > "$work/px_$tag.txt"; done
# pair TAG RUN: TAG's window and its proxy_pass window, in slices taken in
# turns; the lines go to TAG.txt, px_TAG.txt and px.txt (the Redis
# contenders' round trips per /book to TAG_rt.txt)
pair() {
    local tag=$1 run=$2 j side e0 e1 rt=0
    : > "$work/cur_c"; : > "$work/cur_p"
    for j in $(seq 1 "$nslices"); do
        # A B B A ...: proxy_pass first when j + run is even
        for side in $( [ $(( (j + run) % 2 )) = 0 ] && echo "px c" || echo "c px"); do
            if [ "$side" = px ]; then
                slice "$work/px" "$px" api "$slice_s" >> "$work/cur_p"
            else
                e0=$(evalsha_calls)
                slice "$work/$tag" "${url[$tag]}" gateway "$slice_s" >> "$work/cur_c"
                e1=$(evalsha_calls)
                rt=$((rt + e1 - e0))
            fi
        done
    done
    slices "$work/cur_c" >> "$work/$tag.txt"
    slices "$work/cur_p" | tee -a "$work/px.txt" >> "$work/px_$tag.txt"
    case $tag in
        gwr*) awk -v e="$rt" '{ n += $1 } END { printf "%.4f\n", (n > 0 ? e / n : 0) }' "$work/cur_c" >> "$work/${tag}_rt.txt" ;;
    esac
}
# The contenders' order turns by one each run (run 1: gw sub gww gwr gwrb,
# run 2: sub gww gwr gwrb gw, ...): over 5 runs each takes each place once.
# In a fixed order the first pair of every run read lower, whoever held it
# (2026-12-06, three runs: the gateway first 0.85, 0.86, the webhook
# gateway third 0.92, 0.94; swapped, the webhook gateway first 0.87, the
# gateway third 0.89): a place, not a contender, was measured
read -r -a order <<< "$tags"
n=${#order[@]}
for i in $(seq 1 "$runs"); do
    line= pairs=
    for k in $(seq 0 $((n - 1))); do
        pair "${order[$(( (i - 1 + k) % n ))]}" "$i"
    done
    for tag in $tags; do
        line="$line${line:+  }${label[$tag]} $(tail -n1 "$work/$tag.txt") proxy_pass $(tail -n1 "$work/px_$tag.txt")"
        pairs="$pairs${pairs:+, }${label[$tag]}/proxy_pass $(ratios "$tag" | tail -n1)"
    done
    echo "run $i: $line  (rps p50ms p99ms non2xx cpu_us/req)"
    echo "run $i: paired ratios: $pairs"
done
px_cpu=$(col "$work/px.txt" 5); gw_cpu=$(col "$work/gw.txt" 5)
bad=$(awk '{ s += $4 } END { print s + 0 }' "$work/gw.txt" "$work/px.txt" "$work/sub.txt" "$work/gww.txt")

# /health: idle, and with 16 slow /book calls in flight (200 ms upstream),
# read by one paced probe through alternating phases (bench/ngx/health.sh,
# health_phases: $runs cycles of 3 s idle then 3 s busy; each p99 from
# ~12,000 samples pooled over the cycles, so the machine's drift falls on
# idle and busy alike; until session 12, five 4 s windows' p99s, idle and
# busy ones a few seconds apart, whose median moved more between two idle
# readings than the bound's margin). Each gateway is read twice:
#   shared  every process where the scheduler puts it: wrk, the slow sandbox
#           and Redis take turns with the gateway and the probe on the same 2
#           cores, so the busy p99 is also the load generator's CPU
#   pinned  (taskset, 2 cores or more) the gateway and the probe on the last
#           core, wrk, the sandboxes and Redis on the others: what is left is
#           the gateway's own event loop, as on a gateway host with the
#           callers and the API elsewhere. The bound (<= 1.5) is read here.
eval "$(make -s env)"
last_cpu=$(( $(nproc) - 1 ))
can_pin= probe_cpus= load_cpus=
command -v taskset >/dev/null && [ "$last_cpu" -ge 1 ] && can_pin=1
# pin MODE PREFIX: MODE pinned|shared for the gateway under PREFIX and the load's side
pin() {
    [ -n "$can_pin" ] || return 0
    local gw_cpus=$last_cpu other=0-$((last_cpu - 1)) all=0-$last_cpu
    if [ "$1" = shared ]; then gw_cpus=$all other=$all; fi
    pin_tree "$2/nginx.pid" "$gw_cpus"
    pin_tree "$work/slow/nginx.pid" "$other"
    [ -n "$redis_pid" ] && taskset -a -p -c "$other" "$redis_pid" >/dev/null 2>&1
    probe_cpus=$gw_cpus load_cpus=$other
}
# health TAG PORT URL PREFIX: both readings of one gateway -> $work/TAG.MODE
health() {
    local mode
    for mode in shared ${can_pin:+pinned}; do
        pin "$mode" "$4"
        : > "$work/$1.$mode"
        HEALTH_CYCLES=$runs health_phases "$2" "$3" gateway "$4/nginx.pid" "$probe_cpus" "$load_cpus" "$work/$1.$mode"
    done
    pin shared "$4"
}
health local "$gw2_port" "$gw2" "$work/gw2"
slow_rps=$(cut -d' ' -f10 "$work/local.shared")
[ -n "$gwr" ] && health redis "$gw2r_port" "$gw2r" "$work/gw2r"

# 200 at once on a 500 ms upstream
: > "$work/burst.txt"
for i in $(seq 1 "$runs"); do
    lua5.4 bench/ngx/burst.lua "$gw3_port" "$burst" >> "$work/burst.txt"
done
burst_s=$(cut -d' ' -f1 "$work/burst.txt" | median)
burst_ok=$(awk '{ ok += $2; n += $3 } END { printf "%d of %d", ok, n }' "$work/burst.txt")

echo
echo "| /book (median of $runs)        | req/s | p50 ms | p99 ms | worker CPU us/req |"
echo "|-------------------------------|------:|-------:|-------:|------:|"
# row TAG LABEL: the medians of one contender's runs
row() { printf "| %s | %s | %s | %s | %s |\n" "$2" "$(col "$work/$1.txt" 1)" "$(col "$work/$1.txt" 2)" "$(col "$work/$1.txt" 3)" "$(col "$work/$1.txt" 5)"; }
row px "nginx proxy_pass (upper bound)"
row gw "mediquo.ngx gateway (cosockets)"
row sub "same, subrequest to proxy_pass"
row gww "mediquo.ngx + the example's webhook map"
# met BOUND VALUE: "met" or "NOT met" for VALUE >= BOUND, read unrounded
# (a median of 0.897 printed as 0.90 read as met)
met() { awk -v b="$1" -v v="$2" 'BEGIN { print (v + 0 >= b + 0) ? "met" : "NOT met" }'; }
gw_ratio=$(ratios gw | median)
printf "mediquo.ngx / proxy_pass throughput: %.3f, median of the runs' paired ratios (bound >= 0.9: %s)\n" \
    "$gw_ratio" "$(met 0.9 "$gw_ratio")"
printf "subrequest variant / proxy_pass throughput: %.2f (paired, median)\n" "$(ratios sub | median)"
printf "with the example's webhook map (MEDIQUO_WEBHOOK_SECRET set: a shared-dict write per /book) / proxy_pass: %.2f (paired, median)\n" "$(ratios gww | median)"
awk -v a="$px_cpu" -v b="$gw_cpu" 'BEGIN { printf "worker CPU per /book, mediquo.ngx / proxy_pass: %.2f (%.1f us more)\n", b / a, b - a }'
gwr_ratio=$([ -n "$gwr" ] && ratios gwr | median)
[ -n "$gwr" ] && printf "mediquo.ngx with a Redis budget / proxy_pass throughput: %.3f (paired, median; bound >= 0.85: %s), worker CPU %s us/req, %s Redis round trips per /book\n" \
    "$gwr_ratio" "$(met 0.85 "$gwr_ratio")" "$(col "$work/gwr.txt" 5)" "$(median < "$work/gwr_rt.txt")"
[ -n "$gwr" ] && printf "the same with burst 1000 (leases as large: lease_most) / proxy_pass: %.2f (paired, median), worker CPU %s us/req, %s Redis round trips per /book\n" \
    "$(ratios gwrb | median)" "$(col "$work/gwrb.txt" 5)" "$(median < "$work/gwrb_rt.txt")"
echo "non-2xx answers in all /book runs: $bad"
echo
echo "| /health on the gateway ($runs cycles, pooled) | p50 ms | p99 ms |"
echo "|-----------------------------------------|-------:|-------:|"
# health_rows TAG MODE LABEL
health_rows() {
    [ -s "$work/$1.$2" ] || return 0
    printf "| %s, idle | %s | %s |\n" "$3" "$(cut -d' ' -f1 "$work/$1.$2")" "$(cut -d' ' -f2 "$work/$1.$2")"
    printf "| %s, 16 /book on a 200 ms upstream | %s | %s |\n" "$3" "$(cut -d' ' -f3 "$work/$1.$2")" "$(cut -d' ' -f4 "$work/$1.$2")"
}
health_rows local shared "shared cores"
health_rows local pinned "pinned"
if [ -n "$gwr" ]; then
    health_rows redis shared "budget in Redis, shared cores"
    health_rows redis pinned "budget in Redis, pinned"
fi
# health_ratio TAG MODE LABEL BOUND [NOTE]: busy p99 / idle p99 of the pooled
# samples (where the bound is read: each p99 from ~13,000 samples; a cycle's
# p99 is its ~26th slowest, and a ratio of two such is noisier), met or not
# against BOUND (none: NOTE instead), the cycles' pairs' median beside it,
# the A/A pair, the workers' CPU a slow /book
health_ratio() {
    [ -s "$work/$1.$2" ] || return 0
    awk -v l="$3" -v b="$4" -v note="${5:-}" '{ r = $4 / $2
        if (b != "") note = sprintf(" (bound <= %s: %s)", b, r <= b + 0 ? "met" : "NOT met")
        printf "/health p99 under load / idle, %s: %.3f%s (pooled samples; the cycles\047 pairs, median: %s); idle A/A (odd / even cycles) %s; %d / %d samples; workers %s us a slow /book\n", l, r, note, $5, $6, $7, $8, $9 }' "$work/$1.$2"
}
shared_note=" (the load generator's CPU in it too)"
health_ratio local pinned "pinned" 1.5
health_ratio local shared "shared cores" "" "$shared_note"
if [ -n "$gwr" ]; then
    health_ratio redis pinned "the budget in Redis, pinned" 1.5
    health_ratio redis shared "the budget in Redis, shared cores" "" "$shared_note"
fi
[ -n "$can_pin" ] || echo "(no taskset or a single core: the pinned rows are missing)"
echo "slow /book throughput meanwhile: $slow_rps req/s (16 in flight / 0.2 s = 80 at most)"
echo
echo "$burst /book at once on a 500 ms upstream: last answer after $burst_s s (median of $runs; bound < 1.5 s), $burst_ok answered 2xx"
