-- spec/redis_worker.lua: one real process of one simulated host sharing a
-- budget through Redis, driven by spec/28-redis_limiter_spec.lua. Logs, one
-- per line and flushed at once:
--   t <ns>          an admitted start (the limiter's CLOCK_MONOTONIC ns)
--   late <s>        an acquire that took longer than max_wait + 0.25 s
--   degraded <0|1> <ns> <error>  status().degraded changed, when, and why
--   raise <msg>     a call raised (it never may)
--   final <backend> <0|1> <error>   status() at the end
--   done
--   lua spec/redis_worker.lua OUT KEY DIR PER_MINUTE BURST PERIOD UNTIL_NS URL MAX_WAIT [PAUSE]
-- PAUSE: seconds slept after each start (a load below the budget's), none unless given
-- MEDIQUO_SPEC_REDIS_CA (environment): redis_tls.ca_file, for a rediss:// URL

local limiter = require "mediquo.limiter"
local core = require "mediquo.core"

local out, key, dir = arg[1], arg[2], arg[3]
local per_minute, burst, period = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local until_ns, url, max_wait = tonumber(arg[7]), arg[8], tonumber(arg[9])
local pause = tonumber(arg[10] or "0") or 0
local sleep = pause > 0 and require("socket").sleep or nil

local f = assert(io.open(out, "w"))
local function log(s)
    f:write(s, "\n")
    f:flush()
end

local lim, err = limiter.new{ per_minute = per_minute, burst = burst, period = period,
                              key = key, dir = dir, redis = url ~= "-" and url or nil,
                              max_wait = max_wait,
                              redis_tls = os.getenv("MEDIQUO_SPEC_REDIS_CA")
                                  and { ca_file = os.getenv("MEDIQUO_SPEC_REDIS_CA") } or nil }
if not lim then
    log("error " .. tostring(err))
    os.exit(1)
end
log("ready")
local now = core.limiter_now
local degraded = false
local trace, last_error = os.getenv("RSPEC_DEBUG"), nil  -- "why": each new error while degraded
for _ = 1, 1000000 do
    if now() >= until_ns then break end
    local t0 = now()
    local okc, ok, _, at = pcall(lim.core.acquire, lim.core, max_wait)
    local took = (now() - t0) / 1e9
    if not okc then log("raise " .. tostring(ok)) break end
    if ok then log(string.format("t %.0f", at)) end
    if ok and sleep then sleep(pause) end
    if took > max_wait + 0.25 then log(string.format("late %.3f", took)) end
    local oks, st = pcall(lim.status, lim)
    if not oks then log("raise " .. tostring(st)) break end
    if st.degraded ~= degraded then
        degraded = st.degraded
        log(("degraded %d %.0f %s"):format(degraded and 1 or 0, now(), tostring(st.error)))
    elseif trace and degraded and st.error ~= last_error then
        log(("why %.0f %s"):format(now(), tostring(st.error)))
    end
    last_error = st.error
end
local okf, fst = pcall(lim.status, lim)
if okf then
    log(("final %s %d %s"):format(tostring(fst.backend), fst.degraded and 1 or 0, tostring(fst.error)))
end
lim:close()
log("done")
f:close()
