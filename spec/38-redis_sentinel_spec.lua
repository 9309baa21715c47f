-- spec/38-redis_sentinel_spec.lua: one budget across hosts through Redis
-- Sentinel (issue 20): 1 master + 1 replica + 3 Sentinels (quorum 2,
-- down-after 1 s), real processes on loopback ports (spec/redis_ha_helper.lua),
-- 3 simulated hosts on one budget: two of 2 processes each
-- (spec/redis_worker.lua, Lua 5.4 and LuaJIT, the blocking path) and a real
-- nginx gateway of 2 workers (mediquo.ngx_limiter, cosockets); the master
-- SIGKILLed under that load. Through the
-- failover: never more than per_minute in any window, no call waiting past
-- max_wait, every process back on backend "redis", degraded = false. A
-- control run without the quarantine and hand-back shows the bound failing.
-- Before it, a forced SENTINEL FAILOVER under the same load: the old master
-- stays up as a replica and answers READONLY. Setup faults: an unknown
-- master name is kind config. ~80 s.

local core = require "mediquo.core"
local mediquo = require "mediquo"
local H = require "spec.helper"
local HA = require "spec.redis_ha_helper"

local now = core.limiter_now

local tmp
local nkey = 0
local function newkey() nkey = nkey + 1; return ("sentinel-%d-%d"):format(nkey, now()) end
local mkdir = H.mkdir

describe("rate_limit.redis through Sentinel", function()
    local s

    setup(function() tmp, s = H.tmpdir("sspec"), HA.sentinel{} end)
    teardown(function() HA.stop_all(); H.rmdir(tmp) end)

    describe("setup", function()
        it("finds the master through the Sentinels, its keys land on the master", function()
            local key = newkey()
            HA.opens(s.url, key, tmp .. "/a")
            local tag = HA.budget_tag(key)
            assert.equal("1", HA.cli(s.master.port, "EXISTS " .. H.shell_quote(tag .. ":hosts")):match("%d+"))
        end)

        it("a Sentinel down among the three is no fault: the next one answers", function()
            -- a port with nothing listening first in the list
            local url = s.url:gsub("^redis%-sentinel://", "redis-sentinel://127.0.0.1:" .. H.free_port() .. ",")
            HA.opens(url, newkey(), tmp .. "/b")
        end)

        it("no Sentinel answering is an outage, not a setup fault: created, degraded, with the reason", function()
            local url = ("redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/%s"):format(H.free_port(), H.free_port(), s.name)
            HA.outage(url, newkey(), tmp .. "/e")
        end)

        it("an unknown master name is kind config, naming the name and no password", function()
            local url = "redis-sentinel://:s3cret-pw@" .. s.hosts .. "/no-such-master"
            local l, err = mediquo.limiter{ key = newkey(), dir = mkdir(tmp .. "/c"), redis = url }
            assert.is_nil(l)
            assert.equal("config", err.kind)
            assert.matches("no-such-master", err.message, 1, true)
            assert.is_nil(tostring(err):find("s3cret", 1, true))
        end)

        it("a data node given as a Sentinel is kind config (it is not a Sentinel)", function()
            local url = "redis-sentinel://127.0.0.1:" .. s.replica.port .. "/" .. s.name
            local l, err = mediquo.limiter{ key = newkey(), dir = mkdir(tmp .. "/d"), redis = url }
            assert.is_nil(l)
            assert.equal("config", err.kind)
            assert.matches("127.0.0.1:" .. s.replica.port, err.message, 1, true)
        end)
    end)

    -- 3 hosts on one key (HA.load_run); event(sen) after 1.5 periods (a
    -- SIGKILL of the master by default); the run is `periods` long (8)
    local function failover_run(sen, c, event, periods)
        return HA.load_run(tmp .. "/" .. c.key, c, sen.url, function()
            local new, took = (event or sen.kill_master)(sen)
            return new, ("failover %.1f s"):format(took)
        end, periods)
    end

    -- HA.holds, and the budget now lives on the new master
    local function holds(r, c)
        HA.holds(r)
        local tag = HA.budget_tag(c.key)
        assert.equal("1", HA.cli(r.new.port, "EXISTS " .. H.shell_quote(tag .. ":hosts")):match("%d+"))
    end

    describe("SENTINEL FAILOVER under load from 3 hosts: the old master, still up, answers READONLY", function()
        it("never over the limit in any window, no call past max_wait, every process on the new master", function()
            -- (under ASan: READONLY's path in C runs in spec 36's demotion,
            -- and CI's 30 minutes do not hold this 24 s run twice)
            if H.sanitized(pending, "the READONLY path: spec 36 under ASan") then return end
            local c = { key = newkey(), per_minute = 60, burst = 10, period = 2, gateway = 3 }
            -- Sentinel demotes the old master when it next reads its INFO
            -- (every 10 s): ~11 s here, so this run is longer
            holds(failover_run(s, c, function(sen) return sen:failover() end, 12), c)
        end)
    end)

    describe("the master SIGKILLed under load from 3 hosts", function()
        it("never over the limit in any window, no call past max_wait, every process back on Redis", function()
            local c = { key = newkey(), per_minute = 60, burst = 10, period = 2, gateway = 3 }
            holds(failover_run(s, c), c)
        end)

        it("without the quarantine and the hand-back the same failover breaks the window", function()
            -- a new set (the first one's master is gone): the same run with
            -- the test hook that turns both off (a new set again if it must
            -- be made twice: HA.breaks_once)
            -- The first set stops first: its Sentinels, told to turn the
            -- master they lost into a replica when it comes back, would
            -- do so to a new set's node given its port
            s:stop()
            HA.breaks_once(function()
                local s2 = HA.sentinel{}
                local c = { key = newkey(), per_minute = 60, burst = 10, period = 2,
                            env = H.hooks_env("MEDIQUO_TEST_REDIS_UNSAFE=1 ") }
                local r = failover_run(s2, c)
                s2:stop()
                return r
            end, "38", pending)
        end)
    end)
end)
