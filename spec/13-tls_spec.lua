-- TLS against the sandbox started with --tls (a self-signed CA it makes):
-- default verification refuses it as a certificate problem and sends
-- nothing; ca_file set to the sandbox's CA succeeds; a CA that did not sign
-- the certificate is refused; insecure = true succeeds (and is documented
-- loudly as a development-only switch).
local H = require "spec.helper"
local mediquo = require "mediquo"

local sb
local n = 0

local function uniq()
    n = n + 1
    return ("tls-%d-%d"):format(os.time(), n)
end

local function client(extra)
    -- generous: under valgrind a TLS handshake takes seconds, and a
    -- connect timeout would turn "certificate refused" into "could not
    -- connect" (a flake, not a finding)
    return H.client({ base_url = sb.base_url, rate_limit = false, timeout = 60,
                      connect_timeout = 45, deadline = 120 }, extra)
end

local function appt(code)
    return { code = code, starts_at = "2030-05-20T10:00:00Z", patient = "pat-1",
             professional = "prof-demo-1" }
end

-- a refused handshake: network, a certificate message, not retried, nothing sent
local function assert_cert_refused(v, err)
    assert.is_nil(v)
    assert.is_table(err)
    assert.equal("network", err.kind)
    assert.is_nil(err.status)
    assert.matches("certificate", err.message:lower(), 1, true)
    assert.is_false(err.retryable)
    assert.equal(1, err.attempts)       -- a certificate will not fix itself
    assert.same({}, sb:log())           -- no request reached the server
end

describe("TLS", function()
    setup(function()
        sb = H.sandbox{ tls = true }
        assert.matches("^https://127%.0%.0%.1:%d+/v1$", sb.base_url)
        assert.is_string(sb.ca_file)
    end)
    before_each(function() sb:reset() end)

    it("refuses the self-signed certificate by default, as a certificate problem", function()
        local c = client{ max_retries = 2 }
        assert_cert_refused(c:create(appt(uniq())))
        -- idempotent methods are not retried either
        assert_cert_refused(c:cancel(uniq()))
        assert.matches("certificate", tostring(select(2, c:reschedule(uniq(), 1900000000))):lower(), 1, true)
        assert.equal(3, c:stats().requests)
        assert.equal(0, c:stats().retries)
        c:close()
    end)

    it("succeeds with ca_file set to the sandbox's CA", function()
        local c = client{ ca_file = sb.ca_file }
        local code = uniq()
        local a, err = c:create(appt(code))
        assert.is_nil(err, err and tostring(err))
        assert.equal(code, a.code)
        assert.matches("^https://", a.url)
        local r
        r, err = c:reschedule(code, "2030-05-21T10:00:00Z")
        assert.is_nil(err, err and tostring(err))
        assert.not_equal(a.url, r.url)
        assert.is_true((c:cancel(code)))
        local log = sb:log()
        assert.equal(3, #log)
        for _, e in ipairs(log) do assert.is_true(e.secret_ok) end
        c:close()
    end)

    it("refuses a certificate its ca_file did not sign", function()
        local dir = H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-tls-XXXXXX"'):gsub("%s+$", "")
        local other = dir .. "/other-ca.pem"
        local _, code = H.run(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=not the sandbox CA' "
                               .. "-keyout %s -out %s 2>&1"):format(H.shell_quote(dir .. "/k.pem"),
                                                                   H.shell_quote(other)))
        assert.equal(0, code)
        local c = client{ ca_file = other }
        assert_cert_refused(c:create(appt(uniq())))
        c:close()
        H.run("rm -rf " .. H.shell_quote(dir))
    end)

    it("succeeds with insecure = true (verification off: development only)", function()
        local c = client{ insecure = true }
        local code = uniq()
        local a, err = c:create(appt(code))
        assert.is_nil(err, err and tostring(err))
        assert.equal(code, a.code)
        assert.equal(1, #sb:log())
        c:close()
    end)

    it("checks ca_file before sending anything", function()
        local c, err = mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                    base_url = sb.base_url, ca_file = "/nonexistent/ca.pem" }
        assert.is_nil(c)
        assert.equal("config", err.kind)        -- the host's setup (API.md)
        assert.matches("ca_file", err.message, 1, true)
        assert.is_false(err.retryable)
        c, err = mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                              base_url = sb.base_url, ca_file = 42 }
        assert.is_nil(c)
        assert.equal("invalid_argument", err.kind)
        assert.same({}, sb:log())
    end)

    it("refuses plain http to a non-loopback host unless insecure = true", function()
        local c, err = mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                    base_url = "http://sdk.example.com/v1" }
        assert.is_nil(c)
        assert.equal("invalid_argument", err.kind)
        assert.matches("base_url", err.message, 1, true)
        c = assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                base_url = "http://sdk.example.com/v1", insecure = true,
                                rate_limit = false })
        c:close()
    end)
end)
