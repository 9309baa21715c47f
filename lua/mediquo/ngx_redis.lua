-- mediquo.ngx_redis: the Redis round trip of the shared limiter inside
-- nginx, on a cosocket: no thread, no blocking of the event loop. It only
-- moves bytes. The C core decides what to ask (limiter:redis_begin), and
-- its conversation (src/redis_conv.c, the one the blocking path uses too)
-- says where to connect, what to send and what the answer means
-- (limiter:redis_finish applies it). Connections go to nginx's keepalive
-- pool; TLS is nginx's (sslhandshake, verified against
-- lua_ssl_trusted_certificate; an IP literal's IP SAN checked by
-- mediquo.ngx_tls, as for the API).
--
--   local ok, wait, at = require("mediquo.ngx_redis").try(lim, budget, url)
--
-- lim is a core.limiter opened with redis_cosocket = true; try() has the
-- contract of lim:try() (true, at | false, seconds to wait [, fault: a
-- host fault, kind config: a state file, or Redis refusing the setup:
-- AUTH, a certificate]) and never takes longer than budget seconds. A
-- limiter without Redis is tried as is. Under load a lease is asked for
-- again before it is spent, from a timer (_M.ahead, below).
--
--   require("mediquo.ngx_redis").check(lim, url)   -- start-up check
--
-- makes one round trip at once and logs a setup fault at `error` (for
-- init_worker, from a 0-delay timer: before any traffic).

local ngx = ngx
local format = string.format
local find = string.find
local tostring = tostring
local io_open = io.open
local ngx_log = require "mediquo.ngx_log"
local handshake = require("mediquo.ngx_tls").handshake
local connect_named = require("mediquo.ngx_connect").connect

local _M = { _VERSION = require("mediquo.core")._VERSION }

local POOL_SIZE = 16
local IDLE_MS = 30000

-- client certificates (redis_tls.cert_file / key_file), parsed once per worker
local certs = {}
local function client_cert(t)
    local c = certs[t.cert_file .. "\0" .. t.key_file]
    if c then return c end
    local ok, ssl = pcall(require, "ngx.ssl")
    if not ok then return nil, "ngx.ssl (lua-resty-core) is missing: no client certificate" end
    local pems = {}
    for i, path in ipairs{ t.cert_file, t.key_file } do
        local f, err = io_open(path, "rb")
        if not f then return nil, format("cannot read %s (%s)", path, tostring(err)) end
        pems[i] = f:read("*a")
        f:close()
    end
    local cert, cerr = ssl.parse_pem_cert(pems[1])
    if not cert then return nil, format("%s: %s", t.cert_file, tostring(cerr)) end
    local key, kerr = ssl.parse_pem_priv_key(pems[2])
    if not key then return nil, format("%s: %s", t.key_file, tostring(kerr)) end
    c = { cert, key }
    certs[t.cert_file .. "\0" .. t.key_file] = c
    return c
end

-- a failed handshake: a setup fault (a certificate, a protocol) or an
-- outage; expected: the name or address the certificate must be for
local function tls_fault(err, expected, bad_ip)
    err = tostring(err)
    if bad_ip or find(err, "host mismatch", 1, true) then
        return format("TLS certificate check failed: the certificate is not for %s (%s; "
                      .. "redis_tls.server_name names the name it is for)", expected, err), true
    end
    if err == "timeout" or err == "closed" or find(err, "reset", 1, true) then
        return "TLS handshake: " .. err, false
    end
    if find(err, "certificate", 1, true) or find(err, "verify", 1, true) then
        return format("TLS certificate check failed: %s (nginx checks it against "
                      .. "lua_ssl_trusted_certificate: set that directive to the CA file "
                      .. "that signed the Redis certificate, and lua_ssl_verify_depth to "
                      .. "its chain's length)", err), true
    end
    return "TLS handshake failed: " .. err .. " (a TLS port? a server that wants a client "
        .. "certificate: redis_tls.cert_file and key_file; nginx logs OpenSSL's reason just "
        .. "before this line)", true
end

-- where a cosocket connects for host: an IPv6 literal in brackets (nginx
-- takes "::1" for a host "" and a port ":1"), localhost as 127.0.0.1 (no
-- resolver needed, as for the API), and whether it is a name nginx's
-- resolver is asked for (its time then bounded: mediquo.ngx_connect)
local function cosocket_host(host)
    if host == "localhost" then return "127.0.0.1", false end
    if find(host, ":", 1, true) then return "[" .. host .. "]", false end
    return host, not find(host, "^%d+%.%d+%.%d+%.%d+$")
end

