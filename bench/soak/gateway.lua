-- bench/soak/gateway.lua: the soak's gateway leg (issue 16). Runs the
-- example gateway (examples/gateway.sh: real nginx, mediquo.ngx) against
-- the soak's sandbox, on the soak's limiter key and dir, books through it
-- from SOAK_GW_CLIENTS curl clients (bench/soak/gw_client.lua) while nginx
-- is reloaded (SIGHUP to its master) every SOAK_GW_RELOAD_EVERY seconds,
-- then reconciles what every client was answered with what the sandbox
-- holds. Loaded by bench/soak.lua with dofile; no global state.
--
--   local leg, why = GW.new{ root =, prefix =, base_url =, rl =, seconds =, lua =, spawn = }
--   leg:start(); leg:go(); leg:collect(); leg:reconcile(state, log); leg:stop()
--
-- SOAK_GATEWAY=0 skips the leg. SOAK_GW_SIGNAL=KILL sends SIGKILL to one
-- nginx worker instead of a reload (shows the checks failing: a killed
-- worker's requests get no answer).

local json = require "cjson"
local socket = require "socket"

local GW = {}
GW.__index = GW

local sh = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or ".") .. "/sh.lua")
local q, run, read_file, alive = sh.q, sh.run, sh.read_file, sh.alive
local function env_num(name, default)
    return tonumber(os.getenv(name) or "") or default
end

