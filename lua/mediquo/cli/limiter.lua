-- mediquo.cli.limiter: `mediquo limiter status|resume|set-rule`, and the
-- check every sending command makes first: the rule in force for the key
-- is never silently different from the one the flags ask for.
--
--   mediquo limiter status      the rule in force as it is, the budget used;
--                               needs no API keys (it only reads the limiter)
--   mediquo limiter resume      clears a pause for every sharer of the key
--   mediquo limiter set-rule --per-minute N [--period S] [--burst B]
--                               changes the rule for every sharer (set_rule)

local limiter = require "mediquo.limiter"
local util = require "mediquo.cli.util"

local type = type
local tonumber = tonumber
local format = string.format
local concat = table.concat

local safe, utc, usage_error = util.safe, util.utc, util.usage_error

local _M = {}

-- "600 per 60s (burst 60), set by pid 123 at 2026-...Z"
local function rule_text(r)
    local s = format("%d per %gs (burst %d)", r.per_minute, r.period, r.burst)
    if r.set_by_pid then
        s = s .. format(", set by pid %s", safe(r.set_by_pid))
            .. (tonumber(r.set_at) and tonumber(r.set_at) > 0 and (" at " .. utc(r.set_at)) or "")
    end
    return s
end
_M.rule_text = rule_text

-- the limiter of cfg's key when some process made it (a read never makes
-- it, so it never sets the rule), or nil
local function existing(cfg)
    local lim = limiter.open_existing{ key = cfg.key, dir = cfg.dir, group = cfg.group,
                                       redis = cfg.redis, redis_tls = cfg.redis_tls,
                                       sentinel_auth = cfg.sentinel_auth }
    return lim
end

