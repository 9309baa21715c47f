-- spec/ngx_helper.lua: runs the example gateway (examples/nginx.conf via
-- examples/gateway.sh: real nginx, its Lua module, mediquo.ngx) for the
-- nginx specs, and drives it: many requests at once from separate curl
-- processes, /health latency over kept-alive connections, Prometheus text.
--
--   local NH = require "spec.ngx_helper"
--   local gw = NH.gateway(sb, { workers = 2, env = { MEDIQUO_DEADLINE = 2 } })
--   local status, t, headers = gw:post("/book", { code = ..., ... })

local H = require "spec.helper"
local socket = require "socket"

local json = H.json
local q = H.shell_quote

local NH = {}

local Gateway = {}
Gateway.__index = Gateway

local running = {}

local record = H.record_prefix   -- spec/run.sh stops what is left there

-- The tests' gateway config: examples/nginx.conf with one line more, an
-- X-Worker header (which worker answered: what the tests of two workers
-- read). A test's, not the example's: it would tell every caller the
-- workers' pids.
local function test_conf_text()
    local f = assert(io.open(H.root .. "/examples/nginx.conf", "rb"))
    local conf = f:read("a")
    f:close()
    local with, n = conf:gsub("(\n(%s*)default_type application/json;[^\n]*\n)",
                              "%1%2add_header X-Worker $pid always;\n", 1)
    assert(n == 1, "examples/nginx.conf: no default_type line to put X-Worker after")
    return with
end

local test_conf     -- the path of test_conf_text(), made once

-- NH.booking(code, extra) -> a POST /book body the sandbox accepts, extra's
-- fields over it
function NH.booking(code, extra)
    local t = { code = code, starts_at = "2030-05-20T12:00:00+02:00",
                patient = "P1", professional = "prof-demo-1" }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

-- NH.fresh(tag) -> a code no other call of this process used
local seq = 0
function NH.fresh(tag)
    seq = seq + 1
    return ("%s-%d-%d"):format(tag, math.random(1, 1e6), seq)
end

NH.tmpdir = H.tmpdir

