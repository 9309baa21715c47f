-- bench/percall/peer_luacurl.lua: Debian's lua-curl (luacurl 0.3 by Enrico
-- Tassi, built for Lua 5.1 and 5.2 only) over one reused easy handle - the
-- libcurl binding Debian's archive offers. Same headers and body; the
-- status read from the header callback (the binding has no getinfo), the
-- body collected by a Lua write callback and decoded.

package.path = package.path .. ";" .. arg[0]:match("^(.*)/[^/]*$") .. "/?.lua"
local common = require "common"
local curl = require "curl"
local cjson = require "cjson"

local base, n, cap = common.args(arg)
local fail = common.fail
local appt = common.appointment

local c = curl.easy_init()
local hl = {}
for k, v in pairs(common.headers) do hl[#hl + 1] = k .. ": " .. v end
hl[#hl + 1] = "Expect:"
local chunks, status = {}, nil
c:setopt(curl.OPT_URL, base .. "/appointments")
c:setopt(curl.OPT_HTTPHEADER, hl)
c:setopt(curl.OPT_NOSIGNAL, 1)
c:setopt(curl.OPT_TCP_NODELAY, 1)
c:setopt(curl.OPT_HEADERFUNCTION, function(s)
    local code = s:match("^HTTP/%S+ (%d%d%d)")
    if code then status = tonumber(code) end
    return #s
end)
c:setopt(curl.OPT_WRITEFUNCTION, function(s)
    chunks[#chunks + 1] = s
    return #s
end)

common.run(n, cap, function(i)
    local body = cjson.encode(common.body_table(appt))
    c:setopt(curl.OPT_POSTFIELDS, body)
    for k = #chunks, 1, -1 do chunks[k] = nil end
    status = nil
    local rc, err = c:perform()
    if rc ~= 0 then fail(i, err or rc) end
    if status ~= 200 then fail(i, "status " .. tostring(status)) end
    common.check(cjson.decode(table.concat(chunks)), i)
end)
