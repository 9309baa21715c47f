-- mediquo.limiter: the host-wide rate limiter as a Lua object, and the
-- validation of the `rate_limit` option the client shares. The rules live
-- in C (mediquo.core, limiter.c): one budget per key for every process and
-- thread on the host, in a 0600 file (0660 of `group`) under `dir`, kept
-- lock-free. The rule in force is the file's: set by the process that made
-- it, shown by status() with who set it, never changed by a later opener.
-- The caller's table is read raw: none of its metamethods run.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"

local type = type
local tostring = tostring
local rawget = rawget
local find = string.find
local huge = math.huge
local is_integer = validate.is_integer
local format = string.format
local setmetatable = setmetatable

local _M = { _VERSION = core._VERSION }
local mt = { __index = _M }

_M.DEFAULT_KEY = "sdk.mediquo.com:443"   -- the default base_url's host:port
_M.MAX_PER_MINUTE = core.LIMITER_MAX_PER_MINUTE    -- the ring in the file holds this many


local FIELDS = { per_minute = true, burst = true, period = true, key = true,
                 max_wait = true, dir = true, group = true, redis = true,
                 fallback_per_minute = true, redis_timeout = true, redis_tls = true,
                 sentinel_auth = true }

-- normalize(opts, default_key) -> cfg | nil, err
-- Checks a `rate_limit` table and fills its defaults; refuses unknown fields
-- (a typo such as `per_min` must not silently leave the default in force).
function _M.normalize(opts, default_key)
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
        return nil, errors.invalid("rate_limit", "must be a table or false")
    end
    -- a raw pass (C): a __pairs (or __index below: rawget) never runs
    local known, unknown = core.check_fields(opts, FIELDS)
    if not known then return nil, errors.invalid("rate_limit", unknown) end

    -- the rule's checks are C's (limiter_opts.c, one table): asked, never
    -- re-checked here; nil ones come back with their defaults
    local per_minute, burst, period = core.limiter_rule(rawget(opts, "per_minute"),
                                                        rawget(opts, "burst"), rawget(opts, "period"))
    if not per_minute then return nil, errors.invalid("rate_limit." .. burst, period) end

    local key = rawget(opts, "key")
    if key == nil then key = default_key end
    if type(key) ~= "string" or key == "" then
        return nil, errors.invalid("rate_limit.key", "must be a non-empty string")
    end
    if find(key, "\0", 1, true) then
        return nil, errors.invalid("rate_limit.key", "must not hold a NUL byte")
    end

    local max_wait = rawget(opts, "max_wait")
    if max_wait == nil then max_wait = 10 end
    if type(max_wait) ~= "number" or max_wait ~= max_wait or max_wait < 0 or max_wait == huge then
        return nil, errors.invalid("rate_limit.max_wait", "must be a number >= 0")
    end

    local group = rawget(opts, "group")
    if group ~= nil and (type(group) ~= "string" or group == "" or find(group, "\0", 1, true)) then
        return nil, errors.invalid("rate_limit.group", "must be a group name")
    end

    local dir = rawget(opts, "dir")
    if dir ~= nil and (type(dir) ~= "string" or dir == "" or find(dir, "\0", 1, true)) then
        return nil, errors.invalid("rate_limit.dir", "must be a non-empty string")
    end

    -- across hosts: the URL is parsed (in C, as the connection will) now,
    -- so a typo is invalid_argument before anything runs
    local redis = rawget(opts, "redis")
    if redis ~= nil then
        if type(redis) ~= "string" or find(redis, "\0", 1, true) then
            return nil, errors.invalid("rate_limit.redis", "must be a redis:// or unix:// URL")
        end
    end
    local redis_tls, sentinel_auth = rawget(opts, "redis_tls"), rawget(opts, "sentinel_auth")
    if redis_tls ~= nil and type(redis_tls) ~= "table" then
        return nil, errors.invalid("rate_limit.redis_tls", "must be a table")
    end
    if sentinel_auth ~= nil and (type(sentinel_auth) ~= "string" or find(sentinel_auth, "\0", 1, true)) then
        return nil, errors.invalid("rate_limit.sentinel_auth", "must be \"password\" or \"user:password\"")
    end
    if redis ~= nil then
        local u, why = core.redis_url(redis, redis_tls, sentinel_auth)
        if not u then
            local field = "rate_limit.redis"
            if find(why, "^redis_tls") then field = "rate_limit.redis_tls"
            elseif find(why, "^sentinel_auth") then field = "rate_limit.sentinel_auth" end
            return nil, errors.invalid(field, why)
        end
    elseif redis_tls ~= nil or sentinel_auth ~= nil then
        return nil, errors.invalid(redis_tls ~= nil and "rate_limit.redis_tls" or "rate_limit.sentinel_auth",
                                   "needs rate_limit.redis")
    end
    local fallback = rawget(opts, "fallback_per_minute")
    if fallback ~= nil and (not is_integer(fallback) or fallback < 0 or fallback > per_minute) then
        return nil, errors.invalid("rate_limit.fallback_per_minute",
                                   "must be an integer from 0 to per_minute")
    end
    local rt = rawget(opts, "redis_timeout")
    if rt ~= nil and (type(rt) ~= "number" or rt ~= rt or rt < 0.001 or rt > 10) then
        return nil, errors.invalid("rate_limit.redis_timeout", "must be seconds from 0.001 to 10")
    end

    return {
        per_minute = per_minute, burst = burst, period = period, key = key,
        max_wait = max_wait, dir = dir, group = group, redis = redis,
        fallback_per_minute = fallback, redis_timeout = rt, redis_tls = redis_tls,
        sentinel_auth = sentinel_auth,
    }
