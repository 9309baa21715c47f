-- spec/52-webhooks_e2e_spec.lua: mediQuo's webhooks end to end, on real
-- nginx: the example gateway (examples/nginx.conf, mediquo.ngx.receive at
-- /mediquo/events) subscribed at the sandbox, which delivers the events of
-- bookings made through the gateway. Each event reaches on_event once, with
-- its type and the URL the gateway was given; a wrong signature, a replay,
-- a failing on_event, a second concurrent delivery, a GET, a body that is
-- not JSON and one over max_body are answered as API.md says; a gateway
-- without MEDIQUO_WEBHOOK_SECRET answers deliveries 500 and writes no
-- URL -> booking map (the one with it, an entry per booking); no log line
-- of either nginx holds the payload's medical data (and a deliberately
-- leaky handler shows the check would see it).
local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local socket = require "socket"

local json = H.json

local SECRET = "sandbox-webhook-secret"   -- the sandbox's default --webhook-secret
-- the made-up medical data of the sandbox's payloads (lua/mediquo/sandbox/webhooks.lua)
local MEDICAL = { "Sandbox-Penicillin", "Sandbox-Hypertension", "Sandbox-Enalapril",
                  "Sandbox-Subjective", "Sandbox-Assessment", "dextromethorphan",
                  "Sandbox-Reason" }

