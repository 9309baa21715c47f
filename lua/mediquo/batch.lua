-- mediquo.batch: client:run_batch(ops, opts) - many operations of one
-- client in flight at once, for automation hosts.
--
-- The batch driver in C (src/batch.c) keeps up to `concurrency` calls in
-- flight from this one thread over libcurl's multi interface; the engine
-- (src/engine.c) decides everything about each call exactly as for a
-- single call: the request, each limiter slot, retries, the deadline, the
-- confirmation of a create that exists, every message and `effect`. This
-- module schedules rows: one at a time per code, in array order, a row
-- whose outcome is unknown holding back the later rows on its code; and it
-- calls on_result between steps of the C loop.

local core = require "mediquo.core"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"

local type = type
local ipairs = ipairs
local pairs = pairs
local pcall = pcall
local error = error
local tostring = tostring
-- the tables a caller hands in are read raw: no metamethod of theirs runs
-- (one that raises must not make run_batch raise)
local rawget = rawget
local rawlen = rawlen or function(t) return #t end     -- 5.1/LuaJIT: # is raw on tables
local wrap = errors.wrap
local check_fields = core.check_fields

local _M = { _VERSION = core._VERSION }

local OPTS = { concurrency = true, on_result = true, resumed = true, max_wait = true,
               before_send = true, on_sent = true, on_wait = true }
-- the keys a row of each op may hold: its fields (core.OP_FIELDS, C's
-- one table) and "op"; create's are checked in C with its values
local ALLOWED = {}
for op, fields in pairs(core.OP_FIELDS) do
    local t = { op = true }
    for _, f in ipairs(fields) do t[f] = true end
    ALLOWED[op] = t
end

_M.MAX_CONCURRENCY = 64
local STEP = 0.25   -- seconds per C step at most (on_result runs between steps)

-- opts -> concurrency, on_result, resumed, max_wait | nil, nil, nil, nil, err
local function check_opts(opts)
    if opts == nil then return 4, nil, nil, -1 end
    local ok, err = validate.fields("opts", opts, OPTS)
    if not ok then return nil, nil, nil, nil, err end
    for _, f in ipairs{ "before_send", "on_sent", "on_wait" } do
        local v = rawget(opts, f)
        if v ~= nil and type(v) ~= "function" then
            return nil, nil, nil, nil, errors.invalid(f, "must be a function")
        end
    end
    local conc = rawget(opts, "concurrency")
    if conc == nil then
        conc = 4
    elseif not validate.is_integer(conc) or conc < 1 or conc > _M.MAX_CONCURRENCY then
        return nil, nil, nil, nil, errors.invalid("concurrency", "must be an integer from 1 to "
                                             .. _M.MAX_CONCURRENCY)
    end
    local cb = rawget(opts, "on_result")
    if cb ~= nil and type(cb) ~= "function" then
        return nil, nil, nil, nil, errors.invalid("on_result", "must be a function")
    end
    local resumed = rawget(opts, "resumed")
    if resumed ~= nil and type(resumed) ~= "function" then
        return nil, nil, nil, nil, errors.invalid("resumed", "must be a function")
    end
    -- max_wait: seconds a row may wait for its first limiter slot (its
    -- deadline starts when it is sent); math.huge paces a whole import to
    -- the budget. Default: the client's rate_limit.max_wait.
    local mw = rawget(opts, "max_wait")
    if mw == nil then
        mw = -1
    elseif type(mw) ~= "number" or mw ~= mw or mw < 0 then
        return nil, nil, nil, nil, errors.invalid("max_wait",
            "must be a number of seconds >= 0 (math.huge: no bound)")
    end
    return conc, cb, resumed, mw
end

