-- What the CLI specs (12, 30, 31) share: bin/mediquo run as a real process
-- with its stdout, stderr and exit code; unique codes; a scratch folder.
local H = require "spec.helper"

local C = { BIN = H.root .. "/bin/mediquo" }
local q = H.shell_quote

-- a fresh scratch folder (removed by C.cleanup)
function C.tmpdir()
    return (H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-cli-XXXXXX\""):gsub("%s+$", ""))
end

function C.cleanup(dir)
    if dir and dir:match("/mediquo%-cli%-") then H.run("rm -rf " .. q(dir)) end
end

function C.uniq(prefix)
    return H.uniq(prefix or "cli")
end

-- C.sandboxes(latency_ms, set): inside a describe, a sandbox and a slow
-- one (latency_ms) and a scratch folder for the block, handed to set(sb,
-- slow, tmp) in setup; both sandboxes reset before each test
function C.sandboxes(latency_ms, set)
    local busted = require "busted"     -- a required module does not see the spec's globals
    local sb, slow, tmp
    busted.setup(function()
        sb = H.sandbox()
        slow = H.sandbox{ latency_ms = latency_ms }
        tmp = C.tmpdir()
        set(sb, slow, tmp)
    end)
    busted.teardown(function()
        C.cleanup(tmp)
    end)
    busted.before_each(function()
        sb:reset()
        slow:reset()
    end)
end

-- the bin/mediquo options that aim it at sandbox s, without a limiter
function C.sbx(s)
    return "--sandbox --base-url " .. q(s.base_url) .. " --no-rate-limit "
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

-- C.creates_file(path, prefix, n[, code_fmt]) -> path of a CSV of n creates
-- (codes code_fmt:format(prefix, i), "%s-%02d" by default), one start time
function C.creates_file(path, prefix, n, code_fmt)
    local rows = { "op,code,starts_at,patient,professional" }
    for i = 1, n do
        rows[#rows + 1] = ("create,%s,2030-05-20T10:00:00Z,p,prof-demo-1")
            :format((code_fmt or "%s-%02d"):format(prefix, i))
    end
    return H.write_file(path, table.concat(rows, "\n") .. "\n")
end

-- the pattern that matches s literally
function C.lit(s)
    return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- C.tmux(cmd, width, height) -> term: cmd (sh) run in a detached tmux
-- terminal of width x height, with this process's LUA_PATH, LUA_CPATH and
-- PATH (stdout and stderr the terminal unless cmd says); term:pane() ->
-- the screen as text; term:stop() ends it (tmux's own server, by name)
function C.tmux(cmd, width, height)
    assert(select(2, H.run("command -v tmux >/dev/null 2>&1")) == 0, "tmux is needed for this spec")
    local env = ("LUA_PATH=%s LUA_CPATH=%s PATH=%s"):format(q(os.getenv("LUA_PATH") or ""),
        q(os.getenv("LUA_CPATH") or ""), q(os.getenv("PATH") or ""))
    local sock = "mediquo-spec-" .. C.uniq("tmux")
    local _, rc = H.run(("tmux -L %s -f /dev/null new-session -d -x %d -y %d %s"):format(
        q(sock), width, height, q(env .. " sh -c " .. q(cmd))))
    assert(rc == 0, "tmux new-session failed")
    return {
        pane = function() return H.run(("tmux -L %s capture-pane -p"):format(q(sock))) end,
        stop = function() H.run(("tmux -L %s kill-server 2>/dev/null"):format(q(sock))) end,
    }
end

return C
