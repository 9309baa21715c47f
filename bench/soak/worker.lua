-- bench/soak/worker.lua: one soak process. Runs mixed creates, reschedules
-- and cancels on its own appointment codes for a while, queueing a random
-- sandbox fault before about 10% of its calls; resolves every failed
-- operation the way a careful user would (try again until it is known to
-- have taken) and writes what it believes the server holds, with timings
-- and memory, as JSON to the file named by its last argument.
--
--   lua5.4 bench/soak/worker.lua BASE_URL ID SECONDS SEED RETRY_POST OUT
local mediquo = require "mediquo"
local core = require "mediquo.core"
local json = require "cjson"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local base_url, id, seconds, seed, retry_post, out_path =
    arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]), arg[5] == "1", arg[6]
assert(base_url and id and seconds and seed and out_path, "usage: worker.lua BASE_URL ID SECONDS SEED RETRY_POST OUT")
math.randomseed(seed)
local random = math.random

local FAULT_P = 0.10
local DEADLINE = 2
local SLACK = 0.1           -- what a call may take past DEADLINE (scheduling)
local QUIET = 1.0           -- the longest injected delay is 0.5 s
local control = base_url:gsub("/v1$", "") .. "/__sandbox/faults"

local FAULTS = {
    { mode = "status", status = 500 }, { mode = "status", status = 502 },
    { mode = "status", status = 503 }, { mode = "status", status = 504 },
    { mode = "after", status = 500 }, { mode = "after", status = 502 },
    { mode = "after", status = 504 },
    { mode = "delay", ms = 500 }, { mode = "delay", ms = 500, process = "after" },
    { mode = "reset" }, { mode = "truncate" }, { mode = "garbage" },
    { mode = "huge", bytes = 2 * 1024 * 1024 }, { mode = "ratelimit", seconds = 1 },
    { mode = "ratelimit" },
}

local function push_fault()
    local body = json.encode(FAULTS[random(#FAULTS)])
    local ok, status = http.request{
        url = control, method = "POST", source = ltn12.source.string(body),
        headers = { ["content-type"] = "application/json", ["content-length"] = #body },
        sink = ltn12.sink.null(),
    }
    return ok and status == 200
end

local function rss_kib()
    local f = io.open("/proc/self/status", "r")
    local s = f and f:read("a") or ""
    if f then f:close() end
    return tonumber(s:match("VmRSS:%s*(%d+)")) or -1
end

local client = assert(mediquo.new{
    api_key = "sandbox-key", secret_key = "sandbox-secret", base_url = base_url,
    timeout = 0.3, connect_timeout = 0.3, deadline = DEADLINE, max_retries = 3,
    retry_post = retry_post,
    -- a shared budget far above what the run needs; a 429 pauses every
    -- process for its Retry-After (or the 1 s window). SOAK_RL_DIR: the
    -- state file's dir (the driver's full tmpfs), shared with the
    -- limiter-only sharers it stops and continues
    rate_limit = { per_minute = 100000, burst = 100000, period = 1,
                   key = "soak-" .. base_url, dir = os.getenv("SOAK_RL_DIR") },
})

local r = {
    id = id, calls = 0, ok_first = 0, failed_first = 0, resolved = 0, unresolved = 0,
    by_kind = {}, faults_pushed = 0, max_call = 0, over_deadline = 0,
    creates = 0, reschedules = 0, cancels = 0, records = {}, unknown = {},
}

-- one call, timed; every call is checked against the deadline
local function call(op, code, starts_at)
    local t0 = core.now()
    local retries0 = client:stats().retries
    if random() < FAULT_P and push_fault() then r.faults_pushed = r.faults_pushed + 1 end
    local v, err
    if op == "create" then
        v, err = client:create{ code = code, starts_at = starts_at, patient = "soak-p",
                                professional = "prof-demo-" .. (id % 3 + 1) }
    elseif op == "reschedule" then
        v, err = client:reschedule(code, starts_at)
    else
        v, err = client:cancel(code)
    end
    local took = core.now() - t0
    r.calls = r.calls + 1
    if took > r.max_call then r.max_call = took end
    if took > DEADLINE + SLACK then r.over_deadline = r.over_deadline + 1 end
    if err then r.by_kind[err.kind] = (r.by_kind[err.kind] or 0) + 1 end
    return v, err, client:stats().retries > retries0
end

local function says(err, what)
    return err and err.kind == "bad_request" and (err.message or ""):lower():find(what, 1, true)
end

-- run op until it is known to have taken; true when it did
local function settle(op, code, starts_at)
    local _, err, retried = call(op, code, starts_at)
    if not err then
        r.ok_first = r.ok_first + 1
        return true, retried
    end
    r.failed_first = r.failed_first + 1
    for _ = 1, 30 do
        socket.sleep(0.05)
        _, err = call(op, code, starts_at)
        -- a follow-up call that finds the effect already there: an earlier
        -- call of ours took after all (the caller's reconciliation, across calls)
        if not err or (op == "create" and says(err, "already exist"))
           or (op == "cancel" and says(err, "already cancel")) then
            r.resolved = r.resolved + 1
            return true, true
        end
    end
    r.unresolved = r.unresolved + 1
    return false, true
end

local iso = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/sh.lua").iso

local live, quiet_until, n = {}, {}, 0
local t_end = core.now() + seconds
local t_warm = core.now() + math.min(10, seconds / 5)
local rss_before

while core.now() < t_end do
    if not rss_before and core.now() >= t_warm then
        collectgarbage(); collectgarbage()
        rss_before = rss_kib()
        r.lua_kib_before = collectgarbage("count")
    end
    local now = core.now()
    local pick
    for _ = 1, 4 do     -- a live code that is not still settling
        local c = live[random(math.max(#live, 1))]
        if c and (quiet_until[c] or 0) <= now then pick = c break end
    end
    local x = random()
    if not pick or #live < 5 or x < 0.4 then
        n = n + 1
        local code = ("soak-%d-%d-%d"):format(id, seed, n)
        local at = iso(1900000000 + random(0, 1e8))
        local ok, unsure = settle("create", code, at)
        r.creates = r.creates + 1
        if ok then
            r.records[code] = { starts_at = at, status = "active" }
            live[#live + 1] = code
            if unsure then quiet_until[code] = core.now() + QUIET end
        else
            r.unknown[#r.unknown + 1] = code
        end
    elseif x < 0.75 then
        local at = iso(1900000000 + random(0, 1e8))
        local ok, unsure = settle("reschedule", pick, at)
        r.reschedules = r.reschedules + 1
        if ok then
            r.records[pick].starts_at = at
        else
            r.unknown[#r.unknown + 1] = pick
            r.records[pick] = nil
        end
        if unsure then quiet_until[pick] = core.now() + QUIET end
        if not ok then
            for i, c in ipairs(live) do if c == pick then table.remove(live, i) break end end
        end
    else
        local ok = settle("cancel", pick)
        r.cancels = r.cancels + 1
        if ok then
            r.records[pick].status = "cancelled"
        else
            r.unknown[#r.unknown + 1] = pick
            r.records[pick] = nil
        end
        for i, c in ipairs(live) do if c == pick then table.remove(live, i) break end end
    end
end

collectgarbage(); collectgarbage()
r.rss_before_kib = rss_before or -1
r.rss_after_kib = rss_kib()
r.lua_kib_after = collectgarbage("count")
r.stats = client:stats()
client:close()
local f = assert(io.open(out_path, "wb"))
f:write(json.encode(r))
f:close()
