-- bench/percall/lua_http.lua: Debian's lua-http (cqueues), the way a user
-- keeps one connection: http.client.connect once, a new stream per call
-- (HTTP/1.1 keep-alive). Same headers and body; the answer decoded.

package.path = package.path .. ";" .. arg[0]:match("^(.*)/[^/]*$") .. "/?.lua"
local common = require "common"
local client = require "http.client"
local new_headers = require "http.headers".new
local cjson = require "cjson"

local base, n, cap = common.args(arg)
local host, port, prefix = base:match("^http://([^:/]+):(%d+)(.*)$")
local path = prefix .. "/appointments"
local authority = host .. ":" .. port
local fail = common.fail

local conn = assert(client.connect{ host = host, port = tonumber(port), tls = false, version = 1.1 })
local appt = common.appointment

common.run(n, cap, function(i)
    local body = cjson.encode(common.body_table(appt))
    local h = new_headers()
    h:append(":method", "POST")
    h:append(":scheme", "http")
    h:append(":authority", authority)
    h:append(":path", path)
    for k, v in pairs(common.headers) do h:append(k:lower(), v) end
    h:append("content-length", tostring(#body))
    local stream = conn:new_stream()
    local ok, err = stream:write_headers(h, false, 10)
    if ok then ok, err = stream:write_chunk(body, true, 10) end
    if not ok then fail(i, err) end
    local rh
    rh, err = stream:get_headers(10)
    if not rh then fail(i, err) end
    if rh:get(":status") ~= "200" then fail(i, "status " .. tostring(rh:get(":status"))) end
    local s
    s, err = stream:get_body_as_string(10)
    if not s then fail(i, err) end
    stream:shutdown()
    common.check(cjson.decode(s), i)
end)
conn:close()
