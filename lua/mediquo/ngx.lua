-- mediquo.ngx: the OpenResty/nginx adapter. Same calls as a mediquo client,
-- but a call never blocks the nginx event loop:
--
--   * the HTTP attempt itself (libcurl, blocking) runs in nginx's thread
--     pool through ngx.run_worker_thread, in mediquo.ngx_thread;
--   * everything that waits -- a free thread, a rate-limit slot, a retry
--     backoff -- waits by yielding the request's own coroutine
--     (ngx.semaphore, ngx.sleep), so the worker keeps serving others.
--
-- The retry loop mirrors src/call.c step by step and uses the same C policy
-- (core.classify, core.backoff) and the same host-wide limiter file, so a
-- gateway, its sibling workers and any Lua script on the host share one
-- budget. Counters go to a shared file (core.metrics) readable as
-- Prometheus text from any worker.
--
--   init_by_lua_block { assert(require("mediquo.ngx").configure{ api_key = ..., secret_key = ... }) }
--   content_by_lua_block { local appt, err = require("mediquo.ngx").create{ ... } }

local mediquo = require "mediquo"
local core = require "mediquo.core"
local errors = require "mediquo.errors"
local protocol = require "mediquo.protocol"
local limiter = require "mediquo.limiter"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local error = error
local tostring = tostring
local floor = math.floor
local huge = math.huge
local min = math.min
local max = math.max
local format = string.format
local concat = table.concat
local now = core.now
local classify = core.classify
local backoff = core.backoff

local _M = { _VERSION = "0.1.0" }

local THREAD_MODULE = "mediquo.ngx_thread"

-- phases where ngx.sleep, semaphores and ngx.run_worker_thread may yield
local YIELDABLE = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local OPS = { "create", "reschedule", "cancel" }
local KINDS = { "ok", "bad_request", "unauthorized", "forbidden", "not_found",
                "unprocessable", "rate_limited", "server_error", "timeout",
                "network", "bad_response", "invalid_argument" }

local config      -- set by configure(): normalised options, never shown
local generation = 0
local worker      -- this worker's thread slots, limiter, metrics (made lazily)
local stats       -- this worker's counters (stats())

local function new_stats()
    return { requests = 0, ok = 0, retries = 0, by_kind = {},
             limiter_waits = 0, limiter_wait_seconds = 0 }
end

-- configure(opts) -> true | nil, err
-- opts: everything mediquo.new takes, plus thread_pool (name of the
-- nginx thread_pool, "mediquo"), max_in_flight (attempts running in
-- threads at once per worker, 8; keep it <= lua_worker_thread_vm_pool_size,
-- default 10) and metrics (boolean, true).
function _M.configure(opts)
    if type(opts) ~= "table" then
        return nil, errors.invalid("opts", "must be a table, got " .. type(opts))
    end
    local rest = {}
    for k, v in pairs(opts) do
        if k ~= "thread_pool" and k ~= "max_in_flight" and k ~= "metrics" then
            rest[k] = v
        end
    end
    local o, err = mediquo.options(rest)
    if not o then return nil, err end

    local pool = opts.thread_pool
    if pool == nil then pool = "mediquo" end
    if type(pool) ~= "string" or not pool:find("^[%w_%-%.]+$") or #pool > 64 then
        return nil, errors.invalid("thread_pool", "must be the name of an nginx thread_pool")
    end
    local mif = opts.max_in_flight
    if mif == nil then mif = 8 end
    if type(mif) ~= "number" or mif ~= floor(mif) or mif < 1 or mif > 1024 then
        return nil, errors.invalid("max_in_flight", "must be an integer from 1 to 1024")
    end
    local use_metrics = opts.metrics
    if use_metrics == nil then use_metrics = true end
    if type(use_metrics) ~= "boolean" then
        return nil, errors.invalid("metrics", "must be a boolean, got " .. type(use_metrics))
    end

    -- The metrics file follows the limiter's key and dir: one set of
    -- counters per budget. Without a limiter, keyed by the base URL.
    local mkey, mdir
    if o.rate_limit then
        mkey, mdir = o.rate_limit.key, o.rate_limit.dir
    else
        local d = limiter.normalize({}, o.base_url)
        mkey, mdir = o.base_url, d.dir
    end

    generation = generation + 1
    config = {
        pool = pool, max_in_flight = mif, metrics = use_metrics,
        metrics_key = mkey, metrics_dir = mdir,
        base_path = o.base_path, deadline = o.deadline, timeout = o.timeout,
        connect_timeout = o.connect_timeout, max_retries = o.max_retries,
        retry_post = o.retry_post, rate_limit = o.rate_limit,
        max_wait = o.rate_limit and o.rate_limit.max_wait or 0,
        period = o.rate_limit and o.rate_limit.period or 60,
        -- what crosses into the thread pool (plain values only); the id
        -- tells each thread VM when its cached client is stale
        thread = {
            id = generation, api_key = o.api_key, secret_key = o.secret_key,
            base_url = o.base_url, user_agent = o.user_agent, ca_file = o.ca_file,
            insecure = o.insecure, timeout = o.timeout,
            connect_timeout = o.connect_timeout,
        },
    }
    worker = nil
    stats = new_stats()
    return true
