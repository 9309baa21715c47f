-- mediquo: create, reschedule and cancel mediQuo video-call appointments.
--
--   local mediquo = require "mediquo"
--   local client = assert(mediquo.new{ api_key = ..., secret_key = ... })
--   local appt, err = client:create{ code = "A1", starts_at = "2030-05-20T10:00:00Z",
--                                    patient = "P1", professional = "prof-demo-1" }
--
-- The C core (mediquo.core) decides every call (its engine: checks,
-- request, retries, reconciliation, messages) and drives it (libcurl, the
-- shared limiter); this module does the options and wraps errors.
-- Failures are returned as `nil, err`, never raised.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"
local limiter = require "mediquo.limiter"

local setmetatable = setmetatable
local type = type
local tostring = tostring
local error = error
local wrap = errors.wrap

local _M = { _VERSION = core._VERSION }
local mt = { __index = _M }

local DEFAULT_BASE = "https://sdk.mediquo.com/v1"

local OPTIONS = {
    api_key = true, secret_key = true, base_url = true, timeout = true,
    connect_timeout = true, deadline = true, max_retries = true,
    retry_post = true, rate_limit = true, ca_file = true, insecure = true,
    user_agent = true,
}

local function secret(field, v)
    if type(v) ~= "string" or v == "" then
        return nil, errors.invalid(field, "is required (a non-empty string)")
    end
    if #v > 1024 or v:find("[%z\1-\31\127]") then
        return nil, errors.invalid(field, "must be at most 1024 bytes with no control characters")
    end
    return v
end

-- mediquo.options(opts) -> the normalised options | nil, err
-- For adapters (mediquo.ngx, the CLI): the options of mediquo.new checked
-- and with their defaults, as mediquo.new uses them: api_key, secret_key,
-- base_url (no trailing slash), base_path ("/v1"), timeout,
-- connect_timeout, deadline, max_retries, retry_post, insecure, ca_file,
-- user_agent, rate_limit (the limiter's normalised table, or nil when
-- turned off). The keys are in it: never log it.
local function options(opts)
    local v = validate
    local ok, err = v.fields("opts", opts, OPTIONS)
    if not ok then return nil, err end
    local o = {}
    o.api_key, err = secret("api_key", opts.api_key)
    if not o.api_key then return nil, err end
    o.secret_key, err = secret("secret_key", opts.secret_key)
    if not o.secret_key then return nil, err end
    o.insecure, err = v.boolean("insecure", opts.insecure, false)
    if err then return nil, err end
    local base
    base, err = v.base_url(opts.base_url == nil and DEFAULT_BASE or opts.base_url, o.insecure)
    if not base then return nil, err end
    o.base_url, o.base_path = base.url, base.path
    o.timeout, err = v.number("timeout", opts.timeout, 10)
    if not o.timeout then return nil, err end
    o.connect_timeout, err = v.number("connect_timeout", opts.connect_timeout, 3)
    if not o.connect_timeout then return nil, err end
    o.deadline, err = v.number("deadline", opts.deadline, 30)
    if not o.deadline then return nil, err end
    local mr = opts.max_retries
    if mr == nil then
        mr = 2
    else
        local good, why = core.check_max_retries(mr)    -- the engine's rule (engine.c)
        if not good then return nil, errors.invalid("max_retries", why) end
    end
    o.max_retries = mr
    o.retry_post, err = v.boolean("retry_post", opts.retry_post, false)
    if err then return nil, err end
    if opts.ca_file ~= nil then
        if type(opts.ca_file) ~= "string" or opts.ca_file == "" then
            return nil, errors.invalid("ca_file", "must be a path to a CA bundle")
        end
        -- a path of the right shape that cannot be read is the host's
        -- setup (README.md, "Error objects": kind config), not the caller's input
        local f = io.open(opts.ca_file, "rb")
        if not f then
            return nil, errors.new{ kind = "config", field = "ca_file", retryable = false,
                                    effect = "none", message = "ca_file: cannot be read" }
        end
        f:close()
        o.ca_file = opts.ca_file
    end
    if opts.user_agent ~= nil then
        o.user_agent, err = v.text("user_agent", opts.user_agent, 256)
        if not o.user_agent then return nil, err end
    end
    local rl = opts.rate_limit
    if rl == nil then rl = {} end
    if rl ~= false then
        if type(rl) ~= "table" then
            return nil, errors.invalid("rate_limit", "must be a table or false")
        end
        o.rate_limit, err = limiter.normalize(rl, base.host .. ":" .. base.port)
        if not o.rate_limit then return nil, err end
    end
    return o
