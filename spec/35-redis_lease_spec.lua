-- spec/35-redis_lease_spec.lua: the Redis limiter's host-local lease file
-- (src/lease_file.c) under a hostile host (issue 16 items 4 and 5 for the
-- Redis limiter), with a real redis-server (spec/redis_helper.lua), real
-- processes, the sandbox and the example gateway on real nginx:
--   - a sharer stopped (SIGSTOP) while it holds the lease lock never makes
--     another process wait: try() answers in well under 5 ms, acquire(0.2)
--     by about 0.2 s, new limiters open; SIGCONT, or SIGKILL (the robust
--     mutex), and the others go on;
--   - the lease file cut short (truncate -s 0) under running processes:
--     no SIGBUS, the call gets a config fault (lim:try()'s 3rd return, a
--     client's or a batch's error of kind config, nothing sent; through
--     mediquo.ngx the gateway answers config), and the next call re-makes
--     the file and works.
-- Timing bounds are scaled up under ASan/valgrind (MEDIQUO_SANITIZER).

local core = require "mediquo.core"
local mediquo = require "mediquo"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"

local LUA = os.getenv("MEDIQUO_LUA") or "lua5.4"
local NS = 1e9
local SLOW = os.getenv("MEDIQUO_SANITIZER") and 5 or 1
local now = core.limiter_now
local sh = H.sh

local tmp, srv
local nkey = 0
local function newkey() nkey = nkey + 1; return string.format("lease35-%d-%d", nkey, now()) end
local function mkdir(d) H.run("mkdir -p '" .. d .. "'"); return d end

local function alive(pid) return R.alive(pid) end