-- the gateway's config, with what only this spec needs: logs on (access
-- log, error log at info), a handler failing once per event, a slow one,
-- and a leaky one logging its payload to a log of its own
local function conf_with_spec_locations()
    return NH.conf_variant(function(c)
        c = c:gsub("access_log off;", "access_log @PREFIX@/logs/access.log;", 1)
        c = c:gsub("error_log @PREFIX@/logs/error.log warn;", "error_log @PREFIX@/logs/error.log info;", 1)
        c = c:gsub("lua_shared_dict gateway_events 1m;", [[lua_shared_dict gateway_events 1m;
    lua_shared_dict spec_dedupe 1m;
    lua_shared_dict spec_counts 1m;]], 1)
        return (c:gsub("(location = /health)", [[location = /spec/flaky {
            content_by_lua_block {
                local d = ngx.shared.spec_counts
                require("mediquo.ngx").receive{ secret = "]] .. SECRET .. [[", dict = "spec_dedupe",
                    on_event = function(ev)
                        if d:add("failed:" .. ev.id, true) then return nil, "spec: failing once" end
                        d:incr("flaky", 1, 0)
                        return true
                    end }
            }
        }
        location = /spec/slow {
            content_by_lua_block {
                local d = ngx.shared.spec_counts
                require("mediquo.ngx").receive{ secret = "]] .. SECRET .. [[", dict = "spec_dedupe",
                    on_event = function(ev) ngx.sleep(1.5); d:incr("slow", 1, 0); return true end }
            }
        }
        location = /spec/leaky {
            error_log @PREFIX@/logs/leaky.log info;
            content_by_lua_block {
                require("mediquo.ngx").receive{ secret = "]] .. SECRET .. [[", dedupe = 0,
                    on_event = function(ev)
                        ngx.log(ngx.INFO, "leaky: ", require("cjson").encode(ev.payload))
                        return true
                    end }
            }
        }
        location = /spec/prebuffered {
            lua_need_request_body on;
            content_by_lua_block {
                require("mediquo.ngx").receive{ secret = "]] .. SECRET .. [[", dedupe = 0,
                    on_event = function(ev) return true end }
            }
        }
        location = /spec/bookings {
            content_by_lua_block { ngx.say(#ngx.shared.gateway_bookings:get_keys(0)) }
        }
        location = /spec/counts {
            content_by_lua_block {
                local d = ngx.shared.spec_counts
                ngx.say(require("cjson").encode{ flaky = d:get("flaky") or 0, slow = d:get("slow") or 0 })
            }
        }
        %1]], 1))
    end)
end

local function read(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

describe("webhooks end to end (gateway on nginx + sandbox deliveries)", function()
    local sb, gw, conf

    setup(function()
        sb = H.sandbox{ workers = 2 }
        conf = conf_with_spec_locations()
        -- a rotation in progress: the gateway accepts the new and the old secret
        gw = NH.gateway(sb, { workers = 2, conf = conf,
                              env = { MEDIQUO_WEBHOOK_SECRET = "rotated-new-secret," .. SECRET } })
    end)

    teardown(function()
        if gw then gw:stop() end
        if conf then os.remove(conf) end
    end)

    -- subscribed through the library (client:subscribe, the engine)
    local function subscribe(typ, url)
        local c = H.client({ base_url = sb.base_url, rate_limit = false })
        local s, err = c:subscribe{ type = typ, url = url, headers = { ["X-Tenant"] = "spec" } }
        c:close()
        assert.truthy(s, tostring(err))
        return s
    end

    local function seen()
        local status, body = gw:get("/mediquo/events/seen")
        assert.equal(200, status)
        return json.decode(body)
    end

    -- polls until f() is true (bounded), then returns its last value
    local function eventually(f, seconds)
        local deadline = socket.gettime() + (seconds or 30)
        local v
        repeat
            v = f()
            if v then return v end
            socket.sleep(0.1)
        until socket.gettime() > deadline
        return v
    end

    local function deliveries()
        local status, body = H.http("GET", sb.url .. "/__sandbox/deliveries")
        assert.equal(200, status)
        return json.decode(body)
    end

    local function post_event(path, body, sig)
        return H.http("POST", gw.url .. path, body, {
            ["Content-Type"] = "application/json", ["x-webhook-signature"] = sig })
    end

    -- a hand-made event about a booking the gateway made (its URL is the
    -- link), after the sandbox's own "created" for it was handled
    local function event_body(code, typ)
        local before = #seen()
        local status, r = gw:post("/book", { code = code, starts_at = "2031-03-10T10:00:00Z",
                                             patient = "P-" .. code, professional = "prof-demo-1" })
        assert.equal(201, status)
        assert.truthy(eventually(function() return #seen() == before + 1 end), "created not handled")
        return json.encode{ type = typ or "patient_consultation_finished", occurred_on = os.time(),
                            payload = { consultation = { id = code, consultation_url = r.url },
                                        patient = { code = "P-" .. code } } }
    end

    it("delivers create, reschedule, cancel, finish and no-show once each, mapped to the booking", function()
        local hook = gw.url .. "/mediquo/events"
        for _, t in ipairs{ "appointment_created", "appointment_rescheduled", "appointment_cancelled",
                            "appointment_finished", "appointment_no_showed" } do
            subscribe(t, hook)
        end
        local function book(code, patient)
            local status, r = gw:post("/book", { code = code, starts_at = "2031-03-10T10:00:00Z",
                                                 patient = patient, professional = "prof-demo-1" })
            assert.equal(201, status)
            return r.url
        end
        local base = H.uniq("wh")
        local c1, c2, c3, c4 = base .. "-1", base .. "-2", base .. "-3", base .. "-4"
        local u1 = book(c1, "P1")
        local status, r = gw:post("/reschedule", { code = c1, starts_at = "2031-03-11T10:00:00Z" })
        assert.equal(200, status)
        local u1b = r.url
        assert.not_equal(u1, u1b)
        local u2 = book(c2, "P2")
        assert.equal(200, (gw:post("/cancel", { code = c2 })))
        local u3 = book(c3, "P3")
        assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. c3 .. "/finish")))
        local u4 = book(c4, "P4")
        assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. c4 .. "/no_show")))

        local expected = {
            { "patient_consultation_created", c1, u1, "P1" },
            { "patient_consultation_rescheduled", c1, u1b, "P1" },
            { "patient_consultation_created", c2, u2, "P2" },
            { "patient_consultation_cancelled", c2, u2, "P2" },
            { "patient_consultation_created", c3, u3, "P3" },
            { "patient_consultation_finished", c3, u3, "P3" },
            { "patient_consultation_created", c4, u4, "P4" },
            { "patient_consultation_no_show", c4, u4, "P4" },
        }
        local list = eventually(function()
            local l = seen()
            return #l >= #expected and l
        end)
        assert.is_truthy(list, "not every event reached on_event")
        socket.sleep(1.5)   -- nothing more comes (no second call for any of them)
        list = seen()
        assert.equal(#expected, #list)
        for _, e in ipairs(expected) do
            local n = 0
            for _, got in ipairs(list) do
                if got.type == e[1] and got.code == e[2] then
                    n = n + 1
                    assert.equal(e[3], got.url)       -- the URL /book or /reschedule returned
                    assert.equal(e[4], got.patient)   -- the patient code booked with
                    assert.equal(64, #got.id)
                end
            end
            assert.equal(1, n, e[1] .. " " .. e[2])
        end
        -- every delivery ended answered 200; only a "created" or a
        -- "rescheduled" may have needed another attempt (it can arrive
        -- before /book or /reschedule remembered its new URL: the example
        -- answers 500 so it comes again)
        local last = {}
        for _, d in ipairs(deliveries()) do
            local k = d.subscription .. d.body_md5
            if not last[k] or d.attempt > last[k].attempt then last[k] = d end
            if d.status ~= 200 then
                assert.equal(500, d.status)
                assert.truthy(d.event == "patient_consultation_created"
                              or d.event == "patient_consultation_rescheduled", d.event)
            end
        end
        local n = 0
        for _, d in pairs(last) do
            n = n + 1
            assert.equal(200, d.status)
        end
        assert.equal(#expected, n)
    end)

    it("a wrong signature is 401 and never handled; the same body signed right is", function()
        local body = event_body(H.uniq("sig"))
        local before = #seen()
        assert.equal(401, (post_event("/mediquo/events", body, "not-the-secret")))
        assert.equal(401, (post_event("/mediquo/events", body, nil)))
        assert.equal(401, (post_event("/mediquo/events", body, SECRET .. "x")))
        assert.equal(before, #seen())
        -- the old secret of the rotation still passes
        assert.equal(200, (post_event("/mediquo/events", body, SECRET)))
        assert.equal(before + 1, #seen())
    end)

    it("the same body replayed answers 200 twice and is handled once", function()
        local body = event_body(H.uniq("replay"))
        local before = #seen()
        assert.equal(200, (post_event("/mediquo/events", body, "rotated-new-secret")))
        assert.equal(200, (post_event("/mediquo/events", body, SECRET)))
        assert.equal(before + 1, #seen())
    end)

    it("on_event failing once answers 500; the sandbox delivers again and it is handled once", function()
        local flaky = gw.url .. "/spec/flaky"
        local sub = subscribe("appointment_created", flaky)
        local code = H.uniq("flaky")
        assert.equal(201, (gw:post("/book", { code = code, starts_at = "2031-03-10T10:00:00Z",
                                              patient = "P9", professional = "prof-demo-1" })))
        local attempts = eventually(function()
            local a = {}
            for _, d in ipairs(deliveries()) do
                if d.subscription == sub.id then a[#a + 1] = d end
            end
            return #a >= 2 and a
        end)
        assert.is_truthy(attempts, "no redelivery")
        table.sort(attempts, function(a, b) return a.attempt < b.attempt end)
        assert.equal(500, attempts[1].status)
        assert.equal(200, attempts[2].status)
        assert.equal(2, attempts[2].attempt)
        socket.sleep(1)
        local _, counts = gw:get("/spec/counts")
        assert.equal(1, json.decode(counts).flaky)
        assert.equal(2, #attempts)
    end)

    it("two concurrent deliveries of one event: one handles it, the other gets 409 and comes again", function()
        local body = event_body(H.uniq("slow"))
        local req = ("POST /spec/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     .. "x-webhook-signature: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
                    :format(SECRET, #body, body)
        local s1 = assert(socket.connect("127.0.0.1", gw.port))
        local s2 = assert(socket.connect("127.0.0.1", gw.port))
        s1:settimeout(10)
        s2:settimeout(10)
        assert(s1:send(req))
        socket.sleep(0.3)
        assert(s2:send(req))
        local l2 = s2:receive("*l")
        local l1 = s1:receive("*l")
        s1:close()
        s2:close()
        assert.equal("HTTP/1.1 200 OK", l1)
        assert.equal("409", l2:match("^HTTP/1%.1 (%d+)"))
        -- the redelivery after the first finished is answered 200, not run again
        assert.equal(200, (post_event("/spec/slow", body, SECRET)))
        local _, counts = gw:get("/spec/counts")
        assert.equal(1, json.decode(counts).slow)
    end)

    it("a body nginx already read (lua_need_request_body on) is taken from nginx", function()
        local body = event_body(H.uniq("pre"))
        assert.equal(200, (post_event("/spec/prebuffered", body, SECRET)))
        assert.equal(401, (post_event("/spec/prebuffered", body, "wrong")))
        assert.equal(400, (post_event("/spec/prebuffered", "[1]", SECRET)))
    end)

    it("GET is 405 (Allow: POST), a body that is not JSON 400, one over max_body 413 unread", function()
        local status, _, headers = gw:get("/mediquo/events")
        assert.equal(405, status)
        assert.equal("POST", headers.allow)
        assert.equal(400, (post_event("/mediquo/events", "not json at all", SECRET)))
        assert.equal(400, (post_event("/mediquo/events", '{"type":"x","payload":{}}', SECRET)))
        -- Content-Length over 1 MiB: answered before the body is sent
        local s = assert(socket.connect("127.0.0.1", gw.port))
        s:settimeout(5)
        local t0 = socket.gettime()
        assert(s:send("POST /mediquo/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1500000\r\n"
                      .. "x-webhook-signature: " .. SECRET .. "\r\n\r\n{\"type\":"))
        local line = s:receive("*l")
        local took = socket.gettime() - t0
        local rest, _, partial = s:receive("*a")   -- nginx may reset: the rest is unread
        rest = rest or partial or ""
        s:close()
        assert.equal("HTTP/1.1 413 Request Entity Too Large", line)
        assert.truthy(rest:lower():find("connection: close", 1, true))
        assert.truthy(took < 3, "413 came only after " .. took .. " s")
    end)

    it("a gateway without MEDIQUO_WEBHOOK_SECRET answers deliveries 500 and writes no URL map", function()
        local function entries(g)
            local status, body = g:get("/spec/bookings")
            assert.equal(200, status)
            return tonumber(body)
        end
        local function book(g, code)
            local status, r = g:post("/book", NH.booking(code))
            assert.equal(201, status)
            return r
        end
        -- the gateway taking webhooks: one more entry per booking
        local before = entries(gw)
        book(gw, NH.fresh("map"))
        assert.equal(before + 1, entries(gw))
        -- one without a secret: /book as usual, no entry, deliveries refused
        local gw0 = NH.gateway(sb, { workers = 1, conf = conf })
        local ok, err = pcall(function()
            book(gw0, NH.fresh("nomap"))
            assert.equal(0, entries(gw0))
            local status, body = H.http("POST", gw0.url .. "/mediquo/events",
                                        json.encode{ type = "patient_consultation_finished", payload = {} },
                                        { ["Content-Type"] = "application/json",
                                          ["x-webhook-signature"] = SECRET })
            assert.equal(500, status)
            assert.matches("receiver misconfigured", body)
        end)
        gw0:stop()
        assert(ok, err)
    end)

    it("no log line of either nginx holds the payload's medical data", function()
        -- the control: a handler that logs its payload puts the words in its log
        local leaky = gw.url .. "/spec/leaky"
        subscribe("appointment_finished", leaky)
        local code = H.uniq("leak")
        assert.equal(201, (gw:post("/book", { code = code, starts_at = "2031-03-10T10:00:00Z",
                                              patient = "P7", professional = "prof-demo-1" })))
        assert.equal(200, (H.http("POST", sb.url .. "/__sandbox/appointments/" .. code .. "/finish")))
        local leaked = eventually(function()
            return read(gw.prefix .. "/logs/leaky.log"):find("Sandbox-Penicillin", 1, true)
        end, 15)
        assert.is_truthy(leaked, "the control handler's log never showed the payload")

        local logs = {
            gateway_error = read(gw.prefix .. "/logs/error.log"),
            gateway_access = read(gw.prefix .. "/logs/access.log"),
            sandbox_error = read(sb.prefix .. "/logs/error.log"),
        }
        assert.truthy(#logs.gateway_access > 0)
        assert.truthy(logs.gateway_error:find("on_event failed", 1, true))   -- the flaky one, logged
        for name, text in pairs(logs) do
            for _, word in ipairs(MEDICAL) do
                assert.is_nil(text:find(word, 1, true), word .. " in " .. name)
            end
        end
    end)
end)
