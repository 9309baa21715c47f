-- spec/40-redis_budget_spec.lua: what a call on a Redis budget is owed
-- (issue 20), with real redis-server processes (spec/redis_helper.lua),
-- real nginx and the real sandbox:
--  * a call's decision: acquire(0), try() and max_wait = 0 admit whenever
--    the budget has room, in scripts, in several processes of one host at
--    once, and in nginx (ngx_limiter.wait on cosockets);
--  * asking ahead (nginx): a lease grown under demand asked for again at
--    half spent (or sooner, when at its rate what is left lasts < 4 ms),
--    so that calls do not wait for its round trip (10x fewer
--    than with it off, the control), within the budget all the same;
--  * degraded (Redis gone, the quarantine), a refused call's retry_after
--    is the real wait, not 1 ms;
--  * the transit guard: a start frees its slot period + guard after it
--    (local rule); 3 hosts on one Redis budget at full demand on the
--    sandbox at its strictest (--sliding --latency-ms 0-50): no 429 and
--    >= 99% of the budget used; without the guard (the test-only
--    MEDIQUO_TEST_NO_JITTER_GUARD) the jitter shows (bench/jitter.lua, the
--    shortened `make soak-redis-jitter`). ~2.7 min, most of it that run.

local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local NH = require "spec.ngx_helper"
local J = require "bench.jitter"

local NS = 1e9
local now = core.limiter_now

local tmp
local nkey = 0
local function newkey() nkey = nkey + 1; return string.format("b40-%d-%d", nkey, now()) end
local mkdir = H.mkdir

