-- The sandbox's HTTP contract (shared/SANDBOX.md), checked with a plain HTTP
-- client only: endpoints and answer shapes, every modelled rule, the /call/
-- pages, the test controls, every fault mode and hostile requests.

local H = require "spec.helper"
local json = H.json

local DOC_EXAMPLE = '{"appointment":{"code":"your_appointment_code",'
    .. '"starts_at":"2024-05-20T10:00:00Z"},"patient":{"code":"your_patient_code"},'
    .. '"professional":{"hash":"mediquo_professional_code"}}'

local sb

local function body_for(code, over)
    over = over or {}
    return json.encode({
        appointment = { code = code, starts_at = over.starts_at or "2024-05-20T10:00:00Z",
                        duration = over.duration },
        patient = { code = over.patient or "patient-1" },
        professional = { hash = over.hash or "prof-demo-1" },
    })
end

-- request(method, path, body[, headers]) -> status, decoded body, headers, raw body
local function request(method, path, body, headers, opts)
    local status, raw, hs = H.http(method, sb.url .. path, body, headers or H.auth(), opts)
    if not status then
        return nil, raw
    end
    return status, json.decode(raw), hs, raw
end

local function create(code, over)
    return request("POST", "/v1/appointments", body_for(code, over))
end

local function enc(code)
    return (code:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function token_of(url)
    return url:match("/call/([^/]+)$")
end

local function call(url)
    local status, body = request("GET", "/call/" .. token_of(url), nil, {})
    return status, body
end

local function assert_json_answer(status, body, hs, raw, counted)
    assert.is_number(status)
    assert.equal("application/json", hs["content-type"])
    assert.is_table(json.decode(raw), "not JSON: " .. tostring(raw))
    assert.is_not_nil(hs["x-ratelimit-limit"], "x-ratelimit-limit on " .. status)
    assert.is_not_nil(hs["x-ratelimit-remaining"], "x-ratelimit-remaining on " .. status)
    if counted ~= false then
        assert.truthy(tonumber(hs["x-ratelimit-remaining"]))
    end
    return body
end

local function curl(args)
    local out, code = H.run("curl -sS --max-time 5 " .. args .. " 2>&1")
    return code, out
end

describe("sandbox API", function()
    before_each(function()
        sb = H.sandbox()
    end)

    describe("POST /v1/appointments", function()
        it("answers the mediQuo documentation's example request, sent verbatim", function()
            local status, body, hs = request("POST", "/v1/appointments", DOC_EXAMPLE)
            assert.equal(200, status)
            assert.equal("application/json", hs["content-type"])
            assert.equal("your_appointment_code", body.data.appointment.code)
            assert.matches("^http://127%.0%.0%.1:" .. sb.port .. "/call/%x+$",
                           body.data.appointment.url)
            local rec = sb:state().your_appointment_code
            assert.same({
                starts_at = "2024-05-20T10:00:00Z", duration = 900,
                patient = "your_patient_code", professional = "mediquo_professional_code",
                status = "active", url = body.data.appointment.url, version = 1,
            }, rec)
        end)

        it("gives a live /call/ URL, unique per appointment", function()
            local _, a = create("A-1")
            local _, b = create("A-2")
            assert.not_equal(a.data.appointment.url, b.data.appointment.url)
            local status, page = call(a.data.appointment.url)
            assert.equal(200, status)
            assert.same({ appointment = { code = "A-1" } }, page)
        end)

        it("builds the URL from the request's Host", function()
            local h = H.auth()
            h.Host = "localhost:" .. sb.port
            local status, body = request("POST", "/v1/appointments", body_for("HOST-1"), h)
            assert.equal(200, status)
            assert.matches("^http://localhost:" .. sb.port .. "/call/", body.data.appointment.url)
        end)

        it("accepts every known professional hash", function()
            for i, hash in ipairs{ "prof-demo-1", "prof-demo-2", "prof-demo-3",
                                   "mediquo_professional_code" } do
                local status = create("P-" .. i, { hash = hash })
                assert.equal(200, status, hash)
            end
        end)

        it("echoes codes with slashes and backslashes exactly", function()
            for i, code in ipairs{ "a\\/b", "\\", "x/y\\z/", '"q"/' } do
                local status, body = create(code)
                assert.equal(200, status, code)
                assert.equal(code, body.data.appointment.code, i)
                assert.is_table(sb:state()[code], code)
            end
        end)

        it("stores a given duration", function()
            assert.equal(200, (create("D-1", { duration = 1800 })))
            assert.equal(1800, sb:state()["D-1"].duration)
        end)

        it("refuses an unknown professional with 400 and stores nothing", function()
            local status, body = create("U-1", { hash = "prof-nobody" })
            assert.equal(400, status)
            assert.same({ message = "Professional not found" }, body)
            assert.is_nil(sb:state()["U-1"])
        end)

        it("refuses a code that already exists, live or cancelled, with 400", function()
            assert.equal(200, (create("DUP")))
            local status, body = create("DUP")
            assert.equal(400, status)
            assert.same({ message = "Appointment already exists" }, body)
            assert.equal(200, (request("DELETE", "/v1/appointments/DUP")))
            status, body = create("DUP")
            assert.equal(400, status)
            assert.same({ message = "Appointment already exists" }, body)
        end)

        it("normalises starts_at to UTC", function()
            local cases = {
                ["2024-05-20T12:00:00+02:00"] = "2024-05-20T10:00:00Z",
                ["2024-05-20T10:00:00.750Z"] = "2024-05-20T10:00:00Z",
                ["2024-02-29T23:30:00-01:00"] = "2024-03-01T00:30:00Z",
                ["2024-05-20T10:00Z"] = "2024-05-20T10:00:00Z",
                ["2024-05-20t10:00:00z"] = "2024-05-20T10:00:00Z",
            }
            local i = 0
            for given, stored in pairs(cases) do
                i = i + 1
                assert.equal(200, (create("T-" .. i, { starts_at = given })), given)
                assert.equal(stored, sb:state()["T-" .. i].starts_at, given)
            end
        end)

        describe("answers 422 with errors per dotted field", function()
            local cases = {
                { "body not JSON", "{nope", "body" },
                { "body a JSON string", '"x"', "body" },
                { "body empty", "", "body" },
                { "code missing", json.encode{ appointment = { starts_at = "2024-05-20T10:00:00Z" },
                    patient = { code = "p" }, professional = { hash = "prof-demo-1" } },
                  "appointment.code" },
                { "code not a string", body_for(12), "appointment.code" },
                { "code too long", body_for(("x"):rep(256)), "appointment.code" },
                { "starts_at month 13", body_for("C", { starts_at = "2024-13-01T10:00:00Z" }),
                  "appointment.starts_at" },
                { "starts_at Feb 30", body_for("C", { starts_at = "2024-02-30T10:00:00Z" }),
                  "appointment.starts_at" },
                { "starts_at Feb 29 of 2023", body_for("C", { starts_at = "2023-02-29T10:00:00Z" }),
                  "appointment.starts_at" },
                { "starts_at without zone", body_for("C", { starts_at = "2024-05-20T10:00:00" }),
                  "appointment.starts_at" },
                { "starts_at 25h", body_for("C", { starts_at = "2024-05-20T25:00:00Z" }),
                  "appointment.starts_at" },
                { "starts_at a date only", body_for("C", { starts_at = "2024-05-20" }),
                  "appointment.starts_at" },
                { "starts_at a number", body_for("C", { starts_at = 1716199200 }),
                  "appointment.starts_at" },
                { "duration 0", body_for("C", { duration = 0 }), "appointment.duration" },
                { "duration negative", body_for("C", { duration = -60 }), "appointment.duration" },
                { "duration fractional", body_for("C", { duration = 1.5 }), "appointment.duration" },
                { "duration a string", body_for("C", { duration = "900" }), "appointment.duration" },
                { "patient missing", json.encode{ appointment = { code = "C",
                    starts_at = "2024-05-20T10:00:00Z" }, professional = { hash = "prof-demo-1" } },
                  "patient.code" },
                { "professional missing", json.encode{ appointment = { code = "C",
                    starts_at = "2024-05-20T10:00:00Z" }, patient = { code = "p" } },
                  "professional.hash" },
            }
            for _, case in ipairs(cases) do
                it(case[1], function()
                    local status, body = request("POST", "/v1/appointments", case[2])
                    assert.equal(422, status)
                    assert.equal("The given data was invalid.", body.message)
                    local msgs = body.errors[case[3]]
                    assert.is_table(msgs, "no errors for " .. case[3])
                    assert.is_string(msgs[1])
                    assert.same({}, sb:state())
                end)
            end

            it("lists every bad field at once", function()
                local status, body = request("POST", "/v1/appointments", json.encode{
                    appointment = { starts_at = "2024-02-30T10:00:00Z", duration = 0 },
                    patient = {}, professional = { hash = 5 } })
                assert.equal(422, status)
                for _, f in ipairs{ "appointment.code", "appointment.starts_at",
                                    "appointment.duration", "patient.code",
                                    "professional.hash" } do
                    assert.is_table(body.errors[f], f)
                end
            end)
        end)
    end)

    describe("PUT /v1/appointments/{code}", function()
        it("reschedules, renews the URL, and the old URL answers 410", function()
            local _, created = create("R-1")
            local old = created.data.appointment.url
            local status, body = request("PUT", "/v1/appointments/R-1",
                json.encode{ appointment = { starts_at = "2024-06-01T09:30:00+01:00" } })
            assert.equal(200, status)
            assert.equal("R-1", body.data.appointment.code)
            local new = body.data.appointment.url
            assert.not_equal(old, new)
            assert.same({ 410, { message = "Gone" } }, { call(old) })
            assert.equal(200, (call(new)))
            local rec = sb:state()["R-1"]
            assert.equal("2024-06-01T08:30:00Z", rec.starts_at)
            assert.equal(2, rec.version)
            assert.equal(new, rec.url)
        end)

        it("answers 404 for an unknown code", function()
            local status, body = request("PUT", "/v1/appointments/NOPE",
                json.encode{ appointment = { starts_at = "2024-06-01T09:30:00Z" } })
            assert.equal(404, status)
            assert.same({ message = "Appointment not found" }, body)
        end)

        it("answers 400 for a cancelled appointment", function()
            create("R-2")
            request("DELETE", "/v1/appointments/R-2")
            local status, body = request("PUT", "/v1/appointments/R-2",
                json.encode{ appointment = { starts_at = "2024-06-01T09:30:00Z" } })
            assert.equal(400, status)
            assert.same({ message = "Appointment already cancelled" }, body)
        end)

        it("answers 422 for a bad or missing starts_at, and changes nothing", function()
            create("R-3")
            for _, b in ipairs{ json.encode{ appointment = { starts_at = "2024-02-30T10:00:00Z" } },
                                json.encode{ appointment = {} }, "{}", "[[" } do
                local status, body = request("PUT", "/v1/appointments/R-3", b)
                assert.equal(422, status, b)
                assert.is_table(body.errors)
            end
            local status, body = request("PUT", "/v1/appointments/R-3", "{}")
            assert.equal(422, status)
            assert.is_table(body.errors["appointment.starts_at"])
            assert.equal(1, sb:state()["R-3"].version)
        end)
    end)

    describe("DELETE /v1/appointments/{code}", function()
        it("cancels; the URL then answers 410", function()
            local _, created = create("X-1")
            local status, body = request("DELETE", "/v1/appointments/X-1")
            assert.equal(200, status)
            assert.same({ message = "Appointment cancelled" }, body)
            assert.equal("cancelled", sb:state()["X-1"].status)
            assert.same({ 410, { message = "Gone" } }, { call(created.data.appointment.url) })
        end)

        it("answers 400 when already cancelled, 404 when unknown", function()
            create("X-2")
            request("DELETE", "/v1/appointments/X-2")
            local status, body = request("DELETE", "/v1/appointments/X-2")
            assert.equal(400, status)
            assert.same({ message = "Appointment already cancelled" }, body)
            status, body = request("DELETE", "/v1/appointments/X-none")
            assert.equal(404, status)
            assert.same({ message = "Appointment not found" }, body)
        end)
    end)

    describe("GET /call/{token}", function()
        it("answers 404 for a token that never existed", function()
            local status, body = request("GET", "/call/0123456789abcdef", nil, {})
            assert.equal(404, status)
            assert.is_string(body.message)
        end)
    end)

    it("percent-decodes {code} in the path exactly once", function()
        assert.equal(200, (create("a/b")))
        assert.equal(200, (create("%2F")))
        assert.equal(200, (create("sp ace+plus")))
        local status, body = request("PUT", "/v1/appointments/a%2Fb",
            json.encode{ appointment = { starts_at = "2024-07-01T10:00:00Z" } })
        assert.equal(200, status)
        assert.equal("a/b", body.data.appointment.code)
        status = request("DELETE", "/v1/appointments/%252F")
        assert.equal(200, status)
        local state = sb:state()
        assert.equal("cancelled", state["%2F"].status)
        assert.equal("active", state["a/b"].status)
        assert.equal(2, state["a/b"].version)
        -- "+" is not a space in a path
        assert.equal(200, (request("DELETE", "/v1/appointments/" .. enc("sp ace+plus"))))
        assert.equal(404, (request("DELETE", "/v1/appointments/sp%20ace%20plus")))
        -- an unencoded slash is another path, not the code "a/b"
        status, body = request("DELETE", "/v1/appointments/a/b")
        assert.equal(404, status)
        assert.equal("Not Found.", body.message)
        assert.equal("active", sb:state()["a/b"].status)
        -- the log keeps the path as received
        local log = sb:log()
        assert.equal("/v1/appointments/%252F", log[#log - 3].path)
    end)

    describe("authentication", function()
        local function without(name)
            local h = H.auth()
            h[name] = nil
            return h
        end

        it("answers 401 without X-API-Key or X-Secret-Key", function()
            for _, name in ipairs{ "X-API-Key", "X-Secret-Key" } do
                local status, body = request("POST", "/v1/appointments", body_for("AU-1"),
                                             without(name))
                assert.equal(401, status, name)
                assert.same({ message = "Unauthenticated." }, body)
            end
            assert.equal(401, (request("DELETE", "/v1/appointments/x", nil, {})))
            assert.is_nil(sb:state()["AU-1"])
        end)

        it("answers 403 for a wrong pair", function()
            for _, pair in ipairs{ { "sandbox-key", "wrong" }, { "other-key", "sandbox-secret" } } do
                local h = H.auth()
                h["X-API-Key"], h["X-Secret-Key"] = pair[1], pair[2]
                local status, body = request("POST", "/v1/appointments", body_for("AU-2"), h)
                assert.equal(403, status)
                assert.is_string(body.message)
            end
            assert.is_nil(sb:state()["AU-2"])
        end)

        it("checks auth before the route and the body", function()
            assert.equal(401, (request("POST", "/v1/nowhere", "{nope", {})))
            assert.equal(401, (request("PATCH", "/v1/appointments", "{nope", {})))
        end)
    end)

    it("answers JSON with Content-Type and rate-limit headers, whatever the status", function()
        local _, created = create("J-1")
        request("DELETE", "/v1/appointments/J-1")
        local big = ("x"):rep(1024 * 1024 + 1)
        local wrong = H.auth()
        wrong["X-Secret-Key"] = "nope"
        local cases = {
            { 200, "POST", "/v1/appointments", body_for("J-2") },
            { 400, "POST", "/v1/appointments", body_for("J-2") },
            { 401, "POST", "/v1/appointments", body_for("J-3"), {} },
            { 403, "POST", "/v1/appointments", body_for("J-3"), wrong },
            { 404, "PUT", "/v1/appointments/none",
              json.encode{ appointment = { starts_at = "2024-05-20T10:00:00Z" } } },
            { 404, "GET", "/v1/nowhere" },
            { 404, "GET", "/elsewhere", nil, {}, false },
            { 405, "GET", "/v1/appointments" },
            { 410, "GET", "/call/" .. token_of(created.data.appointment.url), nil, {}, false },
            { 413, "POST", "/v1/appointments", big, nil, nil, { curl = true } },
            { 422, "POST", "/v1/appointments", "{nope" },
        }
        for _, c in ipairs(cases) do
            local status, body, hs, raw = request(c[2], c[3], c[4], c[5], c[7])
            assert.equal(c[1], status, c[2] .. " " .. c[3])
            assert_json_answer(status, body, hs, raw, c[6])
            if status >= 400 then
                assert.is_string(body.message, c[1] .. " " .. c[2] .. " " .. c[3])
            end
        end
    end)

    describe("rate limit", function()
        local rl

        before_each(function()
            rl = H.sandbox{ per_minute = 5, window = 2 }
        end)

        local function hit(path, body, headers)
            return H.http(path and "GET" or "POST", rl.url .. (path or "/v1/appointments"),
                          body, headers or H.auth())
        end

        it("counts every /v1/ request per window, then answers 429 without processing", function()
            local remaining = {}
            -- 401 and 422 count too
            assert.equal(401, (hit(nil, body_for("RL-0"), {})))
            assert.equal(422, (hit(nil, "{nope")))
            for i = 1, 3 do
                local status, _, hs = hit(nil, body_for("RL-" .. i))
                assert.equal(200, status)
                assert.equal("5", hs["x-ratelimit-limit"])
                remaining[#remaining + 1] = hs["x-ratelimit-remaining"]
            end
            assert.same({ "2", "1", "0" }, remaining)
            -- neither /call/ nor /__sandbox/ count
            assert.equal(404, (hit("/call/nothing")))
            rl:state()

            local status, raw, hs = hit(nil, body_for("RL-over"))
            assert.equal(429, status)
            assert.same({ message = "Too Many Attempts." }, json.decode(raw))
            assert.equal("application/json", hs["content-type"])
            assert.equal("5", hs["x-ratelimit-limit"])
            assert.equal("0", hs["x-ratelimit-remaining"])
            local retry = tonumber(hs["retry-after"])
            assert.truthy(retry and retry >= 1 and retry <= 2 and math.type(retry) == "integer",
                          "Retry-After " .. tostring(hs["retry-after"]))
            assert.is_nil(rl:state()["RL-over"])
            local log = rl:log()
            assert.equal(429, log[#log].status)
            -- X-RateLimit-Reset is the window's end in epoch seconds, rounded
            -- up: the window opened with the 401, so on the sandbox's own
            -- clock (its log's times; the test's clock is another process's
            -- reading) it is 2 to 3 s after that request, and near now.
            local reset = tonumber(hs["x-ratelimit-reset"])
            assert.equal(401, log[1].status)
            local opened = log[1].time
            assert.truthy(reset and reset >= opened + 1.5 and reset <= opened + 3
                          and math.abs(reset - os.time()) <= 60,
                          ("x-ratelimit-reset %s, window opened at %.3f"):format(
                              tostring(hs["x-ratelimit-reset"]), opened))
            local stored = 0
            for _ in pairs(rl:state()) do stored = stored + 1 end
            assert.equal(3, stored)

            -- a new window opens after the old one ends
            H.sleep(retry + 0.1)
            local later, _, hs2 = hit(nil, body_for("RL-later"))
            assert.equal(200, later)
            assert.equal("4", hs2["x-ratelimit-remaining"])
        end)

        it("starts over after a reset", function()
            for _ = 1, 6 do hit("/v1/nowhere") end
            assert.equal(429, (hit("/v1/nowhere")))
            rl:reset()
            local status, _, hs = hit("/v1/nowhere")
            assert.equal(404, status)
            assert.equal("4", hs["x-ratelimit-remaining"])
        end)
    end)

    describe("test controls", function()
        it("logs requests with the headers that matter, never the secret", function()
            local h = H.auth()
            h["User-Agent"] = "spec-agent/1"
            request("POST", "/v1/appointments", body_for("L-1"), h)
            local wrong = H.auth()
            wrong["X-Secret-Key"] = "not-the-secret"
            request("DELETE", "/v1/appointments/L-1", nil, wrong)
            request("DELETE", "/v1/appointments/L%2F1", nil, { ["X-API-Key"] = "k" })
            local status, raw = H.http("GET", sb.url .. "/__sandbox/log")
            assert.equal(200, status)
            assert.is_nil(raw:find("sandbox-secret", 1, true))
            assert.is_nil(raw:find("not-the-secret", 1, true))
            local log = json.decode(raw)
            assert.equal(3, #log)
            local e = log[1]
            assert.equal("POST", e.method)
            assert.equal("/v1/appointments", e.path)
            assert.equal(200, e.status)
            assert.equal("sandbox-key", e.api_key)
            assert.is_true(e.secret_ok)
            assert.equal("spec-agent/1", e.user_agent)
            assert.equal("application/json", e.content_type)
            assert.equal("application/json", e.accept)
            assert.is_nil(e.fault)
            assert.is_number(e.time)
            assert.is_false(log[2].secret_ok)
            assert.equal(403, log[2].status)
            assert.is_nil(log[3].secret_ok)
            assert.equal("/v1/appointments/L%2F1", log[3].path)
            assert.equal(401, log[3].status)
        end)

        it("an empty log is an empty JSON array", function()
            local status, raw = H.http("GET", sb.url .. "/__sandbox/log")
            assert.equal(200, status)
            assert.equal("[]", raw)
        end)

        it("reset empties state, log, counters and faults", function()
            create("Z-1")
            local _, _, before = create("Z-2")
            sb:faults{ next = 3, mode = "status", status = 500 }
            sb:reset()
            assert.same({}, sb:state())
            assert.same({}, sb:log())
            local status, _, hs = create("Z-1")
            assert.equal(200, status)
            assert.equal(tonumber(before["x-ratelimit-remaining"]) + 1,
                         tonumber(hs["x-ratelimit-remaining"]))
        end)

        it("queues faults first in, first out", function()
            sb:faults{ next = 2, mode = "status", status = 500 }
            sb:faults{ mode = "status", status = 503 }
            local got = {}
            for i = 1, 4 do
                got[i] = (create("F-" .. i))
            end
            assert.same({ 500, 500, 503, 200 }, got)
        end)

        it("refuses a malformed fault with 422", function()
            for _, f in ipairs{ { mode = "explode" }, { mode = "status" },
                                { mode = "delay" }, { mode = "huge" },
                                { next = 0, mode = "garbage" } } do
                local status, raw = H.http("POST", sb.url .. "/__sandbox/faults", json.encode(f),
                                           { ["Content-Type"] = "application/json" })
                assert.equal(422, status, json.encode(f))
                assert.is_table(json.decode(raw).errors)
            end
        end)

        it("answers 404 and 405 under /__sandbox/ too", function()
            assert.equal(404, (H.http("GET", sb.url .. "/__sandbox/nothing")))
            assert.equal(405, (H.http("DELETE", sb.url .. "/__sandbox/log")))
            assert.equal(405, (H.http("GET", sb.url .. "/__sandbox/reset")))
        end)
    end)

    describe("fault modes", function()
        local function fault_logged(mode)
            local log = sb:log()
            assert.equal(mode, log[#log].fault)
            return log[#log]
        end

        it("status: answers the status as JSON without processing", function()
            sb:faults{ mode = "status", status = 500 }
            local status, body, hs, raw = create("FS-1")
            assert.equal(500, status)
            assert_json_answer(status, body, hs, raw)
            assert.is_nil(sb:state()["FS-1"])
            assert.equal(500, fault_logged("status").status)
        end)

        it("after: processes the create, then answers the status", function()
            sb:faults{ mode = "after", status = 502 }
            local status, body, hs, raw = create("FA-1")
            assert.equal(502, status)
            assert_json_answer(status, body, hs, raw)
            assert.equal("active", sb:state()["FA-1"].status)
            fault_logged("after")
            local again, body2 = create("FA-1")
            assert.equal(400, again)
            assert.same({ message = "Appointment already exists" }, body2)
        end)

        it("delay: waits, then processes normally", function()
            sb:faults{ mode = "delay", ms = 300 }
            local t0 = H.now()
            local status = create("FD-1")
            assert.equal(200, status)
            assert.truthy(H.now() - t0 >= 0.29)
            assert.equal("active", sb:state()["FD-1"].status)
            fault_logged("delay")
        end)

        it("delay with process=after: the create is stored even if the client gives up", function()
            sb:faults{ mode = "delay", ms = 600, process = "after" }
            local status, err = create("FD-2", nil, nil)
            assert.equal(200, status, err) -- default client timeout is longer
            sb:faults{ mode = "delay", ms = 600, process = "after" }
            status, err = request("POST", "/v1/appointments", body_for("FD-3"), nil,
                                  { timeout = 0.2 })
            assert.is_nil(status)
            assert.matches("timeout", err)
            assert.equal("active", sb:state()["FD-3"].status)
        end)

        it("reset: closes the connection with no answer", function()
            sb:faults{ mode = "reset" }
            local status, err = create("FR-1")
            assert.is_nil(status)
            assert.is_string(err)
            assert.is_nil(sb:state()["FR-1"])
            sb:faults{ mode = "reset" }
            local code, out = curl("-o /dev/null " .. sb.base_url .. "/appointments -d x")
            assert.equal(52, code, out)
            assert.matches("Empty reply", out)
            local log = sb:log()
            assert.equal("reset", log[#log].fault)
        end)

        it("garbage: a 200 whose body is not JSON", function()
            sb:faults{ mode = "garbage" }
            local status, _, hs, raw = create("FG-1")
            assert.equal(200, status)
            assert.is_nil(json.decode(raw))
            assert.is_not_nil(hs["x-ratelimit-remaining"])
            assert.is_nil(sb:state()["FG-1"])
            fault_logged("garbage")
        end)

        it("truncate: declares a longer body than it sends; curl reports a transfer error", function()
            sb:faults{ mode = "truncate" }
            local code, out = curl("-o /dev/null -H 'X-API-Key: sandbox-key' "
                .. "-H 'X-Secret-Key: sandbox-secret' " .. sb.base_url .. "/appointments -d x")
            assert.equal(18, code, out)
            assert.matches("transfer closed with", out)
            sb:faults{ mode = "truncate" }
            local status, err = create("FT-1")
            assert.is_nil(status)
            assert.is_string(err)
            fault_logged("truncate")
        end)

        it("huge: a 200 with a body of exactly the bytes asked", function()
            sb:faults{ mode = "huge", bytes = 3 * 1024 * 1024 + 7 }
            local status, _, hs, raw = create("FH-1")
            assert.equal(200, status)
            assert.equal(3 * 1024 * 1024 + 7, #raw)
            assert.equal(tostring(#raw), hs["content-length"])
            fault_logged("huge")
        end)

        it("ratelimit: 429 with Retry-After when seconds is given, without it otherwise", function()
            sb:faults{ mode = "ratelimit", seconds = 7 }
            sb:faults{ mode = "ratelimit" }
            local status, body, hs, raw = create("FL-1")
            assert.equal(429, status)
            assert_json_answer(status, body, hs, raw)
            assert.equal("7", hs["retry-after"])
            assert.equal("0", hs["x-ratelimit-remaining"])
            local status2, _, hs2 = create("FL-2")
            assert.equal(429, status2)
            assert.is_nil(hs2["retry-after"])
            assert.same({}, sb:state())
            fault_logged("ratelimit")
            sb:faults{ mode = "ratelimit", seconds = 30, http_date = true }
            local status3, _, hs3 = create("FL-3")
            assert.equal(429, status3)
            assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", hs3["retry-after"])
        end)

        it("faulted requests count towards the rate limit; /call/ takes no fault", function()
            local _, created, h0 = create("FC-1")
            sb:faults{ next = 2, mode = "status", status = 500 }
            assert.equal(200, (call(created.data.appointment.url)))
            local _, _, h1 = create("FC-2")
            local _, _, h2 = create("FC-3")
            local r0 = tonumber(h0["x-ratelimit-remaining"])
            assert.equal(r0 - 1, tonumber(h1["x-ratelimit-remaining"]))
            assert.equal(r0 - 2, tonumber(h2["x-ratelimit-remaining"]))
        end)
    end)

    describe("hostile requests", function()
        local function still_up()
            local status, raw = H.http("GET", sb.url .. "/__sandbox/ping")
            assert.equal(200, status)
            assert.is_true(json.decode(raw).ok)
        end

        after_each(still_up)

        it("unknown paths answer 404 JSON", function()
            for _, p in ipairs{ "/", "/v1", "/v2/appointments", "/v1/appointments/a/b",
                                "/v1/appointments/", "/v1/appointmentsX" } do
                local status, body, hs, raw = request("PUT", p, "{}")
                assert.equal(404, status, p)
                assert_json_answer(status, body, hs, raw, false)
            end
            -- an encoded "../" is a code like any other, not a way out
            local status, body = request("DELETE", "/v1/appointments/..%2F..%2Fetc")
            assert.equal(404, status)
            assert.same({ message = "Appointment not found" }, body)
        end)

        it("wrong methods answer 405 JSON", function()
            for _, c in ipairs{ { "GET", "/v1/appointments" }, { "DELETE", "/v1/appointments" },
                                { "PATCH", "/v1/appointments/x" }, { "POST", "/v1/appointments/x" },
                                { "GET", "/v1/appointments/x" }, { "POST", "/call/x" } } do
                local status, body, hs, raw = request(c[1], c[2], "{}")
                assert.equal(405, status, c[1] .. " " .. c[2])
                assert_json_answer(status, body, hs, raw, false)
            end
        end)

        it("bodies over 1 MiB answer 413 JSON; 1 MiB exactly is read whole", function()
            local exact = body_for("BIG-1")
            exact = exact .. (" "):rep(1024 * 1024 - #exact)
            assert.equal(200, (request("POST", "/v1/appointments", exact)))
            assert.equal("active", sb:state()["BIG-1"].status)
            local status, body, hs, raw = request("POST", "/v1/appointments", exact .. " ", nil,
                                                  { curl = true })
            assert.equal(413, status)
            assert_json_answer(status, body, hs, raw)
            -- chunked, with no Content-Length, is cut at the same size
            local out, code = H.run("head -c 2000000 /dev/zero | curl -sS --max-time 5 "
                .. "-H 'Transfer-Encoding: chunked' -H 'X-API-Key: sandbox-key' "
                .. "-H 'X-Secret-Key: sandbox-secret' --data-binary @- -w ' %{http_code}' "
                .. sb.base_url .. "/appointments 2>&1")
            assert.is_number(code)
            assert.matches("413$", out)
        end)

        it("invalid UTF-8 answers 422", function()
            for _, bad in ipairs{ "\255", "\192\175", "\237\160\128", "caf\195", "\244\144\128\128" } do
                local status, body = request("POST", "/v1/appointments", body_for("U8" .. bad))
                assert.equal(422, status, ("%q"):format(bad))
                assert.is_table(body.errors)
            end
            assert.equal(200, (create("café-ü-€-😀")))
        end)

        it("JSON nested deeper than 64 levels answers 422", function()
            local deep = ('{"a":'):rep(200) .. "1" .. ("}"):rep(200)
            local status, body = request("POST", "/v1/appointments", deep)
            assert.equal(422, status)
            assert.matches("nested", body.errors.body[1])
            local wide = body_for("N-1"):gsub("}$", ',"extra":' .. ("["):rep(100000)
                                                .. ("]"):rep(100000) .. "}")
            assert.equal(422, (request("POST", "/v1/appointments", wide)))
            local ok = body_for("N-2"):gsub("}$", ',"extra":' .. ("["):rep(60)
                                              .. ("]"):rep(60) .. "}")
            assert.equal(200, (request("POST", "/v1/appointments", ok)))
        end)

        it("odd request lines and headers get JSON, not HTML", function()
            local status, _, hs, raw = request("GET", "/v1/appointments/%", nil)
            assert.is_number(status)
            assert.equal("application/json", hs["content-type"])
            assert.is_table(json.decode(raw))
            status = request("POST", "/v1/appointments", body_for("H-1"),
                             { ["X-API-Key"] = ("k"):rep(20000), ["X-Secret-Key"] = "s" })
            assert.is_number(status)
        end)
    end)

    it("--latency-ms delays every /v1/ answer", function()
        local slow = H.sandbox{ latency_ms = 200 }
        local t0 = H.now()
        local status = H.http("POST", slow.base_url .. "/appointments", body_for("LAT-1"), H.auth())
        assert.equal(200, status)
        assert.truthy(H.now() - t0 >= 0.19)
        t0 = H.now()
        assert.equal(401, (H.http("DELETE", slow.base_url .. "/appointments/x", nil, {})))
        assert.truthy(H.now() - t0 >= 0.19)
    end)

    it("serves https with its own CA for 127.0.0.1 and localhost", function()
        local tls = H.sandbox{ tls = true }
        assert.matches("^https://127%.0%.0%.1:%d+/v1$", tls.base_url)
        assert.is_string(tls.ca_file)
        local status, raw = H.http("POST", tls.base_url .. "/appointments", body_for("TLS-1"),
                                   H.auth())
        assert.equal(200, status, raw)
        local url = json.decode(raw).data.appointment.url
        assert.matches("^https://127%.0%.0%.1:" .. tls.port .. "/call/", url)
        local code, out = curl("-o /dev/null --cacert " .. tls.ca_file .. " https://localhost:"
                               .. tls.port .. "/call/" .. token_of(url))
        assert.equal(0, code, out)
        code = curl("-o /dev/null https://127.0.0.1:" .. tls.port .. "/__sandbox/ping")
        assert.equal(60, code) -- not trusted without the CA
    end)
end)