-- ops[i] -> op name, a, b (the engine's arguments) | nil, field, why, op
-- (refused here: not a table, no known op, a field the op does not take;
-- the fields' values are checked in C, with the same words as a single call)
local function args_of(i, op)
    local where = "ops[" .. i .. "]"
    if type(op) ~= "table" then
        return nil, where, "must be a table, got " .. type(op)
    end
    local kind = rawget(op, "op")
    if kind == "create" then
        return kind, op
    elseif kind == "reschedule" or kind == "cancel" then
        local ok, why = check_fields(op, ALLOWED[kind])
        if not ok then return nil, where, why, kind end
        return kind, rawget(op, "code"), rawget(op, "starts_at")
    end
    return nil, "op", "must be create, reschedule or cancel"
end

-- The error a row held back gets: nothing was sent for it, because row j
-- on the same code may have taken effect and was not settled.
local function held_error(method, path, j, blocker)
    return errors.new{
        kind = blocker.kind,
        message = "not sent: row " .. j .. " on the same code may have taken effect ("
            .. blocker.kind .. ", outcome unknown); it must be settled first (e.g. by a resumed run)",
        retryable = true,
        attempts = 0,
        effect = "none",
        held = j,
        method = method,
        path = path,
    }
end

-- run(client, ops, opts) -> results, summary | nil, err
--
-- Exactly-once on each code: rows on one code are applied in array order,
-- each only once the one before it is settled; a row whose outcome is
-- unknown (err.effect == "unknown": an attempt may have taken effect)
-- holds back every later row on its code. Those are not sent and come back
-- as results[k] = { err = e, held = j } (e.held = j, e.kind the blocking
-- row's kind, e.effect "none", e.attempts 0); summary.held counts them
-- (they count in failed and by_kind too). This is the one place that rule
-- lives: the CLI's import is a client of it.
--
-- opts.before_send(i), when given, is called exactly before row i's
-- request goes out (it has its first limiter slot; nothing of it was
-- sent) and never for a row that is not sent. opts.on_sent(i), when
-- given, is called once the first bytes of row i's request have been
-- written to its connection (curl's count of request bytes sent), before
-- its on_result, and never for a row none of whose bytes left. A journal
-- writes "about to send" in the one and "left" in the other: "left" is
-- said of exactly the rows whose bytes left (a kill between the two leaves
-- a row in doubt, as one killed after it). A raise from either (or from
-- on_result) closes the batch, aborting the calls in flight, and goes on
-- up; a row whose before_send raised is not sent. opts.on_wait(seconds|nil)
-- is called between steps (at least every 0.25 s): seconds until a row
-- waiting for a rate-limit slot may have one, nil when none waits (for
-- progress displays).
function _M.run(client, ops, opts)
    local c = require("mediquo").core_of(client)   -- the documented accessor
    if not c then error("mediquo client is closed", 3) end
    if type(ops) ~= "table" then
        return nil, errors.invalid("ops", "must be an array of operations, got " .. type(ops))
    end
    local conc, on_result, resumed, max_wait, err = check_opts(opts)
    if not conc then return nil, err end
    local before_send = opts and rawget(opts, "before_send")
    local on_sent = opts and rawget(opts, "on_sent")
    local on_wait = opts and rawget(opts, "on_wait")

    local results = {}
    local summary = { ok = 0, failed = 0, held = 0, by_kind = {} }
    local n = rawlen(ops)
    local b, msg = c:batch(conc, max_wait, before_send ~= nil or on_sent ~= nil)
    if not b then
        return nil, errors.new{ kind = "network", message = "cannot start a batch: " .. tostring(msg) }
    end

    local code_of = {}      -- i -> the code of row i (queued or in flight)
    local handle = {}       -- i -> the batch's handle of a parked row
    local how = {}          -- i -> "reconciled": an earlier run's effect taken as ours
    local resumed_row = {}  -- i -> true: an earlier run may have sent row i
    local waiting = {}      -- code -> rows on that code waiting their turn, in order
    local busy = {}         -- code -> true while a row on it is queued or in flight

    -- calls back, and lets an error out only once the batch is freed (a
    -- raising callback must not leave its handles open until the next GC)
    local function call_back(f, ...)
        local ok, r = pcall(f, ...)
        if not ok then
            b:close()
            error(r, 0)
        end
        return r
    end

    local function report(i, value, e, h)
        if value ~= nil then
            results[i] = { ok = value, reconciled = h == "reconciled" or nil }
            summary.ok = summary.ok + 1
        else
            results[i] = { err = e, held = e.held }
            summary.failed = summary.failed + 1
            summary.by_kind[e.kind] = (summary.by_kind[e.kind] or 0) + 1
            if e.held then summary.held = summary.held + 1 end
        end
        if on_result then call_back(on_result, i, value, e, h) end
    end

    -- a finished row: reported, then the next row on its code may go (after
    -- on_result: a journal written there is never behind the server),
    -- unless this one's outcome is unknown: then every later row on the
    -- code is held
    local function done(i, value, e)
        report(i, value, e, how[i])
        local code = code_of[i]
        code_of[i] = nil
        if not code then return end
        local q = waiting[code]
        if e and e.effect == "unknown" then
            busy[code], waiting[code] = nil, nil
            local blocker = { kind = e.kind }
            while q and q.head <= q.tail do
                local k = q[q.head]
                q[q.head] = nil
                q.head = q.head + 1
                code_of[k] = nil
                local method, path = b:drop(handle[k])
                handle[k] = nil
                report(k, nil, held_error(method, path, i, blocker), "held")
            end
        elseif q and q.head <= q.tail then
            local nxt = q[q.head]
            q[q.head] = nil
            q.head = q.head + 1
            b:release(handle[nxt])
            handle[nxt] = nil
        else
            busy[code] = nil
            waiting[code] = nil
        end
    end

    for i = 1, n do
        local op, a, a2, refused_op = args_of(i, rawget(ops, i))
        if not op then
            local _, e = b:refuse(refused_op, a, a2)
            report(i, nil, wrap(e))
        else
            local code = op == "create" and rawget(a, "code") or a
            local parked = type(code) == "string" and busy[code] or false
            local res = resumed ~= nil and call_back(resumed, i) == true
            local h, e = b:add(i, op, a, a2, res, parked)
            if not h then
                report(i, nil, wrap(e))      -- refused by the engine's checks
            else
                code_of[i] = code
                resumed_row[i] = res or nil
                -- rows on one code run in array order (a reschedule must
                -- not overtake the create it moves); other codes run
                -- concurrently
                if parked then
                    handle[i] = h
                    local q = waiting[code]
                    if not q then
                        q = { head = 1, tail = 0 }    -- a FIFO: # is no use once the head is taken
                        waiting[code] = q
                    end
                    q.tail = q.tail + 1
                    q[q.tail] = i
                else
                    busy[code] = true
                end
            end
        end
    end

    while b:pending() > 0 do
        local finished, ready, sent = b:step(STEP)
        -- rows whose first bytes left since the last step, before results
        if on_sent then
            for k = 1, #sent do call_back(on_sent, sent[k]) end
        end
        -- a ready row has its first limiter slot and nothing sent yet: its
        -- request goes out right after before_send(i) returns
        for k = 1, #ready do
            local i = ready[k]
            if before_send then call_back(before_send, i) end
            if b:go(i) and on_sent then call_back(on_sent, i) end
        end
        for k = 1, #finished do
            local d = finished[k]
            local i = d.i
            if resumed_row[i] and d.reconciled then how[i] = "reconciled" end
            if d.err then
                done(i, nil, wrap(d.err))
            else
                done(i, d.ok, nil)
            end
        end
        if on_wait then call_back(on_wait, b:pending() > 0 and b:slot_wait() or nil) end
    end
    b:close()
    return results, summary
end

return _M
