-- spec/23-ngx_minimal_spec.lua: examples/minimal.conf -- the complete
-- minimal nginx.conf of the README's OpenResty section -- runs as written:
-- plain `nginx -p PREFIX -c examples/minimal.conf` with the keys, the base
-- URL and the Lua search path in the environment (only the listen port is
-- changed, so parallel runs do not collide), and books an appointment on
-- the sandbox. Nothing in it about threads.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local q = H.shell_quote

describe("examples/minimal.conf", function()
    it("has nothing about threads and everything nginx needs", function()
        local conf = assert(H.read_file(H.root .. "/examples/minimal.conf"))
        assert.falsy(conf:find("thread_pool", 1, true))
        assert.falsy(conf:find("lua_worker_thread", 1, true))
        for _, need in ipairs{ "load_module", "events", "listen", "pid ", "error_log",
                               "lua_ssl_trusted_certificate", "resolver", "init_by_lua_block" } do
            assert.truthy(conf:find(need, 1, true), need)
        end
    end)

    it("runs as written and books through mediquo.ngx", function()
        local sb = H.sandbox{}
        local prefix = NH.tmpdir("ngx-minimal")
        local port = math.random(30000, 39999)
        local conf = assert(H.read_file(H.root .. "/examples/minimal.conf"))
        conf = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
        assert(H.write_file(prefix .. "/minimal.conf", conf))
        H.run("mkdir -p " .. q(prefix .. "/logs"))
        -- nginx's workers run as nobody when started as root: they read the
        -- modules from the checkout (world-readable), nothing from prefix
        H.run("chmod 755 " .. q(prefix))
        local env = ("MEDIQUO_API_KEY=%s MEDIQUO_SECRET_KEY=%s MEDIQUO_BASE_URL=%s "
                     .. "LUA_PATH=%s LUA_CPATH=%s"):format(
            q(H.api_key), q(H.secret_key), q(sb.base_url),
            q(H.root .. "/lua/?.lua;;"), q(H.root .. "/build/luajit/?.so;;"))
        local out, code = H.run(("env %s nginx -p %s -c %s 2>&1"):format(
            env, q(prefix), q(prefix .. "/minimal.conf")))
        finally(function()
            H.run(("nginx -p %s -c %s -s stop 2>&1"):format(q(prefix), q(prefix .. "/minimal.conf")))
            for _ = 1, 50 do
                if not H.read_file(prefix .. "/logs/nginx.pid") then break end
                H.sleep(0.05)
            end
            H.run("rm -rf " .. q(prefix))
        end)
        assert.are.equal(0, code, out)
        local url = ("http://127.0.0.1:%d/book"):format(port)
        local status, body
        for _ = 1, 100 do
            local code_ = ("min-%d"):format(math.random(1, 1e9))
            status, body = H.http("POST", url, H.json.encode{
                code = code_, starts_at = "2030-05-20T10:00:00Z", patient = "P1",
                professional = "prof-demo-1" }, nil, { timeout = 10 })
            if status then
                assert.are.equal(200, status, tostring(body) .. (H.read_file(prefix .. "/logs/error.log") or ""))
                assert.truthy(body:match("^https?://[^\n]+/call/%x+\n$"), body)
                assert.truthy(sb:state()[code_])
                break
            end
            H.sleep(0.05)
        end
        assert.are.equal(200, status)
        -- and a refusal answers as the conf says: 400 for the caller's input
        status, body = H.http("POST", url, '{"code":"x"}', nil, { timeout = 10 })
        assert.are.equal(400, status)
        assert.are.equal("invalid_argument\n", body)
    end)
end)
