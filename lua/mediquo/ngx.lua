-- mediquo.ngx: the OpenResty/nginx adapter. Same calls as a mediquo client,
-- and the same outcome for the same server behaviour, because the same
-- engine decides (core.engine, src/engine.c: validation, requests,
-- retries, backoff, the deadline, exactly-once, every message). This file
-- is only the nginx driver: it asks the engine what to do next and does
-- it with nginx's own non-blocking I/O --
--
--   * "send":    one HTTP attempt on a cosocket (mediquo.ngx_http: keep-alive
--                pool per worker, TLS verified by nginx, answer read in C);
--   * "slot":    a slot of the shared limiter (mediquo.ngx_limiter: try,
--                ngx.sleep while there is none);
--   * "backoff": ngx.sleep.
--
-- Nothing waits in a thread or blocks the event loop: as many calls may be
-- in flight as requests the worker holds. A call in flight when nginx
-- reloads or stops gracefully runs to its end (nginx waits for it). The
-- limiter is the host-wide one (every worker, every process using the same
-- key). Counters go to a shared file (core.metrics) readable as
-- Prometheus text from any worker.
--
--   init_by_lua_block { assert(require("mediquo.ngx").configure{ api_key = ..., secret_key = ... }) }
--   content_by_lua_block { local appt, err = require("mediquo.ngx").create{ ... } }

local mediquo = require "mediquo"
local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"
local limiter = require "mediquo.limiter"
local http = require "mediquo.ngx_http"
local ngx_limiter = require "mediquo.ngx_limiter"
local ngx_reply = require "mediquo.ngx_reply"
local ngx_body = require "mediquo.ngx_body"
local ngx_status = require "mediquo.ngx_status"
local ngx_startup = require "mediquo.ngx_startup"
local ngx_redis = require "mediquo.ngx_redis"
local ngx_log = require "mediquo.ngx_log"

local ngx = ngx
local type = type
local setmetatable = setmetatable
local getmetatable = getmetatable
local pairs = pairs
local ipairs = ipairs
local error = error
local tostring = tostring
local floor = math.floor
local huge = math.huge
local format = string.format
local concat = table.concat
local sort = table.sort
local now = require("mediquo.ngx_clock")

local _M = { _VERSION = core._VERSION }

