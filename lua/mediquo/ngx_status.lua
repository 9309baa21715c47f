-- mediquo.ngx_status: the operator's page of mediquo.ngx (mediquo.ngx.status):
-- the shared budget as this worker sees it (backend, degraded, why Redis
-- is not in use, hosts sharing the key, used, available, paused_until, the
-- rule in force), the call counters (this worker's and, with metrics, the
-- host's), and the start-up checks. No secret, no password: the limiter's
-- status never holds one (its error is made without it), and the options
-- shown are the non-secret ones. Meant behind `allow 127.0.0.1; deny all;`.

local cjson = require "cjson.safe"

local ngx = ngx
local type = type
local pairs = pairs

local _M = { _VERSION = require("mediquo.core")._VERSION }

local function limiter_part(lim, rl, redis, why)
    if not rl then return { enabled = false } end
    local out = { enabled = true, backend = redis and "redis" or "local", key = rl.key,
                  requested = { per_minute = rl.per_minute, burst = rl.burst, period = rl.period,
                                max_wait = rl.max_wait } }
    if not lim then
        out.error = why or "not opened yet"
        out.degraded = true
        return out
    end
    local st = lim:status()
    for k, v in pairs(st) do
        if k ~= "redis_error" then out[k] = v end
    end
    -- docs/limiter-and-redis.md (status): `error` says why Redis is not in use (never a password)
    if st.redis_error and not out.error then out.error = st.redis_error end
    if out.degraded == nil then out.degraded = false end
    if out.backend == nil then out.backend = redis and "redis" or "local" end
    out.paused = (st.paused_until or 0) > ngx.now()
    return out
end

local function host_calls(w)
    if not (w and w.mx) then return nil end
    local s = w.mx:snapshot()
    if not s then return nil end
    return { requests = s.requests, attempts = s.attempts, retries = s.retries,
             limiter_waits = s.limiter_waits, limiter_wait_seconds = s.limiter_wait_seconds }
end

-- page(p) -> the table. p: { o = options, w = worker state | nil, why =
-- why the worker set-up failed, stats = this worker's stats, checks =
-- start-up check results }
function _M.page(p)
    local o = p.o
    local rl = o.rate_limit or nil
    return {
        worker = { pid = ngx.worker.pid(), id = ngx.worker.id() },
        api = { base_url = p.base_url, deadline = o.deadline, timeout = o.timeout,
                connect_timeout = o.connect_timeout, max_retries = o.max_retries },
        limiter = limiter_part(p.w and p.w.lim, rl, rl and rl.redis, p.why),
        calls = { worker = p.stats, host = host_calls(p.w) },
        checks = p.checks,
        setup_error = p.why,
    }
end

-- send(t) -> answers the page as JSON (200), then ngx.exit
function _M.send(t)
    local body = cjson.encode(t)
    if type(body) ~= "string" then body = '{"error":"cannot encode the status"}' end
    ngx.status = 200
    ngx.header.content_type = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(body, "\n")
    return ngx.exit(200)
end


return _M