-- nginx with one worker whose timer runs vars.BODY once on a limiter of
-- 30 per 3 s (burst 30) on vars.URL's budget (NH.budget_host) -> its lines
local function nginx_run(vars)
    local prefix = NH.tmpdir("b40-ngx")
    vars.WORKERS, vars.PM, vars.BURST, vars.PERIOD, vars.OUT = 1, 30, 30, 3, prefix .. "/out"
    local pid = NH.budget_host(prefix, vars)
    local ls
    for _ = 1, 200 do                   -- 10 s at most
        ls = H.lines(prefix .. "/out-1.log")
        if ls[#ls] == "done" or (ls[1] or ""):match("^error") then break end
        H.sleep(0.05)
    end
    H.stop_nginx(pid, "QUIT")
    H.run("rm -rf '" .. prefix .. "'")
    return ls
end

describe("a Redis budget (issue 20)", function()
    local srv

    setup(function() tmp, srv = H.tmpdir("b40"), R.start() end)
    teardown(function() R.cleanup(tmp, srv) end)

    describe("a call's decision: acquire(0), try(), max_wait = 0", function()
        it("admit on an idle budget, up to its room, then refuse with the real wait", function()
            local key = newkey()
            local l = assert(limiter.new{ key = key, dir = mkdir(tmp .. "/d1"), redis = srv.url,
                                          per_minute = 10, burst = 10, period = 3 })
            for i = 1, 5 do
                local ok, err = l:acquire(0)
                assert.is_true(ok, "acquire(0) #" .. i .. ": " .. tostring(err))
            end
            for i = 1, 5 do assert.is_true((l:try()), "try #" .. i) end
            -- the room is spent: refused at once, retry_after about the window
            local t0 = now()
            local ok, err = l:acquire(0)
            assert.is_nil(ok)
            assert.equal("rate_limited", err.kind)
            assert.truthy(err.retry_after > 1 and err.retry_after <= 3.2, err.retry_after)
            assert.truthy((now() - t0) / NS < 0.25)
            -- a limiter whose max_wait is 0, another host on the same budget
            local l2 = assert(limiter.new{ key = newkey(), dir = mkdir(tmp .. "/d2"), redis = srv.url,
                                           per_minute = 10, period = 3, max_wait = 0 })
            for i = 1, 5 do assert.is_true((l2:acquire()), "max_wait = 0 #" .. i) end
            l:close()
            l2:close()
        end)

        it("three processes of one host at once, acquire(0) in a loop: the whole room, never more", function()
            local key, dir = newkey(), mkdir(tmp .. "/d3")
            local until_ns = now() + 1.2 * NS
            local ws = {}
            for i = 1, 3 do
                local out = ("%s/z%d.log"):format(tmp, i)
                H.run(("lua5.4 spec/redis_worker.lua %s '%s' '%s' 30 30 3 %.0f '%s' 0 >%s.stdout 2>&1 &")
                      :format(out, key, dir, until_ns, srv.url, out))
                ws[i] = out
            end
            local n, done = 0, 0
            for _ = 1, 200 do
                done, n = 0, 0
                for _, out in ipairs(ws) do
                    local ls = H.lines(out)
                    if ls[#ls] == "done" then done = done + 1 end
                    for _, s in ipairs(ls) do if s:match("^t ") then n = n + 1 end end
                end
                if done == 3 then break end
                H.sleep(0.1)
            end
            assert.equal(3, done)
            -- 1.2 s < the 3 s window: every slot of it, and not one more
            assert.equal(30, n)
        end)

        it("in nginx: ngx_limiter.wait(lim, 0) admits on an idle budget, 8 requests at once too", function()
            local ls = nginx_run{ URL = srv.url, KEY = newkey(), DIR = mkdir(tmp .. "/n1"), BODY = [[
                for i = 1, 5 do
                    local ok, _, retry = nl.wait(lim, 0, cfg.redis)
                    log((ok and "ok " or "refused ") .. i .. " " .. tostring(retry))
                end
                local n = 0
                local ths = {}
                for i = 1, 8 do
                    ths[i] = ngx.thread.spawn(function() return (nl.wait(lim, 0, cfg.redis)) end)
                end
                for i = 1, 8 do
                    local _, ok = ngx.thread.wait(ths[i])
                    if ok then n = n + 1 end
                end
                log("at once " .. n)
                local ok, _, retry = nl.wait(lim, 0, cfg.redis)
                for _ = 1, 40 do
                    if not ok then break end
                    ok, _, retry = nl.wait(lim, 0, cfg.redis)
                end
                log("spent " .. tostring(ok) .. " " .. tostring(retry))
            ]] }
            assert.equal("done", ls[#ls], table.concat(ls, "\n"))
            for i = 1, 5 do assert.matches("^ok " .. i, ls[i]) end
            assert.equal("at once 8", ls[6])
            -- the room spent (30): refused with a real wait
            local retry = tonumber(ls[7]:match("^spent false (%S+)"))
            assert.truthy(retry and retry > 0.5, ls[7])
        end)
    end)

    describe("asking ahead (mediquo.ngx_redis, a lease grown under demand)", function()
        -- one nginx, 2 workers, 8 requests each spending the budget for
        -- 1.5 s, as under load (1 ms of "API" after each start): the
        -- starts ("t <ns>"), and the calls that slept for a slot
        local function spend(v, ahead)
            local prefix = NH.tmpdir("b40-ahead")
            v.WORKERS, v.OUT, v.URL, v.KEY = 2, prefix .. "/out", srv.url, newkey()
            v.DIR = mkdir(tmp .. "/ahead-" .. v.KEY)
            v.BODY = ([[
                require("mediquo.ngx_redis").ahead = %s
                local stop, ths, waits = core.limiter_now() + 1.5e9, {}, 0
                local starts = {}
                for i = 1, 8 do
                    ths[i] = ngx.thread.spawn(function()
                        while core.limiter_now() < stop do
                            local ok, waited, _, _, at = nl.wait(lim, 0.5, cfg.redis)
                            if ok then starts[#starts + 1] = at end
                            if waited > 0 then waits = waits + 1 end
                            ngx.sleep(0.001)
                        end
                    end)
                end
                for i = 1, 8 do ngx.thread.wait(ths[i]) end
                for _, at in ipairs(starts) do log(string.format("t %%.0f", at)) end
                log("waits " .. waits)
            ]]):format(tostring(ahead))
            local pid = NH.budget_host(prefix, v)
            local ls = {}
            for _ = 1, 200 do                   -- 10 s at most
                local a, b = H.lines(prefix .. "/out-1.log"), H.lines(prefix .. "/out-2.log")
                if a[#a] == "done" and b[#b] == "done" then
                    for _, l in ipairs(b) do a[#a + 1] = l end
                    ls = a
                    break
                end
                H.sleep(0.05)
            end
            H.stop_nginx(pid, "QUIT")
            H.run("rm -rf '" .. prefix .. "'")
            local ts, waits = {}, 0
            for _, l in ipairs(ls) do
                local t, w = l:match("^t (%d+)"), l:match("^waits (%d+)")
                if t then ts[#ts + 1] = tonumber(t) end
                if w then waits = waits + tonumber(w) end
            end
            table.sort(ts)
            return ts, waits, #ls
        end

        it("a budget the load cannot reach: 10x fewer calls wait for the next lease than without "
           .. "(the control, ahead off)", function()
            local v = { PM = 1000000, BURST = 100, PERIOD = 1 }
            local ts, waits, n = spend(v, true)
            local ts0, waits0, n0 = spend(v, false)
            assert.truthy(#ts > 1000 and #ts0 > 1000, n .. " lines, " .. n0 .. " without")
            -- without: every spent lease (100 starts) has the calls that
            -- came during its round trip sleep for a slot (>= 1 ms each)
            assert.truthy(waits0 >= 50, "without asking ahead: " .. waits0 .. " waits in " .. #ts0)
            print(("\n    asking ahead: %d waits in %d starts; without: %d in %d"):format(waits, #ts, waits0, #ts0))
            assert.truthy(waits * 10 <= waits0, "asking ahead: " .. waits .. " waits in " .. #ts
                          .. ", without: " .. waits0 .. " in " .. #ts0)
        end)

        it("a budget the load spends: never more than per_minute in a window", function()
            local v = { PM = 3000, BURST = 300, PERIOD = 1 }
            local ts = spend(v, true)
            assert.truthy(#ts >= 3000, #ts .. " starts")
            assert.truthy(H.max_in_window(ts, NS) <= 3000, "max in a 1 s window " .. H.max_in_window(ts, NS))
        end)
    end)

    describe("a lease past the burst (a fast budget, a small burst)", function()
        -- 2 hosts of 2 processes (spec/redis_worker.lua, acquire, then
        -- 0.2 ms of "work": ~15,000 starts a second in all) on 100,000 per
        -- 1 s, burst 5, for 2 s: a budget the load does not reach, whose
        -- lease may hold what the rule's pacing starts in its life (20 ms:
        -- 5 + 1,024 slots at most, lease_most in src/limiter_redis.c);
        -- env: the workers' environment (the test build either way)
        local PM, BURST, SECS = 100000, 5, 2
        local function evals()
            local n = 0
            for c in srv:cli("INFO commandstats"):gmatch("cmdstat_evals?h?a?:calls=(%d+)") do n = n + tonumber(c) end
            return n
        end
        local function run(env, tag)
            local key, ws, e0 = newkey(), {}, evals()
            local until_ns = now() + SECS * NS
            for h = 1, 2 do
                local dir = mkdir(("%s/past-%s-%d"):format(tmp, tag, h))
                for p = 1, 2 do
                    local out = ("%s/past-%s-%d-%d.log"):format(tmp, tag, h, p)
                    H.run(("%slua5.4 spec/redis_worker.lua %s '%s' '%s' %d %d 1 %.0f '%s' 0.5 0.0002 >%s.stdout 2>&1 &")
                          :format(env, out, key, dir, PM, BURST, until_ns, srv.url, out))
                    ws[#ws + 1] = out
                end
            end
            local all = {}
            for _, out in ipairs(ws) do
                local ls
                for _ = 1, 200 do               -- 10 s at most
                    ls = H.lines(out)
                    if ls[#ls] == "done" or (ls[1] or ""):match("^error") then break end
                    H.sleep(0.05)
                end
                assert.equal("done", ls[#ls], out .. ": " .. tostring(ls[1]))
                for _, l in ipairs(ls) do
                    local t = l:match("^t (%d+)")
                    if t then all[#all + 1] = tonumber(t) end
                    assert.falsy(l:match("^raise") or l:match("^late") or l:match("^degraded 1"), out .. ": " .. l)
                end
            end
            table.sort(all)
            local rt = (evals() - e0) / math.max(#all, 1)
            print(("\n    %s: %d starts, %.4f round trips a start"):format(tag, #all, rt))
            return #all, rt
        end

        it("a round trip per many bursts (leases past the burst); held to the burst, the control, "
           .. "one per 5 starts or more", function()
            -- (CI run 22: under ASan a worker went degraded, and the
            -- fallback's starts make no round trip)
            if H.sanitized(pending, "counted under load") then return end
            local n, rt = run(H.hooks_env(""), "past")
            assert.truthy(n >= 5000, n .. " starts in " .. SECS .. " s")
            assert.truthy(rt < 1 / (4 * BURST), rt .. " round trips a start")
            local n0, rt0 = run(H.hooks_env("MEDIQUO_TEST_REDIS_LEASE_MOST=" .. BURST .. " "), "held")
            assert.truthy(n0 >= 5000, n0 .. " starts in " .. SECS .. " s (the control)")
            assert.truthy(rt0 >= 1 / BURST, rt0 .. " round trips a start with leases held to the burst")
        end)
    end)

    describe("what the budget has left (X-RateLimit-Remaining, status().available)", function()
        -- two hosts (two dirs) on one budget of 100 per 3 s: what one
        -- host says is left counts the other's starts, as Redis counted
        -- them at this host's last round trip (src/limiter_redis.c,
        -- mq_rdl_remaining); the host's own window alone said 99 here
        it("counts every host's starts; a window after the last answer, the host's own", function()
            local key = newkey()
            local function open(d)
                return assert(limiter.new{ key = key, dir = mkdir(tmp .. "/" .. d), redis = srv.url,
                                           per_minute = 100, burst = 100, period = 3, max_wait = 0 })
            end
            local a, b = open("rem-a"), open("rem-b")
            for i = 1, 40 do assert.is_true((a:try()), "host A start #" .. i) end
            assert.is_true((b:try()), "host B's start")
            local lim, left = b.core:budget()
            assert.equal(100, lim)
            -- B's own window holds 1 start; the budget, 41 and A's unstarted lease
            assert.truthy(left <= 100 - 41, "B says " .. left .. " left after 41 starts in all")
            assert.truthy(left >= 0, left)
            assert.equal(left, b:status().available)
            local _, left_a = a.core:budget()
            assert.truthy(left_a <= 100 - 40, "A says " .. left_a .. " left after its 40 starts")
            -- a window (3 s + its guard) after B's last answer, and with
            -- B's start out of its own: the host's own room again, 100
            H.sleep(3.2)
            assert.equal(100, select(2, b.core:budget()))
            a:close()
            b:close()
        end)
    end)

    describe("degraded", function()
        it("a refused call's retry_after is the time to the next try at Redis, not 1 ms", function()
            local own = R.start()
            local l = assert(limiter.new{ key = newkey(), dir = mkdir(tmp .. "/g1"), redis = own.url,
                                          per_minute = 60, period = 3 })
            assert.is_true(l:acquire(0.5))
            own:kill9()
            local t0 = now()
            for i = 1, 6 do
                local ok, err = l:acquire(0)
                assert.is_nil(ok, "acquire(0) #" .. i .. " in the quarantine")
                assert.truthy(err.retry_after >= 0.01 and err.retry_after <= 0.55,
                              "retry_after " .. err.retry_after)
            end
            assert.truthy((now() - t0) / NS < 1.5)
            assert.is_true(l:status().degraded)
            -- a caller that waits what it is told tries at most ~2 a second
            local calls, t1 = 0, now()
            for _ = 1, 100 do
                if (now() - t1) / NS >= 1 then break end
                calls = calls + 1
                local _, err = l:acquire(0)
                if err then H.sleep(err.retry_after) end
            end
            assert.truthy(calls <= 4, calls .. " calls in 1 s")
            l:close()
            own:stop()
        end)
    end)

    describe("the transit guard", function()
        -- the 11th start of 10 per 2 s (burst 10), with and without the guard
        local function gap(env)
            local out = tmp .. "/gap" .. (env == "" and "on" or "off")
            H.run(("%slua5.4 -e %s >%s 2>&1"):format(env, H.shell_quote(([[
                local l = assert(require("mediquo.core").limiter{ per_minute = 10, burst = 10, period = 2,
                    key = %q, dir = %q })
                local _, _, t1 = l:acquire(1)
                for _ = 2, 10 do assert(l:acquire(1)) end
                local ok, _, t11 = l:acquire(3)
                assert(ok)
                io.write(string.format("%%.0f", t11 - t1))]]):format(newkey(), mkdir(tmp .. "/gap"))), out))
            return tonumber(H.read_file(out))
        end

        it("a start frees its slot period + min(100 ms, period/200) after it; off only for the control", function()
            local on = gap("")
            local off = gap(H.hooks_env("MEDIQUO_TEST_NO_JITTER_GUARD=1 "))
            assert.truthy(on and off, tostring(on) .. " " .. tostring(off))
            assert.truthy(on >= 2.010 * NS and on < 2.2 * NS, "with the guard: " .. on / NS)
            assert.truthy(off >= 2.000 * NS and off < 2.010 * NS, "without: " .. off / NS)
        end)

        it("3 hosts, one Redis budget, sandbox --sliding --latency-ms 0-50: no 429, >= 99% used; "
           .. "without the guard, the jitter shows (429s, or the pauses they cause)", function()
            if H.sanitized(pending, "timing proof") then return end
            -- one after the other: on 2 busy cores, a run beside the other
            -- gets its processing delays as jitter on top of the sandbox's
            --
            -- the guarded run's use is a timing read on 2 cores shared with
            -- the suite, with a few slots of margin (a CI run, 2026-12-06:
            -- 98.75% after the first window, 5 slots of 400 short, 0 x 429;
            -- the spec alone, 3 runs: 99.75-100%). A run short of 99% is
            -- made again once; a 429 or a window over the limit fails at once
            local r
            for attempt = 1, 2 do
                r = J.run{ seconds = 50, period = 10, per_minute = 100, guard = true, redis = srv }
                J.report("with the guard", r)
                assert.equal(0, r.http429)
                assert.truthy(r.max_window <= 100)
                if r.steady >= 0.99 then break end
                print(("\n[transit guard] guarded run %d: used %.2f%% after the first window%s")
                      :format(attempt, 100 * r.steady, attempt == 1 and ", made again" or ""))
            end
            -- the control's jitter is drawn: a 20 s run without the guard
            -- showed none once in CI (2026-12-06: 0 x 429, 99.50% used);
            -- made again once then, as HA.breaks_once makes the HA controls
            local c = H.control_once(function()
                local x = J.run{ seconds = 20, period = 10, per_minute = 100, guard = false, redis = srv }
                J.report("control, without the guard", x)
                return x
            end, function(x)
                return x.http429 > 0 or x.used < 0.99, ("%d x 429, used %.2f%%"):format(x.http429, 100 * x.used)
            end, "transit guard")
            -- a 50 s run's first window holds the start's burst (a few % of
            -- one window): >= 99% is held after it here, and over the whole
            -- run by the 300 s proof (make soak-redis-jitter); the control
            -- (20 s) is read over its whole run, where the jitter shows
            assert.truthy(r.steady >= 0.99, ("used %.2f%% after the first window"):format(100 * r.steady))
            assert.truthy(c.http429 > 0 or c.used < 0.99,
                          ("control: %d x 429, used %.2f%%"):format(c.http429, 100 * c.used))
        end)
    end)
end)
