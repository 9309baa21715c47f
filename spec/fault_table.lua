-- spec/fault_table.lua: one table of sandbox faults and what every driver
-- of the engine must answer to each - the blocking client (18-engine_faults),
-- run_batch and mediquo.ngx run the same rows and must agree exactly: the
-- same success or error kind, status, attempts, message and effect, and
-- the same number of requests seen by the sandbox.
--
--   local T = require "spec.fault_table"
--   for _, row in ipairs(T.rows) do
--       local sb = H.sandbox{}                    -- reset: no fault left over
--       local code = T.code(row)
--       local skip = T.prepare(sb, row, code)     -- seeds, queues the faults
--       local v, err = <run T.args(row, code) through your driver, with T.options(sb, row)>
--       T.check(row, v, err, T.seen(sb, skip), sb:state()[code])
--   end
--
-- A row: name, op, opts (client options over T.BASE), faults (queued in
-- order), and either ok = true or kind/status/attempts/effect; message (a
-- Lua pattern, anchored), requests (seen by the sandbox), statuses ("POST
-- 500", ... in order), state ("none", "start", "moved", "cancelled",
-- "active" = the seeded start unchanged).

local json = require "cjson.safe"

local T = {}

T.START, T.MOVED = "2030-01-01T10:00:00Z", "2031-02-03T04:05:06Z"
T.api_key, T.secret_key = "sandbox-key", "sandbox-secret"

-- short timeouts, no limiter: the rows are about the engine
T.BASE = { rate_limit = false, timeout = 0.5, connect_timeout = 0.5, deadline = 5,
           max_retries = 2 }

T.rows = {
    { name = "503 then success", op = "create",
      faults = { { mode = "status", status = 503 } },
      ok = true, requests = 2, statuses = { "POST 503", "POST 200" }, state = "start" },

    { name = "after 500 with retry_post: 'already exists' confirmed in the same call",
      op = "create", opts = { retry_post = true },
      faults = { { mode = "after", status = 500 } },
      ok = true, requests = 3, statuses = { "POST 500", "POST 400", "PUT 200" },
      state = "start" },

    { name = "500 on a create without retry_post: not retried, effect unknown",
      op = "create", faults = { { mode = "status", status = 500 } },
      kind = "server_error", status = 500, attempts = 1, effect = "unknown",
      message = "^Server Error%. %(attempt 1 of 3; not retried: it may have been processed, "
                .. "see retry_post%)$",
      requests = 1, state = "none" },

    { name = "three 500s on a cancel", op = "cancel",
      faults = { { mode = "status", status = 500, next = 3 } },
      kind = "server_error", status = 500, attempts = 3, effect = "unknown",
      message = "^Server Error%. %(attempt 3 of 3; it may have been cancelled%)$",
      requests = 3, state = "active" },

    { name = "three 503s on a create: refused each time, effect none", op = "create",
      faults = { { mode = "status", status = 503, next = 3 } },
      kind = "server_error", status = 503, attempts = 3, effect = "none",
      message = "^Service Unavailable%.$", requests = 3, state = "none" },

    { name = "a 429 with Retry-After: 1, then created", op = "create",
      faults = { { mode = "ratelimit", seconds = 1 } },
      ok = true, requests = 2, statuses = { "POST 429", "POST 200" }, state = "start" },

    { name = "422: unprocessable, not retried", op = "create",
      faults = { { mode = "status", status = 422 } },
      kind = "unprocessable", status = 422, attempts = 1, effect = "none",
      message = "^Sandbox fault: status 422%.$", requests = 1, state = "none" },

    { name = "PUT 502 x3", op = "reschedule",
      faults = { { mode = "status", status = 502, next = 3 } },
      kind = "server_error", status = 502, attempts = 3, effect = "unknown",
      message = "^Bad Gateway%. %(attempt 3 of 3; it may have been rescheduled%)$",
      requests = 3, statuses = { "PUT 502", "PUT 502", "PUT 502" }, state = "active" },

    { name = "PUT reset: retried", op = "reschedule",
      faults = { { mode = "reset" } },
      ok = true, requests = 2, statuses = { "PUT 444", "PUT 200" }, state = "moved" },

    { name = "DELETE after 500: 'already cancelled' on the retry is success", op = "cancel",
      faults = { { mode = "after", status = 500 } },
      ok = true, requests = 2, statuses = { "DELETE 500", "DELETE 400" }, state = "cancelled" },

    { name = "the confirm that fails: within the call's own retries, effect done",
      op = "create", opts = { retry_post = true, max_retries = 2 },
      faults = { { mode = "after", status = 500 }, { mode = "delay", ms = 0 },
                 { mode = "status", status = 503, next = 3 } },
      kind = "server_error", status = 503, attempts = 3, effect = "done",
      message = "^the appointment was created, but confirming it failed: Service Unavailable%.$",
      requests = 3, statuses = { "POST 500", "POST 400", "PUT 503" }, state = "start" },

    { name = "after 500, then 503s (retry_post): effect unknown, the message says it may exist",
      op = "create", opts = { retry_post = true },
      faults = { { mode = "after", status = 500 }, { mode = "status", status = 503, next = 3 } },
      kind = "server_error", status = 503, attempts = 3, effect = "unknown",
      message = "^Service Unavailable%. %(attempt 3 of 3; the appointment may have been created%)$",
      requests = 3, statuses = { "POST 500", "POST 503", "POST 503" }, state = "start" },

    { name = "a garbage 200: bad_response, not retried", op = "create",
      faults = { { mode = "garbage" } },
      kind = "bad_response", status = 200, attempts = 1, effect = "unknown",
      message = "^the 200 answer is not the documented JSON %(attempt 1 of 3; the appointment "
                .. "may have been created%)$",
      requests = 1, state = "none" },
}

