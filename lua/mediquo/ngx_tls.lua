-- mediquo.ngx_tls: the TLS handshake of a cosocket, with the peer's
-- identity checked as the blocking clients check it (curl for the API,
-- src/redis_tls.c for Redis): a name by lua-nginx-module (SNI, then
-- X509_check_host), an IP literal against the certificate's IP SANs.
-- Shared by the API's transport (mediquo.ngx_http) and the Redis byte
-- mover (mediquo.ngx_redis); each says what a failure means for it.
--
--   local tls = require "mediquo.ngx_tls"
--   local ok, err, bad_ip = tls.handshake(sock, name, ip, verify)
--
-- name: SNI and the name checked (nil for an IP literal: RFC 6066 allows
-- names only in SNI); ip: the address the certificate must hold as an IP
-- SAN (nil for a name, or when not verifying). -> true | nil, err, bad_ip:
-- err is lua-nginx-module's reason ("timeout", "20: unable to get local
-- issuer certificate", "certificate host mismatch"...); bad_ip is true when
-- the chain was trusted but the certificate holds no IP SAN equal to ip.

local pcall = pcall
local require = require
local select = select
local type = type

local _M = { _VERSION = require("mediquo.core")._VERSION }

-- The refusal lua-nginx-module recorded for this socket's handshake
-- ("20: unable to get local issuer certificate"), read through the same
-- FFI call resty.core's sslhandshake makes when it had to wait.
local ffi_result
local function handshake_error(sock)
    if ffi_result == nil then
        ffi_result = false
        local ok, ffi = pcall(require, "ffi")
        local ok2, base = pcall(require, "resty.core.base")
        if ok and ok2 and pcall(require, "resty.core.socket") then
            local errmsg, code, sess = ffi.new("char *[1]"), ffi.new("int[1]"), ffi.new("void *[1]")
            local C = ffi.C
            ffi_result = function(s)
                local rc = C.ngx_http_lua_ffi_socket_tcp_get_sslhandshake_result(
                    base.get_request(), s[1], sess, errmsg, code)
                if rc == base.FFI_OK or errmsg[0] == nil then return nil end
                local m = ffi.string(errmsg[0])
                return code[0] ~= 0 and (code[0] .. ": " .. m) or m
            end
        end
    end
    local why = ffi_result and select(2, pcall(ffi_result, sock))
    return type(why) == "string" and why or "certificate verify failed (see nginx's error.log)"
end

-- The peer's identity for an IP literal: lua-nginx-module checks a name
-- only when given one (it sends it as SNI too, which an IP may not be),
-- and nginx's ngx_ssl_check_host (X509_check_host) matches DNS names only:
-- a certificate with only `IP:127.0.0.1` answers "certificate host
-- mismatch" for the name "127.0.0.1". So the handshake keeps its session,
-- and the certificate in it (SSL_SESSION_get0_peer) must hold an IP SAN
-- equal to the address (X509_check_ip_asc, OpenSSL's own matcher; both
-- resolve in nginx, which links libssl and libcrypto). -> nil when it
-- matches, else why not.
local ip_ffi
local function check_ip(sess, ip)
    if ip_ffi == nil then
        ip_ffi = false
        local ok, ffi = pcall(require, "ffi")
        if ok then
            -- one at a time: another module may have declared either
            -- already (a redefinition raises), which is as good
            pcall(ffi.cdef, "typedef struct x509_st mediquo_x509;")
            pcall(ffi.cdef, "mediquo_x509 *SSL_SESSION_get0_peer(void *s);")
            pcall(ffi.cdef, "int X509_check_ip_asc(mediquo_x509 *x, const char *address, unsigned int flags);")
            local C = ffi.C
            if pcall(function() return C.SSL_SESSION_get0_peer, C.X509_check_ip_asc end) then
                ip_ffi = ffi
            end
        end
    end
    if not ip_ffi then
        return "cannot read the peer certificate (no FFI) to check the IP address " .. ip
    end
    if type(sess) ~= "cdata" or sess == nil then     -- a NULL pointer equals nil
        return "no TLS session to check the IP address " .. ip .. " against"
    end
    local ok, x = pcall(ip_ffi.C.SSL_SESSION_get0_peer, sess)
    if not ok or x == nil then
        return "the server sent no certificate for " .. ip
    end
    local rc
    ok, rc = pcall(ip_ffi.C.X509_check_ip_asc, x, ip, 0)
    if ok and rc == 1 then return nil end
    return ("no alternative certificate subject name matches target IP address '%s'"):format(ip)
end

-- handshake(sock, name, ip, verify) -> true | nil, err, bad_ip (above)
function _M.handshake(sock, name, ip, verify)
    -- an IP literal keeps the session, for its certificate (check_ip);
    -- resty.core asserts when the handshake failed at once: pcall
    local hok, sess, herr = pcall(sock.sslhandshake, sock, ip == nil and false or nil, name, verify)
    if not hok then sess, herr = nil, handshake_error(sock) end
    if sess and verify and not sock:getreusedtimes() then
        -- lua-nginx-module 0.10.23 (Debian 12) answers true when the
        -- handshake ends at once but the certificate was refused; the
        -- socket is closed then, and the real answer is kept aside
        sess, herr = nil, handshake_error(sock)
    end
    if not sess then return nil, herr end
    if ip then
        local bad = check_ip(sess, ip)
        if bad then return nil, bad, true end
    end
    return true
end

return _M
