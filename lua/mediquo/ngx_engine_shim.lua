-- mediquo.ngx_engine_shim: TRANSITIONAL. The step API of core.engine
-- (src/lengine.c, branch `engine`) made of today's pieces (protocol.build
-- and shape, core.classify and core.backoff), so that mediquo.ngx runs
-- before the engine lands. mediquo.ngx uses core.engine when it exists;
-- this file goes when the engine branch is merged.
-- luacheck: ignore 212

local core = require "mediquo.core"
local protocol = require "mediquo.protocol"

local setmetatable = setmetatable
local getmetatable = getmetatable
local type = type
local pairs = pairs
local ipairs = ipairs
local min = math.min
local format = string.format

local _M = {}
local E = {}
E.__index = E
local C = {}
C.__index = C

function _M.engine(cfg)
    local base = cfg.base_url:match("^%a+://[^/]+(.*)$") or ""
    local e = setmetatable({ cfg = cfg, base = base:gsub("/+$", ""),
                             rng = (ngx and ngx.worker.pid() or 1) * 7919 % 2147483646 + 1,
                             st = { requests = 0, ok = 0, retries = 0, by_kind = {},
                                    limiter_waits = 0, limiter_wait_seconds = 0 } }, E)
    return e
end

function E:stats() return self.st end

local function random(e)
    e.rng = e.rng * 16807 % 2147483647
    return (e.rng - 1) / 2147483646
end

-- the keys, scrubbed from every string that leaves (after JSON decoding)
local function scrub(cfg, v)
    if type(v) == "string" then
        for _, k in ipairs{ cfg.api_key, cfg.secret_key } do
            if k and #k >= 6 then
                v = v:gsub(k:gsub("%W", "%%%0"), ("*"):rep(#k))
            end
        end
        return v
    elseif type(v) == "table" then
        local out = {}
        for k, x in pairs(v) do out[scrub(cfg, k)] = scrub(cfg, x) end
        return setmetatable(out, getmetatable(v))
    end
    return v
end

local function finish(c, value, err)
    value, err = scrub(c.e.cfg, value), scrub(c.e.cfg, err)
    c.value, c.err = value, err
    local st = c.e.st
    if value then st.ok = st.ok + 1 else st.by_kind[err.kind] = (st.by_kind[err.kind] or 0) + 1 end
    return "done"
end

local function next_attempt(c, now)
    local cfg = c.e.cfg
    if cfg.max_wait then
        return "slot", min(cfg.max_wait, c.deadline_at - now)
    end
    return "send"
end

function E:start(op, a, b, now)
    local c = setmetatable({ e = self, retry = 0, attempts = 0, total = 0, ambiguous = false,
                             deadline_at = now + self.cfg.deadline }, C)
    local req, err = protocol.build(op, a, b)
    if not req then return c, finish(c, nil, err) end
    c.req = req
    return c, next_attempt(c, now)
end

function C:slot(granted, waited, ra, now)
    local st = self.e.st
    if waited > 0 then
        st.limiter_waits = st.limiter_waits + 1
        st.limiter_wait_seconds = st.limiter_wait_seconds + waited
    end
    if granted then return "send" end
    return self:conclude("rate_limited", nil, "", ra, "no rate-limit slot in time")
end

function C:request()
    local cfg, left = self.e.cfg, self.deadline_at - core.now()
    return self.req.method, self.e.base .. self.req.path, self.req.body,
           min(cfg.timeout, left), min(cfg.connect_timeout, left)
end

function C:conclude(kind, status, body, ra, message)
    local req = self.req
    local value, err, confirm = protocol.shape(req, self.e.base, kind, status, body,
                                               self.attempts, self.amb_before, ra, message)
    if confirm then
        self.confirming = true
        self.total = self.attempts
        self.req = protocol.build("reschedule", req.code, req.starts_at)
        self.retry, self.attempts = self.e.cfg.max_retries, 0
        return next_attempt(self, core.now())
    end
    if err and self.confirming then
        err.attempts = err.attempts + self.total
        err.message = "the appointment was created, but confirming it failed: " .. err.message
    end
    return finish(self, value, err)
end

local function judge(c, outcome, status, body, ra, message, now)
    local cfg = c.e.cfg
    c.attempts = c.attempts + 1
    c.e.st.requests = c.e.st.requests + 1
    local kind, retryable, amb = core.classify(c.req.method, outcome, status, cfg.retry_post)
    message = message and format("%s (attempt %d of %d)", message, c.attempts, cfg.max_retries + 1)
    c.amb_before = c.ambiguous
    c.ambiguous = c.ambiguous or amb
    if kind == "ok" or not retryable or c.retry >= cfg.max_retries then
        return c:conclude(kind, status, body, ra, message)
    end
    local wait = core.backoff(c.retry + 1, random(c.e))
    if ra and ra > wait then wait = ra end
    if now + wait >= c.deadline_at then
        return c:conclude(kind, status, body, ra, message)
    end
    c.retry = c.retry + 1
    c.e.st.retries = c.e.st.retries + 1
    return "backoff", wait
end

function C:response(status, body, ra, rem, lim, reset, now)
    self.note = nil
    if status == 429 then
        self.note = { "pause", ra or reset or (self.e.cfg.limiter_period or 60) }
    elseif rem then
        self.note = { "observe", rem, lim, reset }
    end
    return judge(self, "ok", status, body, ra, nil, now)
end

function C:failure(outcome, message, now, status)
    self.note = nil
    return judge(self, outcome, status, "", nil, message, now)
end

function C:wake(now)
    return next_attempt(self, now)
end

function C:limiter_note()
    local n = self.note
    if not n then return nil end
    return n[1], n[2], n[3], n[4]
end

function C:result()
    return self.value, self.err
end

return _M
