-- Fixed-window throttle per client IP, the way a typical framework counts:
-- the window opens at the client's first request and lasts `window` seconds.
-- Counters live in a shared dict so every worker sees one exact count.

local ngx = ngx
local ceil = math.ceil
local tostring = tostring

local _M = { _VERSION = "0.2.0" }

local dict
local limit, window = 600, 60

function _M.configure(dict_name, per_minute, window_seconds)
    dict = ngx.shared[dict_name]
    limit, window = per_minute, window_seconds
end

-- Counts one request. Returns limit, remaining, and when over the limit
-- also retry_after (whole seconds) and reset (epoch seconds of window end).
function _M.hit(ip)
    local now = ngx.now()
    local wkey = "w:" .. ip
    local start = dict:get(wkey)
    if not start then
        -- add() is atomic: of two workers opening the window at once, one
        -- wins and the other reads the winner's start.
        if dict:add(wkey, now, window) then
            start = now
        else
            start = dict:get(wkey) or now
        end
    end
    -- The counter's key carries the window start, so a new window can never
    -- inherit a count from the old one, whatever the expiry timing.
    local n = dict:incr("n:" .. ip .. ":" .. tostring(start), 1, 0, window + 1)
                or 1
    local remaining = limit - n
    if remaining >= 0 then
        return limit, remaining
    end
    local window_end = start + window
    local retry_after = ceil(window_end - now)
    if retry_after < 1 then
        retry_after = 1
    end
    return limit, 0, retry_after, ceil(window_end)
end

-- What the headers should say for a request that is not counted.
function _M.peek(ip)
    local start = dict:get("w:" .. ip)
    if not start then
        return limit, limit
    end
    local n = dict:get("n:" .. ip .. ":" .. tostring(start)) or 0
    local remaining = limit - n
    return limit, remaining > 0 and remaining or 0
end

return _M
