-- client:run_batch against the sandbox: concurrency from one thread, the
-- same results and errors as the blocking client, one bad op failing
-- alone, retries and confirmation per op, ops on one code kept in order,
-- the shared limiter, option checks, and the batch userdata's lifetime.
local H = require "spec.helper"

local sb, slow

local function uniq(prefix) return H.uniq(prefix or "b") end

local function new_client(base, extra)
    return H.client({ base_url = base, rate_limit = false, timeout = 5, deadline = 10 }, extra)
end

local function create_op(code, extra)
    local a = { op = "create", code = code, starts_at = "2030-05-20T10:00:00Z",
                patient = "pat-1", professional = "prof-demo-1" }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
end

local function api_requests(s) return #s:api_log() end

describe("run_batch", function()
    setup(function()
        sb = H.sandbox()
        slow = H.sandbox{ latency_ms = 200 }
    end)
    before_each(function()
        sb:reset()
        slow:reset()
    end)

    it("runs creates, reschedules and cancels, shaped as the blocking client", function()
        local c = new_client(sb.base_url)
        local a, b2 = uniq(), uniq()
        local pre = assert(c:create(create_op(a, { op = nil })))
        local ops = {
            create_op(b2, { duration = 1200 }),
            { op = "reschedule", code = a, starts_at = "2030-06-01T08:00:00+02:00" },
            { op = "cancel", code = uniq("missing") },
        }
        local seen = {}
        local res, sum = c:run_batch(ops, { concurrency = 3, on_result = function(i, v, e)
            seen[#seen + 1] = { i = i, v = v, e = e }
        end })
        assert.equal(b2, res[1].ok.code)
        assert.matches("/call/", res[1].ok.url)
        assert.equal(a, res[2].ok.code)
        assert.not_equal(pre.url, res[2].ok.url)
        assert.equal(410, (H.http("GET", pre.url)))
        assert.equal("not_found", res[3].err.kind)
        assert.equal(404, res[3].err.status)
        assert.equal("DELETE", res[3].err.method)
        assert.matches("^mediquo: not_found %(HTTP 404%)", tostring(res[3].err))
        assert.same({ ok = 2, failed = 1, held = 0, by_kind = { not_found = 1 } }, sum)
        assert.equal(3, #seen)
        for _, s in ipairs(seen) do
            if s.v then assert.equal(res[s.i].ok, s.v) else assert.equal(res[s.i].err, s.e) end
        end
        local st = sb:state()
        assert.equal(1200, st[b2].duration)
        assert.equal("2030-06-01T06:00:00Z", st[a].starts_at)
        local stats = c:stats()
        assert.equal(4, stats.requests)     -- the create before + 3 in the batch
        assert.equal(3, stats.ok)
        assert.equal(1, stats.by_kind.not_found)
        c:close()
    end)

    it("refuses invalid ops alone, before any request", function()
        local c = new_client(sb.base_url)
        local good = uniq()
        local ops = {
            create_op(uniq(), { starts_at = "2030-13-01T00:00:00Z" }),
            create_op(good),
            { op = "reschedule", code = "", starts_at = "2030-01-01T00:00:00Z" },
            { op = "cancel", code = "x", extra = 1 },
            { op = "delete", code = "x" },
            "not a table",
            create_op(uniq(), { duration = -5 }),
        }
        local order = {}
        local res, sum = c:run_batch(ops, { on_result = function(i) order[#order + 1] = i end })
        assert.equal(good, res[2].ok.code)
        for _, i in ipairs{ 1, 3, 4, 5, 6, 7 } do
            assert.equal("invalid_argument", res[i].err.kind, "op " .. i)
            assert.equal(0, res[i].err.attempts)
        end
        assert.matches("starts_at", res[1].err.message)
        assert.matches("code", res[3].err.message)
        assert.matches("extra", res[4].err.message)
        assert.matches("^op:", res[5].err.message)
        assert.matches("ops%[6%]", res[6].err.message)
        assert.matches("duration", res[7].err.message)
        assert.equal(1, sum.ok)
        assert.equal(6, sum.by_kind.invalid_argument)
        assert.equal(7, #order)
        assert.equal(2, order[#order])      -- refused ops are reported at once
        assert.equal(1, api_requests(sb))
        -- every refusal counts in the client's stats, wherever it was refused
        assert.equal(6, c:stats().by_kind.invalid_argument)
        assert.equal(1, c:stats().ok)
        c:close()
    end)

    it("keeps `concurrency` requests in flight from one thread", function()
        local c = new_client(slow.base_url)
        local ops = {}
        for i = 1, 16 do ops[i] = create_op(uniq("conc")) end
        local t0 = H.now()
        local _, sum = c:run_batch(ops, { concurrency = 8 })
        local el = H.now() - t0
        assert.equal(16, sum.ok)
        -- 2 rounds of 200 ms; one at a time would take 3.2 s
        assert.is_true(el >= 0.38, "too fast for the sandbox's latency: " .. el)
        assert.is_true(el < 1.4, "not concurrent: " .. el)
        t0 = H.now()
        _, sum = c:run_batch({ create_op(uniq()), create_op(uniq()), create_op(uniq()) },
                             { concurrency = 1 })
        el = H.now() - t0
        assert.equal(3, sum.ok)
        assert.is_true(el >= 0.58, "concurrency 1 overlapped requests: " .. el)
        c:close()
    end)

    it("keeps ops on one code in array order", function()
        local c = new_client(slow.base_url)
        local code, other = uniq("ord"), uniq("ord")
        local ops = {
            create_op(code),
            { op = "reschedule", code = code, starts_at = "2031-01-01T00:00:00Z" },
            create_op(other),
            { op = "reschedule", code = code, starts_at = "2032-01-01T00:00:00Z" },
            { op = "cancel", code = code },
        }
        local res, sum = c:run_batch(ops, { concurrency = 8 })
        assert.equal(5, sum.ok, tostring(res[2].err or res[4].err or res[5].err))
        local st = slow:state()
        assert.equal("cancelled", st[code].status)
        assert.equal("2032-01-01T00:00:00Z", st[code].starts_at)
        assert.equal("active", st[other].status)
        c:close()
    end)

    it("retries per op under the same policy, and one failing op fails alone", function()
        local c = new_client(sb.base_url, { max_retries = 2 })
        sb:faults{ next = 1, mode = "status", status = 503 }
        local res, sum = c:run_batch({ create_op(uniq()) }, { concurrency = 1 })
        assert.truthy(res[1].ok, tostring(res[1].err))
        assert.equal(1, sum.ok)
        local st = c:stats()
        assert.equal(2, st.requests)
        assert.equal(1, st.retries)

        -- a create answered 500 is not retried without retry_post; the
        -- others go on
        sb:faults{ next = 1, mode = "status", status = 500 }
        local ops = { create_op(uniq()), create_op(uniq()), create_op(uniq()) }
        res, sum = c:run_batch(ops, { concurrency = 1 })
        assert.equal("server_error", res[1].err.kind)
        assert.equal(1, res[1].err.attempts)
        assert.truthy(res[2].ok)
        assert.truthy(res[3].ok)
        assert.same({ ok = 2, failed = 1, held = 0, by_kind = { server_error = 1 } }, sum)
        c:close()
    end)

    it("confirms an ambiguous create (retry_post) with a live URL, created once", function()
        local c = new_client(sb.base_url, { retry_post = true })
        local code = uniq("amb")
        sb:faults{ next = 1, mode = "after", status = 502 }
        local res = c:run_batch({ create_op(code) })
        assert.truthy(res[1].ok, tostring(res[1].err))
        assert.equal(code, res[1].ok.code)
        assert.equal(200, (H.http("GET", res[1].ok.url)))
        local posts = 0
        for _, e in ipairs(sb:log()) do
            if e.method == "POST" and e.path == "/v1/appointments" then posts = posts + 1 end
        end
        assert.equal(2, posts)                          -- 502 (processed) + "already exists"
        assert.equal("PUT", sb:log()[3].method)         -- the confirmation

        -- the confirmation is one attempt within the create's deadline; if
        -- it fails, the error says the appointment exists
        sb:reset()
        sb:faults{ next = 1, mode = "after", status = 502 }
        sb:faults{ next = 1, mode = "delay", ms = 0 }
        sb:faults{ next = 1, mode = "status", status = 500 }
        res = c:run_batch({ create_op(uniq("amb")) })
        local e = res[1].err
        assert.equal("server_error", e.kind)
        assert.matches("^the appointment was created, but confirming it failed: ", e.message)
        assert.equal(3, e.attempts)
        local puts = 0
        for _, en in ipairs(sb:log()) do
            if en.method == "PUT" then puts = puts + 1 end
        end
        assert.equal(1, puts)
        c:close()
    end)

    it("treats a resumed op's 'already exists' / 'already cancelled' as its own", function()
        local c = new_client(sb.base_url)
        local a, b2 = uniq("res"), uniq("res")
        assert(c:create(create_op(a, { op = nil })))
        assert(c:create(create_op(b2, { op = nil })))
        assert(c:cancel(b2))
        local ops = { create_op(a), { op = "cancel", code = b2 }, create_op(a) }
        local hows = {}
        local res = c:run_batch(ops, {
            resumed = function(i) return i ~= 3 end,
            on_result = function(i, _, _, how) hows[i] = how or "-" end,
        })
        assert.equal(a, res[1].ok.code)
        assert.equal(200, (H.http("GET", res[1].ok.url)))
        assert.is_true(res[1].reconciled)
        assert.is_true(res[2].ok)
        assert.equal("reconciled", hows[2])
        assert.equal("bad_request", res[3].err.kind)    -- not resumed: a real conflict
        assert.equal("-", hows[3])
        c:close()
    end)

    it("takes one shared limiter slot per attempt, without blocking the others", function()
        local key = uniq("lim")
        local c = new_client(sb.base_url, {
            rate_limit = { per_minute = 5, burst = 5, period = 1, key = key, max_wait = 5 } })
        local ops = {}
        for i = 1, 15 do ops[i] = create_op(uniq()) end
        local t0 = H.now()
        local _, sum = c:run_batch(ops, { concurrency = 8 })
        local el = H.now() - t0
        assert.equal(15, sum.ok)
        -- 5 per second: starts 11..15 cannot come before t = 2 s
        assert.is_true(el >= 1.9, "limiter not honoured: " .. el)
        assert.is_true(el < 4, "too slow: " .. el)
        local st = c:stats()
        assert.equal(15, st.requests)
        -- rows 6..8 start with the first five and must wait for the window
        -- whatever the machine's speed (later rows may find it free when
        -- requests are slow, e.g. under valgrind)
        assert.is_true(st.limiter_waits >= 3, "limiter_waits " .. st.limiter_waits)
        assert.is_true(st.limiter_wait_seconds > 1)
        c:close()
    end)

    it("gives up with rate_limited when no slot comes within max_wait, sending nothing", function()
        local c = new_client(sb.base_url, {
            rate_limit = { per_minute = 2, period = 60, key = uniq("lim"), max_wait = 0.2 } })
        local ops = {}
        for i = 1, 5 do ops[i] = create_op(uniq()) end
        local t0 = H.now()
        local res, sum = c:run_batch(ops, { concurrency = 5 })
        assert.is_true(H.now() - t0 < 2)
        assert.equal(2, sum.ok)
        assert.equal(3, sum.by_kind.rate_limited)
        for _, r in ipairs(res) do
            if r.err then
                assert.equal(0, r.err.attempts)
                assert.is_true(r.err.retry_after > 0)
            end
        end
        assert.equal(2, api_requests(sb))
        c:close()
    end)

    it("bounds each op by its own deadline", function()
        local c = new_client(sb.base_url, { timeout = 0.3, deadline = 0.6, max_retries = 5 })
        sb:faults{ next = 10, mode = "delay", ms = 1500 }
        local t0 = H.now()
        local res = c:run_batch({ { op = "cancel", code = uniq() } }, { concurrency = 1 })
        local el = H.now() - t0
        assert.equal("timeout", res[1].err.kind)
        assert.is_true(el < 1.2, "deadline not honoured: " .. el)
        c:close()
    end)

    it("checks its options", function()
        local c = new_client(sb.base_url)
        local bad = {
            { { concurrency = 0 }, "concurrency" }, { { concurrency = 65 }, "concurrency" },
            { { concurrency = 1.5 }, "concurrency" }, { { concurrency = "4" }, "concurrency" },
            { { on_result = 1 }, "on_result" }, { { resumed = true }, "resumed" },
            { { concurency = 4 }, "concurency" }, { "fast", "opts" },
        }
        for _, case in ipairs(bad) do
            local res, err = c:run_batch({ create_op(uniq()) }, case[1])
            assert.is_nil(res)
            assert.equal("invalid_argument", err.kind)
            assert.matches(case[2], err.message, 1, true)
        end
        local res, err = c:run_batch("ops")
        assert.is_nil(res)
        assert.equal("invalid_argument", err.kind)
        res = c:run_batch({})
        assert.same({}, res)
        assert.equal(0, api_requests(sb))
        c:close()
    end)

    it("calls before_send, then on_sent once bytes left, then on_result; on_sent never for a row that never left",
       function()
        local c = new_client(sb.base_url)
        local seq = {}
        local function hook(name) return function(i) seq[#seq + 1] = name .. i end end
        local ops = { create_op(uniq()), create_op(uniq()), create_op(uniq()) }
        local _, sum = c:run_batch(ops, { concurrency = 2, before_send = hook("b"), on_sent = hook("s"),
                                         on_result = hook("r") })
        assert.equal(3, sum.ok)
        local at = {}
        for k, e in ipairs(seq) do at[e] = k end
        for i = 1, 3 do
            assert.truthy(at["b" .. i] and at["s" .. i] and at["r" .. i], table.concat(seq, " "))
            assert.is_true(at["b" .. i] < at["s" .. i] and at["s" .. i] < at["r" .. i], table.concat(seq, " "))
        end
        assert.equal(9, #seq)
        c:close()

        -- nothing listens: the connection is refused, no byte of it leaves
        local dead = new_client("http://127.0.0.1:" .. H.free_port() .. "/v1", { max_retries = 0 })
        seq = {}
        local res = dead:run_batch({ create_op(uniq()) }, { before_send = hook("b"), on_sent = hook("s"),
                                                           on_result = hook("r") })
        assert.equal("network", res[1].err.kind)
        assert.equal("none", res[1].err.effect)
        assert.same({ "b1", "r1" }, seq)
        dead:close()
    end)

    it("lets a raising on_result out, and frees the batch", function()
        local c = new_client(sb.base_url)
        local ok, err = pcall(c.run_batch, c, { create_op(uniq()), create_op(uniq()) },
                              { on_result = function() error("boom") end })
        assert.is_false(ok)
        assert.matches("boom", err)
        local _, sum = c:run_batch({ create_op(uniq()) })     -- still usable
        assert.equal(1, sum.ok)

        -- the batch userdata: close idempotent, collected once unreachable
        local weak = setmetatable({}, { __mode = "v" })
        local b = c._core:batch(2)
        weak[1] = b
        b:add(1, "cancel", "nope")
        b:close()
        b:close()
        assert.has_error(function() b:step(0) end, "mediquo batch is closed")
        b = c._core:batch(2)
        b:add(1, "cancel", "nope")
        weak[2] = b
        b = nil     -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.is_nil(weak[1])
        assert.is_nil(weak[2])
        c:close()
    end)

    it("stops when the client is closed from on_result", function()
        local c = new_client(slow.base_url)
        local ok, err = pcall(c.run_batch, c,
            { create_op(uniq()), create_op(uniq()), create_op(uniq()) },
            { concurrency = 1, on_result = function() c._core:close() end })
        assert.is_false(ok)
        assert.matches("closed", err)
        c:close()
    end)
end)
