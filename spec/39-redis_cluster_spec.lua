-- spec/39-redis_cluster_spec.lua: one budget across hosts through Redis
-- Cluster (issue 20): 3 masters, each with a replica, node-timeout 1 s,
-- real processes on loopback ports (spec/redis_ha_helper.lua). The budget's
-- keys share one hash tag; the specs pick budgets whose slot lives on a node
-- other than the seed (so the first answer is MOVED), and SIGKILL that
-- node's master under load from 3 simulated hosts (two of 2 processes,
-- spec/redis_worker.lua, the blocking path; a real nginx gateway of 2
-- workers, mediquo.ngx_limiter on cosockets), and reshard that slot to
-- another master under the same load (ASK while it moves, MOVED after):
-- never more than
-- per_minute in any window, no call past max_wait, every process back on
-- backend "redis", degraded = false; a control run without the quarantine
-- and hand-back breaks the window. A server that is not a Cluster is kind
-- config. ~60 s.

local mediquo = require "mediquo"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local HA = require "spec.redis_ha_helper"

local tmp
local mkdir = H.mkdir

-- "1"/"0", or the redirection ("MOVED slot host:port") from a node that
-- does not serve the key's slot
local function exists(node, key)
    local out = HA.cli(node.port, "EXISTS " .. H.shell_quote(HA.budget_tag(key) .. ":hosts"))
    return out:match("^MOVED %d+ %S+") or out:match("%d+")
end

describe("rate_limit.redis through Redis Cluster", function()
    local c

    setup(function() tmp, c = H.tmpdir("cspec"), HA.cluster{ masters = 3, replicas = 1 } end)
    teardown(function() HA.stop_all(); H.rmdir(tmp) end)

    describe("setup", function()
        it("a budget whose slot lives on another node than the seed: MOVED followed, keys on that node", function()
            local key, slot, node = c:key_elsewhere("cl-moved")
            HA.opens(c.url, key, tmp .. "/a")
            assert.equal("1", exists(node, key), "slot " .. slot .. " on " .. node.port)
            -- the seed does not hold it: it redirects there
            assert.equal("MOVED " .. slot .. " 127.0.0.1:" .. node.port, exists(c.seed, key))
        end)

        it("any seed may be the wrong node: a replica, then a port nothing listens on", function()
            local key = c:key_elsewhere("cl-seed")
            local rep = assert(c:replica_of(c.seed))
            local url = ("redis-cluster://127.0.0.1:%d,127.0.0.1:%d"):format(H.free_port(), rep.port)
            HA.opens(url, key, tmp .. "/b")
        end)

        it("no seed answering is an outage, not a setup fault: created, degraded, with the reason", function()
            local url = ("redis-cluster://127.0.0.1:%d,127.0.0.1:%d"):format(H.free_port(), H.free_port())
            HA.outage(url, "cl-down", tmp .. "/e")
        end)

        it("redis-cluster:// on a Redis that is not a Cluster is kind config, naming the server", function()
            local plain = R.start()
            local l, err = mediquo.limiter{ key = "cl-plain", dir = mkdir(tmp .. "/c"),
                                            redis = "redis-cluster://127.0.0.1:" .. plain.port }
            plain:stop()
            assert.is_nil(l)
            assert.equal("config", err.kind)
            assert.matches("127.0.0.1:" .. plain.port, err.message, 1, true)
            assert.matches("[Cc]luster", err.message)
        end)
    end)

    -- 3 hosts (HA.load_run) on a budget whose slot lives off the seed;
    -- `event(slot, node)` after 1.5 periods, the run 8 periods long
    -- (the control run: plain processes only, the hook in their environment)
    local function run_load(prefix, event, env)
        local key, slot, node = c:key_elsewhere(prefix, true)
        local cfg = { key = key, per_minute = 60, burst = 10, period = 2, env = env,
                      gateway = not env and 3 or nil }
        local r = HA.load_run(tmp .. "/" .. prefix, cfg, c.url, function()
            local new_home, what = event(slot, node)
            return new_home, ("slot %d: %s"):format(slot, what)
        end)
        r.key = key
        return r
    end

    -- HA.holds, and the budget now lives on its new home
    local function under_load(prefix, event)
        local r = run_load(prefix, event)
        HA.holds(r)
        assert.equal("1", exists(r.new, r.key), "the budget is not on " .. r.new.port .. "; " .. r.info)
    end

    describe("the budget's slot resharded to another master under load from 3 hosts (ASK, then MOVED)", function()
        it("never over the limit in any window, no call past max_wait, every process on the new node", function()
            -- (under ASan: ASK and MOVED are parsed by the code
            -- fuzz/fuzz_redis_topo.c runs under ASan, MOVED followed in
            -- this spec's setup; CI's 30 minutes do not hold this run twice)
            if H.sanitized(pending, "ASK and MOVED: fuzz_redis_topo and the setup under ASan") then return end
            under_load("cl-reshard", function(slot, node)
                local to = c.seed
                local moved = c:migrate_slot(slot, node, to, 1.0)
                return to, ("%d keys moved %d -> %d"):format(moved, node.port, to.port)
            end)
        end)
    end)

    describe("the master of the budget's slot SIGKILLed under load from 3 hosts", function()
        it("never over the limit in any window, no call past max_wait, every process back on Redis", function()
            -- (under ASan: a round trip to the new master timed out at a
            -- run's last instant, 2026-12-06, "final redis 1 ... read: timed
            -- out": the proof times round trips, as spec 38's failover; the
            -- fallback and the Cluster's redirects run under ASan in this
            -- file's setup, spec 28 and fuzz_redis_topo)
            if H.sanitized(pending, "a failover timed under load") then return end
            under_load("cl-failover", function(_, node)
                local rep, took = c:kill_master(node)
                return rep, ("master %d SIGKILLed, replica %d took over in %.1f s"):format(node.port, rep.port, took)
            end)
        end)

        it("without the quarantine and the hand-back the same failover breaks the window", function()
            -- whether it breaks depends on where the last starts before the
            -- kill fall against the first ones after it: made again once
            -- (HA.breaks_once, as the controls of specs 28, 36 and 38), on a
            -- new Cluster: this one has no other master with a replica left.
            -- (CI runs 19, 20 and 25 saw max 60 of 60, no start for the
            -- whole failover: a quarantine. The LuaJIT process of each host
            -- ran the production build, which ignores the hook, and set the
            -- host's quarantine when it saw the failure first: HA.fleet now
            -- gives it the test build's LuaJIT core. Worst windows since:
            -- 96 of 60, where they were 69-80.)
            local n = 0
            HA.breaks_once(function()
                n = n + 1
                if n > 1 then c = HA.cluster{ masters = 3, replicas = 1 } end
                return run_load("cl-control" .. n, function(_, node)
                    local rep, took = c:kill_master(node)
                    return rep, ("master %d SIGKILLed, replica %d took over in %.1f s")
                        :format(node.port, rep.port, took)
                end, H.hooks_env("MEDIQUO_TEST_REDIS_UNSAFE=1 "))
            end, "39", pending)
        end)
    end)
end)