end

local function check_context(fname)
    if not config then
        error("mediquo.ngx." .. fname .. ": call mediquo.ngx.configure{...} first (in init_by_lua)", 3)
    end
    if not ngx then
        error("mediquo.ngx." .. fname .. ": runs only inside nginx's Lua module", 3)
    end
    local phase = ngx.get_phase()
    if not YIELDABLE[phase] then
        error("mediquo.ngx." .. fname .. " cannot run in the " .. tostring(phase)
              .. " phase: use rewrite, access, content or a timer", 3)
    end
end

-- This worker's thread slots, limiter and metrics, made on first use (after
-- the fork: nginx's master may run as another user than its workers, and
-- the files must be the workers').
local function worker_state()
    if worker then return worker end
    local w = {}
    w.sema = require("ngx.semaphore").new(0)   -- a wake-up bell, not the count
    w.in_flight = 0
    w.leases = {}
    if config.rate_limit then
        local lim, msg = core.limiter(config.rate_limit)
        if not lim then
            return nil, errors.new{ kind = "invalid_argument",
                                    message = "rate_limit: " .. tostring(msg) }
        end
        w.lim = lim
    end
    if config.metrics then
        local mx, msg = core.metrics{ key = config.metrics_key, dir = config.metrics_dir }
        if mx then
            w.mx = mx
        else
            -- counters are not worth failing calls for: say so once
            ngx.log(ngx.WARN, "mediquo.ngx: metrics disabled in this worker: ", msg)
            w.mx_error = msg
        end
    end
    -- the backoff's jitter: its own generator per worker (Park-Miller,
    -- exact in doubles), seeded apart, so workers forked from one master do
    -- not retry in step, and no one else's math.random is reseeded
    w.rng = (ngx.worker.pid() * 7919 + floor(ngx.now() * 1000)) % 2147483646 + 1
    worker = w
    return w
end

local function random(w)
    w.rng = w.rng * 16807 % 2147483647
    return (w.rng - 1) / 2147483646
end

-- Thread slots: at most max_in_flight attempts of this worker in the
-- thread pool at once (nginx has lua_worker_thread_vm_pool_size VMs; past
-- them run_worker_thread fails). A slot is a lease that ends when its call
-- could not be holding it any more (the call's deadline bounds the limiter
-- wait and cuts the attempt's timeout; plus a margin for curl to stop):
-- if the request's coroutine is killed while its attempt runs (client
-- abort with lua_check_client_abort, ngx.exit from another light thread)
-- it never gives the slot back, and the next waiter reclaims it instead
-- of the worker losing a slot for good.
local LEASE_MARGIN = 1

