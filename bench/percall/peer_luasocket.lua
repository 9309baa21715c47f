-- bench/percall/luasocket.lua: Debian's LuaSocket socket.http.request, the
-- generic (table) form - one connection per call, as it always does (it
-- sends "Connection: close"). Same headers and body; the answer decoded.

package.path = package.path .. ";" .. arg[0]:match("^(.*)/[^/]*$") .. "/?.lua"
local common = require "common"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local base, n, cap = common.args(arg)
local url = base .. "/appointments"
local fail = common.fail
local appt = common.appointment

common.run(n, cap, function(i)
    local body = cjson.encode(common.body_table(appt))
    local headers = { ["content-length"] = tostring(#body) }
    for k, v in pairs(common.headers) do headers[k] = v end
    local out = {}
    local ok, status = http.request{
        url = url, method = "POST", headers = headers,
        source = ltn12.source.string(body), sink = ltn12.sink.table(out),
    }
    if not ok or status ~= 200 then fail(i, status) end
    common.check(cjson.decode(table.concat(out)), i)
end)
