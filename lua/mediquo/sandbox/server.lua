-- The sandbox's front door, run by nginx's Lua module: one content handler
-- for every request. For /v1/ it counts the rate limit, applies a queued
-- fault, authenticates, routes, and answers JSON; it also serves /call/ and
-- the /__sandbox/ test controls, and turns nginx's own errors into JSON.

local json = require "mediquo.sandbox.json"
local ratelimit = require "mediquo.sandbox.ratelimit"
local faults = require "mediquo.sandbox.faults"
local reqlog = require "mediquo.sandbox.log"
local appointments = require "mediquo.sandbox.appointments"
local webhooks = require "mediquo.sandbox.webhooks"

local ngx = ngx
local var = ngx.var
local header = ngx.header
local req = ngx.req
local pairs = pairs
local type = type
local tonumber = tonumber
local floor = math.floor
local find, sub, gsub, char, rep, match =
    string.find, string.sub, string.gsub, string.char, string.rep, string.match

local _M = { _VERSION = "0.2.0" }

local DICT_STATE, DICT_CTL, DICT_LOG =
    "mediquo_sandbox_state", "mediquo_sandbox_ctl", "mediquo_sandbox_log"

local credentials = { ["sandbox-key"] = "sandbox-secret" }
local latency, latency_max = 0, 0     -- seconds: each request is held in [min, max]
local seeded = false
local settings = {}

local REASON = {
    [400] = "Bad Request.", [401] = "Unauthenticated.", [403] = "Forbidden.",
    [404] = "Not Found.", [405] = "Method Not Allowed.", [408] = "Request Timeout.",
    [410] = "Gone", [413] = "Payload Too Large.", [414] = "URI Too Long.",
    [429] = "Too Many Attempts.", [500] = "Server Error.", [502] = "Bad Gateway.",
    [503] = "Service Unavailable.", [504] = "Gateway Timeout.",
}

local function reason(status)
    return REASON[status] or ("Sandbox fault: status " .. status .. ".")
end

-- Called once from init_by_lua (master process), so every worker inherits
-- the same configuration and the same token seed.
function _M.init(opts)
    opts = opts or {}
    if opts.credentials then
        credentials = opts.credentials
    end
    latency = (opts.latency_ms or 0) / 1000
    latency_max = math.max(latency, (opts.latency_max_ms or 0) / 1000)
    local seed = opts.seed
    if not seed then
        local f = io.open("/dev/urandom", "rb")
        local bytes = f and f:read(16) or tostring(os.time())
        if f then
            f:close()
        end
        seed = ngx.md5(bytes .. tostring({}))
    end
    settings = {
        per_minute = opts.per_minute or 600, window = opts.window or 60,
        latency_ms = opts.latency_ms or 0, latency_max_ms = floor(latency_max * 1000 + 0.5),
        sliding = opts.sliding and true or false, workers = opts.workers,
    }
    ratelimit.configure(DICT_CTL, settings.per_minute, settings.window, settings.sliding)
    faults.configure(DICT_CTL)
    reqlog.configure(DICT_LOG)
    appointments.configure(DICT_STATE, DICT_CTL, seed)
    webhooks.configure(DICT_STATE, DICT_CTL, opts.webhooks)
end

local function unhex(h)
    return char(tonumber(h, 16))
end

-- Exactly one decoding pass: "%252F" becomes "%2F", never "/".
local function percent_decode(s)
    return (gsub(s, "%%(%x%x)", unhex))
end

local function log_request(ctx, status)
    reqlog.add({
        method = ctx.method, path = ctx.uri, status = status,
        api_key = var.http_x_api_key, secret_ok = ctx.secret_ok,
        user_agent = var.http_user_agent, content_type = var.http_content_type,
        accept = var.http_accept, fault = ctx.fault, time = ngx.now(),
        worker = ngx.worker.pid(),
    })
end

-- Every answer goes through here: JSON type, rate-limit headers, an exact
-- Content-Length (so keep-alive clients never see chunked JSON), the log.
local function send(ctx, status, body, headers)
    ngx.status = status
    header["Content-Type"] = "application/json"
    header["x-ratelimit-limit"] = ctx.limit
    header["x-ratelimit-remaining"] = ctx.remaining
    header["x-sandbox-worker"] = ngx.worker.pid()
    if headers then
        for k, v in pairs(headers) do
            header[k] = v
        end
    end
    if type(body) ~= "string" then
        body = json.encode(body)
    end
    header["Content-Length"] = #body
    ngx.print(body)
    if ctx.log then
        log_request(ctx, status)
    end
end

local function read_body()
    req.read_body()
    local body = req.get_body_data()
    if body then
        return body
    end
    -- Bodies that nginx spooled to a file (larger than the buffer).
    local name = req.get_body_file()
    if not name then
        return nil
    end
    local f = io.open(name, "rb")
    if not f then
        return nil
    end
    body = f:read("*a")
    f:close()
    return body
end

local function method_not_allowed(allow)
    return 405, { message = reason(405) }, { Allow = allow }
end

