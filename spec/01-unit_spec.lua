-- Unit specs that need no server: the C helpers, validation (nothing is
-- ever sent: the base URL points at a closed port), error objects, the
-- retry policy, lifetimes. Runs on Lua 5.1, 5.3, 5.4 and LuaJIT.
local core = require "mediquo.core"
local mediquo = require "mediquo"
local errors = require "mediquo.errors"

local function client(extra)
    local o = { api_key = "k", secret_key = "s", base_url = "http://127.0.0.1:9/v1",
                rate_limit = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(mediquo.new(o))
end

describe("core", function()
    it("has a version matching the Lua module and the rockspec", function()
        assert.equal(mediquo._VERSION, core._VERSION)
        local f = assert(io.open("rockspec/mediquo-scm-1.rockspec"))
        local spec = f:read("*a")
        f:close()
        assert.truthy(spec:find('version = "scm%-1"'))
        assert.matches("^%d+%.%d+%.%d+$", mediquo._VERSION)
    end)

    it("normalises ISO 8601 to UTC", function()
        -- core.check_starts_at: true, "YYYY-MM-DDTHH:MM:SSZ" | false, why
        local function norm(v)
            local ok, x = core.check_starts_at(v)
            if ok then return x end
            return nil, x
        end
        local cases = {
            { "2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z" },
            { "2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z" },
            { "2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00Z" },
            { "2030-05-20T10:00:00.123456Z", "2030-05-20T10:00:00Z" },
            { "2030-05-20T10:00:00+0530", "2030-05-20T04:30:00Z" },
        }
        for _, c in ipairs(cases) do assert.equal(c[2], (norm(c[1]))) end
        for _, bad in ipairs{ "2023-02-29T00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T00:00:00",
                              "2030-01-01", "", "2030-01-01T00:00:00Z ", "2100-02-29T00:00:00Z" } do
            local v, why = norm(bad)
            assert.is_nil(v)
            assert.equal("string", type(why))
        end
        assert.equal("1970-01-01T00:00:00Z", (norm(0)))
        assert.equal("2030-03-17T17:46:40Z", (norm(1900000000.99)))
        assert.is_nil((norm(-1)))
        assert.is_nil((norm(0 / 0)))
    end)

    it("percent-encodes all but RFC 3986 unreserved characters", function()
        assert.equal("..%2Fx", core.urlenc("../x"))
        assert.equal("a%2Fb%3Fc%23d", core.urlenc("a/b?c#d"))
        assert.equal("a%20b%25", core.urlenc("a b%"))
        assert.equal("%C3%B1", core.urlenc("\195\177"))
        assert.equal("AZaz09-._~", core.urlenc("AZaz09-._~"))
    end)

    it("classifies text bytes in one pass (JSON-verbatim, escape, control, bad UTF-8)", function()
        local cases = {
            { "", 0 }, { "abc-123_~.", 0 }, { " !#$%&'()*+,:;<=>?@[]^`{|}", 0 },
            { 'a"b', 1 }, { "a/b", 1 }, { "a\\b", 1 },
            { "\195\177", 1 }, { "\226\130\172", 1 }, { "\240\159\152\128", 1 },
            { "\244\143\191\191", 1 },                   -- U+10FFFF
            { "a\0b", 2 }, { "\1", 2 }, { "\31", 2 }, { "\127", 2 }, { "ok\n", 2 },
            { "\128", 3 }, { "\255", 3 }, { "\192\128", 3 }, { "\193\191", 3 }, -- overlong
            { "\224\128\128", 3 }, { "\240\128\128\128", 3 },           -- overlong
            { "\237\160\128", 3 },                        -- surrogate U+D800
            { "\244\144\128\128", 3 },                   -- above U+10FFFF
            { "\195", 3 }, { "\226\130", 3 }, { "a\226\40\161", 3 },   -- truncated, bad continuation
        }
        for _, c in ipairs(cases) do
            assert.equal(c[2], core.textclass(c[1]), ("%q"):format(c[1]))
        end
    end)

    it("writes the create body in C as JSON that decodes to exactly the fields", function()
        local cjson = require "cjson"
        local pieces = { "a", "Z9", "-_.~", '"', "\\", "/", "\195\177", "\226\130\172",
                         "\240\159\152\128", " ", "'", "<>&", "%2F", "{}[]:," }
        local seed = 12345
        local function rnd(n)      -- a small LCG: the same cases on every Lua
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed % n + 1
        end
        local function text()
            local t = {}
            for k = 1, rnd(6) do t[k] = pieces[rnd(#pieces)] end
            return table.concat(t)
        end
        local n, escaped = 0, 0
        for _ = 1, 2000 do
            local a = { code = text(), patient = text(), professional = text(),
                        starts_at = "2030-05-20T12:00:00+02:00",
                        duration = rnd(2) == 1 and rnd(100000) or nil }
            if a.code ~= "." and a.code ~= ".." then
                local body, starts_at = core.create_request(a)
                assert.truthy(body, starts_at)
                assert.equal("2030-05-20T10:00:00Z", starts_at)
                assert.same({
                    appointment = { code = a.code, starts_at = starts_at, duration = a.duration },
                    patient = { code = a.patient },
                    professional = { hash = a.professional },
                }, cjson.decode(body))
                -- cjson's own escaping of "/" ("\/"), the same for the server
                if body:find("\\", 1, true) then escaped = escaped + 1 end
                n = n + 1
            end
        end
        assert.truthy(n > 1900 and escaped > 500, n .. " bodies, " .. escaped .. " escaped")
        -- the usual case, byte for byte
        assert.equal('{"appointment":{"code":"A1","starts_at":"2030-05-20T10:00:00Z","duration":900},'
            .. '"patient":{"code":"P1"},"professional":{"hash":"prof-demo-1"}}',
            (core.create_request{ code = "A1", starts_at = "2030-05-20T10:00:00Z",
                                  patient = "P1", professional = "prof-demo-1", duration = 900 }))
    end)

    it("refuses a bad create with the field and the reason, not the value", function()
        local cases = {
            { "5", "appointment", "must be a table, got number" },
            { { code = "x", starts_at = 1, patient = "p", professional = "h", extra = "SECRET" },
              "appointment", "unknown field 'extra'" },
            { { code = "x", starts_at = 1, patient = "p", professional = "h", [1] = true },
              "appointment", "unknown field of type number" },
            { { code = "SECRET\n", starts_at = 1, patient = "p", professional = "h" },
              "code", "must not contain control characters" },
            { { code = "..", starts_at = 1, patient = "p", professional = "h" }, "code", "dot-segment" },
            { { code = "x", starts_at = "SECRET", patient = "p", professional = "h" },
              "starts_at", "ISO 8601" },
            { { code = "x", starts_at = 1, patient = ("p"):rep(256), professional = "h" },
              "patient", "must be at most 255 bytes" },
            { { code = "x", starts_at = 1, patient = "p" }, "professional", "must be a string, got nil" },
            { { code = "x", starts_at = 1, patient = "p", professional = "h", duration = 1.5 },
              "duration", "integer number of seconds" },
        }
        for _, c in ipairs(cases) do
            local a = c[1] == "5" and 5 or c[1]
            local body, field, why = core.create_request(a)
            assert.is_false(body)
            assert.equal(c[2], field)
            assert.truthy(why:find(c[3], 1, true), why)
            assert.falsy(why:find("SECRET", 1, true), why)
        end
    end)

    it("classifies per method as API.md says", function()
        local function c(m, o, s, rp) return { core.classify(m, o, s, rp) } end
        -- never sent: retryable everywhere
        assert.same({ "network", true, false }, c("POST", "connect"))
        assert.same({ "timeout", true, false }, c("POST", "connect_timeout"))
        -- 429 / 503: refused before processing
        assert.same({ "rate_limited", true, false }, c("POST", "ok", 429))
        assert.same({ "server_error", true, false }, c("POST", "ok", 503))
        -- may have been processed: idempotent methods only, or retry_post
        for _, s in ipairs{ 500, 502, 504 } do
            assert.same({ "server_error", false, true }, c("POST", "ok", s))
            assert.same({ "server_error", true, true }, c("POST", "ok", s, true))
            assert.same({ "server_error", true, true }, c("PUT", "ok", s))
            assert.same({ "server_error", true, true }, c("DELETE", "ok", s))
        end
        assert.same({ "timeout", false, true }, c("POST", "timeout"))
        assert.same({ "timeout", true, true }, c("PUT", "timeout"))
        assert.same({ "network", true, true }, c("DELETE", "reset"))
        assert.same({ "network", false, false }, c("PUT", "tls"))
        assert.same({ "bad_response", false, false }, c("PUT", "too_big"))
        for s, k in pairs{ [400] = "bad_request", [401] = "unauthorized", [403] = "forbidden",
                           [404] = "not_found", [422] = "unprocessable" } do
            assert.same({ k, false, false }, c("PUT", "ok", s))
        end
        assert.same({ "ok", false, false }, c("POST", "ok", 201))
    end)

    it("backs off with full jitter, base 0.25 s, cap 8 s", function()
        assert.equal(0, core.backoff(1, 0))
        assert.near(0.25, core.backoff(1, 0.999999), 1e-4)
        assert.near(0.5, core.backoff(2, 0.999999), 1e-4)
        assert.near(8, core.backoff(10, 0.999999), 1e-4)
        assert.near(8, core.backoff(1000, 0.999999), 1e-4)
        assert.near(1, core.backoff(4, 0.5), 1e-9)   -- half of 0.25 * 2^3
    end)
end)

describe("errors", function()
    it("tostring gives one readable line", function()
        local e = errors.new{ kind = "not_found", status = 404, message = "Appointment not found",
                              method = "DELETE", path = "/v1/appointments/A%2F1", attempts = 1 }
        local s = tostring(e)
        assert.equal("mediquo: not_found (HTTP 404) DELETE /v1/appointments/A%2F1: Appointment not found", s)
        assert.is_false(s:find("\n") ~= nil)
        assert.is_false(e.retryable)
        assert.is_true(errors.new{ kind = "timeout" }.retryable)
        assert.has_error(function() errors.new{ kind = "bogus" } end)
    end)
end)

describe("client without a server", function()
    it("refuses bad input before sending anything", function()
        local c = client()
        local v, err = c:create{ code = "a", starts_at = "2030-02-30T00:00:00Z", patient = "p",
                                 professional = "h" }
        assert.is_nil(v)
        assert.equal("invalid_argument", err.kind)
        assert.equal(0, err.attempts)
        assert.matches("^starts_at", err.message)
        assert.equal(0, c:stats().requests)
    end)

    it("reports a refused connection as network, retryable", function()
        local c = client{ max_retries = 0 }
        local v, err = c:cancel("x")
        assert.is_nil(v)
        assert.equal("network", err.kind)
        assert.is_true(err.retryable)
        assert.equal(1, err.attempts)
        assert.equal(1, c:stats().requests)
    end)

    it("never shows its keys", function()
        local c = client{ api_key = "AK-CANARY-1", secret_key = "SK-CANARY-2", max_retries = 0 }
        local _, err = c:cancel("x")
        local seen = { tostring(c), tostring(err), tostring(c._core) }
        for _, v in pairs(err) do seen[#seen + 1] = tostring(v) end
        for k, v in pairs(c:stats()) do seen[#seen + 1] = tostring(k) .. tostring(v) end
        for _, s in ipairs(seen) do
            assert.is_nil(s:find("CANARY", 1, true), s)
        end
    end)

    it("close() is idempotent, and __gc collects dropped clients", function()
        local weak = setmetatable({}, { __mode = "v" })
        do
            local c = client()
            c:close()
            c:close()
            weak[1] = c
            weak[2] = client()
        end
        collectgarbage()
        collectgarbage()
        assert.is_nil(weak[1])
        assert.is_nil(weak[2])
    end)

    it("a method on a closed client raises", function()
        local c = client()
        c:close()
        assert.has_error(function() c:cancel("x") end)
    end)
end)
