-- bench/soak.lua: the resilience soak (`make soak`). Starts a sandbox, runs
-- PROCS worker processes (bench/soak/worker.lua) for SECONDS with random
-- faults queued before ~10% of calls, then checks that what every process
-- believes took is exactly what the sandbox holds, that no call outlived
-- its deadline and that memory did not grow. One summary line; exit 1 on
-- any failed check.
-- The limiter's part (issue 16): SHARERS more processes spin on the same
-- limiter key and are stopped (SIGSTOP) and continued at random all run
-- long, some in the middle of an admission, and (as root) the state file
-- lives on a tmpfs filled to the last byte: the workers' deadlines and the
-- reconciliation must hold all the same.
-- The gateway's part (issue 16, bench/soak/gateway.lua): the example
-- gateway (nginx + mediquo.ngx) on the same sandbox and limiter key books
-- for SOAK_GW_CLIENTS curl clients while its master is sent SIGHUP every
-- 2 s; every request must be answered and every answer must agree with
-- the server. SOAK_GATEWAY=0 skips it.
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
local SHARERS = tonumber(os.getenv("SOAK_SHARERS") or 2)

local root = (debug.getinfo(1, "S").source:sub(2):match("^(.*)/bench/soak%.lua$")) or "."
local bin = root .. "/bin/mediquo-sandbox"

local sh = dofile(root .. "/bench/soak/sh.lua")
local q, run = sh.q, sh.run

local prefix = run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-soak-XXXXXX\""):gsub("%s+$", "")
local base_url
math.randomseed(os.time())
for _ = 1, 20 do
    local port = math.random(20000, 32000)  -- below the ephemeral range
    local out, code = run(("%s start --port %d --prefix %s --workers 2 --per-minute 1000000000 2>&1")
                          :format(q(bin), port, q(prefix)))
    if code == 0 then base_url = out:match("^(%S+)") break end
    if not out:find("busy", 1, true) then io.stderr:write(out) break end
end
if not base_url then
    io.stderr:write("soak: cannot start a sandbox\n")
    run("rm -rf " .. q(prefix))
    os.exit(2)
end
local GW = dofile(root .. "/bench/soak/gateway.lua")

