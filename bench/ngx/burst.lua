-- bench/ngx/burst.lua: N POST /book at once (lua5.4 + LuaSocket), each on
-- its own connection, all sent before any answer is read; prints
-- "seconds ok total": the time from the first send to the last complete
-- answer, and how many were 200/201. Bounded: 30 s at most.
--   lua5.4 bench/ngx/burst.lua PORT [N=200]
local socket = require "socket"

local port = assert(tonumber(arg[1]), "usage: burst.lua PORT [N]")
local n = tonumber(arg[2]) or 200
local stamp = ("%d-%d"):format(os.time(), math.random(1, 1e6))

local conns = {}
for i = 1, n do
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", port))
    c:setoption("tcp-nodelay", true)
    conns[i] = c
end
local t0 = socket.gettime()
for i, c in ipairs(conns) do
    local body = ('{"code":"burst-%s-%d","starts_at":"2030-05-20T10:00:00Z","patient":"P1",'
        .. '"professional":"prof-demo-1"}'):format(stamp, i)
    assert(c:send(("POST /book HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#body, body)))
    c:settimeout(0)
end
-- read every answer to its end (Connection: close)
local open, ok, got = {}, 0, {}
for i, c in ipairs(conns) do open[c] = i; got[c] = {} end
local list = conns
local deadline = t0 + 30
while #list > 0 and socket.gettime() < deadline do
    local ready = socket.select(list, nil, 1)
    for _, c in ipairs(ready) do
        local data, err, partial = c:receive(65536)
        local chunk = data or partial
        if chunk and #chunk > 0 then got[c][#got[c] + 1] = chunk end
        if err == "closed" then
            if table.concat(got[c]):match("^HTTP/1%.1 20[01]") then ok = ok + 1 end
            open[c] = nil
            c:close()
        end
    end
    local rest = {}
    for _, c in ipairs(list) do if open[c] then rest[#rest + 1] = c end end
    list = rest
end
print(("%.3f %d %d"):format(socket.gettime() - t0, ok, n))
