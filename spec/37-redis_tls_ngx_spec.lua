-- spec/37-redis_tls_ngx_spec.lua: Redis as production runs it (issue 20)
-- through mediquo.ngx: the example gateway (real nginx, cosockets) on a
-- TLS redis-server the spec starts, verified against the CA the spec made
-- (MEDIQUO_CA_FILE: lua_ssl_trusted_certificate), and a gateway with a
-- wrong password: the refused AUTH in error.log at `error` within a second
-- of the start, before any traffic, and every call failing `config`; a
-- gateway on redis-sentinel:// (the cosockets go to a Sentinel, then to the
-- master it names: one conversation, two nodes) and one on redis-cluster://
-- whose budget's slot is off the seed (MOVED followed on cosockets); a
-- server whose certificate holds only an IP SAN (no DNS name, a CN that is
-- not the address): accepted for its IP, refused (config, logged) for
-- another IP. ~35 s.

local core = require "mediquo.core"
local limiter = require "mediquo.limiter"
local H = require "spec.helper"
local R = require "spec.redis_helper"
local HA = require "spec.redis_ha_helper"
local NH = require "spec.ngx_helper"

local now = core.limiter_now

local function booking(code)
    return { code = code, starts_at = "2030-05-20T12:00:00Z", patient = "P1",
             professional = "prof-demo-1" }
end

