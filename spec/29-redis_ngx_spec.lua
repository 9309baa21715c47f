-- spec/29-redis_ngx_spec.lua: nginx workers of two gateways, plain Lua
-- processes (Lua 5.4 and LuaJIT) and the CLI sharing one budget through
-- Redis (issue 15). Each gateway is a real nginx (2 workers) whose workers
-- spend the budget from a timer through mediquo.ngx_redis: the round trip on a
-- cosocket, hiredis's formatter and reader in the C core. A third "host"
-- is two plain processes (spec/redis_worker.lua). Then the example gateway
-- itself (examples/nginx.conf, mediquo.ngx, MEDIQUO_RL_REDIS) twice and a CLI
-- import (bin/mediquo --redis), booking on the sandbox: the server never sees
-- more than per_minute a window. ~50 s.

local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local NH = require "spec.ngx_helper"
local C = require "spec.cli_helper"

local NS = 1e9
local now = core.limiter_now
local root = H.root

local lines = H.lines

local max_in_window = H.max_in_window

local count_between = H.count_between

-- a gateway host: 2 workers spending the budget (NH.budget_host, NH.SPEND),
-- writing <prefix>/w-1.log and w-2.log
local function start_gateway(prefix, vars)
    vars.OUT = prefix .. "/w"
    return { prefix = prefix, pid = NH.budget_host(prefix, vars) }
end

local function stop_gateway(gw)
    H.stop_nginx(gw.pid, "QUIT")
end

