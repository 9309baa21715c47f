-- The public client against the sandbox: every operation, every status
-- mapped to its error kind, URL renewal, reserved characters in codes,
-- headers sent, stats, lifetime.
local H = require "spec.helper"
local mediquo = require "mediquo"

local sb
local n = 0

local function uniq(prefix)
    n = n + 1
    return ("%s-%d-%d"):format(prefix or "c", os.time(), n)
end

local function new_client(extra)
    return H.client({ base_url = sb.base_url, rate_limit = false, timeout = 5, deadline = 10 },
                    extra)
end

local function appt(code, extra)
    local a = { code = code, starts_at = "2030-05-20T10:00:00Z", patient = "pat-1",
                professional = "prof-demo-1" }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
end

local function call_status(url)
    return (H.http("GET", url))
end

describe("client", function()
    setup(function() sb = H.sandbox() end)
    before_each(function() sb:reset() end)

    it("creates, reschedules (renewing the URL) and cancels", function()
        local c = new_client()
        local code = uniq("flow")
        local a, err = c:create(appt(code, { duration = 1200 }))
        assert.is_nil(err)
        assert.equal(code, a.code)
        assert.matches("^http://127%.0%.0%.1:%d+/call/", a.url)
        assert.equal(200, call_status(a.url))

        local st = sb:state()[code]
        assert.equal("2030-05-20T10:00:00Z", st.starts_at)
        assert.equal(1200, st.duration)
        assert.equal("pat-1", st.patient)
        assert.equal("prof-demo-1", st.professional)

        local r
        r, err = c:reschedule(code, "2030-05-21T09:30:00+02:00")
        assert.is_nil(err)
        assert.equal(code, r.code)
        assert.not_equal(a.url, r.url)
        assert.equal(410, call_status(a.url))
        assert.equal(200, call_status(r.url))
        assert.equal("2030-05-21T07:30:00Z", sb:state()[code].starts_at)

        local ok
        ok, err = c:cancel(code)
        assert.is_nil(err)
        assert.is_true(ok)
        assert.equal(410, call_status(r.url))
        assert.equal("cancelled", sb:state()[code].status)
        c:close()
    end)

    it("sends epoch seconds and offsets as UTC, fractions dropped", function()
        local c = new_client()
        local c1, c2 = uniq("ep"), uniq("off")
        assert.truthy(c:create(appt(c1, { starts_at = 1900000000.9 })))
        assert.truthy(c:create(appt(c2, { starts_at = "2024-03-01T00:30:00.999+01:00" })))
        local s = sb:state()
        assert.equal("2030-03-17T17:46:40Z", s[c1].starts_at)
        assert.equal("2024-02-29T23:30:00Z", s[c2].starts_at)
    end)

    it("sends the documented headers", function()
        local c = new_client{ user_agent = "my-gateway/2" }
        local code = uniq("hdr")
        assert.truthy(c:create(appt(code)))
        assert.truthy(c:cancel(code))
        local log = sb:log()
        assert.equal(2, #log)
        for _, e in ipairs(log) do
            assert.equal("sandbox-key", e.api_key)
            assert.is_true(e.secret_ok)
            assert.equal("application/json", e.accept)
            assert.matches("^lua%-mediquo/" .. mediquo._VERSION:gsub("%.", "%%."), e.user_agent)
            assert.matches("my%-gateway/2$", e.user_agent)
        end
        assert.equal("application/json", log[1].content_type)
        assert.equal("POST", log[1].method)
        assert.equal("DELETE", log[2].method)
        assert.is_nil(log[2].content_type)
    end)

    describe("maps each answer to its kind, with status and the server's message", function()
        local cases = {
            { "unknown professional", 400, "bad_request", "Professional not found",
              function(c) return c:create(appt(uniq("p"), { professional = "nobody" })) end },
            { "duplicate code", 400, "bad_request", "Appointment already exists",
              function(c)
                  local code = uniq("dup")
                  assert(c:create(appt(code)))
                  return c:create(appt(code))
              end },
            { "unknown code (PUT)", 404, "not_found", "Appointment not found",
              function(c) return c:reschedule(uniq("none"), "2030-01-01T00:00:00Z") end },
            { "unknown code (DELETE)", 404, "not_found", "Appointment not found",
              function(c) return c:cancel(uniq("none")) end },
            { "reschedule of a cancelled one", 400, "bad_request", "Appointment already cancelled",
              function(c)
                  local code = uniq("cx")
                  assert(c:create(appt(code)))
                  assert(c:cancel(code))
                  return c:reschedule(code, "2030-01-01T00:00:00Z")
              end },
            { "cancel of a cancelled one", 400, "bad_request", "Appointment already cancelled",
              function(c)
                  local code = uniq("cc")
                  assert(c:create(appt(code)))
                  assert(c:cancel(code))
                  return c:cancel(code)
              end },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local c = new_client()
                local v, err = case[5](c)
                assert.is_nil(v)
                assert.equal(case[3], err.kind)
                assert.equal(case[2], err.status)
                assert.equal(case[4], err.message)
                assert.equal(1, err.attempts)
                assert.is_false(err.retryable)
                assert.matches(case[3], tostring(err))
            end)
        end

        it("wrong key pair: forbidden (403)", function()
            local c = new_client{ secret_key = "not-the-secret" }
            local v, err = c:create(appt(uniq("k")))
            assert.is_nil(v)
            assert.equal("forbidden", err.kind)
            assert.equal(403, err.status)
            assert.equal("POST", err.method)
            assert.equal("/v1/appointments", err.path)
        end)

        local injected = {
            { 401, "unauthorized", false }, { 403, "forbidden", false },
            { 404, "not_found", false }, { 422, "unprocessable", false },
            { 400, "bad_request", false }, { 500, "server_error", true },
            { 502, "server_error", true }, { 503, "server_error", true },
            { 504, "server_error", true },
        }
        for _, case in ipairs(injected) do
            it(("injected %d: %s"):format(case[1], case[2]), function()
                local c = new_client{ max_retries = 0 }
                sb:faults{ next = 1, mode = "status", status = case[1] }
                local v, err = c:cancel(uniq("inj"))
                assert.is_nil(v)
                assert.equal(case[2], err.kind)
                assert.equal(case[1], err.status)
                assert.equal("string", type(err.message))
                assert.equal(case[3], err.retryable)
                assert.equal(1, err.attempts)
                assert.equal(1, #sb:log())
            end)
        end

        it("429: rate_limited with retry_after", function()
            local c = new_client{ max_retries = 0 }
            sb:faults{ next = 1, mode = "ratelimit", seconds = 7 }
            local v, err = c:cancel(uniq("rl"))
            assert.is_nil(v)
            assert.equal("rate_limited", err.kind)
            assert.equal(429, err.status)
            assert.equal(7, err.retry_after)
            assert.is_true(err.retryable)
        end)

        it("connection refused: network, nothing sent", function()
            local c = new_client{ base_url = "http://127.0.0.1:9/v1", max_retries = 0 }
            local v, err = c:cancel("x")
            assert.is_nil(v)
            assert.equal("network", err.kind)
            assert.is_nil(err.status)
            assert.equal(1, err.attempts)
        end)

        it("a 2xx that is not the documented JSON: bad_response", function()
            local c = new_client()
            sb:faults{ next = 1, mode = "garbage" }
            local v, err = c:create(appt(uniq("g")))
            assert.is_nil(v)
            assert.equal("bad_response", err.kind)
            assert.equal(200, err.status)
        end)
    end)

    describe("codes with reserved characters reach exactly their own appointment", function()
        local codes = { "../x", "a/b?c#d", "with space", "100%", "%2F", "a%2Fb",
                        "ñandú-ü", "x+y=z&w", "~tilde_.-", "...", ".x", "x/..", "../.." }
        for _, code in ipairs(codes) do
            it(("%q"):format(code), function()
                local c = new_client()
                -- a decoy that a wrongly encoded path could hit instead
                assert.truthy(c:create(appt("x")))
                local a, err = c:create(appt(code))
                assert.is_nil(err)
                assert.equal(code, a.code)
                local r
                r, err = c:reschedule(code, "2031-01-01T00:00:00Z")
                assert.is_nil(err)
                assert.equal(code, r.code)
                assert.is_true((c:cancel(code)))
                local s = sb:state()
                assert.equal("cancelled", s[code].status)
                assert.equal("2031-01-01T00:00:00Z", s[code].starts_at)
                assert.equal("active", s.x.status)
                assert.equal("2030-05-20T10:00:00Z", s.x.starts_at)
                local n_entries = 0
                for _ in pairs(s) do n_entries = n_entries + 1 end
                assert.equal(2, n_entries)
                for _, e in ipairs(sb:log()) do
                    local p = e.path:match("^/v1/appointments/(.*)$")
                    if p then assert.matches("^[%w%-%._~%%]+$", p) end
                end
            end)
        end
    end)

    it("counts in stats", function()
        local c = new_client()
        local code = uniq("st")
        assert.truthy(c:create(appt(code)))
        assert.is_nil((c:cancel(uniq("missing"))))
        assert.is_nil((c:create{ code = "" }))
        local s = c:stats()
        assert.equal(2, s.requests)
        assert.equal(1, s.ok)
        assert.equal(0, s.retries)
        assert.equal(1, s.by_kind.not_found)
        assert.equal(1, s.by_kind.invalid_argument)
        assert.equal(0, s.limiter_waits)
        assert.equal(0, s.limiter_wait_seconds)
    end)

    describe("lifetime", function()
        it("a closed client and a dropped one are collected", function()
            local weak = setmetatable({}, { __mode = "v" })
            do
                local c1 = new_client()
                assert.truthy(c1:create(appt(uniq("gc"))))
                c1:close()
                weak[1] = c1
                weak[2] = new_client()
                weak[3] = weak[2]._core
            end
            collectgarbage()
            collectgarbage()
            assert.is_nil(weak[1])
            assert.is_nil(weak[2])
            assert.is_nil(weak[3])
        end)

        it("close() twice is harmless; a call on a closed client raises", function()
            local c = new_client()
            c:close()
            c:close()
            assert.has_error(function() c:cancel("x") end)
            assert.matches("closed", tostring(c))
        end)

        it("reuses one connection across calls", function()
            local c = new_client()
            for i = 1, 20 do assert.truthy(c:create(appt(uniq("ka" .. i)))) end
            local log = sb:log()
            assert.equal(20, #log)
            local conns = {}
            for _, e in ipairs(log) do conns[e.connection or "?"] = true end
            local k = 0
            for _ in pairs(conns) do k = k + 1 end
            assert.equal(1, k)
        end)
    end)
end)