local n = 0
-- a code no other row or run uses
function T.code(row)
    n = n + 1
    return ("ft-%s-%d-%d"):format(row.op:sub(1, 2), n, math.random(1e9))
end

-- the client options of a row, against sandbox sb
function T.options(sb, row)
    local o = { api_key = T.api_key, secret_key = T.secret_key, base_url = sb.base_url }
    for k, v in pairs(T.BASE) do o[k] = v end
    for k, v in pairs(row.opts or {}) do o[k] = v end
    return o
end

-- the operation's arguments: op, a, b as the public API takes them
function T.args(row, code)
    if row.op == "create" then
        return "create", { code = code, starts_at = T.START, patient = "pat-1",
                           professional = "prof-demo-1" }
    elseif row.op == "reschedule" then
        return "reschedule", code, T.MOVED
    end
    return "cancel", code
end

local function http(sb, method, path, body)
    local H = require "spec.helper"
    return H.http(method, sb.base_url .. path, body and json.encode(body), H.auth())
end

-- Seeds the appointment a reschedule or cancel works on (before any
-- fault), queues the row's faults; returns how many requests the sandbox
-- had seen before the call (for T.seen).
function T.prepare(sb, row, code)
    if row.op ~= "create" then
        local st = http(sb, "POST", "/appointments", {
            appointment = { code = code, starts_at = T.START },
            patient = { code = "pat-1" }, professional = { hash = "prof-demo-1" } })
        assert(st == 200, "seeding " .. code .. " failed: " .. tostring(st))
    end
    local skip = #sb:log()
    for _, f in ipairs(row.faults) do sb:faults(f) end
    return skip
end

-- the requests to /v1/ the sandbox saw after the first skip
function T.seen(sb, skip)
    local out = {}
    for i, e in ipairs(sb:log()) do
        if i > skip then out[#out + 1] = e end
    end
    return out
end

local WANT = { start = { T.START, "active" }, active = { T.START, "active" },
               moved = { T.MOVED, "active" }, cancelled = { T.START, "cancelled" } }

-- Asserts what a driver answered (v, err), what the sandbox saw (seen) and
-- holds for the code (rec) against the row. Errors may be error objects or
-- plain tables (tostring is only used for the failure text).
function T.check(row, v, err, seen, rec)
    local what = row.name .. ": " .. tostring(err and err.message)
    if row.ok then
        assert(err == nil, what)
        if row.op == "cancel" then
            assert(v == true, what)
        else
            assert(type(v) == "table" and type(v.code) == "string" and type(v.url) == "string", what)
        end
    else
        assert(v == nil, what)
        assert(type(err) == "table", what)
        assert(err.kind == row.kind, what .. " kind " .. tostring(err.kind))
        assert(err.status == row.status, what .. " status " .. tostring(err.status))
        assert(err.attempts == row.attempts, what .. " attempts " .. tostring(err.attempts))
        assert(err.effect == row.effect, what .. " effect " .. tostring(err.effect))
        if row.message then
            assert(type(err.message) == "string" and err.message:find(row.message),
                   what .. " message does not match " .. row.message)
        end
    end
    assert(#seen == row.requests, what .. ": the sandbox saw " .. #seen .. " requests")
    if row.statuses then
        local got = {}
        for i, e in ipairs(seen) do got[i] = ("%s %d"):format(e.method, e.status) end
        assert(table.concat(got, ", ") == table.concat(row.statuses, ", "),
               what .. ": statuses " .. table.concat(got, ", "))
    end
    if row.state == "none" then
        assert(rec == nil, what .. ": the appointment exists")
    elseif row.state then
        assert(type(rec) == "table", what .. ": no appointment")
        assert(rec.starts_at == WANT[row.state][1] and rec.status == WANT[row.state][2],
               what .. ": state " .. tostring(rec.starts_at) .. " " .. tostring(rec.status))
    end
end

return T
