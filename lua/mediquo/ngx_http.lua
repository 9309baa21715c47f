-- mediquo.ngx_http: the nginx driver's I/O -- one HTTP/1.1 attempt over
-- nginx's own non-blocking sockets (cosockets), nothing else: no policy,
-- no retries, no re-sends. The request bytes are written and the answer is
-- read in C (core.http1, core.http1_parser: Debian's http-parser).
--
--   local http = require "mediquo.ngx_http"
--   local t = http.new{ scheme =, host =, port =, api_key =, secret_key =,
--                       user_agent =, insecure =, ca_file = }
--   local head, body, timeout, cto = call:request_head(t.w)
--   local outcome, p, status = t:attempt(head, body, timeout, cto[, t0])
--   if outcome == "ok" then call:answer(p, now); http.release(p) end
--
-- "ok": p is the core.http1_parser holding the complete answer, which the
-- engine reads in C (call:answer: no body string, no table); give it back
-- with http.release(p) once read. Else p is the message (why) and status
-- the answer's status when there was one (too_big).
--
-- outcome is the engine's vocabulary: ok, connect, connect_timeout, tls,
-- timeout, reset, too_big, failed -- or "config" when nginx lacks a
-- directive this needs (message names it). A connection from the
-- keep-alive pool that dies before any byte of the answer is "reset": the
-- request may have been processed, and it is never sent again here.

local core = require "mediquo.core"
local connect_named = require("mediquo.ngx_connect").connect
local handshake = require("mediquo.ngx_tls").handshake

local ngx = ngx
local setmetatable = setmetatable
local tostring = tostring
local find = string.find
local max = math.max
local floor = math.floor
local now = require("mediquo.ngx_clock")

local _M = { _VERSION = core._VERSION }
local T = {}
local mt = { __index = T }

local POOL_SIZE = 64        -- kept-alive connections per worker and upstream
local IDLE_MS = 30000       -- as the libcurl driver's reuse limit (30 s)
local READ_MAX = 65536

-- a parser per attempt in flight (attempts interleave in one worker); the
-- ones done are kept for the next attempts
local spare = {}

local function parser()
    local n = #spare
    if n > 0 then
        local p = spare[n]
        spare[n] = nil
        p:reset()
        return p
    end
    return core.http1_parser()
end

local function release(p)
    if #spare < 256 then spare[#spare + 1] = p end
end
_M.release = release

local function ms(s)
    return max(1, floor(s * 1000 + 0.5))
end

-- new(o) -> transport | nil, message (o as described above)
function _M.new(o)
    local w, msg = core.http1{
        api_key = o.api_key, secret_key = o.secret_key, user_agent = o.user_agent,
        host = ((o.scheme == "https" and o.port == 443) or (o.scheme == "http" and o.port == 80))
               and o.host or (o.host .. ":" .. o.port),
    }
    if not w then return nil, msg end
    local host = o.host
    -- nginx resolves names only through its `resolver`; the loopback
    -- names need none
    local addr = host
    if host == "localhost" then
        addr = "127.0.0.1"
    elseif host:sub(1, 1) == "[" then
        addr = host
    end
    local tls = o.scheme == "https"
    local ip = host:find("^%d+%.%d+%.%d+%.%d+$") or host:sub(1, 1) == "["
    local verify = tls and not o.insecure
    return setmetatable({
        w = w, addr = addr, port = o.port, tls = tls, verify = verify,
        -- SNI and the host-name check, for a name; an IP literal gets no
        -- SNI (RFC 6066: SNI carries names only) and its own check, an IP
        -- SAN of the peer's certificate (mediquo.ngx_tls)
        sni = tls and not ip and host or nil,
        ip = tls and verify and ip and (host:match("^%[(.*)%]$") or host) or nil,
        ca_file = o.ca_file,
        where = host .. ":" .. o.port,
        named = not ip and addr ~= "127.0.0.1",    -- nginx's resolver is asked
        -- one pool per upstream and TLS setting: a verified connection is
        -- never handed to an unverified configuration or the reverse
        pool = { pool = ("mediquo:%s:%d:%s"):format(addr, o.port,
                                                    tls and (verify and "tls" or "tls-noverify") or "tcp"),
                 pool_size = POOL_SIZE },
    }, mt)
end

-- What a failed TLS handshake means. X509 error 20 ("unable to get local
-- issuer certificate") is what every certificate gives when nginx has no
-- trust store for Lua sockets (lua_ssl_trusted_certificate missing): the
-- host's setup. A store that does not trust this server gives 21, 19 or
-- 18: a certificate problem (network, like the blocking client). A store
-- that lacks the root of a chain the server sends also gives 20.
local function tls_failure(t, err)
    err = tostring(err)
    local code = tonumber(err:match("^(%d+):"))
    if code == 20 then
        return "config", ("TLS: the server's certificate is not trusted (%s): mediquo.ngx verifies "
            .. "with nginx's trust store: set lua_ssl_trusted_certificate %s; and "
            .. "lua_ssl_verify_depth 5; in the http block"):format(err,
            t.ca_file or "/etc/ssl/certs/ca-certificates.crt")
    end
    if code == 22 then
        return "config", ("TLS: the certificate chain is longer than nginx allows (%s): "
            .. "set lua_ssl_verify_depth 5; in the http block"):format(err)
    end
    if code then
        -- no path here: this message may reach an HTTP client
        return "tls", "TLS: certificate verify failed (" .. err .. "; nginx verifies with the "
                      .. "CA bundle of lua_ssl_trusted_certificate)"
    end
    return "tls", "TLS handshake failed: " .. err
end

-- an attempt with no answer to give (or an answer refused)
local function give_up(sock, p, outcome, message, status)
    sock:close()
    if p then release(p) end
    return outcome, message, status
end

-- the request as sock:send takes it: the head in two strings and the body
-- (the whole request as one more Lua string cost a copy and its interning
-- per request; the head without its length is the same string for every
-- create). One table for every attempt of the worker: filled just before
-- sock:send, which copies the strings into nginx's buffer before it can
-- yield, and emptied right after
local req = {}

-- t:attempt(head, body|nil, timeout, connect_timeout[, t0]) -> "ok", p |
-- outcome, message[, status] (see above). t0: when the attempt's timeout
-- starts (core.now's clock), the caller's last reading of it; now when nil
function T.attempt(t, head, body, timeout, connect_timeout, t0)
    t0 = t0 or now()
    local sock = ngx.socket.tcp()
    local cto = connect_timeout < timeout and connect_timeout or timeout
    -- io_ms: the send and read timeouts set; set again below only when
    -- what is left of the attempt's timeout rounds to another value
    local io_ms = ms(timeout)
    sock:settimeouts(ms(cto), io_ms, io_ms)
    local ok, err, why
    if t.named then     -- a name: its resolution counts against the limit too
        ok, err, why = connect_named(sock, t.addr, t.port, t.pool, cto, t.where)
    else
        ok, err = sock:connect(t.addr, t.port, t.pool)
    end
    if not ok then
        err = tostring(err)
        sock:close()
        if why then return "connect", why end
        if err == "timeout" then
            return "connect_timeout",
                   ("could not connect to %s within %.3gs"):format(t.where, cto)
        end
        if find(err, "no resolver defined", 1, true) then
            return "config",
                   ("cannot resolve %s: nginx has no resolver for Lua sockets: add "
                    .. "`resolver <your DNS server>;` to the http block"):format(t.where)
        end
        return "connect", ("cannot connect to %s: %s"):format(t.where, err)
    end
    if t.tls and sock:getreusedtimes() == 0 then
        local left = cto - (now() - t0)
        if left <= 0 then
            return give_up(sock, nil, "connect_timeout",
                           ("TLS handshake with %s not done within %.3gs"):format(t.where, cto))
        end
        io_ms = ms(left)
        sock:settimeouts(io_ms, io_ms, io_ms)
        local hok, herr, bad_ip = handshake(sock, t.sni, t.ip, t.verify)
        if not hok then
            if bad_ip then
                return give_up(sock, nil, "tls", "TLS: certificate verify failed (" .. herr .. ")")
            end
            if herr == "timeout" then
                return give_up(sock, nil, "connect_timeout",
                               ("TLS handshake with %s not done within %.3gs"):format(t.where, cto))
            end
            local outcome, message = tls_failure(t, herr)
            return give_up(sock, nil, outcome, message)
        end
    end

    local left = timeout - (now() - t0)
    if left <= 0 then
        return give_up(sock, nil, "connect_timeout",
                       ("no time left to send within %.3gs"):format(timeout))
    end
    if ms(left) ~= io_ms then
        io_ms = ms(left)
        sock:settimeouts(io_ms, io_ms, io_ms)
    end
    req[1], req[2] = head, body
    local sent, serr = sock:send(req)
    req[1], req[2] = nil, nil
    if not sent then
        -- part of it may have left: the server may act on it
        if serr == "timeout" then
            return give_up(sock, nil, "timeout", ("sending timed out after %.3gs"):format(timeout))
        end
        return give_up(sock, nil, "reset", "connection lost while sending: " .. tostring(serr))
    end

    local p, keep, done = parser(), false, false
    for _ = 1, 1e6 do       -- bounded by the timeout; the count is a backstop
        left = timeout - (now() - t0)
        if left <= 0 then
            return give_up(sock, p, "timeout", ("no complete answer within %.3gs"):format(timeout))
        end
        if ms(left) ~= io_ms then
            io_ms = ms(left)
            sock:settimeouts(io_ms, io_ms, io_ms)
        end
        local data, rerr = sock:receiveany(READ_MAX)
        local state, outcome, message
        if data then
            state, outcome, message = p:feed(data)
            keep = outcome == true          -- "done", keepalive
        elseif rerr == "timeout" then
            return give_up(sock, p, "timeout", ("no complete answer within %.3gs"):format(timeout))
        elseif rerr == "closed" then
            state, outcome, message = p:eof()
        else
            return give_up(sock, p, "reset", "connection lost while reading the answer: "
                                             .. tostring(rerr))
        end
        if state == "done" then
            done = true
            break
        end
        if not state then
            local status = outcome == "too_big" and (p:result()) or nil
            return give_up(sock, p, outcome, message, status)
        end
    end
    if not done then
        return give_up(sock, p, "timeout", ("no complete answer within %.3gs"):format(timeout))
    end
    if keep then
        local kok = sock:setkeepalive(IDLE_MS, POOL_SIZE)
        if not kok then sock:close() end
    else
        sock:close()
    end
    return "ok", p
end

return _M
