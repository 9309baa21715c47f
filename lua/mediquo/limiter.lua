-- mediquo.limiter: the host-wide rate limiter as a Lua object, and the
-- validation of the `rate_limit` option the client shares. The rules live
-- in C (mediquo.core, limiter.c): one budget per key for every process and
-- thread on the host, in a 0600 file under `dir`.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"

local type = type
local tostring = tostring
local pairs = pairs
local huge = math.huge
local is_integer = validate.is_integer
local format = string.format
local setmetatable = setmetatable
local getenv = os.getenv

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

_M.DEFAULT_KEY = "sdk.mediquo.com:443"   -- the default base_url's host:port
_M.MAX_PER_MINUTE = 1000000              -- the ring in the file holds this many


local function default_dir()
    if core.limiter_dir_ok("/dev/shm") then return "/dev/shm" end
    return getenv("TMPDIR") or "/tmp"
end

local FIELDS = { per_minute = true, burst = true, period = true, key = true,
                 max_wait = true, dir = true, redis = true, fallback_per_minute = true,
                 redis_timeout = true }

-- normalize(opts, default_key) -> cfg | nil, err
-- Checks a `rate_limit` table and fills its defaults; refuses unknown fields
-- (a typo such as `per_min` must not silently leave the default in force).
function _M.normalize(opts, default_key)
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
        return nil, errors.invalid("rate_limit", "must be a table or false")
    end
    for k in pairs(opts) do
        if not FIELDS[k] then
            return nil, errors.invalid("rate_limit." .. tostring(k), "is not a known field")
        end
    end

    local per_minute = opts.per_minute
    if per_minute == nil then per_minute = 600 end
    if not is_integer(per_minute) or per_minute <= 0 then
        return nil, errors.invalid("rate_limit.per_minute", "must be an integer > 0")
    end
    if per_minute > _M.MAX_PER_MINUTE then
        return nil, errors.invalid("rate_limit.per_minute",
                                   format("must be at most %d", _M.MAX_PER_MINUTE))
    end

    local burst = opts.burst
    if burst == nil then burst = per_minute < 60 and per_minute or 60 end
    if not is_integer(burst) or burst < 1 or burst > per_minute then
        return nil, errors.invalid("rate_limit.burst",
                                   "must be an integer from 1 to per_minute")
    end

    local period = opts.period
    if period == nil then period = 60 end
    if type(period) ~= "number" or period ~= period or period <= 0 or period > 86400 then
        return nil, errors.invalid("rate_limit.period", "must be a number > 0 (seconds, at most 86400)")
    end

    local key = opts.key
    if key == nil then key = default_key end
    if type(key) ~= "string" or key == "" then
        return nil, errors.invalid("rate_limit.key", "must be a non-empty string")
    end

    local max_wait = opts.max_wait
    if max_wait == nil then max_wait = 10 end
    if type(max_wait) ~= "number" or max_wait ~= max_wait or max_wait < 0 or max_wait == huge then
        return nil, errors.invalid("rate_limit.max_wait", "must be a number >= 0")
    end

    local dir = opts.dir
    if dir == nil then dir = default_dir() end
    if type(dir) ~= "string" or dir == "" then
        return nil, errors.invalid("rate_limit.dir", "must be a non-empty string")
    end

    -- across hosts: the URL is parsed (in C, as the connection will) now,
    -- so a typo is invalid_argument before anything runs
    local redis = opts.redis
    if redis ~= nil then
        if type(redis) ~= "string" then
            return nil, errors.invalid("rate_limit.redis", "must be a redis:// or unix:// URL")
        end
        local u, why = core.redis_url(redis)
        if not u then return nil, errors.invalid("rate_limit.redis", why) end
    end
    local fallback = opts.fallback_per_minute
    if fallback ~= nil and (not is_integer(fallback) or fallback < 0 or fallback > per_minute) then
        return nil, errors.invalid("rate_limit.fallback_per_minute",
                                   "must be an integer from 0 to per_minute")
    end
    local rt = opts.redis_timeout
    if rt ~= nil and (type(rt) ~= "number" or rt ~= rt or rt < 0.001 or rt > 10) then
        return nil, errors.invalid("rate_limit.redis_timeout", "must be seconds from 0.001 to 10")
    end

    return {
        per_minute = per_minute, burst = burst, period = period, key = key,
        max_wait = max_wait, dir = dir, redis = redis, fallback_per_minute = fallback,
        redis_timeout = rt,
    }
end

-- what core.limiter's (nil, message, kind) means as an error object
function _M.open_error(msg, kind)
    if kind == "config" then
        return errors.new{ kind = "config", message = "rate_limit.redis: " .. tostring(msg) }
    elseif kind == "invalid_argument" then
        return errors.invalid("rate_limit.redis", msg)
    end
    return errors.invalid("rate_limit.dir", msg)
end

-- new(opts) -> limiter | nil, err   (mediquo.limiter(opts))
function _M.new(opts)
    local cfg, err = _M.normalize(opts, _M.DEFAULT_KEY)
    if not cfg then return nil, err end
    local lim, msg, kind = core.limiter(cfg)
    if not lim then
        -- the file could not be made or trusted, or Redis refused us: say which and why
        return nil, _M.open_error(msg, kind)
    end
    return setmetatable({ core = lim, max_wait = cfg.max_wait, key = cfg.key }, mt)
end

-- limiter:acquire([max_wait]) -> true | nil, err (kind rate_limited)
function _M.acquire(self, max_wait)
    if max_wait == nil then max_wait = self.max_wait end
    if type(max_wait) ~= "number" or max_wait ~= max_wait or max_wait < 0 then
        return nil, errors.invalid("max_wait", "must be a number >= 0")
    end
    local ok, retry_after = self.core:acquire(max_wait)
    if ok then return true end
    return nil, errors.new{
        kind = "rate_limited",
        retry_after = retry_after,
        message = format("no rate-limit slot within %gs", max_wait),
    }
end

-- limiter:status() -> { per_minute, used, available, paused_until, backend,
-- degraded, hosts[, error] } (used/available: this host's own view)
function _M.status(self)
    return self.core:status()
end

function _M.close(self)
    self.core:close()
end

mt.__close = _M.close

mt.__tostring = function(self)
    return tostring(self.core)
end

return _M
