-- bin/mediquo-sandbox itself: start is fast and prints the URL, stop leaves
-- nothing behind, start errors are one clear line, and several workers share
-- one state and one exact rate-limit count.

local H = require "spec.helper"
local json = H.json
local q = H.shell_quote

local function sandbox_cmd(args, env)
    local errfile = os.tmpname()
    local out, code = H.run((env or "") .. " " .. q(H.bin) .. " " .. args .. " 2>" .. q(errfile))
    local f = io.open(errfile, "rb")
    local err = f and f:read("a") or ""
    if f then f:close() end
    os.remove(errfile)
    return code, out, err
end

local function new_prefix()
    return (H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-cli-XXXXXX\""):gsub("%s+$", ""))
end

local function free_port()
    for _ = 1, 50 do
        local port = math.random(20000, 32000)
        if not H.http("GET", "http://127.0.0.1:" .. port .. "/", nil, nil, { timeout = 1 }) then
            return port
        end
    end
    error("no free port")
end

local function listening(port)
    local out = H.run("ss -ltnH 'sport = :" .. port .. "'")
    return out:find("%S") ~= nil
end

local function process_gone(pid)
    -- A zombie awaiting its reaper (pid 1 here) holds no port and runs nothing.
    local out = H.run("ps -o stat= -p " .. pid)
    return out == "" or out:match("^%s*Z") ~= nil
end

local read = H.read_file

local function body_for(code)
    return json.encode{ appointment = { code = code, starts_at = "2024-05-20T10:00:00Z" },
                        patient = { code = "p" }, professional = { hash = "prof-demo-2" } }
end

describe("bin/mediquo-sandbox", function()
    local port, prefix

    before_each(function()
        port, prefix = free_port(), new_prefix()
    end)

    after_each(function()
        sandbox_cmd("stop --prefix " .. q(prefix))
        H.run("rm -rf " .. q(prefix))
    end)

    it("starts in under 2 s, prints the base URL; stop leaves no process and no port", function()
        local t0 = H.now()
        local code, out, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)))
        local took = H.now() - t0
        assert.equal(0, code, err)
        assert.is_true(took < 2, "start took " .. took .. " s")
        assert.equal(("http://127.0.0.1:%d/v1\n"):format(port), out)
        assert.equal("", err)
        assert.equal(200, (H.http("GET", ("http://127.0.0.1:%d/__sandbox/ping"):format(port))))
        local pid = assert(tonumber(read(prefix .. "/nginx.pid")))
        assert.is_true(listening(port))
        -- loopback only
        local ss = H.run("ss -ltnH 'sport = :" .. port .. "'")
        assert.matches("127%.0%.0%.1:" .. port, ss)

        t0 = H.now()
        code = sandbox_cmd("stop --prefix " .. q(prefix))
        assert.equal(0, code)
        assert.is_true(H.now() - t0 < 2)
        assert.is_true(process_gone(pid), "nginx master still running")
        assert.equal("", H.run("pgrep -P " .. pid))
        assert.is_false(listening(port))
        local status, e = H.http("GET", ("http://127.0.0.1:%d/"):format(port))
        assert.is_nil(status)
        assert.matches("refused", e)
        assert.is_nil(read(prefix .. "/nginx.pid"))
    end)

    it("uses ${TMPDIR:-/tmp}/mediquo-sandbox-PORT as the default prefix", function()
        local env = "TMPDIR=" .. q(prefix)
        local code, out, err = sandbox_cmd("start --port " .. port, env)
        assert.equal(0, code, err)
        assert.matches("^http://127%.0%.0%.1:" .. port .. "/v1", out)
        assert.is_string(read(prefix .. "/mediquo-sandbox-" .. port .. "/nginx.pid"))
        code = sandbox_cmd("stop --port " .. port, env)
        assert.equal(0, code)
        assert.is_false(listening(port))
    end)

    it("refuses a busy port with one clear line, and starts nothing", function()
        local code, _, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)))
        assert.equal(0, code, err)
        local other = new_prefix()
        local t0 = H.now()
        local code2, out2, err2 = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(other)))
        assert.is_true(H.now() - t0 < 2)
        assert.not_equal(0, code2)
        assert.equal("", out2)
        assert.matches("^mediquo%-sandbox: port " .. port .. " .-busy[^\n]*\n$", err2)
        assert.is_nil(read(other .. "/nginx.pid"))
        H.run("rm -rf " .. q(other))
        -- a port held by something that is not a sandbox
        local holder = free_port()
        local nc = io.popen("exec lua5.4 -e \"local s=require'socket'.bind('127.0.0.1'," .. holder
                            .. ") print('ok') io.stdout:flush() s:settimeout(3) s:accept()\"", "r")
        assert.equal("ok", nc:read("l"))
        local code3, _, err3 = sandbox_cmd(("start --port %d --prefix %s"):format(holder, q(other)))
        assert.not_equal(0, code3)
        assert.matches("busy", err3)
        H.http("GET", "http://127.0.0.1:" .. holder .. "/", nil, nil, { timeout = 1 })
        nc:close()
        H.run("rm -rf " .. q(other))
        -- the first sandbox is untouched
        assert.equal(200, (H.http("GET", ("http://127.0.0.1:%d/__sandbox/ping"):format(port))))
    end)

    it("refuses a second start on a live prefix", function()
        assert.equal(0, (sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)))))
        local code, _, err = sandbox_cmd(("start --port %d --prefix %s"):format(free_port(), q(prefix)))
        assert.not_equal(0, code)
        assert.matches("already running", err)
    end)

    it("cleans a stale pid file and starts", function()
        local f = assert(io.open(prefix .. "/nginx.pid", "w"))
        f:write("4194000\n") -- above any pid this machine hands out
        f:close()
        local code, out, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)))
        assert.equal(0, code, err)
        assert.matches("^http://", out)
        assert.not_equal("4194000", (read(prefix .. "/nginx.pid"):gsub("%s", "")))
    end)

    it("reports a missing nginx or Lua module in one line", function()
        local code, _, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)),
                                         "MEDIQUO_NGINX=/nonexistent/nginx")
        assert.not_equal(0, code)
        assert.matches("^mediquo%-sandbox: nginx not found[^\n]*\n$", err)
        code, _, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)),
                                   "MEDIQUO_NGINX_MODULES=/nonexistent")
        assert.not_equal(0, code)
        assert.matches("^mediquo%-sandbox: nginx Lua module missing[^\n]*\n$", err)
        assert.is_false(listening(port))
    end)

    it("refuses bad options", function()
        for _, args in ipairs{ "start --port nope", "start --workers 0", "start --bogus",
                               "restart" } do
            local code, _, err = sandbox_cmd(args .. " --prefix " .. q(prefix))
            assert.not_equal(0, code, args)
            assert.matches("^mediquo%-sandbox: ", err)
        end
    end)

    it("--tls prints the CA path; the certificate is valid for 127.0.0.1 and localhost", function()
        local t0 = H.now()
        local code, out, err = sandbox_cmd(("start --tls --port %d --prefix %s"):format(port, q(prefix)))
        assert.equal(0, code, err)
        assert.is_true(H.now() - t0 < 2)
        local url, ca = out:match("^(%S+)\nca_file: (%S+)\n$")
        assert.equal(("https://127.0.0.1:%d/v1"):format(port), url)
        assert.equal(prefix .. "/ca.pem", ca)
        for _, host in ipairs{ "127.0.0.1", "localhost" } do
            local _, rc = H.run(("curl -sS -o /dev/null --cacert %s https://%s:%d/__sandbox/ping")
                                :format(q(ca), host, port))
            assert.equal(0, rc, host)
        end
    end)

    it("passes extra credentials from MEDIQUO_SANDBOX_CREDENTIALS", function()
        local code, _, err = sandbox_cmd(("start --port %d --prefix %s"):format(port, q(prefix)),
                                         "MEDIQUO_SANDBOX_CREDENTIALS=k2:s2,k3:s3")
        assert.equal(0, code, err)
        local base = ("http://127.0.0.1:%d/v1/appointments"):format(port)
        for _, pair in ipairs{ { "sandbox-key", "sandbox-secret" }, { "k2", "s2" }, { "k3", "s3" } } do
            local status = H.http("POST", base, body_for("CRED-" .. pair[1]),
                                  { ["X-API-Key"] = pair[1], ["X-Secret-Key"] = pair[2] })
            assert.equal(200, status, pair[1])
        end
        assert.equal(403, (H.http("POST", base, body_for("CRED-x"),
                                  { ["X-API-Key"] = "k2", ["X-Secret-Key"] = "s3" })))
    end)
