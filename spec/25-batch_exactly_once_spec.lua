-- Exactly-once in batches (issue 16 items 1 and 9, issue 17's pacing):
-- a row whose outcome is unknown holds back later rows on its code (they
-- come back as held, with why), rows on one code are applied one at a time
-- in array order, a resumed run settles rows in file order so the final
-- state matches the file, the confirm of a reconciled create does not wait
-- behind the whole batch, a raising `resumed` frees the batch like a raising
-- `on_result`, and opts.max_wait paces a batch to the limiter's budget with
-- each row's deadline starting when it is sent.
local H = require "spec.helper"

local sb, slow

local function uniq(prefix) return H.uniq(prefix or "x") end

local function new_client(base, extra)
    return H.client({ base_url = base, rate_limit = false, timeout = 5, deadline = 10 }, extra)
end

local function create_op(code, starts_at)
    return { op = "create", code = code, starts_at = starts_at or "2030-05-20T10:00:00Z",
             patient = "pat-1", professional = "prof-demo-1" }
end

-- requests the sandbox saw on /v1/, as "METHOD path"
local function seen(s)
    local out = {}
    for _, e in ipairs(s:api_log()) do out[#out + 1] = e.method .. " " .. e.path end
    return out
end

local function count(list, pat)
    local k = 0
    for _, v in ipairs(list) do
        if v:find(pat) then k = k + 1 end
    end
    return k
end

-- sockets this process holds open (the shell's parent is this process)
local function sockets()
    local out = H.run("ls -l /proc/$PPID/fd 2>/dev/null | grep -c 'socket:'")
    return tonumber(out:match("%d+")) or -1
end

describe("run_batch exactly-once", function()
    setup(function()
        sb = H.sandbox()
        slow = H.sandbox{ latency_ms = 200 }
    end)
    before_each(function()
        sb:reset()
        slow:reset()
    end)

    it("holds back later rows on a code whose row's outcome is unknown", function()
        local c = new_client(sb.base_url, { max_retries = 2 })
        local x, y = uniq("held"), uniq("free")
        sb:faults{ next = 1, mode = "after", status = 500 }   -- processed, answered 500
        local ops = {
            create_op(x),
            { op = "reschedule", code = x, starts_at = "2030-06-01T08:00:00Z" },
            create_op(y),
            { op = "cancel", code = x },
        }
        local hows = {}
        local res, sum = c:run_batch(ops, { concurrency = 1, on_result = function(i, _, _, how)
            hows[i] = how or "-"
        end })
        local e1 = res[1].err
        assert.equal("server_error", e1.kind)
        assert.equal("unknown", e1.effect)
        assert.equal(1, e1.attempts)
        assert.truthy(res[3].ok, tostring(res[3].err))
        for _, k in ipairs{ 2, 4 } do
            local r = res[k]
            assert.equal(1, r.held, "row " .. k)
            assert.equal(1, r.err.held)
            assert.equal("server_error", r.err.kind)       -- the blocking row's kind
            assert.equal("none", r.err.effect)
            assert.equal(0, r.err.attempts)
            assert.is_true(r.err.retryable)
            assert.matches("not sent: row 1 on the same code may have taken effect",
                           r.err.message, 1, true)
            assert.equal("held", hows[k])
        end
        assert.equal("PUT", res[2].err.method)
        assert.equal("DELETE", res[4].err.method)
        assert.same({ ok = 1, failed = 3, held = 2, by_kind = { server_error = 3 } }, sum)
        -- nothing was sent for the held rows: the state is the create's
        local log = seen(sb)
        assert.equal(0, count(log, "^PUT ") + count(log, "^DELETE "))
        local st = sb:state()
        assert.equal("2030-05-20T10:00:00Z", st[x].starts_at)
        assert.equal("active", st[x].status)
        assert.equal(2, c:stats().requests)
        c:close()
    end)

    it("lets later rows go after a failure that settled nothing (effect none)", function()
        local c = new_client(sb.base_url)
        local x = uniq("none")
        sb:faults{ next = 3, mode = "status", status = 503 }   -- refused, not processed
        local res = c:run_batch({
            { op = "reschedule", code = x, starts_at = "2030-06-01T08:00:00Z" },
            { op = "cancel", code = x },
            create_op(x),
        }, { concurrency = 4 })
        assert.equal("server_error", res[1].err.kind)
        assert.equal(503, res[1].err.status)
        assert.equal(3, res[1].err.attempts)
        assert.equal("none", res[1].err.effect)
        assert.is_nil(res[1].held)
        assert.equal("not_found", res[2].err.kind)      -- sent: a definite answer
        assert.equal("none", res[2].err.effect)
        assert.is_nil(res[2].held)
        assert.truthy(res[3].ok, tostring(res[3].err))
        assert.equal(5, #seen(sb))
        c:close()
    end)

    -- issue 16 item 1, at the batch level: a resumed run must not undo a
    -- later row, nor fail forever on a row the server state already has
    it("settles a resumed run in file order: the final state matches the file", function()
        local c = new_client(sb.base_url)
        local r1, r2 = uniq("r1"), uniq("r2")
        local ops = {
            create_op(r1, "2030-05-20T10:00:00Z"),
            { op = "reschedule", code = r1, starts_at = "2030-06-01T08:00:00Z" },
            create_op(r2, "2030-05-21T10:00:00Z"),
            { op = "cancel", code = r2 },
        }
        sb:faults{ next = 1, mode = "after", status = 500 }
        sb:faults{ next = 1, mode = "after", status = 500 }
        local first = c:run_batch(ops, { concurrency = 1 })
        assert.equal("unknown", first[1].err.effect)
        assert.equal("unknown", first[3].err.effect)
        assert.equal(1, first[2].held)
        assert.equal(3, first[4].held)

        -- the re-run: rows without a definite result are sent again, each
        -- taken as possibly sent by the interrupted run
        local again, idx = {}, {}
        for i, r in ipairs(first) do
            if not r.ok then
                again[#again + 1] = ops[i]
                idx[#again] = i
            end
        end
        local hows = {}
        local res, sum = c:run_batch(again, {
            concurrency = 4,
            resumed = function() return true end,
            on_result = function(i, _, _, how) hows[idx[i]] = how or "-" end,
        })
        assert.equal(4, sum.ok, tostring(res[1].err or res[2].err or res[3].err or res[4].err))
        assert.equal("reconciled", hows[1])
        assert.equal("reconciled", hows[3])
        local st = sb:state()
        assert.equal("2030-06-01T08:00:00Z", st[r1].starts_at)
        assert.equal("active", st[r1].status)
        assert.equal("cancelled", st[r2].status)
        c:close()
    end)

    it("applies rows on one code one at a time, in array order", function()
        local c = new_client(slow.base_url)
        local a = uniq("ord")
        assert(c:create(create_op(a)))
        local ops, times = {}, {}
        for k = 1, 3 do
            ops[#ops + 1] = { op = "reschedule", code = a,
                              starts_at = ("2031-0%d-01T00:00:00Z"):format(k) }
            ops[#ops + 1] = create_op(uniq("other"))
        end
        local res, sum = c:run_batch(ops, { concurrency = 8, on_result = function(i)
            times[i] = H.now()
        end })
        assert.equal(6, sum.ok, tostring(res[1].err or res[3].err or res[5].err))
        -- the other codes ran alongside; the three on `a` each waited for
        -- the one before (200 ms latency each)
        assert.is_true(times[3] - times[1] >= 0.15, "rows 1 and 3 overlapped")
        assert.is_true(times[5] - times[3] >= 0.15, "rows 3 and 5 overlapped")
        assert.equal("2031-03-01T00:00:00Z", slow:state()[a].starts_at)
        c:close()
    end)

    it("confirms a reconciled create before the rows queued behind it", function()
        local c = new_client(sb.base_url, { retry_post = true })
        local x = uniq("conf")
        sb:faults{ next = 1, mode = "after", status = 502 }
        local ops = { create_op(x) }
        for k = 2, 6 do ops[k] = create_op(uniq("q")) end
        local order = {}
        local res, sum = c:run_batch(ops, { concurrency = 1, on_result = function(i)
            order[#order + 1] = i
        end })
        assert.equal(6, sum.ok, tostring(res[1].err))
        assert.equal(x, res[1].ok.code)
        assert.equal(200, (H.http("GET", res[1].ok.url)))
        assert.equal(1, order[1], "the confirm waited behind the batch: " .. table.concat(order, ","))
        local log = seen(sb)
        assert.equal("PUT", log[3]:match("^%u+"))       -- POST 502, POST exists, PUT
        c:close()
    end)

    it("frees the batch when `resumed` raises, as when on_result raises", function()
        local c = new_client(slow.base_url)
        local ops = {}
        for k = 1, 4 do ops[k] = create_op(uniq("raise")) end
        collectgarbage("collect")
        collectgarbage("stop")      -- only an explicit close may free the handles
        local before = sockets()
        local ok, err = pcall(c.run_batch, c, ops, { concurrency = 4, resumed = function()
            error("resumed boom")
        end })
        local after = sockets()
        collectgarbage("restart")
        assert.is_false(ok)
        assert.matches("resumed boom", tostring(err))
        assert.is_true(before >= 0)
        assert.equal(before, after, "the batch's connections were left open")
        local _, sum = c:run_batch({ create_op(uniq()) })       -- still usable
        assert.equal(1, sum.ok)
        c:close()
    end)

    it("reads ops and opts raw: metamethods that raise never run (issue 16 item 9)", function()
        local c = new_client(sb.base_url)
        local boom = function() error("metamethod ran") end
        local hostile = { __index = boom, __newindex = boom, __len = boom, __pairs = boom,
                          __call = boom }
        local a, b2 = uniq("raw"), uniq("raw")
        local op1 = setmetatable(create_op(a), hostile)
        local op2 = setmetatable({ op = "cancel", code = b2 }, hostile)
        local ops = setmetatable({ op1, create_op(b2), op2 }, hostile)
        local opts = setmetatable({ concurrency = 2 }, hostile)
        local res, sum = c:run_batch(ops, opts)
        assert.equal(3, sum.ok, tostring((res[1].err or res[3].err or {}).message))
        assert.equal("cancelled", sb:state()[b2].status)
        c:close()
    end)

    describe("pacing (opts.max_wait)", function()
        local function paced_client()
            -- 4 starts a second, one at a time; a call's own deadline is
            -- shorter than the wait of most rows in the batch
            return new_client(sb.base_url, { deadline = 0.8, timeout = 0.7, rate_limit = {
                per_minute = 4, burst = 1, period = 1, key = uniq("pace"), max_wait = 0.2 } })
        end

        it("applies every row at the budget's pace, each deadline from its send", function()
            local c = paced_client()
            local ops = {}
            for k = 1, 12 do ops[k] = create_op(uniq("pace")) end
            local t0 = H.now()
            local res, sum = c:run_batch(ops, { concurrency = 4, max_wait = math.huge })
            local el = H.now() - t0
            assert.equal(12, sum.ok, tostring((res[12] or {}).err))
            -- 12 rows at 4 a second, spaced 0.25 s: about 2.75 s
            assert.is_true(el >= 2.4, "faster than the budget: " .. el)
            assert.is_true(el < 12, "far slower than the budget: " .. el)
            assert.equal(12, #seen(sb))
            c:close()
        end)

        it("fails rows for lack of a slot without it (the mechanism matters)", function()
            local c = paced_client()
            local ops = {}
            for k = 1, 12 do ops[k] = create_op(uniq("nopace")) end
            local res, sum = c:run_batch(ops, { concurrency = 4 })
            assert.is_true(sum.ok < 12)
            assert.is_true((sum.by_kind.rate_limited or 0) > 0)
            for _, r in ipairs(res) do
                if r.err then
                    assert.equal("rate_limited", r.err.kind)
                    assert.equal(0, r.err.attempts)
                    assert.equal("none", r.err.effect)
                end
            end
            c:close()
        end)

        it("bounds the first wait by a finite max_wait, and checks the option", function()
            local c = paced_client()
            local ops = {}
            for k = 1, 6 do ops[k] = create_op(uniq("short")) end
            local res, sum = c:run_batch(ops, { concurrency = 6, max_wait = 0.6 })
            -- the first slot now, then one each 0.25 s: 3 within 0.6 s
            assert.is_true(sum.ok >= 2 and sum.ok <= 4, "ok: " .. sum.ok)
            for _, r in ipairs(res) do
                if r.err then
                    assert.equal("rate_limited", r.err.kind)
                    assert.equal(0, r.err.attempts)
                    assert.is_true(r.err.retry_after > 0)
                    assert.matches("no rate-limit slot within", r.err.message, 1, true)
                end
            end
            for _, bad in ipairs{ -1, 0 / 0, "10" } do
                local r, err = c:run_batch(ops, { max_wait = bad })
                assert.is_nil(r)
                assert.equal("invalid_argument", err.kind)
                assert.matches("max_wait", err.message)
            end
            c:close()
        end)
    end)
end)
