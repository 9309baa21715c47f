-- mediquo.validate: checks every argument before anything is sent, and says
-- which field is wrong. Values are never echoed in messages: a secret passed
-- in the wrong place must not end up in an error.

local core = require "mediquo.core"
local errors = require "mediquo.errors"

local type = type
local tostring = tostring
local floor = math.floor
local huge = math.huge

local invalid = errors.invalid

local _M = { _VERSION = core._VERSION }

local function is_integer(v)
    return type(v) == "number" and v == v and v > -huge and v < huge and floor(v) == v
end
_M.is_integer = is_integer

local function is_finite(v)
    return type(v) == "number" and v == v and v > -huge and v < huge
end

-- The checks and their messages live in C (src/lcheck.c), shared with
-- client:create, which runs them without coming back to Lua.
local check_text, check_fields = core.check_text, core.check_fields

-- A text field: non-empty string, bounded, no control characters, UTF-8.
-- Returns v and whether it may go into a JSON string as it is.
function _M.text(field, v, max)
    local ok, x = check_text(v, max)    -- max nil: C's 255 for identifiers
    if not ok then return nil, invalid(field, x) end
    return v, x
end

-- Checks that t is a table with only the allowed keys (string keys with a
-- true value in allowed).
function _M.fields(field, t, allowed)
    local ok, why = check_fields(t, allowed)
    if not ok then return nil, invalid(field, why) end
    return t
end

function _M.number(field, v, def, min)
    if v == nil then return def end
    if not is_finite(v) or v <= (min or 0) then
        return nil, invalid(field, "must be a number > " .. tostring(min or 0))
    end
    return v
end

function _M.boolean(field, v, def)
    if v == nil then return def end
    if type(v) ~= "boolean" then
        return nil, invalid(field, "must be a boolean, got " .. type(v))
    end
    return v
end

-- base_url -> { scheme, host, port, path, url } | nil, err: one parser,
-- libcurl's (src/baseurl.c), which the engine uses too
local check_base_url = core.check_base_url
function _M.base_url(v, insecure)
    local u, why = check_base_url(v, insecure)
    if not u then return nil, invalid("base_url", why) end
    return u
end

return _M