local function take_slot(w, deadline_at)
    local max_in_flight = config.max_in_flight
    for _ = 1, 1000000 do           -- bounded by the deadline; the count is a backstop
        local t = now()
        local next_expiry = huge
        if w.in_flight >= max_in_flight then
            for token, expires in pairs(w.leases) do
                if expires <= t then
                    w.leases[token] = nil
                    w.in_flight = w.in_flight - 1
                    ngx.log(ngx.WARN, "mediquo.ngx: reclaimed a thread slot its request never gave back")
                elseif expires < next_expiry then
                    next_expiry = expires
                end
            end
        end
        if w.in_flight < max_in_flight then
            local token = {}
            w.leases[token] = deadline_at + LEASE_MARGIN
            w.in_flight = w.in_flight + 1
            return token
        end
        local left = deadline_at - t
        if left <= 0 then return nil end
        -- woken by give_slot, or when the first lease runs out
        w.sema:wait(max(min(left, next_expiry - t), 0.001))
    end
    return nil
end

local function give_slot(w, token)
    if w.leases[token] then
        w.leases[token] = nil
        w.in_flight = w.in_flight - 1
        if w.sema:count() < 0 then w.sema:post(1) end   -- wake one waiter, if any
    end
end

-- Waits for a limiter slot by yielding; never past max_wait.
-- -> true, slept | false, slept, retry_after
local function limiter_slot(lim, max_wait)
    local t0 = now()
    local slept = false
    for _ = 1, 100000 do            -- bounded by max_wait; the count is a backstop
        local ok, wait = lim:try()
        if ok then return true, slept and now() - t0 or 0 end
        local waited = now() - t0
        if waited + wait > max_wait then
            return false, slept and waited or 0, wait
        end
        ngx.sleep(wait > 0.001 and wait or 0.001)
        slept = true
    end
    return false, now() - t0, nil
end

-- The answer of the last attempt, as mq_call_next's explain() words it:
-- why (attempt n of m[; why it stopped])
local function explain(msg, status, kind, attempts, max_attempts, stop)
    local why = msg or (status and ("HTTP " .. status)) or kind
    return format("%s (attempt %d of %d%s)", why:sub(1, 150), attempts, max_attempts,
                  stop and ("; " .. stop) or "")
end

