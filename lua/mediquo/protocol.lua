-- mediquo.protocol: the API's wire format, with no transport in it. Builds
-- the request for an operation (after validating every field) and turns
-- what came back into a value or an error object. The blocking client, the
-- nginx adapter and batches all go through here, so they agree exactly.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"
local cjson = require "cjson.safe"

local type = type
local pairs = pairs
local ipairs = ipairs
local lower = string.lower
local find = string.find
local sub = string.sub

local json = cjson.new()
json.decode_max_depth(64)
json.encode_max_depth(16)

local _M = { _VERSION = "0.1.0" }

local create_request = core.create_request

-- build(op, a, b) -> req | nil, err
--   create: a = fields table; reschedule: a = code, b = starts_at; cancel: a = code
-- The create body is checked and written in C (core.create_request, the
-- same code client:create runs); the field names and messages are those of
-- mediquo.validate.
function _M.build(op, a, b)
    local v = validate
    if op == "create" then
        local body, starts_at, why = create_request(a)
        if not body then return nil, errors.invalid(starts_at, why) end
        return { op = op, method = "POST", path = "/appointments", body = body,
                 code = a.code, starts_at = starts_at }
    elseif op == "reschedule" then
        local code, err = v.code("code", a)
        if not code then return nil, err end
        local starts_at
        starts_at, err = v.starts_at("starts_at", b)
        if not starts_at then return nil, err end
        return { op = op, method = "PUT", path = "/appointments/" .. core.urlenc(code),
                 body = json.encode{ appointment = { starts_at = starts_at } },
                 code = code, starts_at = starts_at }
    elseif op == "cancel" then
        local code, err = v.code("code", a)
        if not code then return nil, err end
        return { op = op, method = "DELETE", path = "/appointments/" .. core.urlenc(code),
                 code = code }
    end
    return nil, errors.invalid("op", "must be create, reschedule or cancel")
end

-- A server string made safe to show: bounded, control characters and
-- invalid UTF-8 replaced.
local function clean(s)
    if type(s) ~= "string" then return nil end
    if #s > 512 then s = sub(s, 1, 512) .. "..." end
    s = s:gsub("[%z\1-\31\127]", " ")
    if not validate.utf8_ok(s) then s = s:gsub("[\128-\255]", "?") end
    return s
end

local function field_messages(t)
    if type(t) ~= "table" then return nil end
    local out, n = {}, 0
    for k, list in pairs(t) do
        if type(k) == "string" and n < 64 then
            local msgs = {}
            if type(list) == "table" then
                for _, m in ipairs(list) do
                    if type(m) == "string" and #msgs < 16 then msgs[#msgs + 1] = clean(m) end
                end
            elseif type(list) == "string" then
                msgs[1] = clean(list)
            end
            out[clean(k)] = msgs
            n = n + 1
        end
    end
    return out
end

local function appointment_of(body)
    local doc = json.decode(body)
    local a = type(doc) == "table" and type(doc.data) == "table" and doc.data.appointment
    if type(a) == "table" and type(a.code) == "string" and type(a.url) == "string" then
        return { code = a.code, url = a.url }
    end
    return nil
end

-- the server's words contain this (case-insensitive)?
local function says(msg, what)
    return type(msg) == "string" and find(lower(msg), what, 1, true) ~= nil
end

-- shape(req, base_path, kind, status, body, attempts, ambiguous_before,
--       retry_after, message) -> value | nil, err [, "confirm"]
--
-- A third return "confirm" asks the caller to confirm a create through a
-- reschedule to the same start (see reconcile in the README): the create
-- reached the server on an earlier attempt and this one says it exists.
function _M.shape(req, base_path, kind, status, body, attempts, ambiguous,
                  retry_after, message)
    if kind == "ok" then
        if req.op == "cancel" then
            local doc = json.decode(body)
            if type(doc) == "table" then return true end
        else
            local a = appointment_of(body)
            if a then return a end
        end
        kind = "bad_response"
        message = "the " .. status .. " answer is not the documented JSON"
    end

    local fields
    if status then
        local doc = json.decode(body)
        if type(doc) == "table" then
            if type(doc.message) == "string" then message = doc.message end
            if kind == "unprocessable" then fields = field_messages(doc.errors) end
        end
        if ambiguous and kind == "bad_request" then
            if req.op == "create" and says(message, "already exist") then
                return nil, nil, "confirm"
            elseif req.op == "cancel" and says(message, "already cancel") then
                return true
            end
        end
    end

    -- "may trying again later succeed": by kind, but a certificate problem
    -- will not fix itself
    local retryable = errors.KINDS[kind]
    if kind == "network" and (says(message, "certificate") or says(message, "ssl")) then
        retryable = false
    end
    return nil, errors.new{
        kind = kind,
        status = status,
        message = clean(message) or kind,
        retryable = retryable,
        retry_after = retry_after,
        attempts = attempts,
        method = req.method,
        path = base_path .. req.path,
        fields = fields,
    }
end

return _M