-- NH.gateway(sb, opts) -> a running gateway against sandbox sb.
-- opts: workers (2), env (extra MEDIQUO_* variables), user (the workers'
-- user when run as root, e.g. "nobody nogroup"; the limiter dir is made
-- theirs), conf
-- (another config template than examples/nginx.conf); the
-- limiter and metrics files get a fresh key and dir unless env says.
function NH.gateway(sb, opts)
    opts = opts or {}
    local env = {
        MEDIQUO_API_KEY = H.api_key, MEDIQUO_SECRET_KEY = H.secret_key,
        MEDIQUO_BASE_URL = sb.base_url,
        MEDIQUO_RL_KEY = "spec-ngx-" .. tostring(math.random(1, 1e9)),
    }
    local dir = NH.tmpdir("ngx-rl")
    env.MEDIQUO_RL_DIR = dir
    if opts.user then
        -- workers as another user (e.g. "nobody nogroup"): the budget's dir is theirs
        env.MEDIQUO_NGINX_USER = opts.user
        H.run("chown " .. q(opts.user:match("^%S+")) .. " " .. q(dir))
    end
    if not opts.conf and not test_conf then test_conf = H.write_file(os.tmpname(), test_conf_text()) end
    env.MEDIQUO_GATEWAY_CONF = opts.conf or test_conf
    for k, v in pairs(opts.env or {}) do env[k] = tostring(v) end
    local assigns = {}
    for k, v in pairs(env) do assigns[#assigns + 1] = k .. "=" .. q(v) end
    local last
    for _ = 1, 10 do
        local port = H.free_port()
        local prefix = NH.tmpdir("ngx-gw")
        record(prefix)
        if opts.user then H.run("chmod 755 " .. q(prefix)) end
        local out, code = H.run(("env %s %s start --port %d --workers %d --prefix %s 2>&1"):format(
            table.concat(assigns, " "), q(H.root .. "/examples/gateway.sh"), port,
            opts.workers or 2, q(prefix)))
        if code == 0 then
            local gw = setmetatable({ url = out:match("^(%S+)"), port = port, prefix = prefix,
                                      env = env, rl_dir = dir }, Gateway)
            running[#running + 1] = gw
            return gw
        end
        last = out
        H.run("rm -rf " .. q(prefix))
    end
    error("cannot start the gateway: " .. tostring(last), 2)
end

function Gateway:stop()
    if self.stopped then return end
    self.stopped = true
    H.run(q(H.root .. "/examples/gateway.sh") .. " stop --prefix " .. q(self.prefix) .. " 2>&1")
    H.run("rm -rf " .. q(self.prefix) .. " " .. q(self.rl_dir))
end

function Gateway:error_log()
    local f = io.open(self.prefix .. "/logs/error.log", "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

local scratch = {}   -- spawn_posts dirs not yet removed (a test failed before wait)

NH._sentinel = setmetatable({}, { __gc = function()
    for i = #running, 1, -1 do running[i]:stop() end
    for dir in pairs(scratch) do H.run("rm -rf " .. q(dir)) end
    if test_conf then os.remove(test_conf) end
end })

-- NH.conf_variant(edit) -> path of a config template: the tests' config
-- (examples/nginx.conf with X-Worker) passed through edit(text) -> text
-- (which must change it). The caller removes the file.
function NH.conf_variant(edit)
    local conf = test_conf_text()
    local changed = edit(conf)
    assert(changed ~= conf, "the edit changed nothing")
    return H.write_file(os.tmpname(), changed)
end

-- gw:post(path, table|string) -> status, decoded body (or raw), headers
function Gateway:post(path, body, timeout)
    if type(body) == "table" then body = json.encode(body) end
    local status, resp, headers = H.http("POST", self.url .. path, body,
                                         { ["Content-Type"] = "application/json" },
                                         { timeout = timeout or 40 })
    return status, json.decode(resp or "") or resp, headers
end

function Gateway:get(path)
    return H.http("GET", self.url .. path, nil, nil, { timeout = 10 })
end

-- Parses Prometheus text exposition; raises on any line that is not valid.
-- -> { [name .. "{labels}"] = value }, { name = type }
function NH.parse_metrics(text)
    local samples, types = {}, {}
    for line in text:gmatch("[^\n]+") do
        local name, typ = line:match("^# TYPE ([%a_:][%w_:]*) (%a+)$")
        if name then
            types[name] = typ
        elseif not line:match("^# HELP [%a_:][%w_:]* .+$") then
            local series, value = line:match('^([%a_:][%w_:]*%b{}) (%S+)$')
            if not series then series, value = line:match("^([%a_:][%w_:]*) (%S+)$") end
            local v = tonumber(value)
            assert(series and v, "not a Prometheus sample line: " .. line)
            if series:find("{", 1, true) then
                local labels = series:match("%b{}"):sub(2, -2)
                for part in (labels .. ","):gmatch("(.-),") do
                    assert(part:match('^[%a_][%w_]*="[^"]*"$'), "bad label in: " .. line)
                end
            end
            assert(samples[series] == nil, "duplicate series: " .. series)
            samples[series] = v
        end
    end
    return samples, types
end

function Gateway:metrics()
    local status, text = self:get("/metrics")
    assert(status == 200, "GET /metrics: " .. tostring(status) .. " " .. tostring(text))
    return NH.parse_metrics(text), text
end

-- Starts n POSTs at once, each from its own curl process, without waiting.
-- bodies[i] is the JSON body of request i. -> handle; handle:wait() ->
-- list of { status, time (seconds), worker, body }.
function NH.spawn_posts(url, bodies, max_time)
    local dir = NH.tmpdir("ngx-par")
    scratch[dir] = true
    local script = { "cd " .. q(dir) }
    for i, b in ipairs(bodies) do
        local f = assert(io.open(dir .. "/" .. i .. ".json", "wb"))
        f:write(type(b) == "table" and json.encode(b) or b)
        f:close()
        script[#script + 1] = ("curl -s -o %d.out -D %d.hdr -w '%%{http_code} %%{time_total}' --max-time %d "
            .. "-H 'Content-Type: application/json' --data-binary @%d.json %s > %d.st 2>/dev/null &")
            :format(i, i, max_time or 30, i, q(url), i)
    end
    script[#script + 1] = "wait; echo done"
    local p = assert(io.popen(table.concat(script, "\n"), "r"))
    return {
        wait = function()
            p:read("a")
            p:close()
            local out = {}
            for i = 1, #bodies do
                local function slurp(ext)
                    local f = io.open(dir .. "/" .. i .. ext, "rb")
                    if not f then return "" end
                    local s = f:read("a")
                    f:close()
                    return s
                end
                local code, t = slurp(".st"):match("^(%d+) ([%d.]+)")
                out[i] = { status = tonumber(code), time = tonumber(t),
                           worker = slurp(".hdr"):match("[Xx]%-[Ww]orker: (%d+)"),
                           body = json.decode(slurp(".out")) }
            end
            H.run("rm -rf " .. q(dir))
            scratch[dir] = nil
            return out
        end,
    }
end

-- GET /health over `conns` kept-alive connections, round robin, until
-- `seconds` have passed or `max` samples. -> sorted latencies (s), workers seen
function NH.health_latencies(port, seconds, conns, max)
    local function connect()
        local c = assert(socket.tcp())
        c:settimeout(5)
        assert(c:connect("127.0.0.1", port))
        c:setoption("tcp-nodelay", true)
        return c
    end
    local socks = {}
    for i = 1, conns do socks[i] = connect() end
    local lat, workers = {}, {}
    local stop = socket.gettime() + seconds
    local i = 0
    while socket.gettime() < stop and #lat < (max or 100000) do
        i = i + 1
        local k = (i - 1) % conns + 1
        local c = socks[k]
        local t0 = socket.gettime()
        assert(c:send("GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"))
        local line, err = c:receive("*l")
        if not line and err == "closed" then
            -- nginx ends a kept-alive connection after keepalive_requests
            -- (1000): reconnect, and do not time the reconnection
            c:close()
            c = connect()
            socks[k] = c
            t0 = socket.gettime()
            assert(c:send("GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"))
            line, err = c:receive("*l")
        end
        assert(line and line:match("^HTTP/1%.1 200"), line or err)
        local len
        repeat
            local h = assert(c:receive("*l"))
            local name, v = h:match("^([^:]+):%s*(.*)$")
            name = name and name:lower()
            if name == "content-length" then len = tonumber(v) end
            if name == "x-worker" then workers[v] = true end
        until h == ""
        assert(c:receive(len))
        lat[#lat + 1] = socket.gettime() - t0
    end
    for _, c in ipairs(socks) do c:close() end
    table.sort(lat)
    return lat, workers
end

-- ---- an nginx host spending a Redis budget ----------------------------------
-- NH.budget_host(prefix, v) -> pid of a real nginx (v.WORKERS workers, 2
-- unless said) in prefix whose every worker opens a limiter on one Redis
-- budget (v.PM, BURST, PERIOD, KEY, DIR, URL; cosockets: mediquo.ngx_redis)
-- and, once, from a timer, runs v.BODY (Lua; in scope: core, nl =
-- mediquo.ngx_limiter, cfg, lim, max_wait = v.MAXWAIT, log(line)), logging
-- to <v.OUT>-<worker id + 1>.log: "error ..." when the limiter does not
-- open, else BODY's lines, then "done". Stop it with H.stop_nginx(pid, "QUIT").
-- NH.SPEND, the BODY unless said: as spec/redis_worker.lua, the budget spent
-- through nl.wait(lim, max_wait) until v.UNTIL (core.limiter_now's ns):
-- "ready", "t <start>" per start, "late <s>" past max_wait + 0.25 s,
-- "raise <err>", then "final <backend> <degraded 1|0> <redis_error>".
NH.SPEND = [[
            log("ready")
            for _ = 1, 1000000 do
                if core.limiter_now() >= @UNTIL@ then break end
                local t0 = core.limiter_now()
                local ok, res, _, _, _, at = pcall(nl.wait, lim, max_wait, cfg.redis)
                if not ok then log("raise " .. tostring(res)) break end
                if res then log(string.format("t %.0f", at)) end
                local took = (core.limiter_now() - t0) / 1e9
                if took > max_wait + 0.25 then log(string.format("late %.3f", took)) end
            end
            local st = lim:status()
            log(string.format("final %s %d %s", tostring(st.backend), st.degraded and 1 or 0,
                              tostring(st.redis_error)))
]]

local BUDGET_CONF = [[
@MODULES@
@USER@
worker_processes @WORKERS@;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path @PREFIX@/tmp;
    proxy_temp_path @PREFIX@/tmp;
    fastcgi_temp_path @PREFIX@/tmp;
    uwsgi_temp_path @PREFIX@/tmp;
    scgi_temp_path @PREFIX@/tmp;
    lua_package_path "@ROOT@/lua/?.lua;;";
    lua_package_cpath "@ROOT@/build/luajit/?.so;;";
    init_worker_by_lua_block {
        local core = require "mediquo.core"
        local nl = require "mediquo.ngx_limiter"
        local cfg = { per_minute = @PM@, burst = @BURST@, period = @PERIOD@, key = "@KEY@",
                      dir = "@DIR@", redis = "@URL@", redis_cosocket = true }
        local out = "@OUT@-" .. (ngx.worker.id() + 1) .. ".log"
        local max_wait = @MAXWAIT@
        ngx.timer.at(0, function(premature)
            if premature then return end
            local f = assert(io.open(out, "w"))
            local function log(s) f:write(s, "\n"); f:flush() end
            local lim, err = core.limiter(cfg)
            if not lim then
                log("error " .. tostring(err))
                f:close()
                return
            end
            @BODY@
            lim:close()
            log("done")
            f:close()
        end)
    }
    server {
        listen 127.0.0.1:@PORT@;
        location /health { content_by_lua_block { ngx.say("ok") } }
    }
}
]]

function NH.budget_host(prefix, v)
    H.run("mkdir -p " .. q(prefix .. "/logs") .. " " .. q(prefix .. "/tmp"))
    local fixed = { MODULES = H.nginx_modules(), PREFIX = prefix, ROOT = H.root, WORKERS = v.WORKERS or 2,
                    USER = H.run("id -u"):match("^0%s*$") and "user root root;" or "",
                    MAXWAIT = v.MAXWAIT or 0.5, PORT = v.PORT or H.free_port() }
    -- BODY first: its own @UNTIL@ is filled in by the second pass
    local conf = BUDGET_CONF:gsub("@BODY@", function() return v.BODY or NH.SPEND end)
    conf = conf:gsub("@(%u+)@", function(k)
        local x = fixed[k]
        if x == nil then x = v[k] end
        return tostring(assert(x, "NH.budget_host: no " .. k))
    end)
    H.write_file(prefix .. "/nginx.conf", conf)
    local out, code = H.run(("nginx -p %s -c %s -e %s 2>&1"):format(q(prefix), q(prefix .. "/nginx.conf"),
                                                                     q(prefix .. "/logs/error.log")))
    assert(code == 0, "nginx did not start: " .. out)
    local pid
    for _ = 1, 50 do
        pid = H.nginx_pid(prefix)
        if pid then break end
        H.sleep(0.05)
    end
    return assert(pid, "nginx wrote no pid file")
end

function NH.percentile(sorted, p)
    if #sorted == 0 then return nil end
    return sorted[math.max(1, math.ceil(#sorted * p))]
end

return NH