describe("rate_limit.redis in nginx", function()
    local srv, tmp
    local gws = {}

    setup(function() tmp, srv = H.tmpdir("rngx"), R.start() end)
    teardown(function()
        for _, gw in ipairs(gws) do stop_gateway(gw) end
        R.cleanup(tmp, srv)
    end)

    it("two gateways' workers and plain Lua processes spend one budget", function()
        local c = { KEY = "rngx-" .. now(), PM = 60, BURST = 10, PERIOD = 3, URL = srv.url }
        local P = c.PERIOD * NS
        c.UNTIL = string.format("%.0f", now() + 3 * P + 2 * NS)
        for g = 1, 2 do
            local v = {}
            for k, x in pairs(c) do v[k] = x end
            v.DIR = tmp .. "/gw" .. g
            v.PORT = H.free_port()
            H.run("mkdir -p '" .. v.DIR .. "'")
            gws[g] = start_gateway(tmp .. "/gw" .. g, v)
        end
        -- the third host: plain processes, one Lua 5.4, one LuaJIT
        local dir3 = tmp .. "/plain"
        H.run("mkdir -p '" .. dir3 .. "'")
        local outs = {}
        for i, interp in ipairs{ "lua5.4", "luajit" } do
            local env = interp == "luajit"
                and string.format("LUA_PATH='%s/lua/?.lua;;' LUA_CPATH='%s/build/luajit/?.so;;' ", root, root) or ""
            outs[i] = string.format("%s/plain%d.log", tmp, i)
            H.run(string.format("%s%s spec/redis_worker.lua %s '%s' '%s' %d %d %d %s '%s' 0.5 >%s.stdout 2>&1 &",
                                env, interp, outs[i], c.KEY, dir3, c.PM, c.BURST, c.PERIOD, c.UNTIL, c.URL, outs[i]))
        end
        H.sleep((tonumber(c.UNTIL) - now()) / NS + 0.5)
        local files = {}
        for _, o in ipairs(outs) do files[#files + 1] = o end
        for g = 1, 2 do
            for _ = 1, 40 do
                local ls = H.run("ls " .. tmp .. "/gw" .. g .. "/w*.log 2>/dev/null")
                local n, done = 0, 0
                for p in ls:gmatch("%S+") do
                    n = n + 1
                    local l = lines(p)
                    if l[#l] == "done" then done = done + 1 end
                end
                if n == 2 and done == 2 then
                    for p in ls:gmatch("%S+") do files[#files + 1] = p end
                    break
                end
                H.sleep(0.25)
            end
        end
        assert.equal(6, #files, "not every worker finished: " .. table.concat(files, " "))
        local ts, per = {}, {}
        for i, p in ipairs(files) do
            per[i] = 0
            for _, l in ipairs(lines(p)) do
                assert.is_nil(l:match("^raise"), p .. ": " .. l)
                assert.is_nil(l:match("^error"), p .. ": " .. l)
                assert.is_nil(l:match("^late"), p .. ": " .. l)
                local t = l:match("^t (%d+)")
                if t then ts[#ts + 1] = tonumber(t); per[i] = per[i] + 1 end
            end
        end
        table.sort(ts)
        assert.equal(60, max_in_window(ts, P))
        local used = count_between(ts, ts[1], ts[1] + 3 * P)
        assert.truthy(used >= 0.99 * 180, "only " .. used .. " of 180 in 3 windows")
        assert.truthy(per[1] + per[2] > 0, "the plain host starved")
        assert.truthy(per[3] + per[4] > 0, "gateway 1 starved")
        assert.truthy(per[5] + per[6] > 0, "gateway 2 starved")
        -- Redis saw the three hosts (and this one)
        local l = assert(limiter.new{ key = c.KEY, dir = tmp, redis = c.URL, per_minute = 60, period = 3 })
        assert.truthy(l:status().hosts >= 4, "hosts " .. l:status().hosts)
        l:close()
    end)

    -- two example gateways booking 12 each at once on one sandbox, and a
    -- CLI import of 4 creates on the same key (its own limiter dir: a third
    -- host) -> bookings done, the CLI's exit code, output and codes, the
    -- most POSTs the API saw in a window of the period (server-side arrival
    -- times, ms resolution, loopback latency: a window 50 ms short of the
    -- period)
    local function two_gateways(redis_url)
        local sb = H.sandbox{ workers = 2 }
        sb:reset()
        local key = "rgw-" .. now()
        local env = { MEDIQUO_RL_KEY = key, MEDIQUO_RL_PER_MINUTE = 10,
                      MEDIQUO_RL_PERIOD = 3, MEDIQUO_RL_REDIS = redis_url }
        local g1 = NH.gateway(sb, { workers = 2, env = env })
        local g2 = NH.gateway(sb, { workers = 2, env = env })
        local cdir = tmp .. "/cli-" .. now()
        H.run("mkdir -p '" .. cdir .. "'")
        local cli_prefix = "cli29-" .. now()
        C.creates_file(cdir .. "/rows.csv", cli_prefix, 4)
        C.spawn(cdir, "cli", "--sandbox --base-url " .. H.shell_quote(sb.base_url)
            .. " --per-minute 10 --period 3 --rate-limit-key " .. key
            .. (redis_url ~= "" and (" --redis " .. redis_url) or "")
            .. " import " .. H.shell_quote(cdir .. "/rows.csv") .. " --no-journal")
        local function bookings(tag)
            local t = {}
            for i = 1, 12 do
                t[i] = { code = tag .. "-" .. i .. "-" .. now(), starts_at = "2030-05-20T12:00:00Z",
                         patient = "P1", professional = "prof-demo-1" }
            end
            return t
        end
        local h1 = NH.spawn_posts(g1.url .. "/book", bookings("g1"), 40)
        local h2 = NH.spawn_posts(g2.url .. "/book", bookings("g2"), 40)
        local res = h1:wait()
        for _, r in ipairs(h2:wait()) do res[#res + 1] = r end
        local cli = { rc = C.wait(cdir, "cli", 60), out = H.read_file(cdir .. "/cli.out") or "",
                      err = H.read_file(cdir .. "/cli.err") or "", codes = 0 }
        for code in pairs(sb:state()) do
            if code:sub(1, #cli_prefix) == cli_prefix then cli.codes = cli.codes + 1 end
        end
        g1:stop()
        g2:stop()
        local ok = 0
        for _, r in ipairs(res) do if r.status == 201 then ok = ok + 1 end end
        local ts = {}
        for _, e in ipairs(sb:log()) do
            if e.method == "POST" and e.path:find("^/v1/appointments") then ts[#ts + 1] = e.time * NS end
        end
        table.sort(ts)
        return ok, max_in_window(ts, 3 * NS - 0.05 * NS), cli
    end

    it("two example gateways (MEDIQUO_RL_REDIS) and a CLI import (--redis): the API sees one budget", function()
        local ok, most, cli = two_gateways(srv.url)
        assert.truthy(ok >= 20, "only " .. ok .. " of 24 booked")
        assert.equal(0, cli.rc, cli.out .. cli.err)
        assert.truthy(cli.out:find("4 rows: 4 ok", 1, true), cli.out .. cli.err)
        assert.equal(4, cli.codes)
        assert.truthy(most <= 10, "the API saw " .. most .. " in a window")
    end)

    it("X-RateLimit-Remaining on a Redis budget counts another host's starts", function()
        -- another host (a limiter in this process, its own dir) starts 40
        -- of 100 per 30 s; the example gateway's /book answers with what
        -- the budget has left, as Redis counted it at the gateway's round
        -- trip (mq_rdl_remaining); its own window alone said 99
        local sb = H.sandbox{}
        sb:reset()
        local key = "rrem-" .. now()
        local other = assert(limiter.new{ key = key, dir = H.mkdir(tmp .. "/rem-other"), redis = srv.url,
                                          per_minute = 100, burst = 100, period = 30, max_wait = 0 })
        for i = 1, 40 do assert.is_true((other:try()), "the other host's start #" .. i) end
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_RL_KEY = key, MEDIQUO_RL_PER_MINUTE = 100,
                                                         MEDIQUO_RL_BURST = 100, MEDIQUO_RL_PERIOD = 30,
                                                         MEDIQUO_RL_REDIS = srv.url } })
        local st, body, h = gw:post("/book", { code = "rrem-" .. now(), starts_at = "2030-05-20T12:00:00Z",
                                               patient = "P1", professional = "prof-demo-1" })
        gw:stop()
        other:close()
        assert.equal(201, st, H.json.encode(body))
        assert.equal("100", h["x-ratelimit-limit"])
        local rem = tonumber(h["x-ratelimit-remaining"])
        if os.getenv("RSPEC_DEBUG") then print("\n    X-RateLimit-Remaining " .. tostring(rem)) end
        assert.truthy(rem and rem >= 0 and rem <= 100 - 41, "X-RateLimit-Remaining " .. tostring(rem)
                      .. " after 41 starts in all")
    end)

    it("the same two gateways without Redis: each spends the whole budget (the spec can fail)", function()
        local _, most = two_gateways("")
        assert.truthy(most > 10, "the API saw only " .. most .. " in a window")
    end)
end)
