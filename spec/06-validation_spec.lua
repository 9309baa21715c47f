-- Bad input of any kind: refused with invalid_argument naming the field,
-- attempts == 0, and nothing reaches the sandbox.
local H = require "spec.helper"
local mediquo = require "mediquo"

local sb

local function client(extra)
    local o = { api_key = H.api_key, secret_key = H.secret_key, base_url = sb.base_url,
                rate_limit = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(mediquo.new(o))
end

local function good(over)
    local a = { code = "v1", starts_at = "2030-05-20T10:00:00Z", patient = "p",
                professional = "prof-demo-1" }
    for k, v in pairs(over) do
        if v == "<nil>" then a[k] = nil else a[k] = v end
    end
    return a
end

local long = ("x"):rep(256)

-- field, create fields override
local create_cases = {
    { "code", { code = "<nil>" } }, { "code", { code = "" } }, { "code", { code = 42 } },
    { "code", { code = long } }, { "code", { code = "a\nb" } }, { "code", { code = "a\0b" } },
    { "code", { code = "\255\254" } }, { "code", { code = {} } }, { "code", { code = "tab\there" } },
    { "code", { code = "." } }, { "code", { code = ".." } },
    { "patient", { patient = "<nil>" } }, { "patient", { patient = "" } },
    { "patient", { patient = true } }, { "patient", { patient = long } },
    { "professional", { professional = "<nil>" } }, { "professional", { professional = 1 } },
    { "professional", { professional = "\127" } },
    { "starts_at", { starts_at = "<nil>" } }, { "starts_at", { starts_at = "" } },
    { "starts_at", { starts_at = "2030-13-01T10:00:00Z" } },
    { "starts_at", { starts_at = "2031-02-29T10:00:00Z" } },
    { "starts_at", { starts_at = "2030-02-30T10:00:00Z" } },
    { "starts_at", { starts_at = "2030-04-31T10:00:00Z" } },
    { "starts_at", { starts_at = "2030-05-20T10:00:00" } },
    { "starts_at", { starts_at = "2030-05-20T24:00:00Z" } },
    { "starts_at", { starts_at = "2030-05-20T10:60:00Z" } },
    { "starts_at", { starts_at = "2030-05-20T10:00:00+25:00" } },
    { "starts_at", { starts_at = "2030-05-20 garbage" } },
    { "starts_at", { starts_at = "2030-05-20T10:00:00Zjunk" } },
    { "starts_at", { starts_at = "1900-02-29T10:00:00Z" } },
    { "starts_at", { starts_at = 0 / 0 } }, { "starts_at", { starts_at = math.huge } },
    { "starts_at", { starts_at = -1 } }, { "starts_at", { starts_at = 1e20 } },
    { "starts_at", { starts_at = {} } }, { "starts_at", { starts_at = ("9"):rep(100) } },
    { "duration", { duration = 0 } }, { "duration", { duration = -5 } },
    { "duration", { duration = 1.5 } }, { "duration", { duration = "900" } },
    { "duration", { duration = 0 / 0 } }, { "duration", { duration = 2 ^ 40 } },
    { "appointment", { startsAt = "2030-05-20T10:00:00Z" } },
}

describe("validation", function()
    setup(function() sb = H.sandbox() end)
    before_each(function() sb:reset() end)

    for i, case in ipairs(create_cases) do
        it(("create refuses bad %s (#%d)"):format(case[1], i), function()
            local c = client()
            local v, err = c:create(good(case[2]))
            assert.is_nil(v)
            assert.equal("invalid_argument", err.kind)
            assert.equal(0, err.attempts)
            assert.is_nil(err.status)
            assert.truthy(err.message:find(case[1], 1, true), err.message)
            assert.equal(0, c:stats().requests)
        end)
    end

    it("create refuses a non-table", function()
        local c = client()
        for _, a in ipairs{ "x", 1, true } do
            local v, err = c:create(a)
            assert.is_nil(v)
            assert.equal("invalid_argument", err.kind)
        end
        local v, err = c:create()
        assert.is_nil(v)
        assert.equal("invalid_argument", err.kind)
    end)

    it("reschedule and cancel refuse bad codes and dates", function()
        local c = client()
        for _, args in ipairs{ { nil, "2030-01-01T00:00:00Z" }, { "", "2030-01-01T00:00:00Z" },
                               { long, "2030-01-01T00:00:00Z" }, { "ok", "2030-02-30T00:00:00Z" },
                               { "ok", nil }, { "ok", "tomorrow" } } do
            local v, err = c:reschedule(args[1], args[2])
            assert.is_nil(v)
            assert.equal("invalid_argument", err.kind)
            assert.equal(0, err.attempts)
        end
        for _, code in ipairs{ false, "", "a\r\nX-Evil: 1", long, 12 } do
            local v, err = c:cancel(code)
            assert.is_nil(v)
            assert.equal("invalid_argument", err.kind)
            assert.matches("^code", err.message)
        end
    end)

    it("sent nothing for any of the above", function()
        local c = client()
        for _, case in ipairs(create_cases) do c:create(good(case[2])) end
        c:cancel("")
        c:reschedule("x", "nope")
        assert.same({}, sb:log())
    end)

    describe("mediquo.new refuses bad options, naming them", function()
        local base = function(over)
            local o = { api_key = "k", secret_key = "s", base_url = "http://127.0.0.1:1/v1",
                        rate_limit = false }
            for k, v in pairs(over) do
                if v == "<nil>" then o[k] = nil else o[k] = v end
            end
            return o
        end
        local cases = {
            { "api_key", { api_key = "<nil>" } }, { "api_key", { api_key = "" } },
            { "api_key", { api_key = "a\r\nb" } }, { "secret_key", { secret_key = 5 } },
            { "base_url", { base_url = "ftp://127.0.0.1/v1" } },
            { "base_url", { base_url = "http://example.com/v1" } },
            { "base_url", { base_url = "http://user:pw@127.0.0.1/v1" } },
            { "base_url", { base_url = "https://h/v1?x=1" } },
            { "base_url", { base_url = "not a url" } }, { "base_url", { base_url = 1 } },
            { "base_url", { base_url = "https://h:99999/v1" } },
            { "timeout", { timeout = 0 } }, { "timeout", { timeout = "3" } },
            { "connect_timeout", { connect_timeout = -1 } }, { "deadline", { deadline = 0 / 0 } },
            { "max_retries", { max_retries = -1 } }, { "max_retries", { max_retries = 1.5 } },
            { "retry_post", { retry_post = "yes" } }, { "insecure", { insecure = 1 } },
            { "ca_file", { ca_file = 42 } }, { "ca_file", { ca_file = "" } },
            { "user_agent", { user_agent = "a\nb" } },
            { "rate_limit", { rate_limit = true } },
            { "rate_limit", { rate_limit = { per_minute = 0 } } },
            { "rate_limit", { rate_limit = { burst = -1 } } },
            { "rate_limit", { rate_limit = { bogus = 1 } } },
            { "opts", { bogus = 1 } },
        }
        for i, case in ipairs(cases) do
            it(("%s (#%d)"):format(case[1], i), function()
                local c, err = mediquo.new(base(case[2]))
                assert.is_nil(c)
                assert.equal("invalid_argument", err.kind)
                assert.truthy(err.message:find(case[1], 1, true), err.message)
            end)
        end
        it("ca_file that cannot be read is the host's setup: kind config", function()
            local c, err = mediquo.new(base{ ca_file = "/nonexistent/ca.pem" })
            assert.is_nil(c)
            assert.equal("config", err.kind)
            assert.truthy(err.message:find("ca_file", 1, true), err.message)
        end)
        it("opts not a table", function()
            local c, err = mediquo.new("x")
            assert.is_nil(c)
            assert.equal("invalid_argument", err.kind)
        end)
        it("plain http to a non-loopback host only with insecure = true", function()
            assert.truthy(mediquo.new(base{ base_url = "http://example.com/v1", insecure = true }))
            assert.truthy(mediquo.new(base{ base_url = "http://localhost:8/v1" }))
            assert.truthy(mediquo.new(base{ base_url = "http://[::1]:8/v1" }))
            assert.truthy(mediquo.new(base{ base_url = "https://sdk.mediquo.com/v1" }))
        end)
        -- one table for each rule (issue 25): the rule is C's, Lua asks
        it("max_retries: the engine's rule, in the engine's words", function()
            local core = require "mediquo.core"
            for _, bad in ipairs{ -1, 1.5, 101, "3", 0 / 0, math.huge } do
                local ok, why = core.check_max_retries(bad)
                assert.is_false(ok)
                local _, err = mediquo.new(base{ max_retries = bad })
                assert.equal("max_retries: " .. why, err.message)
            end
            assert.truthy(mediquo.new(base{ max_retries = 100 }))
            assert.truthy(mediquo.new(base{ max_retries = 0 }))
        end)
        it("base_url: one parser (curl_url), the same for the engine", function()
            local v = require "mediquo.validate"
            for _, bad in ipairs{ "http:///v1", "https://[zz]/v1", "https://h_x/v1", "https://h:0/v1",
                                  "https://@h/v1", "://h/v1", "https://h/v1#f" } do
                local u, err = v.base_url(bad)
                assert.is_nil(u, bad)
                assert.equal("invalid_argument", err.kind)
                assert.equal("base_url", err.field)
            end
            local u = assert(v.base_url("HTTPS://Sdk.Example.com:8443/v1//"))
            assert.same({ scheme = "https", host = "sdk.example.com", port = 8443, path = "/v1",
                          url = "https://sdk.example.com:8443/v1" }, u)
            u = assert(v.base_url("http://127.0.0.1:9"))
            assert.same({ scheme = "http", host = "127.0.0.1", port = 9, path = "",
                          url = "http://127.0.0.1:9" }, u)
        end)
        it("the fields each operation takes: one table, C's (core.OP_FIELDS)", function()
            local core = require "mediquo.core"
            assert.same({ create = { "code", "starts_at", "patient", "professional", "duration" },
                          reschedule = { "code", "starts_at" }, cancel = { "code" } }, core.OP_FIELDS)
            assert.same({ "op", "code", "starts_at", "patient", "professional", "duration" },
                        require("mediquo.cli.input").COLUMNS)
        end)
    end)
end)