-- phases where cosockets and ngx.sleep may yield
local YIELDABLE = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local OPS = {} for _, op in ipairs(core.OPS) do if core.OP_FIELDS[op] then OPS[#OPS + 1] = op end end

local config      -- set by configure(): normalised options, never shown
local worker      -- this worker's engine, transport, limiter, metrics (made lazily)
local extra       -- calls the engine never saw (no engine could be made)
local failed_engine -- the engine of a worker set-up that failed after making it

-- configure(opts) -> true | nil, err
-- opts: everything mediquo.new takes, plus metrics (boolean, true).
function _M.configure(opts)
    if type(opts) ~= "table" then
        return nil, errors.invalid("opts", "must be a table, got " .. type(opts))
    end
    local rest = {}
    for k, v in pairs(opts) do
        if k ~= "metrics" then rest[k] = v end
    end
    local o, err = mediquo.options(rest)
    if not o then return nil, err end
    local use_metrics = opts.metrics
    if use_metrics == nil then use_metrics = true end
    if type(use_metrics) ~= "boolean" then
        return nil, errors.invalid("metrics", "must be a boolean, got " .. type(use_metrics))
    end
    local base = assert(validate.base_url(o.base_url, o.insecure))

    -- The metrics file follows the limiter's key and dir: one set of
    -- counters per budget. Without a limiter, keyed by the base URL.
    local mkey, mdir, mgroup
    if o.rate_limit then
        mkey, mdir, mgroup = o.rate_limit.key, o.rate_limit.dir, o.rate_limit.group
    else
        mkey = o.base_url
    end

    config = {
        o = o, base = base, metrics = use_metrics, metrics_key = mkey, metrics_dir = mdir,
        metrics_group = mgroup, checks = {},
    }
    worker = nil
    failed_engine = nil
    extra = { config = 0 }
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

local function config_error(message)
    return errors.new{ kind = "config", message = message, retryable = false,
                       attempts = 0, effect = "none" }
end

-- This worker's engine, transport, limiter and metrics, made on first use
-- (after the fork: nginx's master may run as another user than its
-- workers, and the files must be the workers'). A failure is the host's
-- setup: the call ends in the engine as kind config (call:fault), and the
-- set-up is tried again on the next call.
-- worker_state() -> w | nil, what, why (w.engine may be there either way)
local function worker_state()
    if worker then return worker end
    local o, rl = config.o, config.o.rate_limit
    local w = {}
    local eng, msg = failed_engine
    if not eng then
        eng, msg = core.engine{
            base_url = o.base_url, timeout = o.timeout, connect_timeout = o.connect_timeout,
            deadline = o.deadline, max_retries = o.max_retries, retry_post = o.retry_post,
            max_wait = rl and rl.max_wait or nil, limiter_period = rl and rl.period or nil,
            api_key = o.api_key, secret_key = o.secret_key,
        }
        if not eng then return nil, "engine", tostring(msg) end
    end
    w.engine = eng
    w.calls = {}        -- done calls of eng, to start again
    failed_engine = eng
    local b = config.base
    w.http, msg = http.new{
        scheme = b.scheme, host = b.host, port = b.port, api_key = o.api_key,
        secret_key = o.secret_key, user_agent = o.user_agent, insecure = o.insecure,
        ca_file = o.ca_file,
    }
    if not w.http then return nil, "transport", tostring(msg) end
    if rl then
        -- limiter.open: the private default dir when none is given. With
        -- rate_limit.redis every round trip to Redis goes on a cosocket
        -- (mediquo.ngx_redis, through ngx_limiter.wait): never one from C
        local ro = rl
        if rl.redis then
            ro = {}
            for k, v in pairs(rl) do ro[k] = v end
            ro.redis_cosocket = true
        end
        local lim, lerr = limiter.open(ro)
        -- limiter.open's message already starts "rate_limit: "
        if not lim then return nil, "rate_limit", (lerr.message:gsub("^rate_limit: ", "")) end
        w.lim = lim
        w.redis = rl.redis
    end
    if config.metrics then
        -- the limiter's dir (its default made above), else the default
        local mx
        local mdir = config.metrics_dir or (rl and rl.dir)
        if not mdir then mdir, msg = core.limiter_default_dir(config.metrics_group) end
        if mdir then
            mx, msg = core.metrics{ key = config.metrics_key, dir = mdir,
                                    group = config.metrics_group }
        end
        if mx then
            w.mx = mx
        else
            -- counters are not worth failing calls for: say so once
            ngx.log(ngx.WARN, "mediquo.ngx: metrics disabled in this worker: ", msg)
            w.mx_error = msg
        end
    end
    failed_engine = nil
    worker = w
    return w
end

-- (t1: the clock's last reading, when the engine was told the call's end)
local function count(w, op, kind, t0, t1, retries, waits, wait_s, attempts)
    if w and w.mx and (op == "create" or op == "reschedule" or op == "cancel") then
        local ok, err = w.mx:add(op, kind, t1 - t0, retries, waits, wait_s, attempts)
        if not ok then
            -- the file was cut short: this call's counts are lost, the
            -- next call maps it again; counters are not worth failing for
            ngx.log(ngx.WARN, "mediquo.ngx: ", err)
        end
    end
end

-- a host fault the driver meets: in error.log once per cause, then once a
-- minute (mediquo.ngx_log); the call's error is marked so that reply does
-- not log it again
local function log_setup(what, why)
    ngx_log.fault(what .. ": " .. why, "mediquo.ngx: ", what, ": ", why)
end

-- One call: the engine decides, this loop moves bytes and waits.
local function perform(fname, op, a, b)
    check_context(fname)
    local t0 = now()
    local w, what, why = worker_state()
    local eng = w and w.engine or failed_engine
    if not eng then
        -- no engine at all (its options were refused): nothing to ask
        extra.config = extra.config + 1
        log_setup(what, why)
        return nil, ngx_log.mark(config_error(what .. ": " .. why))
    end
    local lim, conn = w and w.lim, w and w.http
    local attempts, retries, waits, wait_s = 0, 0, 0, 0
    -- a done call of this worker's engine is started again (a call is
    -- ~6 KB of C state: not one made and collected per request)
    local calls = w and w.calls
    local spare
    if calls then
        local n = #calls
        if n > 0 then
            spare = calls[n]
            calls[n] = nil
        end
    end
    -- with a budget of this host's own (not Redis) the first slot is taken
    -- in eng:start when one is free (action "send"); "slot" when the
    -- driver must wait for it (no lim:try and call:slot from Lua)
    local call, action, step = eng:start(op, a, b, t0, nil, spare,
                                         not (w and w.redis) and lim or nil)
    -- tn: the clock's last reading, what the engine was last told; the
    -- next attempt's timeout and the call's latency count from it (between
    -- it and them the worker only runs C and Lua: no yield)
    local tn = t0
    local logged = false    -- this call's cause is in error.log (ngx_log.mark)
    local value, e          -- the result, when call:answer ends the call
    if not w and action ~= "done" then
        -- the worker's set-up failed: the host's, and the engine says so
        -- (and counts it)
        log_setup(what, why)
        logged = true
        action, step = call:fault(what, why)
    end
    for _ = 1, 100000 do        -- bounded by the deadline; the count is a backstop
        if action == "send" then
            local head, body, timeout, connect_timeout = call:request_head(conn.w)
            local outcome, p, status = conn:attempt(head, body, timeout, connect_timeout, tn)
            tn = now()
            if outcome == "ok" then
                -- the answer (p, the parser) read by the engine in C, and
                -- what it means for the shared budget applied to lim
                attempts = attempts + 1
                action, step, value, e = call:answer(p, tn, lim)
                http.release(p)
            elseif outcome == "config" then
                -- nginx lacks a directive: nothing was sent, and no retry
                -- can help; the operator must change nginx.conf (p: why)
                ngx_log.fault(p, "mediquo.ngx: ", p)
                logged = true
                action, step = call:fault("nginx", p)
            else
                attempts = attempts + 1
                action, step = call:failure(outcome, p, tn, status)
            end
        elseif action == "slot" then
            local granted, waited, retry_after, fault = true, 0, nil, nil
            if lim then granted, waited, retry_after, fault = ngx_limiter.wait(lim, step.max_wait, w.redis) end
            if waited > 0 then
                waits, wait_s = waits + 1, wait_s + waited
            end
            tn = now()      -- the wait may have slept, or made a Redis round trip
            if fault then
                -- a state file unusable, Redis refusing the setup: the
                -- host's; logged once per cause, then once a minute
                ngx_redis.log_fault(fault)
                logged = true
                action, step = call:fault("rate_limit", fault)
            else
                action, step = call:slot(granted, waited, retry_after, tn)
            end
        elseif action == "backoff" then
            -- full jitter may draw 0: nginx warns on ngx.sleep(0) (a
            -- yield with no timer), and there is nothing to wait for
            local backoff = step.backoff
            if backoff > 0 then ngx.sleep(backoff) end
            retries = retries + 1
            tn = now()
            action, step = call:wake(tn)
        else
            break           -- "done"
        end
    end
    if value == nil and e == nil then value, e = call:result() end
    if calls and #calls < 64 then calls[#calls + 1] = call end
    if value then
        count(w, op, "ok", t0, tn, retries, waits, wait_s, attempts)
        return value
    end
    count(w, op, e.kind, t0, tn, retries, waits, wait_s, e.attempts or attempts)
    local err = errors.new(e)
    if logged then ngx_log.mark(err) end
    return nil, err
end

-- what create returned carries this (empty) metatable: reply answers it
-- 201 (invisible to pairs and to JSON encoders)
local CREATED = {}
-- init_worker_redis(): the Redis start-up check (init_worker runs it): one
-- round trip from a 0-delay timer, a refused AUTH or certificate logged
-- at error before any traffic (mediquo.ngx_redis.check)
function _M.init_worker_redis()
    local rl = config and config.o.rate_limit
    if not (rl and rl.redis) then return true end
    return ngx.timer.at(0, function(premature)
        local w = not premature and worker_state()
        if w and w.lim then ngx_redis.check(w.lim, w.redis) end
    end)
end

-- create(a) -> { code, url } | nil, err
function _M.create(a)
    local v, e = perform("create", "create", a)
    if v then setmetatable(v, CREATED) end
    return v, e
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
    local st = { requests = 0, ok = 0, retries = 0, by_kind = {}, limiter_waits = 0,
                 limiter_wait_seconds = 0 }
    local eng = worker and worker.engine or failed_engine
    if eng then
        local s = eng:stats()
        for k, v in pairs(s) do
            if k ~= "by_kind" then st[k] = v end
        end
        for k, n in pairs(s.by_kind or {}) do st.by_kind[k] = n end
    end
    if extra and extra.config > 0 then
        st.by_kind.config = (st.by_kind.config or 0) + extra.config
    end
    return st
end

-- the shared budget for X-RateLimit-*: limit, remaining | nil
local function budget()
    local lim = worker and worker.lim
    if not lim then return nil end
    return lim:budget()
end

-- reply(value, err [, opts]): the HTTP answer for one call's outcome
-- (mediquo.ngx_reply), then ngx.exit. opts.headers = false: no X-RateLimit-*.
function _M.reply(value, err, opts)
    local limit, remaining
    if not (opts and opts.headers == false) then limit, remaining = budget() end
    return ngx_reply.reply(value, err, opts, type(value) == "table" and getmetatable(value) == CREATED,
                           limit, remaining)
end

-- read(op) -> the fields of op from the request (JSON body, form, query
-- args) | nil, err (invalid_argument naming the field; 405 for a method
-- op does not take). mediquo.ngx_body.
_M.read = ngx_body.read

-- status([opts]) -> answers the operator's JSON page (opts.send = false:
-- returns the table instead). mediquo.ngx_status.
function _M.status(opts)
    if not config then
        error("mediquo.ngx.status: call mediquo.ngx.configure{...} first", 2)
    end
    local w, what, why = worker_state()
    local t = ngx_status.page{
        o = config.o, base_url = config.o.base_url, w = w,
        why = not w and (tostring(what) .. ": " .. tostring(why)) or nil,
        stats = _M.stats(), checks = config.checks,
    }
    if opts and opts.send == false then return t end
    return ngx_status.send(t)
