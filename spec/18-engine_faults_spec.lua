-- The engine's fault table (spec/fault_table.lua) through the blocking
-- client: for each sandbox fault, the same success or error kind, status,
-- attempts, message and effect, and the same requests seen by the sandbox,
-- that run_batch and mediquo.ngx must answer too (issue 14; effect: issue
-- 16 item 8).

local H = require "spec.helper"
local T = require "spec.fault_table"
local mediquo = require "mediquo"

describe("engine fault table, blocking client", function()
    for _, row in ipairs(T.rows) do
        it(row.name, function()
            local sb = H.sandbox{}
            local code = T.code(row)
            local skip = T.prepare(sb, row, code)
            local c = assert(mediquo.new(T.options(sb, row)))
            local op, a, b = T.args(row, code)
            local v, err = c[op](c, a, b)
            T.check(row, v, err, T.seen(sb, skip), sb:state()[code])
            -- the client counted exactly what the sandbox saw
            local st = c:stats()
            assert.equal(row.requests, st.requests)
            if row.ok then
                assert.equal(1, st.ok)
            else
                assert.equal(1, st.by_kind[row.kind])
                -- an error object: one readable line, the effect in it too
                assert.matches(row.kind, tostring(err), 1, true)
            end
            c:close()
        end)
    end

    it("without the reconciliation, 'already exists' would be the answer (the row can fail)",
       function()
        -- the same `after` 500, but a fresh call instead of the engine's
        -- own second attempt: the create is then refused, not confirmed
        local sb = H.sandbox{}
        local row = T.rows[2]
        local code = T.code(row)
        T.prepare(sb, row, code)
        local c = assert(mediquo.new(T.options(sb, { opts = { max_retries = 0 } })))
        local _, a = T.args(row, code)
        local v, err = c:create(a)
        assert.is_nil(v)
        assert.equal("server_error", err.kind)
        assert.equal("unknown", err.effect)
        v, err = c:create(a)
        assert.is_nil(v)
        assert.equal("bad_request", err.kind)
        assert.equal("Appointment already exists", err.message)
        assert.equal("none", err.effect)
        c:close()
    end)
end)
