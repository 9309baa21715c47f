-- mediquo.batch: client:run_batch(ops, opts) - many operations of one
-- client in flight at once, for automation hosts.
--
-- The C core (src/batch.c) keeps up to `concurrency` requests in flight from
-- this one thread over libcurl's multi interface; every attempt takes a slot
-- of the shared limiter and follows the same retry policy and per-call
-- deadline as a single call. This module builds each request, shapes each
-- answer exactly as the blocking client does (mediquo.protocol), confirms
-- ambiguous creates, and calls on_result between steps of the C loop.

local protocol = require "mediquo.protocol"
local errors = require "mediquo.errors"
local validate = require "mediquo.validate"

local type = type
local pcall = pcall
local error = error
local tostring = tostring
local max = math.max

local _M = { _VERSION = "0.1.0" }

local OPTS = { concurrency = true, on_result = true, resumed = true, max_wait = true }
local RESCHEDULE_FIELDS = { op = true, code = true, starts_at = true }
local CANCEL_FIELDS = { op = true, code = true }

_M.MAX_CONCURRENCY = 64
local STEP = 0.25   -- seconds per C step at most (on_result runs between steps)

-- opts -> concurrency, on_result, resumed, first_wait | nil, nil, nil, nil, err
local function check_opts(opts)
    if opts == nil then return 4, nil, nil, -1 end
    local ok, err = validate.fields("opts", opts, OPTS)
    if not ok then return nil, nil, nil, nil, err end
    local conc = opts.concurrency
    if conc == nil then
        conc = 4
    elseif not validate.is_integer(conc) or conc < 1 or conc > _M.MAX_CONCURRENCY then
        return nil, nil, nil, nil, errors.invalid("concurrency", "must be an integer from 1 to "
                                             .. _M.MAX_CONCURRENCY)
    end
    local cb = opts.on_result
    if cb ~= nil and type(cb) ~= "function" then
        return nil, nil, nil, nil, errors.invalid("on_result", "must be a function")
    end
    local resumed = opts.resumed
    if resumed ~= nil and type(resumed) ~= "function" then
        return nil, nil, nil, nil, errors.invalid("resumed", "must be a function")
    end
    -- max_wait: seconds a row may wait for its first limiter slot (its
    -- deadline starts when it is sent); math.huge paces a whole import to
    -- the budget. Default: the client's rate_limit.max_wait.
    local mw = opts.max_wait
    if mw == nil then
        mw = -1
    elseif type(mw) ~= "number" or mw ~= mw or mw < 0 then
        return nil, nil, nil, nil, errors.invalid("max_wait",
            "must be a number of seconds >= 0 (math.huge: no bound)")
    end
    return conc, cb, resumed, mw
end

-- op table -> request | nil, err (results[i] says which op: messages name the field)
local function build(i, op)
    local where = "ops[" .. i .. "]"
    if type(op) ~= "table" then
        return nil, errors.invalid(where, "must be a table, got " .. type(op))
    end
    local kind = op.op
    local req, err
    if kind == "create" then
        req, err = protocol.build("create", op)
    elseif kind == "reschedule" then
        req, err = validate.fields(where, op, RESCHEDULE_FIELDS)
        if req then req, err = protocol.build("reschedule", op.code, op.starts_at) end
    elseif kind == "cancel" then
        req, err = validate.fields(where, op, CANCEL_FIELDS)
        if req then req, err = protocol.build("cancel", op.code) end
    else
        err = errors.invalid("op", "must be create, reschedule or cancel")
    end
    return req, err
end

-- What became of a failed call on the server: "unknown" when an attempt
-- may have been processed and the last answer does not settle it. A
-- definite refusal (4xx but 408/429) of an idempotent PUT or DELETE does:
-- had an earlier attempt been applied, this one would have been too.
local function effect_of(req, d)
    if not d.ambiguous then return "none" end
    local s = d.status
    if req.method ~= "POST" and s and s >= 400 and s < 500 and s ~= 408 and s ~= 429 then
        return "none"
    end
    return "unknown"
end

