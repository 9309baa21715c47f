-- spec/21-ngx_security_spec.lua: TLS, hostile servers and secrets through
-- mediquo.ngx in real nginx (examples/nginx.conf via spec/ngx_helper), the
-- same cases the blocking client meets in 13-tls, 14-hostile and
-- 15-secrets. TLS is verified by nginx against lua_ssl_trusted_certificate
-- (the example fills it with MEDIQUO_CA_FILE, also passed as ca_file).

local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local hostile = require "spec.hostile.server"

local json = H.json

local seq = 0
local function booking(code)
    seq = seq + 1
    return { code = code or ("sec-%d-%d"):format(math.random(1, 1e6), seq),
             starts_at = "2030-05-20T10:00:00Z", patient = "pat-1", professional = "prof-demo-1" }
end

-- a "sandbox" table NH.gateway takes: only its base_url is read
local function upstream(base_url) return { base_url = base_url } end

local function no_keys(s)
    assert.falsy(s:find(H.secret_key, 1, true), "the secret key leaked")
    assert.falsy(s:find(H.api_key, 1, true), "the api key leaked")
end

-- a refused handshake: the gateway's own setup (500, a generic message
-- with no path in it), the directive named in error.log, nothing sent
local function assert_config_refusal(gw, sb, st, body, directive)
    assert.are.equal(500, st, json.encode(body))
    assert.are.equal("config", body.error)
    assert.falsy(body.message:find("/", 1, true), body.message)
    local log = gw:error_log()
    assert.truthy(log:find(directive, 1, true), log)
    if sb then assert.are.same({}, sb:log()) end
end

-- a refused certificate: network, a certificate message, one attempt, nothing sent
local function assert_cert_refused(sb, st, body)
    assert.are.equal(502, st, json.encode(body))
    assert.are.equal("network", body.error)
    assert.is_nil(body.status)
    assert.truthy(body.message:lower():find("certificate", 1, true), body.message)
    assert.are.equal(1, body.attempts)
    assert.are.same({}, sb:log())
end

describe("mediquo.ngx TLS", function()
    local sb
    setup(function()
        sb = H.sandbox{ tls = true }
        assert.is_string(sb.ca_file)
    end)
    before_each(function() sb:reset() end)

    it("refuses the sandbox's self-signed chain by default (the system bundle), as a certificate problem", function()
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_MAX_RETRIES = 2 } })
        finally(function() gw:stop() end)
        local st, body = gw:post("/book", booking())
        assert_cert_refused(sb, st, body)
        -- an idempotent call is not retried either: a certificate will not fix itself
        st, body = gw:post("/cancel", { code = "nope" })
        assert_cert_refused(sb, st, body)
        no_keys(gw:error_log())
    end)

    it("says which directive to add when lua_ssl_trusted_certificate is missing", function()
        local path = NH.conf_variant(function(conf)
            return (conf:gsub("\n%s*lua_ssl_trusted_certificate [^\n]*", "\n"))
        end)
        local gw = NH.gateway(sb, { workers = 1, conf = path })
        finally(function() gw:stop(); os.remove(path) end)
        local st, body = gw:post("/book", booking())
        assert_config_refusal(gw, sb, st, body, "set lua_ssl_trusted_certificate")
    end)

    it("succeeds with the sandbox's CA as lua_ssl_trusted_certificate and ca_file", function()
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_CA_FILE = sb.ca_file } })
        finally(function() gw:stop() end)
        local a = booking()
        local st, appt = gw:post("/book", a)
        assert.are.equal(201, st, json.encode(appt))
        assert.are.equal(a.code, appt.code)
        assert.matches("^https://", appt.url)
        local st2, moved = gw:post("/reschedule", { code = a.code, starts_at = "2030-05-21T10:00:00Z" })
        assert.are.equal(200, st2, json.encode(moved))
        assert.are_not.equal(appt.url, moved.url)
        assert.are.equal(200, (gw:post("/cancel", { code = a.code })))
        local log = sb:log()
        assert.are.equal(3, #log)
        for _, e in ipairs(log) do assert.is_true(e.secret_ok) end
    end)

    it("checks the host name against the certificate (https://localhost: SNI and name check pass)", function()
        local gw = NH.gateway(upstream((sb.base_url:gsub("127%.0%.0%.1", "localhost"))),
                              { workers = 1, env = { MEDIQUO_CA_FILE = sb.ca_file } })
        finally(function() gw:stop() end)
        local st, appt = gw:post("/book", booking())
        assert.are.equal(201, st, json.encode(appt))
        assert.are.equal(1, #sb:log())
    end)

    it("refuses a certificate its CA bundle did not sign", function()
        local dir = NH.tmpdir("ngx-tls")
        local other = dir .. "/other-ca.pem"
        local _, code = H.run(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=not the sandbox CA' "
                               .. "-keyout %s -out %s 2>&1"):format(H.shell_quote(dir .. "/k.pem"),
                                                                   H.shell_quote(other)))
        assert.are.equal(0, code)
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_CA_FILE = other } })
        finally(function() gw:stop(); H.run("rm -rf " .. H.shell_quote(dir)) end)
        local st, body = gw:post("/book", booking())
        assert_cert_refused(sb, st, body)
    end)

    it("succeeds with insecure = true (verification off: development only)", function()
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_INSECURE = 1 } })
        finally(function() gw:stop() end)
        local st, appt = gw:post("/book", booking())
        assert.are.equal(201, st, json.encode(appt))
        assert.are.equal(1, #sb:log())
    end)

    it("says which directive to add when a host name needs nginx's resolver", function()
        local path = NH.conf_variant(function(conf)
            return (conf:gsub("\n%s*resolver [^\n]*", "\n"))
        end)
        local gw = NH.gateway(upstream("https://sdk.example.com/v1"), { workers = 1, conf = path })
        finally(function() gw:stop(); os.remove(path) end)
        local st, body = gw:post("/book", booking())
        assert_config_refusal(gw, nil, st, body, "resolver")
    end)
