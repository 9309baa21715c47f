-- The fault queue: POST /__sandbox/faults pushes, each /v1/ request pops one.
-- A shared-dict list keeps the order FIFO and the pops atomic across workers.

local json = require "mediquo.sandbox.json"

local ngx = ngx
local type = type
local floor = math.floor

local _M = { _VERSION = "0.2.0" }

local KEY = "faults"
-- A bound on one POST, so a typo cannot fill the dict.
local MAX_NEXT = 100000
local MAX_HUGE = 1024 * 1024 * 1024

local dict

function _M.configure(dict_name)
    dict = ngx.shared[dict_name]
end

local function int(v, lo, hi)
    return type(v) == "number" and v == floor(v) and v >= lo and v <= hi
end

-- Each mode's own field check; nil when fine, a message otherwise.
local CHECK = {
    status = function(f)
        if not int(f.status, 100, 599) then
            return "status must be an integer HTTP status"
        end
    end,
    delay = function(f)
        if not int(f.ms, 0, 600000) then
            return "ms must be an integer number of milliseconds"
        end
        if f.process ~= nil and f.process ~= "before" and f.process ~= "after" then
            return 'process must be "before" or "after"'
        end
    end,
    reset = function() end,
    garbage = function() end,
    truncate = function() end,
    huge = function(f)
        if not int(f.bytes, 0, MAX_HUGE) then
            return "bytes must be an integer from 0 to " .. MAX_HUGE
        end
    end,
    ratelimit = function(f)
        if f.seconds ~= nil and not int(f.seconds, 0, 86400) then
            return "seconds must be an integer number of seconds"
        end
        if f.http_date ~= nil and type(f.http_date) ~= "boolean" then
            return "http_date must be true or false"
        end
    end,
}
CHECK.after = CHECK.status

-- Queues `next` copies of the fault. Returns the queue length, or nil and
-- a per-field error table for a 422.
function _M.push(f)
    if type(f) ~= "table" then
        return nil, { body = { "The body must be a JSON object." } }
    end
    local n = f.next
    if n == nil then
        n = 1
    end
    if not int(n, 1, MAX_NEXT) then
        return nil, { next = { "next must be an integer from 1 to " .. MAX_NEXT } }
    end
    local check = CHECK[f.mode]
    if not check then
        return nil, { mode = { "mode must be one of status, after, delay, "
                               .. "reset, garbage, truncate, huge, ratelimit" } }
    end
    local err = check(f)
    if err then
        return nil, { [f.mode] = { err } }
    end
    f.next = nil
    local s = json.encode(f)
    local len
    for _ = 1, n do
        local l, perr = dict:rpush(KEY, s)
        if not l then
            return nil, { next = { "cannot queue: " .. perr } }
        end
        len = l
    end
    return len
end

-- The fault for this request, or nil.
function _M.pop()
    local s = dict:lpop(KEY)
    if s then
        return json.decode(s)
    end
end

function _M.pending()
    return dict:llen(KEY) or 0
end

return _M
