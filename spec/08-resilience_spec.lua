-- Resilience (issue 5): every sandbox fault mode against every method where
-- it matters, asserting the outcome (error kind or success), the attempts,
-- how many requests the sandbox saw and what its state became; the
-- deadline; Retry-After; and keep-alive connections the server closed.
--
-- Clients use short timeouts and no limiter (rate_limit = false) so the
-- file stays fast; the limiter's own part has a spec of its own.

local H = require "spec.helper"
local mediquo = require "mediquo"

local json = H.json
local START, MOVED = "2030-01-01T10:00:00Z", "2031-02-03T04:05:06Z"
local SECRET = H.secret_key

describe("resilience", function()
    local sb

    before_each(function()
        sb = H.sandbox{}
    end)

    local n = 0
    local function uniq(p)
        n = n + 1
        return ("%s-%d-%d"):format(p, n, math.random(1e9))
    end

    local function new_client(o)
        local opts = { api_key = H.api_key, secret_key = SECRET, base_url = sb.base_url,
                       rate_limit = false, timeout = 0.3, connect_timeout = 0.3,
                       deadline = 5, max_retries = 2 }
        for k, v in pairs(o or {}) do opts[k] = v end
        return assert(mediquo.new(opts))
    end

    local function appt(code)
        return { code = code, starts_at = START, patient = "pat-1", professional = "prof-demo-1" }
    end

    -- an appointment made directly over HTTP, before any fault is queued
    local function seed(code)
        local st = H.http("POST", sb.base_url .. "/appointments", json.encode{
            appointment = { code = code, starts_at = START },
            patient = { code = "pat-1" }, professional = { hash = "prof-demo-1" },
        }, H.auth())
        assert.equal(200, st)
    end

    local function run(method, c, code)
        if method == "create" then return c:create(appt(code)) end
        if method == "reschedule" then return c:reschedule(code, MOVED) end
        return c:cancel(code)
    end

    -- requests to /v1/ the sandbox saw after the first `skip`
    local function requests(skip)
        local out = {}
        for i, e in ipairs(sb:log()) do
            if i > skip then out[#out + 1] = e end
        end
        return out
    end

    local function check_error(err, kind, attempts)
        assert.is_table(err, "expected an error")
        assert.equal(kind, err.kind, tostring(err))
        assert.equal(attempts, err.attempts, tostring(err))
        assert.is_string(err.message)
        assert.is_nil(tostring(err):find(SECRET, 1, true))
        assert.is_nil(err.message:find(SECRET, 1, true))
    end

    -- One row: method, client options, faults to queue, then what must be
    -- true: kind (nil = success), attempts, requests seen, final state
    -- ("none", "start", "moved", "cancelled", "active" = unchanged start),
    -- message pattern. `settle`: seconds to wait for a delayed request the
    -- client gave up on to finish on the server before looking.
    local function case(row)
        it(row.name, function()
            local code = uniq(row.method:sub(1, 2))
            if row.method ~= "create" then seed(code) end
            local skip = #sb:log()
            for _, f in ipairs(row.faults) do sb:faults(f) end
            local c = new_client(row.opts)
            local t0 = H.now()
            local v, err = run(row.method, c, code)
            local took = H.now() - t0
            if row.kind then
                assert.is_nil(v)
                check_error(err, row.kind, row.attempts)
                if row.status then assert.equal(row.status, err.status) end
                if row.message then assert.matches(row.message, err.message) end
            else
                assert.is_nil(err, err and tostring(err))
                if row.method == "cancel" then
                    assert.is_true(v)
                else
                    assert.equal(code, v.code)
                end
            end
            if row.max_time then assert.is_true(took < row.max_time, "took " .. took) end
            if row.min_time then assert.is_true(took >= row.min_time, "took " .. took) end
            if row.settle then H.sleep(row.settle) end
            local seen = requests(skip)
            assert.equal(row.requests, #seen)
            if row.statuses then
                local got = {}
                for i, e in ipairs(seen) do got[i] = ("%s %d"):format(e.method, e.status) end
                assert.same(row.statuses, got)
            end
            local rec = sb:state()[code]
            if row.state == "none" then
                assert.is_nil(rec)
            else
                assert.is_table(rec, "no appointment " .. code)
                local want = { start = { START, "active" }, active = { START, "active" },
                               moved = { MOVED, "active" },
                               cancelled = { START, "cancelled" } }
                assert.equal(want[row.state][1], rec.starts_at)
                assert.equal(want[row.state][2], rec.status)
            end
            if type(v) == "table" and not row.late_duplicate then
                -- the URL handed back is live (checked last: /call/ is logged)
                local path = v.url:match("^https?://[^/]+(/.*)$")
                assert.equal(200, (H.http("GET", sb.url .. path)))
            end
            if row.check then row.check(c, v, err, rec) end
            c:close()
        end)
    end

    describe("status faults (answered without processing)", function()
        for _, s in ipairs{ 500, 502, 504 } do
            case{ name = s .. " on create: not retried without retry_post", method = "create",
                  faults = { { mode = "status", status = s } },
                  kind = "server_error", status = s, attempts = 1, requests = 1, state = "none" }
            case{ name = s .. " on create with retry_post: retried, created once",
                  method = "create", opts = { retry_post = true },
                  faults = { { mode = "status", status = s } },
                  requests = 2, state = "start",
                  statuses = { "POST " .. s, "POST 200" } }
            case{ name = s .. " on reschedule: retried", method = "reschedule",
                  faults = { { mode = "status", status = s } },
                  requests = 2, state = "moved" }
            case{ name = s .. " on cancel, every attempt: server_error after 3 attempts",
                  method = "cancel", faults = { { mode = "status", status = s, next = 3 } },
                  kind = "server_error", status = s, attempts = 3, requests = 3, state = "active" }
        end
        case{ name = "503 on create: retried for every method (refused before processing)",
              method = "create", faults = { { mode = "status", status = 503 } },
              requests = 2, state = "start" }
        case{ name = "503 on cancel: retried", method = "cancel",
              faults = { { mode = "status", status = 503, next = 2 } },
              requests = 3, state = "cancelled" }
        case{ name = "503 with max_retries = 0: exactly one attempt", method = "reschedule",
              opts = { max_retries = 0 }, faults = { { mode = "status", status = 503 } },
              kind = "server_error", status = 503, attempts = 1, requests = 1, state = "active" }
        case{ name = "400 is not retried", method = "reschedule",
              faults = { { mode = "status", status = 400 } },
              kind = "bad_request", status = 400, attempts = 1, requests = 1, state = "active" }
    end)

    describe("after faults (processed, then answered with an error)", function()
        for _, s in ipairs{ 500, 502, 504 } do
            case{ name = s .. " after a create, no retry_post: error, and the create did happen",
                  method = "create", faults = { { mode = "after", status = s } },
                  kind = "server_error", status = s, attempts = 1, requests = 1, state = "start" }
            case{ name = s .. " after a create with retry_post: 'already exists' is confirmed",
                  method = "create", opts = { retry_post = true },
                  faults = { { mode = "after", status = s } },
                  requests = 3, state = "start",
                  statuses = { "POST " .. s, "POST 400", "PUT 200" },
                  check = function(_, _, _, rec) assert.equal(2, rec.version) end }
        end
        case{ name = "a create whose confirm fails: the error says it was created, one confirm attempt",
              method = "create", opts = { retry_post = true },
              faults = { { mode = "after", status = 500 }, { mode = "delay", ms = 0 },
                         { mode = "status", status = 503 } },
              kind = "server_error", status = 503, attempts = 3, requests = 3, state = "start",
              message = "^the appointment was created, but confirming it failed: ",
              statuses = { "POST 500", "POST 400", "PUT 503" },
              check = function(c) assert.equal(3, c:stats().requests) end }
        case{ name = "502 after a reschedule: retried, one effect", method = "reschedule",
              faults = { { mode = "after", status = 502 } },
              requests = 2, state = "moved", statuses = { "PUT 502", "PUT 200" } }
        case{ name = "500 after a cancel: 'already cancelled' on the retry is success",
              method = "cancel", faults = { { mode = "after", status = 500 } },
              requests = 2, state = "cancelled",
              statuses = { "DELETE 500", "DELETE 400" } }
        case{ name = "504 after a cancel, max_retries = 0: error, but it took", method = "cancel",
              opts = { max_retries = 0 }, faults = { { mode = "after", status = 504 } },
              kind = "server_error", status = 504, attempts = 1, requests = 1,
              state = "cancelled" }
        it("'already exists' without an ambiguous attempt before it is an error", function()
            local code = uniq("dup")
            seed(code)
            local c = new_client{ retry_post = true }
            local v, err = c:create(appt(code))
            assert.is_nil(v)
            check_error(err, "bad_request", 1)
            assert.equal("Appointment already exists", err.message)
        end)
        it("'already cancelled' without an ambiguous attempt before it is an error", function()
            local code = uniq("dc")
            seed(code)
            local c = new_client()
            assert.is_true(c:cancel(code))
            local v, err = c:cancel(code)
            assert.is_nil(v)
            check_error(err, "bad_request", 1)
        end)
    end)

    describe("delay past the timeout", function()
        case{ name = "create, no retry_post: timeout after 1 attempt; the server still made it",
              method = "create", faults = { { mode = "delay", ms = 600 } },
              kind = "timeout", attempts = 1, requests = 1, state = "start", settle = 0.5,
              message = "^timed out after 0%.3s %(attempt 1 of 3; not retried: it may have been processed",
              max_time = 0.6 }
        case{ name = "create with retry_post: the retry creates it, once", method = "create",
              opts = { retry_post = true }, faults = { { mode = "delay", ms = 600 } },
              requests = 2, state = "start", settle = 0.6 }
        case{ name = "create with retry_post, processed before the delay: confirmed",
              method = "create", opts = { retry_post = true },
              faults = { { mode = "delay", ms = 500, process = "after" } },
              requests = 3, state = "start", settle = 0.3 }
        -- the timed-out PUT is still processed, late: it renews the URL once
        -- more, so the URL this call returned may already be superseded
        case{ name = "reschedule: retried (the late first PUT also lands)", method = "reschedule",
              faults = { { mode = "delay", ms = 500 } }, requests = 2, state = "moved",
              settle = 0.4, late_duplicate = true,
              check = function(_, _, _, rec) assert.equal(3, rec.version) end }
        case{ name = "cancel processed before the delay: the retry's 'already cancelled' is success",
              method = "cancel", faults = { { mode = "delay", ms = 500, process = "after" } },
              requests = 2, state = "cancelled", settle = 0.3 }
        case{ name = "cancel, every attempt: timeout, message says why and which attempt",
              method = "cancel", faults = { { mode = "delay", ms = 500, next = 3 } },
              kind = "timeout", attempts = 3, requests = 3, state = "cancelled", settle = 0.5,
              -- API.md: a failure that may have taken effect says so (effect, message)
              message = "^timed out after 0%.3s %(attempt 3 of 3; it may have been cancelled%)$",
              check = function(_, _, err) assert.equal("unknown", err.effect) end }
    end)

    describe("reset (connection closed with no answer)", function()
        case{ name = "create: network, not retried", method = "create",
              faults = { { mode = "reset" } }, kind = "network", attempts = 1, requests = 1,
              state = "none", message = "^connection closed before a complete answer" }
        case{ name = "create with retry_post: retried", method = "create",
              opts = { retry_post = true }, faults = { { mode = "reset" } },
              requests = 2, state = "start" }
        case{ name = "reschedule: retried", method = "reschedule", faults = { { mode = "reset" } },
              requests = 2, state = "moved" }
        case{ name = "cancel, every attempt: network after 3", method = "cancel",
              faults = { { mode = "reset", next = 3 } }, kind = "network", attempts = 3,
              requests = 3, state = "active",
              message = "%(attempt 3 of 3; it may have been cancelled%)$" }
    end)

    describe("garbage (a 200 that is not JSON)", function()
        for _, m in ipairs{ "create", "reschedule", "cancel" } do
            case{ name = m .. ": bad_response, not retried", method = m,
                  faults = { { mode = "garbage", next = 3 } }, kind = "bad_response",
                  status = 200, attempts = 1, requests = 1,
                  state = m == "create" and "none" or "active" }
        end
    end)

    describe("truncate (a body cut short)", function()
        case{ name = "create: network, not retried", method = "create",
              faults = { { mode = "truncate" } }, kind = "network", attempts = 1, requests = 1,
              state = "none" }
        case{ name = "create with retry_post: retried", method = "create",
              opts = { retry_post = true }, faults = { { mode = "truncate" } },
              requests = 2, state = "start" }
        case{ name = "reschedule: retried", method = "reschedule",
              faults = { { mode = "truncate" } }, requests = 2, state = "moved" }
        case{ name = "cancel, every attempt: network after 3", method = "cancel",
              faults = { { mode = "truncate", next = 3 } }, kind = "network", attempts = 3,
              requests = 3, state = "active" }
    end)

    describe("huge (a body over the 1 MiB cap)", function()
        for _, m in ipairs{ "create", "reschedule", "cancel" } do
            case{ name = m .. ": bad_response, not read, not retried", method = m,
                  faults = { { mode = "huge", bytes = 3 * 1024 * 1024, next = 3 } },
                  kind = "bad_response", status = 200, attempts = 1, requests = 1,
                  state = m == "create" and "none" or "active",
                  message = "^response body over 1048576 bytes" }
        end
        case{ name = "a small 2xx that is not an appointment: bad_response", method = "create",
              faults = { { mode = "huge", bytes = 1000 } }, kind = "bad_response",
              status = 200, attempts = 1, requests = 1, state = "none" }
    end)

    describe("ratelimit (429)", function()
        case{ name = "create with Retry-After: 1: waits it out, then created", method = "create",
              faults = { { mode = "ratelimit", seconds = 1 } }, requests = 2, state = "start",
              min_time = 0.95, max_time = 2 }
        case{ name = "cancel without Retry-After: backoff only", method = "cancel",
              faults = { { mode = "ratelimit" } }, requests = 2, state = "cancelled",
              max_time = 0.9 }
        case{ name = "reschedule, every attempt: rate_limited after 3", method = "reschedule",
              faults = { { mode = "ratelimit", next = 3 } }, kind = "rate_limited",
              status = 429, attempts = 3, requests = 3, state = "active" }
        case{ name = "Retry-After past the deadline: answered at once, with retry_after",
              method = "create", opts = { deadline = 2 },
              faults = { { mode = "ratelimit", seconds = 10 } }, kind = "rate_limited",
              status = 429, attempts = 1, requests = 1, state = "none", max_time = 0.5,
              check = function(_, _, err) assert.equal(10, err.retry_after) end }
    end)

    describe("deadline", function()
        it("timeout = 1, deadline = 2.5, a server that never answers in time: timeout before 3 s",
           function()
            local code = uniq("dl")
            seed(code)
            sb:faults{ mode = "delay", ms = 4000, next = 5 }
            local c = new_client{ timeout = 1, deadline = 2.5 }
            local t0 = H.now()
            local v, err = c:reschedule(code, MOVED)
            local took = H.now() - t0
            assert.is_nil(v)
            assert.equal("timeout", err.kind)
            assert.is_true(took < 3, "took " .. took)
            assert.is_true(took >= 2, "took " .. took)   -- two whole attempts fit
            assert.is_true(err.attempts == 2 or err.attempts == 3)
            assert.matches("^timed out after %d%.%ds %(attempt %d of 3", err.message)
        end)

        it("a deadline shorter than the timeout cuts the attempt", function()
            sb:faults{ mode = "delay", ms = 3000 }
            local c = new_client{ timeout = 10, deadline = 0.5 }
            local t0 = H.now()
            local v, err = c:cancel(uniq("short"))
            local took = H.now() - t0
            assert.is_nil(v)
            check_error(err, "timeout", 1)
            assert.is_true(took < 0.9, "took " .. took)
        end)

        it("bounds the wait for a limiter slot", function()
            local key = uniq("resilience-key")
            local c = new_client{ deadline = 0.5,
                                  rate_limit = { per_minute = 1, burst = 1, key = key } }
            local code = uniq("lim")
            assert.truthy(c:create(appt(code)))
            local t0 = H.now()
            local v, err = c:cancel(code)
            local took = H.now() - t0
            assert.is_nil(v)
            check_error(err, "rate_limited", 0)
            -- no slot can come within the deadline: said at once, not waited for
            assert.is_true(took < 0.6, "took " .. took)
            assert.is_true(err.retry_after > 0.5)
            assert.equal(1, #sb:log())
        end)
    end)

    describe("keep-alive connections", function()
        it("a reused connection that dies with no answer: a DELETE is re-sent once, not counted",
           function()
            local code = uniq("ka")
            seed(code)
            local c = new_client{ max_retries = 0 }
            -- open the connection with a call that leaves no trace of its own
            local _, err0 = c:reschedule(code, START)
            assert.is_nil(err0)
            local skip = #sb:log()
            sb:faults{ mode = "reset" }
            assert.is_true(c:cancel(code))
            local seen = requests(skip)
            assert.equal(2, #seen)
            assert.equal(444, seen[1].status)
            assert.equal(200, seen[2].status)
            local s = c:stats()
            assert.equal(2, s.requests)      -- attempts: the re-send is not one
            assert.equal(0, s.retries)
        end)

        it("a reused connection that dies with no answer: a create is never re-sent", function()
            local code = uniq("kp")
            seed(code)
            local c = new_client{ max_retries = 0 }
            assert.is_nil(select(2, c:reschedule(code, START)))
            local skip = #sb:log()
            sb:faults{ mode = "reset" }
            local v, err = c:create(appt(uniq("kp2")))
            assert.is_nil(v)
            check_error(err, "network", 1)
            assert.matches("never re%-sent", err.message)
            assert.equal(1, #requests(skip))
        end)
    end)
end)

describe("stale keep-alive after a server restart", function()
    -- a sandbox of its own: it is stopped and started again on its port
    local sb
    setup(function() sb = H.sandbox{ window = 61 } end)

    local function restart()
        local _, code = H.run(H.shell_quote(H.bin) .. " stop --prefix " .. H.shell_quote(sb.prefix)
                              .. " >/dev/null 2>&1")
        assert.equal(0, code)
        local _
        _, code = H.run(("%s start --port %d --prefix %s --window 61 --per-minute 1000000000"
                         .. " >/dev/null 2>&1"):format(H.shell_quote(H.bin), sb.port,
                                                      H.shell_quote(sb.prefix)))
        assert.equal(0, code)
    end

    it("every method goes through on a fresh connection, silently, no retry", function()
        local c = assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                      base_url = sb.base_url, rate_limit = false,
                                      timeout = 2, max_retries = 0 })
        local codes = {}
        for i = 1, 3 do
            codes[i] = ("stale-%d-%d"):format(i, math.random(1e9))
            assert.truthy(c:create{ code = codes[i], starts_at = START, patient = "p",
                                    professional = "prof-demo-1" })
            restart()       -- the pooled connection is now closed by the server
            local code = codes[i]
            -- the new server starts empty: give it the appointment (not via c)
            assert.equal(200, (H.http("POST", sb.base_url .. "/appointments", json.encode{
                appointment = { code = code, starts_at = START },
                patient = { code = "p" }, professional = { hash = "prof-demo-1" },
            }, H.auth())))
            local v, err
            if i == 1 then
                v, err = c:create{ code = code .. "b", starts_at = START, patient = "p",
                                   professional = "prof-demo-1" }
            elseif i == 2 then
                v, err = c:reschedule(code, MOVED)
            else
                v, err = c:cancel(code)
            end
            assert.is_nil(err, err and tostring(err))
            assert.truthy(v)
            assert.equal(2, #sb:log())   -- the new server saw that, and one request of ours
        end
        local s = c:stats()
        assert.equal(6, s.requests)
        assert.equal(0, s.retries)
    end)

    it("a connection the server closed while idle is replaced silently", function()
        -- the same sandbox, its nginx told to close idle connections after 1 s
        local conf = sb.prefix .. "/nginx.conf"
        local _, code = H.run(H.shell_quote(H.bin) .. " stop --prefix " .. H.shell_quote(sb.prefix)
                              .. " >/dev/null 2>&1")
        assert.equal(0, code)
        local f = assert(io.open(conf, "rb"))
        local text = f:read("a")
        f:close()
        text = text:gsub("keepalive_requests 100000;", "keepalive_requests 100000; keepalive_timeout 1s;")
        f = assert(io.open(conf, "wb"))
        f:write(text)
        f:close()
        local nginx = os.getenv("MEDIQUO_NGINX") or "nginx"
        if os.execute("command -v " .. nginx .. " >/dev/null 2>&1") ~= true then
            nginx = "/usr/sbin/nginx"
        end
        _, code = H.run(("%s -p %s -c %s 2>&1"):format(nginx, H.shell_quote(sb.prefix),
                                                       H.shell_quote(conf)))
        assert.equal(0, code)
        for _ = 1, 50 do
            if H.http("GET", sb.url .. "/__sandbox/ping") == 200 then break end
            H.sleep(0.05)
        end
        sb:reset()
        local c = assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                      base_url = sb.base_url, rate_limit = false,
                                      timeout = 2, max_retries = 0 })
        local code1 = ("idle-%d"):format(math.random(1e9))
        assert.truthy(c:create{ code = code1, starts_at = START, patient = "p",
                                professional = "prof-demo-1" })
        H.sleep(1.5)        -- the server closes the idle connection meanwhile
        local v, err = c:cancel(code1)
        assert.is_nil(err, err and tostring(err))
        assert.is_true(v)
        assert.equal(2, #sb:log())
        assert.equal(0, c:stats().retries)
        sb:stop()
    end)
end)

describe("Retry-After as an HTTP-date", function()
    -- the sandbox sends delta-seconds; this one-off server (a LuaSocket
    -- process on loopback) answers 429 with an HTTP-date 2 s ahead, then 200
    local SERVER = [[
local socket = require "socket"
local s = assert(socket.bind("127.0.0.1", 0))
local _, port = s:getsockname()
io.write(port, "\n"); io.flush()
s:settimeout(5)
local n, stop = 0, socket.gettime() + 8
while n < 2 and socket.gettime() < stop do
    local c = s:accept()
    if c then
        c:settimeout(3)
        while n < 2 do
            local line = c:receive("*l")
            if not line then break end
            local len = 0
            repeat
                local h = c:receive("*l")
                if h and h:lower():match("^content%-length:") then len = tonumber(h:match(":%s*(%d+)")) end
            until not h or h == ""
            if len > 0 then c:receive(len) end
            n = n + 1
            local status, extra, body = "200 OK", "",
                '{"data":{"appointment":{"code":"hd","url":"http://127.0.0.1/call/x"}}}'
            if n == 1 then
                status, body = "429 Too Many Requests", '{"message":"Too Many Attempts."}'
                extra = "Retry-After: " .. os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2) .. "\r\n"
            end
            c:send("HTTP/1.1 " .. status .. "\r\nContent-Type: application/json\r\nContent-Length: "
                   .. #body .. "\r\n" .. extra .. "\r\n" .. body)
            io.write(string.format("%.3f", socket.gettime()), "\n"); io.flush()
        end
        c:close()
    end
end
]]

    it("is waited for (about 1 to 2 s), then the retry succeeds", function()
        local lua = os.getenv("MEDIQUO_LUA") or "lua5.4"
        local p = assert(io.popen(lua .. " -e " .. H.shell_quote(SERVER), "r"))
        local port = tonumber(p:read("l"))
        assert.is_number(port)
        local c = assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                                      base_url = "http://127.0.0.1:" .. port .. "/v1",
                                      rate_limit = false, timeout = 2, deadline = 6 })
        local v, err = c:reschedule("hd", START)
        local t1, t2 = tonumber(p:read("l")), tonumber(p:read("l"))
        p:close()
        assert.is_nil(err, err and tostring(err))
        assert.equal("hd", v.code)
        local gap = t2 - t1
        assert.is_true(gap >= 0.95 and gap < 2.6, "gap " .. gap)
        assert.equal(1, c:stats().retries)
    end)
end)