end

-- init_worker(): start-up checks in this worker, without waiting for
-- traffic (mediquo.ngx_startup). Call it from init_worker_by_lua_block.
function _M.init_worker()
    if not config then
        error("mediquo.ngx.init_worker: call mediquo.ngx.configure{...} first (in init_by_lua)", 2)
    end
    local rl = config.o.rate_limit
    local dir = rl and rl.dir
    if rl and not dir then dir = core.limiter_default_dir(rl.group) end
    local ok, err = ngx_startup.run{
        setup = worker_state, has_limiter = rl and true or false, dir = dir,
        group = rl and rl.group, results = config.checks,
    }
    if not ok then return ok, err end
    -- and Redis (AUTH, TLS), when the budget is shared through it
    return _M.init_worker_redis()
end

local function num(v)
    if v == floor(v) and v < 2 ^ 53 then return format("%d", v) end
    return format("%.6f", v)
end

local function family(out, name, typ, help)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. typ
end

-- "ok" and every error kind, in a stable order
local function kinds()
    local list = {}
    for k in pairs(errors.KINDS) do list[#list + 1] = k end
    sort(list)
    table.insert(list, 1, "ok")
    return list
end

-- metrics() -> Prometheus text exposition (format 0.0.4) | nil, err
-- Host-wide: the same numbers from every worker (a shared file).
function _M.metrics()
    if not config then
        error("mediquo.ngx.metrics: call mediquo.ngx.configure{...} first", 2)
    end
    if not config.metrics then
        return nil, config_error("metrics: disabled by configure")
    end
    local w, what, why = worker_state()
    if not w then return nil, config_error(what .. ": " .. why) end
    if not w.mx then
        return nil, config_error("metrics: " .. tostring(w.mx_error))
    end
    local s, serr = w.mx:snapshot()
    if not s then return nil, config_error(serr) end
    local out = {}
    family(out, "mediquo_requests_total", "counter",
           "mediQuo API calls finished, by operation and outcome (ok or the error kind).")
    local KINDS = kinds()
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
           "Whole-call latency: limiter waits, attempts and backoff.")
    for _, bk in ipairs(s.latency.buckets) do
        local le = bk.le == huge and "+Inf" or format("%g", bk.le)
        out[#out + 1] = format('mediquo_request_duration_seconds_bucket{le="%s"} %s', le, num(bk.count))
    end
    out[#out + 1] = "mediquo_request_duration_seconds_sum " .. format("%.6f", s.latency.sum)
    out[#out + 1] = "mediquo_request_duration_seconds_count " .. num(s.latency.count)
    out[#out + 1] = ""
    return concat(out, "\n")
end

-- webhooks() / subscribe(t) / update_subscription(id, t) / unsubscribe(id):
-- the organization's webhook subscriptions, as mediquo's client has them
local webhook = require "mediquo.webhook"
for _, op in ipairs{ "webhooks", "subscribe", "update_subscription", "unsubscribe" } do
    _M[op] = function(a, b)
        local v, err = perform(op, op, a, b)
        if v == nil then return nil, err end
        return webhook.result(op, v)
    end
end

-- receive{ secret, on_event, dedupe, max_body }: a whole content handler for webhooks
_M.receive = require("mediquo.ngx_webhook").receive

return _M
