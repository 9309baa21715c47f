-- mediquo.errors: the error objects every public call returns as `nil, err`.
-- A plain table with a stable `kind` a program can branch on, and a
-- __tostring that gives one line for people. Nothing secret ever goes in.

local core = require "mediquo.core"

local setmetatable = setmetatable
local getmetatable = getmetatable
local tostring = tostring
local format = string.format
local concat = table.concat

local _M = { _VERSION = core._VERSION }

-- kind -> retryable by default (the retry policy may say otherwise): the
-- one table of names, kept in C (src/policy.c) and exported as core.KINDS
local KINDS = core.KINDS
_M.KINDS = KINDS

local mt = {}

mt.__tostring = function(e)
    local parts = { "mediquo: ", e.kind }
    if e.status then parts[#parts + 1] = format(" (HTTP %d)", e.status) end
    if e.method then
        parts[#parts + 1] = format(" %s %s", e.method, e.path or "")
    end
    if e.message and e.message ~= "" then
        parts[#parts + 1] = ": " .. e.message
    end
    if e.retry_after then
        parts[#parts + 1] = format(" (retry after %.3gs)", e.retry_after)
    end
    if e.attempts and e.attempts > 1 and not (e.message and e.message:find("attempt", 1, true)) then
        parts[#parts + 1] = format(" after %d attempts", e.attempts)
    end
    return concat(parts)
end

-- new{kind=..., message=..., status=..., ...} -> error object
function _M.new(fields)
    local kind = fields.kind
    if KINDS[kind] == nil then
        error("mediquo.errors: unknown error kind " .. tostring(kind), 2)
    end
    if fields.retryable == nil then fields.retryable = KINDS[kind] end
    if fields.attempts == nil then fields.attempts = 0 end
    return setmetatable(fields, mt)
end

-- wrap(t) -> t made an error object: the plain table a call of the engine
-- returns (kind, status, message, retryable, retry_after, attempts, method,
-- path, fields, effect), already complete
function _M.wrap(t)
    return setmetatable(t, mt)
end

-- invalid(field, why) -> an invalid_argument error naming the field; for
-- "unknown field 'x' ..." field is where it was met and err.field is x
function _M.invalid(field, why)
    return _M.new{
        kind = "invalid_argument",
        message = field .. ": " .. why,
        field = why:match("^unknown field '([^']*)'") or field,
        retryable = false,
        attempts = 0,
        effect = "none",
    }
end

function _M.is_error(v)
    return getmetatable(v) == mt
end

return _M