describe("rate_limit.redis over TLS in nginx", function()
    local tmp, certs, srv, sb
    local PW = "ngx-tls-s3cret"

    setup(function()
        tmp = H.tmpdir("rtlsngx")
        srv, certs = R.tls_start(tmp, { "--requirepass", PW })
        sb = H.sandbox{}
    end)
    teardown(function() R.cleanup(tmp, srv) end)

    local function url(pw) return ("rediss://:%s@127.0.0.1:%d"):format(pw, srv.port) end

    -- the first [error] line of gw's error.log holding one of the words,
    -- waited for 2 s at most (40 looks, 50 ms apart); nil when none came
    local function logged(gw, ...)
        for _ = 1, 40 do
            local log = gw:error_log()
            for _, word in ipairs{ ... } do
                local line = log:match("[^\n]*%[error%][^\n]*" .. word .. "[^\n]*")
                if line then return line end
            end
            H.sleep(0.05)
        end
    end

    it("a gateway on rediss:// with the CA books through Redis", function()
        local key = "tls37-" .. now()
        local gw = NH.gateway(sb, { env = { MEDIQUO_RL_KEY = key, MEDIQUO_RL_REDIS = url(PW),
                                            MEDIQUO_CA_FILE = certs.ca } })
        for i = 1, 4 do
            local status, body = gw:post("/book", booking("t37-" .. i .. "-" .. now()))
            assert.equal(201, status, H.json.encode(body))
        end
        local log = gw:error_log()
        gw:stop()
        assert.is_nil(log:find("[error]", 1, true), log)
        -- the budget is Redis's: the gateway's host is registered there
        local l = assert(limiter.new{ key = key, dir = tmp, redis = url(PW),
                                      redis_tls = { ca_file = certs.ca } })
        local st = l:status()
        assert.is_false(st.degraded, st.error)
        assert.truthy(st.hosts >= 2, "hosts " .. st.hosts)
        l:close()
    end)

    it("a wrong password: at error within a second of the start, before traffic; calls fail config", function()
        sb:reset()
        local gw = NH.gateway(sb, { env = { MEDIQUO_RL_REDIS = url("not-" .. PW),
                                            MEDIQUO_CA_FILE = certs.ca } })
        local t0 = now()
        local found = logged(gw, "refused AUTH")
        local took = (now() - t0) / 1e9
        assert.truthy(found, "no refused AUTH in error.log: " .. gw:error_log())
        assert.truthy(took <= 1.0, ("logged %.2f s after the start"):format(took))
        assert.matches("redis 127.0.0.1:" .. srv.port, found, 1, true)
        assert.is_nil(found:find(PW, 1, true), "the password is in error.log")
        assert.same({}, sb:api_log())           -- before any traffic
        for i = 1, 4 do
            local status, body = gw:post("/book", booking("t37w-" .. i .. "-" .. now()))
            assert.equal(500, status)
            assert.equal("config", body.error)
        end
        assert.same({}, sb:api_log())           -- never a silent fallback
        -- once per worker per cause, not once per call
        local log = gw:error_log()
        gw:stop()
        local n = select(2, log:gsub("refused AUTH", ""))
        assert.truthy(n >= 1 and n <= 2, n .. " lines: " .. log)
        assert.is_nil(log:find(PW, 1, true))
    end)

    it("a CA nginx does not trust: config, naming lua_ssl_trusted_certificate", function()
        local gw = NH.gateway(sb, { env = { MEDIQUO_RL_REDIS = url(PW) } })    -- the system bundle
        local found = logged(gw, "TLS certificate check failed")
        assert.truthy(found, "no certificate fault in error.log: " .. gw:error_log())
        assert.matches("lua_ssl_trusted_certificate", found, 1, true)
        assert.matches("redis 127.0.0.1:" .. srv.port, found, 1, true)
        local status, body = gw:post("/book", booking("t37c-" .. now()))
        gw:stop()
        assert.equal(500, status)
        assert.equal("config", body.error)
    end)

    -- an example gateway on redis_url (env: more of its settings) books 3
    -- times without an [error], on Redis (status: backend redis, not
    -- degraded); the budget's keys are then on node (a port, or a server
    -- of R.start: the host registered there)
    local function books_on(redis_url, key, node, tag, env)
        env = env or {}
        env.MEDIQUO_RL_KEY, env.MEDIQUO_RL_REDIS = key, redis_url
        local gw = NH.gateway(sb, { env = env })
        for i = 1, 3 do
            local status, body = gw:post("/book", booking(tag .. "-" .. i .. "-" .. now()))
            assert.equal(201, status, H.json.encode(body) .. "\n" .. gw:error_log())
        end
        local st, raw = gw:get("/status")
        local log = gw:error_log()
        gw:stop()
        assert.is_nil(log:find("[error]", 1, true), log)
        assert.equal(200, st, raw)
        local lim = H.json.decode(raw).limiter
        assert.equal("redis", lim.backend, raw)
        assert.is_false(lim.degraded, raw)
        local exists = "EXISTS " .. H.shell_quote(HA.budget_tag(key) .. ":hosts")
        assert.equal("1", (type(node) == "number" and HA.cli(node, exists) or node:cli(exists)):match("%d+"))
    end

    it("a gateway on redis-sentinel:// books through the master the Sentinel names", function()
        local sen = HA.sentinel{ sentinels = 1, quorum = 1 }
        books_on(sen.url, "sen37-" .. now(), sen.master.port, "s37")
        sen:stop()
    end)

    it("a gateway on redis-cluster:// books on the node of the budget's slot, not the seed's", function()
        local cl = HA.cluster{ masters = 3, replicas = 0 }
        local key, _, node = cl:key_elsewhere("cl37")
        books_on(cl.url, key, node.port, "c37")
        cl:stop()
    end)

    -- a certificate the spec's CA signs with only an IP SAN: no DNS name,
    -- and a CN that is not an address, so that no name check can pass
    local function ip_only_cert(name, ip)
        return R.sign_cert(certs, tmp, name, name, "IP:" .. ip)
    end

    -- Before this check was shared with the API's (lua/mediquo/ngx_tls.lua),
    -- nginx was asked to check "127.0.0.1" as a host name (X509_check_host,
    -- DNS names only): this gateway logged "TLS certificate check failed:
    -- certificate host mismatch" and every /book failed config.
    it("an IPv6 literal (redis://[::1]) and localhost: the gateway books through Redis", function()
        -- nginx takes a cosocket host "::1" for a host and a port (failed to
        -- parse host name) and a name for its resolver: mediquo.ngx_redis
        -- brackets the one and connects localhost as 127.0.0.1
        local v6 = R.start{ "--bind", "127.0.0.1", "::1" }
        books_on(("redis://[::1]:%d"):format(v6.port), "v637-" .. now(), v6, "v6")
        books_on(("redis://localhost:%d"):format(v6.port), "lh37-" .. now(), v6, "lh")
        v6:stop()
    end)

    it("a certificate with only the IP SAN 127.0.0.1: the gateway books through Redis", function()
        local c = ip_only_cert("redis-ip-only", "127.0.0.1")
        local m = R.start({}, { ca = certs.ca, cert = c.cert, key = c.key })
        books_on(("rediss://127.0.0.1:%d"):format(m.port), "ip37-" .. now(), m, "i37",
                 { MEDIQUO_CA_FILE = certs.ca })
        m:stop()
    end)

    it("a certificate with only another IP's SAN (127.0.0.2): config, logged, naming the address", function()
        local c = ip_only_cert("redis-other-ip", "127.0.0.2")
        local m = R.start({}, { ca = certs.ca, cert = c.cert, key = c.key })
        sb:reset()
        local gw = NH.gateway(sb, { env = { MEDIQUO_CA_FILE = certs.ca,
                                            MEDIQUO_RL_REDIS = ("rediss://127.0.0.1:%d"):format(m.port) } })
        local found = logged(gw, "TLS certificate check failed")
        local log0 = gw:error_log()
        assert.truthy(found, "no certificate fault in error.log: " .. log0)
        assert.matches("redis 127.0.0.1:" .. m.port, found, 1, true)
        assert.matches("the certificate is not for 127.0.0.1", found, 1, true)
        assert.matches("target IP address '127.0.0.1'", found, 1, true)
        local status, body = gw:post("/book", booking("o37-" .. now()))
        local st, raw = gw:get("/status")
        gw:stop()
        m:stop()
        assert.equal(500, status)
        assert.equal("config", body.error)
        assert.same({}, sb:api_log())           -- never a silent fallback
        assert.equal(200, st, raw)
        assert.matches("not for 127.0.0.1", H.json.decode(raw).limiter.error or "", 1, true)
    end)

    it("mutual TLS: without a client certificate config (logged), with one the gateway books", function()
        local m = R.mtls_start(certs)
        local u = ("rediss://127.0.0.1:%d"):format(m.port)
        local gw = NH.gateway(sb, { env = { MEDIQUO_RL_REDIS = u, MEDIQUO_CA_FILE = certs.ca } })
        local found = logged(gw, "client certificate", "certificate required")
        local log0 = gw:error_log()
        gw:stop()
        assert.truthy(found, "no client-certificate fault in error.log: " .. log0)
        books_on(u, "mtls37-" .. now(), m, "m37", { MEDIQUO_CA_FILE = certs.ca,
                                                    MEDIQUO_RL_REDIS_CERT = certs.client.cert,
                                                    MEDIQUO_RL_REDIS_KEY = certs.client.key })
        m:stop()
    end)
end)
