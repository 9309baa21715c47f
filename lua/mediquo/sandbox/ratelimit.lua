-- The sandbox's throttle per client IP, in one of two ways:
--  * fixed (the default): the way a typical framework counts, a window that
--    opens at the client's first request and lasts `window` seconds;
--  * sliding (--sliding): no `window` seconds ever hold more than `limit`
--    requests counted, whenever they start: the strictest server there is.
--    A log of the last `limit` counted times per IP (a ring in the shared
--    dict); a request is counted only when the one it would push out of the
--    log is at least `window` old, else it gets a 429 (and is not counted).
-- Counters live in a shared dict so every worker sees one exact count.

local ngx = ngx
local ceil = math.ceil
local floor = math.floor
local tostring = tostring

local _M = { _VERSION = "0.3.0" }

local dict
local limit, window, sliding = 600, 60, false

function _M.configure(dict_name, per_minute, window_seconds, sliding_window)
    dict = ngx.shared[dict_name]
    limit, window, sliding = per_minute, window_seconds, sliding_window and true or false
end

-- Fixed window: counts one request. Returns limit, remaining, and when over
-- the limit also retry_after (whole seconds) and reset (epoch seconds of
-- window end).
local function fixed_hit(ip, now)
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

-- Sliding log: "sk:IP" is how many were counted, "st:IP:i" the time of
-- counted request number k where i = k % limit, so the ring holds the last
-- `limit` of them in order.
local function slot_time(ip, k)
    return dict:get("st:" .. ip .. ":" .. (k % limit))
end

-- counted requests still in the window ending now, of the k so far: times
-- increase with k, so a binary search finds the oldest inside
local function in_window(ip, k, now)
    local lo, hi = (k > limit) and (k - limit) or 0, k
    while lo < hi do
        local mid = floor((lo + hi) / 2)
        local t = slot_time(ip, mid)
        if not t or now - t >= window then lo = mid + 1 else hi = mid end
    end
    return k - lo
end

-- The check and the record are one step: under a lock in the shared dict
-- when several workers count (one worker never yields between them).
local function lock(ip)
    local key = "lk:" .. ip
    for _ = 1, 500 do
        if dict:add(key, true, 0.05) then return key end
        ngx.sleep(0.001)
    end
    return nil              -- a holder gone: its lock expires by itself
end

local function sliding_hit(ip, now)
    local lk = lock(ip)
    local k = dict:get("sk:" .. ip) or 0
    local oldest = k >= limit and slot_time(ip, k - limit) or nil
    if oldest and now - oldest < window then
        if lk then dict:delete(lk) end
        local retry_after = ceil(oldest + window - now)
        if retry_after < 1 then
            retry_after = 1
        end
        return limit, 0, retry_after, ceil(oldest + window)
    end
    dict:set("st:" .. ip .. ":" .. (k % limit), now, window + 1)
    dict:set("sk:" .. ip, k + 1, window + 1)
    local remaining = limit - in_window(ip, k + 1, now)
    if lk then dict:delete(lk) end
    return limit, remaining > 0 and remaining or 0
end

-- Counts one request, at the time it is released (after any latency).
-- Returns limit, remaining, and when over the limit also retry_after
-- (whole seconds) and reset (epoch seconds when a request may count again).
function _M.hit(ip)
    ngx.update_time()
    local now = ngx.now()
    if sliding then
        return sliding_hit(ip, now)
    end
    return fixed_hit(ip, now)
end

-- What the headers should say for a request that is not counted.
function _M.peek(ip)
    if sliding then
        local k = dict:get("sk:" .. ip) or 0
        local remaining = limit - in_window(ip, k, ngx.now())
        return limit, remaining > 0 and remaining or 0
    end
    local start = dict:get("w:" .. ip)
    if not start then
        return limit, limit
    end
    local n = dict:get("n:" .. ip .. ":" .. tostring(start)) or 0
    local remaining = limit - n
    return limit, remaining > 0 and remaining or 0
end

return _M
