-- spec/28-redis_limiter_spec.lua: one budget across hosts through Redis
-- (issue 15), with real redis-server processes on random loopback ports
-- (spec/redis_helper.lua) and real worker processes (spec/redis_worker.lua):
-- a "host" is a set of processes sharing one dir. Start times are the
-- limiter's own (CLOCK_MONOTONIC ns), one clock for every simulated host.
-- Every run is bounded in time (periods of 2-3 s); the file takes ~1 min.

local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local HA = require "spec.redis_ha_helper"

local NS = 1e9
local now = core.limiter_now

local tmp
local nkey = 0
local mkdir = H.mkdir

local function newkey() nkey = nkey + 1; return string.format("rspec-%d-%d", nkey, now()) end

-- the most starts in any half-open window [t, t + period)
local max_in_window = H.max_in_window

local count_between = H.count_between

-- 3 hosts x 2 processes, Lua 5.4 and LuaJIT mixed, until until_ns (url
-- nil: no Redis); spec/redis_ha_helper.lua's fleet, in a dir of its own
local nfleet = 0
local function fleet(c, url, until_ns, max_wait)
    nfleet = nfleet + 1
    return HA.fleet(("%s/f%d"):format(tmp, nfleet), c, url or "-", until_ns, max_wait)
end

describe("rate_limit.redis", function()
    local srv

    setup(function() tmp, srv = H.tmpdir("rspec"), R.start() end)
    teardown(function() R.cleanup(tmp, srv) end)

    describe("options", function()
        it("refuses a URL that is not Redis, before anything runs", function()
            for _, u in ipairs{ "http://127.0.0.1:6379", "redis://", "redis://h:0", "redis://h:99999",
                                "redis://h/x", "unix://relative.sock", "redis-sentinel://h",
                                "redis-cluster://h/3", 42 } do
                local l, err = limiter.new{ key = newkey(), dir = tmp, redis = u }
                assert.is_nil(l, tostring(u))
                assert.equal("invalid_argument", err.kind)
                assert.matches("rate_limit.redis", err.message, 1, true)
            end
            local l, err = limiter.new{ key = newkey(), dir = tmp, redis = srv.url, fallback_per_minute = 601 }
            assert.is_nil(l)
            assert.matches("fallback_per_minute", err.message, 1, true)
        end)

        it("reads every URL form, and keeps no password in what it shows", function()
            local u = assert(core.redis_url("redis://mq:p%40ss@10.0.0.5:6380/3"))
            assert.same({ "10.0.0.5", 6380, 3, "10.0.0.5:6380", true },
                        { u.host, u.port, u.db, u.where, u.auth })
            u = assert(core.redis_url("redis://[::1]"))
            assert.same({ "::1", 6379, 0 }, { u.host, u.port, u.db })
            u = assert(core.redis_url("unix:///run/redis/redis.sock?db=2"))
            assert.same({ "/run/redis/redis.sock", 2, false }, { u.path, u.db, u.auth })
            for _, v in pairs(u) do assert.is_nil(tostring(v):find("p@ss", 1, true)) end
            local _, why = core.redis_url("redis://:s3cr3t@h:70000")
            assert.is_nil(why:find("s3cr3t", 1, true))
        end)

        it("status says backend, degraded, hosts", function()
            local l = assert(limiter.new{ key = newkey(), dir = tmp, redis = srv.url, per_minute = 60 })
            local st = l:status()
            assert.equal("redis", st.backend)
            assert.is_false(st.degraded)
            assert.equal(1, st.hosts)
            assert.is_nil(st.error)
            l:close()
            local loc = assert(limiter.new{ key = newkey(), dir = tmp })
            assert.equal("local", loc:status().backend)
            loc:close()
        end)

        it("an unreachable Redis is no error at creation: degraded, with the reason", function()
            local l = assert(limiter.new{ key = newkey(), dir = tmp, redis = "redis://127.0.0.1:1" })
            local st = l:status()
            assert.is_true(st.degraded)
            assert.matches("127.0.0.1:1 unreachable", st.error, 1, true)
            l:close()
        end)
    end)

    describe("3 hosts x 2 processes (Lua 5.4 and LuaJIT) on one key", function()
        it("never more than per_minute in any window, >= 99% used, every host served", function()
            local c = { key = newkey(), per_minute = 60, burst = 10, period = 3 }
            local P = c.period * NS
            local until_ns = now() + 3 * P + 1.0 * NS
            local f = fleet(c, srv.url, until_ns)
            f:wait(40)
            local ts, late, raised, _, _, per_host = f:collect()
            assert.same({}, raised)
            assert.same({}, late)
            local t0 = ts[1]
            assert.equal(60, max_in_window(ts, P))
            local used = count_between(ts, t0, t0 + 3 * P)
            assert.truthy(used >= 0.99 * 180, "only " .. used .. " of 180 in 3 windows")
            for h = 1, 3 do
                assert.truthy(per_host[h] > 0, "host " .. h .. " starved")
            end
        end)

        it("the same run without Redis: every host spends the whole budget (the spec can fail)", function()
            local c = { key = newkey(), per_minute = 60, burst = 10, period = 3 }
            local P = c.period * NS
            local f = fleet(c, nil, now() + 1.5 * P)
            f:wait(30)
            local ts = f:collect()
            assert.truthy(max_in_window(ts, P) > 60, "max " .. max_in_window(ts, P))
        end)
    end)

    describe("the server's word", function()
        it("a 429 seen by one host pauses the others", function()
            local key = newkey()
            local a = assert(limiter.new{ key = key, dir = mkdir(tmp .. "/pa"), redis = srv.url, per_minute = 60 })
            local b = assert(limiter.new{ key = key, dir = mkdir(tmp .. "/pb"), redis = srv.url, per_minute = 60 })
            assert.is_true(b:acquire(0.5))
            a.core:pause(2)                        -- what a 429 with Retry-After: 2 does
            local t0 = now()
            local ok, err = b:acquire(0.5)
            assert.is_nil(ok)
            assert.equal("rate_limited", err.kind)
            assert.truthy(err.retry_after > 1, tostring(err.retry_after))
            assert.truthy((now() - t0) / NS < 0.8)
            a:close()
            b:close()
        end)

        it("a real 429 from the API, seen by one host's client, holds back the other host's", function()
            local mediquo = require "mediquo"
            local sb = H.sandbox{}
            sb:reset()
            local key = newkey()
            local function client(d)
                return assert(mediquo.new{
                    api_key = H.api_key, secret_key = H.secret_key, base_url = sb.base_url,
                    max_retries = 0, deadline = 5,
                    rate_limit = { key = key, dir = mkdir(tmp .. d), redis = srv.url, max_wait = 0.5 } })
            end
            local function booking(tag)
                return { code = tag .. "-" .. now(), starts_at = "2030-05-20T12:00:00Z",
                         patient = "P1", professional = "prof-demo-1" }
            end
            local a, b = client("/ca"), client("/cb")
            sb:faults{ mode = "ratelimit", seconds = 3, next = 1 }
            local _, err = a:create(booking("a"))
            assert.equal("rate_limited", err.kind)
            assert.equal(429, err.status)
            local ok, err2 = b:create(booking("b"))       -- another host: never sent
            assert.is_nil(ok)
            assert.equal("rate_limited", err2.kind)
            assert.is_nil(err2.status)
            assert.equal(1, #sb:api_log())
            a:close()
            b:close()
        end)

        it("x-ratelimit-remaining: 0 seen by one host pauses the others", function()
            local key = newkey()
            local a = assert(limiter.new{ key = key, dir = mkdir(tmp .. "/oa"), redis = srv.url, per_minute = 60 })
            local b = assert(limiter.new{ key = key, dir = mkdir(tmp .. "/ob"), redis = srv.url, per_minute = 60 })
            a.core:observe(0, 60, 2)
            local ok, err = b:acquire(0.3)
            assert.is_nil(ok)
            assert.equal("rate_limited", err.kind)
            a:close()
            b:close()
        end)
    end)

    describe("Redis killed mid-run and restarted empty", function()
        -- kill -9 after 1.5 periods, restart (same port, nothing kept) 1.6
        -- periods later: the hosts see it gone, wait out the quarantine,
        -- start on their fallback shares, then hand back what they started
        local function outage(c)
            local P = c.period * NS
            local t_start = now()
            local until_ns = t_start + 6 * P
            local f = fleet(c, srv.url, until_ns, 0.5)
            H.sleep(1.5 * c.period)
            srv:kill9()
            H.sleep(1.6 * c.period)
            srv:restart()
            f:wait(40)
            local ts, late, raised, seen = f:collect()
            if os.getenv("RSPEC_DEBUG") then
                print(("\n    max %d; %s"):format(max_in_window(ts, P), f:timeline(t_start, 6 * c.period)))
            end
            return ts, late, raised, seen, t_start, until_ns
        end

        it("no call past max_wait, nothing raises, degraded then not, worst window <= limit", function()
            local c = { key = newkey(), per_minute = 60, burst = 10, period = 2 }
            local P = c.period * NS
            local ts, late, raised, seen, t_start, until_ns = outage(c)
            assert.same({}, raised)
            assert.same({}, late)
            assert.truthy(max_in_window(ts, P) <= 60, "window exceeded: " .. max_in_window(ts, P))
            for i, s in ipairs(seen) do
                assert.equal("1", s[1], "worker " .. i .. " never degraded")
                assert.equal("0", s[#s], "worker " .. i .. " still degraded at the end")
            end
            -- the budget was spent before, during (fallback) and after the outage
            assert.truthy(count_between(ts, t_start, t_start + 1.5 * P) > 0)
            assert.truthy(count_between(ts, t_start + 2.55 * P, t_start + 3.05 * P) > 0, "no fallback")
            assert.truthy(count_between(ts, t_start + 5 * P, until_ns) > 0)
        end)

        it("without the quarantine and the hand-back the same outage breaks the window", function()
            -- whether one run breaks depends on where the last starts before
            -- the kill fall against the first after the restart (CI run 10
            -- saw max 60 of 60): a run that did not is made once more
            -- (HA.breaks_once, as the controls of specs 36 and 38)
            HA.breaks_once(function()
                local c = { key = newkey(), per_minute = 60, burst = 10, period = 2,
                            env = H.hooks_env("MEDIQUO_TEST_REDIS_UNSAFE=1 ") }
                return { ts = outage(c), P = c.period * NS, limit = 60, info = "Redis killed and restarted empty" }
            end, "28", pending)
        end)
    end)

    describe("the script, after nobody called for almost a quarantine", function()
        -- The script itself (core.redis_script(), run by redis-cli --eval),
        -- two hosts A and B on a budget of period 1 s, lease 20 ms: a host
        -- starts on its fallback period + lease + horizon (1.27 s) after its
        -- first failure and tries Redis again every 500 ms, so a host back
        -- from an outage after more than 1.27 - 0.5 - 0.1 s of silence from
        -- everyone may meet one still on its fallback: no grant until every
        -- host has called (spec 36's demotion broke its window so: 47 of 40)
        local file
        local function call(key, host, want, known, up, recf)
            local keys = {}
            for _, k in ipairs{ "s", "log", "hosts", "rec" } do keys[#keys + 1] = ("{%s}:%s"):format(key, k) end
            local argv = { "L", host, "60", "10", "1000", "20", tostring(want), "2", up or "-", recf or "0",
                           tostring(known or 0), "60000", "30000", "-1", "-1", "0", "500" }
            for i, a in ipairs(argv) do argv[i] = H.shell_quote(a) end
            local out = srv:cli("--eval " .. H.shell_quote(file) .. " " .. table.concat(keys, " ") .. " , "
                                .. table.concat(argv, " "))
            local v = {}
            for n in out:gmatch("(-?%d+)") do v[#v + 1] = tonumber(n) end
            assert(#v >= 8, "the script answered: " .. out)
            return { grant = v[1], epoch = v[4], learning = v[5] }
        end
        -- A and B register (the first contact of a new state: both hand back
        -- nothing), then speak; B comes back after `gap` s of silence, away
        -- (degraded: "d") unless recf says otherwise
        local function back_after(gap, up, recf)
            local key = newkey()
            local e = call(key, "A", 0, 0, "").epoch
            call(key, "B", 0, 0, "")
            assert.equal(1, call(key, "A", 1, e).grant)
            H.sleep(gap)
            return call(key, "B", 1, e, up, recf or "d"), key, e
        end
        setup(function()
            file = tmp .. "/script.lua"
            local f = assert(io.open(file, "w"))
            f:write(core.redis_script())
            f:close()
        end)

        it("after 1.1 s: B gets nothing until A has called; after 0.2 s B is granted at once", function()
            local r, key, e = back_after(1.1)
            assert.equal(0, r.grant)
            assert.equal(1, r.learning)
            assert.equal(1, call(key, "A", 1, e).grant, "A called: the learning ends")
            assert.equal(1, call(key, "B", 1, e).grant)
            r = back_after(0.2)
            assert.equal(1, r.grant)
            assert.equal(0, r.learning)
        end)

        it("a quiet fleet is no outage: B, not away, granted at once after 1.1 s", function()
            local r = back_after(1.1, nil, "0")
            assert.equal(1, r.grant)
            assert.equal(0, r.learning)
        end)

        it("the control (the test hook's \"!\", the mechanisms off): B granted after 1.1 s", function()
            local r = back_after(1.1, "!")
            assert.equal(1, r.grant)
        end)
    end)

    describe("authentication", function()
        local sec

        setup(function()
            sec = R.start{ "--requirepass", "s3cret-pw" }
            sec:cli("ACL SETUSER mq on '>mq-pw' '~{mq:*' -@all +auth +select +evalsha +eval "
                    .. "'+script|load' +time +hmget +hset +del +zadd +zremrangebyscore +zcard "
                    .. "+zrangebyscore +zrange +sadd +scard +pexpire", "s3cret-pw")
        end)
        teardown(function() if sec then sec:stop() end end)

        it("requirepass and an ACL user allowed only the limiter's commands", function()
            for _, u in ipairs{ "redis://:s3cret-pw@127.0.0.1:" .. sec.port,
                                "redis://mq:mq-pw@127.0.0.1:" .. sec.port } do
                local l, err = limiter.new{ key = newkey(), dir = tmp, redis = u, per_minute = 60 }
                assert.truthy(l, tostring(err))
                assert.is_true(l:acquire(0.5))
                local st = l:status()
                assert.is_false(st.degraded, st.error)
                l:close()
            end
        end)

        it("a wrong password or none: config error naming the problem, never the password", function()
            local cases = {
                { "redis://:not-it-pw@127.0.0.1:" .. sec.port, "refused AUTH" },
                { "redis://mq:not-it-pw@127.0.0.1:" .. sec.port, "refused AUTH as user mq" },
                { "redis://127.0.0.1:" .. sec.port, "needs a password" },
            }
            for _, case in ipairs(cases) do
                local l, err = limiter.new{ key = newkey(), dir = tmp, redis = case[1] }
                assert.is_nil(l)
                assert.equal("config", err.kind)
                assert.matches(case[2], err.message, 1, true)
                assert.is_nil(tostring(err):find("not-it-pw", 1, true))
                assert.is_nil(tostring(err):find("s3cret", 1, true))
            end
        end)

        it("a server that is not Redis is named as such", function()
            local sb = H.sandbox{}
            local port = sb.base_url:match(":(%d+)")
            local l, err = limiter.new{ key = newkey(), dir = tmp, redis = "redis://127.0.0.1:" .. port }
            assert.is_nil(l)
            assert.equal("config", err.kind)
            assert.matches("does not speak the Redis protocol", err.message, 1, true)
        end)
    end)

    describe("a retry whose answer never came", function()
        -- spec/redis_unsure.lua: Redis refuses writes (-OOM), the quarantine
        -- passes, the host starts on its fallback; then Redis stalls (DEBUG
        -- SLEEP) and a retry's script goes out unanswered within
        -- redis_timeout. Redis runs it after the stall: it may count the
        -- host as back and grant the others while the host, not knowing,
        -- goes on with its fallback (spec 36's demotion: a timed-out retry,
        -- then 10 fallback starts beside the others' grants). So no fallback
        -- start until the next try tells; the control has it at once.
        local function run(env, k)
            local out = H.run(("%slua5.4 spec/redis_unsure.lua %d %s %s 2>&1"):format(
                env or "", srv.port, newkey(), mkdir(tmp .. "/unsure" .. k)))
            local r = {}
            for name, rest in out:gmatch("(%a+) ([^\n]*)") do r[name] = rest end
            return r, out
        end

        it("no start on the fallback until the next try; back on Redis after the stall", function()
            local r, out = run(nil, 1)
            assert.equal("true", r.open, out)
            assert.equal("true", r.oom, out)
            assert.equal("true", r.fallback, out)
            assert.matches("^nil .*timed_out", r.unsure, out)
            assert.equal("true false", r.back, out)
        end)

        it("the control (the test hook, the mechanisms off): the fallback admits at once", function()
            local r, out = run(H.hooks_env("MEDIQUO_TEST_REDIS_UNSAFE=1 "), 2)
            assert.equal("true", r.fallback, out)
            assert.matches("^true .*timed_out", r.unsure, out)
        end)
    end)

    describe("a stalled Redis (DEBUG SLEEP)", function()
        it("never stalls a call past its max_wait", function()
            local l = assert(limiter.new{ key = newkey(), dir = mkdir(tmp .. "/st"), redis = srv.url,
                                          per_minute = 600, burst = 1 })
            assert.is_true(l:acquire(0.5))
            H.run("redis-cli -p " .. srv.port .. " DEBUG SLEEP 2 >/dev/null 2>&1 &")
            H.sleep(0.2)
            local worst = 0
            for _ = 1, 5 do
                local t0 = now()
                l:acquire(0.3)
                local took = (now() - t0) / NS
                if took > worst then worst = took end
            end
            assert.truthy(worst < 0.3 + 0.2, "a call took " .. worst .. " s")
            H.sleep(2)
            l:close()
        end)
    end)
end)
