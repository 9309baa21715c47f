-- The C scan of a create answer (src/answer.c, what client:create reads the
-- appointment with) held against cjson, the decoder it stands in front of:
-- test/answer_cjson.lua runs 20,050 bodies (hand-written, generated and
-- mutated) and fails on any body where the scan gives code/url and cjson
-- does not give the very same strings.
local H = require "spec.helper"

describe("answer scan vs cjson", function()
    it("agrees with cjson on 20,050 bodies (two seeds)", function()
        for _, seed in ipairs{ 20240517, 7 } do
            local out, code = H.run("lua5.4 test/answer_cjson.lua 20000 " .. seed .. " 2>&1")
            assert.equal(0, code, out)
            assert.truthy(out:find(", 0 mismatches", 1, true), out)
            -- the comparison did compare: bodies where both found code/url
            local n = tonumber(out:match("valid%s+%d+ bodies:%s+(%d+) both give"))
            assert.truthy(n and n > 1000, out)
        end
    end)

    it("reads the documented answer, escapes and all", function()
        local core = require "mediquo.core"
        assert.same({ "A1", "https://x/call/t" },
            { core.appointment('{"data":{"appointment":{"code":"A1","url":"https:\\/\\/x\\/call\\/t"}}}') })
        assert.is_nil(core.appointment('{"data":{"appointment":{"code":"A1"}}}'))
        assert.is_nil(core.appointment('{"data":{"appointment":{"code":"A1","url":"u"}}} x'))
    end)
end)
