-- examples/gateway.lua: the request handlers of examples/nginx.conf, a
-- booking gateway in front of the mediQuo API built on mediquo.ngx.
--
--   POST /book        {"code","starts_at","patient","professional","duration"?}
--                     -> 201 {"code","url"}
--   POST /reschedule  {"code","starts_at"} -> 200 {"code","url"}
--   POST /cancel      {"code"}             -> 200 {"ok":true}
--   GET  /metrics     Prometheus text (host-wide counters)
--   GET  /stats       this worker's counters
--   GET  /status      the operator's page (mediquo.ngx.status)
--   POST /mediquo/events       mediQuo's webhook deliveries (mediquo.ngx.receive):
--                     each event mapped back to its booking by consultation_url
--   GET  /mediquo/events/seen  what this gateway heard (type, booking code,
--                     patient code: never the payload's medical data)
--
-- The fields come as a JSON object, form fields or query arguments
-- (mediquo.ngx.read); every answer, and its status, is mediquo.ngx.reply's:
-- {"error": kind, "message", "field", "effect"} with 4xx for the caller's
-- input (409 for a code that exists), 429 + Retry-After for a spent budget,
-- 502/503/504 for the upstream, 500 for the gateway's own setup (details
-- in error.log only), and X-RateLimit-Limit / -Remaining on each.
-- luacheck: globals ngx

local mq = require "mediquo.ngx"
local cjson = require "cjson.safe"

local ngx = ngx

local _M = { _VERSION = "0.2.0" }

-- The webhook secret(s) mediQuo signs deliveries with: one, or several
-- comma-separated during a rotation ("new,old"). Read once, at start.
local function webhook_secrets()
    local v = os.getenv("MEDIQUO_WEBHOOK_SECRET")
    if not v or v == "" then return nil end
    local list = {}
    for s in v:gmatch("[^,]+") do list[#list + 1] = s end
    return list
end

-- consultation URL -> booking code, remembered when /book or /reschedule
-- returns it: how a webhook event finds its booking again (a real gateway
-- keeps this beside the booking in its own database). Only a gateway that
-- takes mediQuo's events (MEDIQUO_WEBHOOK_SECRET set) needs the map: one
-- without it answers every delivery 500, so it writes nothing (the write
-- is a shared-dict insert per booking, 2-6 us of worker CPU: see
-- docs/performance.md)
local secrets = webhook_secrets()
local takes_events = secrets ~= nil

local function remember(appt)
    local bookings = takes_events and ngx.shared.gateway_bookings
    if appt and bookings and appt.url then
        bookings:set(appt.url, appt.code, 30 * 86400)
    end
    return appt
end

function _M.book()
    local a, err = mq.read("create")
    if not a then return mq.reply(nil, err) end
    local appt, cerr = mq.create(a)
    return mq.reply(remember(appt), cerr)
end

function _M.reschedule()
    local a, err = mq.read("reschedule")
    if not a then return mq.reply(nil, err) end
    local appt, rerr = mq.reschedule(a.code, a.starts_at)
    return mq.reply(remember(appt), rerr)
end

function _M.cancel()
    local a, err = mq.read("cancel")
    if not a then return mq.reply(nil, err) end
    return mq.reply(mq.cancel(a.code))
end

function _M.metrics()
    local text, err = mq.metrics()
    if not text then return mq.reply(nil, err, { headers = false }) end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.print(text)
end

-- Webhooks ---------------------------------------------------------------

-- on_event(ev): what the gateway does with one event, called once per event
-- (redeliveries are answered by mediquo.ngx.receive without calling it).
-- consultation.consultation_url is the URL our /book or /reschedule
-- returned; payload.patient.code is the patient's code we booked with. The
-- payload also carries allergies, diseases, medications, reports and
-- prescriptions: keep them out of logs; here only the booking is touched.
function _M.on_event(ev)
    local p = ev.payload
    local c = type(p.consultation) == "table" and p.consultation or {}
    local url = type(c.consultation_url) == "string" and c.consultation_url or nil
    local bookings = ngx.shared.gateway_bookings
    local code = url and bookings and bookings:get(url)
    local patient = type(p.patient) == "table" and type(p.patient.code) == "string"
                    and p.patient.code or nil
    if not code then
        -- mediQuo may deliver "created" before /book has its answer and
        -- remembers the URL: answer 500 (receive does), so it comes again
        -- after a backoff, when the booking is known
        return nil, "booking not known yet"
    end
    -- here a real gateway marks the booking done / no-show / cancelled in
    -- its store; the example remembers what it heard, for /mediquo/events/seen
    local seen = ngx.shared.gateway_events
    if seen then
        local n, err = seen:incr("n", 1, 0)
        if not n then return nil, err end
        seen:set("e:" .. n, cjson.encode{
            id = ev.id, type = ev.type, occurred_on = ev.occurred_on,
            code = code, url = url, patient = patient or cjson.null,
        })
    end
    ngx.log(ngx.INFO, "gateway: ", ev.type, " for booking ", tostring(code))
    return true
end

-- one options table, checked once by mediquo.ngx.receive
local receive_opts = {
    secret = secrets,
    on_event = function(ev) return _M.on_event(ev) end,
    dedupe = 86400,
}

-- POST /mediquo/events
function _M.events()
    return mq.receive(receive_opts)
end

-- GET /mediquo/events/seen
function _M.events_seen()
    local seen = ngx.shared.gateway_events
    local out = {}
    for i = 1, seen and seen:get("n") or 0 do
        local e = seen:get("e:" .. i)
        if e then out[#out + 1] = cjson.decode(e) end
    end
    ngx.header["Content-Type"] = "application/json"
    if #out == 0 then return ngx.print("[]") end
    return ngx.print(cjson.encode(out))
end

-- this worker's own counters (mediquo.ngx.stats), for operators
function _M.stats()
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(mq.stats()))
end

return _M
