-- spec/46-ngx_resolver_spec.lua: name resolution counts against a call's
-- deadline in mediquo.ngx. nginx resolves a cosocket's host name with its
-- `resolver`, bounded only by resolver_timeout (30 s by default); the
-- socket's connect timeout starts after it. Against a resolver that never
-- answers (a UDP socket this spec binds and never reads), a call with
-- deadline = 2 ends within deadline + 1 s as kind network naming the
-- resolver (mediquo.ngx_connect); a plain cosocket connect with a 1 s
-- timeout, in the same nginx, waits the whole resolver_timeout -- the
-- bound fails without the mechanism. And a resolver that answers (a Lua
-- process of this spec): calls on a host name succeed through the same
-- light thread, pooled. The Redis budget's round trip (mediquo.ngx_redis)
-- to a name is bounded the same way, by redis_timeout. Workers as nobody.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local socket = require "socket"

local json = H.json

local function booking()
    return { code = ("res-%d"):format(math.random(1, 1e9)), starts_at = "2030-05-20T10:00:00Z",
             patient = "P1", professional = "prof-demo-1" }
end

describe("mediquo.ngx and a resolver that never answers", function()
    local udp, gw, path

    setup(function()
        -- the silent resolver: bound, never read, never answering
        for _ = 1, 20 do
            local port = H.free_port()
            udp = socket.udp()
            if udp:setsockname("127.0.0.1", port) then break end
            udp:close()
            udp = nil
        end
        assert(udp, "no UDP port for the silent resolver")
        local _, port = udp:getsockname()
        path = NH.conf_variant(function(conf)
            conf = conf:gsub("resolver @RESOLVER@[^;]*;", "resolver 127.0.0.1:" .. port
                             .. " ipv6=off; resolver_timeout 5s;")
            -- the mechanism off: a plain cosocket connect to a name, 1 s timeouts
            return (conf:gsub("        location = /health", function() return [[
        location = /raw-connect { content_by_lua_block {
            local s = ngx.socket.tcp()
            s:settimeouts(1000, 1000, 1000)
            ngx.update_time()
            local t0 = ngx.now()
            local ok, err = s:connect("sdk.example.com", 443)
            ngx.update_time()
            ngx.say(ngx.now() - t0, " ", tostring(ok), " ", tostring(err))
        } }
        location = /health]] end))
        end)
        gw = NH.gateway({ base_url = "https://sdk.example.com/v1" },
                        { workers = 1, user = "nobody nogroup", conf = path,
                          env = { MEDIQUO_DEADLINE = 2, MEDIQUO_MAX_RETRIES = 2 } })
    end)

    teardown(function()
        if gw then gw:stop() end
        if path then os.remove(path) end
        if udp then udp:close() end
    end)

    it("ends a call within deadline + 1 s, as network, naming the resolver", function()
        local t0 = H.now()
        local st, body = gw:post("/book", booking(), 40)
        local took = H.now() - t0
        assert.are.equal(502, st, json.encode(body))
        assert.are.equal("network", body.error)
        assert.matches("resolver", body.message)
        assert.are.equal("none", body.effect)
        assert.is_true(took < 3, ("took %.2f s with deadline = 2"):format(took))
        assert.is_true(took > 1.5, ("took %.2f s: did it wait for the resolver at all?"):format(took))
        -- the worker serves on after the killed resolution
        assert.are.equal(200, (gw:get("/health")))
        assert.falsy(gw:error_log():find("runtime error", 1, true), gw:error_log())
    end)

    it("a Redis budget behind a name: its round trip ends within redis_timeout, degraded, naming "
       .. "the resolver", function()
        -- the start-up check's round trip (a timer at init_worker) to
        -- redis://redis.example.com: through mediquo.ngx_connect it gives up
        -- after redis_timeout (0.25 s); a plain connect would wait the whole
        -- resolver_timeout (5 s here, the test below) before Redis is known
        -- to be down
        local g = NH.gateway(H.sandbox{}, { workers = 1, user = "nobody nogroup", conf = path,
                                            env = { MEDIQUO_RL_REDIS = "redis://redis.example.com:6379" } })
        finally(function() g:stop() end)
        H.sleep(1.5)
        local st, raw = g:get("/status")
        assert.are.equal(200, st, raw)
        local lim = json.decode(raw).limiter
        assert.are.equal("redis", lim.backend, raw)
        assert.is_true(lim.degraded, raw .. "\n" .. g:error_log())
        assert.matches("not resolved in time by nginx's resolver", lim.error or "", 1, true)
        assert.matches("redis redis.example.com:6379", lim.error, 1, true)
        assert.falsy(g:error_log():find("runtime error", 1, true), g:error_log())
    end)

    it("without it: a plain cosocket connect with a 1 s timeout waits the whole resolver_timeout", function()
        local t0 = H.now()
        local st, text = gw:get("/raw-connect")
        local took = H.now() - t0
        assert.are.equal(200, st)
        assert.is_true(took >= 4.5, ("the connect timeout bounded resolution (%.2f s): %s"):format(took, text))
        assert.matches("could not be resolved", text)
    end)
end)