end

-- config_error(msg) -> a `config` error: the host's setup, not the caller's
-- input (a state file or directory that cannot be made or opened)
local function config_error(msg)
    return errors.new{ kind = "config", message = "rate_limit: " .. tostring(msg) }
end
_M.config_error = config_error

-- open(cfg) -> core limiter | nil, err (kind config). A normalized cfg
-- without dir gets the private default directory of the user or group.
function _M.open(cfg)
    if cfg.dir == nil then
        local dir, msg = core.limiter_default_dir(cfg.group)
        if not dir then return nil, config_error(msg) end
        cfg.dir = dir
    end
    local lim, msg, kind = core.limiter(cfg)
    if not lim then
        -- a URL Redis cannot use is the caller's input; a refused AUTH,
        -- like a state file, the host's setup
        if kind == "invalid_argument" then return nil, errors.invalid("rate_limit.redis", msg) end
        return nil, config_error(msg)
    end
    return lim
end

-- open_existing(opts) -> limiter | nil, err: the limiter of opts' key when a
-- process has used it, without making its file (for status reads: a read
-- must not set the rule); err kind config "none yet" otherwise
function _M.open_existing(opts)
    local cfg, err = _M.normalize(opts, _M.DEFAULT_KEY)
    if not cfg then return nil, err end
    cfg.existing = true
    local lim
    lim, err = _M.open(cfg)
    if not lim then return nil, err end
    return setmetatable({ core = lim, max_wait = cfg.max_wait, key = cfg.key }, mt)
end

-- new(opts) -> limiter | nil, err   (mediquo.limiter(opts))
function _M.new(opts)
    local cfg, err = _M.normalize(opts, _M.DEFAULT_KEY)
    if not cfg then return nil, err end
    local lim
    lim, err = _M.open(cfg)
    if not lim then return nil, err end
    return setmetatable({ core = lim, max_wait = cfg.max_wait, key = cfg.key }, mt)
end

-- limiter:acquire([max_wait]) -> true | nil, err (kind rate_limited, or
-- config when the state file can no longer be used)
function _M.acquire(self, max_wait)
    if max_wait == nil then max_wait = self.max_wait end
    if type(max_wait) ~= "number" or max_wait ~= max_wait or max_wait < 0 then
        return nil, errors.invalid("max_wait", "must be a number >= 0")
    end
    local ok, retry_after, fault = self.core:acquire(max_wait)
    if ok then return true end
    if fault then return nil, config_error(fault) end
    return nil, errors.new{
        kind = "rate_limited",
        retry_after = retry_after,
        message = format("no rate-limit slot within %gs", max_wait),
    }
end

-- limiter:try() -> true | false, wait | nil, err (kind config)
function _M.try(self)
    local ok, wait, fault = self.core:try()
    if ok then return true end
    if fault then return nil, config_error(fault) end
    return false, wait
end

-- limiter:status() -> { per_minute, used, available, paused_until, rule =
-- { per_minute, burst, period, set_at, set_by_pid, set_by_uid }, mismatch,
-- warning } (per_minute is the rule in force; warning says when this
-- process asked for another one) | nil, err (kind config)
function _M.status(self)
    local st = self.core:status()
    if st.error then return nil, config_error(st.error) end
    -- docs/limiter-and-redis.md (status): `error` says why Redis is not in use (never a password)
    st.error, st.redis_error = st.redis_error, nil
    if st.mismatch then
        local r = st.rule
        st.warning = format("the rule in force is %d per %gs (burst %d), set by pid %d at %s; "
                            .. "this process asked for another one, which is not applied",
                            r.per_minute, r.period, r.burst, r.set_by_pid,
                            os.date("!%Y-%m-%dT%H:%M:%SZ", r.set_at))
    end
    return st
end

-- limiter:set_rule{ per_minute, burst, period } -> true | nil, err: sets the
-- rule in force for every process sharing the key (the only way to change
-- it); the log of recent starts is carried over. Takes ~0.25 s: the others
-- move to the new rule within 0.1 s and wait out a 0.3 s handover.
function _M.set_rule(self, rule)
    if type(rule) ~= "table" then
        return nil, errors.invalid("rule", "must be a table { per_minute, burst, period }")
    end
    local cfg, err = _M.normalize({ per_minute = rawget(rule, "per_minute"),
                                    burst = rawget(rule, "burst"),
                                    period = rawget(rule, "period"), key = self.key }, self.key)
    if not cfg then return nil, err end
    local ok, msg = self.core:set_rule(cfg.per_minute, cfg.burst, cfg.period)
    if not ok then return nil, config_error(msg) end
    return true
end

-- limiter:resume() -> true: clears a pause for every process sharing the key
function _M.resume(self)
    self.core:resume()
    return true
end

function _M.close(self)
    self.core:close()
end

mt.__close = _M.close

mt.__tostring = function(self)
    return tostring(self.core)
end

return _M