end
_M.options = options

-- mediquo.new(opts) -> client | nil, err
function _M.new(opts)
    local o, err = options(opts)
    if not o then return nil, err end
    local lim
    if o.rate_limit then
        lim, err = limiter.open(o.rate_limit)   -- kind config when the file cannot be had
        if not lim then return nil, err end
    end
    local c, msg = core.client{
        api_key = o.api_key, secret_key = o.secret_key, base_url = o.base_url,
        user_agent = o.user_agent, ca_file = o.ca_file, insecure = o.insecure,
        timeout = o.timeout, connect_timeout = o.connect_timeout,
        deadline = o.deadline, max_retries = o.max_retries,
        retry_post = o.retry_post, limiter = lim,
        max_wait = o.rate_limit and o.rate_limit.max_wait or 0,
        limiter_period = o.rate_limit and o.rate_limit.period or 60,
    }
    if not c then
        return nil, errors.new{ kind = "invalid_argument", message = msg }
    end
    return setmetatable({
        _core = c,
        _base_url = o.base_url,
    }, mt)
end

local function closed()
    error("mediquo client is closed", 3)
end

-- client:create(a) -> { code, url } | nil, err
function _M:create(a)
    local c = self._core
    if not c then closed() end
    local v, e = c:create(a)
    if v then return v end
    return nil, wrap(e)
end

-- client:reschedule(code, starts_at) -> { code, url } | nil, err
function _M:reschedule(code, starts_at)
    local c = self._core
    if not c then closed() end
    local v, e = c:reschedule(code, starts_at)
    if v then return v end
    return nil, wrap(e)
end

-- client:cancel(code) -> true | nil, err
function _M:cancel(code)
    local c = self._core
    if not c then closed() end
    local v, e = c:cancel(code)
    if v then return v end
    return nil, wrap(e)
end

-- Webhook subscriptions (the organization's, /v1/organizations/webhooks/),
-- through the same engine: budget, retries, deadline, effect. A subscribe
-- whose attempt may have been processed is settled by listing before it is
-- sent again, so a retry never makes two.
local function subscription_op(self, op, a, b)
    local c = self._core
    if not c then closed() end
    local v, e = c[op](c, a, b)
    if v then return _M.webhook.result(op, v) end
    return nil, wrap(e)
end

-- client:webhooks() -> { {id, type, channel, meta}, ... } | nil, err
function _M:webhooks() return subscription_op(self, "webhooks") end
-- client:subscribe{ type, url, headers } -> { id, type, channel, meta } | nil, err
function _M:subscribe(t) return subscription_op(self, "subscribe", t) end
-- client:update_subscription(id, { type, url, headers }) -> subscription | nil, err
function _M:update_subscription(id, t) return subscription_op(self, "update_subscription", id, t) end
-- client:unsubscribe(id) -> true | nil, err
function _M:unsubscribe(id) return subscription_op(self, "unsubscribe", id) end

-- mediquo.core_of(client) -> the client's mediquo.core client (the C
-- engine, transport and limiter it drives), or nil once closed. For the
-- library's own drivers (mediquo.batch runs its calls through it); not
-- part of the application API.
function _M.core_of(client)
    return client._core
end

-- client:run_batch(ops, opts) -> results, summary (mediquo.batch: several
-- calls in flight at once, for automation hosts)
function _M:run_batch(ops, opts)
    return require("mediquo.batch").run(self, ops, opts)
end

-- client:stats() -> counters since the client was made (the engine's:
-- every call, batches' included)
function _M:stats()
    return self._core and self._core:stats() or {
        requests = 0, retries = 0, ok = 0, by_kind = {}, limiter_waits = 0,
        limiter_wait_seconds = 0 }
end

-- client:close(): frees the connection now (idempotent)
function _M:close()
    local c = self._core
    if c then
        self._core = nil
        c:close()
    end
end

mt.__close = _M.close
mt.__tostring = function(self)
    return "mediquo.client(" .. tostring(self._base_url) .. (self._core and ")" or ", closed)")
end

-- mediquo.webhook.parse{...}: receiving mediQuo's deliveries (mediquo.webhook)
_M.webhook = require "mediquo.webhook"

-- mediquo.limiter(opts) -> limiter | nil, err  (see mediquo.limiter)
function _M.limiter(opts)
    return limiter.new(opts)
end

return _M
