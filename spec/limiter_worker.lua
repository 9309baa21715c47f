-- spec/limiter_worker.lua: one real process sharing a limiter key, driven by
-- spec/07-limiter_spec.lua. Logs each admitted start (the limiter's own
-- CLOCK_MONOTONIC ns, the clock its window is kept in) to `out`, one per
-- line, flushed at once so that a SIGKILLed worker's starts still count.
--
--   lua spec/limiter_worker.lua MODE OUT KEY DIR PER_MINUTE BURST PERIOD UNTIL_NS [A [B]]
--
-- MODE: hammer  acquire(0.5) in a loop until UNTIL_NS
--       spin    try() in a tight loop until UNTIL_NS
--       churn   try() in a tight loop until UNTIL_NS, logging only the count
--               at the end (most of its time is inside the limiter)
--       pause   pause(A) once
--       observe observe(A = remaining, nil, B = reset_in) once
--       search  until UNTIL_NS, admit in spurts and idle in between, and after
--               each, count the window's starts from hints near and far and
--               by plain halving with no admission between (the test
--               build's _used_both, H.hooks_env): logs "checked N" or
--               "mismatch OFF FROM_HINT PLAIN"
--       freeze  claim a slot and stop before finishing it (the test build: H.hooks_env);
--               with the old locking library: take the lock and hang
-- A host fault (the state file cut short) is logged as "fault MESSAGE" and
-- ends the loop. The last line is "done" when the worker ended on its own.

local core = require "mediquo.core"

local mode, out, key, dir = arg[1], arg[2], arg[3], arg[4]
local per_minute, burst, period = tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7])
local until_ns = tonumber(arg[8])
local a, b = tonumber(arg[9]), tonumber(arg[10])

local f = assert(io.open(out, "w"))
local function log(s)
    f:write(s, "\n")
    f:flush()
end

local lim, err = core.limiter{ per_minute = per_minute, burst = burst, period = period,
                               key = key, dir = dir }
if not lim then
    log("error " .. tostring(err))
    os.exit(1)
end
log("ready")

local MAX_ITER = 10000000       -- a bound on every loop besides the clock

if mode == "hammer" then
    for _ = 1, MAX_ITER do
        if core.limiter_now() >= until_ns then break end
        local ok, _, at_or_fault = lim:acquire(0.5)
        if ok then log(string.format("%.0f", at_or_fault)) end
        local fault = not ok and at_or_fault
        if fault then
            log("fault " .. fault)
            break
        end
    end
elseif mode == "spin" then
    for _ = 1, MAX_ITER do
        if core.limiter_now() >= until_ns then break end
        local ok, at, fault = lim:try()
        if ok then log(string.format("%.0f", at)) end
        if fault then
            log("fault " .. fault)
            break
        end
    end
elseif mode == "churn" then
    local n = 0
    for _ = 1, MAX_ITER * 10 do
        if core.limiter_now() >= until_ns then break end
        if lim:try() then n = n + 1 end
    end
    log("admitted " .. n)
elseif mode == "pause" then
    lim:pause(a)
elseif mode == "observe" then
    lim:observe(a, nil, b)
elseif mode == "search" then
    local n, checked, bad = per_minute, 0, nil
    math.randomseed(a or 1)
    local function idle(s)      -- a busy wait: plain Lua has no sleep
        local t = core.limiter_now() + s * 1e9
        for _ = 1, MAX_ITER do if core.limiter_now() >= t then break end end
    end
    for _ = 1, 100000 do
        if core.limiter_now() >= until_ns or bad then break end
        local stop = core.limiter_now() + math.random() * 0.03 * 1e9
        for _ = 1, MAX_ITER do
            if core.limiter_now() >= stop then break end
            lim:try()
        end
        idle(math.random() * 0.06)
        local _, plain = lim:_used_both(0)
        local edge = n - (plain or 0)   -- the first start in the window, from the oldest
        for _, off in ipairs{ -10, 0, n - 1, n, n + 10, edge, edge - 1, edge + 1,
                              edge - math.random(0, 300), edge + math.random(0, 300),
                              math.random(0, n), math.random(-n, 2 * n) } do
            -- nothing back: the other process admitted between every try
            -- (the two counts would read two rings), not counted
            local x, y = lim:_used_both(off)
            if x ~= y then
                bad = ("mismatch %d %d %d"):format(off, x, y)
                break
            end
            if x then checked = checked + 1 end
        end
    end
    log(bad or ("checked " .. checked))
elseif mode == "freeze" then
    log("freezing")
    -- (a library with a lock instead: hold it forever, the same test)
    local freeze = lim._freeze_mid_admission or lim._hold_lock_forever
    freeze(lim)
else
    log("error unknown mode " .. tostring(mode))
    os.exit(1)
end
lim:close()
log("done")
f:close()
