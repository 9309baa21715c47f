-- spec/54-sandbox_webhooks_spec.lua: the sandbox's webhooks (SANDBOX.md
-- "Webhooks"): the subscriptions resource and its 401/403/422/404 rules and
-- shared rate-limit budget; deliveries as the guide shapes them, signed with
-- --webhook-secret and carrying meta.headers, received here by a plain
-- LuaSocket server; redelivery with backoff (up to 5 more) when not 2xx or
-- not answered within 5 s; --webhook-duplicates; loopback URLs only;
-- /__sandbox/deliveries and reset.
local H = require "spec.helper"
local socket = require "socket"

local json = H.json
local q = H.shell_quote

local function api(sb, method, path, body, headers)
    local status, resp, hs = H.http(method, sb.base_url .. path,
                                     body and (type(body) == "table" and json.encode(body) or body),
                                     headers or H.auth())
    return status, json.decode(resp or "") or resp, hs
end

local function subscribe(sb, typ, url, headers)
    local status, r = api(sb, "POST", "/organizations/webhooks/",
                          { type = typ, channel = "http", meta = { url = url, headers = headers } })
    assert.equal(201, status)
    return r.data
end

local function book(sb, code)
    local status, r = api(sb, "POST", "/appointments", {
        appointment = { code = code, starts_at = "2031-01-02T10:00:00+01:00", duration = 1200 },
        patient = { code = "PAT-" .. code }, professional = { hash = "prof-demo-1" } })
    assert.equal(200, status)
    return r.data.appointment.url
end

local function deliveries(sb)
    local status, body = H.http("GET", sb.url .. "/__sandbox/deliveries")
    assert.equal(200, status)
    return json.decode(body)
end

-- a one-connection-at-a-time HTTP server on loopback: accept, read the
-- request, answer `status` (or nothing when status is nil)
local function listener()
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    srv:settimeout(15)
    return srv, tonumber(port)
end

local function accept(srv, status)
    local c = assert(srv:accept())
    c:settimeout(5)
    local line = assert(c:receive("*l"))
    local headers = {}
    while true do
        local l = assert(c:receive("*l"))
        if l == "" then break end
        local k, v = l:match("^([^:]+):%s*(.*)$")
        headers[k:lower()] = v
    end
    local body = assert(c:receive(tonumber(headers["content-length"])))
    if status then
        c:send(("HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"):format(status))
        c:close()
    end
    return { line = line, headers = headers, body = json.decode(body), conn = c }
end

