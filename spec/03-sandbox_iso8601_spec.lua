-- The sandbox's date-time rule on its own (pure Lua, no nginx needed).

require "spec.helper" -- sets package.path to the repo's lua/
local iso = require "mediquo.sandbox.iso8601"

describe("sandbox iso8601.normalise", function()
    local good = {
        { "2024-05-20T10:00:00Z", "2024-05-20T10:00:00Z" },
        { "2024-05-20T12:00:00+02:00", "2024-05-20T10:00:00Z" },
        { "2024-05-20T05:30:00-04:30", "2024-05-20T10:00:00Z" },
        { "2024-05-20T10:00:00.999Z", "2024-05-20T10:00:00Z" },
        { "2024-05-20T10:00:00,5+0100", "2024-05-20T09:00:00Z" },
        { "2024-05-20T10:00Z", "2024-05-20T10:00:00Z" },
        { "2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z" },
        { "2000-02-29T23:59:59-00:01", "2000-03-01T00:00:59Z" },
        { "2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00Z" },
        { "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z" },
        { "1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z" },
    }
    for _, c in ipairs(good) do
        it("accepts " .. c[1], function()
            assert.equal(c[2], iso.normalise(c[1]))
        end)
    end

    local bad = { "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-02-30T00:00:00Z",
                  "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
                  "2024-05-20T24:00:00Z", "2024-05-20T10:60:00Z", "2024-05-20T10:00:60Z",
                  "2024-05-20T10:00:00", "2024-05-20 10:00:00Z", "2024-05-20",
                  "2024-05-20T10:00:00+25:00", "2024-05-20T10:00:00+02:60", "20240520T100000Z",
                  "2024-05-20T10:00:00Zjunk", "", "x" }
    for _, s in ipairs(bad) do
        it("refuses " .. s, function()
            local v, err = iso.normalise(s)
            assert.is_nil(v)
            assert.is_string(err)
        end)
    end

    it("refuses non-strings", function()
        assert.is_nil(iso.normalise(1716199200))
        assert.is_nil(iso.normalise(nil))
    end)
end)
