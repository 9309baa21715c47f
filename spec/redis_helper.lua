-- spec/redis_helper.lua: real redis-server processes for the Redis limiter
-- specs: a random loopback port, no persistence, started and stopped by the
-- spec by PID (never by name: other helpers' servers share the machine).
--
--   local R = require "spec.redis_helper"
--   local srv = R.start{ "--requirepass", "pw" }   -- extra redis-server args
--   srv.url, srv.port, srv.pid; srv:kill9(); srv:restart(); srv:stop()

local H = require "spec.helper"

local R = {}
local Server = {}
Server.__index = Server

local live = {}

local function alive(pid)
    local _, code = H.run("kill -0 " .. pid .. " 2>/dev/null")
    return code == 0
end
R.alive = alive

-- tls: { ca, cert, key } of a TLS server (redis-cli then speaks TLS)
local function cli(port, args, tls)
    local t = ""
    if tls then
        t = "--tls --cacert " .. H.shell_quote(tls.ca) .. " "
        if tls.client_cert then
            t = t .. ("--cert %s --key %s "):format(H.shell_quote(tls.client_cert),
                                                   H.shell_quote(tls.client_key))
        end
    end
    return H.run("redis-cli -h 127.0.0.1 -p " .. port .. " " .. t .. args .. " 2>&1")
end

function Server:cli(args, auth)
    return cli(self.port, (auth and ("--no-auth-warning -a " .. H.shell_quote(auth) .. " ") or "") .. args,
               self.tls)
end

function Server:launch()
    local args = { "redis-server", "--port", self.tls and "0" or tostring(self.port), "--bind", "127.0.0.1",
                   "--save", "''", "--appendonly", "no", "--dir", self.dir,
                   "--enable-debug-command", "local" }
    if self.tls then
        for _, a in ipairs{ "--tls-port", tostring(self.port), "--tls-cert-file", self.tls.cert,
                            "--tls-key-file", self.tls.key, "--tls-ca-cert-file", self.tls.ca,
                            "--tls-auth-clients", "no" } do     -- extra may say yes
            args[#args + 1] = H.shell_quote(a)
        end
    end
    for _, a in ipairs(self.extra) do args[#args + 1] = H.shell_quote(a) end
    local log = self.dir .. "/redis.log"
    H.run(": >" .. log)
    local out = H.run(table.concat(args, " ") .. " >>" .. log .. " 2>&1 & echo $!")
    self.pid = assert(tonumber(out:match("(%d+)")), "redis-server did not start: " .. out)
    live[self.pid] = self
    -- ready when it answers (any answer: NOAUTH counts)
    for _ = 1, 100 do
        local o = cli(self.port, "ping", self.tls)
        if o:match("PONG") or o:match("NOAUTH") then return self end
        if not alive(self.pid) then
            live[self.pid] = nil
            self.pid = nil
            local text = H.read_file(log) or ""
            -- another process took the port between the check and the bind:
            -- the caller may try another one
            if text:match("Address already in use") then return nil, "busy" end
            error("redis-server on port " .. self.port .. " exited: " .. text)
        end
        H.sleep(0.05)
    end
    error("redis-server on port " .. self.port .. " did not answer: "
          .. (H.read_file(log) or ""))
end

-- R.start(extra[, tls]): tls = { ca, cert, key [, client_cert, client_key] }
-- (files, e.g. from R.make_certs) makes a TLS-only server (no plain port)
function R.start(extra, tls)
    local dir = H.run("mktemp -d /tmp/mediquo-redis.XXXXXX"):gsub("%s+$", "")
    -- below the kernel's ephemeral range (32768-60999 by default), so an
    -- outgoing connection's local port cannot take the port under us; a
    -- port taken anyway (another listener) is skipped and another tried
    for _ = 1, 20 do
        local port = H.free_port()
        local s = setmetatable({ port = port, dir = dir, extra = extra or {}, tls = tls }, Server)
        s.url = (tls and "rediss" or "redis") .. "://127.0.0.1:" .. port
        local ok, why = s:launch()
        if ok then return ok end
        assert(why == "busy")
    end
    error("no free port")
end

function Server:kill9()
    if self.pid then
        H.run("kill -9 " .. self.pid)
        for _ = 1, 100 do
            if not alive(self.pid) then break end
            H.sleep(0.02)
        end
        live[self.pid] = nil
        self.pid = nil
    end
end

-- the same port, a new process: an empty keyspace and script cache
function Server:restart()
    self:kill9()
    return assert(self:launch())
end

function Server:stop()
    self:kill9()
    if self.dir then H.run("rm -rf '" .. self.dir .. "'") end
    self.dir = nil
end

function R.stop_all()
    for _, s in pairs(live) do s:kill9() end
end

-- R.cleanup(tmp, ...): in teardown, even after a failure: every
-- redis-server started here killed, the servers given stopped (their dirs
-- removed), then tmp (H.tmpdir) removed
function R.cleanup(tmp, ...)
    R.stop_all()
    for i = 1, select("#", ...) do
        local s = select(i, ...)
        if s then s:stop() end
    end
    H.rmdir(tmp)
end

local function ossl(args)
    local out, code = H.run("openssl " .. args .. " 2>&1")
    assert(code == 0, "openssl " .. args .. ": " .. out)
end

-- R.sign_cert(certs, dir, name, cn, san[, usage]) -> { cert, key }: a key
-- and a certificate <dir>/<name>.* that certs' CA (R.make_certs) signs,
-- with subject CN cn, subjectAltName san ("IP:127.0.0.1") and
-- extendedKeyUsage usage (serverAuth unless said)
function R.sign_cert(certs, dir, name, cn, san, usage)
    local q = H.shell_quote
    local k, csr, crt = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr", dir .. "/" .. name .. ".crt"
    local ext = dir .. "/" .. name .. ".ext"
    H.write_file(ext, "subjectAltName=" .. san .. "\nextendedKeyUsage=" .. (usage or "serverAuth") .. "\n")
    ossl(("req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s -out %s"):format(cn, q(k), q(csr)))
    ossl(("x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s")
         :format(q(csr), q(certs.ca), q(certs.ca_key), q(ext), q(crt)))
    return { cert = crt, key = k }
end

-- R.make_certs(dir) -> { ca, server = { cert, key }, other = {...}, client
-- = {...} }: a CA made now (openssl) and certificates it signed: server
-- (IP 127.0.0.1, CN 127.0.0.1), other (another name: other.invalid),
-- client (for mutual TLS)
function R.make_certs(dir)
    local q = H.shell_quote
    local c = { ca = dir .. "/ca.crt", ca_key = dir .. "/ca.key" }
    ossl(("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mediquo-spec-ca -keyout %s -out %s")
         :format(q(c.ca_key), q(c.ca)))
    for name, san in pairs{ server = "IP:127.0.0.1", other = "DNS:other.invalid",
                            client = "DNS:mediquo-client" } do
        local cn = name == "server" and "127.0.0.1" or san:match(":(.*)")
        c[name] = R.sign_cert(c, dir, name, cn, san, name == "client" and "clientAuth" or "serverAuth")
    end
    return c
end

-- R.tls_start(dir[, extra]) -> srv, certs: certificates made in dir
-- (R.make_certs) and a TLS-only server on its "server" one; extra:
-- redis-server args
function R.tls_start(dir, extra)
    local certs = R.make_certs(dir)
    return R.start(extra, { ca = certs.ca, cert = certs.server.cert, key = certs.server.key }), certs
end

-- R.mtls_start(certs) -> a TLS-only server on certs' "server" certificate
-- (R.make_certs) that asks every client for a certificate
function R.mtls_start(certs)
    return R.start({ "--tls-auth-clients", "yes" },
                   { ca = certs.ca, cert = certs.server.cert, key = certs.server.key,
                     client_cert = certs.client.cert, client_key = certs.client.key })
end

math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)

return R