-- Auth, then route, then body: the order a framework's middleware gives.
local function process(ctx, path)
    local key, secret = var.http_x_api_key, var.http_x_secret_key
    if secret and secret ~= "" then
        ctx.secret_ok = key ~= nil and credentials[key] == secret
    end
    if not key or key == "" or not secret or secret == "" then
        return 401, { message = reason(401) }
    end
    if not ctx.secret_ok then
        return 403, { message = reason(403) }
    end

    local method = ctx.method
    local base = var.scheme .. "://" .. (var.http_host or ("127.0.0.1:" .. var.server_port))
                 .. "/call/"
    if path == "/v1/appointments" then
        if method ~= "POST" then
            return method_not_allowed("POST")
        end
        local status, body = appointments.create(read_body(), base)
        if status == 200 then
            webhooks.emit("created", appointments.get(body.data.appointment.code))
        end
        return status, body
    end
    local wid = match(path, "^/v1/organizations/webhooks/?([^/]*)$")
    if wid then
        return webhooks.route(method, wid ~= "" and percent_decode(wid) or nil, read_body())
    end
    local code = match(path, "^/v1/appointments/([^/]+)$")
    if not code then
        return 404, { message = reason(404) }
    end
    code = percent_decode(code)
    if method == "PUT" or method == "DELETE" then
        local prev = appointments.get(code)
        local status, body
        if method == "PUT" then
            status, body = appointments.reschedule(code, read_body(), base)
        else
            status, body = appointments.cancel(code)
        end
        if status == 200 then
            webhooks.emit(method == "PUT" and "rescheduled" or "cancelled",
                          appointments.get(code), method == "PUT" and prev or nil)
        end
        return status, body
    end
    return method_not_allowed("PUT, DELETE")
end

local function send_huge(ctx, bytes)
    ngx.status = 200
    header["Content-Type"] = "application/json"
    header["x-ratelimit-limit"] = ctx.limit
    header["x-ratelimit-remaining"] = ctx.remaining
    header["Content-Length"] = bytes
    log_request(ctx, 200)
    -- Valid JSON when there is room for it, streamed in 64 KiB pieces so a
    -- gigabyte never sits in the worker's memory.
    local head, tail = '{"data":{"pad":"', '"}}'
    if bytes < #head + #tail then
        head, tail = "", ""
    end
    ngx.print(head)
    local left = bytes - #head - #tail
    local chunk = rep("x", 65536)
    while left > 0 do
        if left < 65536 then
            chunk = rep("x", left)
        end
        ngx.print(chunk)
        left = left - #chunk
        local ok = ngx.flush(true)
        if not ok then
            return ngx.exit(444)
        end
    end
    ngx.print(tail)
end

-- Answers that replace processing. Returns true when the request is done.
local function apply_fault(ctx, f)
    local mode = f.mode
    ctx.fault = mode
    if mode == "status" then
        send(ctx, f.status, { message = reason(f.status) })
    elseif mode == "reset" then
        log_request(ctx, 444)
        ngx.exit(444)
    elseif mode == "garbage" then
        send(ctx, 200, "<html><body>Sandbox garbage: this is not JSON</body></html>")
    elseif mode == "truncate" then
        -- Promise more than is sent, then drop the connection: the client
        -- sees a short read, as from a proxy dying mid-answer.
        local part = '{"data":{"appointment":{"code":"'
        ngx.status = 200
        header["Content-Type"] = "application/json"
        header["x-ratelimit-limit"] = ctx.limit
        header["x-ratelimit-remaining"] = ctx.remaining
        header["Content-Length"] = 1000
        log_request(ctx, 200)
        ngx.print(part)
        ngx.flush(true)
        ngx.exit(444)
    elseif mode == "huge" then
        send_huge(ctx, f.bytes)
    elseif mode == "ratelimit" then
        ctx.remaining = 0
        local h
        if f.seconds then
            local until_ = ngx.time() + f.seconds
            -- Retry-After may also be an HTTP-date (RFC 9110); clients must
            -- read both forms.
            h = { ["Retry-After"] = f.http_date and ngx.http_time(until_) or f.seconds,
                  ["x-ratelimit-reset"] = until_ }
        end
        send(ctx, 429, { message = reason(429) }, h)
    else
        return false
    end
    return true
end

-- The transit time of one request: --latency-ms, fixed or drawn uniformly
-- from MIN-MAX (each worker its own random sequence).
local function transit()
    if latency_max <= latency then
        return latency
    end
    if not seeded then
        math.randomseed(ngx.worker.pid() * 7919 + floor(ngx.now() * 1000) % 100003)
        seeded = true
    end
    return latency + math.random() * (latency_max - latency)
end

