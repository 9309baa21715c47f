-- mediquo.ngx_body: reads what a gateway's caller sent into the fields of
-- a create, a reschedule or a cancel (mediquo.ngx.read). A JSON object
-- body, or form fields (application/x-www-form-urlencoded), over the
-- query string's arguments. Refusals are invalid_argument errors naming
-- the field (the body, a field given twice, a field of the wrong type), or
-- a wrong method (err.allow: mediquo.ngx.reply answers 405 with Allow).
-- A JSON null is a missing field. The values themselves are checked by the
-- engine, as for any call.

local cjson = require "cjson.safe"
local errors = require "mediquo.errors"

local ngx = ngx
local type = type
local tonumber = tonumber
local find = string.find
local sub = string.sub
local byte = string.byte
local decode = cjson.decode
local null = cjson.null
local json_fields = require("mediquo.core").json_fields
-- a table made with room for its fields (LuaJIT's table.new, which nginx's
-- Lua module has): filled key by key, a {} grows its hash part 1, 2, 4, 8
local has_new_tab, new_tab = pcall(require, "table.new")
if not has_new_tab then new_tab = function() return {} end end

local _M = { _VERSION = require("mediquo.core")._VERSION }

-- op -> { fields }, the methods it takes (Allow)
local FIELDS = {
    create = { "code", "starts_at", "patient", "professional", "duration" },
    reschedule = { "code", "starts_at" },
    cancel = { "code" },
}
local METHODS = {
    create = { POST = true, allow = "POST" },
    reschedule = { POST = true, PUT = true, allow = "POST, PUT" },
    cancel = { POST = true, DELETE = true, allow = "POST, DELETE" },
}

local function wrong_method(method, m)
    local e = errors.invalid("method", ("%s is not taken here: use %s"):format(method, m.allow))
    e.allow = m.allow
    return e
end

-- a form or query value: one string, or a number for duration and an
-- all-digits starts_at (Unix seconds)
local function form_value(name, v)
    if type(v) == "table" then
        return nil, errors.invalid(name, "given more than once")
    end
    if v == true then
        return nil, errors.invalid(name, "given without a value")
    end
    if v == "" then return nil end
    if name == "duration" or (name == "starts_at" and not find(v, "[^%d]")) then
        return tonumber(v) or v
    end
    return v
end

-- take_form(out, names, args) -> nil | err: the fields of names found in
-- args (query or form arguments) into out, each read by form_value
local function take_form(out, names, args)
    for i = 1, #names do
        local name = names[i]
        local v = args[name]
        if v ~= nil then
            local val, err = form_value(name, v)
            if err then return err end
            out[name] = val
        end
    end
end

-- where the JSON object of the body starts: its "{" after white space,
-- or nil (not JSON: form fields, or nothing we take)
local function json_start(data)
    for i = 1, #data do
        local c = byte(data, i)
        if c == 123 then return i end                               -- "{"
        if c ~= 32 and c ~= 9 and c ~= 10 and c ~= 13 then return nil end
    end
    return nil
end

-- read(op) -> fields | nil, err
-- fields: create { code, starts_at, patient, professional, duration },
-- reschedule { code, starts_at }, cancel { code }.
function _M.read(op)
    local names, m = FIELDS[op], METHODS[op]
    if not names then
        return nil, errors.invalid("op", "must be create, reschedule or cancel")
    end
    local req = ngx.req
    local method = req.get_method()
    if not m[method] then return nil, wrong_method(method, m) end

    -- the query string first, the body over it; out made when there is
    -- something to put in it
    local out
    if ngx.var.args then
        out = new_tab(0, #names)
        local aerr = take_form(out, names, req.get_uri_args(16))
        if aerr then return nil, aerr end
    end

    req.read_body()
    local data = req.get_body_data()
    if not data then
        if req.get_body_file() then
            return nil, errors.invalid("body", "too large (over client_body_buffer_size)")
        end
        return out or {}
    end
    -- a JSON object (whatever the Content-Type says: `curl -d '{...}'`
    -- sends application/x-www-form-urlencoded), else form fields
    local at = json_start(data)
    if not at then
        if not find(ngx.var.content_type or "", "application/x-www-form-urlencoded", 1, true) then
            return nil, errors.invalid("body", "must be a JSON object or form fields")
        end
        out = out or new_tab(0, #names)
        local ferr = take_form(out, names, req.get_post_args(16))
        if ferr then return nil, ferr end
        return out
    end
    -- fields that are not ours are ignored, as the API ignores them. The
    -- usual body is read in C (core.json_fields: op's members as cjson
    -- reads them, a null none); one it does not take (a member of ours
    -- that is an object or array, a raw control byte, ...) by cjson
    local t = json_fields(data, op)
    if t and not out then return t end
    if not t then
        t = decode(at == 1 and data or sub(data, at))
        if type(t) ~= "table" then
            return nil, errors.invalid("body", "is not a valid JSON object")
        end
    end
    out = out or new_tab(0, #names)
    for i = 1, #names do
        local name = names[i]
        local v = t[name]
        if v == null then v = nil end      -- a JSON null is a missing field
        if v ~= nil then out[name] = v end
    end
    return out
end

return _M
