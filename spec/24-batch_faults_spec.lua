-- The engine's fault table (spec/fault_table.lua) through run_batch: for
-- each sandbox fault the same success or error kind, status, attempts,
-- message and effect, and the same requests seen by the sandbox, as the
-- blocking client (spec 18) - checked against the table and against the
-- client itself, run on the same fault right before (issue 14: one engine
-- decides for every driver).

local H = require "spec.helper"
local T = require "spec.fault_table"
local mediquo = require "mediquo"

-- the row's operation as a batch op
local function batch_op(row, code)
    local op, a, b = T.args(row, code)
    if op == "create" then
        local t = { op = "create" }
        for k, v in pairs(a) do t[k] = v end
        return t
    elseif op == "reschedule" then
        return { op = op, code = a, starts_at = b }
    end
    return { op = op, code = a }
end

local hostile = require "spec.hostile.server"

local FIELDS = { "kind", "status", "message", "retryable", "retry_after", "attempts",
                 "method", "path", "effect" }

describe("engine fault table, run_batch", function()
    for _, row in ipairs(T.rows) do
        it(row.name, function()
            local sb = H.sandbox{}

            -- the blocking client on this fault, for the comparison
            local code1 = T.code(row)
            local skip1 = T.prepare(sb, row, code1)
            local c1 = assert(mediquo.new(T.options(sb, row)))
            local op, a, b = T.args(row, code1)
            local v1, e1 = c1[op](c1, a, b)
            local seen1 = #T.seen(sb, skip1)
            c1:close()

            -- the same fault through a batch
            sb:reset()
            local code = T.code(row)
            local skip = T.prepare(sb, row, code)
            local c = assert(mediquo.new(T.options(sb, row)))
            local called = 0
            local res, sum = c:run_batch({ batch_op(row, code) }, { concurrency = 2,
                on_result = function() called = called + 1 end })
            local r = res[1]
            T.check(row, r.ok, r.err, T.seen(sb, skip), sb:state()[code])
            assert.equal(1, called)
            assert.equal(seen1, #T.seen(sb, skip), "the client and the batch sent alike")

            -- the batch counted what the sandbox saw, in the client's stats
            local st = c:stats()
            assert.equal(row.requests, st.requests)
            if row.ok then
                assert.equal(1, sum.ok)
                assert.equal(1, st.ok)
                assert.equal(type(v1), type(r.ok))
            else
                assert.equal(1, sum.by_kind[row.kind])
                assert.equal(1, st.by_kind[row.kind])
                assert.is_nil(v1)
                -- every field as the client answered it (the paths differ
                -- only by the code)
                for _, f in ipairs(FIELDS) do
                    local want, got = e1[f], r.err[f]
                    if f == "path" or f == "message" then
                        want = want and want:gsub(code1:gsub("%-", "%%-"), code)
                    end
                    if f ~= "retry_after" then
                        assert.equal(want, got, row.name .. ": " .. f)
                    else
                        assert.equal(want == nil, got == nil, row.name .. ": retry_after")
                    end
                end
                assert.equal(tostring(e1):gsub(code1:gsub("%-", "%%-"), code), tostring(r.err))
            end
            c:close()
        end)
    end

    it("runs the whole table in one batch on a code each, as the client does row by row",
       function()
        -- no faults: every row's operation at once, concurrency 8; the rows
        -- that seed an appointment are answered as a plain success
        local sb = H.sandbox{}
        local ops, codes = {}, {}
        for i, row in ipairs(T.rows) do
            codes[i] = T.code(row)
            if row.op ~= "create" then
                T.prepare(sb, { op = row.op, faults = {} }, codes[i])
            end
            ops[i] = batch_op(row, codes[i])
        end
        local c = assert(mediquo.new(T.options(sb, {})))
        local res, sum = c:run_batch(ops, { concurrency = 8 })
        assert.equal(#T.rows, sum.ok)
        local st = sb:state()
        for i, row in ipairs(T.rows) do
            local rec = st[codes[i]]
            if row.op == "cancel" then
                assert.is_true(res[i].ok)
                assert.equal("cancelled", rec.status)
            elseif row.op == "reschedule" then
                assert.equal(T.MOVED, rec.starts_at)
            else
                assert.equal(codes[i], res[i].ok.code)
                assert.equal(T.START, rec.starts_at)
            end
        end
        c:close()
    end)

    -- issue 16 item 2 through batches: a server that echoes the keys
    -- JSON-escaped (`\/` as PHP's json_encode writes it, `\u` escapes)
    -- must not get them into a batch result; the engine scrubs after
    -- unescaping, for batches as for a single call
    it("keeps escaped keys out of batch results (a server echoing them)", function()
        local hex = function(k)
            local t = {}
            for i = 1, k do t[i] = ("%x"):format(math.random(0, 15)) end
            return table.concat(t)
        end
        local key, secret = "K3Y/CANARY+" .. hex(12), "S3CR3T/CANARY+" .. hex(12) .. "=="
        local srv = hostile.start()
        local function client(path)
            return assert(mediquo.new{ api_key = key, secret_key = secret, rate_limit = false,
                                       base_url = srv.url .. path, timeout = 2, deadline = 4,
                                       max_retries = 0 })
        end
        local op = { op = "create", code = "S1", starts_at = T.START, patient = "pat-1",
                     professional = "prof-demo-1" }
        local texts = {}
        local function collect(v, depth)
            depth = depth or 0
            if type(v) == "string" then
                texts[#texts + 1] = v
            elseif type(v) == "table" and depth < 6 then
                if getmetatable(v) then texts[#texts + 1] = tostring(v) end
                for k, x in pairs(v) do collect(k, depth + 1); collect(x, depth + 1) end
            end
        end
        local c = client("/echo-secret")
        local res = c:run_batch({ op }, { on_result = function(...) collect({ ... }) end })
        c:close()
        assert.equal("forbidden", res[1].err.kind)
        collect(res)
        c = client("/echo-secret-ok")
        local res2 = c:run_batch({ op })
        c:close()
        srv:stop()
        assert.truthy(res2[1].ok, tostring(res2[1].err))
        assert.equal("A1", res2[1].ok.code)
        collect(res2)
        assert.is_true(#texts > 4)
        for _, t in ipairs(texts) do
            for _, needle in ipairs{ key, secret, (secret:gsub("/", "\\/")) } do
                assert.is_nil(t:find(needle, 1, true), "a key leaked: " .. t:sub(1, 200))
            end
        end
    end)
end)
