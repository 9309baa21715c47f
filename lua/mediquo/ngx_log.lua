-- mediquo.ngx_log: a host setup fault in error.log once per worker per
-- cause, then at most once a minute. Every call that needs the broken
-- piece fails `config` while the fault lasts, so the log must not grow with
-- the traffic. The driver (mediquo.ngx: a worker set-up or limiter fault as
-- it happens) marks the error object of a call whose cause it logged
-- (mark), and mediquo.ngx.reply logs a 500's cause only when it is not
-- marked (logged), so no cause is in error.log twice for one call.
local ngx = ngx
local select = select
local setmetatable = setmetatable

local _M = { _VERSION = require("mediquo.core")._VERSION }

local EVERY = 60        -- seconds between two lines for one cause
local last_line = {}    -- cause -> ngx.now() of its last line (this worker)
local marked = setmetatable({}, { __mode = "k" })   -- error object -> true

-- fault(cause, ...): logs the line (cause if no more is given) at error
-- unless this cause was logged less than a minute ago
function _M.fault(cause, ...)
    local t = ngx.now()
    local last = last_line[cause]
    if last and t - last < EVERY then return false end
    last_line[cause] = t
    if select("#", ...) == 0 then
        ngx.log(ngx.ERR, cause)
    else
        ngx.log(ngx.ERR, ...)
    end
    return true
end

-- mark(err) -> err: its cause is in error.log (logged by fault just now, or
-- within the minute): reply does not log it again
function _M.mark(err)
    if err ~= nil then marked[err] = true end
    return err
end

-- logged(err) -> true when err was marked
function _M.logged(err)
    return err ~= nil and marked[err] == true
end

return _M
