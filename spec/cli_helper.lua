-- What the CLI specs (12, 30, 31) share: bin/mediquo run as a real process
-- with its stdout, stderr and exit code; unique codes; a scratch folder.
local H = require "spec.helper"

local C = { BIN = H.root .. "/bin/mediquo" }
local q = H.shell_quote
local n = 0

-- a fresh scratch folder (removed by C.cleanup)
function C.tmpdir()
    return (H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-cli-XXXXXX\""):gsub("%s+$", ""))
end

function C.cleanup(dir)
    if dir and dir:match("/mediquo%-cli%-") then H.run("rm -rf " .. q(dir)) end
end

function C.uniq(prefix)
    n = n + 1
    return ("%s-%d-%d-%d"):format(prefix or "cli", os.time(), math.random(1e6), n)
end

-- C.run(tmp, args[, env[, stdin]]) -> stdout, stderr, exit code
function C.run(tmp, args, env, stdin)
    local o, e = tmp .. "/out", tmp .. "/err"
    local _, code = H.run(("%s %s %s >%s 2>%s <%s"):format(env or "", q(C.BIN), args, q(o), q(e),
                                                         stdin and q(stdin) or "/dev/null"))
    return H.read_file(o) or "", H.read_file(e) or "", code
end

-- C.spawn(tmp, name, args[, stdin]) -> pid of bin/mediquo run in the
-- background (its stdout, stderr and exit code in tmp/name.out, .err, .rc)
function C.spawn(tmp, name, args, stdin)
    local base = tmp .. "/" .. name
    H.run(("(%s %s >%s 2>%s <%s & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &"):format(
        q(C.BIN), args, q(base .. ".out"), q(base .. ".err"), stdin and q(stdin) or "/dev/null",
        q(base .. ".pid"), q(base .. ".rc")))
    local t0 = H.now()
    while H.now() - t0 < 10 do
        local pid = tonumber((H.read_file(base .. ".pid") or ""):match("%d+"))
        if pid then return pid end
        H.sleep(0.01)
    end
    error("bin/mediquo did not start")
end

-- the exit code of a spawned run, waiting for it (at most `timeout` s)
function C.wait(tmp, name, timeout)
    local t0 = H.now()
    while H.now() - t0 < (timeout or 60) do
        local rc = H.read_file(tmp .. "/" .. name .. ".rc")
        if rc and rc:match("%d") then return tonumber(rc:match("%d+")) end
        H.sleep(0.05)
    end
    return nil
end

function C.lines(s)
    local t = {}
    for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
    return t
end

-- successful requests the sandbox saw: method, path prefix -> code -> count
-- (POST: all under "?")
function C.successes(sb, method, path_prefix)
    local by = {}
    for _, e in ipairs(sb:log()) do
        if e.method == method and e.status == 200 and e.path:sub(1, #path_prefix) == path_prefix then
            local code = method == "POST" and "?" or e.path:sub(#path_prefix + 1)
            by[code] = (by[code] or 0) + 1
        end
    end
    return by
end

-- the pattern that matches s literally
function C.lit(s)
    return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

return C
