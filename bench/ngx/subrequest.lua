-- bench/ngx/subrequest.lua: the road not taken, measured (issue 14 asks to
-- "measure both ways and keep the better"): the same mediquo.ngx (engine,
-- limiter, metrics) with its cosocket transport swapped for a subrequest
-- to an internal location served by nginx's proxy module (keepalive
-- upstream, proxy_next_upstream off). Loaded by bench/ngx.sh's variant of
-- examples/nginx.conf before configure(); only the bench uses it. It moves
-- the same bytes, but per-call timeouts, the deadline cut and the
-- connect-vs-after-send distinction are not available this way (the proxy
-- module takes them from the configuration, and answers its own failures
-- as 502/504), so it is only right for the success path being measured.
-- luacheck: globals ngx

local http = require "mediquo.ngx_http"

local T = {}
local mt = { __index = T }
local METHOD = { POST = ngx.HTTP_POST, PUT = ngx.HTTP_PUT, DELETE = ngx.HTTP_DELETE }

http.new = function()
    return setmetatable({}, mt)
end

function T.attempt(_, method, path, body)
    local res = ngx.location.capture("/__mq" .. path, { method = METHOD[method], body = body })
    if not res or res.truncated then
        return { outcome = "reset", body = "", message = "subrequest failed" }
    end
    local h = res.header
    return { outcome = "ok", status = res.status, body = res.body or "",
             retry_after = tonumber(h["Retry-After"]),
             rl_remaining = tonumber(h["X-RateLimit-Remaining"]),
             rl_limit = tonumber(h["X-RateLimit-Limit"]) }
end

return true
