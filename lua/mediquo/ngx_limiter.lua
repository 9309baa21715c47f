-- mediquo.ngx_limiter: how mediquo.ngx waits for a slot of the shared
-- rate limiter without blocking nginx: try, and while there is none, sleep
-- with ngx.sleep (the request's coroutine yields; the worker serves
-- others). The only place mediquo.ngx touches the limiter for admission.
--
--   local granted, waited, retry_after, fault = require("mediquo.ngx_limiter").wait(lim, max_wait[, redis])
--
-- lim is a core.limiter (lim:try() -> true | false, seconds until a slot
-- may be free [, fault: the state file is unusable, a host fault that no
-- wait mends]). Never waits past max_wait: when the next slot would come
-- later, it gives up at once and says when (retry_after). With redis (the
-- limiter's rate_limit.redis URL, lim opened with redis_cosocket) each try
-- may make its Redis round trip on a cosocket (mediquo.ngx_redis), bounded
-- by what is left of max_wait, except the call's first: whether the budget
-- has room now is asked whatever max_wait (0 too: asking is not waiting),
-- in one round trip of at most redis_timeout, or taken from the round trip
-- another request of the host has under way (the try answers 0, "again
-- now": again 1 ms later, for at most DECIDE_S, a round trip's time).

local core = require "mediquo.core"
local ngx_redis = require "mediquo.ngx_redis"

local ngx = ngx
local now = require("mediquo.ngx_clock")

local _M = { _VERSION = core._VERSION }

local MIN_SLEEP = 0.001
local DECIDE_S = 0.3                -- redis_timeout's default + 50 ms
local huge = math.huge

-- wait(lim, max_wait[, redis]) -> granted, waited (seconds slept), retry_after|nil, fault|nil,
--                                  at (granted: the limiter's admitted start time, ns)
function _M.wait(lim, max_wait, redis)
    local ok, wait, fault           -- ok: wait is the start time the limiter admitted
    if not redis then
        -- the usual case first: a local slot at once, no clock read
        ok, wait, fault = lim:try()
        if ok then return true, 0, nil, nil, wait end
    end
    local t0 = now()
    local slept = false
    local deciding = redis and true or false    -- the call's decision is still to come
    for _ = 1, 100000 do            -- bounded by max_wait; the count is a backstop
        if redis then
            local left = max_wait - (now() - t0)
            ok, wait, fault = ngx_redis.try(lim, deciding and huge or (left > 0 and left or 0), redis)
        elseif slept then           -- (the first try is above)
            ok, wait, fault = lim:try()
        end
        if ok then return true, slept and now() - t0 or 0, nil, nil, wait end
        if fault then return false, slept and now() - t0 or 0, nil, fault end
        local waited = now() - t0
        deciding = deciding and wait == 0 and waited < DECIDE_S
        if not deciding and waited + wait > max_wait then
            return false, slept and waited or 0, wait
        end
        ngx.sleep(wait > MIN_SLEEP and wait or MIN_SLEEP)
        slept = true
    end
    return false, now() - t0, nil
end

return _M
