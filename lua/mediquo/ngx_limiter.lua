-- mediquo.ngx_limiter: how mediquo.ngx waits for a slot of the shared
-- rate limiter without blocking nginx: try, and while there is none, sleep
-- with ngx.sleep (the request's coroutine yields; the worker serves
-- others). The only place mediquo.ngx touches the limiter for admission.
--
--   local granted, waited, retry_after = require("mediquo.ngx_limiter").wait(lim, max_wait)
--
-- lim is a core.limiter (lim:try() -> true | false, seconds until a slot
-- may be free). Never waits past max_wait: when the next slot would come
-- later, it gives up at once and says when (retry_after).

local core = require "mediquo.core"

local ngx = ngx
local now = core.now

local _M = { _VERSION = "0.1.0" }

local MIN_SLEEP = 0.001

-- wait(lim, max_wait) -> granted, waited (seconds slept), retry_after|nil
function _M.wait(lim, max_wait)
    local t0 = now()
    local slept = false
    for _ = 1, 100000 do            -- bounded by max_wait; the count is a backstop
        local ok, wait = lim:try()
        if ok then return true, slept and now() - t0 or 0 end
        local waited = now() - t0
        if waited + wait > max_wait then
            return false, slept and waited or 0, wait
        end
        ngx.sleep(wait > MIN_SLEEP and wait or MIN_SLEEP)
        slept = true
    end
    return false, now() - t0, nil
end

return _M
