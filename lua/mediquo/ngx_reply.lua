-- mediquo.ngx_reply: the one mapping from a call's outcome to the HTTP
-- answer a gateway sends its caller (mediquo.ngx.reply). Nothing else in
-- the project maps error kinds to HTTP statuses.
--
--   success   200 (201 for a create) {"code","url"}; a cancel {"ok":true}
--   error     {"error": kind, "message", "field", "effect", ...} with a status
--             that says whose fault it is:
--               the caller's input   invalid_argument 400 (405 + Allow for a
--                                    wrong method), the API's 400 / 404 / 422
--                                    as they came, 409 for a code that
--                                    already exists (or is already cancelled)
--               the budget           rate_limited 429 + Retry-After
--               the upstream         502 (503 + Retry-After when it said
--                                    so, 504 for a timeout); also the API
--                                    refusing the gateway's own keys (401/403)
--               the gateway's setup  config 500, a generic body; the details
--                                    go to error.log only
--   headers   X-RateLimit-Limit / X-RateLimit-Remaining for the shared
--             budget on every answer (opts.headers = false leaves them out)
--
-- Messages reach the caller as the engine made them: the keys scrubbed
-- after JSON unescaping, bounded, valid UTF-8; no server path (those are
-- only in config messages, which never reach the caller).

local cjson = require "cjson.safe"
local ngx_log = require "mediquo.ngx_log"

local ngx = ngx
local type = type
local tostring = tostring
local ceil = math.ceil
local find = string.find
local lower = string.lower
local byte = string.byte
local encode = cjson.encode

local _M = { _VERSION = require("mediquo.core")._VERSION }

-- kind -> HTTP status (see above); anything unknown is the upstream's
local STATUS = {
    invalid_argument = 400,
    bad_request = 400,
    not_found = 404,
    unprocessable = 422,
    rate_limited = 429,
    unauthorized = 502,     -- the API refused the gateway's keys: not the caller's fault
    forbidden = 502,
    server_error = 502,
    network = 502,
    bad_response = 502,
    timeout = 504,
    config = 500,
}
_M.STATUS = STATUS

local CONFIG_MESSAGE = "the gateway is not set up right; its operator will find why in its error log"

-- status_of(err) -> HTTP status for an error object
local function status_of(err)
    local kind = err.kind
    if kind == "bad_request" then
        local m = lower(err.message or "")
        if find(m, "already exist", 1, true) or find(m, "already cancel", 1, true) then
            return 409
        end
        return 400
    end
    if kind == "invalid_argument" and err.allow then return 405 end
    if kind == "server_error" and err.status == 503 then return 503 end
    return STATUS[kind] or 502
end
_M.status_of = status_of

-- v is a string JSON takes between quotes as it is (the usual code and URL)
local function plain(v)
    if type(v) ~= "string" then return false end
    for i = 1, #v do        -- byte() compiles; a pattern find would not
        local c = byte(v, i)
        if c < 32 or c == 34 or c == 92 or c == 127 then return false end
    end
    return true
end

-- a JSON string: as it is when nothing needs escaping (and no "\/" as
-- cjson writes), else cjson's (valid JSON either way)
local function jstr(v)
    if plain(v) then return '"' .. v .. '"' end
    return encode(v) or "null"
end

-- the body of a create's or reschedule's answer: one string made (the
-- usual case), not one per field and then the whole
local function appointment_body(code, url)
    if plain(code) and plain(url) then
        return '{"code":"' .. code .. '","url":"' .. url .. '"}'
    end
    return '{"code":' .. jstr(code) .. ',"url":' .. jstr(url) .. '}'
end

local CT = "application/json"
local OK_CANCEL = '{"ok":true}'

-- the last limit sent and its text: the limit seldom changes, and a
-- number set as a header is made a string each time
local last_limit, last_limit_text

-- send(status, body, limit, remaining)
local function send(status, body, limit, remaining)
    ngx.status = status
    local h = ngx.header
    h.content_type = CT
    h.content_length = #body
    if limit then
        if limit ~= last_limit then
            last_limit, last_limit_text = limit, tostring(limit)
        end
        h["X-RateLimit-Limit"] = last_limit_text
        h["X-RateLimit-Remaining"] = remaining
    end
    ngx.print(body)
    return ngx.exit(status)
end

-- error_body(err) -> status, JSON text
function _M.error_body(err)
    local status = status_of(err)
    if status == 500 then
        -- the host's own setup: the caller learns nothing of the host
        return status, encode{ error = "config", message = CONFIG_MESSAGE,
                               effect = err.effect or "none" }
    end
    return status, encode{
        error = err.kind, message = err.message, field = err.field, effect = err.effect,
        status = err.status, attempts = err.attempts, retry_after = err.retry_after,
        fields = err.fields,
    }
end

-- reply(value, err, opts, created, limit, remaining): the answer, then
-- ngx.exit. created: value came from a create. limit/remaining: the budget
-- (nil: no header).
function _M.reply(value, err, opts, created, limit, remaining)
    if opts and opts.headers == false then limit = nil end
    if value ~= nil and value ~= false then
        if value == true then return send(200, OK_CANCEL, limit, remaining) end
        return send(created and 201 or 200, appointment_body(value.code, value.url),
                    limit, remaining)
    end
    if type(err) ~= "table" or not err.kind then
        ngx.log(ngx.ERR, "mediquo.ngx.reply: no value and no error object: ", tostring(err))
        return send(500, encode{ error = "config", message = CONFIG_MESSAGE, effect = "unknown" },
                    limit, remaining)
    end
    local status, body = _M.error_body(err)
    if status == 500 and not ngx_log.logged(err) then
        -- the details, for the operator: once per cause (then once a
        -- minute), and not again when the driver logged it (ngx_log.mark)
        ngx_log.fault(err.message or "?", "mediquo.ngx: ", tostring(err))
    end
    if status == 429 or (status == 503 and err.retry_after) then
        ngx.header["Retry-After"] = ceil(err.retry_after or 1)
    elseif status == 405 then
        ngx.header["Allow"] = err.allow
    end
    if status == 429 and limit then remaining = 0 end
    return send(status, body, limit, remaining)
end

return _M
