#!/usr/bin/env bash
# Benchmark the sandbox: creates with unique codes under wrk, one worker.
#
#   bench/sandbox.sh [DURATION_S] [CONNECTIONS] [THREADS]    (defaults 5 32 2)
#
# Starts its own sandbox (1 worker, rate limit out of the way) on a free
# loopback port, runs wrk against POST /v1/appointments, prints wrk's report
# and a last line "creates/s: N", and stops the sandbox whatever happens.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-5} conns=${2:-32} threads=${3:-2}
command -v wrk >/dev/null || { echo "bench/sandbox.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-XXXXXX")
cleanup() { "$root/bin/mediquo-sandbox" stop --prefix "$work/sb" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

base=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((40000 + RANDOM % 10000))
    if base=$("$root/bin/mediquo-sandbox" start --port "$port" --prefix "$work/sb" \
                  --workers 1 --per-minute 1000000000 2>"$work/start.err"); then
        break
    fi
    grep -q busy "$work/start.err" || { cat "$work/start.err" >&2; exit 1; }
    base=""
done
[ -n "$base" ] || { echo "bench/sandbox.sh: no free port" >&2; exit 1; }

# Each wrk thread numbers its own requests; the thread id keeps codes unique
# across threads, so every request is a real create (200), never a duplicate.
cat > "$work/create.lua" <<'LUA'
local next_id = 0
function setup(thread)
    next_id = next_id + 1
    thread:set("tid", next_id)
end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-API-Key"] = "sandbox-key"
wrk.headers["X-Secret-Key"] = "sandbox-secret"
function request()
    n = n + 1
    local body = '{"appointment":{"code":"bench-' .. tid .. '-' .. n
        .. '","starts_at":"2024-05-20T10:00:00Z"},"patient":{"code":"p-1"},'
        .. '"professional":{"hash":"prof-demo-1"}}'
    return wrk.format(nil, nil, nil, body)
end
local bad = 0
function response(status)
    if status ~= 200 then bad = bad + 1 end
end
LUA

echo "sandbox: $base (1 worker); wrk -t$threads -c$conns -d${duration}s"
wrk -t"$threads" -c"$conns" -d"${duration}s" -s "$work/create.lua" "$base/appointments" | tee "$work/wrk.out"
stored=$(curl -s "${base%/v1}/__sandbox/appointments" | grep -o '"status":"active"' | wc -l)
echo "appointments stored: $stored"
if grep -q "Non-2xx" "$work/wrk.out"; then
    echo "bench/sandbox.sh: some creates failed" >&2
    exit 1
fi
awk '/^Requests\/sec:/ { printf "creates/s: %d\n", $2 }' "$work/wrk.out"
