-- spec/44-ngx_reply_spec.lua: what a gateway's caller and operator get from
-- mediquo.ngx.reply, mediquo.ngx.read and mediquo.ngx.status, in real nginx
-- (examples/nginx.conf, workers as nobody) against the sandbox: the status
-- that says whose fault it is, the message, the field, the budget's headers.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local json = H.json

local USER = "nobody nogroup"

local booking, fresh = NH.booking, NH.fresh

local function header(h, name)
    for k, v in pairs(h or {}) do
        if k:lower() == name:lower() then return v end
    end
end

describe("mediquo.ngx.reply in nginx (workers as nobody)", function()
    local sb, gw

    setup(function()
        sb = H.sandbox{}
        gw = NH.gateway(sb, { workers = 2, user = USER, env = { MEDIQUO_RL_PER_MINUTE = 100 } })
    end)
    teardown(function()
        if gw then gw:stop() end
    end)
    before_each(function() sb:reset() end)

    it("answers a create 201 {code,url} with X-RateLimit-Limit and -Remaining", function()
        local code = fresh("c")
        local st, body, h = gw:post("/book", booking(code))
        assert.are.equal(201, st, json.encode(body))
        assert.are.equal(code, body.code)
        assert.matches("^http://127%.0%.0%.1:%d+/call/%x+$", body.url)
        assert.are.equal("100", header(h, "X-RateLimit-Limit"))
        local rem = tonumber(header(h, "X-RateLimit-Remaining"))
        assert.is_true(rem ~= nil and rem < 100 and rem >= 0, tostring(rem))
        assert.matches("application/json", header(h, "Content-Type"))
        -- reschedule 200 {code,url}; cancel 200 {"ok":true}
        local st2, moved = gw:post("/reschedule", { code = code, starts_at = "2030-05-21T09:30:00Z" })
        assert.are.equal(200, st2, json.encode(moved))
        assert.are.equal(code, moved.code)
        local st3, res, h3 = gw:post("/cancel", { code = code })
        assert.are.equal(200, st3)
        assert.are.same({ ok = true }, res)
        assert.are.equal("100", header(h3, "X-RateLimit-Limit"))
    end)

    it("answers a code that already exists 409 with the API's message", function()
        local code = fresh("dup")
        assert.are.equal(201, (gw:post("/book", booking(code))))
        local st, body, h = gw:post("/book", booking(code))
        assert.are.equal(409, st, json.encode(body))
        assert.are.equal("bad_request", body.error)
        assert.matches("already exists", body.message)
        assert.are.equal("none", body.effect)
        assert.truthy(header(h, "X-RateLimit-Remaining"))
    end)

    it("answers an unknown professional 4xx with the API's message", function()
        local st, body = gw:post("/book", booking(fresh("prof"), { professional = "no-such-prof" }))
        assert.are.equal(400, st, json.encode(body))
        assert.are.equal("bad_request", body.error)
        assert.matches("Professional not found", body.message)
        -- and an unknown code (reschedule / cancel): the API's 404
        st, body = gw:post("/cancel", { code = fresh("none") })
        assert.are.equal(404, st)
        assert.are.equal("not_found", body.error)
        assert.matches("not found", body.message)
    end)

    it("answers a bad date 400 naming starts_at, sending nothing", function()
        local st, body = gw:post("/book", booking("bad", { starts_at = "2030-02-30T10:00:00Z" }))
        assert.are.equal(400, st)
        assert.are.equal("invalid_argument", body.error)
        assert.are.equal("starts_at", body.field)
        assert.matches("starts_at", body.message)
        assert.are.equal("none", body.effect)
        assert.are.same({}, sb:api_log())
    end)

    it("reads a JSON null as a missing field, form fields and query args alike", function()
        local st, body = gw:post("/book", '{"code":"n1","starts_at":null,"patient":"P1","professional":"prof-demo-1"}')
        assert.are.equal(400, st)
        assert.are.equal("starts_at", body.field)
        assert.falsy(body.message:find("userdata", 1, true), body.message)
        -- form fields over query arguments
        local code = fresh("form")
        local raw, h
        st, raw, h = H.http("POST", gw.url .. "/book?code=" .. code .. "&patient=P1",
                            "starts_at=2030-05-20T10%3A00%3A00Z&professional=prof-demo-1",
                            { ["Content-Type"] = "application/x-www-form-urlencoded" })
        assert.are.equal(201, st, raw)
        assert.are.equal(code, json.decode(raw).code)
        assert.truthy(header(h, "X-RateLimit-Limit"))
        -- a JSON body over query arguments: its fields win, theirs fill in
        local jcode = fresh("json")
        st, raw = H.http("POST", gw.url .. "/book?code=not-this-one&patient=P1",
                         '{"code":"' .. jcode .. '","starts_at":"2030-05-20T10:00:00Z",'
                         .. '"professional":"prof-demo-1","patient":null}',
                         { ["Content-Type"] = "application/json" })
        assert.are.equal(201, st, raw)
        assert.are.equal(jcode, json.decode(raw).code)
        -- a JSON body with a field the C reader leaves to cjson (an object)
        st, body = gw:post("/book", '{"code":{"a":1},"starts_at":"2030-05-20T10:00:00Z",'
                                    .. '"patient":"P1","professional":"prof-demo-1"}')
        assert.are.equal(400, st)
        assert.are.equal("code", body.field)
        -- not JSON, not a form: the body is named
        st, body = gw:post("/book", "not json")
        assert.are.equal(400, st)
        assert.are.equal("body", body.field)
    end)

    it("answers a GET 405 with Allow", function()
        local st, raw, h = gw:get("/book")
        assert.are.equal(405, st, raw)
        assert.are.equal("POST", header(h, "Allow"))
        assert.are.equal("invalid_argument", json.decode(raw).error)
        st, raw, h = gw:get("/cancel")
        assert.are.equal(405, st, raw)
        assert.are.equal("POST, DELETE", header(h, "Allow"))
    end)

    it("answers status() as JSON for operators: the budget, the rule, counters, no secret", function()
        gw:post("/book", booking(fresh("st")))
        local st, raw = gw:get("/status")
        assert.are.equal(200, st, raw)
        local t = json.decode(raw)
        assert.are.equal("local", t.limiter.backend)
        assert.is_false(t.limiter.degraded)
        assert.are.equal(100, t.limiter.per_minute)
        assert.are.equal(100, t.limiter.rule.per_minute)
        assert.is_number(t.limiter.used)
        assert.is_number(t.limiter.available)
        assert.is_number(t.limiter.paused_until)
        assert.is_number(t.limiter.hosts)
        assert.is_table(t.calls.worker)
        assert.is_table(t.calls.host.requests.create)
        assert.is_true(t.checks.ok)
        assert.falsy(raw:find(H.api_key, 1, true))
        assert.falsy(raw:find(H.secret_key, 1, true))
    end)
end)

