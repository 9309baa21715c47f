-- The release as a user gets it: `make dist` builds the source rock, and
-- `luarocks install --deps-mode=none` installs it with no network at all
-- (a network namespace of its own when the runner may make one, else a
-- LuaRocks config with no rock server) on a machine whose lua-cjson is
-- Debian's package, which LuaRocks does not know about. The same install
-- without `--deps-mode=none` is shown failing on lua-cjson, so the spec can
-- fail and the README's advice is the needed one.
local H = require "spec.helper"

local work, rock, sb
local installed_version   -- mediquo._VERSION as the installed rock reports it

local function sh(cmd)
    return H.run(cmd .. " 2>&1")
end

local q = H.shell_quote

-- "unshare -n" (no network at all) when this runner may, else nothing
local offline = (function()
    local _, code = H.run("unshare -n true 2>/dev/null")
    return code == 0 and "unshare -n " or ""
end)()

local function install(tree, extra)
    -- no rock server either way: an empty server list in a config of its own
    return sh(("cd %s && LUAROCKS_CONFIG=%s %sluarocks --lua-version 5.4 --tree %s install %s %s")
        :format(q(work), q(work .. "/offline.lua"), offline, q(tree), extra, q(rock)))
end

describe("make dist", function()
    setup(function()
        work = (sh('mktemp -d "${TMPDIR:-/tmp}/mediquo-dist.XXXXXX"'):gsub("%s+$", ""))
        H.write_file(work .. "/offline.lua", "rocks_servers = {}\n")
        local out, code = sh(("make -s -C %s dist DIST=%s"):format(q(H.root), q(work .. "/dist")))
        assert.equal(0, code, out)
        rock = out:match("(%S+%.src%.rock)%s*$")
        assert.is_string(rock, out)
        sb = H.sandbox()
    end)
    teardown(function()
        if work then sh("rm -rf " .. q(work)) end
    end)

    it("make env says so when plain `lua` is not the Lua it set paths for", function()
        -- a PATH whose `lua` is each real interpreter in turn
        for _, case in ipairs{ { "lua5.3", true }, { "lua5.4", false } } do
            local bin = work .. "/bin-" .. case[1]
            H.run(("mkdir -p %s && ln -sf \"$(command -v %s)\" %s/lua"):format(q(bin), case[1], q(bin)))
            local out, code = H.run(("PATH=%s:$PATH make -s -C %s env 2>&1 >/dev/null")
                :format(q(bin), q(H.root)))
            assert.equal(0, code, out)
            if case[2] then
                assert.matches("Lua 5%.4", out)
                assert.matches("lua5.4", out, 1, true)
                assert.matches("Lua 5%.3 here", out)
            else
                assert.equal("", out)
            end
        end
        -- stdout stays what `eval` needs
        local out = H.run(("PATH=%s:$PATH make -s -C %s env 2>/dev/null"):format(q(work .. "/bin-lua5.3"), q(H.root)))
        assert.matches("^export LUA_PATH=", out)
        assert.is_nil(out:find("make env:", 1, true))
    end)

    it("holds the versioned rockspec and the source archive", function()
        local list = sh("unzip -Z1 " .. q(rock))
        local spec = rock:match("([^/]+)%.src%.rock$")
        assert.matches(spec .. ".rockspec", list, 1, true)
        local rel = spec:match("^mediquo%-(.+)%-%d+$")
        assert.matches("lua-mediquo-" .. rel .. ".tar.gz", list, 1, true)
    end)

    it("refuses a versioned rockspec that does not match scm-1", function()
        local out, code = sh(("make -s -C %s dist DIST=%s RELEASE=0.0.0-none")
            :format(q(H.root), q(work .. "/stale")))
        assert.not_equal(0, code)
        assert.matches("make rockspec-release", out, 1, true)
    end)

    it("without --deps-mode=none, an offline install stops on lua-cjson", function()
        local out, code = install(work .. "/tree-deps", "")
        assert.not_equal(0, code, out)
        assert.matches("lua-cjson", out, 1, true)
    end)

    it("installs offline with --deps-mode=none and calls the sandbox from /", function()
        local tree = work .. "/tree"
        local out, code = install(tree, "--deps-mode=none")
        assert.equal(0, code, out)
        local spec = rock:match("([^/]+)%.src%.rock$")
        local ver = spec:match("^mediquo%-(.+)$")
        out = sh(("luarocks --lua-version 5.4 --tree %s list --porcelain mediquo"):format(q(tree)))
        assert.matches("mediquo\t" .. ver:gsub("%-", "%%-"), out)

        -- Debian's lua-cjson, the installed rock, and the command wrapper
        local script = work .. "/call.lua"
        H.write_file(script, [[
local mediquo = require "mediquo"
local core = require "mediquo.core"
assert(require("cjson"))
local c = assert(mediquo.new{ api_key = "sandbox-key", secret_key = "sandbox-secret",
                              base_url = arg[1], rate_limit = false })
local a = assert(c:create{ code = arg[2], starts_at = "2030-05-20T10:00:00Z",
                           patient = "p", professional = "prof-demo-2" })
assert(c:cancel(arg[2]))
print("ok " .. mediquo._VERSION .. " " .. core._VERSION .. " " .. a.url)
]])
        local code_name = "dist-" .. os.time() .. "-" .. math.random(1e6)
        out, code = sh(("cd / && LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s %s"):format(
            q(tree .. "/share/lua/5.4/?.lua;;"), q(tree .. "/lib/lua/5.4/?.so;;"),
            q(script), q(sb.base_url), q(code_name)))
        assert.equal(0, code, out)
        local lua_v, core_v = out:match("^ok (%S+) (%S+) http://127%.0%.0%.1:%d+/call/")
        assert.is_string(lua_v, out)
        assert.equal(lua_v, core_v)
        assert.equal("cancelled", sb:state()[code_name].status)
        assert.is_truthy(H.read_file(tree .. "/bin/mediquo"))
        installed_version = lua_v
    end)

    it("installs modules whose _VERSION is the rock's version", function()
        local rel = rock:match("mediquo%-([^/]+)%-%d+%.src%.rock$")
        assert.is_string(installed_version, "the install above failed")
        assert.equal(rel, installed_version)
    end)
end)
