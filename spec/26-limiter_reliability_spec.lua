-- spec/26-limiter_reliability_spec.lua: the host-local limiter under a
-- hostile host (issue 16 items 4, 5, 6 and the limiter's part of 9), with
-- real processes (spec/limiter_worker.lua), a real tmpfs, and the example
-- gateway on real nginx sharing the key.
--   - a sharer stopped (SIGSTOP) at any moment, even in the middle of an
--     admission, never makes another process wait: try and acquire(0)
--     answer at once, acquire never passes max_wait, new limiters open, and
--     a gateway's /health stays fast;
--   - no SIGBUS: a full disk at creation or later, or a file cut short under
--     running sharers, is a `config` error, with no stray *.tmp;
--   - a status read never changes the rule in force, and a process asking
--     for another rule is told;
--   - options read raw, NUL bytes refused, a private default directory,
--     pauses capped and resume().
-- Timing bounds are scaled up under ASan/valgrind (MEDIQUO_SANITIZER).

local core = require "mediquo.core"
local mediquo = require "mediquo"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"

local LUA = os.getenv("MEDIQUO_LUA") or "lua5.4"
local NS = 1e9
local SLOW = os.getenv("MEDIQUO_SANITIZER") and 50 or 1
local now = core.limiter_now

local sh = H.sh
local function sleep(s) os.execute("sleep " .. s) end
local function ok_exec(cmd)
    local a, _, c = os.execute(cmd)
    return a == true or a == 0, c
end

local tmp
local function cfg(t) return H.limiter_cfg(t, tmp, "spec26") end

local function spawn(mode, c, until_ns, a, b, env)
    return H.limiter_worker(tmp, mode, c, until_ns, a, b, env)
end

local lines = H.lines

local function wait_for(w, pattern, timeout)
    local deadline = now() + timeout * NS
    for _ = 1, 2000 do
        for _, l in ipairs(lines(w.out)) do
            if l:match(pattern) then return l end
        end
        if now() > deadline then break end
        sleep(0.05)
    end
    return nil, "worker " .. w.out .. " did not log " .. pattern .. ": "
        .. table.concat(lines(w.out), "|") .. " " .. table.concat(lines(w.out .. ".stdout"), "|")
end

local function alive(pid) return (ok_exec("kill -0 " .. pid .. " 2>/dev/null")) end

local function reap(w)
    os.execute("kill -CONT " .. w.pid .. " 2>/dev/null; kill -9 " .. w.pid .. " 2>/dev/null")
    for _ = 1, 100 do
        if not alive(w.pid) then return end
        sleep(0.02)
    end
end

-- the slowest of n calls of f, in seconds; with `into`, each time is added
local function slowest(n, f, into)
    local worst = 0
    for _ = 1, n do
        local t0 = now()
        f()
        local dt = (now() - t0) / NS
        if dt > worst then worst = dt end
        if into then into[#into + 1] = dt end
    end
    return worst
end

local function percentile(t, p)
    table.sort(t)
    return t[math.max(1, math.ceil(#t * p))]
end

-- A call that waited on another process takes as long as that one is
-- stopped (the old lock: 1 s); a busy 2-core machine can delay any one call
-- by a few ms. So: p99 under 1 ms, and no call near a stop's length.
local FAST, NOT_BLOCKED = 0.001 * SLOW, 0.1

-- a child Lua process running code; -> its stdout, exit status (128+sig on a signal)
local function child(code)
    local path = tmp .. "/child-" .. now() .. ".lua"
    H.write_file(path, code)
    local out = sh(string.format("%s %s 2>&1; echo \"rc=$?\"", LUA, path))
    local body, rc = out:match("^(.-)\n?rc=(%d+)$")
    return body, tonumber(rc)
end

local function file_mode(path) return sh("stat -c %a '" .. path .. "'") end

describe("limiter reliability", function()
    setup(function()
        tmp = sh("mktemp -d /tmp/mq-limiter26.XXXXXX")
        assert(tmp:match("^/tmp/mq%-limiter26"))
    end)
    teardown(function()
        if tmp then os.execute("rm -rf '" .. tmp .. "'") end
    end)

    describe("a frozen sharer", function()
        it("stopped at random moments in a tight loop: the others never wait on it", function()
            local c = cfg{ per_minute = 1000000, burst = 1000, period = 1 }
            local l = assert(core.limiter(c))
            local w = spawn("churn", c, now() + 60 * NS, nil, nil, "nice -n 19 ")
            assert(wait_for(w, "^ready$", 10))
            sleep(0.2)
            local worst_try, worst_acq, worst_open = 0, 0, 0
            local tries, acqs = {}, {}
            for _ = 1, 60 do
                os.execute("kill -STOP " .. w.pid)
                worst_try = math.max(worst_try, slowest(20, function() l:try() end, tries))
                worst_acq = math.max(worst_acq, slowest(20, function() l:acquire(0) end, acqs))
                worst_open = math.max(worst_open, slowest(1, function()
                    local o = assert(limiter.new(cfg{ key = c.key, per_minute = c.per_minute,
                                                      period = c.period }))
                    o:close()
                end))
                os.execute("kill -CONT " .. w.pid)
                sleep(0.01)
            end
            reap(w)
            assert.truthy(percentile(tries, 0.99) < FAST, "try p99 " .. percentile(tries, 0.99) .. " s")
            assert.truthy(percentile(acqs, 0.99) < FAST,
                          "acquire(0) p99 " .. percentile(acqs, 0.99) .. " s")
            assert.truthy(worst_try < NOT_BLOCKED, "a try took " .. worst_try .. " s")
            assert.truthy(worst_acq < NOT_BLOCKED, "an acquire(0) took " .. worst_acq .. " s")
            assert.truthy(worst_open < NOT_BLOCKED, "an open took " .. worst_open .. " s")
            l:close()
        end)

        it("stopped in the middle of an admission (its slot claimed, not finished)", function()
            local c = cfg{ per_minute = 3, period = 30 }
            local l = assert(core.limiter(c))
            local w = spawn("freeze", c, 0, nil, nil, H.hooks_env())
            assert(wait_for(w, "^freezing$", 10))
            for _ = 1, 200 do
                if l:status().used == 1 then break end
                sleep(0.02)
            end
            os.execute("kill -STOP " .. w.pid)
            assert.equal(1, l:status().used)            -- its claim counts
            local o, err = limiter.new(cfg{ key = c.key, per_minute = 3, period = 30, max_wait = 0 })
            assert.is_not_nil(o, tostring(err))
            -- the rest of the budget goes to the others, at once
            assert.truthy(slowest(1, function() assert.is_true((l:try())) end) < NOT_BLOCKED)
            assert.truthy(slowest(1, function() assert.is_true(o:acquire(0)) end) < NOT_BLOCKED)
            -- and then no more: the frozen claim is one of the 3
            local t0 = now()
            local got, e2 = o:acquire(0.3)
            local dt = (now() - t0) / NS
            assert.is_nil(got)
            assert.equal("rate_limited", e2.kind)
            assert.truthy(dt < 0.3 + 0.2 * SLOW, "acquire(0.3) took " .. dt .. " s")
            local refusals = {}
            slowest(50, function() assert.is_false((l:try())) end, refusals)
            assert.truthy(percentile(refusals, 0.5) < FAST)
            assert.truthy(percentile(refusals, 1) < NOT_BLOCKED)
            reap(w)
            o:close()
            l:close()
        end)

        it("a gateway sharing the key keeps /health under 20 ms (p99) with sharers frozen", function()
            local NH = require "spec.ngx_helper"
            local sb = H.sandbox()
            local gw = NH.gateway(sb, { workers = 1, threads = 4,
                                        env = { MEDIQUO_RL_PER_MINUTE = 100000, MEDIQUO_RL_PERIOD = 60 } })
            local c = { key = gw.env.MEDIQUO_RL_KEY, dir = gw.rl_dir, per_minute = 100000,
                        burst = 60, period = 60 }
            local w = spawn("churn", c, now() + 60 * NS, nil, nil, "nice -n 19 ")
            assert(wait_for(w, "^ready$", 10))
            -- and one frozen for good in the middle of an admission
            local frozen = spawn("freeze", c, 0, nil, nil, H.hooks_env())
            assert(wait_for(frozen, "^freezing$", 10))
            sleep(0.2)
            os.execute("kill -STOP " .. frozen.pid)
            -- bookings through the gateway (each takes a limiter slot) and
            -- stop/continue of the sharer, both bounded, in the background
            local body = '{"code":"c26-%s-$i","starts_at":"2030-05-20T12:00:00+02:00","patient":"P1",'
                .. '"professional":"prof-demo-1"}'
            local quoted = body:format(string.format("%.0f", now())):gsub('"', '\\"')
            os.execute(string.format("(for i in $(seq 1 400); do curl -s -o /dev/null -w '%%{http_code}\\n' "
                .. "--max-time 5 -H 'Content-Type: application/json' --data-binary \"%s\" %s/book; done) "
                .. ">%s/posts.out 2>&1 & echo $! > %s/posts.pid", quoted, gw.url, tmp, tmp))
            os.execute(string.format("(for i in $(seq 1 80); do kill -STOP %d; sleep 0.03; kill -CONT %d; "
                .. "sleep 0.01; done) >/dev/null 2>&1 &", w.pid, w.pid))
            local lat = NH.health_latencies(gw.port, 3, 2)
            os.execute("kill $(cat " .. tmp .. "/posts.pid) 2>/dev/null")
            reap(w)
            reap(frozen)
            local p99 = NH.percentile(lat, 0.99)
            gw:stop()
            local booked = tonumber(sh("grep -c '^20[01]$' " .. tmp .. "/posts.out")) or 0
            assert.truthy(#lat > 100, "only " .. #lat .. " /health answers in 3 s")
            assert.truthy(p99 < 0.020 * SLOW, "/health p99 " .. p99 .. " s")
            assert.truthy(booked >= 10, "only " .. booked .. " bookings went through the limiter")
        end)
    end)

    describe("no SIGBUS", function()
        local is_root = sh("id -u") == "0"
        local mnt
        before_each(function()
            if not is_root then return end
            mnt = sh("mktemp -d /tmp/mq-tmpfs26.XXXXXX")
            assert(ok_exec("mount -t tmpfs -o size=16k tmpfs '" .. mnt .. "'"))
        end)
        after_each(function()
            if mnt then
                -- a sharer may still be exiting: a few tries, then lazily
                for _ = 1, 20 do
                    if ok_exec("umount '" .. mnt .. "' 2>/dev/null") then break end
                    sleep(0.1)
                end
                os.execute("mountpoint -q '" .. mnt .. "' && umount -l '" .. mnt .. "'; rmdir '" .. mnt .. "'")
                mnt = nil
            end
        end)

        local function no_tmp_files(dir)
            return sh("find '" .. dir .. "' -name '*.tmp' | wc -l") == "0"
        end

        it("a file too big for its disk: kind config, no *.tmp, the process lives", function()
            if not is_root then pending("needs root to mount a tmpfs") return end
            local out, rc = child(([[
                local l, err = require("mediquo").limiter{ dir = %q, key = "big", per_minute = 100000,
                                                           burst = 100000 }
                for _ = 1, 5000 do if l then l:acquire(0) end end      -- touch the file's pages
                print(l and "opened" or err.kind, err and err.message)
            ]]):format(mnt))
            assert.equal(0, rc, out)
            assert.truthy(out:match("^config"), out)
            assert.truthy(out:find("No space left", 1, true), out)
            assert.is_true(no_tmp_files(mnt))
        end)

        it("a disk that fills after creation never cuts an admission", function()
            if not is_root then pending("needs root to mount a tmpfs") return end
            local l = assert(limiter.new{ dir = mnt, key = "fill", per_minute = 600, burst = 600 })
            os.execute("dd if=/dev/zero of='" .. mnt .. "/fill' bs=1k count=64 2>/dev/null")
            assert.equal(0, tonumber(sh("df --output=avail -B1 '" .. mnt .. "' | tail -1")))
            local out, rc = child(([[
                local l = assert(require("mediquo").limiter{ dir = %q, key = "fill", per_minute = 600,
                                                              burst = 600 })
                local n = 0
                for _ = 1, 600 do if l:try() then n = n + 1 end end
                print(n)
            ]]):format(mnt))
            assert.equal(0, rc, out)
            assert.equal("600", out)
            assert.is_false((l:try()))
            l:close()
        end)

        it("a file cut short (truncate -s 0) under running sharers: config errors, no signal", function()
            local dir = mnt or tmp
            local c = cfg{ dir = dir, per_minute = 50, period = 2 }
            local l = assert(core.limiter(c))
            local path = l:path()
            local ws = {}
            for i = 1, 3 do ws[i] = spawn("hammer", c, now() + 6 * NS) end
            for i = 1, 3 do assert(wait_for(ws[i], "^ready$", 10)) end
            sleep(0.5)
            os.execute("truncate -s 0 '" .. path .. "'")
            for i = 1, 3 do
                assert(wait_for(ws[i], "^done$", 15 * SLOW))
                local fault = wait_for(ws[i], "^fault ", 1)
                assert.truthy(fault and fault:find("cut short", 1, true), fault)
                assert.equal("", table.concat(lines(ws[i].out .. ".stdout"), "\n"))
            end
            -- this process too: one config error, then the file is re-made
            local ok, _, fault = l:try()
            assert.is_false(ok)
            assert.truthy(fault:find("cut short", 1, true), fault)
            assert.is_true((l:try()))
            l:close()
            local lim = assert(limiter.new(c))
            assert.is_true(lim:acquire(0))
            lim:close()
            assert.is_true(no_tmp_files(dir))
        end)

        it("a metrics file cut short under two processes: one call's counts lost, no signal", function()
            local dir = mnt or tmp
            local key = "mx26-" .. now()
            local m = assert(core.metrics{ key = key, dir = dir })
            assert.is_true(m:add("create", "ok", 0.01))
            local path = m:path()
            -- a second process adds for 3 s and says what each add answered
            local out_path = tmp .. "/mx-child-" .. now() .. ".out"
            local code = ([[
local m = assert(require("mediquo.core").metrics{ key = %q, dir = %q })
local stop, faults, oks = require("mediquo.core").now() + 3, 0, 0
local f = assert(io.open(%q, "w")); f:write("ready\n"); f:flush()
while require("mediquo.core").now() < stop do
    local ok, err = m:add("create", "ok", 0.01)
    if ok then oks = oks + 1 elseif err:find("cut short", 1, true) then faults = faults + 1
    else f:write("other ", err, "\n") end
end
local s = assert(m:snapshot())
f:write(("done %%d %%d %%d\n"):format(oks, faults, s.latency.count)); f:close()
]]):format(key, dir, out_path)
            local script = tmp .. "/mx-child-" .. now() .. ".lua"
            H.write_file(script, code)
            local pid = tonumber(sh(string.format("%s %s >%s.stdout 2>&1 & echo $!", LUA, script, out_path)))
            local t0 = os.time()
            while not (H.read_file(out_path) or ""):find("ready", 1, true) and os.time() - t0 < 20 do sleep(0.05) end
            sleep(0.3)
            os.execute("truncate -s 0 '" .. path .. "'")
            -- this process: the add that meets the cut is refused, the next maps the file again
            local ok, err = m:add("create", "ok", 0.01)
            assert.is_nil(ok)
            assert.truthy(err:find("cut short", 1, true), err)
            assert.is_true(m:add("create", "ok", 0.01))
            local snap = assert(m:snapshot())
            assert.is_true(snap.latency.count >= 1)
            -- the other process lived through it and counted on
            t0 = os.time()
            while alive(pid) and os.time() - t0 < 30 * SLOW do sleep(0.1) end
            local text = H.read_file(out_path) or ""
            local oks, faults = text:match("done (%d+) (%d+) %d+")
            assert.truthy(oks, text .. (H.read_file(out_path .. ".stdout") or ""))
            assert.is_true(tonumber(faults) >= 1, text)
            assert.is_true(tonumber(oks) > 1, text)
            assert.falsy(text:find("other ", 1, true), text)
            m:close()
        end)

        it("a file cut short under a client and a batch: their calls end as config, nothing sent", function()
            local appt = { code = "C26", starts_at = "2030-05-20T10:00:00Z", patient = "P",
                           professional = "prof-demo-1" }
            for _, via in ipairs{ "client", "batch" } do
                local c = cfg{ dir = mnt or tmp, per_minute = 50, period = 2 }
                -- nothing listens on port 9: a request that left would fail as network
                local client = assert(mediquo.new{ api_key = "k-spec26", secret_key = "s-spec26",
                                                   base_url = "http://127.0.0.1:9/v1",
                                                   rate_limit = c, max_retries = 0 })
                local lim = assert(core.limiter(c))
                os.execute("truncate -s 0 '" .. lim:path() .. "'")
                local ok, err
                if via == "client" then
                    ok, err = client:create(appt)
                else
                    local results = client:run_batch({ { op = "cancel", code = "C26" } })
                    ok, err = results[1].ok, results[1].err
                end
                assert.is_nil(ok)
                assert.equal("config", err.kind, via .. ": " .. tostring(err))
                assert.is_false(err.retryable)
                assert.equal(0, err.attempts)
                assert.equal("none", err.effect)
                assert.truthy(err.message:find("^rate_limit: "), err.message)
                assert.equal(0, client:stats().requests)
                client:close()
                lim:close()
            end
        end)
    end)

    describe("the rule in force", function()
        it("is not changed by another process's status read, and a mismatch is told", function()
            local c = cfg{ per_minute = 5, period = 30 }
            local l = assert(limiter.new(c))
            for _ = 1, 5 do assert.is_true(l:acquire(0)) end
            local me = sh("cat /proc/$PPID/stat | cut -d' ' -f4")  -- busted's pid, via the shell
            local out, rc = child(([[
                local l = assert(require("mediquo").limiter{ dir = %q, key = %q })  -- defaults: 600/60
                local st = l:status()
                print(st.per_minute, st.used, st.rule.per_minute, st.rule.period, st.rule.set_by_pid,
                      tostring(st.mismatch), st.warning)
            ]]):format(c.dir, c.key))
            assert.equal(0, rc, out)
            local pm, used, rpm, rperiod, pid, mismatch, warning =
                out:match("^(%d+)\t(%d+)\t(%d+)\t([%d.]+)\t(%d+)\t(%a+)\t(.*)$")
            assert.equal("5", pm, out)
            assert.equal("5", used)
            assert.equal("5", rpm)
            assert.equal(30, tonumber(rperiod))
            assert.truthy(pid ~= nil and (pid == me or tonumber(pid) > 0), out)
            assert.equal("true", mismatch)
            assert.truthy(warning:find("5 per 30s", 1, true), warning)
            -- the budget in force is still 5: nothing more admitted
            local ok, err = l:acquire(0)
            assert.is_nil(ok)
            assert.equal("rate_limited", err.kind)
            local st = assert(l:status())
            assert.is_nil(st.mismatch)
            assert.equal(5, st.rule.per_minute)
            l:close()
        end)
    end)

    describe("a status read", function()
        it("makes no file and sets no rule (open_existing), and is not told of a mismatch", function()
            local c = cfg{ per_minute = 7, period = 30 }
            local function files() return sh("ls '" .. tmp .. "' | grep -c '^mediquo-rl-' || true") end
            local before = files()
            local l, err = limiter.open_existing(c)
            assert.is_nil(l)
            assert.equal("config", err.kind)
            assert.truthy(err.message:find("none yet", 1, true), err.message)
            assert.equal(before, files())
            local owner = assert(limiter.new(c))
            local reader = assert(limiter.open_existing{ dir = c.dir, key = c.key })  -- defaults
            local st = assert(reader:status())
            assert.equal(7, st.per_minute)
            assert.is_nil(st.mismatch)
            reader:close()
            owner:close()
        end)
    end)

    describe("options and pauses", function()
        local raising = { __index = function() error("boom: __index") end,
                          __pairs = function() error("boom: __pairs") end,
                          __len = function() error("boom: __len") end }

        it("reads option tables raw: no metamethod runs", function()
            local key = "raw-" .. now()
            local ok, l = pcall(limiter.new, setmetatable({ dir = tmp, key = key }, raising))
            assert.is_true(ok, tostring(l))
            assert.truthy(tostring(l):find(key, 1, true))
            l:close()
            local ok2, lim, err = pcall(core.limiter, setmetatable({ dir = tmp, key = key }, raising))
            assert.is_true(ok2, tostring(lim))
            assert.is_not_nil(lim, err)
            lim:close()
            local ok3, c = pcall(mediquo.new, { api_key = "k", secret_key = "s",
                                               base_url = "http://127.0.0.1:1",
                                               rate_limit = setmetatable({ dir = tmp, key = key }, raising) })
            assert.is_true(ok3, tostring(c))
            if c then c:close() end
        end)

        it("refuses a NUL byte in the key", function()
            local l, err = limiter.new{ dir = tmp, key = "a\0b" }
            assert.is_nil(l)
            assert.equal("invalid_argument", err.kind)
            assert.truthy(err.message:find("rate_limit.key", 1, true))
            local c, msg = core.limiter{ dir = tmp, key = "a\0b", per_minute = 5 }
            assert.is_nil(c)
            assert.truthy(msg:find("NUL", 1, true), msg)
        end)

        it("defaults to a directory private to the user (or to the group)", function()
            local dir = assert(core.limiter_default_dir())
            assert.truthy(dir:match("/mediquo%-u" .. sh("id -u") .. "$"), dir)
            assert.equal("700", file_mode(dir))
            assert.equal(sh("id -u"), sh("stat -c %u '" .. dir .. "'"))
            local key = "default-dir-" .. now()
            local l = assert(limiter.new{ key = key, per_minute = 5 })
            local path = l.core:path()
            assert.equal(dir, path:match("^(.*)/[^/]+$"))
            assert.equal("600", file_mode(path))
            l:close()
            os.remove(path)
            if sh("id -u") == "0" then
                local gdir = assert(core.limiter_default_dir("nogroup"))
                assert.truthy(gdir:match("/mediquo%-g%d+$"), gdir)
                assert.equal("2770 nogroup", sh("stat -c '%a %G' '" .. gdir .. "'"))
            end
            local _, err = limiter.new{ key = key, group = "no-such-group-26" }
            assert.equal("config", err.kind)
        end)

        it("caps a pause (Retry-After: 86400 pauses 300 s, not a day), and resume() clears it", function()
            local c = cfg{ per_minute = 5, period = 2 }
            local raw = assert(core.limiter(c))
            local l = assert(limiter.new(c))
            -- paused_until is wall-clock seconds turned from the monotonic
            -- clock: allow os.time()'s flooring (1 s) and that conversion's
            -- jitter (1 s) around the 300 s cap
            local t0 = os.time()
            raw:pause(86400)
            local st = l:status()
            assert.truthy(st.paused_until > 0)
            assert.truthy(st.paused_until <= t0 + 302, st.paused_until - t0)
            local ok, wait = raw:try()
            assert.is_false(ok)
            assert.truthy(wait > 290 and wait <= 300, wait)
            raw:observe(0, nil, 86400)          -- remaining 0 with a day's reset: the same cap
            assert.truthy(l:status().paused_until <= os.time() + 302)
            assert.is_true(l:resume())
            assert.equal(0, l:status().paused_until)
            assert.is_true(l:acquire(0))
            raw:close()
            l:close()
        end)
    end)
end)
