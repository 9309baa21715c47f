-- The engine alone (src/engine.c through core.engine, the step API the
-- nginx driver uses), driven from Lua with a fake clock: no socket, no
-- sleep. Deadline cuts, backoff, the limiter's part, reconciliation within
-- one call, effect (issue 16 item 8), messages, and the secrets scrub
-- after JSON unescaping (issue 16 item 2).

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local json = require "cjson.safe"

local START = "2030-05-20T10:00:00Z"
local API_KEY, SECRET = "key-AbCd/1234", "s3cr3t/AbCd+EfGh=="
local BASE = "http://127.0.0.1:9/v1"

local function engine(o)
    local opts = { base_url = BASE, timeout = 3, connect_timeout = 1, deadline = 5,
                   max_retries = 2, api_key = API_KEY, secret_key = SECRET }
    for k, v in pairs(o or {}) do opts[k] = v end
    return assert(core.engine(opts))
end

local function appt(code)
    return { code = code or "A/1", starts_at = START, patient = "p1", professional = "prof-1" }
end

local function answer(code, url)
    return json.encode{ data = { appointment = { code = code, url = url } } }
end

local function msg(s) return json.encode{ message = s } end

describe("engine", function()
    it("a create: send, then the appointment; nothing allocated for a caller to free", function()
        local e = engine()
        local call, action, step = e:start("create", appt("A1"), nil, 100)
        assert.equal("send", action)
        assert.is_nil(step)                 -- no table for a send (its deadline is in the timeouts)
        local method, path, body, timeout, ctimeout = call:request()
        assert.equal("POST", method)
        assert.equal("/v1/appointments", path)
        assert.same({ appointment = { code = "A1", starts_at = START },
                      patient = { code = "p1" }, professional = { hash = "prof-1" } },
                    json.decode(body))
        assert.equal(3, timeout)
        assert.equal(1, ctimeout)
        assert.equal("done", (call:response({ status = 200, body = answer("A1", "https://x/call/t"),
                                              rl_remaining = 599, rl_limit = 600 }, 100.2)))
        assert.same({ code = "A1", url = "https://x/call/t" }, call:result())
        assert.same({ "observe", 599, 600 }, { call:limiter_note() })
        local st = e:stats()
        assert.equal(1, st.requests)
        assert.equal(1, st.ok)
        assert.equal(0, st.retries)
    end)

    it("a reschedule and a cancel: the code percent-encoded in the path", function()
        local e = engine()
        local call, action = e:start("reschedule", "A/1 ?", "2030-05-21T12:00:00+02:00", 0)
        assert.equal("send", action)
        local method, path, body = call:request()
        assert.equal("PUT", method)
        assert.equal("/v1/appointments/A%2F1%20%3F", path)
        assert.equal('{"appointment":{"starts_at":"2030-05-21T10:00:00Z"}}', body)
        call = e:start("cancel", "../x", nil, 0)
        method, path, body = call:request()
        assert.equal("DELETE", method)
        assert.equal("/v1/appointments/..%2Fx", path)
        assert.is_nil(body)
        assert.equal("done", (call:response({ status = 200, body = '{"message":"Appointment cancelled"}' }, 0.1)))
        assert.is_true(call:result())
    end)

    it("refuses bad input before anything is sent: invalid_argument, effect none", function()
        local e = engine()
        for _, case in ipairs{
            { "create", { code = "", starts_at = START, patient = "p", professional = "x" }, nil, "code" },
            { "create", appt(), nil, nil },
            { "create", { code = "A", starts_at = "2030-02-30T00:00:00Z", patient = "p",
                          professional = "x" }, nil, "starts_at" },
            { "create", { code = "A", starts_at = START, patient = "p", professional = "x",
                          extra = 1 }, nil, "extra", "appointment: unknown field 'extra'" },
            { "reschedule", "..", START, "code" },
            { "reschedule", "A", "soon", "starts_at" },
            { "cancel", 42, nil, "code" },
            { "move", "A", nil, "op" },
        } do
            local call, action = e:start(case[1], case[2], case[3], 0)
            if case[4] then
                assert.equal("done", action)
                local v, err = call:result()
                assert.is_nil(v)
                assert.equal("invalid_argument", err.kind)
                assert.equal(0, err.attempts)
                assert.equal("none", err.effect)
                assert.equal(case[4], err.field)
                assert.matches("^" .. (case[5] or case[4]), err.message)
            else
                assert.equal("send", action)
            end
        end
        assert.equal(7, e:stats().by_kind.invalid_argument)
        assert.equal(0, e:stats().requests)
    end)

    it("the limiter: a slot first, bounded by max_wait and the deadline", function()
        local e = engine{ max_wait = 10, deadline = 4 }
        local call, action, step = e:start("cancel", "A", nil, 0)
        assert.equal("slot", action)
        -- the rest of the deadline, not max_wait; the named fields of the C step
        assert.same({ max_wait = 4, ["until"] = 4 }, step)
        action = call:slot(false, 4, 7.5, 4)
        assert.equal("done", action)
        local _, err = call:result()
        assert.equal("rate_limited", err.kind)
        assert.equal(7.5, err.retry_after)
        assert.equal(0, err.attempts)
        assert.equal("none", err.effect)
        assert.equal("no rate-limit slot within 4s, the rest of the deadline (before attempt 1 of 3)",
                     err.message)
        local st = e:stats()
        assert.equal(1, st.limiter_waits)
        assert.equal(4, st.limiter_wait_seconds)
        -- granted after a wait: the attempt's timeouts are cut to what is left
        call, action, step = e:start("cancel", "A", nil, 10)
        assert.equal("slot", action)
        assert.same({ max_wait = 4, ["until"] = 14 }, step)
        assert.equal("send", (call:slot(true, 2.5, nil, 12.5)))
        local _, _, _, timeout, ctimeout = call:request()
        assert.equal(1.5, timeout)
        assert.equal(1, ctimeout)
    end)

    it("start with a local limiter takes a free slot itself, and leaves a spent one to the driver",
       function()
        local dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir -m 700 " .. dir))
        local lim = assert(core.limiter{ key = "fused", dir = dir, per_minute = 60, burst = 1 })
        local e = engine{ max_wait = 10, deadline = 4 }
        local function left() return select(2, lim:budget()) end
        local before = left()
        -- the slot is free: taken in start (the budget says so), the call is to send
        local call, action, step = e:start("cancel", "A", nil, 0, nil, nil, lim)
        assert.equal("send", action)
        assert.is_nil(step)
        assert.equal(before - 1, left())
        local _, _, _, timeout = call:request()
        assert.equal(3, timeout)
        assert.equal(0, e:stats().limiter_waits)
        -- spent: nothing taken, the slot step as without lim (the driver waits)
        _, action, step = e:start("cancel", "A", nil, 0, nil, nil, lim)
        assert.equal("slot", action)
        assert.same({ max_wait = 4, ["until"] = 4 }, step)
        assert.equal(before - 1, left())
        -- not a limiter: refused before anything starts
        local ok, err = pcall(e.start, e, "cancel", "A", nil, 0, nil, nil, {})
        assert.is_false(ok)
        assert.matches("an open core.limiter expected", tostring(err))
        lim:close()
        ok, err = pcall(e.start, e, "cancel", "A", nil, 0, nil, nil, lim)
        assert.is_false(ok)
        assert.matches("an open core.limiter expected", tostring(err))
        os.execute("rm -rf " .. dir)
    end)

    it("without a limiter (no max_wait) there is no slot step", function()
        local e = engine()
        local _, action = e:start("cancel", "A", nil, 0)
        assert.equal("send", action)
    end)

    it("call:response takes the answer as one table (no positional form)", function()
        local e = engine()
        local call = e:start("cancel", "A", nil, 0)
        assert.has_error(function() call:response(200, '{"message":"x"}', nil, nil, nil, nil, 0.1) end)
        assert.has_error(function() call:response({ body = "{}" }, 0.1) end)
        local action, step = call:response({ status = 200, body = '{"message":"Appointment cancelled"}' }, 0.1)
        assert.equal("done", action)
        assert.is_nil(step)
    end)

    it("backs off with full jitter, honours Retry-After, cuts the last attempt to the deadline",
       function()
        local e = engine{ deadline = 5, timeout = 3 }
        local call = e:start("reschedule", "A", START, 0)
        local action, step = call:response({ status = 503, body = msg("Service Unavailable.") }, 1)
        assert.equal("backoff", action)
        assert.is_true(step.backoff >= 0 and step.backoff <= 0.25, step.backoff)   -- base 0.25 s
        assert.equal(1 + step.backoff, step["until"])
        assert.is_nil(step.max_wait)
        assert.equal("send", (call:wake(4.5)))
        local _, _, _, timeout, ctimeout = call:request()
        assert.equal(0.5, timeout)                      -- 5 - 4.5
        assert.equal(0.5, ctimeout)
        -- a failure with no time left for another attempt is the answer
        action = call:failure("connect", "Connection refused", 5)
        assert.equal("done", action)
        local _, err = call:result()
        assert.equal("network", err.kind)
        assert.equal(2, err.attempts)
        assert.equal("none", err.effect)
        assert.equal("Connection refused (attempt 2 of 3; no time for another within the "
                     .. "deadline of 5s)", err.message)
        assert.equal(1, e:stats().retries)
    end)

    it("a Retry-After past the deadline ends the call at once, with retry_after", function()
        local e = engine{ deadline = 2 }
        local call = e:start("create", appt(), nil, 0)
        local action = call:response({ status = 429, body = msg("Too Many Attempts."), retry_after = 10 }, 0.1)
        assert.equal("done", action)
        local _, err = call:result()
        assert.equal("rate_limited", err.kind)
        assert.equal(429, err.status)
        assert.equal(10, err.retry_after)
        assert.equal("Too Many Attempts.", err.message)
        assert.equal("none", err.effect)
        assert.same({ "pause", 10 }, { call:limiter_note() })
    end)

    it("a Retry-After within the deadline is waited, and paused for everyone", function()
        local e = engine()
        local call = e:start("create", appt(), nil, 0)
        local action, step = call:response({ status = 429, body = msg("Too Many Attempts."),
                                             retry_after = 1.5 }, 0.1)
        assert.equal("backoff", action)
        assert.equal(1.5, step.backoff)
        assert.near(1.6, step["until"], 1e-9)
        assert.same({ "pause", 1.5 }, { call:limiter_note() })
        -- no Retry-After: the server's reset, else the limiter's period
        call = e:start("create", appt(), nil, 0)
        call:response({ status = 429, body = "", rl_remaining = 0, rl_limit = 600, rl_reset = 42 }, 0.1)
        assert.same({ "pause", 42 }, { call:limiter_note() })
        local e2 = engine{ limiter_period = 30 }
        call = e2:start("create", appt(), nil, 0)
        call:response({ status = 429, body = "" }, 0.1)
        assert.same({ "pause", 30 }, { call:limiter_note() })
    end)

    it("the deadline passed during a backoff: timeout before the next attempt", function()
        local e = engine{ deadline = 5 }
        local call = e:start("cancel", "A", nil, 0)
        assert.equal("backoff", (call:response({ status = 503, body = msg("Service Unavailable.") }, 1)))
        assert.equal("done", (call:wake(5.01)))
        local _, err = call:result()
        assert.equal("timeout", err.kind)
        assert.equal(1, err.attempts)
        assert.equal("deadline of 5s reached before attempt 2 of 3", err.message)
        assert.equal("none", err.effect)
    end)

    it("reconciles an ambiguous create in the same call: the confirming PUT", function()
        local e = engine{ retry_post = true }
        local call = e:start("create", appt("A/1"), nil, 0)
        assert.equal("backoff", (call:response({ status = 500, body = msg("Server Error.") }, 0.5)))
        assert.equal("send", (call:wake(0.6)))
        assert.equal("send", (call:response({ status = 400, body = msg("Appointment already exists") }, 0.7)))
        local method, path, body = call:request()
        assert.equal("PUT", method)
        assert.equal("/v1/appointments/A%2F1", path)
        assert.equal('{"appointment":{"starts_at":"' .. START .. '"}}', body)
        assert.equal("done", (call:response({ status = 200, body = answer("A/1", "https://x/call/new") }, 0.8)))
        assert.same({ code = "A/1", url = "https://x/call/new" }, call:result())
        assert.equal(3, e:stats().requests)
        assert.equal(1, e:stats().ok)
    end)

    it("the confirm shares the call's attempts: 503 on it ends the call, effect done", function()
        local e = engine{ retry_post = true, max_retries = 2 }
        local call = e:start("create", appt(), nil, 0)
        call:response({ status = 500, body = msg("Server Error.") }, 0.1)
        call:wake(0.2)
        call:response({ status = 400, body = msg("Appointment already exists") }, 0.3)
        local action = call:response({ status = 503, body = msg("Service Unavailable.") }, 0.4)
        assert.equal("done", action)    -- not a fresh call's three attempts
        local v, err = call:result()
        assert.is_nil(v)
        assert.equal("server_error", err.kind)
        assert.equal(503, err.status)
        assert.equal(3, err.attempts)
        assert.equal("done", err.effect)
        assert.is_false(err.retryable)
        assert.equal("PUT", err.method)
        assert.equal("the appointment was created, but confirming it failed: Service Unavailable.",
                     err.message)
    end)

    it("the confirm gets at least one attempt, and the call's deadline", function()
        local e = engine{ retry_post = true, max_retries = 1, deadline = 5 }
        local call = e:start("create", appt(), nil, 0)
        call:response({ status = 500, body = msg("Server Error.") }, 0.1)
        call:wake(0.2)
        assert.equal("send", (call:response({ status = 400, body = msg("Appointment already exists") }, 0.3)))
        assert.equal("PUT", (call:request()))
        -- past the deadline before the confirm could start: done, effect done
        e = engine{ retry_post = true, max_retries = 1, deadline = 5 }
        call = e:start("create", appt(), nil, 0)
        call:response({ status = 500, body = msg("Server Error.") }, 0.1)
        call:wake(4.9)
        local _, _, _, timeout = call:request()
        assert.near(0.1, timeout, 1e-9)
        assert.equal("done", (call:response({ status = 400, body = msg("Appointment already exists") }, 5.05)))
        local _, err = call:result()
        assert.equal("timeout", err.kind)
        assert.equal("done", err.effect)
        assert.equal("the appointment was created, but confirming it failed: deadline of 5s "
                     .. "reached before attempt 3 of 3", err.message)
    end)

    it("'already exists' without an ambiguous attempt before it is an error", function()
        local e = engine{ retry_post = true }
        local call = e:start("create", appt(), nil, 0)
        call:response({ status = 400, body = msg("Appointment already exists") }, 0.1)
        local _, err = call:result()
        assert.equal("bad_request", err.kind)
        assert.equal("Appointment already exists", err.message)
        assert.equal("none", err.effect)
        -- unless an earlier run may have sent it (resumed)
        call = e:start("create", appt(), nil, 0, true)
        assert.equal("send", (call:response({ status = 400, body = msg("Appointment already exists") }, 0.1)))
    end)

    it("'already cancelled' after an ambiguous attempt is success", function()
        local e = engine()
        local call = e:start("cancel", "A", nil, 0)
        call:failure("timeout", "timed out after 3.0s", 3)
        call:wake(3.1)
        assert.equal("done", (call:response({ status = 400, body = msg("Appointment already cancelled") }, 3.2)))
        assert.is_true(call:result())
        call = e:start("cancel", "A", nil, 0)
        call:response({ status = 400, body = msg("Appointment already cancelled") }, 0.1)
        local v, err = call:result()
        assert.is_nil(v)
        assert.equal("bad_request", err.kind)
    end)

    it("a re-send on a fresh connection: PUT/DELETE send again, a POST never", function()
        local e = engine()
        local call = e:start("cancel", "A", nil, 0)
        assert.equal("send", (call:failure("resent", nil, 0.1)))
        assert.equal("done", (call:response({ status = 400, body = msg("Appointment already cancelled") }, 0.2)))
        assert.is_true(call:result())   -- the first send may have been the one
        assert.equal(1, e:stats().requests)
        call = e:start("create", appt(), nil, 0)
        assert.equal("done", (call:failure("resent", "connection closed with no answer", 0.1)))
        local _, err = call:result()
        assert.equal("network", err.kind)
        assert.equal("unknown", err.effect)
        assert.matches("not retried: it may have been processed, see retry_post", err.message, 1, true)
    end)

    it("effect: after 500 then 503s on a create (retry_post) is unknown, and said", function()
        local e = engine{ retry_post = true }
        local call = e:start("create", appt(), nil, 0)
        call:response({ status = 500, body = msg("Server Error.") }, 0.1)
        call:wake(0.2)
        call:response({ status = 503, body = msg("Service Unavailable.") }, 0.3)
        call:wake(0.5)
        assert.equal("done", (call:response({ status = 503, body = msg("Service Unavailable.") }, 0.6)))
        local _, err = call:result()
        assert.equal("server_error", err.kind)
        assert.equal("unknown", err.effect)
        assert.equal("Service Unavailable. (attempt 3 of 3; the appointment may have been created)",
                     err.message)
        -- three 503s: refused each time, nothing may exist
        call = e:start("create", appt(), nil, 0)
        for t = 1, 2 do
            call:response({ status = 503, body = msg("Service Unavailable.") }, t)
            call:wake(t + 0.5)
        end
        call:response({ status = 503, body = msg("Service Unavailable.") }, 3)
        _, err = call:result()
        assert.equal("none", err.effect)
        assert.equal("Service Unavailable.", err.message)
    end)

    it("a 2xx that is not the documented JSON: bad_response, not retried", function()
        local e = engine()
        local call = e:start("reschedule", "A", START, 0)
        assert.equal("done", (call:response({ status = 200, body = "<html>" }, 0.1)))
        local _, err = call:result()
        assert.equal("bad_response", err.kind)
        assert.equal(200, err.status)
        assert.is_false(err.retryable)
        assert.equal("unknown", err.effect)
    end)

    it("a 422 keeps the server's per-field messages, cleaned", function()
        local e = engine()
        local call = e:start("create", appt(), nil, 0)
        call:response({ status = 422,
                        body = '{"message":"The given data was invalid.","errors":{"code":'
                            .. '["too long","bad\\u0001char"],"starts_at":"not a date","empty":[]}}' }, 0.1)
        local _, err = call:result()
        assert.equal("unprocessable", err.kind)
        assert.equal("The given data was invalid.", err.message)
        assert.same({ code = { "too long", "bad char" }, starts_at = { "not a date" },
                      empty = {} }, err.fields)
        assert.is_true(errors.is_error(errors.wrap(err)))
    end)

    describe("secrets (issue 16 item 2): scrubbed after JSON unescaping", function()
        -- what a PHP server's json_encode makes of the secret: '/' as '\/'
        local php = SECRET:gsub("/", "\\/")
        -- and a fully \u-escaped form
        local uesc = SECRET:gsub(".", function(ch) return ("\\u%04x"):format(ch:byte()) end)

        it("the escaped forms hide the key from a scrub of the raw bytes", function()
            -- the old scrub matched raw bytes: it could not see these
            for _, form in ipairs{ php, uesc } do
                local body = '{"message":"Invalid credentials: ' .. form .. '"}'
                assert.is_nil(body:find(SECRET, 1, true))
                assert.truthy(json.decode(body).message:find(SECRET, 1, true))
            end
        end)

        for name, form in pairs{ ["\\/"] = php, ["\\u"] = uesc } do
            it("in the message, the fields and the url (" .. name .. " escapes)", function()
                local e = engine()
                local call = e:start("create", appt(), nil, 0)
                call:response({ status = 403, body = '{"message":"Invalid credentials: ' .. form .. ' for '
                                    .. API_KEY:gsub("/", "\\/") .. '"}' }, 0.1)
                local _, err = call:result()
                assert.equal("forbidden", err.kind)
                assert.is_nil(err.message:find(SECRET, 1, true), err.message)
                assert.is_nil(err.message:find(API_KEY, 1, true), err.message)
                assert.truthy(err.message:find(("*"):rep(#SECRET), 1, true))
                assert.is_nil(tostring(errors.wrap(err)):find(SECRET, 1, true))

                call = e:start("create", appt(), nil, 0)
                call:response({ status = 422, body = '{"message":"bad","errors":{"' .. form .. '":["is ' .. form
                                    .. '"]}}' }, 0.1)
                _, err = call:result()
                for k, list in pairs(err.fields) do
                    assert.is_nil(k:find(SECRET, 1, true))
                    for _, m in ipairs(list) do assert.is_nil(m:find(SECRET, 1, true)) end
                end

                call = e:start("create", appt(), nil, 0)
                call:response({ status = 200, body = '{"data":{"appointment":{"code":"' .. form
                                    .. '","url":"https:\\/\\/x\\/call\\/' .. form .. '"}}}' }, 0.1)
                local v = call:result()
                assert.is_nil(v.code:find(SECRET, 1, true))
                assert.is_nil(v.url:find(SECRET, 1, true))
                assert.equal("https://x/call/" .. ("*"):rep(#SECRET), v.url)
            end)
        end

        it("a key across the 512-byte cut of a long message is still scrubbed", function()
            local e = engine()
            local call = e:start("cancel", "A", nil, 0)
            call:response({ status = 403, body = msg(("x"):rep(505) .. SECRET .. ("y"):rep(600)) }, 0.1)
            local _, err = call:result()
            assert.is_nil(err.message:find("s3cr3t", 1, true))
            assert.matches("%.%.%.$", err.message)
        end)
    end)

    it("raises on a step the call is not waiting for (a driver bug)", function()
        local e = engine{ max_wait = 1 }
        local call = e:start("cancel", "A", nil, 0)
        assert.has_error(function() call:response({ status = 200, body = "{}" }, 0) end)
        assert.has_error(function() call:result() end)
    end)

    it("a method takes only a userdata made as its class (the tag, src/lclass.h)", function()
        local e = engine()
        local call = e:start("cancel", "A", nil, 0)
        local start = debug.getmetatable(e).__index.start
        local result = debug.getmetatable(call).__index.result
        local function refused(f, self, want)
            local ok, err = pcall(f, self, "cancel", "A", nil, 0)
            assert.is_false(ok)
            assert.matches(want, tostring(err))
        end
        refused(start, call, "mediquo.core.engine expected")
        refused(result, e, "mediquo.core.call expected")
        refused(start, "engine", "mediquo.core.engine expected, got string")
        refused(start, io.stdout, "mediquo.core.engine expected")
        -- a foreign userdata given the engine's metatable (debug.setmetatable):
        -- luaL_checkudata alone would take a FILE handle for an engine
        local f = assert(io.tmpfile())
        local own = debug.getmetatable(f)
        debug.setmetatable(f, debug.getmetatable(e))
        local ok, err = pcall(start, f, "cancel", "A", nil, 0)
        debug.setmetatable(f, own)
        f:close()
        assert.is_false(ok)
        assert.matches("mediquo.core.engine expected, got a userdata not made as one", tostring(err))
    end)

    it("mediquo.ngx_clock reads core.now's clock, through the FFI on LuaJIT", function()
        local clock = require "mediquo.ngx_clock"
        local ffi = jit and require("ffi")
        if ffi and ffi.os == "Linux" and ffi.abi("64bit") then
            -- its own reading (compiled into the trace), not core.now's C function
            assert.are_not.equal(core.now, clock)
        else
            assert.equal(core.now, clock)
        end
        local prev = clock()
        for _ = 1, 1000 do
            local a, b, c = core.now(), clock(), core.now()
            assert.truthy(a <= b and b <= c, ("core.now %.9f, ngx_clock %.9f, core.now %.9f"):format(a, b, c))
            assert.truthy(b >= prev)
            prev = b
        end
    end)

    it("exports one table of names", function()
        assert.is_true(core.KINDS.server_error)
        assert.is_false(core.KINDS.config)
        assert.equal(errors.KINDS, core.KINDS)
        assert.same({ "POST", "PUT", "DELETE", "GET" }, core.METHODS)
        assert.same({ "create", "reschedule", "cancel", "webhooks", "subscribe",
                      "update_subscription", "unsubscribe" }, core.OPS)
        assert.equal("connect_timeout", core.OUTCOMES[8])
    end)
end)
