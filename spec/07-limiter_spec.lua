-- spec/07-limiter_spec.lua: the host-wide rate limiter (issue 4), with real
-- processes (spec/limiter_worker.lua) sharing one key. Start times are the
-- limiter's own (CLOCK_MONOTONIC ns, what its window is kept in), so the
-- window checks below test exactly what the limiter promises.
-- Every wait is bounded in count and time; the file takes ~20 s.

local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"

local NS = 1e9
local HDR = 320                     -- the header; then per_minute ring slots
local function FILE_SIZE(per_minute) return HDR + 8 * per_minute end

local sh = H.sh
local function sleep(s) os.execute("sleep " .. s) end
local now = core.limiter_now

local tmp
local function cfg(t) return H.limiter_cfg(t, tmp, "spec") end

local function spawn(mode, c, until_ns, a, b, env)
    return H.limiter_worker(tmp, mode, c, until_ns, a, b, env)
end

local lines = H.lines

-- waits (at most timeout s) for a worker to log `word`
local function wait_for(w, word, timeout)
    local deadline = now() + timeout * NS
    for _ = 1, 1000 do
        for _, l in ipairs(lines(w.out)) do
            if l == word then return true end
            if l:match("^error") then return false, l end
        end
        if now() > deadline then break end
        sleep(0.05)
    end
    return false, "worker " .. w.out .. " did not log " .. word .. ": "
        .. table.concat(lines(w.out .. ".stdout"), "\n")
end

local function alive(pid)
    return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
        or os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0
end

