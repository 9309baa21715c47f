-- spec/45-ngx_startup_spec.lua: mediquo.ngx.init_worker's start-up checks
-- in real nginx (examples/nginx.conf, workers as nobody): a limiter dir the
-- workers may not use is in error.log at `error` within a second of the
-- start, with no request made, naming the fix (chown the dir, or
-- rate_limit.group) and without the doubled "rate_limit: rate_limit:"; a
-- usable one is logged at `notice`. Without init_worker_by_lua_block the
-- same fault stays silent until the first call (the mechanism's proof).

local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local USER = "nobody nogroup"

-- polls gw's error.log for pattern for at most `within` seconds after t0
-- -> the line, seconds after t0 | nil
local function wait_log(gw, pattern, t0, within)
    for _ = 1, 400 do
        local log = gw:error_log()
        local line = log:match("[^\n]*" .. pattern .. "[^\n]*")
        if line then return line, H.now() - t0 end
        if H.now() - t0 > within then return nil end
        H.sleep(0.02)
    end
end

describe("mediquo.ngx start-up checks (workers as nobody)", function()
    local sb
    setup(function() sb = H.sandbox{} end)
    before_each(function() sb:reset() end)

    it("logs a limiter dir the workers cannot use at error within a second, naming the fix", function()
        local dir = NH.tmpdir("ngx-owner")             -- root's, 0700: not nobody's
        H.run("chmod 700 " .. H.shell_quote(dir))
        local t0 = H.now()
        local gw = NH.gateway(sb, { workers = 2, user = USER, env = { MEDIQUO_RL_DIR = dir } })
        finally(function() gw:stop(); H.run("rm -rf " .. H.shell_quote(dir)) end)
        local started = H.now()
        local line, at = wait_log(gw, "start%-up check failed", t0, (started - t0) + 1)
        assert.truthy(line, "no start-up error within a second of the start:\n" .. gw:error_log())
        assert.is_true(at <= (started - t0) + 1, ("%.2f s"):format(at))
        assert.matches("%[error%]", line)
        assert.truthy(line:find(dir, 1, true), line)
        assert.matches("Permission denied", line)
        assert.matches("chown nobody " .. dir:gsub("%p", "%%%0"), line)
        assert.matches("rate_limit.group", line)
        assert.matches("uid 65534 %(nobody%)", line)
        assert.falsy(line:find("rate_limit: rate_limit:", 1, true), line)
        assert.are.same({}, sb:api_log())                  -- no request was needed
        -- status() shows it to the operator, without the call having run
        local st, raw = gw:get("/status")
        assert.are.equal(200, st)
        local t = H.json.decode(raw)
        assert.is_false(t.checks.ok)
        assert.matches("chown", t.checks.error)
    end)

    it("logs a usable setup at notice", function()
        local t0 = H.now()
        local gw = NH.gateway(sb, { workers = 1, user = USER })
        finally(function() gw:stop() end)
        local line = wait_log(gw, "start%-up check: ready", t0, (H.now() - t0) + 1)
        assert.truthy(line, gw:error_log())
        assert.matches("%[notice%]", line)
        assert.falsy(gw:error_log():find("[error]", 1, true), gw:error_log())
    end)

    it("without init_worker_by_lua_block the fault waits for the first call (the mechanism's proof)", function()
        local path = NH.conf_variant(function(conf)
            return (conf:gsub("\n%s*init_worker_by_lua_block[^\n]*", "\n"))
        end)
        local dir = NH.tmpdir("ngx-owner")
        H.run("chmod 700 " .. H.shell_quote(dir))
        local gw = NH.gateway(sb, { workers = 1, user = USER, conf = path, env = { MEDIQUO_RL_DIR = dir } })
        finally(function() gw:stop(); os.remove(path); H.run("rm -rf " .. H.shell_quote(dir)) end)
        H.sleep(1.2)
        assert.falsy(gw:error_log():find(dir, 1, true), gw:error_log())
        local st = gw:post("/book", { code = "s1", starts_at = "2030-05-20T10:00:00Z",
                                      patient = "P1", professional = "prof-demo-1" })
        assert.are.equal(500, st)
        assert.truthy(gw:error_log():find(dir, 1, true))
    end)
end)
