-- spec/10-ngx_metrics_spec.lua: the shared counters file behind
-- mediquo.ngx.metrics() (src/metrics.c), and configure()'s validation,
-- outside nginx.

local H = require "spec.helper"
local core = require "mediquo.core"

local q = H.shell_quote

local function tmpdir()
    return (H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-mx-spec-XXXXXX\""):gsub("%s+$", ""))
end

describe("core.metrics", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() H.run("rm -rf " .. q(dir)) end)

    it("counts calls by op and kind, attempts, retries, waits and a latency histogram", function()
        local m = assert(core.metrics{ key = "k1", dir = dir })
        m:add("create", "ok", 0.003, 1, 2, 0.25, 2)
        m:add("create", "ok", 0.2)
        m:add("cancel", "not_found", 7, 0, 0, 0, 1)
        local s = m:snapshot()
        assert.are.equal(2, s.requests.create.ok)
        assert.are.equal(1, s.requests.cancel.not_found)
        assert.are.same({}, s.requests.reschedule)
        assert.are.equal(3, s.attempts)
        assert.are.equal(1, s.retries)
        assert.are.equal(2, s.limiter_waits)
        assert.is_true(math.abs(s.limiter_wait_seconds - 0.25) < 1e-6)
        assert.are.equal(3, s.latency.count)
        assert.is_true(math.abs(s.latency.sum - 7.203) < 1e-5)
        local b = s.latency.buckets
        assert.are.equal(14, #b)
        assert.are.equal(0.005, b[1].le)
        assert.are.equal(1, b[1].count)            -- 0.003
        assert.are.equal(2, b[6].count)            -- <= 0.25: + 0.2
        assert.are.equal(2, b[9].count)            -- <= 2.5
        assert.are.equal(2, b[10].count)           -- <= 5: 7 is not
        assert.are.equal(3, b[11].count)           -- <= 10
        assert.are.equal(math.huge, b[14].le)
        assert.are.equal(3, b[14].count)
        m:close()
    end)

    it("refuses unknown ops and kinds (a caller's bug) by raising", function()
        local m = assert(core.metrics{ key = "k2", dir = dir })
        assert.has_error(function() m:add("delete", "ok", 0) end)
        assert.has_error(function() m:add("create", "fine", 0) end)
        assert.has_error(function() m:add("create") end)
        m:close()
        assert.has_error(function() m:add("create", "ok", 0) end)
        m:close()                                  -- idempotent
        assert.are.equal("mediquo.metrics(closed)", tostring(m))
    end)

    it("returns nil, message for bad options and unusable dirs", function()
        local m, msg = core.metrics{ key = "", dir = dir }
        assert.is_nil(m)
        assert.truthy(msg:find("key", 1, true))
        m, msg = core.metrics{ key = "k", dir = dir .. "/missing" }
        assert.is_nil(m)
        assert.truthy(msg:find("missing", 1, true))
        m, msg = core.metrics("nope")
        assert.is_nil(m)
        assert.truthy(msg)
    end)

    it("keeps one 0600 file per key, sums exactly across processes", function()
        local m = assert(core.metrics{ key = "shared", dir = dir })
        local path = m:path()
        assert.truthy(path:find(dir, 1, true) == 1)
        assert.are.equal("600", (H.run("stat -c %a " .. q(path)):gsub("%s+$", "")))
        local code = ([[local m = assert(require("mediquo.core").metrics{ key = "shared", dir = %q })
            for _ = 1, 5000 do m:add("reschedule", "ok", 0.001, 0, 0, 0, 1) end]]):format(dir)
        local cmds = {}
        for i = 1, 4 do cmds[i] = "lua5.4 -e " .. q(code) .. " &" end
        cmds[#cmds + 1] = "wait"
        H.run(table.concat(cmds, "\n"))
        local s = m:snapshot()
        assert.are.equal(20000, s.requests.reschedule.ok)
        assert.are.equal(20000, s.attempts)
        assert.are.equal(20000, s.latency.buckets[1].count)
        local other = assert(core.metrics{ key = "other", dir = dir })
        assert.are_not.equal(path, other:path())
        assert.are.same({}, other:snapshot().requests.reschedule)
        other:close()
        m:close()
    end)

    it("replaces a damaged file, and never follows a symlink", function()
        local m = assert(core.metrics{ key = "dmg", dir = dir })
        local path = m:path()
        m:add("create", "ok", 0)
        m:close()
        local f = assert(io.open(path, "wb"))
        f:write(("garbage"):rep(100))
        f:close()
        m = assert(core.metrics{ key = "dmg", dir = dir })
        assert.are.equal(0, m:snapshot().latency.count)
        m:add("create", "ok", 0)
        assert.are.equal(1, m:snapshot().latency.count)
        m:close()
        os.remove(path)
        H.run("ln -s /etc/passwd " .. q(path))
        local m2, msg = core.metrics{ key = "dmg", dir = dir }
        assert.is_nil(m2)
        assert.truthy(msg:find("cannot open", 1, true), msg)
    end)
end)

describe("mediquo.ngx.configure", function()
    local mq = require "mediquo.ngx"

    it("validates like mediquo.new, plus its own options, naming the field", function()
        local cases = {
            { {}, "api_key" },
            { { api_key = "k", secret_key = "s", base_url = "ftp://x" }, "base_url" },
            -- no thread pool any more: its options are unknown fields
            { { api_key = "k", secret_key = "s", thread_pool = "mediquo" }, "thread_pool" },
            { { api_key = "k", secret_key = "s", max_in_flight = 8 }, "max_in_flight" },
            { { api_key = "k", secret_key = "s", metrics = "yes" }, "metrics" },
            { { api_key = "k", secret_key = "s", rate_limit = { per_min = 5 } }, "per_min" },
            { { api_key = "k", secret_key = "s", timeout = -1 }, "timeout" },
            { { api_key = "k", secret_key = "s", bogus = 1 }, "bogus" },
        }
        for _, c in ipairs(cases) do
            local ok, err = mq.configure(c[1])
            assert.is_nil(ok)
            assert.are.equal("invalid_argument", err.kind)
            assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
        end
        local ok, err = mq.configure("x")
        assert.is_nil(ok)
        assert.are.equal("invalid_argument", err.kind)
    end)

    it("accepts a valid configuration and never shows the secrets", function()
        local ok, err = mq.configure{ api_key = "the-api-key", secret_key = "the-secret-key",
                                      base_url = "http://127.0.0.1:1/v1", timeout = 3 }
        assert.is_true(ok, tostring(err))
        local _, bad = mq.configure{ api_key = "the-api-key", secret_key = "the-secret-key",
                                     base_url = "http://example.com/v1" }
        assert.falsy(tostring(bad):find("the-secret-key", 1, true))
        assert.falsy(tostring(bad):find("the-api-key", 1, true))
        local s = mq.stats()
        assert.are.equal(0, s.requests)
        for _, v in pairs(s) do assert.are_not.equal("the-secret-key", v) end
    end)

    it("raises outside nginx (misuse no input can cause)", function()
        assert.is_true((mq.configure{ api_key = "k", secret_key = "s" }))
        local ok, msg = pcall(mq.create, {})
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("inside nginx", 1, true), tostring(msg))
    end)
end)