-- GW.new(o) -> leg | nil, why the leg is skipped
-- o: root, prefix (the soak's scratch dir), base_url (the sandbox's),
-- rl (the soak's rate_limit: key, dir, per_minute, period), seconds, lua,
-- spawn (cmd -> a read pipe of a process whose pid the soak ends on failure)
function GW.new(o)
    if os.getenv("SOAK_GATEWAY") == "0" then return nil, "SOAK_GATEWAY=0" end
    local nginx = os.getenv("MEDIQUO_NGINX")
    if not nginx or nginx == "" then
        nginx = run("command -v nginx || echo /usr/sbin/nginx"):gsub("%s+$", "")
    end
    if run("test -x " .. q(nginx) .. " && echo yes"):find("yes") == nil then
        return nil, "nginx not found (install nginx-core and libnginx-mod-http-lua)"
    end
    if not read_file(o.root .. "/build/luajit/mediquo/core.so") then
        return nil, "build/luajit/mediquo/core.so missing (make luajit)"
    end
    local signal = (os.getenv("SOAK_GW_SIGNAL") or "HUP"):upper()
    if signal ~= "HUP" and signal ~= "KILL" then
        return nil, "SOAK_GW_SIGNAL must be HUP or KILL"
    end
    return setmetatable({
        o = o, dir = o.prefix .. "/gw", signal = signal,
        clients = env_num("SOAK_GW_CLIENTS", 8),
        max = env_num("SOAK_GW_MAX", 2000),             -- requests per client
        pause = env_num("SOAK_GW_PAUSE", 0.1),          -- seconds between a client's requests
        every = env_num("SOAK_GW_RELOAD_EVERY", 2),
        retry_post = os.getenv("SOAK_GW_RETRY_POST") ~= "0",
        seed = math.random(1, 1e9),
    }, GW)
end

-- starts nginx on a free port; true | nil, err
function GW:start()
    local o, rl = self.o, self.o.rl
    run("mkdir -p " .. q(self.dir))
    local env = {
        MEDIQUO_API_KEY = "sandbox-key", MEDIQUO_SECRET_KEY = "sandbox-secret",
        MEDIQUO_BASE_URL = o.base_url,
        MEDIQUO_RL_KEY = rl.key, MEDIQUO_RL_DIR = rl.dir,
        MEDIQUO_RL_PER_MINUTE = rl.per_minute, MEDIQUO_RL_PERIOD = rl.period,
        -- an injected 0.5 s delay is slow, not a timeout; a reload must
        -- never be what cuts a call short
        MEDIQUO_TIMEOUT = 2, MEDIQUO_DEADLINE = 6, MEDIQUO_MAX_RETRIES = 3,
        MEDIQUO_RETRY_POST = self.retry_post and 1 or 0,
    }
    local assigns = {}
    for k, v in pairs(env) do assigns[#assigns + 1] = k .. "=" .. q(v) end
    table.sort(assigns)
    local last
    for _ = 1, 10 do
        local port = math.random(20000, 32000)  -- below the ephemeral range
        self.prefix = self.dir .. "/nginx-" .. port
        local out, code = run(("env %s %s start --port %d --workers 2 --prefix %s 2>&1"):format(
            table.concat(assigns, " "), q(o.root .. "/examples/gateway.sh"), port, q(self.prefix)))
        if code == 0 then
            self.url = out:match("^(%S+)")
            self.master = tonumber((read_file(self.prefix .. "/nginx.pid") or ""):match("%d+"))
            if not self.master then return nil, "the gateway wrote no nginx.pid" end
            -- one worker makes the metrics file next to the limiter's
            -- before the soak fills that dir
            run("curl -s -o /dev/null --max-time 10 " .. q(self.url .. "/metrics"))
            return true
        end
        last = out
        run("rm -rf " .. q(self.prefix))
        self.prefix = nil
        if not out:find("in use", 1, true) then break end
    end
    return nil, "cannot start the gateway: " .. tostring(last):gsub("%s+$", "")
end

-- the clients and the reload loop, for the soak's SECONDS
function GW:go()
    local o = self.o
    self.pipes, self.outs = {}, {}
    for i = 1, self.clients do
        self.outs[i] = self.dir .. "/client-" .. i .. ".jsonl"
        self.pipes[i] = o.spawn(("%s %s %s %d %d %d %s %d %s 2>&1"):format(
            o.lua, q(o.root .. "/bench/soak/gw_client.lua"), q(self.url), i, o.seconds,
            self.max, tostring(self.pause), self.seed + i, q(self.outs[i])))
    end
    -- bounded: SECONDS / every rounds, and never past SECONDS. The pause
    -- is every +-25% at random: clients that share a starved limiter wake
    -- together once a second, and a fixed period would keep hitting (or
    -- missing) the moment none is in flight
    local act = self.signal == "HUP" and ("kill -HUP %d"):format(self.master)
        or ('w=$(pgrep -P %d | shuf -n1); [ -n "$w" ] && kill -KILL "$w"'):format(self.master)
    self.count_file = self.dir .. "/reloads"
    local loop = ([[
n=0; end=$(( $(date +%%s) + %d ))
while [ $n -lt %d ]; do
  s=$(shuf -i %d-%d -n1); sleep $((s / 100)).$(printf %%02d $((s %% 100)))
  [ $(date +%%s) -lt $end ] || break
  if %s; then n=$((n+1)); date +%%s.%%N >> %s; fi
done]]):format(o.seconds, math.floor(o.seconds / self.every), math.floor(self.every * 75),
               math.floor(self.every * 125), act, q(self.count_file))
    self.loop_pid = tonumber(run(("(%s) >/dev/null 2>&1 & echo $!"):format(loop)):match("%d+"))
end

-- waits for the clients (and the reload loop); failures as strings
function GW:collect()
    local failures = {}
    for i = 1, self.clients do
        local text = self.pipes[i]:read("a")
        if not self.pipes[i]:close() then
            failures[#failures + 1] = ("gateway client %d died: %s"):format(i, text)
        end
    end
    for _ = 1, math.ceil(10 * (self.every + 2)) do
        if not alive(self.loop_pid) then break end
        socket.sleep(0.1)
    end
    if alive(self.loop_pid) then run("kill " .. self.loop_pid .. " 2>/dev/null") end
    -- when each signal went out: one line each
    self.at = {}
    for t in (read_file(self.count_file) or ""):gmatch("%S+") do self.at[#self.at + 1] = tonumber(t) end
    self.reloads = #self.at
    self.master_alive = alive(self.master)
    return failures
end

-- error.log lines that say a request or a worker was cut short
local BAD_LOG = { "%[alert%]", "%[emerg%]", "%[crit%]", "aborting", "left in connection",
                  "exited on signal" }

-- a code's possible server states after its ops, in order
local function model(ops)
    local m = { exists = "no", starts = {}, status = {}, none_at = {} }
    for _, r in ipairs(ops) do
        local unsure = not r.ok and r.effect ~= "none"
        if r.op == "book" then
            m.book = r
            if r.ok or r.effect == "done" then
                m.exists = "yes"
            elseif unsure then
                m.exists = "maybe"
            end
            m.starts = { [r.starts_at] = true }
            m.status = { active = true }
            m.url = r.ok and r.url or nil
        elseif r.op == "reschedule" then
            if r.ok then
                m.starts = { [r.starts_at] = true }
                m.url = r.url
            elseif unsure then
                m.starts[r.starts_at] = true
                m.url = nil
            else
                m.none_at[r.starts_at] = true
            end
        else
            if r.ok then
                m.status = { cancelled = true }
            elseif unsure then
                m.status.cancelled = true
            else
                m.none_cancel = true
            end
        end
    end
    return m
end

-- reconcile(state, log, log_complete) -> { lines, failures, known, fig }
-- state: GET /__sandbox/appointments; log: the sandbox's request log
function GW:reconcile(state, log, log_complete)
    local fail, lines = {}, {}
    local function failed(n, what, examples)
        if n > 0 then
            fail[#fail + 1] = n .. " " .. what
            for i = 1, math.min(3, #(examples or {})) do fail[#fail + 1] = "  e.g. " .. examples[i] end
        end
    end
    local fig = { requests = 0, answered = 0, lost = 0, own5xx = 0, booked = 0, unknown = 0,
                  none = 0, mismatches = 0, none_took = 0, doubled = 0, on_server = 0,
                  in_flight = 0 }
    local by_code, order, kinds, seen_code = {}, {}, {}, {}
    local lost_ex, own_ex, dup_codes, times, hit = {}, {}, 0, {}, {}
    for i = 1, self.clients do
        local n = 0
        for line in (read_file(self.outs[i]) or ""):gmatch("[^\n]+") do
            n = n + 1
            local ok, r = pcall(json.decode, line)
            if not ok or type(r) ~= "table" then
                fail[#fail + 1] = ("gateway client %d line %d unreadable"):format(i, n)
            else
                fig.requests = fig.requests + 1
                times[#times + 1] = r.took or 0
                -- in flight when a signal went out
                for k, t in ipairs(self.at) do
                    if r.t0 and r.t0 < t and t < r.t0 + r.took then
                        fig.in_flight = fig.in_flight + 1
                        hit[k] = true
                        break
                    end
                end
                if r.status == 0 or r.rc ~= 0 then
                    fig.lost = fig.lost + 1
                    lost_ex[#lost_ex + 1] = ("%s %s: HTTP %03d, curl exit %d"):format(
                        r.op, r.code, r.status, r.rc)
                else
                    fig.answered = fig.answered + 1
                    if not r.ok and (r.status >= 500 and (not r.kind or r.kind == "config")
                                     or not r.kind) then
                        fig.own5xx = fig.own5xx + 1
                        own_ex[#own_ex + 1] = ("%s %s: HTTP %d %s"):format(
                            r.op, r.code, r.status, r.kind or (r.raw or ""):gsub("%s+", " "))
                    end
                end
                if r.op == "book" then
                    if seen_code[r.code] then dup_codes = dup_codes + 1 end
                    seen_code[r.code] = true
                    if r.ok then fig.booked = fig.booked + 1 end
                end
                if not r.ok and r.kind then
                    kinds[r.kind] = (kinds[r.kind] or 0) + 1
                    if r.effect == "none" then fig.none = fig.none + 1
                    elseif r.effect ~= "done" then fig.unknown = fig.unknown + 1 end
                end
                if not by_code[r.code] then
                    by_code[r.code] = {}
                    order[#order + 1] = r.code
                end
                table.insert(by_code[r.code], r)
            end
        end
    end

    -- every code against the server
    local mism_ex, took_ex = {}, {}
    for _, code in ipairs(order) do
        local m = model(by_code[code])
        local got = state[code]
        local bad
        if got then fig.on_server = fig.on_server + 1 end
        if m.exists == "yes" and not got then
            bad = "answered booked, not on the server"
        elseif m.exists == "no" and got then
            fig.none_took = fig.none_took + 1
            took_ex[#took_ex + 1] = code .. ": the book was answered effect none, the server holds it"
        elseif got and m.book then
            local b = m.book
            if got.patient ~= b.patient or got.professional ~= b.professional then
                bad = ("holds %s/%s, sent %s/%s"):format(got.patient, got.professional,
                                                        b.patient, b.professional)
            elseif not m.starts[got.starts_at] then
                if m.none_at[got.starts_at] then
                    fig.none_took = fig.none_took + 1
                    took_ex[#took_ex + 1] = code .. ": a reschedule answered effect none took"
                else
                    bad = "starts_at " .. got.starts_at .. " is none the gateway answered"
                end
            elseif not m.status[got.status] then
                if m.none_cancel then
                    fig.none_took = fig.none_took + 1
                    took_ex[#took_ex + 1] = code .. ": a cancel answered effect none took"
                else
                    bad = "status " .. got.status .. " is not what the gateway answered"
                end
            elseif m.url and got.url ~= m.url then
                bad = "its URL is not the one the gateway answered last"
            end
        end
        if bad then
            fig.mismatches = fig.mismatches + 1
            mism_ex[#mism_ex + 1] = code .. ": " .. bad
        end
    end
    local known, strays = {}, 0
    for code in pairs(by_code) do known[code] = true end
    for code in pairs(state) do
        if code:find("^gw%-") and not known[code] then strays = strays + 1 end
    end

    -- the sandbox's log: a create it answered 200 made one appointment; a
    -- create answered 500 after processing ("after") may have; so the
    -- gateway's codes on the server lie between the two counts
    local upstream, faulted, sure, maybe = 0, 0, 0, 0
    for _, e in ipairs(log) do
        if (e.user_agent or ""):find("example-gateway", 1, true) then
            upstream = upstream + 1
            if e.fault then faulted = faulted + 1 end
            if e.method == "POST" and e.path == "/v1/appointments" then
                if e.status == 200 and (e.fault == nil or e.fault == "delay") then
                    sure = sure + 1
                elseif e.fault == "after" then
                    maybe = maybe + 1
                end
            end
        end
    end
    local gw_on_server = 0
    for code in pairs(state) do
        if code:find("^gw%-") then gw_on_server = gw_on_server + 1 end
    end
    if log_complete then
        if gw_on_server < sure then fig.doubled = sure - gw_on_server end
        if gw_on_server > sure + maybe then
            fail[#fail + 1] = ("%d gateway appointments on the server, but the sandbox answered "
                               .. "only %d creates 200 and %d after-faults"):format(
                               gw_on_server, sure, maybe)
        end
    end

    -- nginx's own account
    local elog = read_file(self.prefix .. "/logs/error.log") or ""
    local bad_lines, errors, warns, warn1 = {}, 0, 0, nil
    for line in elog:gmatch("[^\n]+") do
        for _, pat in ipairs(BAD_LOG) do
            if line:find(pat) then bad_lines[#bad_lines + 1] = line:sub(1, 200) break end
        end
        if line:find("[error]", 1, true) then errors = errors + 1 end
        if line:find("[warn]", 1, true) then
            warns = warns + 1
            warn1 = warn1 or line:sub(1, 200)
        end
    end
    fig.log_bad = #bad_lines

    table.sort(times)
    fig.p50 = times[math.max(1, math.ceil(#times / 2))] or 0
    fig.max_took = times[#times] or 0
    local kl = {}
    for k, v in pairs(kinds) do kl[#kl + 1] = ("%s=%d"):format(k, v) end
    table.sort(kl)
    lines[#lines + 1] = ("soak: gateway %s, 2 workers, %d clients (one curl per request, %.2f s apart), "
        .. "%s sent %d times (every %g s +-25%%)%s"):format(self.url, self.clients, self.pause,
        self.signal == "HUP" and "SIGHUP to the master" or "SIGKILL to a worker",
        self.reloads, self.every, self.master_alive and "" or "; the master is gone")
    lines[#lines + 1] = ("soak: gateway %d requests (each %.2f s median, %.2f s max), %d answered, "
        .. "%d without an answer, %d own 5xx; %d booked, %d codes on the server; errors by kind: %s; "
        .. "effect none %d, unknown %d")
        :format(fig.requests, fig.p50, fig.max_took, fig.answered, fig.lost, fig.own5xx, fig.booked,
                fig.on_server,
                #kl > 0 and table.concat(kl, " ") or "none", fig.none, fig.unknown)
    lines[#lines + 1] = ("soak: gateway upstream: %s; error.log: %d lines cut short/alert, %d [error], %d [warn]")
        :format(log_complete and ("%d requests (%d faulted), %d creates answered 200, %d after-faults, "
                                  .. "%d appointments"):format(upstream, faulted, sure, maybe, gw_on_server)
                or "the sandbox log lost entries: not counted", fig.log_bad, errors, warns)

    local signals = 0
    for _ in pairs(hit) do signals = signals + 1 end
    lines[#lines + 1] = ("soak: gateway %d requests were in flight when a signal went out (%d of %d signals "
        .. "caught at least one)%s"):format(fig.in_flight, signals, self.reloads,
        warn1 and ("; first [warn]: " .. warn1) or "")

    failed(fig.lost, "gateway requests got no answer", lost_ex)
    failed(fig.own5xx, "answers were the gateway's own failure, not the API's", own_ex)
    failed(fig.mismatches, "gateway codes differ from the server", mism_ex)
    failed(fig.none_took, "gateway answers said effect none but it took", took_ex)
    failed(fig.doubled, "creates the sandbox answered 200 are missing (a code created twice?)")
    failed(strays, "gateway codes on the server no client sent")
    failed(dup_codes, "codes booked twice by the clients (codes must be unique per run)")
    failed(fig.log_bad, "error.log lines say a request or worker was cut short", bad_lines)
    if not self.master_alive then fail[#fail + 1] = "the nginx master died" end
    if self.reloads == 0 then fail[#fail + 1] = "no reload was sent" end
    if self.reloads > 0 and fig.in_flight == 0 then
        fail[#fail + 1] = "no request was in flight at a reload: nothing was tested"
    end
    if fig.requests == 0 then fail[#fail + 1] = "no gateway request was sent" end
    for i, f in ipairs(fail) do fail[i] = "gateway: " .. f end
    return { lines = lines, failures = fail, known = known, fig = fig }
end

-- stops nginx (by its pid, examples/gateway.sh stop); safe to call twice
function GW:stop()
    if self.loop_pid and alive(self.loop_pid) then run("kill " .. self.loop_pid .. " 2>/dev/null") end
    if self.prefix and not self.stopped then
        self.stopped = true
        run(q(self.o.root .. "/examples/gateway.sh") .. " stop --prefix " .. q(self.prefix)
            .. " >/dev/null 2>&1")
    end
end

return GW
