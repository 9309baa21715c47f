-- bench/soak/sh.lua: the shell and file helpers the soak's scripts share
-- (bench/soak.lua, bench/soak/gateway.lua, bench/soak/gw_client.lua,
-- bench/soak/worker.lua). Loaded with dofile; no global state.
--
--   local sh = dofile(here .. "/sh.lua")
--   sh.q(s)             s quoted for /bin/sh
--   sh.run(cmd)         -> its stdout, its exit code
--   sh.read_file(path)  -> the contents | nil
--   sh.alive(pid)       -> whether the process exists
--   sh.iso(t)           -> t (Unix seconds) as an ISO 8601 UTC date-time

local sh = {}

function sh.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function sh.run(cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
end

function sh.read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

function sh.alive(pid)
    return pid ~= nil and sh.run("kill -0 " .. pid .. " 2>/dev/null && echo alive"):find("alive") ~= nil
end

function sh.iso(t)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

return sh
