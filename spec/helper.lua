-- Shared test helper: starts sandboxes (bin/mediquo-sandbox) on free ports,
-- stops them when the Lua state closes, and offers a plain HTTP client
-- (LuaSocket for http, the curl CLI for https) that never raises.
--
--   local H = require "spec.helper"
--   local sb = H.sandbox{ workers = 2 }     -- cached per opts, reset on return
--   local status, body, headers = H.http("POST", sb.base_url .. "/appointments",
--                                        H.json.encode(t), H.auth())

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local json = require "cjson.safe"

local H = {
    api_key = "sandbox-key",
    secret_key = "sandbox-secret",
    json = json,
}

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shell_quote = shell_quote

-- Runs a shell command; returns stdout, exit code.
local function run(cmd)
    -- the exit code rides on the output: io.popen's close() gives no exit
    -- code on Lua 5.1 / LuaJIT
    local p = assert(io.popen(cmd .. "\necho \"__MQRC=$?\"", "r"))
    local out = p:read("*a")
    p:close()
    local code = tonumber(out:match("__MQRC=(%d+)%s*$"))
    return (out:gsub("__MQRC=%d+%s*$", "")), code
end
H.run = run

-- H.read_file(path) -> contents, or nil when it cannot be read
local function read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end
H.read_file = read_file

-- H.tmpdir(tag) -> a fresh dir $TMPDIR/mediquo-<tag>-XXXXXX; H.rmdir(d)
-- removes it (nil: nothing)
function H.tmpdir(tag)
    return (run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-" .. tag .. "-XXXXXX\""):gsub("%s+$", ""))
end

function H.rmdir(d)
    if d then run("rm -rf " .. shell_quote(d)) end
end

-- H.mkdir(d) -> d, made (with its parents) if it was not there
function H.mkdir(d)
    run("mkdir -p " .. shell_quote(d))
    return d
end

-- H.write_file(path, s) -> path (raises when it cannot write)
function H.write_file(path, s)
    local f = assert(io.open(path, "wb"))
    assert(f:write(s))
    f:close()
    return path
end

-- H.sh(cmd) -> stdout with trailing white space cut (raises when it cannot start)
function H.sh(cmd)
    local p = assert(io.popen(cmd))
    local s = p:read("*a")
    p:close()
    return (s:gsub("%s+$", ""))
end