end)

describe("mediquo.ngx and the host's own setup", function()
    it("answers a limiter file it cannot make as config: 500, no server path to the caller", function()
        local sb = H.sandbox{}
        local dir = NH.tmpdir("ngx-cfg")
        local not_a_dir = dir .. "/plain-file"
        assert(H.write_file(not_a_dir, "x"))
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_RL_DIR = not_a_dir } })
        finally(function() gw:stop(); H.run("rm -rf " .. H.shell_quote(dir)) end)
        sb:reset()
        local st, body = gw:post("/book", booking())
        assert.are.equal(500, st, json.encode(body))
        assert.are.equal("config", body.error)
        assert.falsy(json.encode(body):find(dir, 1, true))     -- the path stays on the host
        assert.truthy(gw:error_log():find(not_a_dir, 1, true))  -- and is in error.log
        assert.are.same({}, sb:log())
        -- the engine ended the call and counted it, once per call
        gw:post("/book", booking())
        local sst, text = gw:get("/stats")
        assert.are.equal(200, sst)
        local stats = json.decode(text)
        assert.are.equal(2, stats.by_kind.config, json.encode(stats))
    end)

    it("the example's answers name no worker: no pid in any header (the tests' config adds X-Worker)",
       function()
        local sb = H.sandbox{}
        local gw = NH.gateway(sb, { workers = 1, conf = H.root .. "/examples/nginx.conf" })
        finally(function() gw:stop() end)
        local pid = H.run("cat " .. H.shell_quote(gw.prefix .. "/nginx.pid")):match("%d+")
        local worker = H.run("pgrep -P " .. pid):match("%d+")
        assert.truthy(worker)
        for _, path in ipairs{ "/book", "/status" } do
            local st, _, headers
            if path == "/book" then st, _, headers = gw:post(path, booking())
            else st, _, headers = gw:get(path) end
            assert.truthy(st and headers and headers["content-type"])
            for k, v in pairs(headers or {}) do
                assert.falsy(k == "x-worker", path .. ": " .. k)
                assert.falsy(tostring(v):find(worker, 1, true), path .. ": " .. k .. ": " .. tostring(v))
            end
        end
        -- the tests' own gateways do carry it
        local tgw = NH.gateway(sb, { workers = 1 })
        finally(function() tgw:stop() end)
        local _, _, th = tgw:post("/book", booking())
        assert.truthy(th["x-worker"])
    end)