-- a sandbox of our own, with webhook flags the helper does not pass
local own = {}
local function start_sandbox(flags)
    for _ = 1, 10 do
        local port = H.free_port()
        local prefix = H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-spec54-XXXXXX\""):gsub("%s+$", "")
        local out, code = H.run(("%s start --port %d --prefix %s --per-minute 1000000 %s 2>&1"):format(
            q(H.bin), port, q(prefix), flags))
        if code == 0 then
            local sb = { port = port, prefix = prefix, base_url = out:match("^(%S+)") }
            sb.url = sb.base_url:gsub("/v1$", "")
            own[#own + 1] = sb
            return sb
        end
        H.run("rm -rf " .. q(prefix))
    end
    error("cannot start a sandbox")
end

describe("sandbox webhooks", function()
    teardown(function()
        for _, sb in ipairs(own) do
            H.run(q(H.bin) .. " stop --prefix " .. q(sb.prefix) .. " 2>&1")
            H.run("rm -rf " .. q(sb.prefix))
        end
    end)

    describe("subscriptions", function()
        local sb
        before_each(function() sb = H.sandbox{ per_minute = 12, window = 60 } end)

        it("POST 201 with a UUID v4, GET lists it, PUT replaces it, DELETE soft-deletes it", function()
            local s = subscribe(sb, "report_created", "https://client.example.com/hooks/report",
                                { ["X-Tenant"] = "acme" })
            assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", s.id)
            assert.same({ id = s.id, type = "report_created", channel = "http",
                          meta = { url = "https://client.example.com/hooks/report",
                                   headers = { ["X-Tenant"] = "acme" } } }, s)
            local status, r = api(sb, "GET", "/organizations/webhooks/")
            assert.equal(200, status)
            assert.same({ s }, r.data)
            status, r = api(sb, "PUT", "/organizations/webhooks/" .. s.id,
                            { type = "appointment_created", channel = "http",
                              meta = { url = "http://127.0.0.1:9/x" } })
            assert.equal(200, status)
            assert.equal("appointment_created", r.data.type)
            assert.equal(s.id, r.data.id)
            status = api(sb, "DELETE", "/organizations/webhooks/" .. s.id)
            assert.equal(204, status)
            status, r = api(sb, "GET", "/organizations/webhooks/")
            assert.equal(200, status)
            assert.same({}, r.data)
            assert.equal(404, (api(sb, "DELETE", "/organizations/webhooks/" .. s.id)))
            assert.equal(404, (api(sb, "PUT", "/organizations/webhooks/" .. s.id,
                                   { type = "appointment_created", channel = "email", meta = {} })))
            assert.equal(404, (api(sb, "DELETE", "/organizations/webhooks/no-such-id")))
        end)

        it("401 without keys, 403 for a wrong pair, 422 per field", function()
            assert.equal(401, (api(sb, "GET", "/organizations/webhooks/", nil, {})))
            local bad = H.auth()
            bad["X-Secret-Key"] = "wrong"
            assert.equal(403, (api(sb, "POST", "/organizations/webhooks/", "{}", bad)))
            local cases = {
                { { channel = "http", meta = { url = "http://127.0.0.1/" } }, "type" },
                { { type = "appointment_exploded", channel = "http", meta = { url = "http://127.0.0.1/" } }, "type" },
                { { type = "appointment_created", channel = "sms", meta = {} }, "channel" },
                { { type = "appointment_created", channel = "http", meta = {} }, "meta.url" },
            }
            for _, c in ipairs(cases) do
                local status, r = api(sb, "POST", "/organizations/webhooks/", c[1])
                assert.equal(422, status)
                assert.truthy(r.errors[c[2]], c[2])
            end
            local status, r = api(sb, "POST", "/organizations/webhooks/",
                                  { type = "appointment_created", channel = "http", meta = { url = "not a url" } })
            assert.equal(422, status)
            assert.truthy(r.errors["meta.url"])
            status = api(sb, "POST", "/organizations/webhooks/",
                         { type = "appointment_created", channel = "email", meta = {} })
            assert.equal(201, status)
        end)

        it("counts against the same rate-limit budget as the appointments", function()
            local n200, n429 = 0, 0
            for i = 1, 8 do
                local status = api(sb, "GET", "/organizations/webhooks/")
                if status == 200 then n200 = n200 + 1 elseif status == 429 then n429 = n429 + 1 end
                status = api(sb, "DELETE", "/appointments/nope-" .. i)
                if status == 429 then n429 = n429 + 1 end
            end
            assert.equal(6, n200)       -- 12 a window, shared by both endpoints
            assert.equal(4, n429)
        end)

        it("accepts all 15 documented subscription types", function()
            sb = H.sandbox{}
            for _, t in ipairs{ "appointment_cancelled", "appointment_created", "appointment_finished",
                                "appointment_no_showed", "appointment_rescheduled",
                                "chat_consultation_finished", "immediate_video_call_assigned",
                                "message_unread", "patient_message_received", "prescription_created",
                                "professional_block_created", "professional_block_deleted",
                                "professional_block_updated", "report_created",
                                "triage_position_updated" } do
                subscribe(sb, t, "http://127.0.0.1:9/" .. t)
            end
            local _, r = api(sb, "GET", "/organizations/webhooks/")
            assert.equal(15, #r.data)
        end)
    end)

    describe("deliveries", function()
        it("signed with --webhook-secret, with meta.headers, shaped as the guide; twice with duplicates", function()
            local sb = start_sandbox("--webhook-secret spec-hook-secret --webhook-duplicates")
            local srv, port = listener()
            local hook = "http://127.0.0.1:" .. port .. "/hooks/in?x=1"
            subscribe(sb, "appointment_created", hook, { ["X-Tenant"] = "acme" })
            subscribe(sb, "appointment_rescheduled", hook)
            local code = H.uniq("dl")
            local url = book(sb, code)
            local a = accept(srv, 200)
            local b = accept(srv, 204)
            assert.equal("POST /hooks/in?x=1 HTTP/1.1", a.line)
            assert.equal("spec-hook-secret", a.headers["x-webhook-signature"])
            assert.equal("acme", a.headers["x-tenant"])
            assert.equal("application/json", a.headers["content-type"])
            assert.same(a.body, b.body)     -- the duplicate is the same event
            local ev = a.body
            assert.equal("patient_consultation_created", ev.type)
            assert.equal("number", type(ev.occurred_on))
            local c = ev.payload.consultation
            assert.equal(url, c.consultation_url)
            assert.equal("appointment", c.type)
            assert.equal("video", c.channel)
            assert.equal("2031-01-02T09:00:00Z", c.scheduled_start_date)
            assert.equal("2031-01-02T09:20:00Z", c.scheduled_end_date)
            assert.equal(json.null, c.previous_scheduled_start_date)
            assert.equal("PAT-" .. code, ev.payload.patient.code)
            assert.equal("prof-demo-1", ev.payload.professional.id)
            assert.equal("table", type(ev.payload.patient.allergies))

            local status, r = api(sb, "PUT", "/appointments/" .. code,
                                  { appointment = { starts_at = "2031-01-03T10:00:00Z" } })
            assert.equal(200, status)
            local re = accept(srv, 200)
            accept(srv, 200)
            assert.equal("patient_consultation_rescheduled", re.body.type)
            assert.equal(r.data.appointment.url, re.body.payload.consultation.consultation_url)
            assert.equal("2031-01-02T09:00:00Z", re.body.payload.consultation.previous_scheduled_start_date)
            assert.is_nil(re.headers["x-tenant"])
            srv:close()
            socket.sleep(0.3)
            local copies = {}
            for _, d in ipairs(deliveries(sb)) do
                copies[d.event] = (copies[d.event] or 0) + 1
                assert.equal(1, d.attempt)
                assert.equal(hook, d.url)
            end
            assert.same({ patient_consultation_created = 2, patient_consultation_rescheduled = 2 }, copies)
        end)

        it("finish and no_show deliver with a report and history; their rules", function()
            local sb = H.sandbox{}
            local srv, port = listener()
            local hook = "http://127.0.0.1:" .. port .. "/"
            subscribe(sb, "appointment_finished", hook)
            subscribe(sb, "appointment_no_showed", hook)
            local c1, c2 = H.uniq("fin"), H.uniq("ns")
            local u1 = book(sb, c1)
            book(sb, c2)
            assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. c1 .. "/finish")))
            local f = accept(srv, 200).body
            assert.equal("patient_consultation_finished", f.type)
            assert.equal(u1, f.payload.consultation.consultation_url)
            assert.equal("soap", f.payload.reports[1].type)
            assert.equal("string", type(f.payload.reports[1].content.assessment))
            assert.equal("table", type(f.payload.prescriptions[1].active_substances))
            assert.equal("string", type(f.payload.consultation.end_date))
            assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. c2 .. "/no_show")))
            local n = accept(srv, 200).body
            srv:close()
            assert.equal("patient_consultation_no_show", n.type)
            assert.equal(json.null, n.payload.consultation.start_date)
            -- finished is no longer live: no second finish, no cancel
            assert.equal(400, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. c1 .. "/finish")))
            assert.equal(400, (api(sb, "DELETE", "/appointments/" .. c1)))
            assert.equal(404, (H.http("POST", sb.url .. "/__sandbox/appointments/nope/no_show")))
            assert.equal(405, (H.http("GET", sb.url .. "/__sandbox/appointments/" .. c2 .. "/finish")))
        end)

        it("redelivers with backoff when not 2xx or not answered in 5 s, at most 5 more times", function()
            local sb = start_sandbox("--webhook-backoff-ms 200")
            -- nothing listens: every attempt fails to connect
            local dead = "http://127.0.0.1:" .. H.free_port() .. "/gone"
            subscribe(sb, "appointment_cancelled", dead)
            local code = H.uniq("retry")
            book(sb, code)
            assert.equal(200, (api(sb, "DELETE", "/appointments/" .. code)))
            -- backoff 0.2, 0.4, 0.8, 1.6, 3.2 s: all 6 attempts within ~7 s
            local list
            local deadline = socket.gettime() + 20
            repeat
                socket.sleep(0.25)
                list = deliveries(sb)
            until #list >= 6 or socket.gettime() > deadline
            socket.sleep(1)
            list = deliveries(sb)
            assert.equal(6, #list)
            table.sort(list, function(a, b) return a.attempt < b.attempt end)
            for i, d in ipairs(list) do
                assert.equal(i, d.attempt)
                assert.equal(0, d.status)
                assert.truthy(d.error:find("connect", 1, true))
            end
            for i = 3, 6 do   -- each wait at least the one before (doubling)
                assert.truthy(list[i].time - list[i - 1].time >= (list[i - 1].time - list[i - 2].time) * 0.9)
            end

            -- a receiver that answers 503 and then does not answer at all: both come again
            local srv, port = listener()
            local hook = "http://127.0.0.1:" .. port .. "/"
            subscribe(sb, "appointment_created", hook)
            local c2 = H.uniq("retry")
            book(sb, c2)
            accept(srv, 503)
            local silent = accept(srv, nil)     -- read, never answered
            socket.sleep(5.5)
            silent.conn:close()
            accept(srv, 200)
            srv:close()
            socket.sleep(0.3)
            local mine = {}
            for _, d in ipairs(deliveries(sb)) do
                if d.url == hook then mine[#mine + 1] = d end
            end
            table.sort(mine, function(a, b) return a.attempt < b.attempt end)
            assert.equal(3, #mine)
            assert.equal(503, mine[1].status)
            assert.equal(0, mine[2].status)
            assert.truthy(mine[2].error:find("no answer", 1, true))
            assert.equal(200, mine[3].status)
        end)

        it("delivers to loopback URLs only; reset clears the list and stops redeliveries", function()
            local sb = start_sandbox("--webhook-backoff-ms 1000")
            subscribe(sb, "appointment_created", "http://192.0.2.1/hook")
            subscribe(sb, "appointment_created", "https://127.0.0.1/hook")
            subscribe(sb, "appointment_created", "http://127.0.0.1:" .. H.free_port() .. "/dead")
            book(sb, H.uniq("lo"))
            socket.sleep(0.5)
            local list = deliveries(sb)
            assert.equal(3, #list)
            local refused = 0
            for _, d in ipairs(list) do
                if d.error and d.error:find("^refused") then refused = refused + 1 end
            end
            assert.equal(2, refused)
            assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/reset")))
            assert.same({}, deliveries(sb))
            socket.sleep(1.5)     -- the dead one's redelivery was due: it did not happen
            assert.same({}, deliveries(sb))
            local _, r = api(sb, "GET", "/organizations/webhooks/")
            assert.same({}, r.data)
        end)
    end)
end)
