-- bench/redis_ha.lua: an admission through Redis as production runs it
-- (issue 20): plain and TLS side by side, Sentinel and Cluster, real
-- servers on loopback ports (spec/redis_ha_helper.lua). Part of
-- `make bench-redis` (mk/bench_redis_ha.mk); every loop bounded in count and
-- time.
--
-- Each row: P processes of one host, each making N admissions that never
-- wait (per_minute = burst = 1,000,000), BENCH_REDIS_RUNS times (3); the
-- median run is shown, with the range of us/admission over the runs:
--   us/admission, admissions/s   wall time of the slowest process
--   RT/admission   the limiter's commands counted by the servers (INFO
--                  commandstats on every data node and Sentinel: EVALSHA,
--                  EVAL, SCRIPT, AUTH, SELECT, HELLO, ROLE, CLUSTER, ASKING,
--                  SENTINEL; not PING/INFO/PUBLISH, which Sentinels and
--                  replicas send on their own) per admission
--   leases         EVALSHA + EVAL calls (one lease a round trip)
--   conns          connections the data nodes accepted
--                  (total_connections_received, less this bench's own INFO)
-- The TLS claim: the handshake is paid once per connection, not per lease:
-- a TLS row's conns stays at about one per process however many leases.
-- A second table runs the one-process rows with leases of one slot (the
-- test build's MEDIQUO_TEST_REDIS_LEASE_MOST=1: make test-build): one round
-- trip per admission, so its us/adm is what one lease costs through each
-- kind of Redis.
--
--   lua5.4 bench/redis_ha.lua [worker URL KEY DIR N CA]

package.path = "./?.lua;" .. package.path
local core = require "mediquo.core"
local limiter = require "mediquo.limiter"

local NS = 1e9
local now = core.limiter_now

if arg[1] == "worker" then
    local url, key, dir, n, ca, burst = arg[2], arg[3], arg[4], tonumber(arg[5]), arg[6], tonumber(arg[7])
    -- burst 1: a 1 s period, so the rule's spacing (1 us) never makes it wait
    local l, err = limiter.new{ per_minute = 1000000, burst = burst or 1000000, period = burst and 1 or 60,
                                key = key, dir = dir,
                                redis = url, redis_tls = ca ~= "-" and { ca_file = ca } or nil }
    if not l then
        print("error " .. tostring(err))
        os.exit(1)
    end
    local got, ns = require("bench.admit")(l, n)
    local st = l:status()
    print(("%d %.0f %s %s %s"):format(got, ns, st.backend, tostring(st.degraded), tostring(st.error)))
    l:close()
    os.exit(0)
end

local H = require "spec.helper"
local R = require "spec.redis_helper"
local HA = require "spec.redis_ha_helper"

local N = tonumber(os.getenv("BENCH_REDIS_N")) or 20000
local RUNS = math.max(1, tonumber(os.getenv("BENCH_REDIS_RUNS")) or 3)
local tmp = H.run("mktemp -d /tmp/mediquo-bench-redis-ha.XXXXXX"):gsub("%s+$", "")

local COUNTED = { evalsha = true, eval = true, script = true, auth = true, select = true, hello = true,
                  role = true, cluster = true, asking = true, sentinel = true }

-- { cmds, leases, conns } summed over the servers; each server: a function
-- running redis-cli with the args given (one connection per call)
local function sample(servers)
    local t = { cmds = 0, leases = 0, conns = 0 }
    for _, cli in ipairs(servers) do
        local out = cli("INFO all")
        for name, calls in out:gmatch("cmdstat_([%w|]+):calls=(%d+)") do
            local base = name:match("^(%w+)")
            if COUNTED[base] then t.cmds = t.cmds + tonumber(calls) end
            if base == "evalsha" or base == "eval" then t.leases = t.leases + tonumber(calls) end
        end
        t.conns = t.conns + (tonumber(out:match("total_connections_received:(%d+)")) or 0)
    end
    return t
end

local function run_row(row)
    local dir = tmp .. "/" .. row.tag
    H.run("mkdir -p " .. dir)
    local key = row.key or ("bench-ha-" .. row.tag .. "-" .. now())
    local before = sample(row.count_on)
    local outs = {}
    for i = 1, row.procs do
        outs[i] = ("%s/%s-%d.out"):format(tmp, row.tag, i)
        -- the one-slot rows: the test build's hook holds a lease to one slot
        -- (a lease may outgrow a burst of 1 at this rate: lease_most)
        local hook = row.burst and H.hooks_env("MEDIQUO_TEST_REDIS_LEASE_MOST=1 ") or ""
        H.run(("%slua5.4 bench/redis_ha.lua worker '%s' '%s' '%s' %d '%s' %s >%s 2>&1 &")
              :format(hook, row.url, key, dir, row.n or N, row.ca or "-", row.burst or "", outs[i]))
    end
    local got, worst, bad = 0, 0, nil
    for i = 1, row.procs do
        local s
        for _ = 1, 900 do                       -- 90 s at most
            s = H.read_file(outs[i]) or ""
            if s:match("\n$") then break end       -- the worker's one line, or its error
            H.sleep(0.1)
        end
        local g, ns, backend, degraded = s:match("^(%d+) (%d+) (%S+) (%S+)")
        if not g then
            bad = s:gsub("%s+$", "")
        else
            got = got + tonumber(g)
            if tonumber(ns) > worst then worst = tonumber(ns) end
            if backend ~= "redis" or degraded ~= "false" then bad = "ended " .. backend .. " degraded=" .. degraded end
        end
    end
    local after = sample(row.count_on)
    -- each sample opens one connection per server: the second one's are in `after`
    local r = { got = got, ns = worst, cmds = after.cmds - before.cmds, leases = after.leases - before.leases,
                conns = after.conns - before.conns - #row.count_on, bad = bad }
    return r
end

local function clis_of(nodes)
    local t = {}
    for _, n in ipairs(nodes) do
        t[#t + 1] = function(args) return HA.cli(n.port, args) end
    end
    return t
end

local ok, err = pcall(function()
    local plain = R.start()
    local certs = HA.make_certs(tmp)
    local tls = HA.tls_server(certs)
    local sen = HA.sentinel{}
    local cl = HA.cluster{ masters = 3, replicas = 0 }
    local sen_counted = clis_of{ sen.master, sen.replica }
    for _, s in ipairs(sen.sentinels) do sen_counted[#sen_counted + 1] = function(a) return HA.cli(s.port, a) end end
    local ckey = cl:key_elsewhere("bench-ha-cluster")
    local rows = {
        { tag = "plain-1", name = "redis://, 1 process", url = plain.url, procs = 1, count_on = clis_of{ plain } },
        { tag = "tls-1", name = "rediss:// (TLS), 1 process", url = tls.url, ca = certs.ca, procs = 1,
          count_on = { tls.cli }, tls = true },
        { tag = "plain-4", name = "redis://, 4 processes of a host", url = plain.url, procs = 4,
          count_on = clis_of{ plain } },
        { tag = "tls-4", name = "rediss:// (TLS), 4 processes of a host", url = tls.url, ca = certs.ca, procs = 4,
          count_on = { tls.cli }, tls = true },
        { tag = "sentinel-1", name = "redis-sentinel:// (3 Sentinels), 1 process", url = sen.url, procs = 1,
          count_on = sen_counted },
        { tag = "cluster-1", name = "redis-cluster:// (slot off the seed), 1 process", url = cl.url, procs = 1,
          key = ckey, count_on = clis_of(cl.nodes) },
    }
    local claims, failed = {}, false
    local function table_of(title, list)
        print(title)
        print(("%-48s %10s %12s %8s %8s %6s %10s  %s"):format("", "us/adm", "adm/s", "RT/adm", "leases", "conns",
                                                             "adm/conn", "us/adm over " .. RUNS .. " runs"))
        for _, row in ipairs(list) do
            -- RUNS runs of the row: the median run (by us/admission) is shown,
            -- with the range of us/admission over the runs
            local runs, r = {}, nil
            for i = 1, RUNS do
                row.tag = row.tag:gsub("%.%d+$", "") .. "." .. i
                r = run_row(row)
                if r.bad or r.got == 0 then break end
                r.us = r.ns / 1e3 / (r.got / row.procs)
                runs[#runs + 1] = r
            end
            if r.bad or r.got == 0 then
                print(("%-48s NOT RUN: %s"):format(row.name, tostring(r.bad)))
                failed = true
            else
                table.sort(runs, function(a, b) return a.us < b.us end)
                r = runs[(#runs + 1) // 2]
                print(("%-48s %10.2f %12.0f %8.4f %8d %6d %10.0f  %s"):format(row.name, r.us,
                      r.got / (r.ns / NS), r.cmds / r.got, r.leases, r.conns, r.got / math.max(r.conns, 1),
                      ("%.1f-%.1f"):format(runs[1].us, runs[#runs].us)))
                if row.tls then
                    -- one connection (one handshake) per process, a second one at most
                    -- for the first contact; leases far more than connections
                    local met = r.conns <= 2 * row.procs and r.leases >= 10 * r.conns
                    claims[#claims + 1] = ("%s: %d handshakes for %d leases (%s)"):format(row.name, r.conns, r.leases,
                                                                                           met and "met" or "NOT MET")
                    failed = failed or not met
                end
            end
        end
    end
    table_of(("== an admission through Redis as production runs it, %d admissions per process (never waiting)")
             :format(N), rows)
    local one = {}
    for _, row in ipairs(rows) do
        if row.procs == 1 then
            one[#one + 1] = { tag = row.tag .. "-b1", name = row.name, url = row.url, ca = row.ca, procs = 1,
                              count_on = row.count_on,
                              key = row.key and cl:key_elsewhere("bench-ha-cluster-b1") or nil,
                              burst = 1, n = math.min(N, 5000) }
        end
    end
    print()
    table_of(("== one lease per admission (leases of one slot: a round trip each), %d admissions per process")
             :format(math.min(N, 5000)), one)
    print()
    for _, c in ipairs(claims) do print("TLS handshake once per connection, not per lease: " .. c) end
    return failed
end)

HA.stop_all()
H.run("rm -rf '" .. tmp .. "'")
if not ok then
    print("bench/redis_ha.lua: " .. tostring(err))
    os.exit(1)
end
print(err and "CLAIM NOT MET or a row NOT RUN" or "claims met")
os.exit(err and 1 or 0)
