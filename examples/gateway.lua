-- examples/gateway.lua: the request handlers of examples/nginx.conf, a
-- booking gateway in front of the mediQuo API built on mediquo.ngx.
--
--   POST /book        {"code","starts_at","patient","professional","duration"?}
--                     -> 200 {"code","url"}
--   POST /reschedule  {"code","starts_at"} -> 200 {"code","url"}
--   POST /cancel      {"code"}             -> 200 {"cancelled":true}
--   GET  /metrics     Prometheus text (host-wide counters)
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
        -- the limiter's faults (its file, Redis) mediquo.ngx logs itself,
        -- once per cause: not once per call
        if not find(err.message or "", "rate_limit: ", 1, true) then
            ngx.log(ngx.ERR, "gateway: ", tostring(err))
        end
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

function _M.book()
    local t = read_json()
    if not t then return end
    local appt, err = mq.create(t)
    if not appt then return fail(err) end
    return reply(200, appt)
end

function _M.reschedule()
    local t = read_json()
    if not t then return end
    local appt, err = mq.reschedule(t.code, t.starts_at)
    if not appt then return fail(err) end
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

-- this worker's own counters (mediquo.ngx.stats), for operators
function _M.stats()
    return reply(200, mq.stats())
end

return _M