-- the process state letter in /proc (T: stopped)
local function state(pid)
    return ((H.read_file("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (%a)"))
end

local function wait_until(pred, timeout)
    local deadline = now() + timeout * NS
    repeat
        if pred() then return true end
        H.sleep(0.02)
    until now() > deadline
    return pred()
end

local function reap(pid)
    H.run("kill -CONT " .. pid .. " 2>/dev/null; kill -9 " .. pid .. " 2>/dev/null")
    wait_until(function() return not alive(pid) end, 2)
end

-- a child Lua process running code in the background (the test build,
-- MEDIQUO_TEST_HOOKS set: H.hooks_env): -> { pid, out (its log), rc (a file with "rc=N" once it ended;
-- 128 + N when signal N ended it) }
local nchild, children = 0, {}
local function spawn(code)
    nchild = nchild + 1
    local c = { out = string.format("%s/child%d.log", tmp, nchild) }
    c.rc = c.out .. ".rc"
    local path = H.write_file(c.out .. ".lua", code)
    local pid = H.run(string.format("(%s%s %s >%s 2>&1; echo \"rc=$?\" >%s) "
                                    .. ">/dev/null 2>&1 & echo $!", H.hooks_env(), LUA, path, c.out, c.rc))
    c.shell = assert(tonumber(pid:match("(%d+)")))
    -- the Lua process is the subshell's child: its pid is what it logs first
    assert(wait_until(function() return (H.read_file(c.out) or ""):match("^pid %d+") end, 10 * SLOW),
           "child did not start: " .. (H.read_file(c.out) or ""))
    c.pid = tonumber(H.read_file(c.out):match("^pid (%d+)"))
    children[#children + 1] = c.pid
    return c
end

local function exit_code(c, timeout)
    assert(wait_until(function() return H.read_file(c.rc) end, timeout),
           "child " .. c.pid .. " did not end: " .. (H.read_file(c.out) or ""))
    return tonumber(H.read_file(c.rc):match("rc=(%d+)"))
end

-- the lease file of the limiters opened on dir (one key per dir here)
local function lease_path(dir)
    local p = sh("ls " .. dir .. "/mediquo-rd-*.shm 2>/dev/null")
    assert(p ~= "" and not p:find("\n"), "lease files in " .. dir .. ": " .. p)
    return p
end

local PRELUDE = [[
local core = require "mediquo.core"
local f = io.stdout
f:write("pid ", io.open("/proc/self/stat"):read("*l"):match("^(%d+)"), "\n")
f:flush()
local function log(s) f:write(s, "\n") f:flush() end
]]

describe("the Redis limiter's lease file", function()
    setup(function()
        tmp = sh("mktemp -d /tmp/mq-lease35.XXXXXX")
        assert(tmp:match("^/tmp/mq%-lease35"))
        srv = R.start()
    end)
    teardown(function()
        for _, pid in ipairs(children) do         -- a failed case may leave one stopped
            if alive(pid) then reap(pid) end
        end
        if srv then srv:stop() end
        R.stop_all()
        if tmp then H.run("rm -rf '" .. tmp .. "'") end
    end)

    describe("a sharer stopped while it holds the lease lock", function()
        -- a child takes the lock and stops itself (SIGSTOP) holding it
        local function holder(c)
            local h = spawn(PRELUDE .. ([[
                local lim = assert(core.limiter{ key = %q, dir = %q, redis = %q, per_minute = 600 })
                log("holding")
                log(tostring(lim:_hold_lease_lock()))   -- stops here until SIGCONT
                log("released")
                log("admitted " .. tostring(lim:acquire(3)))
                lim:close()
            ]]):format(c.key, c.dir, c.redis))
            assert(wait_until(function() return state(h.pid) == "T" end, 10 * SLOW),
                   "the holder did not stop: " .. (H.read_file(h.out) or ""))
            return h
        end

        it("never stalls another process: try < 5 ms, acquire(0.2) ~0.2 s; SIGCONT and it goes on", function()
            local c = { key = newkey(), dir = mkdir(tmp .. "/frozen"), redis = srv.url, per_minute = 600 }
            local h = holder(c)
            -- opening one: its first contact with Redis needs the lock too
            local t0 = now()
            local t_first = t0
            local lim = assert(core.limiter(c))
            local open_s = (now() - t0) / NS
            local times, worst, admitted = {}, 0, 0
            for i = 1, 50 do
                local t = now()
                local ok, wait, fault = lim:try()
                local dt = (now() - t) / NS
                times[i] = dt
                if dt > worst then worst = dt end
                if ok then admitted = admitted + 1 end
                assert.is_nil(fault)
                assert.truthy(ok or wait > 0)
                if dt > 0.5 then break end          -- the old lock: ~1 s each; fail fast
            end
            table.sort(times)
            local median = times[math.ceil(#times / 2)]
            t0 = now()
            local got, retry_after, fault = lim:acquire(0.2)
            local acq_s = (now() - t0) / NS
            -- through mediquo.limiter: rate_limited, not config
            local ml = assert(limiter.new{ key = c.key, dir = c.dir, redis = c.redis, per_minute = 600 })
            local ok2, err2 = ml:acquire(0.05)
            -- status tells why, at once
            t0 = now()
            local st = lim:status()
            local status_s = (now() - t0) / NS
            -- before the takeover of a lock held for good (1 s, next test)
            local early = (now() - t_first) / NS < 0.9
            assert.equal("T", state(h.pid))          -- it held the lock all along
            H.run("kill -CONT " .. h.pid)
            assert.equal(0, exit_code(h, 10 * SLOW))
            assert.truthy((H.read_file(h.out) or ""):find("true\nreleased", 1, true), H.read_file(h.out))
            -- the lock is free again: slots come
            local after = lim:acquire(2)
            lim:close()
            ml:close()
            print(string.format("\n  lease lock held by a stopped sharer: open %.2f ms, try median %.3f ms, "
                                .. "max %.3f ms, acquire(0.2) %.3f s, status %.2f ms",
                                open_s * 1e3, median * 1e3, worst * 1e3, acq_s, status_s * 1e3))
            assert.truthy(open_s < 0.25 * SLOW, "open took " .. open_s .. " s")
            assert.equal(50, #times, "a try took " .. worst .. " s")
            assert.equal(0, admitted)               -- no slot without the lock
            assert.truthy(median < 0.005 * SLOW, "try median " .. median .. " s")
            assert.truthy(worst < 0.020 * SLOW, "a try took " .. worst .. " s")
            assert.is_nil(fault)
            assert.truthy(acq_s < 0.2 + 0.15 * SLOW, "acquire(0.2) took " .. acq_s .. " s")
            assert.truthy(status_s < 0.02 * SLOW, "status took " .. status_s .. " s")
            if early then
                assert.is_nil(got)
                assert.truthy(retry_after > 0)
                assert.truthy(acq_s >= 0.15, "acquire(0.2) took " .. acq_s .. " s")
                assert.is_nil(ok2)
                assert.equal("rate_limited", err2.kind)
                assert.is_true(st.degraded)
                assert.truthy(st.redis_error:find("lock is held", 1, true), st.redis_error)
            end
            assert.is_true(after)
        end)

        it("stopped for good: after a second the others replace the lease file and go on", function()
            local c = { key = newkey(), dir = mkdir(tmp .. "/stuck"), redis = srv.url, per_minute = 600 }
            local h = holder(c)
            local path = lease_path(c.dir)
            local inode = sh("stat -c %i '" .. path .. "'")
            local a = assert(core.limiter(c))
            local b = assert(core.limiter(c))
            local t0 = now()
            local got_a = a:acquire(3)
            local took_a = (now() - t0) / NS
            t0 = now()
            local got_b = b:acquire(3)              -- joins the new file
            local took_b = (now() - t0) / NS
            local inode2 = sh("stat -c %i '" .. path .. "'")
            H.run("kill -CONT " .. h.pid)
            local rc = exit_code(h, 10 * SLOW)
            local log = H.read_file(h.out)
            a:close()
            b:close()
            print(string.format("\n  lease lock held for good: the first acquire %.3f s, the next %.3f s",
                                took_a, took_b))
            assert.is_true(got_a)
            assert.truthy(took_a >= 0.9 and took_a < 1 + 0.5 * SLOW, "took " .. took_a .. " s")
            assert.is_true(got_b)
            assert.truthy(took_b < 1 + 0.5 * SLOW, "took " .. took_b .. " s")
            assert.are_not.equal(inode, inode2)
            -- the holder, continued: it lets go of the old file and joins the new one
            assert.equal(0, rc, log)
            assert.truthy(log:find("true\nreleased\nadmitted true\n", 1, true), log)
            assert.equal("1", sh("ls " .. c.dir .. "/mediquo-rd-*.shm | wc -l"))
        end)

        it("killed (SIGKILL) while holding it: the next call recovers the lock", function()
            local c = { key = newkey(), dir = mkdir(tmp .. "/killed"), redis = srv.url, per_minute = 600 }
            local h = holder(c)
            H.run("kill -9 " .. h.pid)
            assert.equal(137, exit_code(h, 10 * SLOW))
            local lim = assert(core.limiter(c))
            local t0 = now()
            assert.is_true((lim:acquire(1)))
            assert.truthy((now() - t0) / NS < 0.5 * SLOW)
            assert.is_false(lim:status().degraded)
            lim:close()
        end)
    end)

    describe("cut short (truncate -s 0) under running processes", function()
        -- children spinning on try() until a fault, then until the next
        -- admission (the file re-made), then done
        local function spinner(c)
            return spawn(PRELUDE .. ([[
                local lim = assert(core.limiter{ key = %q, dir = %q, redis = %q, per_minute = 100000,
                                                 burst = 1000 })
                local until_ns = core.limiter_now() + 20e9
                local n, fault = 0, nil
                log("ready")
                while core.limiter_now() < until_ns do
                    local ok, _, why = lim:try()
                    if ok then
                        n = n + 1
                        if fault then log("admitted again") break end
                        if n == 1 then log("admitting") end
                    elseif why then
                        if fault then log("second fault " .. why) break end
                        fault = why
                        log("fault " .. why)
                    end
                end
                log("status degraded " .. tostring(lim:status().degraded))
                lim:close()
                log("done")
            ]]):format(c.key, c.dir, c.redis))
        end

        local function run(nproc)
            local c = { key = newkey(), dir = mkdir(tmp .. "/cut" .. nproc), redis = srv.url }
            local cs = {}
            for i = 1, nproc do cs[i] = spinner(c) end
            for i = 1, nproc do
                assert(wait_until(function() return (H.read_file(cs[i].out) or ""):find("admitting") end,
                                  10 * SLOW), H.read_file(cs[i].out))
            end
            local path = lease_path(c.dir)
            H.run("truncate -s 0 '" .. path .. "'")
            for i = 1, nproc do
                local rc = exit_code(cs[i], 30 * SLOW)
                local log = H.read_file(cs[i].out)
                assert.equal(0, rc, "child " .. i .. " ended with " .. tostring(rc) .. ": " .. log)
                assert.truthy(log:find("\nfault redis lease file " .. path .. ": cut short", 1, true), log)
                assert.truthy(log:find("the next call re-makes it\nadmitted again\n", 1, true), log)
                assert.truthy(log:find("\ndone\n", 1, true), log)
            end
            -- the file is whole again
            assert.truthy(tonumber(sh("stat -c %s '" .. path .. "'")) > 4096)
            assert.equal("0", sh("find '" .. c.dir .. "' -name '*.tmp' | wc -l"))
        end

        it("one process: no signal, one config fault, then it works again", function()
            run(1)
        end)

        it("two processes at once: the same for both", function()
            run(2)
        end)

        it("while a process holds the lease lock: it lives, and its next calls work", function()
            -- the worst moment: the mutex is on the holder's robust list
            -- (glibc writes through that list on its next lock)
            local c = { key = newkey(), dir = mkdir(tmp .. "/cut-held"), redis = srv.url }
            local h = spawn(PRELUDE .. ([[
                local lim = assert(core.limiter{ key = %q, dir = %q, redis = %q, per_minute = 600 })
                log("holding")
                local ok, fault = lim:_hold_lease_lock()        -- stops here until SIGCONT
                log("held " .. tostring(ok) .. " " .. tostring(fault))
                local n = 0
                for _ = 1, 20 do
                    if lim:acquire(0.5) then n = n + 1 end
                    lim:pause(0)
                    lim:observe(100, 600, 1)
                    lim:status()
                end
                log("admitted " .. n)
                lim:close()
                log("done")
            ]]):format(c.key, c.dir, c.redis))
            assert(wait_until(function() return state(h.pid) == "T" end, 10 * SLOW),
                   "the holder did not stop: " .. (H.read_file(h.out) or ""))
            local path = lease_path(c.dir)
            H.run("truncate -s 0 '" .. path .. "'")
            H.run("kill -CONT " .. h.pid)
            local rc = exit_code(h, 30 * SLOW)
            local log = H.read_file(h.out)
            assert.equal(0, rc, log)
            assert.truthy(log:find("\nheld false redis lease file " .. path .. ": cut short", 1, true), log)
            assert.truthy(log:find("\nadmitted 20\ndone\n", 1, true), log)
            -- and the file it re-made is one the others use
            local lim = assert(core.limiter{ key = c.key, dir = c.dir, redis = c.redis, per_minute = 600 })
            assert.is_true((lim:acquire(1)))
            lim:close()
        end)

        it("under a client and a batch: their calls end as config, nothing sent; the next call works", function()
            local sb = H.sandbox{}
            sb:reset()
            local function count() return #sb:api_log() end
            local function appt(tag)
                return { code = tag .. "-" .. now(), starts_at = "2030-05-20T10:00:00Z", patient = "P1",
                         professional = "prof-demo-1" }
            end
            for _, via in ipairs{ "client", "batch" } do
                local dir = mkdir(tmp .. "/client-" .. via)
                local client = assert(mediquo.new{
                    api_key = H.api_key, secret_key = H.secret_key, base_url = sb.base_url,
                    max_retries = 0, deadline = 5,
                    rate_limit = { key = newkey(), dir = dir, redis = srv.url, max_wait = 0.5 } })
                local function call(tag)
                    if via == "client" then return client:create(appt(tag)) end
                    local op = appt(tag)
                    op.op = "create"
                    local results = client:run_batch({ op })
                    return results[1].ok, results[1].err
                end
                assert.truthy(call("before"))
                local sent = count()
                H.run("truncate -s 0 '" .. lease_path(dir) .. "'")
                local ok, err = call("cut")
                assert.is_nil(ok)
                assert.equal("config", err.kind, via .. ": " .. tostring(err))
                assert.is_false(err.retryable)
                assert.equal(0, err.attempts)
                assert.equal("none", err.effect)
                assert.truthy(err.message:find("^rate_limit: redis lease file .*: cut short"), err.message)
                assert.equal(sent, count())           -- nothing sent for that call
                local ok2, err2 = call("after")
                assert.truthy(ok2, via .. ": " .. tostring(err2))
                assert.equal(sent + 1, count())
                client:close()
            end
        end)

        it("under the example gateway (mediquo.ngx, MEDIQUO_RL_REDIS): config, the worker lives", function()
            local NH = require "spec.ngx_helper"
            local sb = H.sandbox{}
            sb:reset()
            local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_RL_REDIS = srv.url } })
            local function book(tag)
                return gw:post("/book", { code = tag .. "-" .. now(), starts_at = "2030-05-20T12:00:00Z",
                                          patient = "P1", professional = "prof-demo-1" })
            end
            local st1, b1 = book("ngx-before")
            local pids = sh("pgrep -P " .. sh("cat '" .. gw.prefix .. "/nginx.pid'"))
            H.run("truncate -s 0 '" .. lease_path(gw.rl_dir) .. "'")
            local st2, b2 = book("ngx-cut")
            local st3, b3 = book("ngx-after")
            local workers = sh("pgrep -P " .. sh("cat '" .. gw.prefix .. "/nginx.pid'"))
            local elog = gw:error_log()
            gw:stop()
            assert.equal(201, st1, H.json.encode(b1))
            assert.equal("config", b2 and b2.error,
                         tostring(st2) .. " " .. tostring(H.json.encode(b2)))
            -- the caller is not told the host's paths; the operator is
            assert.truthy(elog:find("redis lease file [^\n]*cut short"), elog)
            assert.equal(201, st3, H.json.encode(b3))
            assert.equal(pids, workers)             -- the same worker: none died
            assert.is_nil(elog:find("signal 7", 1, true), elog)
        end)
    end)
end)