describe("mediquo.ngx.reply for a spent budget and a host fault (workers as nobody)", function()
    local sb
    setup(function() sb = H.sandbox{} end)
    before_each(function() sb:reset() end)

    it("answers a spent budget 429 with Retry-After and X-RateLimit-Remaining: 0", function()
        local gw = NH.gateway(sb, { workers = 1, user = USER,
                                    env = { MEDIQUO_RL_PER_MINUTE = 2, MEDIQUO_RL_PERIOD = 60 } })
        finally(function() gw:stop() end)
        assert.are.equal(201, (gw:post("/book", booking(fresh("b")))))
        assert.are.equal(201, (gw:post("/book", booking(fresh("b")))))
        local t0 = H.now()
        local st, body, h = gw:post("/book", booking(fresh("b")))
        assert.are.equal(429, st, json.encode(body))
        assert.is_true(H.now() - t0 < 5, "a spent budget made the caller wait")
        assert.are.equal("rate_limited", body.error)
        local ra = tonumber(header(h, "Retry-After"))
        -- at most the period and its transit guard (0.1 s), rounded up
        assert.is_true(ra ~= nil and ra >= 1 and ra <= 61, tostring(header(h, "Retry-After")))
        assert.are.equal("2", header(h, "X-RateLimit-Limit"))
        assert.are.equal("0", header(h, "X-RateLimit-Remaining"))
    end)

    it("answers a config fault 500 with no path and no detail; error.log has them", function()
        -- a limiter dir the workers (nobody) may not use
        local dir = NH.tmpdir("ngx-cfg")
        H.run("chmod 700 " .. H.shell_quote(dir))
        local gw = NH.gateway(sb, { workers = 1, user = USER, env = { MEDIQUO_RL_DIR = dir } })
        finally(function() gw:stop(); H.run("rm -rf " .. H.shell_quote(dir)) end)
        local st, raw = H.http("POST", gw.url .. "/book", json.encode(booking(fresh("cfg"))),
                               { ["Content-Type"] = "application/json" })
        assert.are.equal(500, st, raw)
        local body = json.decode(raw)
        assert.are.equal("config", body.error)
        assert.falsy(raw:find("/", 1, true), raw)             -- not even an escaped path
        assert.falsy(raw:find("Permission", 1, true), raw)
        -- a second call: the same fault, not logged again within the minute
        assert.are.equal(500, (H.http("POST", gw.url .. "/book", json.encode(booking(fresh("cfg"))),
                                      { ["Content-Type"] = "application/json" })))
        local log = gw:error_log()
        assert.truthy(log:find(dir, 1, true), log)
        assert.falsy(log:find("rate_limit: rate_limit:", 1, true), log)
        assert.falsy(log:find(H.secret_key, 1, true), log)
        assert.falsy(log:find(H.api_key, 1, true), log)
        -- the calls' cause in error.log exactly once: the driver logged it
        -- and marked the error (mediquo.ngx_log.mark), reply did not again
        -- (the start-up check's own line, before any call, aside)
        local n = 0
        for line in log:gmatch("[^\n]+") do
            if line:find(dir, 1, true) and not line:find("start-up check", 1, true) then n = n + 1 end
        end
        assert.are.equal(1, n, log)
        assert.are.same({}, sb:api_log())
    end)
end)
