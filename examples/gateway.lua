-- examples/gateway.lua: the request handlers of examples/nginx.conf, a
-- booking gateway in front of the mediQuo API built on mediquo.ngx.
--
--   POST /book        {"code","starts_at","patient","professional","duration"?}
--                     -> 200 {"code","url"}
--   POST /reschedule  {"code","starts_at"} -> 200 {"code","url"}
--   POST /cancel      {"code"}             -> 200 {"cancelled":true}
--   GET  /metrics     Prometheus text (host-wide counters)
--   POST /mediquo/events       mediQuo's webhook deliveries (mediquo.ngx.receive):
--                     each event mapped back to its booking by consultation_url
--   GET  /mediquo/events/seen  what this gateway heard (type, booking code,
--                     patient code: never the payload's medical data)
--
-- Errors answer {"error":{"kind","message",...}} with a status that says
-- whose fault it is: the caller's (4xx), the upstream's (502/504), or the
-- gateway's own setup (kind "config": 500 with a generic message; the
-- details, which may name files on this host, go to error.log only).
-- Messages reach the caller as the engine made them: the keys scrubbed
-- after JSON unescaping, bounded, valid UTF-8.
-- luacheck: globals ngx

local mq = require "mediquo.ngx"
local cjson = require "cjson.safe"

local ngx = ngx
local type = type
local tostring = tostring
local ceil = math.ceil
local find = string.find
local lower = string.lower

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

local STATUS = {
    invalid_argument = 400,     -- the caller's input, refused before sending
    bad_request = 400,          -- e.g. unknown professional (409 for a duplicate code)
    unprocessable = 422,
    not_found = 404,
    rate_limited = 429,
    unauthorized = 502,         -- the gateway's keys: not the caller's fault
    forbidden = 502,
    server_error = 502,
    network = 502,
    bad_response = 502,
    timeout = 504,
    config = 500,               -- this gateway's own setup: never the caller's fault
}

local function reply(status, t)
    local body = cjson.encode(t)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(status)
end

local function fail(err)
    if err.kind == "config" then
        ngx.log(ngx.ERR, "gateway: ", tostring(err))
        return reply(500, { error = { kind = "config",
            message = "the gateway is not set up right; its operator will find why in its error log" } })
    end
    local status = STATUS[err.kind] or 502
    if err.kind == "bad_request" and find(lower(err.message or ""), "already exist", 1, true) then
        status = 409
    end
    if err.kind == "rate_limited" then
        ngx.header["Retry-After"] = ceil(err.retry_after or 1)
    end
    return reply(status, { error = {
        kind = err.kind, message = err.message, status = err.status,
        retry_after = err.retry_after, fields = err.fields, attempts = err.attempts,
        effect = err.effect,
    } })
end

local function invalid(message)
    return reply(400, { error = { kind = "invalid_argument", message = message, attempts = 0 } })
end

-- the JSON object in a POST body, or nil after answering the error
local function read_json()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        reply(405, { error = { kind = "invalid_argument", message = "use POST" } })
        return nil
    end
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    if not data then
        invalid("the body must be a JSON object (at most client_body_buffer_size)")
        return nil
    end
    local t = cjson.decode(data)
    if type(t) ~= "table" then
        invalid("the body must be a JSON object")
        return nil
    end
    return t
end

-- consultation URL -> booking code, remembered when /book or /reschedule
-- returns it: how a webhook event finds its booking again (a real gateway
-- keeps this beside the booking in its own database)
local function remember(appt)
    local bookings = ngx.shared.gateway_bookings
    if bookings and appt.url then
        bookings:set(appt.url, appt.code, 30 * 86400)
    end
end

function _M.book()
    local t = read_json()
    if not t then return end
    local appt, err = mq.create(t)
    if not appt then return fail(err) end
    remember(appt)
    return reply(200, appt)
end

function _M.reschedule()
    local t = read_json()
    if not t then return end
    local appt, err = mq.reschedule(t.code, t.starts_at)
    if not appt then return fail(err) end
    remember(appt)
    return reply(200, appt)
end

function _M.cancel()
    local t = read_json()
    if not t then return end
    local ok, err = mq.cancel(t.code)
    if not ok then return fail(err) end
    return reply(200, { cancelled = true })
end

function _M.metrics()
    local text, err = mq.metrics()
    if not text then return fail(err) end
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
    secret = webhook_secrets(),
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
    if #out == 0 then
        ngx.header["Content-Type"] = "application/json"
        return ngx.print("[]")
    end
    return reply(200, out)
end

-- this worker's own counters (mediquo.ngx.stats), for operators
function _M.stats()
    return reply(200, mq.stats())
end

return _M