local function api(ctx, path)
    -- held for its transit time first: the window counts a request when it
    -- arrives, so requests sent in order may be counted out of order
    local hold = transit()
    if hold > 0 then
        ngx.sleep(hold)
    end
    local limit, remaining, retry_after, reset = ratelimit.hit(ctx.ip)
    ctx.limit, ctx.remaining = limit, remaining
    if retry_after then
        -- Over the limit: answered, logged, and nothing else happens.
        return send(ctx, 429, { message = reason(429) },
                    { ["Retry-After"] = retry_after, ["x-ratelimit-reset"] = reset })
    end

    local f = faults.pop()
    if f then
        if apply_fault(ctx, f) then
            return
        end
        if f.mode == "delay" and f.process ~= "after" then
            ngx.sleep(f.ms / 1000)
        end
    end

    local status, body, headers = process(ctx, path)

    if f then
        if f.mode == "after" then
            return send(ctx, f.status, { message = reason(f.status) })
        elseif f.mode == "delay" and f.process == "after" then
            ngx.sleep(f.ms / 1000)
        end
    end
    return send(ctx, status, body, headers)
end

local function loopback(ip)
    return sub(ip, 1, 4) == "127." or ip == "::1"
end

local function controls(ctx, path)
    ctx.log = false
    ctx.limit, ctx.remaining = ratelimit.peek(ctx.ip)
    if not loopback(ctx.ip) then
        return send(ctx, 403, { message = reason(403) })
    end
    local method = ctx.method
    local what = sub(path, 12)
    local code, done = match(what, "^appointments/([^/]+)/([%w_]+)$")
    if done == "finish" or done == "no_show" then
        if method ~= "POST" then
            return send(ctx, method_not_allowed("POST"))
        end
        local rec, status, answer = appointments.close(percent_decode(code),
                                                        done == "finish" and "finished" or "no_show")
        if not rec then
            return send(ctx, status, answer)
        end
        local n = webhooks.emit(done == "finish" and "finished" or "no_show", rec)
        return send(ctx, 200, { message = "Appointment " .. rec.status, deliveries = n })
    end
    if what == "deliveries" then
        if method ~= "GET" then
            return send(ctx, method_not_allowed("GET"))
        end
        local list = webhooks.deliveries()
        return send(ctx, 200, #list == 0 and "[]" or json.encode(list))
    end
    if what == "appointments" or what == "log" or what == "ping" then
        if method ~= "GET" then
            return send(ctx, method_not_allowed("GET"))
        end
        if what == "appointments" then
            return send(ctx, 200, appointments.dump())
        elseif what == "ping" then
            return send(ctx, 200, { ok = true, settings = settings,
                                    faults_pending = faults.pending() })
        end
        local entries = reqlog.list()
        return send(ctx, 200, #entries == 0 and "[]" or json.encode(entries))
    elseif what == "reset" or what == "faults" then
        if method ~= "POST" then
            return send(ctx, method_not_allowed("POST"))
        end
        if what == "reset" then
            for _, name in pairs({ DICT_STATE, DICT_CTL, DICT_LOG }) do
                ngx.shared[name]:flush_all()
                ngx.shared[name]:flush_expired()
            end
            return send(ctx, 200, { message = "Sandbox reset" })
        end
        local f, msg = json.decode_body(read_body())
        if not f then
            return send(ctx, 422, { message = "The given data was invalid.",
                                    errors = { body = { msg } } })
        end
        local n, errors = faults.push(f)
        if not n then
            return send(ctx, 422, { message = "The given data was invalid.",
                                    errors = errors })
        end
        return send(ctx, 200, { queued = n })
    end
    return send(ctx, 404, { message = reason(404) })
end

local function new_ctx(method)
    local uri = var.request_uri or ""
    local q = find(uri, "?", 1, true)
    return {
        uri = uri, method = method or req.get_method(), ip = var.remote_addr, log = true,
    }, q and sub(uri, 1, q - 1) or uri
end

-- content_by_lua entry point for location /.
function _M.handle()
    local ctx, path = new_ctx()
    if sub(path, 1, 4) == "/v1/" or path == "/v1" then
        return api(ctx, path)
    end
    ctx.limit, ctx.remaining = ratelimit.peek(ctx.ip)
    if sub(path, 1, 6) == "/call/" then
        if ctx.method ~= "GET" and ctx.method ~= "HEAD" then
            return send(ctx, method_not_allowed("GET"))
        end
        return send(ctx, appointments.call(sub(path, 7)))
    end
    if sub(path, 1, 11) == "/__sandbox/" then
        return controls(ctx, path)
    end
    return send(ctx, 404, { message = reason(404) })
end

-- content_by_lua entry point for the error_page location: nginx refused the
-- request itself (body over client_max_body_size, bad request line...).
-- A /v1/ request still counts, and still gets a JSON answer.
function _M.nginx_error()
    local status = ngx.status
    if not status or status < 400 then
        status = 500
    end
    -- error_page redirects turn the method into GET; the request line keeps it.
    local ctx, path = new_ctx(match(var.request or "", "^(%S+)"))
    if sub(path, 1, 4) == "/v1/" or path == "/v1" then
        local limit, remaining, retry_after, reset = ratelimit.hit(ctx.ip)
        ctx.limit, ctx.remaining = limit, remaining
        if retry_after then
            return send(ctx, 429, { message = reason(429) },
                        { ["Retry-After"] = retry_after, ["x-ratelimit-reset"] = reset })
        end
    else
        ctx.limit, ctx.remaining = ratelimit.peek(ctx.ip)
    end
    return send(ctx, status, { message = reason(status) })
end

return _M
