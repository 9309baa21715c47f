-- spec/27-limiter_group_spec.lua: one budget shared between users
-- (issue 17, rate_limit.group): a script run as root and the example
-- gateway's nginx workers run as `nobody`, both with group = "nogroup",
-- spend one budget in one 0660 file of that group; without `group`, the
-- workers cannot open root's 0600 file, and the gateway's first call fails
-- with kind `config`, answered as the gateway's own fault (5xx).
-- Needs root (to run workers as another user) and the nobody/nogroup
-- accounts; pending otherwise.

local mediquo = require "mediquo"
local H = require "spec.helper"

local sh = H.sh

local usable = sh("id -u") == "0" and sh("id -u nobody 2>/dev/null") ~= ""
    and sh("getent group nogroup") ~= ""

local function booking(code)
    return { code = code, starts_at = "2030-05-20T12:00:00+02:00", patient = "P1",
             professional = "prof-demo-1" }
end

describe("rate_limit.group", function()
    local NH, sb, dir, confs = nil, nil, nil, {}

    setup(function()
        if not usable then return end
        NH = require "spec.ngx_helper"
        sb = H.sandbox()
        -- a directory the group may create in (what the default
        -- /dev/shm/mediquo-g<gid> is), so the spec leaves no state behind
        dir = sh("mktemp -d /tmp/mq-group27.XXXXXX")
        assert(os.execute("chgrp nogroup '" .. dir .. "' && chmod 2770 '" .. dir .. "'"))
    end)
    teardown(function()
        if dir then os.execute("rm -rf '" .. dir .. "'") end
        for _, c in ipairs(confs) do os.remove(c) end
    end)

    local function gateway(key, with_group)
        local conf = NH.conf_variant(function(text)
            text = text:gsub("@USER@", "user nobody nogroup;")
            if with_group then
                text = text:gsub('dir = env%("MEDIQUO_RL_DIR"%),',
                                 'dir = env("MEDIQUO_RL_DIR"), group = "nogroup",')
            end
            return text
        end)
        confs[#confs + 1] = conf
        return NH.gateway(sb, { workers = 2, threads = 4, conf = conf,
                                env = { MEDIQUO_RL_KEY = key, MEDIQUO_RL_DIR = dir,
                                        MEDIQUO_RL_PER_MINUTE = 10, MEDIQUO_RL_PERIOD = 60,
                                        MEDIQUO_DEADLINE = 2 } })
    end

    it("a root script and nobody's nginx workers share one budget", function()
        if not usable then pending("needs root and the nobody/nogroup accounts") return end
        local key = "group27-" .. os.time() .. "-" .. math.random(1, 1e6)
        local lim = assert(mediquo.limiter{ dir = dir, key = key, group = "nogroup",
                                            per_minute = 10, period = 60, max_wait = 0 })
        local path = lim.core:path()
        assert.equal("660 root nogroup", sh("stat -c '%a %U %G' '" .. path .. "'"))
        for _ = 1, 6 do assert.is_true(lim:acquire()) end
        local gw = gateway(key, true)
        local ok_n, limited = 0, 0
        for i = 1, 6 do
            local status, body = gw:post("/book", booking(key .. "-" .. i))
            if status == 200 or status == 201 then
                ok_n = ok_n + 1
            else
                assert.equal(429, status, body)
                limited = limited + 1
            end
        end
        local log = gw:error_log()
        gw:stop()
        assert.equal(4, ok_n, log)               -- what the script left of the 10
        assert.equal(2, limited)
        local st = assert(lim:status())
        assert.equal(10, st.used)
        assert.equal(0, st.available)
        local _, err = lim:acquire()
        assert.equal("rate_limited", err.kind)
        lim:close()
        -- the workers' metrics file follows the group too
        local mx = sh("ls '" .. dir .. "' | grep '^mediquo-mx-' | head -1")
        if mx ~= "" then
            assert.equal("660 nogroup", sh("stat -c '%a %G' '" .. dir .. "/" .. mx .. "'"))
        end
    end)

    it("without group the gateway's first call fails with kind config, as a 5xx", function()
        if not usable then pending("needs root and the nobody/nogroup accounts") return end
        local key = "nogroup27-" .. os.time() .. "-" .. math.random(1, 1e6)
        local lim = assert(mediquo.limiter{ dir = dir, key = key, per_minute = 10, period = 60 })
        assert.equal("600", sh("stat -c '%a' '" .. lim.core:path() .. "'"))
        local gw = gateway(key, false)
        local status, body = gw:post("/book", booking(key .. "-1"))
        gw:stop()
        lim:close()
        assert.truthy(status >= 500 and status <= 599, tostring(status))
        assert.equal("table", type(body), tostring(body))
        assert.equal("config", body.error)
        -- and a library user gets the same kind from mediquo.new
        local c, err = mediquo.new{ api_key = "k", secret_key = "s", base_url = sb.base_url,
                                    rate_limit = { dir = dir, key = key, group = "no-such-group-27" } }
        assert.is_nil(c)
        assert.equal("config", err.kind)
    end)
end)