-- H.lines(path) -> the file's lines ({} when it cannot be read)
function H.lines(path)
    local t, f = {}, io.open(path)
    if not f then return t end
    for l in f:lines() do t[#t + 1] = l end
    f:close()
    return t
end

-- H.free_port([span]) -> a loopback TCP port nothing listens on, with the
-- span ports after it free too. Drawn from 20000-32000: below the kernel's
-- ephemeral range (32768-60999 by default), so the local end of an outgoing
-- connection cannot hold it when the server binds. A server that still finds
-- its port taken is retried on another by its starter.
function H.free_port(span)
    span = span or 0
    for _ = 1, 50 do
        local port = math.random(20000, 32000 - span)
        local busy = false
        for p = port, port + span do
            if run("ss -ltnH 'sport = :" .. p .. "' 2>/dev/null") ~= "" then busy = true break end
        end
        if not busy then return port end
    end
    error("no free port in 20000-32000")
end

-- H.uniq(prefix) -> a fresh name: prefix, the time, a random number, a counter
local nuniq = 0
function H.uniq(prefix)
    nuniq = nuniq + 1
    return ("%s-%d-%d-%d"):format(prefix, os.time(), math.random(1e6), nuniq)
end

-- H.client(opts, extra) -> a mediquo client from the sandbox keys, opts and
-- then extra (raises when mediquo.new answers nil, err)
function H.client(opts, extra)
    local o = { api_key = H.api_key, secret_key = H.secret_key }
    for k, v in pairs(opts) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    local c, err = require("mediquo").new(o)
    assert(c, tostring(err))
    return c
end

-- limiter workers (spec/limiter_worker.lua), for the host-local limiter specs
-- H.limiter_cfg(t, dir, prefix) -> t with a fresh key and the defaults
-- filled in (dir, per_minute 50, burst = per_minute, period 2 s)
local nkey = 0
function H.limiter_cfg(t, dir, prefix)
    nkey = nkey + 1
    t.key = t.key or string.format("%s-%d-%d", prefix, nkey, require("mediquo.core").limiter_now())
    t.dir = t.dir or dir
    t.per_minute = t.per_minute or 50
    t.burst = t.burst or t.per_minute
    t.period = t.period or 2
    return t
end

-- H.limiter_worker(dir, mode, c, until_ns, a, b, env) -> { out = log path,
-- pid = } : a worker started in the background under $MEDIQUO_LUA (lua5.4),
-- env a prefix for its command line ("VAR=1 ", "nice -n 19 ")
local nworker = 0
function H.limiter_worker(dir, mode, c, until_ns, a, b, env)
    nworker = nworker + 1
    local w = { out = string.format("%s/w%d.log", dir, nworker) }
    os.execute(string.format(
        "%s%s spec/limiter_worker.lua %s %s '%s' '%s' %d %d %s %.0f %s %s >%s.stdout 2>&1 & echo $! >%s.pid",
        env or "", os.getenv("MEDIQUO_LUA") or "lua5.4", mode, w.out, c.key, c.dir,
        c.per_minute, c.burst, c.period, until_ns or 0, a or "", b or "", w.out, w.out))
    local f = assert(io.open(w.out .. ".pid"))
    w.pid = assert(tonumber(f:read("*a")))
    f:close()
    return w
end

-- sliding-window checks over sorted start times (ns)
-- H.max_in_window(ts, period_ns) -> the most starts in any half-open
-- window [t, t + period)
function H.max_in_window(ts, period_ns)
    local best, j = 0, 1
    for i = 1, #ts do
        while ts[i] - ts[j] >= period_ns do j = j + 1 end
        if i - j + 1 > best then best = i - j + 1 end
    end
    return best
end

-- H.count_between(ts, from, to) -> how many starts in [from, to)
function H.count_between(ts, from, to)
    local n = 0
    for _, t in ipairs(ts) do
        if t >= from and t < to then n = n + 1 end
    end
    return n
end

H.root = (function()
    local src = debug.getinfo(1, "S").source:sub(2)
    local dir = src:match("^(.*)/spec/helper%.lua$") or "."
    return (run("cd " .. shell_quote(dir) .. " && pwd"):gsub("%s+$", ""))
end)()

H.bin = H.root .. "/bin/mediquo-sandbox"

-- The test build of mediquo.core (make test-build, -DMQ_TESTING) is the only
-- one with the test hooks: the limiter's _freeze_mid_admission,
-- _hold_lease_lock and _used_both, and the MEDIQUO_TEST_* switches; the shipped module has
-- none. H.hooks_env(extra) -> a command-line prefix for a child process that
-- loads the test build first (for its Lua: MEDIQUO_LUA luajit -> the LuaJIT
-- one) and sets MEDIQUO_TEST_HOOKS=1, then extra ("MEDIQUO_TEST_X=1 ").
-- MEDIQUO_TEST_CPATH overrides the path (make test-asan's core has the hooks).
-- H.core_cpath(dir, make) -> the cpath entry of the core built in dir (under
-- the tree's root: "build/testing/luajit"); the spec fails saying which
-- make target builds it when it is missing
function H.core_cpath(dir, make)
    local full = H.root .. "/" .. dir
    local f = io.open(full .. "/mediquo/core.so")
    assert(f, full .. "/mediquo/core.so missing: run " .. make)
    f:close()
    return full .. "/?.so"
end

function H.test_cpath()
    local p = os.getenv("MEDIQUO_TEST_CPATH")
    if p then return p end
    local jit = (os.getenv("MEDIQUO_LUA") or ""):find("luajit", 1, true)
    return H.core_cpath("build/testing" .. (jit and "/luajit" or ""), "make test-build")
end

function H.hooks_env(extra)
    return ("LUA_CPATH=%s MEDIQUO_TEST_HOOKS=1 %s"):format(
        shell_quote(H.test_cpath() .. ";" .. (os.getenv("LUA_CPATH") or ";")), extra or "")
end

-- So specs find the repo's Lua modules however busted was started.
if not package.path:find(H.root .. "/lua/?.lua", 1, true) then
    package.path = H.root .. "/lua/?.lua;" .. H.root .. "/?.lua;" .. package.path
end

-- H.sanitized(pending, what) -> true, the test marked pending, under a
-- sanitized core (MEDIQUO_SPEC_SANITIZED: make test-asan), several times
-- slower, where a proof timed or counted under load means nothing: its
-- round trips pass redis_timeout, its processing delay is jitter the proof
-- does not model. The lua54 suite runs it. (pending is busted's, passed
-- in: it lives in the spec file's environment, not this module's.)
function H.sanitized(pending, what)
    if not os.getenv("MEDIQUO_SPEC_SANITIZED") then return false end
    pending(what .. ": run by the lua54 suite, not under ASan")
    return true
end

-- H.control_once(make, broke, tag) -> the last of at most two make()s. A
-- control whose break is drawn (where the last starts fall against a
-- failover, the jitter a run happens to meet) is made again once when
-- broke(r) -> false, why; the caller asserts on the run it gets back.
function H.control_once(make, broke, tag)
    local r
    for attempt = 1, 2 do
        r = make()
        local ok, why = broke(r)
        if ok then return r end
        print(("\n[%s] control attempt %d: %s%s"):format(tag, attempt, why, attempt == 1 and ", made again" or ""))
    end
    return r
end

function H.sleep(seconds)
    socket.sleep(seconds)
end

function H.now()
    return socket.gettime()
end

-- ---- an nginx a spec starts itself ------------------------------------------
-- H.nginx_modules() -> the load_module lines nginx needs for the Lua module
-- ("" when it is built in; MEDIQUO_NGINX_MODULES names another folder)
local modules
function H.nginx_modules()
    if not modules then
        modules = ""
        if not H.run("nginx -V 2>&1"):find("lua-nginx-module", 1, true) then
            local dir = os.getenv("MEDIQUO_NGINX_MODULES") or "/usr/lib/nginx/modules"
            modules = ("load_module %s/ndk_http_module.so;\nload_module %s/ngx_http_lua_module.so;"):format(dir, dir)
        end
    end
    return modules
end

-- H.nginx_pid(prefix) -> the master's pid from prefix/nginx.pid, or nil
function H.nginx_pid(prefix)
    return tonumber((H.read_file(prefix .. "/nginx.pid") or ""):match("%d+"))
end

-- H.running(pid): the process is there and not a zombie (one waiting for
-- PID 1 to reap it, which can take a second or more here, counts as gone)
function H.running(pid)
    if not pid then return false end
    local st = H.run("ps -o stat= -p " .. pid .. " 2>/dev/null"):gsub("%s+", "")
    return st ~= "" and not st:match("^Z")
end

-- H.stop_nginx(pid[, signal]): the nginx master this spec started, by its
-- pid: signal (TERM unless said, e.g. QUIT), a bounded wait (5 s), then KILL
function H.stop_nginx(pid, signal)
    if not pid then return end
    H.run(("kill -%s %d 2>/dev/null"):format(signal or "TERM", pid))
    for _ = 1, 100 do
        if not H.running(pid) then return end
        H.sleep(0.05)
    end
    H.run("kill -9 " .. pid .. " 2>/dev/null")
end

function H.auth()
    return {
        ["X-API-Key"] = H.api_key,
        ["X-Secret-Key"] = H.secret_key,
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json",
    }
end

-- CA file per port, so H.http can verify https sandboxes without being told.
local ca_by_port = {}

local function tmpname()
    local name = os.tmpname()
    return name
end

local function curl_request(method, url, body, headers, opts)
    local hfile, bfile, ofile = tmpname(), tmpname(), tmpname()
    local cmd = { "curl -sS --path-as-is -X", shell_quote(method),
                  "-D", shell_quote(hfile), "-o", shell_quote(ofile),
                  "-w '%{http_code}'", "--max-time", tostring(opts.timeout or 10) }
    local port = url:match("^https?://[^/:]+:(%d+)")
    local ca = opts.ca_file or (port and ca_by_port[tonumber(port)])
    if ca then
        cmd[#cmd + 1] = "--cacert " .. shell_quote(ca)
    end
    for k, v in pairs(headers or {}) do
        cmd[#cmd + 1] = "-H " .. shell_quote(k .. ": " .. tostring(v))
    end
    if body then
        local f = assert(io.open(bfile, "wb"))
        f:write(body)
        f:close()
        cmd[#cmd + 1] = "--data-binary @" .. shell_quote(bfile)
    end
    cmd[#cmd + 1] = shell_quote(url)
    cmd[#cmd + 1] = "2>&1"
    local out, code = run(table.concat(cmd, " "))
    local raw_headers = read_file(hfile) or ""
    local resp = read_file(ofile)
    os.remove(hfile); os.remove(bfile); os.remove(ofile)
    if code ~= 0 then
        return nil, "curl: " .. (out:match("curl: %(%d+%)[^\n]*") or out)
    end
    local status = tonumber(out:match("(%d%d%d)$"))
    local hs = {}
    -- Only the last header block (there is one: redirects are not followed).
    for line in raw_headers:gmatch("[^\r\n]+") do
        local k, v = line:match("^([^:%s]+):%s*(.-)%s*$")
        if k then
            k = k:lower()
            hs[k] = hs[k] and (hs[k] .. ", " .. v) or v
        end
    end
    return status, resp or "", hs
end

-- H.http(method, url, body, headers[, opts]) -> status, body, headers
-- opts: timeout (seconds, default 10), ca_file, curl (true: use the curl CLI
-- for http too; it sends "Expect: 100-continue" for big bodies, so it reads
-- an early 413 reliably). Transport failures return nil, message; HTTP
-- errors are just statuses.
function H.http(method, url, body, headers, opts)
    opts = opts or {}
    if opts.curl or url:match("^https:") then
        return curl_request(method, url, body, headers, opts)
    end
    local hs = {}
    for k, v in pairs(headers or {}) do
        hs[k:lower()] = v
    end
    if body then
        hs["content-length"] = tostring(#body)
    end
    -- Send the path exactly as given (LuaSocket would re-escape it).
    local path = url:match("^https?://[^/]+(/.*)$") or "/"
    local chunks = {}
    -- socket.http applies its module-wide TIMEOUT to every socket it makes.
    local saved = http.TIMEOUT
    http.TIMEOUT = opts.timeout or 10
    local ok, status, rheaders = http.request{
        url = url, uri = path, method = method, headers = hs,
        source = body and ltn12.source.string(body) or nil,
        sink = ltn12.sink.table(chunks), redirect = false,
    }
    http.TIMEOUT = saved
    if not ok then
        return nil, tostring(status)
    end
    return status, table.concat(chunks), rheaders or {}
end

-- Sandboxes -----------------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

local cache = {}     -- opts key -> running sandbox
local started = {}   -- every sandbox this helper started and has not stopped

local function control(sb, method, what, body)
    local status, resp = H.http(method, sb.url .. "/__sandbox/" .. what,
                                body and json.encode(body), body and
                                { ["Content-Type"] = "application/json" })
    assert(status == 200, ("sandbox %s %s failed: %s %s"):format(
        method, what, tostring(status), tostring(resp)))
    return json.decode(resp)
end

function Sandbox:reset()
    control(self, "POST", "reset")
end

function Sandbox:faults(f)
    return control(self, "POST", "faults", f)
end

function Sandbox:log()
    return control(self, "GET", "log")
end

-- sb:api_log() -> the API requests in the log (paths under /v1/), not the
-- /call/ pages or the control endpoints
function Sandbox:api_log()
    local out = {}
    for _, e in ipairs(self:log()) do
        if e.path:find("^/v1/") then out[#out + 1] = e end
    end
    return out
end

function Sandbox:state()
    return control(self, "GET", "appointments")
end

function Sandbox:stop()
    if self.stopped then
        return
    end
    self.stopped = true
    run(shell_quote(H.bin) .. " stop --prefix " .. shell_quote(self.prefix) .. " 2>&1")
    run("rm -rf " .. shell_quote(self.prefix))
    if cache[self.key] == self then
        cache[self.key] = nil
    end
    for i, sb in ipairs(started) do
        if sb == self then
            table.remove(started, i)
            break
        end
    end
end

-- Stops whatever is left when the Lua state closes (busted exits with
-- os.exit(code, true), which closes it) or when this module is collected.
local function stop_all()
    for i = #started, 1, -1 do
        started[i]:stop()
    end
end
-- Lua 5.1 and LuaJIT run __gc on userdata only: a proxy there, a table
-- elsewhere (5.4 has no newproxy)
if newproxy then        -- luacheck: ignore 113
    H._sentinel = newproxy(true)        -- luacheck: ignore 113
    getmetatable(H._sentinel).__gc = stop_all
else
    H._sentinel = setmetatable({}, { __gc = stop_all })
end

local function opts_key(opts)
    local keys = {}
    for k in pairs(opts) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
        parts[#parts + 1] = k .. "=" .. tostring(opts[k])
    end
    return table.concat(parts, ",")
end

-- H.record_prefix(prefix): spec/run.sh stops what is left in a prefix listed
-- in MEDIQUO_TEST_PIDS
local function record(prefix)
    local list = os.getenv("MEDIQUO_TEST_PIDS")
    if list and list ~= "" then
        local f = io.open(list, "a")
        if f then
            f:write(prefix, "\n")
            f:close()
        end
    end
end
H.record_prefix = record

local function start(opts)
    local args = {}
    if opts.tls then
        args[#args + 1] = "--tls"
    end
    if opts.sliding then
        args[#args + 1] = "--sliding"
    end
    for opt, flag in pairs{ per_minute = "--per-minute", window = "--window",
                            latency_ms = "--latency-ms", workers = "--workers" } do
        if type(opts[opt]) == "string" then     -- latency_ms = "MIN-MAX"
            args[#args + 1] = flag .. " " .. shell_quote(opts[opt])
        elseif opts[opt] then
            args[#args + 1] = flag .. " " .. ("%d"):format(opts[opt])
        end
    end
    if not opts.per_minute then
        args[#args + 1] = "--per-minute 1000000000"
    end
    local last_err
    for _ = 1, 20 do
        local port = opts.port or H.free_port()
        local prefix = run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-spec-XXXXXX\""):gsub("%s+$", "")
        record(prefix)
        local errfile = prefix .. "/start.err"
        local out, code = run(("%s start --port %d --prefix %s %s 2>%s"):format(
            shell_quote(H.bin), port, shell_quote(prefix), table.concat(args, " "),
            shell_quote(errfile)))
        if code == 0 then
            local sb = setmetatable({
                port = port, prefix = prefix,
                base_url = out:match("^(%S+)"),
                ca_file = out:match("ca_file: (%S+)"),
            }, Sandbox)
            sb.url = sb.base_url:gsub("/v1$", "")
            if sb.ca_file then
                ca_by_port[port] = sb.ca_file
            end
            started[#started + 1] = sb
            return sb
        end
        last_err = read_file(errfile) or out
        run("rm -rf " .. shell_quote(prefix))
        if opts.port or not last_err:find("busy", 1, true) then
            break
        end
    end
    error("cannot start a sandbox: " .. tostring(last_err), 2)
end

-- H.sandbox(opts) -> running sandbox, freshly reset. Same opts, same sandbox.
function H.sandbox(opts)
    opts = opts or {}
    local key = opts_key(opts)
    local sb = cache[key]
    if not sb or sb.stopped then
        sb = start(opts)
        sb.key = key
        cache[key] = sb
    end
    sb:reset()
    return sb
end

return H