local function starts(workers)
    local ts = {}
    for _, w in ipairs(workers) do
        for _, l in ipairs(lines(w.out)) do
            if l:match("^%d+$") then ts[#ts + 1] = tonumber(l) end
        end
    end
    table.sort(ts)
    return ts
end

-- the most starts in any half-open window [t, t + period)
local max_in_window = H.max_in_window

local count_between = H.count_between

-- the largest excess over the GCRA bound: starts in [t_i, t_j] minus
-- (t_j - t_i) / spacing; the burst rule says it never passes burst
local function burst_excess(ts, spacing_ns)
    local worst = 0
    for i = 1, #ts do
        for j = i, #ts do
            local e = (j - i + 1) - (ts[j] - ts[i]) / spacing_ns
            if e > worst then worst = e end
        end
    end
    return worst
end

local function file_mode(path) return sh("stat -c %a '" .. path .. "'") end
local function file_size(path) return tonumber(sh("stat -c %s '" .. path .. "'")) end

local function poke(path, offset, bytes)
    local f = assert(io.open(path, "r+b"))
    f:seek("set", offset)
    f:write(bytes)
    f:close()
end

local write_file = H.write_file

describe("limiter", function()
    setup(function()
        tmp = sh("mktemp -d /tmp/mq-limiter-spec.XXXXXX")
        assert(tmp:match("^/tmp/mq%-limiter%-spec"))
    end)
    teardown(function()
        if tmp then os.execute("rm -rf '" .. tmp .. "'") end
    end)

    describe("normalize", function()
        local cases = {
            { {}, nil, { per_minute = 600, burst = 60, period = 60, key = "h:443", max_wait = 10 } },
            { { per_minute = 10 }, nil, { per_minute = 10, burst = 10 } },
            { { per_minute = 100, burst = 1, period = 0.5, key = "k", max_wait = 0, dir = "/x" }, nil,
              { burst = 1, period = 0.5, key = "k", max_wait = 0, dir = "/x" } },
            { { per_minute = 0 }, "rate_limit.per_minute: must be an integer > 0" },
            { { per_minute = 1.5 }, "rate_limit.per_minute: must be an integer > 0" },
            { { per_minute = "600" }, "rate_limit.per_minute: must be an integer > 0" },
            { { per_minute = 1 / 0 }, "rate_limit.per_minute: must be an integer > 0" },
            { { per_minute = 1000001 }, "rate_limit.per_minute: must be at most 1000000" },
            { { burst = 0 }, "rate_limit.burst: must be an integer from 1 to per_minute" },
            { { per_minute = 5, burst = 6 }, "rate_limit.burst: must be an integer from 1 to per_minute" },
            { { period = 0 }, "rate_limit.period" },
            { { period = 0 / 0 }, "rate_limit.period" },
            { { period = "60" }, "rate_limit.period" },
            { { key = "" }, "rate_limit.key: must be a non-empty string" },
            { { key = 1 }, "rate_limit.key: must be a non-empty string" },
            { { max_wait = -1 }, "rate_limit.max_wait: must be a number >= 0" },
            { { max_wait = 0 / 0 }, "rate_limit.max_wait: must be a number >= 0" },
            { { dir = false }, "rate_limit.dir: must be a non-empty string" },
            { { per_min = 5 }, "rate_limit: unknown field 'per_min' (did you mean 'per_minute'?)" },
        }
        for i, c in ipairs(cases) do
            it("case " .. i, function()
                local got, err = limiter.normalize(c[1], "h:443")
                if c[2] then
                    assert.is_nil(got)
                    assert.equal("invalid_argument", err.kind)
                    assert.truthy(err.message:find(c[2], 1, true), err.message)
                else
                    assert.is_nil(err)
                    for k, v in pairs(c[3]) do assert.equal(v, got[k], k) end
                end
            end)
        end
        it("defaults dir to a directory private to the user, made on open", function()
            local got = assert(limiter.normalize(nil, "h"))
            assert.is_nil(got.dir)                      -- chosen when opened
            local dir = assert(core.limiter_default_dir())
            assert.truthy(dir:match("/mediquo%-u%d+$"), dir)
            assert.equal("700", file_mode(dir))
            assert.is_nil(limiter.normalize("x", "h"))
        end)
    end)

    describe("core object", function()
        it("never raises on bad options", function()
            local bad = { "x", 5, {}, { key = "k" }, { key = "k", dir = tmp, per_minute = "a" },
                          { key = "k", dir = tmp, per_minute = 1.5 },
                          { key = "k", dir = tmp, per_minute = 0 },
                          { key = "k", dir = tmp, per_minute = 10, burst = 11 },
                          { key = "k", dir = tmp, period = -1 },
                          { key = "k", dir = tmp, period = 0 / 0 },
                          { key = {}, dir = tmp } }
            for _, o in ipairs(bad) do
                local l, msg = core.limiter(o)
                assert.is_nil(l)
                assert.is_string(msg)
            end
        end)

        it("makes a 0600 file named by the key's hash; close is idempotent", function()
            local l = assert(core.limiter(cfg{ key = "mode-check" }))
            local path = l:path()
            assert.truthy(path:match("/mediquo%-rl%-%x+%.shm$"), path)
            assert.equal("600", file_mode(path))
            assert.equal(FILE_SIZE(50), file_size(path))
            assert.equal("mediquo.limiter(key=mode-check, per_minute=50)", tostring(l))
            l:close()
            l:close()
            assert.equal("mediquo.limiter(closed)", tostring(l))
            assert.has_error(function() l:try() end, "limiter is closed")
            assert.has_error(function() l:status() end, "limiter is closed")
        end)

        it("is collected once closed or dropped", function()
            local weak = setmetatable({}, { __mode = "v" })
            do
                local a = assert(core.limiter(cfg{}))
                a:close()
                weak[1] = a
                weak[2] = assert(core.limiter(cfg{}))     -- never closed: __gc
            end
            collectgarbage()
            collectgarbage()
            assert.is_nil(weak[1])
            assert.is_nil(weak[2])
        end)

        it("status counts the window; two keys do not interfere", function()
            local c1, c2 = cfg{ per_minute = 3, period = 30 }, cfg{ per_minute = 3, period = 30 }
            local a, b = assert(core.limiter(c1)), assert(core.limiter(c2))
            assert.are_not.equal(a:path(), b:path())
            for _ = 1, 3 do assert.is_true((a:try())) end
            local ok, wait = a:try()
            assert.is_false(ok)
            assert.truthy(wait > 29 and wait <= 30.1, wait)    -- the window + its transit guard
            local st = a:status()
            assert.same({ per_minute = 3, used = 3, available = 0, paused_until = 0 },
                        { per_minute = st.per_minute, used = st.used, available = st.available,
                          paused_until = st.paused_until })
            for _ = 1, 3 do assert.is_true((b:try())) end
            assert.is_false((b:try()))
            a:close()
            b:close()
        end)

        it("the first opener's rule stays in force; a later opener is told, not obeyed", function()
            local c = cfg{ per_minute = 5, period = 30 }
            local a = assert(core.limiter(c))
            for _ = 1, 5 do assert.is_true((a:try())) end
            c.per_minute, c.burst = 8, 8
            local b = assert(core.limiter(c))
            local st = b:status()
            assert.equal(5, st.per_minute)
            assert.equal(5, st.rule.per_minute)
            assert.equal(30, st.rule.period)
            assert.is_true(st.mismatch)
            assert.is_nil(a:status().mismatch)
            assert.is_false((b:try()))             -- 5 used of the 5 in force, not of 8
            assert.equal(5, a:status().used)
            a:close() b:close()
        end)
    end)

    describe("set_rule", function()
        it("changes the rule for every sharer, explicitly, carrying the log over", function()
            local c = cfg{ per_minute = 5, period = 30 }
            local a = assert(limiter.new(c))
            local b = assert(core.limiter(c))
            for _ = 1, 5 do assert.is_true(a:acquire(0)) end
            local t0 = now()
            assert.is_true(a:set_rule{ per_minute = 8, burst = 8, period = 30 })
            local dt = (now() - t0) / NS
            assert.truthy(dt >= 0.2 and dt < 5, dt)         -- the handover
            local st = a:status()
            assert.same({ 8, 5, 3 }, { st.per_minute, st.used, st.available })
            assert.is_nil(st.mismatch)
            local bs = b:status()                            -- b moved over
            assert.same({ 8, 5 }, { bs.per_minute, bs.used })
            assert.is_true(bs.mismatch)                      -- it asked for 5
            for _ = 1, 3 do assert.is_true(a:acquire(0)) end
            assert.is_false((b:try()))
            -- lower: the newest 4 are kept, so nothing more in this window
            assert.is_true(a:set_rule{ per_minute = 4, burst = 4, period = 30 })
            assert.is_false((b:try()))
            assert.equal(4, b:status().used)
            assert.equal(FILE_SIZE(4), file_size(b:path()))
            local _, err = a:set_rule{ per_minute = 0 }
            assert.equal("invalid_argument", err.kind)
            a:close()
            b:close()
        end)
    end)

    describe("mediquo.limiter", function()
        it("defaults the key to the default client's host:port", function()
            local l = assert(limiter.new{ dir = tmp })
            assert.truthy(tostring(l):find("key=sdk.mediquo.com:443", 1, true))
            l:close()
        end)

        it("acquire returns rate_limited with retry_after when no slot comes", function()
            local l = assert(limiter.new(cfg{ per_minute = 1, period = 60, max_wait = 0.05 }))
            assert.is_true(l:acquire())
            local t0 = now()
            local ok, err = l:acquire()
            assert.is_nil(ok)
            assert.equal("rate_limited", err.kind)
            assert.truthy(err.retry_after > 59 and err.retry_after <= 60.1, err.retry_after)   -- + guard
            assert.truthy(tostring(err):find("no rate-limit slot within 0.05s", 1, true), tostring(err))
            assert.truthy(now() - t0 < 0.5 * NS)    -- fails at once, no pointless sleep
            local st = l:status()
            assert.same({ 1, 1, 0, 0 }, { st.per_minute, st.used, st.available, st.paused_until })
            local _, e2 = l:acquire(-1)
            assert.equal("invalid_argument", e2.kind)
            assert.is_nil(limiter.new{ dir = tmp, bogus = 1 })
            local _, e3 = limiter.new{ dir = tmp .. "/missing/dir" }
            assert.equal("config", e3.kind)
            assert.truthy(e3.message:find("cannot create", 1, true), e3.message)
            l:close()
        end)

        it("acquire waits for the slot within max_wait", function()
            local l = assert(limiter.new(cfg{ per_minute = 10, burst = 1, period = 1, max_wait = 1 }))
            assert.is_true(l:acquire())
            local t0 = now()
            assert.is_true(l:acquire())                     -- spaced period/per_minute
            local waited = (now() - t0) / NS
            assert.truthy(waited > 0.08 and waited < 0.3, waited)
            l:close()
        end)
    end)

    describe("across processes", function()
        it("4 processes: never more than per_minute in any window, >= 99% used, burst bounded", function()
            local c = cfg{ per_minute = 50, burst = 10, period = 2 }
            local P = c.period * NS
            local until_ns = now() + 3 * P + 0.6 * NS
            local ws = {}
            for i = 1, 4 do ws[i] = spawn("hammer", c, until_ns) end
            for i = 1, 4 do assert(wait_for(ws[i], "done", 12)) end
            local ts = starts(ws)
            local t0 = ts[1]
            assert.equal(50, count_between(ts, t0, t0 + P))          -- exactly the budget
            assert.equal(50, max_in_window(ts, P))                   -- never more
            local used = count_between(ts, t0, t0 + 3 * P)
            assert.truthy(used >= 0.99 * 150, "only " .. used .. " of 150 in 3 windows")
            assert.truthy(burst_excess(ts, P / c.per_minute) <= c.burst + 1e-6,
                          "burst exceeded: " .. burst_excess(ts, P / c.per_minute))
            -- the first burst really went back to back, the rest were spaced
            assert.truthy(ts[c.burst] - ts[1] < 0.02 * NS)
            assert.truthy(ts[c.burst + 1] - ts[1] >= P / c.per_minute - 1)
            -- every process got some: nobody starves
            for i = 1, 4 do assert.truthy(#starts{ ws[i] } > 0, "worker " .. i .. " starved") end
        end)

        it("a process SIGKILLed in a tight loop neither blocks the others nor breaks the totals", function()
            local c = cfg{ per_minute = 50, burst = 10, period = 2 }
            local P = c.period * NS
            local until_ns = now() + 2 * P + 0.6 * NS
            local ws = {}
            for i = 1, 3 do ws[i] = spawn("hammer", c, until_ns) end
            local victim = spawn("spin", c, until_ns)
            ws[4] = victim
            assert(wait_for(victim, "ready", 5))
            sleep(1.2)
            os.execute("kill -9 " .. victim.pid)
            for i = 1, 3 do assert(wait_for(ws[i], "done", 10)) end
            assert.is_false(alive(victim.pid))
            local ts = starts(ws)
            assert.truthy(#starts{ victim } > 0, "the victim took no slot before it died")
            assert.truthy(max_in_window(ts, P) <= 50, "window exceeded: " .. max_in_window(ts, P))
            local used = count_between(ts, ts[1], ts[1] + 2 * P)
            assert.truthy(used >= 0.99 * 100, "only " .. used .. " of 100 in 2 windows")
        end)

        it("counts the window's starts from a hint as a plain halving does", function()
            -- lim:status().used and observe() search the ring for the
            -- window's first start from where this process found it last
            -- (a gallop, then halving); the test build counts at one
            -- instant from hints near and far and by plain halving while
            -- two processes fill and drain a 3,000-slot ring
            local c = cfg{ per_minute = 3000, burst = 100, period = 0.25 }
            local until_ns = now() + 1.5 * NS
            local ws = { spawn("search", c, until_ns, 1, nil, H.hooks_env()),
                         spawn("search", c, until_ns, 2, nil, H.hooks_env()) }
            for i = 1, 2 do
                assert(wait_for(ws[i], "done", 15))
                local got = lines(ws[i].out)[2]
                local n = tonumber((got or ""):match("^checked (%d+)$"))
                assert.truthy(n and n > 100, "worker " .. i .. ": " .. tostring(got))
            end
        end)

        it("a sharer SIGKILLed in the middle of an admission is finished by the others", function()
            local c = cfg{ per_minute = 50, period = 30 }
            local l = assert(core.limiter(c))
            local w = spawn("freeze", c, 0, nil, nil, H.hooks_env())
            assert(wait_for(w, "freezing", 5))
            for _ = 1, 200 do                      -- its slot is claimed
                if l:status().used == 1 then break end
                sleep(0.02)
            end
            assert.equal(1, l:status().used)
            os.execute("kill -9 " .. w.pid)
            for _ = 1, 100 do
                if not alive(w.pid) then break end
                sleep(0.02)
            end
            local t0 = now()
            assert.is_true((l:try()))
            assert.truthy(now() - t0 < 0.1 * NS)
            assert.equal(2, l:status().used)      -- the victim's claimed slot counts
            l:close()
        end)

        it("a pause from one process stops the others until it ends", function()
            local c = cfg{ per_minute = 50, period = 2 }
            local l = assert(core.limiter(c))
            local w = spawn("pause", c, 0, 1.0)
            assert(wait_for(w, "done", 5))
            local ok, wait = l:try()
            assert.is_false(ok)
            assert.truthy(wait > 0.3 and wait <= 1.0, wait)
            local st = l:status()
            assert.equal(0, st.available)
            assert.truthy(st.paused_until > os.time() - 1 and st.paused_until < os.time() + 2)
            -- another process spinning during the pause gets nothing
            local spin = spawn("spin", c, now() + (wait - 0.2) * NS)
            assert(wait_for(spin, "done", 5))
            assert.equal(0, #starts{ spin })
            sleep(wait + 0.05)
            assert.is_true((l:try()))
            l:close()
        end)

        it("the server's remaining (calibration) reduces admits until its window ends", function()
            local c = cfg{ per_minute = 50, period = 2 }
            local l = assert(core.limiter(c))
            local plain = assert(core.limiter(cfg{ per_minute = 50, period = 2 }))
            local w = spawn("observe", c, 0, 3, 1.0)       -- remaining 3, reset in 1 s
            assert(wait_for(w, "done", 5))
            local n, m = 0, 0
            for _ = 1, 10 do
                if l:try() then n = n + 1 end
                if plain:try() then m = m + 1 end
            end
            assert.equal(3, n)
            assert.equal(10, m)
            local ok, wait = l:try()
            assert.is_false(ok)
            assert.truthy(wait > 0.3 and wait <= 1.0, wait)
            assert.equal(0, l:status().available)
            sleep(wait + 0.05)
            assert.is_true((l:try()))
            -- a higher remaining than we think is ignored; 0 pauses
            l:observe(1000, 600, 1)
            assert.is_true((l:try()))
            l:observe(0, nil, 0.5)
            ok, wait = l:try()
            assert.is_false(ok)
            assert.truthy(wait > 0.3 and wait <= 0.5, wait)
            assert.truthy(l:status().paused_until > 0)
            l:close()
            plain:close()
        end)
    end)

    describe("a bad state file", function()
        local function bad_file(setup_bytes)
            local c = cfg{ per_minute = 2, period = 30 }
            local l = assert(core.limiter(c))
            local path = l:path()
            assert.is_true((l:try()))
            assert.is_true((l:try()))
            l:close()
            setup_bytes(path)
            return c, path
        end

        local remade = {
            garbage = function(p)
                local t = {}
                for i = 1, 4096 do t[i] = string.char(math.random(0, 255)) end
                write_file(p, table.concat(t))
            end,
            empty = function(p) write_file(p, "") end,
            truncated = function(p)
                local f = assert(io.open(p, "rb"))
                local head = f:read(200)
                f:close()
                write_file(p, head)
            end,
            ["wrong magic"] = function(p) poke(p, 0, "NOTOURS!") end,
            ["older version"] = function(p) poke(p, 8, "\0\0\0\0") end,
            ["bad sizes"] = function(p) poke(p, 12, "\1\0\0\0") end,
        }
        for name, mangle in pairs(remade) do
            it("is re-made when " .. name, function()
                local c, path = bad_file(mangle)
                local l, err = core.limiter(c)
                assert.is_not_nil(l, err)
                assert.equal(FILE_SIZE(2), file_size(path))
                assert.equal("600", file_mode(path))
                assert.is_true((l:try()))            -- a fresh log
                l:close()
            end)
        end

        it("counts times from the future (an earlier boot's) as free", function()
            local c = cfg{ per_minute = 2, period = 30 }
            local l = assert(core.limiter(c))
            local path = l:path()
            l:close()
            poke(path, HDR, string.rep("\255", 7) .. "\127")
            poke(path, HDR + 8, string.rep("\255", 7) .. "\127")
            l = assert(core.limiter(c))
            assert.equal(0, l:status().used)
            assert.is_true((l:try()))
            assert.is_true((l:try()))
            assert.is_false((l:try()))
            l:close()
            assert.equal(FILE_SIZE(2), file_size(path))
        end)

        it("keeps its log when reopened from the same boot", function()
            local c = bad_file(function() end)
            local l = assert(core.limiter(c))
            assert.is_false((l:try()))
            l:close()
        end)

        local refused = {
            { "a newer version", function(p) poke(p, 8, "\9\0\0\0") end, "newer lua-mediquo" },
            { "readable by others", function(p) os.execute("chmod 0644 '" .. p .. "'") end, "mode 0600" },
            { "a symlink", function(p)
                os.execute("rm -f '" .. p .. "' && ln -s /etc/passwd '" .. p .. "'")
            end, "cannot open" },
            { "a directory", function(p)
                os.execute("rm -f '" .. p .. "' && mkdir '" .. p .. "'")
            end, "cannot open" },
        }
        for _, r in ipairs(refused) do
            it("is refused with a clear error when " .. r[1], function()
                local c, path = bad_file(r[2])
                local l, err = core.limiter(c)
                assert.is_nil(l)
                assert.truthy(err:find(r[3], 1, true), err)
                assert.truthy(err:find(path, 1, true), err)
                local lim, e2 = limiter.new(c)
                assert.is_nil(lim)
                assert.equal("config", e2.kind)
            end)
        end
    end)
end)