-- check(io_, flags, cfg) -> true, rule in force | nil, stop: before anything is sent.
-- cfg: the normalised rate_limit. A --per-minute, --period or --burst that
-- differs from the rule in force stops the command (exit 2) naming it and
-- the way out; without them the rule in force is named on stderr.
function _M.check(io_, flags, cfg)
    local lim = existing(cfg)
    if not lim then return true end      -- no rule yet: the one asked for becomes it
    local st = lim:status()
    lim:close()
    local r = st and st.rule
    if type(r) ~= "table" or not r.per_minute then return true end
    local asked = {}
    local differs = false
    for _, f in ipairs{ { "per_minute", "--per-minute" }, { "period", "--period" }, { "burst", "--burst" } } do
        local v = flags[f[1]]
        if v ~= nil then
            asked[#asked + 1] = f[2] .. " " .. format("%g", v)
            if v ~= r[f[1]] then differs = true end
        end
    end
    if differs then
        return nil, util.stop(format("the rule in force for %s is %s; this command asks for %s. "
            .. "Nothing was sent. To change the rule for every process sharing the key: "
            .. "mediquo limiter set-rule %s%s; or leave out --per-minute, --period and --burst "
            .. "to use the rule in force", safe(cfg.key), rule_text(r), concat(asked, " "),
            concat(asked, " "), flags.rate_limit_key and (" --rate-limit-key " .. safe(cfg.key)) or ""))
    end
    if #asked == 0 then
        io_.stderr:write("mediquo: rate limit for ", safe(cfg.key), ": ", rule_text(r),
                         " (the rule in force)\n")
    end
    return true, r
end

-- client(io_, flags) -> client, nil, rule | nil, usage error or stop: the
-- client the flags ask for, made once the rule in force is checked
-- (nothing is sent before); rule: { per_minute, period } it runs under
function _M.client(io_, flags)
    local o, uerr = util.client_opts(flags)
    if not o then return nil, uerr end
    local norm, nerr = util.normalized(o)
    if not norm then return nil, usage_error(safe(nerr.message or nerr)) end
    local rule
    if norm.rate_limit then
        local ok, r = _M.check(io_, flags, norm.rate_limit)
        if not ok then return nil, r end
        rule = type(r) == "table" and r or norm.rate_limit
    end
    local c, err = require("mediquo").new(o)
    if not c then return nil, usage_error(safe(err.message or err)) end
    return c, nil, rule
end

-- the normalised rate_limit the flags ask for (no API keys needed)
local function config(flags)
    if flags.no_rate_limit then return nil, usage_error("--no-rate-limit: there is no limiter") end
    local o, uerr = util.client_opts(flags, true)
    if not o then return nil, uerr end
    local norm, nerr = util.normalized(o)
    if not norm then return nil, usage_error(safe(nerr.message or nerr)) end
    return norm.rate_limit
end

local function paused_at(t)
    return t.paused_until and t.paused_until > 0 and t.paused_until or nil
end

local function show(io_, flags, what, cfg, st, before)
    local paused = paused_at(st)
    local r = type(st.rule) == "table" and st.rule or {}
    local rec = { key = cfg.key, per_minute = r.per_minute or st.per_minute,
                  period = r.period or st.period or cfg.period, burst = r.burst,
                  used = st.used, available = st.available, paused_until = paused,
                  backend = st.backend, hosts = st.hosts, degraded = st.degraded, error = st.error,
                  rule = st.rule }
    if what == "resume" then
        rec.resumed = true
        rec.was_paused_until = paused_at(before)
    end
    if flags.json then
        io_.stdout:write(util.jsonline(rec), "\n")
        return 0
    end
    local extra = {}
    if rec.backend then extra[#extra + 1] = "backend " .. safe(rec.backend) end
    if rec.hosts then extra[#extra + 1] = format("%s host%s", safe(rec.hosts), rec.hosts == 1 and "" or "s") end
    if rec.degraded ~= nil then
        extra[#extra + 1] = rec.degraded and "DEGRADED (each host on its own share)" or "not degraded"
    end
    if rec.error then extra[#extra + 1] = "last error: " .. safe(rec.error) end
    if r.set_by_pid then
        extra[#extra + 1] = format("rule set by pid %s", safe(r.set_by_pid))
            .. (tonumber(r.set_at) and (" at " .. utc(r.set_at)) or "")
    end
    if what == "resume" then
        io_.stdout:write(format("limiter %s: resumed%s\n", safe(rec.key), rec.was_paused_until
            and format(" (it was paused until %s)", utc(rec.was_paused_until)) or " (it was not paused)"))
    end
    io_.stdout:write(format("limiter %s: %d per %gs, used %d, available %d, %s%s\n",
        safe(rec.key), rec.per_minute, rec.period, rec.used, rec.available,
        paused and format("paused until %s", utc(paused)) or "not paused",
        #extra > 0 and (", " .. concat(extra, ", ")) or ""))
    return 0
end

local function set_rule(io_, flags, cfg)
    if not flags.per_minute then return usage_error("limiter set-rule needs --per-minute N") end
    local lim, lerr = limiter.new(cfg)
    if not lim then return usage_error(safe(lerr.message or lerr)) end
    local before = lim:status()
    local ok, err = lim:set_rule{ per_minute = flags.per_minute, period = flags.period or cfg.period,
                                  burst = flags.burst }
    local st = ok and lim:status()
    lim:close()
    if not ok then
        io_.stderr:write("mediquo: limiter set-rule: ", safe(err.message or err), "\n")
        return 1
    end
    io_.stdout:write(format("limiter %s: the rule in force is now %s (it was %s)\n", safe(cfg.key),
        rule_text(st.rule), before and before.rule and rule_text(before.rule) or "none"))
    return 0
end

-- limiter status | resume | set-rule
function _M.run(io_, flags, pos)
    local what = pos[1]
    if #pos ~= 1 or (what ~= "status" and what ~= "resume" and what ~= "set-rule") then
        return usage_error("limiter needs 'status' or 'resume' (or 'set-rule --per-minute N')")
    end
    local cfg, uerr = config(flags)
    if not cfg then return uerr end
    if what == "set-rule" then return set_rule(io_, flags, cfg) end
    -- a read takes the rule in force as it is: opened with the flags only
    -- when no process has made this key's limiter yet
    local lim = existing(cfg)
    if not lim then
        local lerr
        lim, lerr = limiter.new(cfg)
        if not lim then return usage_error(safe(lerr.message or lerr)) end
    end
    local before, serr = lim:status()
    local st = before
    if before and what == "resume" then
        local ok, rerr = lim:resume()
        if ok then
            st, serr = lim:status()
        else
            st, serr = nil, rerr
        end
    end
    lim:close()
    if not st then
        io_.stderr:write("mediquo: limiter ", what, ": ", safe(serr and (serr.message or serr) or "failed"), "\n")
        return 1
    end
    return show(io_, flags, what, cfg, st, before)
end

return _M
