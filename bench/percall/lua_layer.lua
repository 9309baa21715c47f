-- bench/percall/lua_layer.lua [N]: what the Lua layer of client:create
-- costs on its own - validation, the request body, decoding and shaping
-- the answer - with the C core replaced by a stub that returns the
-- fixed-answer body at once. Prints "lua_layer US_PER_CALL". Bounded: N
-- calls (300,000) or 20 s.
--   eval "$(make -s env)"; taskset -c 1 lua5.4 bench/percall/lua_layer.lua

local mediquo = require "mediquo"
local socket = require "socket"

local n = tonumber(arg[1]) or 300000
local client = assert(mediquo.new{ api_key = "k", secret_key = "s",
                                   base_url = "http://127.0.0.1:9/v1", rate_limit = false })
client._core:close()
local body = '{"data":{"appointment":{"code":"bench-1","url":"http://127.0.0.1/call/x"}}}'
client._core = {
    call = function() return "ok", 200, body, 1, false, nil, nil, false end,
    close = function() end,
}
local appt = { code = "bench-1", starts_at = "2030-05-20T10:00:00Z",
               patient = "P1", professional = "prof-demo-1", duration = 900 }
for _ = 1, 1000 do assert(client:create(appt)) end
local t0 = socket.gettime()
local done = 0
for i = 1, n do
    local a = client:create(appt)
    if not a or a.url ~= "http://127.0.0.1/call/x" then error("create " .. i .. " failed") end
    done = i
    if i % 10000 == 0 and socket.gettime() - t0 > 20 then break end
end
print(("lua_layer %.3f"):format((socket.gettime() - t0) / done * 1e6))
