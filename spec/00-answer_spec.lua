-- The C scan of a create answer (src/answer.c, what client:create reads the
-- appointment with) held against cjson, the decoder it stands in front of:
-- test/answer_cjson.lua runs 20,050 bodies (hand-written, generated and
-- mutated) and fails on any body where the scan gives code/url and cjson
-- does not give the very same strings; and 20,014 request bodies, where
-- the same scan's core.json_fields (mediquo.ngx.read) must give cjson's
-- fields whenever it gives a table.
local H = require "spec.helper"

describe("answer scan vs cjson", function()
    it("agrees with cjson on 20,050 answers and 20,014 request bodies (two seeds)", function()
        for _, seed in ipairs{ 20240517, 7 } do
            local out, code = H.run("lua5.4 test/answer_cjson.lua 20000 " .. seed .. " 2>&1")
            assert.equal(0, code, out)
            assert.truthy(out:find(", 0 mismatches", 1, true), out)
            -- the comparison did compare: bodies where both found code/url
            local n = tonumber(out:match("valid%s+%d+ bodies:%s+(%d+) both give"))
            assert.truthy(n and n > 1000, out)
            -- and request bodies (mediquo.ngx.read): json_fields gave a
            -- table for many, each cjson's fields exactly
            local taken, bad = out:match(
                "request bodies %d+: (%d+) read by json_fields, %d+ left to cjson, (%d+) mismatches")
            assert.equal("0", bad, out)
            assert.truthy(tonumber(taken) > 1000, out)
        end
    end)

    it("reads the documented answer, escapes and all", function()
        local core = require "mediquo.core"
        assert.same({ "A1", "https://x/call/t" },
            { core.appointment('{"data":{"appointment":{"code":"A1","url":"https:\\/\\/x\\/call\\/t"}}}') })
        assert.is_nil(core.appointment('{"data":{"appointment":{"code":"A1"}}}'))
        assert.is_nil(core.appointment('{"data":{"appointment":{"code":"A1","url":"u"}}} x'))
    end)

    it("reads a request body's fields as cjson does, or leaves it to cjson", function()
        local core = require "mediquo.core"
        assert.same({ code = "A/1", starts_at = 1893456000, duration = 30 },
            core.json_fields(' {"c\\u006fde":"A\\/1","starts_at":1893456000,"duration":30,'
                             .. '"patient":null,"x":{"code":[1]}} ', "create"))
        assert.same({ code = "B" }, core.json_fields('{"code":"A","code":"B","starts_at":null}', "cancel"))
        -- a member of ours that is no scalar, a raw tab, trailing bytes: cjson's
        assert.is_nil(core.json_fields('{"code":{"a":1}}', "create"))
        assert.is_nil(core.json_fields('{"code":"A\t1"}', "create"))
        assert.is_nil(core.json_fields('{"code":"A1"} x', "create"))
        assert.has_error(function() core.json_fields("{}", "webhooks") end)
    end)
end)
