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
local core = require "mediquo.core"

local T = {}
local mt = { __index = T }
local METHOD = { POST = ngx.HTTP_POST, PUT = ngx.HTTP_PUT, DELETE = ngx.HTTP_DELETE }

-- the writer is the real one (call:request_head writes with it); only the
-- method and path of its head are used here
http.new = function(o)
    local w = assert(core.http1{ api_key = o.api_key, secret_key = o.secret_key,
                                 user_agent = o.user_agent, host = o.host })
    return setmetatable({ w = w }, mt)
end

-- the answer as the engine takes it: a parser fed the bytes the wire had
-- carried (call:answer reads it in C)
function T.attempt(_, head, body)
    local method, path = head:match("^(%u+) (%S+)")
    local res = ngx.location.capture("/__mq" .. path, { method = METHOD[method], body = body })
    if not res or res.truncated then return "reset", "subrequest failed" end
    local h, b = res.header, res.body or ""
    local wire = { ("HTTP/1.1 %d X\r\n"):format(res.status) }
    for _, k in ipairs{ "Retry-After", "X-RateLimit-Remaining", "X-RateLimit-Limit" } do
        if h[k] then wire[#wire + 1] = k .. ": " .. tostring(h[k]) .. "\r\n" end
    end
    wire[#wire + 1] = "Content-Length: " .. #b .. "\r\n\r\n" .. b
    local p = core.http1_parser()
    if p:feed(table.concat(wire)) ~= "done" then return "failed", "subrequest: not an answer" end
    return "ok", p
end

return true
