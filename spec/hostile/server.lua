-- spec/hostile/server.lua: starts and stops the hostile nginx
-- (spec/hostile/nginx.conf.in + handlers.lua) on two free loopback ports.
--
--   local hostile = require "spec.hostile.server"
--   local srv = hostile.start()      -- srv.url, srv.trap_url, srv.prefix
--   srv:trap()  -> list of requests that reached the redirect target
--   srv:reset() ; srv:stop()
--
-- The prefix holds nginx.pid and port like a sandbox's, and is recorded in
-- MEDIQUO_TEST_PIDS, so spec/run.sh's cleanup stops it if a spec dies.

local H = require "spec.helper"

local _M = { _VERSION = "0.1.0" }
local Server = {}
Server.__index = Server

local q = H.shell_quote

local read = H.read_file

local write = H.write_file

local load_modules = H.nginx_modules

local record = H.record_prefix

local pid_of = H.nginx_pid

-- waits (bounded) until GET /__hostile/trap answers
local function wait_up(url)
    for _ = 1, 200 do
        local status = H.http("GET", url .. "/__hostile/trap", nil, nil, { timeout = 1 })
        if status == 200 then return true end
        H.sleep(0.025)
    end
    return false
end

function _M.start()
    local template = assert(read(H.root .. "/spec/hostile/nginx.conf.in"))
    local mods = load_modules()
    -- nginx started as root drops its workers to `nobody`, who may not be
    -- able to read the handlers in this checkout (a clone under a 0700
    -- directory: root's home, any `mktemp -d`). The workers run as the
    -- invoking user instead (a loopback test server; as non-root nginx
    -- ignores `user` and the workers are the invoking user anyway).
    local user = ""
    if H.run("id -u"):match("^0%s*$") then
        user = ("user %s %s;"):format(H.run("id -un"):gsub("%s+$", ""), H.run("id -gn"):gsub("%s+$", ""))
    end
    local last
    for _ = 1, 20 do
        local port = H.free_port(1)
        local trap_port = port + 1
        local prefix = H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-hostile-XXXXXX"'):gsub("%s+$", "")
        record(prefix)
        H.run("mkdir -p " .. q(prefix .. "/logs") .. " " .. q(prefix .. "/tmp"))
        local conf = template:gsub("@(%u[%u_]*)@", {
            LOAD_MODULES = mods, USER = user, PREFIX = prefix, ROOT = H.root,
            PORT = tostring(port), TRAP_PORT = tostring(trap_port),
        })
        write(prefix .. "/nginx.conf", conf)
        write(prefix .. "/port", port .. "\n")
        local out, code = H.run(("nginx -p %s -c %s -e %s 2>&1"):format(
            q(prefix), q(prefix .. "/nginx.conf"), q(prefix .. "/logs/error.log")))
        local url = "http://127.0.0.1:" .. port
        if code == 0 and wait_up(url) then
            return setmetatable({
                prefix = prefix, port = port, trap_port = trap_port, url = url,
                trap_url = "http://127.0.0.1:" .. trap_port, pid = pid_of(prefix),
            }, Server)
        end
        last = out
        local pid = pid_of(prefix)
        if pid then H.run("kill -TERM " .. pid .. " 2>/dev/null") end
        H.run("rm -rf " .. q(prefix))
        if not out:find("in use", 1, true) then break end
    end
    error("cannot start the hostile server: " .. tostring(last), 2)
end

function Server:trap()
    local status, body = H.http("GET", self.url .. "/__hostile/trap")
    assert(status == 200, "hostile trap: " .. tostring(body))
    return H.json.decode(body).requests
end

function Server:reset()
    assert(H.http("POST", self.url .. "/__hostile/reset", "") == 200)
end

function Server:error_log()
    return read(self.prefix .. "/logs/error.log") or ""
end

-- stops the nginx this module started (its pid, TERM then a bounded wait)
function Server:stop()
    if self.stopped then return end
    self.stopped = true
    H.stop_nginx(self.pid or pid_of(self.prefix))
    H.run("rm -rf " .. q(self.prefix))
end

return _M
