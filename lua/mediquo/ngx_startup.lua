-- mediquo.ngx_startup: the checks each nginx worker makes at start
-- (mediquo.ngx.init_worker), without waiting for traffic: a timer at 0
-- s sets up the worker's engine, transport and limiter -- the same set-up
-- the first call would make -- so that a limiter state file the worker
-- user cannot open is in error.log within a second of the start, with its
-- fix, instead of at the first request. Results: logged at notice when
-- fine, at error when not, and kept for mediquo.ngx.status().

local ngx = ngx
local pcall = pcall
local require = require
local tostring = tostring
local find = string.find
local match = string.match
local format = string.format

local _M = { _VERSION = require("mediquo.core")._VERSION }

-- this worker's effective user, "uid N (name)"
local function whoami()
    local uid
    local ok, ffi = pcall(require, "ffi")
    if ok then
        pcall(ffi.cdef, "unsigned int geteuid(void);")
        local ok2, v = pcall(function() return ffi.C.geteuid() end)
        if ok2 then uid = tonumber(v) end
    end
    if not uid then return "the worker user" end
    local name
    local f = io.open("/etc/passwd", "r")
    if f then
        for line in f:lines() do
            local n, u = match(line, "^([^:]*):[^:]*:(%d+):")
            if u and tonumber(u) == uid then name = n break end
        end
        f:close()
    end
    return format("uid %d (%s)", uid, name or "?"), name or tostring(uid)
end

-- the fix for a limiter file the worker cannot open
local function advice(why, dir, group)
    local who, name = whoami()
    if find(why, "Permission denied", 1, true) or find(why, "Operation not permitted", 1, true) then
        if group then
            return format("the nginx workers run as %s, which may not use the state file in %s: "
                .. "make %s a member of the group %s (rate_limit.group), or chown %s %s",
                who, dir or "the limiter's dir", name or "the worker user", group, name or "<worker user>",
                dir or "<dir>")
        end
        return format("the nginx workers run as %s, which may not use the state file in %s: "
            .. "chown %s %s (the rate_limit.dir), or set rate_limit.group to a group of the "
            .. "workers and of every other process sharing the budget", who, dir or "the limiter's dir",
            name or "<worker user>", dir or "<dir>")
    end
    return format("the nginx workers run as %s; check that %s exists, is a directory the workers "
        .. "may write to, and has space", who, dir or "the limiter's dir")
end

-- run(c) -- in init_worker. c: { setup = function() -> w | nil, what, why,
-- dir = the limiter's dir or nil, group = rate_limit.group or nil,
-- results = table the outcome is stored in (for status()) }
function _M.run(c)
    local function check(premature)
        if premature then return end
        local t0 = ngx.now()
        local ok, w, what, why = pcall(c.setup)
        local res = c.results
        res.at = t0
        if not ok then
            res.ok = false
            res.error = "set-up raised: " .. tostring(w)
            ngx.log(ngx.ERR, "mediquo.ngx: start-up check: ", res.error)
            return
        end
        if w and (not c.has_limiter or w.lim) then
            res.ok = true
            res.error = nil
            ngx.log(ngx.NOTICE, "mediquo.ngx: start-up check: ready",
                    c.has_limiter and ", the limiter's state file opens" or "")
            return
        end
        res.ok = false
        local msg = tostring(what) .. ": " .. tostring(why)
        if what == "rate_limit" then
            msg = msg .. " -- " .. advice(tostring(why), c.dir, c.group)
        end
        res.error = msg
        ngx.log(ngx.ERR, "mediquo.ngx: start-up check failed: ", msg)
    end
    local ok, err = ngx.timer.at(0, check)
    if not ok then
        ngx.log(ngx.ERR, "mediquo.ngx: start-up check: cannot start its timer: ", tostring(err))
    end
    return ok
end

return _M
