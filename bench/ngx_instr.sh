#!/usr/bin/env bash
# bench/ngx_instr.sh: instructions a /book costs in one nginx worker, the
# example gateway against nginx's own proxy_pass to the same sandbox --
# counted by valgrind's callgrind, not timed. On a shared 2-core VM a
# throughput pair swings +-0.1 from one window to the next; the count of
# user-space instructions moves by < 1% between runs of one tree, so a
# change of a few hundred instructions a /book shows (the kernel's share,
# the same system calls for both, is not counted).
#
#   bash bench/ngx_instr.sh             (or: make bench-ngx-instr)
#   BENCH_INSTR_SECONDS=3 (the counted window) BENCH_INSTR_TREE=DIR (another
#   checkout's gateway, its build made, beside this one's proxy_pass)
#   BENCH_INSTR_KEEP=DIR (callgrind's files kept there, for callgrind_annotate)
#   BENCH_INSTR_CONNS=1 (wrk's connections) BENCH_INSTR_REDIS=1 (the
#   gateway again with its budget in a redis-server started here, and its
#   Redis round trips per /book; under callgrind the worker serves ~1/50 of
#   its rate, so its leases are smaller and its round trips more frequent
#   than in make bench-ngx: compare the per-round-trip cost, not the sum)
#
# Each nginx runs one worker in the foreground (master_process off) under
# callgrind; wrk warms it up for 1 s over one connection, callgrind's
# counters are zeroed, wrk runs BENCH_INSTR_SECONDS over one kept-alive
# connection, the counters are dumped: instructions / requests wrk made.
# Needs valgrind, wrk, nginx with the Lua module, `make luajit`. Loopback only.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tree=${BENCH_INSTR_TREE:-$root}
secs=${BENCH_INSTR_SECONDS:-3}
conns=${BENCH_INSTR_CONNS:-1}
want_redis=${BENCH_INSTR_REDIS:-0}
cd "$root" || exit 2
for t in valgrind callgrind_control wrk; do
    command -v "$t" >/dev/null || { echo "bench/ngx_instr.sh: $t not found" >&2; exit 2; }
