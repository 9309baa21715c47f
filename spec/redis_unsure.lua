-- spec/redis_unsure.lua: one process on a Redis budget through a retry
-- whose answer never came, driven by spec/28-redis_limiter_spec.lua. Redis
-- refuses writes (maxmemory 1: -OOM, an outage told plainly), the host waits
-- out its quarantine and starts on its fallback; then Redis takes writes
-- again but stalls (DEBUG SLEEP 1.5): the next retry's script goes out and
-- its answer does not come within redis_timeout. Prints one line a step:
--   open <ok>  | oom <degraded>  | fallback <admitted>  | unsure <admitted> <why>
--   | back <admitted> <degraded>
--   lua spec/redis_unsure.lua PORT KEY DIR

local limiter = require "mediquo.limiter"
local socket = require "socket"

local port, key, dir = arg[1], arg[2], arg[3]
local function cli(args, bg)
    os.execute(("redis-cli -p %s %s >/dev/null 2>&1%s"):format(port, args, bg and " &" or ""))
end
local function say(...)
    io.write(table.concat({ ... }, " "), "\n")
    io.flush()
end

local lim = assert(limiter.new{ key = key, dir = dir, redis = "redis://127.0.0.1:" .. port,
                                 per_minute = 600, period = 1, redis_timeout = 0.1 })
say("open", tostring(lim:acquire(0.3)))
cli("CONFIG SET maxmemory 1")
lim:acquire(0.3)
say("oom", tostring(lim:status().degraded))
socket.sleep(1.6)                       -- the quarantine: 1 s + transit guard + lease + 0.25 s
say("fallback", tostring(lim:acquire(0.3)))
cli("CONFIG SET maxmemory 0")
cli("DEBUG SLEEP 1.5", true)
socket.sleep(0.6)                       -- the next try at Redis is due
local ok = lim:acquire(0.3)
say("unsure", tostring(ok), (tostring(lim:status().error):gsub("%s", "_")))
socket.sleep(1.5)
ok = lim:acquire(0.5)
say("back", tostring(ok), tostring(lim:status().degraded))
lim:close()
