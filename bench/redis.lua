-- bench/redis.lua: the limiter across hosts through Redis (issue 15), with a
-- real redis-server on a random loopback port (spec/redis_helper.lua).
-- `make bench-redis`. Every loop is bounded in count and time.
--
--  1. cost of one admission, never waiting (per_minute = burst = 1,000,000):
--     the local limiter, the Redis limiter from 1 process, and from 4
--     processes of one host (leases shared through the lease file);
--     Redis round trips per admission from Redis's own command counts
--  2. a saturating run: 3 hosts x 2 processes (Lua 5.4 + LuaJIT), 600 per
--     6 s window, 4 windows: budget used and the worst window
--  3. the same run with Redis killed (-9) after 1.5 windows and restarted
--     empty 1.6 windows later: admitted starts next to the run without it
--
--   lua5.4 bench/redis.lua [worker URL KEY DIR N]

package.path = "./?.lua;" .. package.path
local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"

local NS = 1e9
local now = core.limiter_now
local N = tonumber(os.getenv("BENCH_REDIS_N")) or 20000

if arg[1] == "worker" then
    local url, key, dir, n = arg[2], arg[3], arg[4], tonumber(arg[5])
    local l = assert(limiter.new{ per_minute = 1000000, burst = 1000000, period = 60, key = key,
                                  dir = dir, redis = url ~= "-" and url or nil })
    print(string.format("%d %.0f", require("bench.admit")(l, n)))
    l:close()
    os.exit(0)
end

local tmp = H.run("mktemp -d /tmp/mediquo-bench-redis.XXXXXX"):gsub("%s+$", "")
local srv = R.start()
local function evalsha_calls()
    local out = srv:cli("INFO commandstats")
    local n = 0
    for name, calls in out:gmatch("cmdstat_(%w+):calls=(%d+)") do
        if name == "evalsha" or name == "eval" then n = n + tonumber(calls) end
    end
    return n
end

local function run_workers(k, url, key, dir, n)
    local outs = {}
    for i = 1, k do
        outs[i] = string.format("%s/bw-%s-%d.out", tmp, key, i)
        H.run(string.format("lua5.4 bench/redis.lua worker '%s' '%s' '%s' %d >%s 2>&1 &", url, key, dir, n, outs[i]))
    end
    local got, worst = 0, 0
    for i = 1, k do
        local s
        for _ = 1, 1200 do
            s = H.read_file(outs[i])
            if s and s:match("^%d+ %d+") then break end
            H.sleep(0.1)
        end
        local g, ns = s:match("^(%d+) (%d+)")
        got = got + tonumber(g)
        if tonumber(ns) > worst then worst = tonumber(ns) end
    end
    return got, worst
end

print("== 1. cost of one admission (no waiting), " .. N .. " per process")
print(string.format("%-38s %12s %14s %12s", "", "us/admission", "admissions/s", "RT/admission"))
local rows = {
    { "local limiter, 1 process", 1, "-" },
    { "redis limiter, 1 process", 1, srv.url },
    { "local limiter, 4 processes of a host", 4, "-" },
    { "redis limiter, 4 processes of a host", 4, srv.url },
}
for i, r in ipairs(rows) do
    local dir = tmp .. "/c" .. i
    H.run("mkdir -p " .. dir)
    local c0 = evalsha_calls()
    local got, ns = run_workers(r[2], r[3], "bench-cost-" .. i .. "-" .. now(), dir, N)
    local calls = evalsha_calls() - c0
    print(string.format("%-38s %12.1f %14.0f %12s", r[1], ns / 1e3 / (got / r[2]), got / (ns / NS),
                        r[3] == "-" and "-" or string.format("%.3f", calls / got)))
end

-- 3 hosts x 2 processes hammering one key (spec/redis_worker.lua)
local function fleet(c, outage)
    local ws = {}
    local t_start = now()
    local until_ns = t_start + c.windows * c.period * NS
    for h = 1, 3 do
        local dir = tmp .. "/" .. c.key .. "-h" .. h
        H.run("mkdir -p " .. dir)
        for p = 1, 2 do
            local luajit = (h + p) % 2 == 1
            local out = string.format("%s/%s-%d-%d.log", tmp, c.key, h, p)
            local env = luajit and string.format("LUA_PATH='%s/lua/?.lua;;' LUA_CPATH='%s/build/luajit/?.so;;' ",
                                                 H.root, H.root) or ""
            H.run(string.format("%s%s spec/redis_worker.lua %s '%s' '%s' %d %d %d %.0f '%s' 0.5 >/dev/null 2>&1 &",
                                env, luajit and "luajit" or "lua5.4", out, c.key, dir, c.per_minute, c.burst,
                                c.period, until_ns, srv.url))
            ws[#ws + 1] = out
        end
    end
    if outage then
        H.sleep(1.5 * c.period)
        srv:kill9()
        H.sleep(1.6 * c.period)
        srv:restart()
    end
    H.sleep((until_ns - now()) / NS + 1)
    local ts = {}
    for _, out in ipairs(ws) do
        for _ = 1, 100 do
            local s = H.read_file(out) or ""
            if s:match("done\n$") then break end
            H.sleep(0.1)
        end
        for t in (H.read_file(out) or ""):gmatch("t (%d+)") do ts[#ts + 1] = tonumber(t) end
    end
    table.sort(ts)
    local P, best, j = c.period * NS, 0, 1
    for i = 1, #ts do
        while ts[i] - ts[j] >= P do j = j + 1 end
        if i - j + 1 > best then best = i - j + 1 end
    end
    local first = ts[1] or 0
    local full = 0
    for _, t in ipairs(ts) do if t < first + (c.windows - 1) * P then full = full + 1 end end
    return #ts, best, full
end

local c = { per_minute = 600, burst = 60, period = 6, windows = 4 }
print()
print(string.format("== 2. saturating run: 3 hosts x 2 processes (Lua 5.4 + LuaJIT), %d per %d s window, %d windows",
                    c.per_minute, c.period, c.windows))
c.key = "bench-sat-" .. now()
local rt0 = evalsha_calls()
local total, worst, full = fleet(c)
local rts = evalsha_calls() - rt0
local ideal = c.per_minute * (c.windows - 1)
print(string.format("admitted %d; worst window %d (limit %d); first %d windows: %d of %d = %.2f%% used",
                    total, worst, c.per_minute, c.windows - 1, full, ideal, 100 * full / ideal))
print(string.format("Redis round trips: %d, %.2f per admission (6 processes, 3 hosts, waiting included)",
                    rts, rts / total))

print()
print("== 3. the same run, Redis killed (-9) at 1.5 windows, restarted empty 1.6 windows later")
c.key = "bench-outage-" .. now()
local total2, worst2, full2 = fleet(c, true)
print(string.format("admitted %d; worst window %d (limit %d); first %d windows: %d of %d",
                    total2, worst2, c.per_minute, c.windows - 1, full2, ideal))
print(string.format("the outage cost %d admissions (%.2f windows of budget) next to the run without it",
                    total - total2, (total - total2) / c.per_minute))

srv:stop()
H.run("rm -rf '" .. tmp .. "'")
local ok = worst <= c.per_minute and worst2 <= c.per_minute and full >= 0.99 * ideal
print(ok and "claims met: worst windows <= limit, >= 99% used" or "CLAIM NOT MET")
os.exit(ok and 0 or 1)