done
[ -f "$tree/build/luajit/mediquo/core.so" ] || { echo "bench/ngx_instr.sh: run 'make luajit' in $tree" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-instr.XXXXXX")
base=$((31000 + RANDOM % 8000))
sb_port=$base vg_pid= redis_pid=
cleanup() {
    [ -n "$vg_pid" ] && kill "$vg_pid" 2>/dev/null && wait "$vg_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    bin/mediquo-sandbox stop --prefix "$work/sb" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

sb=$(bin/mediquo-sandbox start --port "$sb_port" --prefix "$work/sb" --per-minute 1000000000) || exit 1
export MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret

# count PREFIX URL SHAPE TAG LABEL: nginx of PREFIX/nginx.conf under callgrind
count() {
    local prefix=$1 url=$2 shape=$3 tag=$4 label=$5 out n ir
    sed -i -e '1i master_process off; daemon off;' -e 's/ reuseport;/;/' \
        -e 's/^worker_processes .*/worker_processes 1;/' "$prefix/nginx.conf"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$tag" \
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" 2>"$work/vg.$tag.log" &
    vg_pid=$!
    for _ in $(seq 1 300); do curl -sf -o /dev/null "$url/health" && break; sleep 0.1; done
    curl -s -o /dev/null -X POST "${sb%/v1}/__sandbox/reset"
    BOOK_SHAPE=$shape wrk -t1 -c"$conns" -d1s -s bench/ngx/book.lua "$url/book" >/dev/null
    callgrind_control -z "$vg_pid" >/dev/null 2>&1
    rt0=$(round_trips)
    out=$(BOOK_SHAPE=$shape wrk -t1 -c"$conns" -d"${secs}s" -s bench/ngx/book.lua "$url/book")
    rt=$(( $(round_trips) - rt0 ))
    callgrind_control -d "$vg_pid" >/dev/null 2>&1
    sleep 0.5
    kill "$vg_pid"; wait "$vg_pid" 2>/dev/null; vg_pid=
    n=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
    [ -n "${BENCH_INSTR_KEEP:-}" ] && mkdir -p "$BENCH_INSTR_KEEP" && cp "$work/cg.$tag".* "$BENCH_INSTR_KEEP/"
    ir=$(awk '/^summary:/ { print $2 }' "$work/cg.$tag".* 2>/dev/null | head -n1)
    if [ -z "$n" ] || [ -z "$ir" ] || printf '%s\n' "$out" | grep -q "Non-2xx"; then
        echo "bench/ngx_instr.sh: $label: no count (wrk: $(printf '%s' "$out" | tr '\n' ' '))" >&2
        tail -n 5 "$work/vg.$tag.log" "$prefix/logs/error.log" >&2
        return 1
    fi
    awk -v ir="$ir" -v n="$n" -v l="$label" -v rt="$rt" 'BEGIN {
        printf "%-34s %9.0f instructions a /book (%d requests", l, ir / n, n
        if (rt > 0) printf ", %d Redis round trips: one per %.1f /book", rt, n / rt
        printf ")\n" }'
}

# EVALSHA calls the Redis contender answered so far (0 without it)
round_trips() {
    [ -n "$redis_pid" ] || { echo 0; return; }
    bash bench/ngx/evalsha_calls.sh "$redis_port"
}

# the example gateway (examples/nginx.conf: mediquo.ngx, the local limiter,
# metrics), from its own start script, then run again under callgrind
gw_port=$((base + 1)) px_port=$((base + 2))
MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-instr-$$ MEDIQUO_RL_PER_MINUTE=1000000 \
    MEDIQUO_RL_PERIOD=1 "$tree/examples/gateway.sh" start --workers 1 --port "$gw_port" --prefix "$work/gw" >/dev/null || exit 1
"$tree/examples/gateway.sh" stop --prefix "$work/gw"
export MEDIQUO_BASE_URL=$sb MEDIQUO_RL_DIR=$work MEDIQUO_RL_KEY=bench-instr-$$ MEDIQUO_RL_PER_MINUTE=1000000 MEDIQUO_RL_PERIOD=1

bash bench/ngx/proxy_conf.sh "$work/px" "$px_port" "$sb_port" || exit 1

echo "# bench/ngx_instr.sh: callgrind, one worker, ${secs}s of /book over $conns connection(s), $(date -u +%Y-%m-%dT%H:%MZ)"
count "$work/px" "http://127.0.0.1:$px_port" api px "nginx proxy_pass" || exit 1
count "$work/gw" "http://127.0.0.1:$gw_port" gateway gw "mediquo.ngx (examples/nginx.conf)" || exit 1

# the same gateway with its budget in Redis (rate_limit.redis), when asked
if [ "$want_redis" = 1 ]; then
    command -v redis-server >/dev/null || { echo "bench/ngx_instr.sh: redis-server not found" >&2; exit 2; }
    redis_port=$((base + 3)) gwr_port=$((base + 4))
    . "$root/bench/ngx/redis.sh"
    start_redis "$redis_port" "$work/redis"
    MEDIQUO_RL_REDIS=redis://127.0.0.1:$redis_port MEDIQUO_RL_KEY=bench-instr-redis-$$ \
        "$tree/examples/gateway.sh" start --workers 1 --port "$gwr_port" --prefix "$work/gwr" >/dev/null || exit 1
    "$tree/examples/gateway.sh" stop --prefix "$work/gwr"
    MEDIQUO_RL_REDIS=redis://127.0.0.1:$redis_port MEDIQUO_RL_KEY=bench-instr-redis-$$ \
        count "$work/gwr" "http://127.0.0.1:$gwr_port" gateway gwr "mediquo.ngx, budget in Redis" || exit 1
fi