end)

describe("mediquo.ngx against hostile servers", function()
    local srv
    setup(function() srv = hostile.start() end)
    teardown(function() if srv then srv:stop() end end)
    before_each(function() srv:reset() end)

    local function gw_for(scenario, env)
        return NH.gateway(upstream(srv.url .. "/" .. scenario), { workers = 1, env = env })
    end

    for _, status in ipairs{ 301, 302, 307, 308 } do
        it("does not follow a " .. status .. ": bad_response, not retried, nothing reaches the target", function()
            local gw = gw_for("redirect-" .. status, { MEDIQUO_RETRY_POST = 1, MEDIQUO_MAX_RETRIES = 2 })
            finally(function() gw:stop() end)
            for _, call in ipairs{ { "/book", booking("H1") },
                                   { "/reschedule", { code = "H1", starts_at = "2030-05-21T10:00:00Z" } },
                                   { "/cancel", { code = "H1" } } } do
                local st, body = gw:post(call[1], call[2])
                assert.are.equal(502, st, call[1])
                assert.are.equal("bad_response", body.error, call[1])
                assert.are.equal(status, body.status, call[1])
                assert.are.equal(1, body.attempts, call[1])
            end
            assert.are.same({}, srv:trap())             -- no request, no keys
        end)
    end

    it("ends a body trickled one byte a second at the timeout", function()
        local gw = gw_for("trickle", { MEDIQUO_TIMEOUT = 1.5, MEDIQUO_MAX_RETRIES = 3 })
        finally(function() gw:stop() end)
        local t0 = H.now()
        local st, body = gw:post("/book", booking("H1"))
        local took = H.now() - t0
        assert.are.equal(504, st, json.encode(body))
        assert.are.equal("timeout", body.error)
        assert.are.equal(1, body.attempts)          -- a create is not retried after it
        assert.is_true(took >= 1.4 and took < 4, "took " .. took)
    end)

    it("survives a 100 KB header line: bad_response naming the header, not retried", function()
        local gw = gw_for("big-header", { MEDIQUO_MAX_RETRIES = 2 })
        finally(function() gw:stop() end)
        local st, body = gw:post("/cancel", { code = "H1" })
        assert.are.equal(502, st, json.encode(body))
        assert.are.equal("bad_response", body.error)
        assert.truthy(body.message:find("header", 1, true), body.message)
        assert.are.equal(1, body.attempts)
    end)

    it("answers JSON nested 10,000 deep: bad_response for a 2xx, the status's kind otherwise", function()
        local gw = gw_for("deep-ok")
        finally(function() gw:stop() end)
        local st, body = gw:post("/book", booking("H1"))
        assert.are.equal(502, st)
        assert.are.equal("bad_response", body.error)
        assert.are.equal(200, body.status)
        local gw2 = gw_for("deep-400")
        finally(function() gw:stop(); gw2:stop() end)
        st, body = gw2:post("/book", booking("H1"))
        assert.are.equal(400, st)
        assert.are.equal("bad_request", body.error)
        assert.is_true(#body.message < 1024)
    end)

    it("keeps the keys out of what a server echoes back, escaped or not", function()
        local gw = gw_for("echo-secret")
        finally(function() gw:stop() end)
        local st, body, _ = gw:post("/book", booking("H1"))
        assert.are.equal(502, st)
        assert.are.equal("forbidden", body.error)
        no_keys(json.encode(body))
        local gw2 = gw_for("echo-secret-ok")
        finally(function() gw:stop(); gw2:stop() end)
        local appt
        st, appt = gw2:post("/book", booking("H1"))
        assert.are.equal(201, st, json.encode(appt))
        assert.truthy(appt.url:find("^https://x/%*+/%*+$"), appt.url)
        no_keys(gw:error_log() .. gw2:error_log())
    end)

    it("logged no crash in nginx and never saw a request at the trap", function()
        assert.are.same({}, srv:trap())
        local log = srv:error_log()
        assert.is_nil(log:find("[alert]", 1, true), log)
        assert.is_nil(log:find("[emerg]", 1, true), log)
    end)
end)
