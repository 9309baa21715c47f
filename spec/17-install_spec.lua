-- The rock as a user installs it: `luarocks make` into a fresh tree for each
-- Lua, then `require "mediquo"` from an unrelated folder and a real call
-- against the sandbox. LuaJIT uses the 5.1 tree (same C API).
local H = require "spec.helper"

local sb
local work

local function sh(cmd)
    local out, code = H.run(cmd .. " 2>&1")
    return out, code
end

local SCRIPT = [[
local mediquo = require "mediquo"
local c = assert(mediquo.new{ api_key = "sandbox-key", secret_key = "sandbox-secret",
                              base_url = arg[1], rate_limit = false })
local code = arg[2]
local a = assert(c:create{ code = code, starts_at = "2030-05-20T10:00:00Z",
                           patient = "p", professional = "prof-demo-2" })
assert(c:cancel(code))
print("ok " .. _VERSION .. " " .. mediquo._VERSION .. " " .. require("mediquo.core")._VERSION .. " " .. a.url)
]]

describe("installed rock", function()
    setup(function()
        sb = H.sandbox()
        work = (sh("mktemp -d \"${TMPDIR:-/tmp}/mediquo-install.XXXXXX\""):gsub("%s+$", ""))
        -- a copy of what a source tarball holds: builds never touch the checkout
        local _, code = sh(("cd %s && cp -R rockspec/mediquo-scm-1.rockspec src lua bin %s/")
            :format(H.shell_quote(H.root), H.shell_quote(work)))
        assert.equal(0, code)
        local f = assert(io.open(work .. "/call.lua", "w"))
        f:write(SCRIPT)
        f:close()
    end)
    teardown(function()
        if work then sh("rm -rf " .. H.shell_quote(work)) end
    end)

    for _, case in ipairs{ { "5.4", "lua5.4" }, { "5.3", "lua5.3" }, { "5.1", "lua5.1" },
                           { "5.1", "luajit" } } do
        local v, lua = case[1], case[2]
        it(("installs for %s and calls the sandbox from an unrelated folder"):format(lua), function()
            local tree = work .. "/tree-" .. v
            if lua ~= "luajit" then
                -- no CURL_INCDIR / CURL_LIBDIR: found on Debian's multiarch layout
                local out, code = sh(("cd %s && luarocks --lua-version %s --tree %s make %s")
                    :format(H.shell_quote(work), v, H.shell_quote(tree),
                            "--deps-mode=none mediquo-scm-1.rockspec"))
                assert.equal(0, code, out)
            end
            local out, code = sh(("cd / && LUA_PATH=%s LUA_CPATH=%s %s %s %s %s"):format(
                H.shell_quote(tree .. "/share/lua/" .. v .. "/?.lua;;"),
                H.shell_quote(tree .. "/lib/lua/" .. v .. "/?.so;;"),
                lua, H.shell_quote(work .. "/call.lua"), H.shell_quote(sb.base_url),
                H.shell_quote("install-" .. lua)))
            assert.equal(0, code, out)
            -- the Lua modules and the C core of the installed rock agree on
            -- the version (whatever it is: a release bumps both)
            local lua_v, core_v = out:match("^ok Lua 5%.%d (%d+%.%d+%.%d+) (%S+) http://127%.0%.0%.1:%d+/call/")
            assert.is_string(lua_v, out)
            assert.equal(lua_v, core_v)
            local st = sb:state()["install-" .. lua]
            assert.equal("cancelled", st.status)
        end)
    end
end)
