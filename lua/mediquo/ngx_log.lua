-- mediquo.ngx_log: a host setup fault in error.log once per worker per
-- cause, then at most once a minute. Every call that needs the broken
-- piece fails `config` while the fault lasts, so the log must not grow with
-- the traffic; the driver (a limiter fault as it happens) and
-- mediquo.ngx.reply (the call's config answer) share this one memory, so a
-- cause the driver logged is not logged again by reply.
local ngx = ngx
local pairs = pairs
local find = string.find

local _M = { _VERSION = require("mediquo.core")._VERSION }

local EVERY = 60        -- seconds between two lines for one cause
local logged = {}       -- cause -> ngx.now() of its last line (this worker)

-- fault(cause, ...): logs the line (cause if no more is given) at error
-- unless this cause was logged less than a minute ago
function _M.fault(cause, ...)
    local t = ngx.now()
    local last = logged[cause]
    if last and t - last < EVERY then return false end
    logged[cause] = t
    if select("#", ...) == 0 then
        ngx.log(ngx.ERR, cause)
    else
        ngx.log(ngx.ERR, ...)
    end
    return true
end

-- covered(text) -> true when a cause logged within the minute is part of
-- text (a call's message quotes the limiter fault that ended it)
function _M.covered(text)
    if not text then return false end
    local t = ngx.now()
    for cause, last in pairs(logged) do
        if t - last < EVERY and find(text, cause, 1, true) then return true end
    end
    return false
end

return _M
