-- bench/soak.lua: the resilience soak (`make soak`). Starts a sandbox, runs
-- PROCS worker processes (bench/soak/worker.lua) for SECONDS with random
-- faults queued before ~10% of calls, then checks that what every process
-- believes took is exactly what the sandbox holds, that no call outlived
-- its deadline and that memory did not grow. One summary line; exit 1 on
-- any failed check.
--
--   lua5.4 bench/soak.lua [SECONDS=100] [PROCS=4]
local json = require "cjson"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local SECONDS = tonumber(arg[1] or os.getenv("SOAK_SECONDS") or 100)
local PROCS = tonumber(arg[2] or os.getenv("SOAK_PROCS") or 4)
local RSS_GROWTH_KIB = 2048   -- allocator noise allowed between the two readings
local LUA = os.getenv("LUA") or "lua5.4"

local root = (debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/soak%.lua$")) or "."
local bin = root .. "/bin/mediquo-sandbox"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function run(cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
end

local prefix = run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-soak-XXXXXX\""):gsub("%s+$", "")
local base_url
math.randomseed(os.time())
for _ = 1, 20 do
    local port = math.random(30000, 39999)
    local out, code = run(("%s start --port %d --prefix %s --workers 2 --per-minute 1000000000 2>&1")
                          :format(q(bin), port, q(prefix)))
    if code == 0 then base_url = out:match("^(%S+)") break end
    if not out:find("busy", 1, true) then io.stderr:write(out) break end
end
if not base_url then
    io.stderr:write("soak: cannot start a sandbox\n")
    os.exit(2)
end
local function stop()
    run(q(bin) .. " stop --prefix " .. q(prefix) .. " >/dev/null 2>&1")
    run("rm -rf " .. q(prefix))
end

local function get(path)
    local chunks = {}
    local ok, status = http.request{ url = base_url:gsub("/v1$", "") .. path,
                                     sink = ltn12.sink.table(chunks) }
    assert(ok and status == 200, "GET " .. path .. " failed")
    return json.decode(table.concat(chunks))
end

io.write(("soak: %d processes for %d s against %s\n"):format(PROCS, SECONDS, base_url))
io.flush()
local t0 = socket.gettime()
local pipes, outs = {}, {}
for i = 1, PROCS do
    outs[i] = prefix .. "/worker-" .. i .. ".json"
    -- half of the processes opt in to retry_post, half leave it off
    pipes[i] = assert(io.popen(("%s %s %s %d %d %d %d %s 2>&1"):format(
        LUA, q(root .. "/bench/soak/worker.lua"), q(base_url), i, SECONDS,
        math.random(1, 1e9), i % 2, q(outs[i])), "r"))
end
local failures = {}
local results = {}
for i = 1, PROCS do
    local text = pipes[i]:read("a")
    local ok = pipes[i]:close()
    local f = io.open(outs[i], "rb")
    if not ok or not f then
        failures[#failures + 1] = ("worker %d died: %s"):format(i, text)
    else
        results[i] = json.decode(f:read("a"))
        f:close()
    end
end
local wall = socket.gettime() - t0
socket.sleep(1)     -- a delayed request a client gave up on lands within 0.5 s

local state = get("/__sandbox/appointments")
local log = get("/__sandbox/log")
stop()

-- what the processes believe against what the server holds
local total = { calls = 0, ok_first = 0, resolved = 0, unresolved = 0, faults = 0,
                creates = 0, reschedules = 0, cancels = 0, over = 0, requests = 0 }
local max_call, mismatches, records, rss = 0, 0, 0, {}
local by_kind = {}
for i = 1, PROCS do
    local r = results[i]
    if r then
        for _, k in ipairs{ "calls", "ok_first", "resolved", "unresolved", "creates",
                            "reschedules", "cancels" } do
            total[k] = total[k] + r[k]
        end
        total.faults = total.faults + r.faults_pushed
        total.over = total.over + r.over_deadline
        total.requests = total.requests + r.stats.requests
        if r.max_call > max_call then max_call = r.max_call end
        for k, v in pairs(r.by_kind) do by_kind[k] = (by_kind[k] or 0) + v end
        rss[#rss + 1] = { r.rss_before_kib, r.rss_after_kib, r.lua_kib_before, r.lua_kib_after }
        for code, want in pairs(r.records) do
            records = records + 1
            local got = state[code]
            if not got or got.starts_at ~= want.starts_at or got.status ~= want.status then
                mismatches = mismatches + 1
                if mismatches <= 5 then
                    failures[#failures + 1] = ("%s: process %d holds %s %s, server %s"):format(
                        code, i, want.starts_at, want.status,
                        got and (got.starts_at .. " " .. got.status) or "nothing")
                end
            end
        end
    end
end
-- every appointment on the server was made by a create some process knows of
local known = {}
for i = 1, PROCS do
    local r = results[i]
    if r then
        for code in pairs(r.records) do known[code] = true end
        for _, code in ipairs(r.unknown) do known[code] = true end
    end
end
local strays = 0
for code in pairs(state) do
    if not known[code] then strays = strays + 1 end
end
local faulted, seen = 0, 0
for _, e in ipairs(log) do
    if e.path:sub(1, 4) == "/v1/" then
        seen = seen + 1
        if e.fault then faulted = faulted + 1 end
    end
end
local growth = 0
for _, m in ipairs(rss) do
    if m[2] - m[1] > growth then growth = m[2] - m[1] end
end

if mismatches > 0 then failures[#failures + 1] = mismatches .. " records differ from the server" end
if strays > 0 then failures[#failures + 1] = strays .. " appointments nobody created" end
if total.unresolved > 0 then failures[#failures + 1] = total.unresolved .. " operations never settled" end
if total.over > 0 then failures[#failures + 1] = total.over .. " calls outlived their deadline" end
if growth > RSS_GROWTH_KIB then failures[#failures + 1] = "RSS grew by " .. growth .. " KiB" end
if #results < PROCS then failures[#failures + 1] = "not every worker reported" end

local kinds = {}
for k, v in pairs(by_kind) do kinds[#kinds + 1] = ("%s=%d"):format(k, v) end
table.sort(kinds)
io.write(("soak: wall %.0f s, %d calls (%d creates, %d reschedules, %d cancels), "
          .. "%d first-try ok, %d settled by a later call, %d unsettled\n"):format(
    wall, total.calls, total.creates, total.reschedules, total.cancels, total.ok_first,
    total.resolved, total.unresolved))
io.write(("soak: %d requests seen by the sandbox, %d faulted (%.1f%%); errors by kind: %s\n")
         :format(seen, faulted, seen > 0 and 100 * faulted / seen or 0, table.concat(kinds, " ")))
for i, m in ipairs(rss) do
    io.write(("soak: process %d RSS %d -> %d KiB, Lua heap %.0f -> %.0f KiB\n"):format(
        i, m[1], m[2], m[3] or 0, m[4] or 0))
end
for _, f in ipairs(failures) do io.write("soak: FAIL ", f, "\n") end
io.write(("SOAK %s: %d processes, %d s, %d calls, %d requests, %.1f%% faulted, "
          .. "%d/%d records match the server, %d strays, longest call %.2f s (deadline 2 s), "
          .. "max RSS growth %d KiB\n"):format(
    #failures == 0 and "PASS" or "FAIL", PROCS, SECONDS, total.calls, seen,
    seen > 0 and 100 * faulted / seen or 0, records - mismatches, records, strays, max_call,
    growth))
os.exit(#failures == 0 and 0 or 1)
