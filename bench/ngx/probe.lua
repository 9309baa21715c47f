-- bench/ngx/probe.lua: paced GET /health latency probe (lua5.4 + LuaSocket).
-- One request every INTERVAL ms over CONNS kept-alive connections, for
-- SECONDS; prints "p50_ms p99_ms samples". Paced rather than flat out, so
-- it measures how long the event loop makes a light client wait, not how
-- fast a saturated CPU can answer.
--   lua5.4 bench/ngx/probe.lua PORT [SECONDS=3] [INTERVAL_MS=2] [CONNS=4] [SAMPLES]
-- With SAMPLES (a file name), every sample is also written there as
-- "start latency_ms" (start: seconds since the epoch, as bash's
-- $EPOCHREALTIME), after the last one: bench/ngx/health.sh places each in
-- an idle or a busy phase by its time.
local socket = require "socket"

local port = assert(tonumber(arg[1]), "usage: probe.lua PORT [SECONDS] [INTERVAL_MS] [CONNS]")
local seconds, interval, conns = tonumber(arg[2]) or 3, (tonumber(arg[3]) or 2) / 1000, tonumber(arg[4]) or 4
local samples_file = arg[5]

local function connect()
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", port))
    c:setoption("tcp-nodelay", true)
    return c
end

local function get(c)
    if not c:send("GET /health HTTP/1.1\r\nHost: probe\r\n\r\n") then return nil end
    local line = c:receive("*l")
    if not line then return nil end
    assert(line:match("^HTTP/1%.1 200"), line)
    local len
    repeat
        local h = assert(c:receive("*l"))
        local k, v = h:match("^([^:]+):%s*(.*)$")
        if k and k:lower() == "content-length" then len = tonumber(v) end
    until h == ""
    return c:receive(len)
end

local socks = {}
for i = 1, conns do socks[i] = connect() end
local lat, at = {}, {}
local start = socket.gettime()
local i = 0
while socket.gettime() - start < seconds and i < 1000000 do
    i = i + 1
    local k = (i - 1) % conns + 1
    local t0 = socket.gettime()
    if not get(socks[k]) then          -- keepalive_requests reached: reconnect, untimed
        socks[k]:close()
        socks[k] = connect()
        t0 = socket.gettime()
        assert(get(socks[k]), "GET /health failed")
    end
    local t1 = socket.gettime()
    lat[#lat + 1] = t1 - t0
    at[#at + 1] = t0
    local next_at = start + i * interval
    if next_at > t1 then socket.sleep(next_at - t1) end
end
if samples_file then
    local f = assert(io.open(samples_file, "w"))
    for j = 1, #lat do f:write(("%.6f %.3f\n"):format(at[j], lat[j] * 1000)) end
    assert(f:close())
end
table.sort(lat)
local function pct(p) return lat[math.max(1, math.ceil(#lat * p))] * 1000 end
print(("%.3f %.3f %d"):format(pct(0.5), pct(0.99), #lat))
