-- spec/43-tls_table_spec.lua: every TLS case gives the same outcome through
-- the three drivers - the blocking client, a batch (run_batch) and
-- mediquo.ngx (the example gateway in real nginx) - against a real nginx
-- TLS front (spec/tls/front.lua: certificates made by openssl for the run,
-- one listener each, proxying to a plain sandbox). The outcome is the
-- error's kind and the class of its reason (untrusted, expired, name,
-- self_signed), or success; a refusal sends nothing (the sandbox's log
-- stays empty), a success reaches the sandbox. Includes the case issue 21
-- found: an https://127.0.0.1 base_url with a certificate for another name
-- (refused by all three now) and with IP:127.0.0.1 (accepted).

local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local front = require "spec.tls.front"

local json = H.json

-- host: the base_url's host; ca: ca_file (and lua_ssl_trusted_certificate)
-- is the run's CA, else the system bundle; want: "ok" or the reason class
local ROWS = {
    { "default trust (system bundle): a CA of our own is not in it",
      cert = "good", host = "127.0.0.1", ca = false, want = "untrusted" },
    { "default trust, the chain sent with its root",
      cert = "with_root", host = "localhost", ca = false, want = "untrusted" },
    { "ca_file: the CA that signed it, a name base_url",
      cert = "good", host = "localhost", ca = true, want = "ok" },
    { "ca_file, the chain sent with its root",
      cert = "with_root", host = "localhost", ca = true, want = "ok" },
    { "an https://127.0.0.1 base_url, a certificate with IP:127.0.0.1",
      cert = "ip_only", host = "127.0.0.1", ca = true, want = "ok" },
    { "expired", cert = "expired", host = "localhost", ca = true, want = "expired" },
    { "wrong name (DNS:wronghost.example for localhost)",
      cert = "wrong_name", host = "localhost", ca = true, want = "name" },
    { "an https://127.0.0.1 base_url, a certificate for another name",
      cert = "wrong_name", host = "127.0.0.1", ca = true, want = "name" },
    { "wrong IP (IP:127.0.0.2 for 127.0.0.1)",
      cert = "wrong_ip", host = "127.0.0.1", ca = true, want = "name" },
    { "a name base_url, a certificate with only an IP SAN",
      cert = "ip_only", host = "localhost", ca = true, want = "name" },
    { "self-signed", cert = "self_signed", host = "127.0.0.1", ca = true, want = "self_signed" },
}

-- the reason class of a refusal's message, whichever driver wrote it
-- (curl/OpenSSL's words for the client and batches, OpenSSL's X509 error
-- strings and lua-nginx-module's for mediquo.ngx)
local function class(msg)
    local m = msg:lower()
    if m:find("expired", 1, true) then return "expired" end
    if m:find("self-signed certificate in certificate chain", 1, true)
        or m:find("local issuer", 1, true) or m:find("verify the first certificate", 1, true) then
        return "untrusted"
    end
    if m:find("self-signed certificate", 1, true) or m:find("self signed certificate", 1, true) then
        return "self_signed"
    end
    if m:find("subject name matches", 1, true) or m:find("host mismatch", 1, true) then
        return "name"
    end
    return "other: " .. msg
end

local seq = 0
local function booking()
    seq = seq + 1
    return { code = ("tls43-%d-%d"):format(math.random(1, 1e6), seq),
             starts_at = "2030-05-20T10:00:00Z", patient = "pat-1", professional = "prof-demo-1" }
end

-- an outcome: "ok", or "<kind> <class>"
local function of_err(err)
    return err.kind .. " " .. class(err.message)
end

describe("TLS table: client, batch and mediquo.ngx agree", function()
    local sb, fr
    setup(function()
        sb = H.sandbox()
        fr = front.start(sb)
    end)
    teardown(function() if fr then fr:stop() end end)
    before_each(function() sb:reset() end)

    local function base_url(row)
        return ("https://%s:%d/v1"):format(row.host, fr.port[row.cert])
    end

    for _, row in ipairs(ROWS) do
        it(row[1], function()
            local want = row.want == "ok" and "ok" or ("network " .. row.want)
            local sent = row.want == "ok" and 1 or 0
            local got = {}

            -- the blocking client
            local c = H.client({ base_url = base_url(row), rate_limit = false,
                                 ca_file = row.ca and fr.ca_file or nil, max_retries = 2,
                                 timeout = 20, connect_timeout = 15, deadline = 40 })
            local a = booking()
            local v, err = c:create(a)
            got.client = v and "ok" or of_err(err)
            if err then assert.equal(1, err.attempts, tostring(err)) end    -- never retried
            assert.equal(sent, #sb:log(), "client")
            sb:reset()

            -- a batch
            local results, summary = c:run_batch({ { op = "create", code = booking().code,
                starts_at = a.starts_at, patient = a.patient, professional = a.professional } })
            got.batch = results[1].ok and "ok" or of_err(results[1].err)
            assert.equal(1, summary.ok + summary.failed)
            assert.equal(sent, #sb:log(), "batch")
            sb:reset()
            c:close()

            -- mediquo.ngx in the example gateway
            local env = { MEDIQUO_MAX_RETRIES = 2 }
            if row.ca then env.MEDIQUO_CA_FILE = fr.ca_file end
            local gw = NH.gateway({ base_url = base_url(row) }, { workers = 1, env = env })
            finally(function() gw:stop() end)
            local st, body = gw:post("/book", booking())
            if st == 201 then       -- mediquo.ngx.reply: 201 for a create
                got.ngx = "ok"
            else
                assert.is_table(body, tostring(body))
                assert.is_string(body.error, json.encode(body))
                got.ngx = of_err({ kind = body.error, message = body.message })
                assert.equal(1, body.attempts, json.encode(body))
                assert.equal(502, st, json.encode(body))
            end
            assert.equal(sent, #sb:log(), "ngx")

            assert.same({ client = want, batch = want, ngx = want }, got)
        end)
    end
end)
