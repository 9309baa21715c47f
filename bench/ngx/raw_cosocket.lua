-- bench/ngx/raw_cosocket.lua: bench/ngx_health.sh's floor for a Lua
-- handler -- /book as the fewest lines of OpenResty Lua can proxy it: the
-- request body sent as it came to the sandbox's /v1/appointments on a
-- pooled cosocket, its status and body sent back. No validation, limiter,
-- retries, deadline, metrics or error mapping: what any cosocket handler
-- costs the event loop before it does anything of its own.
--   content_by_lua_block { require("raw_cosocket").book(PORT) }
-- luacheck: globals ngx
local ngx = ngx
local tonumber = tonumber

local _M = {}

local HEAD = "POST /v1/appointments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: sandbox-key\r\n"
          .. "X-Secret-Key: sandbox-secret\r\nContent-Type: application/json\r\n"
          .. "Accept: application/json\r\nContent-Length: "

local function fail(why)
    ngx.status = 502
    ngx.say(why)
end

function _M.book(port)
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    local s = ngx.socket.tcp()
    s:settimeouts(1000, 1000, 5000)
    local ok, err = s:connect("127.0.0.1", port)
    if not ok then return fail(err) end
    ok, err = s:send({ HEAD, #body, "\r\n\r\n", body })
    if not ok then return fail(err) end
    local line = s:receive("*l")
    if not line then return fail("no status line") end
    local len = 0
    repeat
        local h = s:receive("*l")
        if not h then return fail("no header end") end
        local v = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
        if v then len = tonumber(v) end
    until h == ""
    local answer = len > 0 and s:receive(len) or ""
    if not answer then return fail("short body") end
    s:setkeepalive(30000, 64)
    ngx.status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)")) or 502
    ngx.print(answer)
end

return _M