-- The error a row held back gets: nothing was sent for it, because row j
-- on the same code may have taken effect and was not settled.
local function held_error(req, base_path, j, blocker)
    return errors.new{
        kind = blocker.kind,
        message = "not sent: row " .. j .. " on the same code may have taken effect ("
            .. blocker.kind .. ", outcome unknown); it must be settled first (e.g. by a resumed run)",
        retryable = true,
        attempts = 0,
        effect = "none",
        held = j,
        method = req.method,
        path = base_path .. req.path,
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
-- (they count in failed and by_kind too).
function _M.run(client, ops, opts)
    local c = client._core
    if not c then error("mediquo client is closed", 3) end
    if type(ops) ~= "table" then
        return nil, errors.invalid("ops", "must be an array of operations, got " .. type(ops))
    end
    local conc, on_result, resumed, first_wait, err = check_opts(opts)
    if not conc then return nil, err end

    local results = {}
    local summary = { ok = 0, failed = 0, held = 0, by_kind = {} }
    local n = #ops
    local b, msg = c:batch(conc, first_wait)
    if not b then
        return nil, errors.new{ kind = "network", message = "cannot start a batch: " .. tostring(msg) }
    end

    local base_path = client._base_path
    local reqs = {}         -- i -> the request in flight (or waiting) for op i
    local earlier = {}      -- i -> attempts spent before a confirming reschedule
    local how = {}          -- i -> "reconciled" when an earlier run's effect was taken as ours
    local waiting = {}      -- code -> ops on that code waiting their turn, in order
    local busy = {}         -- code -> true while an op on it is in flight
    local blocked = {}      -- code -> the row whose unknown outcome holds the code back

    local function send(i)
        local req = reqs[i]
        b:add(i, req.method, req.path, req.body, nil, nil, "row")
    end

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

    -- every finished op goes through here
    local function done(i, value, e)
        if value ~= nil then
            client._ok = (client._ok or 0) + 1
        elseif client._by_kind then
            client._by_kind[e.kind] = (client._by_kind[e.kind] or 0) + 1
        end
        report(i, value, e, how[i])
        -- the next op on the same code may go now (after on_result: a
        -- journal written there is never behind the server), unless this
        -- one's outcome is unknown: then every later op on the code is held
        local req = reqs[i]
        reqs[i] = nil
        if not req then return end
        local code = req.code
        local q = waiting[code]
        if e and e.effect == "unknown" then
            blocked[code] = { i = i, kind = e.kind }
            busy[code], waiting[code] = nil, nil
            while q and q.head <= q.tail do
                local k = q[q.head]
                q[q.head] = nil
                q.head = q.head + 1
                local held = held_error(reqs[k], base_path, i, blocked[code])
                reqs[k] = nil
                report(k, nil, held, "held")
            end
        elseif q and q.head <= q.tail then
            local nxt = q[q.head]
            q[q.head] = nil
            q.head = q.head + 1
            send(nxt)
        else
            busy[code] = nil
            waiting[code] = nil
        end
    end

    for i = 1, n do
        local req, berr = build(i, ops[i])
        if req then
            reqs[i] = req
            -- ops on one code run in array order (a reschedule must not
            -- overtake the create it moves); other codes run concurrently
            if busy[req.code] then
                local q = waiting[req.code]
                if not q then
                    q = { head = 1, tail = 0 }    -- a FIFO: # is no use once the head is taken
                    waiting[req.code] = q
                end
                q.tail = q.tail + 1
                q[q.tail] = i
            else
                busy[req.code] = true
                send(i)
            end
        else
            berr.effect = "none"
            done(i, nil, berr)
        end
    end

    while b:pending() > 0 do
        local finished = b:step(STEP)
        for k = 1, #finished do
            local d = finished[k]
            local i, req = d.i, reqs[d.i]
            -- an op an interrupted earlier run may have sent is ambiguous
            -- from its first attempt: "already exists" / "already
            -- cancelled" are then its own effect
            local resume = not d.ambiguous_before and earlier[i] == nil and resumed ~= nil
                and call_back(resumed, i) == true
            local value, e, confirm = protocol.shape(req, base_path, d.kind, d.status, d.body,
                d.attempts, d.ambiguous_before or resume, d.retry_after, d.message)
            if resume and (confirm or (value ~= nil and d.kind ~= "ok")) then
                how[i] = "reconciled"
            end
            if confirm then
                -- The create reached the server on an earlier attempt: a
                -- reschedule to the same start is idempotent and hands back
                -- a live URL (as the blocking client does).
                -- As there, one attempt within what is left of the
                -- create's deadline, made active before any queued row.
                local put = protocol.build("reschedule", req.code, req.starts_at)
                reqs[i] = put
                earlier[i] = d.attempts
                b:add(i, put.method, put.path, put.body, max(d.deadline_left, 0), 0, "front")
            else
                if e then
                    if earlier[i] then
                        e.attempts = e.attempts + earlier[i]
                        e.message = "the appointment was created, but confirming it failed: "
                            .. e.message
                        e.effect = "done"
                    elseif e.effect == nil then
                        e.effect = effect_of(req, d)
                    end
                end
                done(i, value, e)
            end
        end
    end
    b:close()
    return results, summary
end

return _M
