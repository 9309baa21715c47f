-- bench/rss.lua BASE_URL [CALLS] [CLIENTS]: memory of a Lua 5.4 process
-- using the client, against the fixed-answer nginx (bench/percall).
--
--   1. one client (rate_limit = false), 1,000 warm-up creates, then RSS;
--      CALLS (100,000) more creates, a full collectgarbage, RSS again: the
--      growth must stay within BOUND_KB (the claim: no growth beyond noise)
--   2. CLIENTS (200) more clients, each with one create done (so each has
--      its connection and buffers), RSS after: the per-client cost
--
-- Prints "rss ..." lines; exit 1 when the growth exceeds the bound or a
-- call fails. Bounded: the loop stops after MAX_SECONDS (120) and says so.

local mediquo = require "mediquo"
local socket = require "socket"

local base = assert(arg[1], "usage: rss.lua BASE_URL [CALLS] [CLIENTS]")
local calls = tonumber(arg[2]) or 100000
local nclients = tonumber(arg[3]) or 200
local BOUND_KB = 256       -- allocator and page noise; a leak of even 3 bytes a call is over it
local MAX_SECONDS = 120

local function rss_kb()
    local f = assert(io.open("/proc/self/status", "r"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function settle()
    collectgarbage("collect")
    collectgarbage("collect")
end

local function new_client()
    return assert(mediquo.new{ api_key = "sandbox-key", secret_key = "sandbox-secret",
                               base_url = base, rate_limit = false })
end

local appt = { code = "bench-1", starts_at = "2030-05-20T10:00:00Z",
               patient = "P1", professional = "prof-demo-1", duration = 900 }

local function create(c, i)
    local a, err = c:create(appt)
    if not a then
        io.stderr:write("rss: call ", i, " failed: ", tostring(err), "\n")
        os.exit(1)
    end
end

local c = new_client()
for i = 1, 1000 do create(c, i) end
settle()
local before, lua_before = rss_kb(), collectgarbage("count")
local t0 = socket.gettime()
local done = 0
for i = 1, calls do
    create(c, i)
    done = i
    if i % 1000 == 0 and socket.gettime() - t0 > MAX_SECONDS then break end
end
local secs = socket.gettime() - t0
settle()
local after, lua_after = rss_kb(), collectgarbage("count")
local growth = after - before
local ok = done == calls and growth <= BOUND_KB
print(("rss one client: %d KiB before, %d KiB after %d calls (%.1f s): growth %+d KiB (bound %d KiB): %s")
    :format(before, after, done, secs, growth, BOUND_KB,
            done < calls and "STOPPED at the time cap" or ok and "no growth" or "GROWTH"))
print(("rss lua heap: %.0f KiB before, %.0f KiB after"):format(lua_before, lua_after))

-- per-client cost: clients with a live connection each
local base_kb = rss_kb()
local clients = {}
for i = 1, nclients do
    clients[i] = new_client()
    create(clients[i], i)
end
settle()
local with_kb = rss_kb()
for i = 1, nclients do clients[i]:close() end
clients = nil -- luacheck: ignore 311
settle()
print(("rss per client: %.1f KiB each (%d clients, each with one call done and its connection open: %d -> %d KiB)")
    :format((with_kb - base_kb) / nclients, nclients, base_kb, with_kb))
c:close()
os.exit(ok and 0 or 1)
