-- Hostile servers: the client against a real nginx that misbehaves on
-- purpose (spec/hostile/): redirects, a body trickled one byte a second, a
-- 100 KB header line, a message that is not UTF-8, JSON nested 10,000 deep,
-- a 2xx of the wrong shape. Each ends in its documented error kind, in
-- bounded time, with no crash; the keys never reach a redirect's target.
local H = require "spec.helper"
local hostile = require "spec.hostile.server"

local srv

local A = { code = "H1", starts_at = "2030-05-20T10:00:00Z", patient = "pat-1",
            professional = "prof-demo-1" }

local function client(scenario, extra)
    return H.client({ base_url = srv.url .. "/" .. scenario, rate_limit = false,
                      timeout = 2, connect_timeout = 1, deadline = 6 }, extra)
end

-- one call per operation against a scenario
local function each_op(c)
    return {
        create = { c:create(A) },
        reschedule = { c:reschedule("H1", "2030-05-21T10:00:00Z") },
        cancel = { c:cancel("H1") },
    }
end

local function timed(f)
    local t0 = H.now()
    local v, err = f()
    return v, err, H.now() - t0
end

local function valid_utf8(s)
    if utf8 then return utf8.len(s) ~= nil end
    -- LuaJIT/5.1 have no utf8 library: RFC 3629's table of well-formed byte
    -- sequences (a different method from mediquo.validate's, on purpose)
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2
            or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4
        if not len then return false end
        local lo, hi = 0x80, 0xBF
        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
        elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
        for k = 1, len - 1 do
            local b = s:byte(i + k)
            if not b or b < (k == 1 and lo or 0x80) or b > (k == 1 and hi or 0xBF) then
                return false
            end
        end
        i = i + len
    end
    return true
end

describe("hostile server", function()
    setup(function() srv = hostile.start() end)
    teardown(function() if srv then srv:stop() end end)
    before_each(function() srv:reset() end)

    it("has a trap that records whatever reaches it (so an empty trap means something)", function()
        local status = H.http("POST", srv.trap_url .. "/v1/appointments", "{}",
                              { ["X-API-Key"] = "probe-key", ["X-Secret-Key"] = "probe-secret" })
        assert.equal(200, status)
        local got = srv:trap()
        assert.equal(1, #got)
        assert.matches("x-secret-key: probe-secret", table.concat(got[1].headers, "\n"), 1, true)
        srv:reset()
        assert.same({}, srv:trap())
    end)

    for _, status in ipairs{ 301, 302, 307, 308 } do
        it("does not follow a " .. status .. ": an error, and nothing reaches the target", function()
            local c = client("redirect-" .. status, { max_retries = 2, retry_post = true })
            for op, r in pairs(each_op(c)) do
                local v, err = r[1], r[2]
                assert.is_nil(v, op)
                assert.equal("bad_response", err.kind, op)
                assert.equal(status, err.status, op)
                assert.equal(1, err.attempts, op)       -- not retried either
                assert.is_false(err.retryable, op)
                assert.matches("^/redirect%-%d+/appointments", err.path)
            end
            assert.equal(3, c:stats().requests)
            assert.same({}, srv:trap())                 -- no request, no keys
            c:close()
        end)
    end

    it("ends a body trickled one byte a second at the timeout", function()
        -- a create is not retried after a timeout: one attempt, ~timeout
        local c = client("trickle", { timeout = 1.5, max_retries = 3 })
        local v, err, took = timed(function() return c:create(A) end)
        assert.is_nil(v)
        assert.equal("timeout", err.kind)
        assert.equal(1, err.attempts)
        assert.is_true(took >= 1.4 and took < 4, "took " .. took)
        -- a cancel is retried, but never past the deadline
        c:close()
        c = client("trickle", { timeout = 1, max_retries = 10, deadline = 2.5 })
        v, err, took = timed(function() return c:cancel("H1") end)
        assert.is_nil(v)
        assert.equal("timeout", err.kind)
        assert.is_true(err.attempts >= 2, "attempts " .. err.attempts)
        assert.is_true(took < 2.5 + 1.5, "took " .. took)
        c:close()
    end)

    it("survives a 100 KB header line: bad_response, not retried", function()
        local c = client("big-header", { max_retries = 2 })
        for op, r in pairs(each_op(c)) do
            local v, err = r[1], r[2]
            assert.is_nil(v, op)
            assert.equal("bad_response", err.kind, op .. ": " .. tostring(err))
            assert.matches("header", err.message, 1, true)
            assert.equal(1, err.attempts, op)
            assert.is_true(valid_utf8(err.message))
            assert.is_true(#tostring(err) < 1024)
        end
        -- the client is still usable afterwards, on another scenario's path
        c:close()
        local ok = client("shape-array"):cancel("H1")
        assert.is_true(ok)
    end)

    it("makes a message that is not valid UTF-8 valid, and keeps the field messages", function()
        local c = client("bad-utf8")
        local v, err = c:create(A)
        assert.is_nil(v)
        assert.equal("unprocessable", err.kind)
        assert.equal(422, err.status)
        assert.is_true(valid_utf8(err.message), err.message)
        assert.is_nil(err.message:find("[%z\1-\31\127]"))
        assert.matches("^bad .* byte .* end$", err.message)
        assert.is_table(err.fields)
        assert.is_table(err.fields.code)
        assert.is_true(valid_utf8(err.fields.code[1]))
        assert.matches("nope", err.fields.code[1], 1, true)
        assert.is_true(valid_utf8(tostring(err)))
        c:close()
    end)

    it("answers JSON nested 10,000 deep: bad_response for a 2xx, the status's kind otherwise", function()
        local c = client("deep-ok")
        for op, r in pairs(each_op(c)) do
            assert.is_nil(r[1], op)
            assert.equal("bad_response", r[2].kind, op)
            assert.equal(200, r[2].status, op)
        end
        c:close()
        c = client("deep-400")
        for op, r in pairs(each_op(c)) do
            assert.is_nil(r[1], op)
            assert.equal("bad_request", r[2].kind, op)
            assert.equal(400, r[2].status, op)
            assert.is_true(#r[2].message < 1024)
        end
        c:close()
    end)

    for _, shape in ipairs{ "data-empty", "array", "scalar", "null", "types", "no-url", "empty", "html" } do
        it("refuses a 200 of the wrong shape (" .. shape .. ") as bad_response", function()
            local c = client("shape-" .. shape, { max_retries = 2 })
            local v, err = c:create(A)
            assert.is_nil(v)
            assert.equal("bad_response", err.kind)
            assert.equal(200, err.status)
            assert.equal(1, err.attempts)
            assert.is_false(err.retryable)
            v, err = c:reschedule("H1", "2030-05-21T10:00:00Z")
            assert.is_nil(v)
            assert.equal("bad_response", err.kind)
            -- a cancel's success is any JSON object or array
            v, err = c:cancel("H1")
            if shape == "data-empty" or shape == "array" or shape == "types" or shape == "no-url" then
                assert.is_true(v)
            else
                assert.is_nil(v)
                assert.equal("bad_response", err.kind)
            end
            c:close()
        end)
    end

    it("logged no crash in nginx and never saw a request at the trap", function()
        assert.same({}, srv:trap())
        local log = srv:error_log()
        assert.is_nil(log:find("[alert]", 1, true), log)
        assert.is_nil(log:find("[emerg]", 1, true), log)
    end)
end)
