-- mediquo.webhook: receiving mediQuo's webhook deliveries from any Lua host.
--
--   local ev, err = require("mediquo.webhook").parse{
--       headers = t, body = s,
--       secret = "..." or { "current", "previous" },   -- rotation
--       header = "x-webhook-signature", max_body = 1048576 }
--   -- ev = { type, occurred_on, payload, id }  (id: SHA-256 of the body)
--
-- The size bound and the signature's constant-time comparison are C's
-- (src/webhook.c, core.webhook_check); the body is read by cjson. The
-- order is fixed: size (too_large), signature (unauthorized), then JSON and
-- the envelope (invalid_argument). No error message ever quotes the body
-- or a secret: payloads hold health data.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local cjson = require("cjson.safe").new()

local type = type
local pairs = pairs
local lower = string.lower
local floor = math.floor
local unpack = table.unpack or unpack   -- luacheck: ignore 143

local _M = { _VERSION = core._VERSION }

_M.MAX_BODY = 1048576
_M.HEADER = "x-webhook-signature"
local MAX_SECRETS = 8

cjson.decode_max_depth(64)
cjson.decode_invalid_numbers(false)

local function fail(kind, message, field)
    return nil, errors.new{ kind = kind, message = message, field = field,
                            retryable = false, attempts = 0, effect = "none" }
end

-- the accepted secrets as a list, or nil, err (invalid_argument)
local function secrets_of(s)
    if type(s) == "string" then
        if s == "" then return nil, errors.invalid("secret", "must not be empty") end
        return { s }
    end
    if type(s) ~= "table" then
        return nil, errors.invalid("secret", "must be a string or a list of strings, got "
                                   .. type(s))
    end
    local n = #s
    if n < 1 or n > MAX_SECRETS then
        return nil, errors.invalid("secret", "must list 1 to " .. MAX_SECRETS .. " secrets")
    end
    for i = 1, n do
        if type(s[i]) ~= "string" or s[i] == "" then
            return nil, errors.invalid("secret", "entry " .. i .. " must be a non-empty string")
        end
    end
    return s
end
_M.secrets_of = secrets_of

-- the header's value, found whatever its case; a repeated header (a list)
-- counts as none: a signature is one value
local function header_value(headers, name)
    local v = headers[name]
    if v == nil then
        for k, hv in pairs(headers) do
            if type(k) == "string" and lower(k) == name then
                v = hv
                break
            end
        end
    end
    if type(v) ~= "string" then return nil end
    return v
end

-- check(o) -> normalised options | nil, err (the part of parse that does
-- not depend on the body: mediquo.ngx.receive checks once at set-up)
function _M.options(o)
    if type(o) ~= "table" then
        return nil, errors.invalid("opts", "must be a table, got " .. type(o))
    end
    local list, err = secrets_of(o.secret)
    if not list then return nil, err end
    local header = o.header
    if header == nil then header = _M.HEADER end
    if type(header) ~= "string" or header == "" then
        return nil, errors.invalid("header", "must be a non-empty string")
    end
    local max_body = o.max_body
    if max_body == nil then max_body = _M.MAX_BODY end
    if type(max_body) ~= "number" or max_body < 1 or max_body ~= floor(max_body)
       or max_body > 1073741824 then
        return nil, errors.invalid("max_body", "must be an integer from 1 to 1073741824")
    end
    return { secrets = list, header = lower(header), max_body = max_body }
end

-- verify(opts, headers, body) -> event | nil, err, with opts from options()
function _M.verify(opts, headers, body)
    if type(headers) ~= "table" then
        return nil, errors.invalid("headers", "must be a table, got " .. type(headers))
    end
    if type(body) ~= "string" then
        return nil, errors.invalid("body", "must be a string, got " .. type(body))
    end
    local sig = header_value(headers, opts.header)
    local id, kind, msg = core.webhook_check(opts.max_body, body, sig, unpack(opts.secrets))
    if not id then
        if kind == "unauthorized" then
            msg = opts.header .. (sig and ": does not match the secret" or ": header missing")
            return fail(kind, msg, opts.header)
        end
        return fail(kind, msg, "body")
    end
    local t = cjson.decode(body)
    if type(t) ~= "table" then
        return fail("invalid_argument", "body: not a JSON object", "body")
    end
    local typ, occurred, payload = t.type, t.occurred_on, t.payload
    if type(typ) ~= "string" or typ == "" or #typ > 128 or typ:find("[^%w_.%-]") then
        return fail("invalid_argument", "type: must be an event name", "type")
    end
    if type(occurred) ~= "number" or occurred ~= floor(occurred) or occurred < 0 then
        return fail("invalid_argument", "occurred_on: must be Unix seconds", "occurred_on")
    end
    if type(payload) ~= "table" then
        return fail("invalid_argument", "payload: must be a JSON object", "payload")
    end
    return { type = typ, occurred_on = occurred, payload = payload, id = id }
end

-- result(op, v) -> what a subscription operation returns, from the
-- engine's success (its answer's JSON, already judged by the engine):
-- webhooks -> the list; subscribe, update_subscription -> the subscription
-- { id, type, channel, meta = { url, headers } }; unsubscribe -> true
function _M.result(op, v)
    if type(v) ~= "string" then return v end
    local t = cjson.decode(v)
    if type(t) ~= "table" then return {} end
    if op == "webhooks" then
        return type(t.data) == "table" and t.data or {}
    end
    -- {"data":{...}}, or the object itself for a subscribe settled by listing
    return type(t.data) == "table" and t.data or t
end

-- parse{ headers, body, secret, header, max_body } -> event | nil, err
function _M.parse(o)
    local opts, err = _M.options(o)
    if not opts then return nil, err end
    return _M.verify(opts, o.headers, o.body)
end

return _M
