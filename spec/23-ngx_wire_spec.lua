-- spec/23-ngx_wire_spec.lua: what mediquo.ngx puts on the wire and reads
-- back (core.http1: the request bytes, keys held in C; core.http1_parser:
-- Debian's http-parser), outside nginx; then examples/minimal.conf -- the
-- complete minimal nginx.conf of the README's OpenResty section -- runs as written:
-- plain `nginx -p PREFIX -c examples/minimal.conf` with the keys, the base
-- URL and the Lua search path in the environment (only the listen port is
-- changed, so parallel runs do not collide), and books an appointment on
-- the sandbox. Nothing in it about threads.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local core = require "mediquo.core"

local q = H.shell_quote

local KEY, SECRET = "wire-api-key-123", "wire-secret-456"

local function writer(extra)
    local o = { api_key = KEY, secret_key = SECRET, host = "api.example:8443" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return core.http1(o)
end

-- feeds s to a fresh parser in pieces of `step` bytes; -> state, outcome, message, parser
local function parse(s, step)
    local p = core.http1_parser()
    step = step or #s
    local state, outcome, message = "more", nil, nil
    for i = 1, #s, step do
        state, outcome, message = p:feed(s:sub(i, i + step - 1))
        if state ~= "more" then break end
    end
    return state, outcome, message, p
end

describe("core.http1 (the request bytes)", function()
    it("writes the request line, the headers the API wants and the body", function()
        local w = assert(writer{ user_agent = "gw/1" })
        local body = '{"appointment":{"starts_at":"2030-05-20T10:00:00Z"}}'
        assert.are.equal("PUT /v1/appointments/A%2F1 HTTP/1.1\r\n"
            .. "Host: api.example:8443\r\n"
            .. "User-Agent: lua-mediquo/0.2.0 gw/1\r\n"
            .. "Accept: application/json\r\n"
            .. "X-API-Key: " .. KEY .. "\r\nX-Secret-Key: " .. SECRET .. "\r\n"
            .. "Content-Type: application/json\r\n"
            .. "Content-Length: " .. #body .. "\r\n\r\n" .. body,
            w:request("PUT", "/v1/appointments/A%2F1", body))
        local del = w:request("DELETE", "/v1/appointments/A1")
        assert.truthy(del:find("^DELETE /v1/appointments/A1 HTTP/1%.1\r\n"))
        assert.falsy(del:find("Content-", 1, true))
        assert.truthy(del:find("\r\n\r\n$"))
    end)

    it("call:request_head's head, kept per body length, is w:request's: kept, over 64 lengths, other paths",
       function()
        local w = assert(writer())
        local eng = assert(core.engine{ base_url = "https://api.example:8443/v1", api_key = KEY,
                                        secret_key = SECRET })
        local function check(call, action)
            assert.equal("send", action)
            local head, body = call:request_head(w)
            local method, path = call:request()
            assert.equal(w:request(method, path, body), head .. (body or ""))
        end
        local function create(n)
            check(eng:start("create", { code = "c-" .. ("x"):rep(n), patient = "p",
                                        professional = "q", starts_at = "2030-05-20T10:00:00Z" }, nil, 0))
        end
        -- 40 lengths of one path, twice: the second round reads the kept heads
        for _ = 1, 2 do
            for n = 1, 40 do create(n) end
        end
        -- over HEADS_MAX (64) lengths: a new table when one is full
        for _ = 1, 2 do
            for n = 1, 100 do create(n) end
        end
        -- other methods and paths between creates: each starts afresh
        for n = 1, 20 do
            check(eng:start("cancel", "c" .. n, nil, 0))
            check(eng:start("reschedule", "c" .. n, "2030-05-21T10:00:00Z", 0))
            create(n)
        end
    end)

    it("keeps the keys in C: nothing reads them back", function()
        local w = assert(writer())
        assert.are.equal("mediquo.http1", tostring(w))
        assert.are.equal("mediquo", getmetatable(w))
        assert.is_nil(w.api_key)
        assert.is_nil(w.secret_key)
    end)

    it("refuses keys and hosts with control characters without echoing them, and unsafe paths", function()
        local w, msg = writer{ secret_key = "s3cr3t\r\nX-Evil: 1" }
        assert.is_nil(w)
        assert.truthy(msg:find("secret_key", 1, true))
        assert.falsy(msg:find("s3cr3t", 1, true))
        assert.is_nil((writer{ host = "" }))
        w = assert(writer())
        assert.has_error(function() w:request("POST", "/a b", "{}") end)
        assert.has_error(function() w:request("POST", "/a\r\nX: y", "{}") end)
        assert.has_error(function() w:request("POST", "relative", "{}") end)
        assert.has_error(function() w:request("PATCH", "/a") end)
        -- GET is the webhook subscriptions' list: no body, no Content-Length
        assert.falsy(w:request("GET", "/a"):lower():find("content-length", 1, true))
    end)
end)

describe("core.http1_parser (the answer)", function()
    local answer = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        .. "Retry-After: 7\r\nX-RateLimit-Remaining: 0\r\nx-ratelimit-limit: 600\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mes\r\n12\r\nsage\":\"slow down\"}\r\n0\r\n\r\n"

    it("reads status, body and the limiter's headers, however the bytes are cut", function()
        for _, step in ipairs{ 1, 2, 3, 7, 64, #answer } do
            local state, _, _, p = parse(answer, step)
            assert.are.equal("done", state, "step " .. step)
            local status, body, ra, rem, lim, reset, keep = p:result()
            assert.are.equal(429, status)
            assert.are.equal('{"message":"slow down"}', body)
            assert.are.equal(7, ra)
            assert.are.equal(0, rem)
            assert.are.equal(600, lim)
            assert.is_nil(reset)
            assert.is_true(keep)
        end
    end)

    it("reads an HTTP-date Retry-After, a content-length body, and Connection: close", function()
        local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 30)
        local state, _, _, p = parse("HTTP/1.1 503 Service Unavailable\r\nRetry-After: " .. date
            .. "\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        assert.are.equal("done", state)
        local status, body, ra, _, _, _, keep = p:result()
        assert.are.equal(503, status)
        assert.are.equal("{}", body)
        assert.is_true(ra >= 28 and ra <= 31, tostring(ra))
        assert.is_false(keep)
    end)

    it("skips an interim 100 Continue, and a body that ends at the close", function()
        local state, _, _, p = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
            .. "Connection: close\r\n\r\n{\"data\":1}")
        assert.are.equal("more", state)
        assert.are.equal("done", p:eof())
        local status, body = p:result()
        assert.are.equal(200, status)
        assert.are.equal('{"data":1}', body)
    end)

    it("does not keep a connection that sent bytes after its answer", function()
        local state, _, _, p = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n")
        assert.are.equal("done", state)
        assert.is_false(select(7, p:result()))
    end)

    it("caps bodies at 1 MiB, announced or chunked, keeping the status", function()
        local state, outcome, message, p = parse("HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n")
        assert.is_nil(state)
        assert.are.equal("too_big", outcome)
        assert.truthy(message:find("1 MiB", 1, true))
        assert.are.equal(200, (p:result()))
        local chunk = ("x"):rep(65536)
        local chunked = { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" }
        for i = 2, 18 do chunked[i] = "10000\r\n" .. chunk .. "\r\n" end
        state, outcome = parse(table.concat(chunked), 4096)
        assert.is_nil(state)
        assert.are.equal("too_big", outcome)
        -- exactly 1 MiB is fine
        state = parse("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" .. ("y"):rep(1048576), 65536)
        assert.are.equal("done", state)
    end)

    it("refuses a 100 KB header line as too big, and what is not HTTP as failed", function()
        local state, outcome, message = parse("HTTP/1.1 200 OK\r\nX-Big: " .. ("a"):rep(100000)
            .. "\r\n\r\n{}", 1000)
        assert.is_nil(state)
        assert.are.equal("too_big", outcome)
        assert.truthy(message:find("header", 1, true))
        state, outcome = parse("SSH-2.0-OpenSSH_9.2\r\n")
        assert.is_nil(state)
        assert.are.equal("failed", outcome)
    end)

    it("says reset when the peer closes before or in the middle of an answer", function()
        local p = core.http1_parser()
        local state, outcome, message = p:eof()
        assert.is_nil(state)
        assert.are.equal("reset", outcome)
        assert.truthy(message:find("before any answer", 1, true))
        assert.is_false(p:started())
        local _, _, _, p2 = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
        assert.is_true(p2:started())
        state, outcome = p2:eof()
        assert.is_nil(state)
        assert.are.equal("reset", outcome)
        -- and a parser is reusable after reset()
        p2:reset()
        assert.are.equal("done", p2:feed("HTTP/1.1 204 No Content\r\n\r\n"))
        assert.are.equal(204, (p2:result()))
    end)
end)

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
        local port = H.free_port()
        local conf = assert(H.read_file(H.root .. "/examples/minimal.conf"))
        conf = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
        assert(H.write_file(prefix .. "/minimal.conf", conf))
        H.run("mkdir -p " .. q(prefix .. "/logs"))
        -- the resolver line, as the file's header writes it
        H.run("awk '$1 == \"nameserver\" { print \"resolver \" ($2 ~ /:/ ? \"[\" $2 \"]\" : $2) "
              .. "\" ipv6=off;\"; exit }' /etc/resolv.conf > " .. q(prefix .. "/resolver.conf"))
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
                assert.are.equal(201, status, tostring(body) .. (H.read_file(prefix .. "/logs/error.log") or ""))
                assert.truthy(body:match('"url":"https?://[^"]+/call/%x+"'), body)
                assert.truthy(sb:state()[code_])
                break
            end
            H.sleep(0.05)
        end
        assert.are.equal(201, status)
        -- and a refusal answers as mediquo.ngx.reply says: 400 for the caller's input
        status, body = H.http("POST", url, '{"code":"x"}', nil, { timeout = 10 })
        assert.are.equal(400, status)
        assert.are.equal("invalid_argument", H.json.decode(body).error)
    end)
end)