-- The retry loop of src/call.c (mq_call, mq_call_next, mq_call_stop), with
-- yields for every wait:
-- -> kind, status, body, attempts, ambiguous_before, retry_after, message
local function call(w, st, method, path, body)
    local c = config
    local deadline_at = now() + c.deadline
    local max_attempts = c.max_retries + 1
    local ambiguous = false
    local attempts = 0

    for retry = 0, c.max_retries do
        -- A thread first, then the limiter slot, then straight out: the
        -- slot's start time is (near enough) when the request leaves, which
        -- the window guarantee is counted on.
        local slot = take_slot(w, deadline_at)
        if not slot then
            return "timeout", nil, "", attempts, ambiguous, nil,
                   format("deadline of %.3gs reached before attempt %d of %d "
                          .. "(waiting for a free worker thread: max_in_flight)",
                          c.deadline, retry + 1, max_attempts)
        end
        if w.lim then
            local mw = min(c.max_wait, deadline_at - now())
            if mw < 0 then mw = 0 end
            local got, waited, ra = limiter_slot(w.lim, mw)
            if waited > 0 then
                st.limiter_waits = st.limiter_waits + 1
                st.limiter_wait_seconds = st.limiter_wait_seconds + waited
            end
            if not got then
                give_slot(w, slot)
                return "rate_limited", nil, "", attempts, ambiguous, ra,
                       format("no rate-limit slot within %.3gs%s (before attempt %d of %d)", mw,
                              mw < c.max_wait and ", the rest of the deadline" or "",
                              retry + 1, max_attempts)
            end
        end
        local left = deadline_at - now()
        if left <= 0 then
            give_slot(w, slot)
            return "timeout", nil, "", attempts, ambiguous, nil,
                   format("deadline of %.3gs reached before attempt %d of %d",
                          c.deadline, retry + 1, max_attempts)
        end

        -- pcall: whatever happens, the thread slot is given back
        local pok, tok, outcome, tstatus, tbody, ra, rl_rem, rl_lim, rl_reset, tmsg, resent =
            pcall(ngx.run_worker_thread, c.pool, THREAD_MODULE, "attempt", c.thread,
                  method, path, body, min(c.timeout, left), min(c.connect_timeout, left))
        give_slot(w, slot)
        if not (pok and tok) then
            -- never sent (no such pool, no free VM): like a connection
            -- that was never established
            tmsg = "worker thread: " .. tostring(pok and outcome or tok)
            outcome, tstatus, tbody, ra, rl_rem, rl_lim, rl_reset = "connect", nil, "", nil, nil, nil, nil
        else
            attempts = attempts + 1
            st.requests = st.requests + 1
        end

        -- what the server's headers mean for everyone sharing the budget
        -- (mq_call_observe)
        if w.lim and outcome == "ok" then
            if tstatus == 429 then
                w.lim:pause(ra or rl_reset or c.period)
            elseif rl_rem then
                w.lim:observe(rl_rem, rl_lim, rl_reset)
            end
        end

        local kind, retryable, amb = classify(method, outcome, tstatus, c.retry_post)
        -- libcurl's one re-send on a fresh connection (src/transport.c): an
        -- earlier send of this very attempt may have been processed
        if pok and tok and resent then ambiguous = true end
        local ambiguous_before = ambiguous
        ambiguous = ambiguous or amb
        local whole = outcome == "ok"
        -- a too-big body still came with a status: say which (as call.c)
        local status = (whole or outcome == "too_big") and tstatus or nil
        local rbody = whole and tbody or ""
        if kind == "ok" then
            return kind, status, rbody, attempts, ambiguous_before, ra, nil
        end
        if not retryable or retry >= c.max_retries then
            return kind, status, rbody, attempts, ambiguous_before, ra,
                   explain(tmsg, status, kind, attempts, max_attempts,
                           not retryable and amb
                           and "not retried: it may have been processed, see retry_post" or nil)
        end
        local wait = backoff(retry + 1, random(w))
        if ra and ra > wait then wait = ra end
        if now() + wait >= deadline_at then
            -- the next attempt could not start in time: this is the answer
            return kind, status, rbody, attempts, ambiguous_before, ra,
                   explain(tmsg, status, kind, attempts, max_attempts,
                           format("no time for another within the deadline of %.3gs", c.deadline))
        end
        ngx.sleep(wait)
        st.retries = st.retries + 1
    end
    error("mediquo.ngx: unreachable")   -- the loop returns on its last attempt
end

local function count(w, st, op, kind, t0, retries0, waits0, wait_s0, attempts)
    if kind == "ok" then
        st.ok = st.ok + 1
    else
        st.by_kind[kind] = (st.by_kind[kind] or 0) + 1
    end
    if w and w.mx then
        w.mx:add(op, kind, now() - t0, st.retries - retries0, st.limiter_waits - waits0,
                 st.limiter_wait_seconds - wait_s0, attempts)
    end
end

local function perform(fname, op, a, b)
    check_context(fname)
    local t0 = now()
    local st = stats
    local req, err = protocol.build(op, a, b)
    if not req then
        local w = worker_state()
        count(w, st, op, "invalid_argument", t0, st.retries, st.limiter_waits,
              st.limiter_wait_seconds, 0)
        return nil, err
    end
    local w
    w, err = worker_state()
    if not w then
        count(nil, st, op, err.kind, t0, 0, 0, 0, 0)
        return nil, err
    end
    local retries0, waits0, wait_s0 = st.retries, st.limiter_waits, st.limiter_wait_seconds
    local base = config.base_path

    local kind, status, body, attempts, ambiguous, retry_after, message =
        call(w, st, req.method, req.path, req.body)
    local value, confirm
    value, err, confirm = protocol.shape(req, base, kind, status, body, attempts,
                                         ambiguous, retry_after, message)
    local total = attempts
    if confirm then
        -- The create reached the server on an earlier attempt: a reschedule
        -- to the same start is idempotent and hands back a live URL.
        local put = protocol.build("reschedule", req.code, req.starts_at)
        kind, status, body, attempts, ambiguous, retry_after, message =
            call(w, st, put.method, put.path, put.body)
        value, err = protocol.shape(put, base, kind, status, body, attempts,
                                    ambiguous, retry_after, message)
        total = total + attempts
        if err then err.attempts = total end
    end
    count(w, st, op, value and "ok" or err.kind, t0, retries0, waits0, wait_s0, total)
    return value, err