-- everything below runs in main(); cleanup() runs on every path, once
local rl_dir, mounted = prefix .. "/rl", false
local gw, poller_pid
local stop_file = prefix .. "/stop-poller"
-- the pids of the processes this soak started; cleanup ends those still
-- running (only after a failure: otherwise they have all finished)
local children = {}
local function spawn(cmd)
    local p = assert(io.popen("echo $$; exec " .. cmd, "r"))
    children[#children + 1] = tonumber(p:read("l"))
    return p
end
local function cleanup()
    if gw then gw:stop() end
    for _, pid in ipairs(children) do
        run(("kill -TERM %d 2>/dev/null; kill -CONT %d 2>/dev/null"):format(pid, pid))
    end
    for _ = 1, 50 do
        local left = false
        for _, pid in ipairs(children) do
            -- (a finished child of ours stays a zombie until its pipe is closed)
            if run("ps -o stat= -p " .. pid .. " | grep -v Z"):find("%S") then left = true end
        end
        if not left then break end
        socket.sleep(0.1)
    end
    if poller_pid then
        run("touch " .. q(stop_file) .. "; kill " .. poller_pid .. " 2>/dev/null")
    end
    if mounted then run("umount " .. q(rl_dir)) mounted = false end
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

-- The sandbox keeps its last 10,000 requests: a run with the gateway's
-- clients sends more, so the log is also read every 15 s (bounded by the
-- run's length) and the copies are merged by sequence number.
local function start_poller()
    local url = base_url:gsub("/v1$", "") .. "/__sandbox/log"
    local loop = ([[
i=0
while [ $i -lt %d ] && [ ! -e %s ]; do
  sleep 1; i=$((i+1))
  if [ $((i %% 15)) -eq 0 ]; then
    curl -s --max-time 10 -o %s/log-$i.tmp %s && mv %s/log-$i.tmp %s/log-$i.json
  fi
done]]):format(SECONDS + 60, q(stop_file), q(prefix), q(url), q(prefix), q(prefix))
    poller_pid = tonumber(run(("(%s) >/dev/null 2>&1 & echo $!"):format(loop)):match("%d+"))
end
local function full_log()
    run("touch " .. q(stop_file))
    for _ = 1, poller_pid and 150 or 0 do
        if not sh.alive(poller_pid) then break end
        socket.sleep(0.1)
    end
    poller_pid = nil
    local by_seq, n, top = {}, 0, 0
    local function add(list)
        for _, e in ipairs(list) do
            if e.seq and not by_seq[e.seq] then
                by_seq[e.seq] = e
                n = n + 1
                if e.seq > top then top = e.seq end
            end
        end
    end
    for name in run("ls " .. q(prefix) .. " | grep '^log-.*\\.json$'"):gmatch("%S+") do
        local f = io.open(prefix .. "/" .. name, "rb")
        if f then
            local ok, list = pcall(json.decode, f:read("a"))
            f:close()
            if ok and type(list) == "table" then add(list) end
        end
    end
    add(get("/__sandbox/log"))
    local log = {}
    for i = 1, top do log[#log + 1] = by_seq[i] end
    return log, n == top
end

local function main()
    local failures = {}
    -- the limiter's state: on a tmpfs filled up once the file is made (root),
    -- else in the prefix
    run("mkdir -p " .. q(rl_dir))
    if run("id -u"):match("^0") then
        local _, code = run("mount -t tmpfs -o size=1m tmpfs " .. q(rl_dir) .. " 2>&1")
        mounted = code == 0
    end
    local rl = { per_minute = 100000, burst = 100000, period = 1, key = "soak-" .. base_url,
                 dir = rl_dir }
    do
        local lim = assert(require("mediquo").limiter(rl))
        lim:close()
    end
    -- the gateway shares that key and dir; it makes its files before the fill
    local why
    gw, why = GW.new{ root = root, prefix = prefix, base_url = base_url, rl = rl,
                      seconds = SECONDS, lua = LUA, spawn = spawn }
    if gw then
        local ok, err = gw:start()
        if not ok then
            gw = nil
            failures[#failures + 1] = err
        end
    end
    local full = false
    if mounted then
        run("dd if=/dev/zero of=" .. q(rl_dir .. "/fill") .. " bs=4k 2>/dev/null")
        full = run("df --output=avail -B1 " .. q(rl_dir) .. " | tail -1"):match("^%s*0%s*$") ~= nil
    end

    -- sharers that only spin on the limiter, and a loop that stops and
    -- continues them at random moments (bounded: 4 per second of the run)
    local sharer_code = ([[
local l = assert(require("mediquo.core").limiter{ per_minute = %d, burst = %d, period = %d,
    key = %q, dir = %q })
local stop, n = require("mediquo.core").now() + %d, 0
while require("mediquo.core").now() < stop do if l:try() then n = n + 1 end end
io.write(n, "\n")
]]):format(rl.per_minute, rl.burst, rl.period, rl.key, rl.dir, SECONDS)
    local sharer_path = prefix .. "/sharer.lua"
    do
        local f = assert(io.open(sharer_path, "wb"))
        f:write(sharer_code)
        f:close()
    end
    local sharer_pids = {}
    for i = 1, SHARERS do
        local out = run(("nice -n 10 %s %s > %s 2>&1 & echo $!"):format(
            LUA, q(sharer_path), q(prefix .. "/sharer-" .. i .. ".out")))
        sharer_pids[i] = tonumber(out:match("%d+"))
        children[#children + 1] = sharer_pids[i]
    end
    if #sharer_pids > 0 then
        -- first in the list: cleanup ends it before the sharers it stops
        local loop = ("(for i in $(seq 1 %d); do p=$(shuf -n1 -e %s); kill -STOP $p; "
                      .. "sleep 0.$(shuf -i 5-30 -n1); kill -CONT $p; sleep 0.$(shuf -i 1-9 -n1); "
                      .. "done; kill -CONT %s) >/dev/null 2>&1 & echo $!"):format(
            SECONDS * 4, table.concat(sharer_pids, " "), table.concat(sharer_pids, " "))
        table.insert(children, 1, tonumber(run(loop):match("%d+")))
    end

    io.write(("soak: %d processes for %d s against %s, %d limiter sharers stopped and continued, "
              .. "state file on %s\n"):format(PROCS, SECONDS, base_url, SHARERS,
              full and "a full tmpfs" or rl_dir))
    if not gw then io.write("soak: gateway leg skipped: ", why or "it did not start", "\n") end
    io.flush()
    start_poller()
    local t0 = socket.gettime()
    local pipes, outs = {}, {}
    for i = 1, PROCS do
        outs[i] = prefix .. "/worker-" .. i .. ".json"
        -- half of the processes opt in to retry_post, half leave it off
        pipes[i] = spawn(("env SOAK_RL_DIR=%s %s %s %s %d %d %d %d %s 2>&1"):format(
            q(rl_dir), LUA, q(root .. "/bench/soak/worker.lua"), q(base_url), i, SECONDS,
            math.random(1, 1e9), i % 2, q(outs[i])))
    end
    if gw then gw:go() end
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
    if gw then
        for _, f in ipairs(gw:collect()) do failures[#failures + 1] = f end
    end
    local wall = socket.gettime() - t0
    socket.sleep(1)     -- a delayed request a client gave up on lands within 0.5 s

    local state = get("/__sandbox/appointments")
    local log, log_complete = full_log()
    -- the sharers ran as long as the workers: each says how many it took
    local sharer_admits, sharers_done = 0, 0
    for i, pid in ipairs(sharer_pids) do
        run("kill -CONT " .. pid .. " 2>/dev/null")
        for _ = 1, 100 do
            if not sh.alive(pid) then break end
            socket.sleep(0.1)
        end
        local n = tonumber((run("cat " .. q(prefix .. "/sharer-" .. i .. ".out")):match("^(%d+)")))
        if n then
            sharer_admits = sharer_admits + n
            sharers_done = sharers_done + 1
        end
    end
    local g = gw and gw:reconcile(state, log, log_complete)

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
    -- every appointment on the server was made by a create some process
    -- (or gateway client) knows of
    local known = {}
    for i = 1, PROCS do
        local r = results[i]
        if r then
            for code in pairs(r.records) do known[code] = true end
            for _, code in ipairs(r.unknown) do known[code] = true end
        end
    end
    for code in pairs(g and g.known or {}) do known[code] = true end
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
    if sharers_done < SHARERS then failures[#failures + 1] = "a limiter sharer did not finish" end
    for _, f in ipairs(g and g.failures or {}) do failures[#failures + 1] = f end

    local kinds = {}
    for k, v in pairs(by_kind) do kinds[#kinds + 1] = ("%s=%d"):format(k, v) end
    table.sort(kinds)
    io.write(("soak: wall %.0f s, %d calls (%d creates, %d reschedules, %d cancels), "
              .. "%d first-try ok, %d settled by a later call, %d unsettled\n"):format(
        wall, total.calls, total.creates, total.reschedules, total.cancels, total.ok_first,
        total.resolved, total.unresolved))
    io.write(("soak: %d requests seen by the sandbox%s, %d faulted (%.1f%%); errors by kind: %s\n")
             :format(seen, log_complete and "" or " (its log lost some)", faulted,
                     seen > 0 and 100 * faulted / seen or 0, table.concat(kinds, " ")))
    for i, m in ipairs(rss) do
        io.write(("soak: process %d RSS %d -> %d KiB, Lua heap %.0f -> %.0f KiB\n"):format(
            i, m[1], m[2], m[3] or 0, m[4] or 0))
    end
    io.write(("soak: limiter sharers (stopped and continued %d times) took %d slots; state file %s\n")
             :format(SECONDS * 4, sharer_admits, full and "on a full tmpfs" or "in the prefix"))
    for _, l in ipairs(g and g.lines or {}) do io.write(l, "\n") end
    for _, f in ipairs(failures) do io.write("soak: FAIL ", f, "\n") end
    local gf = g and g.fig
    io.write(("SOAK %s: %d processes, %d s, %d calls, %d requests, %.1f%% faulted, "
              .. "%d/%d records match the server, %d strays, longest call %.2f s (deadline 2 s), "
              .. "max RSS growth %d KiB; %s\n"):format(
        #failures == 0 and "PASS" or "FAIL", PROCS, SECONDS, total.calls, seen,
        seen > 0 and 100 * faulted / seen or 0, records - mismatches, records, strays, max_call,
        growth, gf and ("gateway %d %s, %d requests, %d answered, %d booked, %d mismatches")
                      :format(gw.reloads, gw.signal == "HUP" and "reloads" or "workers killed",
                              gf.requests, gf.answered, gf.booked,
                              gf.mismatches + gf.none_took + gf.doubled)
                  or "gateway skipped"))
    return #failures == 0 and 0 or 1
end

local ok, code = pcall(main)
cleanup()
if not ok then
    io.write("soak: FAIL the soak itself failed: ", tostring(code), "\n")
    io.write("SOAK FAIL: the soak did not finish\n")
    code = 2
end
os.exit(code)