describe("mediquo.ngx with a host name and no resolver", function()
    it("says so as config, naming the directive", function()
        local path = NH.conf_variant(function(conf)
            return (conf:gsub("\n%s*resolver [^\n]*", "\n"))
        end)
        local gw = NH.gateway({ base_url = "https://sdk.example.com/v1" },
                              { workers = 1, user = "nobody nogroup", conf = path })
        finally(function() gw:stop(); os.remove(path) end)
        local st, body = gw:post("/book", booking())
        assert.are.equal(500, st, json.encode(body))
        assert.are.equal("config", body.error)
        assert.matches("resolver", gw:error_log())
    end)
end)

-- a resolver that answers every A query with 127.0.0.1 (a Lua process of
-- this spec, bounded in time and count, stopped by its PID)
local RESPONDER = [==[
-- answers every A query with 127.0.0.1 (bounded: 90 s, 10000 queries)
local socket = require "socket"
local u = assert(socket.udp())
assert(u:setsockname("127.0.0.1", tonumber(arg[1])))
u:settimeout(0.5)
local stop = socket.gettime() + (tonumber(arg[2]) or 90)
for _ = 1, 10000 do
    if socket.gettime() > stop then break end
    local q, ip, port = u:receivefrom()
    if q and #q > 12 then
        local i = 13
        while i <= #q and q:byte(i) ~= 0 do i = i + q:byte(i) + 1 end
        local qtype = q:byte(i + 1) * 256 + q:byte(i + 2)
        local question = q:sub(13, i + 4)
        local an = qtype == 1 and 1 or 0
        local r = q:sub(1, 2) .. "\129\128\0\1\0" .. string.char(an) .. "\0\0\0\0" .. question
        if an == 1 then r = r .. "\192\12\0\1\0\1\0\0\0\60\0\4\127\0\0\1" end
        u:sendto(r, ip, port)
    end
end
]==]

describe("mediquo.ngx and a resolver that answers", function()
    it("connects through the light thread: calls succeed on a host name, pooled", function()
        local dir = NH.tmpdir("ngx-dns")
        H.write_file(dir .. "/resp.lua", RESPONDER)
        local port = H.free_port()
        local pid = H.run(("lua5.4 %s %d 60 >/dev/null 2>&1 & echo $!"):format(
                          H.shell_quote(dir .. "/resp.lua"), port)):match("%d+")
        local sb = H.sandbox{}
        local sport = sb.base_url:match(":(%d+)/")
        local path = NH.conf_variant(function(conf)
            return (conf:gsub("resolver @RESOLVER@[^;]*;", "resolver 127.0.0.1:" .. port .. " ipv6=off;"))
        end)
        local gw = NH.gateway({ base_url = "http://api.mediquo.test:" .. sport .. "/v1" },
                              { workers = 1, user = "nobody nogroup", conf = path,
                                env = { MEDIQUO_INSECURE = 1 } })
        finally(function()
            gw:stop(); os.remove(path)
            if pid then H.run("kill " .. pid .. " 2>/dev/null") end
            H.run("rm -rf " .. H.shell_quote(dir))
        end)
        for _ = 1, 3 do
            local st, body = gw:post("/book", booking(), 10)
            assert.are.equal(201, st, json.encode(body) .. gw:error_log())
            assert.matches("^http://api%.mediquo%.test:%d+/call/%x+$", body.url)
        end
        assert.falsy(gw:error_log():find("[error]", 1, true), gw:error_log())
    end)
end)
