#!/usr/bin/env bash
# bench/webhook_ngx.sh: webhook deliveries received per second by ONE nginx
# worker (mediquo.ngx.receive: bounded body read, constant-time signature,
# SHA-256 id, cjson, the dedupe dict), measured with wrk on loopback over
# keep-alive connections. Two locations of a copy of examples/nginx.conf:
#   /bench/events   dedupe = 0: every delivery verified, parsed, on_event called
#   /bench/dedupe   dedupe on (the mediquo_webhooks dict): the same body
#                   again, verified, parsed, answered from the dict
# Usage: bash bench/webhook_ngx.sh [SECONDS] (default 5). Needs wrk, make luajit.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench-wh.XXXXXX")
port=$((20000 + RANDOM % 10000))
trap '"$root/examples/gateway.sh" stop --prefix "$dir/gw" >/dev/null 2>&1; rm -rf "$dir"' EXIT
sed 's|\(        location = /health\)|        location = /bench/events { content_by_lua_block { require("mediquo.ngx").receive{ secret = "bench-secret", dedupe = 0, on_event = function() return true end } } }\n        location = /bench/dedupe { content_by_lua_block { require("mediquo.ngx").receive{ secret = "bench-secret", on_event = function() return true end } } }\n\1|' \
    "$root/examples/nginx.conf" > "$dir/nginx.conf"
MEDIQUO_GATEWAY_CONF=$dir/nginx.conf MEDIQUO_API_KEY=k MEDIQUO_SECRET_KEY=s MEDIQUO_BASE_URL=http://127.0.0.1:9/v1 \
MEDIQUO_RL_DIR=$dir MEDIQUO_WEBHOOK_SECRET=bench-secret \
    "$root/examples/gateway.sh" start --port "$port" --workers 1 --prefix "$dir/gw" >/dev/null
body=$(cd "$root" && LUA_PATH="$root/lua/?.lua;;" LUA_CPATH="$root/build/luajit/?.so;;" luajit -e '
local cjson = require "cjson"
io.write(cjson.encode{ type = "patient_consultation_finished", occurred_on = 1715000000, payload = {
  consultation = { id = "3f1c2b9e", type = "appointment", channel = "video",
    consultation_url = "https://sdk.mediquo.com/call/46ea4bc1af2f39fb9a40ed540c08ea97",
    scheduled_start_date = "2031-03-10T10:00:00Z", scheduled_end_date = "2031-03-10T10:15:00Z" },
  reports = { { id = "r-1", type = "soap", content = { subjective = ("Dry cough. "):rep(12),
    objective = ("Clear lungs. "):rep(12), assessment = "Viral bronchitis", plan = ("Rest. "):rep(12) } } },
  patient = { code = "PATIENT-0001", allergies = { { id = 1, name = "Penicillin" } },
    diseases = { { id = 2, name = "Hypertension" } }, medications = { { id = 3, name = "Enalapril" } } },
  professional = { id = "prof-demo-1" }, prescriptions = { { id = "rx-1", active_substances = { "x" } } } } })')
cat > "$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-webhook-signature"] = "bench-secret"
LUA
for path in /bench/events /bench/dedupe; do
    out=$(wrk -t1 -c16 -d"${secs}s" -s "$dir/post.lua" "http://127.0.0.1:$port$path" 2>&1)
    rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ { print $2 }')
    non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
    printf 'webhook receive %-16s one nginx worker, %d-byte event, 16 connections: %s deliveries/s (non-2xx: %s)\n' \
        "$path" "${#body}" "$rps" "${non2xx:-0}"
done
