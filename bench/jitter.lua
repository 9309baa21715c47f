-- bench/jitter.lua: the transit guard's proof (issue 20). Hosts sharing one
-- budget through a real redis-server book appointments under full demand
-- on the sandbox at its strictest: a sliding window (`--sliding`) and every
-- request held a random 0-50 ms before it is counted (`--latency-ms 0-50`,
-- transit jitter). Counted on the sandbox's own log: 429s, the most
-- requests counted in any window, and the budget used. Run from the tree
-- (`make soak-redis-jitter`, spec/40-redis_budget_spec.lua).
--
--   lua5.4 bench/jitter.lua [SECONDS [PERIOD [PER_MINUTE [guard|noguard|both [HOSTS [PROCS]]]]]]
--
-- Defaults: 300 s, a 10 s window, 100 per window, both (the run with the
-- guard, then a control run without it: MEDIQUO_TEST_HOOKS and
-- MEDIQUO_TEST_NO_JITTER_GUARD, test-only), 3 hosts x 2 processes. Exit 0
-- when the guarded run has no 429 and used >= 99% of the budget, and the
-- control (when run) shows 429s. As a module: require("bench.jitter").run(o).

local H = require "spec.helper"
local R = require "spec.redis_helper"

local M = {}

local function sh_q(s) return H.shell_quote(s) end