end)

describe("sandbox with two workers", function()
    it("shares one state: a create on one worker is rescheduled on the other", function()
        local sb = H.sandbox{ workers = 2 }
        local created_by, moved_by, crossed = {}, {}, 0
        for i = 1, 60 do
            local status, raw, hs = H.http("POST", sb.base_url .. "/appointments",
                                           body_for("W-" .. i), H.auth())
            assert.equal(200, status, raw)
            created_by[i] = hs["x-sandbox-worker"]
            status, raw, hs = H.http("PUT", sb.base_url .. "/appointments/W-" .. i,
                json.encode{ appointment = { starts_at = "2024-06-01T10:00:00Z" } }, H.auth())
            assert.equal(200, status, raw)
            moved_by[i] = hs["x-sandbox-worker"]
            if moved_by[i] ~= created_by[i] then
                crossed = crossed + 1
            end
        end
        local workers = {}
        for _, e in ipairs(sb:log()) do
            workers[e.worker] = true
        end
        local n = 0
        for _ in pairs(workers) do n = n + 1 end
        assert.equal(2, n, "both workers served")
        assert.is_true(crossed > 0, "a reschedule on the other worker than its create")
        local state = sb:state()
        for i = 1, 60 do
            assert.equal(2, state["W-" .. i].version)
        end
    end)

    it("counts the rate limit exactly across workers", function()
        local sb = H.sandbox{ workers = 2, per_minute = 30 }
        local ok, limited, seen = 0, 0, {}
        for _ = 1, 40 do
            local status, _, hs = H.http("GET", sb.base_url .. "/nowhere", nil, H.auth())
            if status == 429 then
                limited = limited + 1
            else
                ok = ok + 1
                seen[#seen + 1] = tonumber(hs["x-ratelimit-remaining"])
            end
        end
        assert.equal(30, ok)
        assert.equal(10, limited)
        table.sort(seen)
        for i = 1, 30 do
            assert.equal(i - 1, seen[i])
        end
    end)

    it("shares the fault queue across workers", function()
        local sb = H.sandbox{ workers = 2 }
        sb:faults{ next = 10, mode = "status", status = 503 }
        local got = {}
        for i = 1, 12 do
            got[#got + 1] = (H.http("POST", sb.base_url .. "/appointments", body_for("FQ-" .. i),
                                    H.auth()))
        end
        assert.same({ 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 200, 200 }, got)
    end)
end)
