-- spec/redis_ha_helper.lua: Redis as production runs it, for the specs:
-- 1 master + 1 replica + 3 Sentinels, a Cluster of masters with replicas,
-- and simulated hosts putting load on one budget through them. Every server
-- is a real process on a loopback port (spec/redis_helper.lua's way: a free
-- port below the ephemeral range, its own dir), stopped by PID, never by
-- name; every wait is bounded in count and time.
--
--   local HA = require "spec.redis_ha_helper"
--   local s = HA.sentinel{}          -- s.url "redis-sentinel://a,b,c/mymaster1"
--   s:kill_master()                  -- SIGKILL, wait until every Sentinel names the replica
--   s:failover()                     -- SENTINEL FAILOVER: the old master, still up, demoted (READONLY)
--   local c = HA.cluster{ masters = 3, replicas = 1 }   -- c.url "redis-cluster://seed"
--   local key, slot, node = c:key_elsewhere("budget")   -- a budget on a node other than the seed
--   c:kill_master(node)              -- its replica takes over
--   HA.stop_all()                    -- in teardown, even after a failure

local core = require "mediquo.core"
local mediquo = require "mediquo"
local assert = require "luassert"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local NH = require "spec.ngx_helper"

local HA = {}
local NS = 1e9

local sentinels_live = {}       -- pid -> sentinel process (not R's: redis-sentinel)
local stoppers = {}             -- every topology started, for stop_all

local alive = H.running

local function cli(port, args)
    return H.run("redis-cli -h 127.0.0.1 -p " .. port .. " " .. args .. " 2>&1")
end
HA.cli = cli

-- f() until it returns a truthy value, at most `secs` seconds (polls every
-- `step`); returns that value, or raises naming `what` and f's last word
local function until_true(what, secs, f, step)
    step = step or 0.1
    local deadline = H.now() + secs
    local last
    for _ = 1, math.ceil(secs / step) + 1 do
        local v, why = f()
        if v then return v end
        last = why
        if H.now() > deadline then break end
        H.sleep(step)
    end
    error(what .. " not within " .. secs .. " s" .. (last and (": " .. tostring(last)) or ""))
end
HA.until_true = until_true

-- the budget's hash tag as src/limiter_redis.c names it: {mq:<fnv1a64(key)>}
function HA.budget_tag(key)
    local h = -3750763034362895579          -- 14695981039346656037 as a signed 64-bit integer
    for i = 1, #key do
        h = h ~ key:byte(i)
        h = h * 1099511628211               -- wraps as uint64_t does
    end
    return ("{mq:%016x}"):format(h)
end

-- ---- Sentinel ---------------------------------------------------------------

local Sentinel = {}
Sentinel.__index = Sentinel

local function start_sentinel(dir, master_port, o)
    for _ = 1, 20 do
        local port = H.free_port()
        local conf = dir .. "/sentinel-" .. port .. ".conf"
        H.write_file(conf, table.concat({
            "port " .. port,
            "bind 127.0.0.1",
            "protected-mode no",
            "dir " .. dir,
            "logfile " .. dir .. "/sentinel-" .. port .. ".log",
            ("sentinel monitor %s 127.0.0.1 %d %d"):format(o.name, master_port, o.quorum),
            ("sentinel down-after-milliseconds %s %d"):format(o.name, o.down_after),
            ("sentinel failover-timeout %s %d"):format(o.name, o.failover_timeout),
            ("sentinel parallel-syncs %s 1"):format(o.name),
        }, "\n") .. "\n")
        local out = H.run("redis-sentinel " .. H.shell_quote(conf) .. " >/dev/null 2>&1 & echo $!")
        local pid = assert(tonumber(out:match("(%d+)")), "redis-sentinel did not start: " .. out)
        local s = { port = port, pid = pid, conf = conf }
        sentinels_live[pid] = s
        for _ = 1, 100 do
            if cli(port, "ping"):match("PONG") then return s end
            if not alive(pid) then break end
            H.sleep(0.05)
        end
        sentinels_live[pid] = nil
        if alive(pid) then H.run("kill -9 " .. pid) end
        local log = H.read_file(dir .. "/sentinel-" .. port .. ".log") or ""
        if not log:match("Address already in use") then
            error("redis-sentinel on port " .. port .. " did not answer: " .. log)
        end
    end
    error("no free port for a Sentinel")
end

local function kill_pid(pid)
    if not pid then return end
    H.run("kill -9 " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
        if not alive(pid) then return end
        H.sleep(0.02)
    end
end

-- SIGKILL an R server (redis_helper's kill9 waits for the zombie's reaping)
local function kill_server(n)
    if n.pid then
        kill_pid(n.pid)
        n.pid = nil
    end
end
HA.kill_server = kill_server

local function stop_server(n)
    kill_server(n)
    n:stop()
end

-- "host:port" a Sentinel names for the master, or nil
function Sentinel:asks(s)
    local out = cli(s.port, "SENTINEL get-master-addr-by-name " .. self.name)
    local host, port = out:match("^(%S+)\n(%d+)")
    return host and (host .. ":" .. port) or nil, out
end

-- every live Sentinel names `want` (host:port), knows the 2 others and,
-- when `replicas` is given, that many replicas
function Sentinel:agree(want, replicas)
    for _, s in ipairs(self.sentinels) do
        if alive(s.pid) then
            local got, out = self:asks(s)
            if got ~= want then return nil, ("Sentinel %d names %s"):format(s.port, got or out) end
            local info = cli(s.port, "SENTINEL master " .. self.name)
            local others = tonumber(info:match("num%-other%-sentinels\n(%d+)"))
            if others ~= #self.sentinels - 1 then
                return nil, ("Sentinel %d knows %s other Sentinels"):format(s.port, tostring(others))
            end
            local flags = info:match("\nflags\n(%S+)") or "?"
            if flags ~= "master" then return nil, ("Sentinel %d flags the master %s"):format(s.port, flags) end
            if replicas then
                local n = tonumber(info:match("num%-slaves\n(%d+)"))
                if n ~= replicas then
                    return nil, ("Sentinel %d knows %s replicas"):format(s.port, tostring(n))
                end
            end
        end
    end
    return true
end

-- the data node (R server) that is master now
function Sentinel:current()
    for _, n in ipairs{ self.master, self.replica } do
        if n.pid and cli(n.port, "ROLE"):match("^master") then return n end
    end
end

-- before a failover: every Sentinel names master and knows its replica,
-- which is in sync
function Sentinel:ready(master, replica)
    until_true("the replica " .. replica.port .. " ready for a failover", 30, function()
        local ok, why = self:agree("127.0.0.1:" .. master.port, 1)
        if not ok then return nil, why end
        local info = cli(replica.port, "INFO replication")
        return info:match("master_link_status:up"), "replica link not up"
    end, 0.2)
end

-- SIGKILL the master; wait until every Sentinel names the other node and
-- that node says it is master. Returns the new master (R server) and the
-- seconds it took.
function Sentinel:kill_master(timeout)
    local old = assert(self:current(), "no master to kill")
    local new = old == self.master and self.replica or self.master
    self:ready(old, new)
    local t0 = H.now()
    kill_server(old)
    local want = "127.0.0.1:" .. new.port
    until_true("Sentinel failover to " .. want, timeout or 30, function()
        local ok, why = self:agree(want)
        if not ok then return nil, why end
        if not cli(new.port, "ROLE"):match("^master") then return nil, want .. " is not master yet" end
        return true
    end, 0.1)
    self.failovers = (self.failovers or 0) + 1
    return new, H.now() - t0
end

-- a forced failover (SENTINEL FAILOVER): the replica is promoted and the
-- old master, still up, is made its replica (clients still on it get
-- READONLY). Waits until every Sentinel names the new master, it says so,
-- and the old one says it is a replica. Returns the new master and the
-- seconds it took.
function Sentinel:failover(timeout)
    local old = assert(self:current(), "no master")
    local new = old == self.master and self.replica or self.master
    self:ready(old, new)
    local want = "127.0.0.1:" .. new.port
    local t0 = H.now()
    local out = cli(self.sentinels[1].port, "SENTINEL FAILOVER " .. self.name)
    assert(out:match("OK"), "SENTINEL FAILOVER: " .. out)
    until_true("SENTINEL FAILOVER to " .. want, timeout or 30, function()
        local ok, why = self:agree(want)
        if not ok then return nil, why end
        if not cli(new.port, "ROLE"):match("^master") then return nil, want .. " is not master yet" end
        if not cli(old.port, "ROLE"):match("^slave") then return nil, "the old master is not a replica yet" end
        return true
    end, 0.1)
    self.failovers = (self.failovers or 0) + 1
    return new, H.now() - t0
end

function Sentinel:stop()
    for _, s in ipairs(self.sentinels or {}) do
        kill_pid(s.pid)
        sentinels_live[s.pid] = nil
        s.pid = nil
    end
    if self.master then stop_server(self.master) end
    if self.replica then stop_server(self.replica) end
    if self.dir then H.run("rm -rf '" .. self.dir .. "'") end
    self.dir = nil
end

-- opts: name (a new one per set: "mymaster1", "mymaster2", ...), quorum
-- (2), down_after (ms, 1000), failover_timeout (ms, 3000), sentinels (3),
-- auth (a requirepass for the data nodes, optional). A set made while an
-- earlier one lives must not share its master's name: the Sentinels find
-- each other by hellos naming it, and a set that failed over (a higher
-- config epoch) won the new one over to its own master (CI run 24: "the
-- Sentinels agreeing not within 30 s: Sentinel ... names" the old master)
local sets = 0
function HA.sentinel(opts)
    opts = opts or {}
    sets = sets + 1
    local o = { name = opts.name or ("mymaster" .. sets), quorum = opts.quorum or 2,
                down_after = opts.down_after or 1000, failover_timeout = opts.failover_timeout or 3000 }
    local self = setmetatable({ name = o.name, sentinels = {} }, Sentinel)
    stoppers[#stoppers + 1] = self
    self.dir = H.run("mktemp -d /tmp/mediquo-sentinel.XXXXXX"):gsub("%s+$", "")
    local extra = {}
    if opts.auth then extra = { "--requirepass", opts.auth, "--masterauth", opts.auth } end
    self.master = R.start(extra)
    local rextra = { "--replicaof", "127.0.0.1", tostring(self.master.port) }
    for _, a in ipairs(extra) do rextra[#rextra + 1] = a end
    self.replica = R.start(rextra)
    local a = opts.auth and ("--no-auth-warning -a " .. H.shell_quote(opts.auth) .. " ") or ""
    until_true("the replica in sync", 15, function()
        local info = cli(self.replica.port, a .. "INFO replication")
        return info:match("master_link_status:up"), info
    end)
    for _ = 1, opts.sentinels or 3 do
        self.sentinels[#self.sentinels + 1] = start_sentinel(self.dir, self.master.port, o)
        if opts.auth then
            cli(self.sentinels[#self.sentinels].port,
                "SENTINEL SET " .. o.name .. " auth-pass " .. H.shell_quote(opts.auth))
        end
    end
    local hosts = {}
    for i, s in ipairs(self.sentinels) do hosts[i] = "127.0.0.1:" .. s.port end
    self.hosts = table.concat(hosts, ",")
    self.url = "redis-sentinel://" .. self.hosts .. "/" .. o.name
    -- the Sentinels find each other and the replica through the master's
    -- hello channel (every 2 s)
    until_true("the Sentinels agreeing", 30, function()
        return self:agree("127.0.0.1:" .. self.master.port, 1)
    end, 0.2)
    return self
end

-- ---- TLS --------------------------------------------------------------------

-- HA.make_certs(dir) -> { ca, cert, key }: a CA made now and a server
-- certificate it signed for IP 127.0.0.1 (R.make_certs' "server" one)
function HA.make_certs(dir)
    local c = R.make_certs(dir)
    return { ca = c.ca, cert = c.server.cert, key = c.server.key }
end

local tls_live = {}

-- a TLS-only redis-server (no plain port, no client certificate asked):
-- { port, pid, dir, url = "rediss://127.0.0.1:P", cli = function(args) }
function HA.tls_server(certs)
    local dir = H.run("mktemp -d /tmp/mediquo-redis-tls.XXXXXX"):gsub("%s+$", "")
    local q = H.shell_quote
    for _ = 1, 20 do
        local port = H.free_port()
        local log = dir .. "/redis.log"
        local out = H.run(("redis-server --port 0 --tls-port %d --bind 127.0.0.1 --save '' --appendonly no "
                           .. "--dir %s --tls-cert-file %s --tls-key-file %s --tls-ca-cert-file %s "
                           .. "--tls-auth-clients no >%s 2>&1 & echo $!")
                          :format(port, q(dir), q(certs.cert), q(certs.key), q(certs.ca), q(log)))
        local pid = assert(tonumber(out:match("(%d+)")), "redis-server did not start: " .. out)
        local s = { port = port, pid = pid, dir = dir, url = "rediss://127.0.0.1:" .. port }
        function s.cli(args)
            return H.run(("redis-cli --tls --cacert %s -h 127.0.0.1 -p %d %s 2>&1"):format(q(certs.ca), port, args))
        end
        tls_live[pid] = s
        for _ = 1, 100 do
            if s.cli("ping"):match("PONG") then return s end
            if not alive(pid) then break end
            H.sleep(0.05)
        end
        tls_live[pid] = nil
        kill_pid(pid)
        if not (H.read_file(log) or ""):match("Address already in use") then
            error("TLS redis-server on port " .. port .. " did not answer: " .. (H.read_file(log) or ""))
        end
    end
    error("no free port for a TLS redis-server")
end

-- ---- Cluster ----------------------------------------------------------------

local Cluster = {}
Cluster.__index = Cluster

-- CLUSTER NODES as seen by node n: { id, port, master = bool, fail = bool,
-- master_id, ranges = { {lo, hi}... } } by id
function Cluster.nodes_seen(_, n)
    local out = cli(n.port, "CLUSTER NODES")
    local t = {}
    for line in out:gmatch("[^\n]+") do
        local id, addr, flags, mid, rest = line:match("^(%x+) (%S+) (%S+) (%S+) %S+ %S+ %S+ %S+(.*)$")
        if id then
            local e = { id = id, port = tonumber(addr:match(":(%d+)@")), flags = flags,
                        master = flags:find("master", 1, true) ~= nil,
                        fail = flags:find("fail", 1, true) ~= nil and not flags:find("fail?", 1, true),
                        master_id = mid ~= "-" and mid or nil, ranges = {} }
            for r in rest:gmatch("%S+") do
                local lo, hi = r:match("^(%d+)%-(%d+)$")
                if lo then
                    e.ranges[#e.ranges + 1] = { tonumber(lo), tonumber(hi) }
                elseif r:match("^%d+$") then
                    e.ranges[#e.ranges + 1] = { tonumber(r), tonumber(r) }
                end
            end
            t[id] = e
        end
    end
    return t
end

function Cluster:by_port(port)
    for _, n in ipairs(self.nodes) do if n.port == port then return n end end
end

-- the node (R server) that serves slot, as the seed sees it
function Cluster:owner(slot, seen_from)
    for _, e in pairs(self:nodes_seen(seen_from or self.seed)) do
        if e.master and not e.fail then
            for _, r in ipairs(e.ranges) do
                if slot >= r[1] and slot <= r[2] then return self:by_port(e.port), e end
            end
        end
    end
end

function Cluster:keyslot(s)
    return tonumber(cli(self.seed.port, "CLUSTER KEYSLOT " .. H.shell_quote(s)):match("(%d+)"))
end

-- a budget key (prefix-N) whose keys' slot is served by a master other
-- than the seed (with a replica in sync when need_replica): key, slot,
-- node (R server)
function Cluster:key_elsewhere(prefix, need_replica)
    for i = 1, 200 do
        local key = ("%s-%d-%d"):format(prefix, i, math.random(1e6))
        local slot = self:keyslot(HA.budget_tag(key) .. ":s")
        local node = slot and self:owner(slot)
        if node and node ~= self.seed and (not need_replica or self:replica_of(node)) then
            return key, slot, node
        end
    end
    error("no key found on a node other than the seed")
end

-- every live node sees cluster_state:ok and the same masters for every slot,
-- each master with the replicas asked for (in sync)
function Cluster:healthy()
    local want
    for _, n in ipairs(self.nodes) do
        if n.pid then
            local info = cli(n.port, "CLUSTER INFO")
            if not info:match("cluster_state:ok") then return nil, n.port .. ": " .. info:sub(1, 40) end
            local seen = {}
            for _, e in pairs(self:nodes_seen(n)) do
                if e.master and not e.fail and #e.ranges > 0 then
                    for _, r in ipairs(e.ranges) do seen[#seen + 1] = r[1] .. "-" .. r[2] .. "@" .. e.port end
                end
            end
            table.sort(seen)
            local s = table.concat(seen, " ")
            if want and s ~= want then return nil, "nodes disagree: " .. want .. " / " .. s end
            want = s
        end
    end
    return true
end

-- the replica (R server) of the master node, in sync
function Cluster:replica_of(node)
    local me
    for _, e in pairs(self:nodes_seen(node)) do
        if e.flags:find("myself", 1, true) then me = e.id end
    end
    for _, e in pairs(self:nodes_seen(node)) do
        if e.master_id == me and not e.fail then
            local r = self:by_port(e.port)
            if r and r.pid then return r end
        end
    end
end

-- SIGKILL a master; wait until its replica serves its slots, seen by every
-- live node. Returns the replica and the seconds it took.
function Cluster:kill_master(node, timeout)
    local rep = assert(self:replica_of(node), "no replica for the master on " .. node.port)
    local t0 = H.now()
    kill_server(node)
    until_true("the replica on " .. rep.port .. " taking over", timeout or 30, function()
        if not cli(rep.port, "ROLE"):match("^master") then return nil, "not master yet" end
        return self:healthy()
    end, 0.1)
    return rep, H.now() - t0
end

-- a graceful takeover: CLUSTER FAILOVER on the master's replica
function Cluster:failover(node, timeout)
    local rep = assert(self:replica_of(node), "no replica for the master on " .. node.port)
    local t0 = H.now()
    local out = cli(rep.port, "CLUSTER FAILOVER")
    assert(out:match("OK"), "CLUSTER FAILOVER: " .. out)
    until_true("CLUSTER FAILOVER to " .. rep.port, timeout or 30, function()
        if not cli(rep.port, "ROLE"):match("^master") then return nil, "not master yet" end
        if not cli(node.port, "ROLE"):match("^slave") then return nil, "old master not a replica yet" end
        return self:healthy()
    end, 0.1)
    return rep, H.now() - t0
end

function Cluster:id_of(node)
    for _, e in pairs(self:nodes_seen(node)) do
        if e.flags:find("myself", 1, true) then return e.id end
    end
end

-- Move one slot from master `from` to master `to` the way redis-cli
-- --cluster reshard does (IMPORTING / MIGRATING, MIGRATE the keys, SETSLOT
-- NODE everywhere), pausing `pause` s between the stages so that load in
-- flight meets each of them (ASK, TRYAGAIN, MOVED). Returns the keys moved.
function Cluster:migrate_slot(slot, from, to, pause)
    pause = pause or 0.5
    local fid, tid = assert(self:id_of(from)), assert(self:id_of(to))
    local function ok(out, what) assert(out:match("^OK"), what .. ": " .. out) end
    ok(cli(to.port, ("CLUSTER SETSLOT %d IMPORTING %s"):format(slot, fid)), "IMPORTING")
    ok(cli(from.port, ("CLUSTER SETSLOT %d MIGRATING %s"):format(slot, tid)), "MIGRATING")
    H.sleep(pause)
    local moved = 0
    for _ = 1, 100 do
        local keys = {}
        for k in cli(from.port, ("CLUSTER GETKEYSINSLOT %d 100"):format(slot)):gmatch("[^\n]+") do
            keys[#keys + 1] = H.shell_quote(k)
        end
        if #keys == 0 then break end
        local out = cli(from.port, ("MIGRATE 127.0.0.1 %d \"\" 0 5000 REPLACE KEYS %s")
                                   :format(to.port, table.concat(keys, " ")))
        assert(out:match("OK") or out:match("NOKEY"), "MIGRATE: " .. out)
        moved = moved + #keys
    end
    H.sleep(pause)
    ok(cli(to.port, ("CLUSTER SETSLOT %d NODE %s"):format(slot, tid)), "SETSLOT NODE (target)")
    ok(cli(from.port, ("CLUSTER SETSLOT %d NODE %s"):format(slot, tid)), "SETSLOT NODE (source)")
    for _, n in ipairs(self.nodes) do
        if n.pid and n ~= to and n ~= from and cli(n.port, "ROLE"):match("^master") then
            cli(n.port, ("CLUSTER SETSLOT %d NODE %s"):format(slot, tid))
        end
    end
    until_true("slot " .. slot .. " on " .. to.port .. " for every node", 20, function()
        for _, n in ipairs(self.nodes) do
            if n.pid then
                local o = self:owner(slot, n)
                if o ~= to then return nil, n.port .. " sees " .. (o and o.port or "none") end
            end
        end
        return true
    end, 0.1)
    return moved
end

function Cluster:stop()
    for _, n in ipairs(self.nodes or {}) do stop_server(n) end
end

-- opts: masters (3), replicas (per master, 1), node_timeout (ms, 1000)
function HA.cluster(opts)
    opts = opts or {}
    local masters, replicas = opts.masters or 3, opts.replicas or 1
    local self = setmetatable({ nodes = {} }, Cluster)
    stoppers[#stoppers + 1] = self
    local addrs = {}
    for i = 1, masters * (1 + replicas) do
        local n = R.start{ "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                           "--cluster-node-timeout", tostring(opts.node_timeout or 1000),
                           "--cluster-replica-validity-factor", "0" }
        self.nodes[i] = n
        addrs[i] = "127.0.0.1:" .. n.port
    end
    local out, code = H.run("redis-cli --cluster create " .. table.concat(addrs, " ")
                            .. " --cluster-replicas " .. replicas .. " --cluster-yes 2>&1")
    assert(code == 0 and out:match("All 16384 slots covered"), "redis-cli --cluster create: " .. out)
    -- the seed: the first master redis-cli made
    for _, n in ipairs(self.nodes) do
        if cli(n.port, "ROLE"):match("^master") then self.seed = n break end
    end
    assert(self.seed, "no master in the new cluster")
    until_true("the Cluster ok on every node", 30, function()
        if not self:healthy() then return self:healthy() end
        for _, n in ipairs(self.nodes) do
            local role = cli(n.port, "ROLE")
            if role:match("^slave") and not cli(n.port, "INFO replication"):match("master_link_status:up") then
                return nil, n.port .. ": replica not in sync"
            end
        end
        return true
    end, 0.2)
    self.url = "redis-cluster://127.0.0.1:" .. self.seed.port
    return self
end

-- ---- hosts on one budget ----------------------------------------------------
-- A "host" is a dir shared by its processes; each process is
-- spec/redis_worker.lua (a line per admitted start, on the limiter's own
-- CLOCK_MONOTONIC ns clock, the same for every simulated host).

local Fleet = {}
Fleet.__index = Fleet

local gateways = {}             -- nginx master pid -> prefix

-- A gateway host: a real nginx, 2 workers, each spending the budget from a
-- timer through mediquo.ngx_limiter (cosockets: mediquo.ngx_redis), logging
-- as spec/redis_worker.lua does to <out>-<worker id + 1>.log (NH.budget_host)
local function start_gateway(prefix, vars)
    local pid = NH.budget_host(prefix, vars)
    gateways[pid] = prefix
    return pid
end

local function stop_gateway(pid)
    if not pid then return end
    H.stop_nginx(pid, "QUIT")
    gateways[pid] = nil
end

-- c: key, per_minute, burst, period, env (optional); hosts (3) x procs (2),
-- Lua 5.4 and LuaJIT mixed; until_ns on core.limiter_now's clock. With
-- c.gateway = h, host h is an nginx gateway (2 workers, cosockets) instead.
function HA.fleet(tmp, c, url, until_ns, max_wait)
    local self = setmetatable({ ws = {}, max_wait = max_wait or 0.5 }, Fleet)
    local n = 0
    for h = 1, c.hosts or 3 do
        local dir = tmp .. "/host" .. h
        H.run("mkdir -p " .. dir)
        if c.gateway == h then
            self.gw_prefix = tmp .. "/gw" .. h
            self.gw = start_gateway(self.gw_prefix, {
                PM = c.per_minute, BURST = c.burst, PERIOD = c.period, KEY = c.key, DIR = dir, URL = url,
                OUT = ("%s/w%d"):format(tmp, h), MAXWAIT = self.max_wait, UNTIL = ("%.0f"):format(until_ns),
                PORT = H.free_port() })
            for p = 1, 2 do
                n = n + 1
                self.ws[n] = { out = ("%s/w%d-%d.log"):format(tmp, h, p), host = h, gateway = true }
            end
        end
        for p = 1, c.gateway == h and 0 or c.procs or 2 do
            n = n + 1
            local interp = (h + p) % 2 == 0 and "lua5.4" or "luajit"
            local w = { out = ("%s/w%d-%d.log"):format(tmp, h, p), host = h }
            local env = c.env or ""
            if interp == "luajit" then
                -- a control's hooks (H.hooks_env) live in the test build:
                -- LuaJIT's own (its production build ignores them, and
                -- then only the Lua 5.4 process of a host ran without
                -- the mechanism: CI runs 19, 20, 25 saw a control hold)
                local hooks = env:find("MEDIQUO_TEST_HOOKS=1", 1, true)
                local cpath = H.core_cpath(hooks and "build/testing/luajit" or "build/luajit",
                                           hooks and "make test-build" or "make luajit")
                env = env .. ("LUA_PATH='%s/lua/?.lua;;' LUA_CPATH='%s;;' "):format(H.root, cpath)
            end
            local out = H.run(("%s%s spec/redis_worker.lua %s '%s' '%s' %d %d %s %.0f '%s' %s"
                               .. " >%s.stdout 2>&1 & echo $!"):format(env, interp, w.out, c.key, dir,
                               c.per_minute, c.burst, c.period, until_ns, url, self.max_wait, w.out))
            w.pid = assert(tonumber(out:match("(%d+)")))
            self.ws[n] = w
        end
    end
    return self
end

-- wait until every worker wrote "done" (at most timeout s); on a timeout or
-- a worker that could not open its limiter, kill them (by PID) and raise
function Fleet:wait(timeout)
    local deadline = H.now() + timeout
    for _ = 1, math.ceil(timeout / 0.1) + 1 do
        local all = true
        for _, w in ipairs(self.ws) do
            local ls = H.lines(w.out)
            if ls[#ls] ~= "done" then
                if ls[1] and ls[1]:match("^error") then
                    self:kill()
                    error(w.out .. ": " .. ls[1])
                end
                all = false
            end
        end
        if all then
            stop_gateway(self.gw)
            return true
        end
        if H.now() > deadline then break end
        H.sleep(0.1)
    end
    local why = {}
    for _, w in ipairs(self.ws) do
        local more = w.gateway and (H.read_file(self.gw_prefix .. "/logs/error.log") or ""):sub(-600) or
            table.concat(H.lines(w.out .. ".stdout"), " | ")
        why[#why + 1] = w.out .. ": " .. table.concat(H.lines(w.out), " | "):sub(-300) .. " | " .. more
    end
    self:kill()
    error("workers did not finish: " .. table.concat(why, "\n"))
end

function Fleet:kill()
    stop_gateway(self.gw)
    for _, w in ipairs(self.ws) do
        if w.pid and alive(w.pid) then H.run("kill -9 " .. w.pid .. " 2>/dev/null") end
        w.pid = nil
    end
end

-- ts (sorted starts), late, raised, and per worker: the degraded changes
-- seen and the final status line ("final <backend> <degraded> <error>");
-- then the starts per host ({ [h] = n }). The same pass keeps, for
-- Fleet:timeline, each host's starts and its processes' degraded changes
function Fleet:collect()
    local ts, late, raised, seen, final, per_host = {}, {}, {}, {}, {}, {}
    local starts, marks = {}, {}
    for i, w in ipairs(self.ws) do
        seen[i] = {}
        starts[w.host], marks[w.host] = starts[w.host] or {}, marks[w.host] or {}
        for _, l in ipairs(H.lines(w.out)) do
            local t = tonumber(l:match("^t (%d+)"))
            if t then
                ts[#ts + 1] = t
                starts[w.host][#starts[w.host] + 1] = t
            end
            if l:match("^late") then late[#late + 1] = w.out .. ": " .. l end
            if l:match("^raise") then raised[#raised + 1] = w.out .. ": " .. l end
            local d, at, why = l:match("^degraded (%d) (%d+) ?(.*)")
            if d then
                seen[i][#seen[i] + 1] = d
                local m = marks[w.host]
                m[#m + 1] = { "D" .. d, tonumber(at), d == "1" and why ~= "" and why:sub(1, 60) }
            end
            local wat, wwhy = l:match("^why (%d+) (.*)")       -- RSPEC_DEBUG's trace
            if wat then marks[w.host][#marks[w.host] + 1] = { "W", tonumber(wat), wwhy:sub(1, 80) } end
            if l:match("^final ") then final[i] = l end
        end
    end
    table.sort(ts)
    for h, s in pairs(starts) do per_host[h] = #s end
    self.starts, self.marks = starts, marks
    return ts, late, raised, seen, final, per_host
end

-- each host's starts in half-second bins from t0 and when its processes saw
-- degraded change ("D1@3.1" / "D0@5.2", s from t0), for messages: which
-- host started when, around a fault (after Fleet:collect)
function Fleet:timeline(t0, secs)
    local out = {}
    for h, ts in pairs(self.starts) do
        table.sort(ts)
        local ms = {}
        for _, m in ipairs(self.marks[h]) do
            ms[#ms + 1] = ("%s@%.2f%s"):format(m[1], (m[2] - t0) / NS, m[3] and " (" .. m[3] .. ")" or "")
        end
        out[#out + 1] = ("host %d: %s [%s]"):format(h, HA.histogram(ts, t0, secs), table.concat(ms, " "))
    end
    table.sort(out)
    return table.concat(out, "; ")
end

-- a histogram of the starts in half-second bins from t0, for messages
function HA.histogram(ts, t0, secs)
    local hist, out = {}, {}
    for _, t in ipairs(ts) do
        local k = math.floor((t - t0) / NS * 2)
        hist[k] = (hist[k] or 0) + 1
    end
    for k = 0, secs * 2 do out[#out + 1] = ("%.1f:%d"):format(k / 2, hist[k] or 0) end
    return table.concat(out, " ")
end

-- ---- what a budget through Sentinel or Cluster is owed ----------------------
-- HA.opens(url, key, dir): a limiter on url opens, admits, and is on backend
-- "redis", not degraded
function HA.opens(url, key, dir)
    local l, err = mediquo.limiter{ key = key, dir = H.mkdir(dir), redis = url, per_minute = 60 }
    assert.truthy(l, err and tostring(err))
    assert.is_true(l:acquire(0.5))
    local st = l:status()
    assert.equal("redis", st.backend)
    assert.is_false(st.degraded, st.error)
    l:close()
end

-- HA.outage(url, key, dir): no node of url answering is an outage, not a
-- setup fault: the limiter is made, degraded, with the reason
function HA.outage(url, key, dir)
    local l, err = mediquo.limiter{ key = key, dir = H.mkdir(dir), redis = url, per_minute = 60 }
    assert.truthy(l, err and tostring(err))
    local st = l:status()
    assert.equal("redis", st.backend)
    assert.is_true(st.degraded)
    assert.matches("127.0.0.1:", st.error, 1, true)
    l:close()
end

-- HA.load_run(dir, c, url, event[, periods]) -> r: HA.fleet(dir, c, url)
-- for `periods` periods (8), max_wait 0.5 s; event() after 1.5 periods ->
-- the node the budget should live on after it, what happened (words).
-- r: ts, late, raised, seen, final, per_host (Fleet:collect), new, what,
-- P (ns), limit (c.per_minute), t_start, t_event, t_after, until_ns, info
function HA.load_run(dir, c, url, event, periods)
    periods = periods or 8
    local r = { P = c.period * NS, limit = c.per_minute, t_start = core.limiter_now() }
    r.until_ns = r.t_start + periods * r.P
    local fleet = HA.fleet(dir, c, url, r.until_ns, 0.5)
    H.sleep(1.5 * c.period)
    r.t_event = core.limiter_now()
    r.new, r.what = event()
    r.t_after = core.limiter_now()
    fleet:wait(60)
    r.ts, r.late, r.raised, r.seen, r.final, r.per_host = fleet:collect()
    r.info = ("%s; starts per 0.5 s: %s"):format(r.what, HA.histogram(r.ts, r.t_start, periods * c.period))
    return r
end

local function worst(r, what)
    local n = H.max_in_window(r.ts, r.P)
    if os.getenv("RSPEC_DEBUG") then print(("%sworst window %d of %d; %s"):format(what, n, r.limit, r.info)) end
    return n
end

-- HA.holds(r): through the event: nothing raised, no call past max_wait,
-- never over the limit in any window, starts before and after it, every
-- worker (6) back on "redis", not degraded, no host starved
function HA.holds(r)
    assert.same({}, r.raised)
    assert.same({}, r.late)
    local n = worst(r, "")
    assert.truthy(n <= r.limit, "window exceeded: " .. n .. "; " .. r.info)
    assert.truthy(H.count_between(r.ts, r.t_start, r.t_event) > 0, r.info)
    assert.truthy(H.count_between(r.ts, r.t_after + 2 * r.P, r.until_ns) > 0, "nothing after: " .. r.info)
    for i, fin in pairs(r.final) do
        assert.equal("final redis 0 nil", fin, "worker " .. i .. "; " .. r.info)
    end
    assert.equal(6, #r.final, "a worker wrote no final status")
    for h = 1, 3 do
        assert.truthy((r.per_host[h] or 0) > 0, "host " .. h .. " starved; " .. r.info)
    end
end

-- HA.breaks(r [, n]): the control (the mechanisms off): the window broken
-- (n: its worst window, when the caller counted it already)
function HA.breaks(r, n)
    n = n or worst(r, "control: ")
    assert.truthy(n > r.limit, "max " .. n .. "; " .. r.info)
end

-- HA.breaks_once(run, tag, pending): a control whose break depends on
-- where the last starts before the event fall against the first grants
-- after it (CI run 7 saw a Sentinel control at max 60 of 60): run() -> r
-- (ts, P, limit, info) is made again, once, when its window did not break;
-- the guarded runs never break, however often they are made. Under a
-- sanitized core (make test-asan) the control is pending (busted's
-- `pending`, passed in): it runs the same C as the guarded run beside it,
-- only the hook differs, and the lua54 suite shows the window broken
function HA.breaks_once(run, tag, pending)
    if H.sanitized(pending, "a control run, the mechanism off") then return end
    local n
    local r = H.control_once(run, function(x)
        n = worst(x, "control: ")
        return n > x.limit, ("worst window %d of %d"):format(n, x.limit)
    end, tag)
    HA.breaks(r, n)
    return r
end

function HA.stop_all()
    for pid in pairs(gateways) do stop_gateway(pid) end
    for _, t in ipairs(stoppers) do pcall(t.stop, t) end
    stoppers = {}
    for pid in pairs(sentinels_live) do kill_pid(pid) end
    sentinels_live = {}
    for pid, t in pairs(tls_live) do
        kill_pid(pid)
        H.run("rm -rf '" .. t.dir .. "'")
    end
    tls_live = {}
    R.stop_all()
end

return HA