-- starts one run (its workers run on their own) -> a handle for M.finish
function M.start(o)
    local seconds, period, per_minute = o.seconds, o.period, o.per_minute
    local hosts, procs = o.hosts or 3, o.procs or 2
    local burst = o.burst or math.min(60, per_minute)
    local srv = o.redis or (o.no_redis and { url = "-", stop = function() end }) or R.start()
    -- a sandbox of its own (`run` only tells it from a cached one)
    local sb = H.sandbox{ sliding = true, latency_ms = o.latency or "0-50",
                          per_minute = per_minute, window = period, run = H.uniq("jitter") }
    local tmp = H.run("mktemp -d /tmp/mediquo-jitter.XXXXXX"):gsub("%s+$", "")
    local key = H.uniq("jitter")
    local env = o.guard and "" or H.hooks_env("MEDIQUO_TEST_NO_JITTER_GUARD=1 ")
    local until_s = os.time() + seconds + 1
    local ws = {}
    for h = 1, hosts do
        local dir = tmp .. "/host" .. h
        H.run("mkdir -p " .. sh_q(dir))
        for p = 1, procs do
            local w = { out = ("%s/w%d-%d.out"):format(tmp, h, p) }
            local pid = H.run(("%slua5.4 bench/jitter/worker.lua %s %s %s %s %s %d %d %s %d %s %s "
                               .. ">%s.log 2>&1 & echo $!")
                :format(env, sh_q(w.out), sh_q(sb.base_url), sh_q(key), sh_q(dir), sh_q(srv.url),
                        per_minute, burst, tostring(period), until_s, ("h%dp%d"):format(h, p),
                        o.mode or "client", sh_q(w.out)))
            w.pid = assert(tonumber(pid:match("%d+")), pid)
            ws[#ws + 1] = w
        end
    end
    return { o = o, srv = srv, sb = sb, tmp = tmp, ws = ws, until_s = until_s }
end

-- waits for a started run's workers (bounded) and counts
-- -> { ok, http429, t429, counted, max_window, used, steady, windows, workers }
function M.finish(run)
    local o, srv, sb, tmp, ws = run.o, run.srv, run.sb, run.tmp, run.ws
    local seconds, period, per_minute = o.seconds, o.period, o.per_minute
    -- bounded: each worker ends at until_s, its last call within a deadline
    local limit = run.until_s + 2 * period + 15
    local res = { workers = {}, ok = 0 }
    for _, w in ipairs(ws) do
        local line
        for _ = 1, 100000 do
            line = H.read_file(w.out)
            if line or os.time() > limit then break end
            H.sleep(0.5)
        end
        if not line then
            H.run("kill -9 " .. w.pid .. " 2>/dev/null")
            line = "no answer: " .. (H.read_file(w.out .. ".log") or "")
        end
        res.workers[#res.workers + 1] = line:gsub("%s+$", "")
        res.ok = res.ok + (tonumber(line:match("^ok (%d+)")) or 0)
    end
    -- the sandbox's view: when each request was counted (its answer's time)
    local ts, n429, t429 = {}, 0, {}
    for _, e in ipairs(sb:api_log()) do
        if e.status == 429 then n429 = n429 + 1; t429[#t429 + 1] = e.time
        elseif e.method == "POST" then ts[#ts + 1] = e.time end
    end
    table.sort(ts)
    for i, t in ipairs(t429) do t429[i] = ("%.3f"):format(t - (ts[1] or t)) end
    res.t429 = t429
    res.http429, res.counted = n429, #ts
    res.max_window = H.max_in_window(ts, period)
    local t0 = ts[1] or 0
    local k = math.floor(seconds / period)
    res.windows = k
    res.used = H.count_between(ts, t0, t0 + k * period) / (k * per_minute)
    -- after the first window's burst: the steady rate
    res.steady = k > 1 and H.count_between(ts, t0 + period, t0 + k * period) / ((k - 1) * per_minute) or 0
    sb:stop()
    if not o.redis then srv:stop() end
    H.run("rm -rf " .. sh_q(tmp))
    return res
end

-- one run, start to finish
function M.run(o)
    return M.finish(M.start(o))
end

function M.report(name, r)
    print(("%s: %d counted, %d x 429, most in one window %d, used %.2f%% over %d windows "
           .. "(%.2f%% after the first)"):format(name, r.counted, r.http429, r.max_window,
           100 * r.used, r.windows, 100 * r.steady))
    if #r.t429 > 0 then print("  429s at (s after the first): " .. table.concat(r.t429, " ")) end
    for i, w in ipairs(r.workers) do print(("  worker %d: %s"):format(i, w)) end
end

-- The proof: the guarded run through the client (SECONDS), the same with
-- only the limiter between the hosts and the sandbox ("raw": nothing heeds
-- the server's headers), then both without the guard (the controls).
local function main(a)
    local o = { seconds = tonumber(a[1]) or 300, period = tonumber(a[2]) or 10,
                per_minute = tonumber(a[3]) or 100, hosts = tonumber(a[5]), procs = tonumber(a[6]) }
    local which = a[4] or "both"
    local short = math.min(o.seconds, 120)
    print(("jitter proof: %d hosts x %d processes, one Redis budget of %d per %g s, sandbox "
           .. "--sliding --latency-ms 0-50"):format(o.hosts or 3, o.procs or 2, o.per_minute, o.period))
    local pass = true
    local function leg(name, over, check)
        local x = {}
        for k, v in pairs(o) do x[k] = v end
        for k, v in pairs(over) do x[k] = v end
        local t0 = os.time()
        local r = M.run(x)
        M.report(("%s (%s, %d s, took %d s)"):format(name, x.mode or "client", x.seconds, os.time() - t0), r)
        local why = check(r)
        if why then
            print("FAIL: " .. name .. ": " .. why)
            pass = false
        end
        io.stdout:flush()
    end
    if which ~= "noguard" then
        leg("with the guard", { guard = true }, function(r)
            if r.http429 > 0 or r.used < 0.99 then return "a 429, or under 99% used" end
        end)
        leg("with the guard", { guard = true, mode = "raw", seconds = short }, function(r)
            if r.http429 > 0 then return "a 429" end
        end)
    end
    if which ~= "guard" then
        leg("control, no guard", { guard = false, seconds = math.min(o.seconds, 60) }, function(r)
            if r.http429 == 0 and r.used >= 0.99 then return "neither a 429 nor a loss" end
        end)
        leg("control, no guard", { guard = false, mode = "raw", seconds = short }, function(r)
            if r.http429 == 0 then return "no 429" end
        end)
    end
    print(pass and "PASS" or "FAIL")
    os.exit(pass and 0 or 1)
end

if arg and arg[0] and arg[0]:match("jitter%.lua$") then
    main(arg)
end

return M