-- the conversation's "connect": a pooled connection (TLS made on a new one)
local function connect(conv, url, ms)
    local t = conv:target()
    local sock = ngx.socket.tcp()
    sock:settimeouts(ms, ms, ms)
    -- one pool per node and URL (credentials included), named without them
    local pool = format("mediquo-redis:%s:%d#%d", t.path or t.host, t.port, ngx.crc32_long(url))
    local ok, err
    if t.tls and t.cert_file then
        local c, cerr = client_cert(t)
        if not c then return nil, conv:fault(nil, "TLS client certificate: " .. cerr, true) end
        ok, err = sock:setclientcert(c[1], c[2])
        if not ok then return nil, conv:fault(nil, "TLS client certificate: " .. tostring(err), true) end
    end
    local unresolved                -- a name not resolved in time: why
    if t.path then
        ok, err = sock:connect("unix:" .. t.path, { pool = pool })
    else
        local host, named = cosocket_host(t.host)
        if named then
            -- a name: its resolution ends within the round trip's time too
            ok, err, unresolved = connect_named(sock, host, t.port, { pool = pool }, ms / 1000,
                                                t.where or (t.host .. ":" .. t.port))
        else
            ok, err = sock:connect(host, t.port, { pool = pool })
        end
    end
    if not ok then return nil, conv:fault("connect", unresolved or tostring(err), false) end
    local reused = sock:getreusedtimes() > 0
    if t.tls and not reused then
        -- a name is sent as SNI and checked by nginx; an IP literal (no
        -- server_name set) is checked against the certificate's IP SANs
        local ip = t.verify and not t.server_name and t.host or nil
        local hok, herr, bad_ip = handshake(sock, t.server_name, ip, t.verify)
        if not hok then
            sock:close()
            local why, setup = tls_fault(herr, t.server_name or ip, bad_ip)
            return nil, conv:fault(nil, why, setup)
        end
    end
    local act, x = conv:connected(reused)
    -- a new TLS connection without a client certificate: see io_fault
    return sock, act, x, t.tls and not reused and not t.cert_file
end

-- TLS 1.3: a server that wants a client certificate says so after our
-- handshake ended, and its alert is lost when it resets the connection
-- under our first request (as redis_conn.c reads it too)
local CERT_WANTED = "the server closed the connection right after the TLS handshake, before "
    .. "any answer: does it require a client certificate (redis_tls.cert_file and key_file)?"
local function io_fault(conv, doing, err, bare_tls)
    if bare_tls and err ~= "timeout" then return conv:fault(nil, CERT_WANTED, true) end
    return conv:fault(doing, tostring(err), false)
end

-- one round trip, as the conversation says: the conversation, done
local function round_trip(conv, url, tmo)
    local ms = tmo * 1000
    if ms < 1 then ms = 1 end
    local sock, act, x, bare_tls = connect(conv, url, ms)
    for _ = 1, 1000 do
        if act == "send" then
            local ok, err = sock:send(x)
            if ok then act, x = conv:sent() else act, x = io_fault(conv, "send", err, bare_tls) end
        elseif act == "recv" then
            local data, err = sock:receiveany(65536)
            if data then
                bare_tls = false            -- it answered
                act, x = conv:feed(data)
            else
                act, x = io_fault(conv, "read", err, bare_tls)
            end
        elseif act == "connect" then
            if sock then sock:close() end
            sock, act, x, bare_tls = connect(conv, url, ms)
        else                        -- "done": x, keep the connection
            break
        end
    end
    return sock, x
end

-- one round trip of conv, the connection kept or closed; then its verdict
-- applied -> what lim:redis_finish answers, and why the exchange failed
-- (conv:message(), nil when it did not)
local function exchange(lim, conv, url, tmo)
    local sock, keep = round_trip(conv, url, tmo)
    if sock then
        if keep then sock:setkeepalive(IDLE_MS, POOL_SIZE) else sock:close() end
    end
    local why = conv:message()
    local st, a, fault = lim:redis_finish(conv)
    conv:close()
    return st, a, fault, why
end

-- Asking ahead (lim:redis_begin's 3): a lease grown under demand with half
-- of it left, or less than 4 ms of it at its rate (limiter_redis.c,
-- ahead_due), is asked for again before it is spent, by the call that took
-- a slot of it, from a 0-delay timer: no call waits for that round trip
-- (under load, in the bench: 14% of /book calls waited ~1 ms for the next
-- lease without it, 0.1-0.3% with it). Off: every lease is asked for when
-- it is spent (a spec's control).
_M.ahead = true

local function ahead_timer(premature, lim, conv, url, tmo)
    -- the worker is exiting: no round trip (a failed one would mark Redis
    -- down for the whole host); the others ask when busy_until has passed
    if premature then return conv:close() end
    exchange(lim, conv, url, tmo)               -- what it says is for the next calls
end

-- try(lim, budget, url) -> true, at | false, wait [, fault] (url: the
-- limiter's rate_limit.redis, nil for a limiter without Redis)
function _M.try(lim, budget, url)
    if not url then
        return lim:try()
    end
    local st, a, b, c = lim:redis_begin(budget, _M.ahead)
    if st == 1 then return true, a end
    if st == 0 then return false, a, b end      -- b: a fault, or nil
    if st == 3 then                             -- admitted (a); the round trip ahead: b, c
        -- without a timer (too many pending): made here, this call after it
        if not ngx.timer.at(0, ahead_timer, lim, b, url, c) then exchange(lim, b, url, c) end
        return true, a
    end
    local fault
    st, a, fault = exchange(lim, a, url, b)
    if st == 1 then return true, a end
    return false, a, fault
end

-- log_fault(msg): a setup fault at `error`, once per worker per cause,
-- then at most once a minute (mediquo.ngx_log)
function _M.log_fault(msg)
    ngx_log.fault(msg, "mediquo.ngx: rate_limit: ", msg)
end

-- check(lim, url) -> true | false, why: the start-up check, one round
-- trip now asking for no slot (it registers the host and proves AUTH,
-- TLS and the script); a failure is logged at error before any traffic
-- comes (a setup fault: every call fails config until it is fixed; an
-- outage: the host runs on its fallback share meanwhile)
function _M.check(lim, url)
    local st, conv, tmo = lim:redis_contact()
    if st == 0 then return true end             -- another process is asking now
    local why
    if st == 2 then
        why = select(4, exchange(lim, conv, url, tmo))
    else
        why = conv                              -- st == 1: refused lately, the cause
    end
    if not why then return true end
    _M.log_fault(why)
    return false, why
end

return _M