end

-- create(a) -> { code, url } | nil, err
function _M.create(a)
    return perform("create", "create", a)
end

-- reschedule(code, starts_at) -> { code, url } | nil, err
function _M.reschedule(code, starts_at)
    return perform("reschedule", "reschedule", code, starts_at)
end

-- cancel(code) -> true | nil, err
function _M.cancel(code)
    return perform("cancel", "cancel", code)
end

-- stats() -> this worker's counters since configure (as client:stats());
-- metrics() has the host-wide ones.
function _M.stats()
    local st = stats or new_stats()
    local by = {}
    for k, n in pairs(st.by_kind) do by[k] = n end
    return { requests = st.requests, ok = st.ok, retries = st.retries, by_kind = by,
             limiter_waits = st.limiter_waits,
             limiter_wait_seconds = st.limiter_wait_seconds }
end

local function num(v)
    if v == floor(v) and v < 2 ^ 53 then return format("%d", v) end
    return format("%.6f", v)
end

local function family(out, name, typ, help)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. typ
end

-- metrics() -> Prometheus text exposition (format 0.0.4) | nil, err
-- Host-wide: the same numbers from every worker (a shared file).
function _M.metrics()
    if not config then
        error("mediquo.ngx.metrics: call mediquo.ngx.configure{...} first", 2)
    end
    if not config.metrics then
        return nil, errors.new{ kind = "invalid_argument", message = "metrics: disabled by configure" }
    end
    local w, err = worker_state()
    if not w then return nil, err end
    if not w.mx then
        return nil, errors.new{ kind = "invalid_argument",
                                message = "metrics: " .. tostring(w.mx_error) }
    end
    local s = w.mx:snapshot()
    local out = {}
    family(out, "mediquo_requests_total", "counter",
           "mediQuo API calls finished, by operation and outcome (ok or the error kind).")
    for _, op in ipairs(OPS) do
        local by = s.requests[op]
        for _, kind in ipairs(KINDS) do
            out[#out + 1] = format('mediquo_requests_total{op="%s",kind="%s"} %s',
                                   op, kind, num(by[kind] or 0))
        end
    end
    family(out, "mediquo_attempts_total", "counter",
           "HTTP requests sent to the API (every attempt, retries included).")
    out[#out + 1] = "mediquo_attempts_total " .. num(s.attempts)
    family(out, "mediquo_retries_total", "counter", "Attempts after the first, within calls.")
    out[#out + 1] = "mediquo_retries_total " .. num(s.retries)
    family(out, "mediquo_limiter_waits_total", "counter",
           "Attempts that waited for a slot of the shared rate limiter.")
    out[#out + 1] = "mediquo_limiter_waits_total " .. num(s.limiter_waits)
    family(out, "mediquo_limiter_wait_seconds_total", "counter",
           "Seconds spent waiting for rate-limiter slots.")
    out[#out + 1] = "mediquo_limiter_wait_seconds_total " .. num(s.limiter_wait_seconds)
    family(out, "mediquo_request_duration_seconds", "histogram",
           "Whole-call latency: thread and limiter waits, attempts and backoff.")
    for _, b in ipairs(s.latency.buckets) do
        local le = b.le == huge and "+Inf" or format("%g", b.le)
        out[#out + 1] = format('mediquo_request_duration_seconds_bucket{le="%s"} %s', le, num(b.count))
    end
    out[#out + 1] = "mediquo_request_duration_seconds_sum " .. format("%.6f", s.latency.sum)
    out[#out + 1] = "mediquo_request_duration_seconds_count " .. num(s.latency.count)
    out[#out + 1] = ""
    return concat(out, "\n")
end

return _M
