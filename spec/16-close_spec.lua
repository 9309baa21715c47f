-- Lua 5.4's to-be-closed variables: `local c <close> = mediquo.new{...}`
-- frees the connection when the block ends, even on error.
local mediquo = require "mediquo"

local has_close = _VERSION == "Lua 5.4"

describe("<close>", function()
    it("closes the client at the end of the block, and on error", function()
        if not has_close then return pending("Lua 5.4 only") end
        -- compiled at run time so other Luas can still load this file
        local run = assert(load([[
            local mediquo, fail = ...
            local seen
            local ok = pcall(function()
                local c <close> = assert(mediquo.new{ api_key = "k", secret_key = "s",
                    base_url = "http://127.0.0.1:9/v1", rate_limit = false })
                seen = c
                if fail then error("boom") end
            end)
            return seen, ok
        ]]))
        for _, fail in ipairs{ false, true } do
            local c, ok = run(mediquo, fail)
            assert.equal(not fail, ok)
            assert.is_nil(c._core)
            assert.matches("closed", tostring(c))
            assert.has_error(function() c:cancel("x") end)
        end
    end)
end)
