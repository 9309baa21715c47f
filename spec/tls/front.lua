-- spec/tls/front.lua: a TLS front for spec/43-tls_table_spec.lua: one real
-- nginx with a listener per certificate case, each proxying to a plain
-- sandbox (so a request that gets through is in the sandbox's log). The
-- certificates are made here by openssl (EC keys: instant):
--
--   ca.pem        a CA made for the run (in no system bundle)
--   good          leaf signed by it: DNS:localhost, IP:127.0.0.1
--   ip_only       leaf signed by it: IP:127.0.0.1 only
--   wrong_name    leaf signed by it: DNS:wronghost.example only
--   wrong_ip      leaf signed by it: IP:127.0.0.2 only
--   expired       leaf signed by it: DNS:localhost, IP:127.0.0.1, expired
--   self_signed   its own issuer: DNS:localhost, IP:127.0.0.1
--   with_root     "good" served with the CA after it (a chain with its root)
--
--   local front = require("spec.tls.front").start(sb)
--   front.port.good, front.ca_file, front:stop()

local H = require "spec.helper"

local q = H.shell_quote
local _M = {}
local Front = {}
Front.__index = Front

_M.CASES = { "good", "ip_only", "wrong_name", "wrong_ip", "expired", "self_signed", "with_root" }

local SAN = {
    good = "DNS:localhost,IP:127.0.0.1", ip_only = "IP:127.0.0.1",
    wrong_name = "DNS:wronghost.example", wrong_ip = "IP:127.0.0.2",
    expired = "DNS:localhost,IP:127.0.0.1", self_signed = "DNS:localhost,IP:127.0.0.1",
}

local EC = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

local function sh(cmd)
    local out, code = H.run(cmd .. " 2>&1")
    assert(code == 0, cmd .. ": " .. out)
    return out
end

local function make_certs(d)
    sh(("openssl req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 2 -subj '/CN=spec43 CA' "
        .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
       :format(EC, d, d))
    for name, san in pairs(SAN) do
        local ext = ("%s/%s.ext"):format(d, name)
        H.write_file(ext, ("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                           .. "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"):format(san))
        if name == "self_signed" then
            sh(("openssl req -x509 %s -keyout %s/%s.key -out %s/%s.pem -days 2 -subj '/CN=self' "
                .. "-addext subjectAltName=%s"):format(EC, d, name, d, name, san))
        else
            sh(("openssl req %s -keyout %s/%s.key -out %s/%s.csr -subj '/CN=leaf'"):format(EC, d, name, d, name))
            -- expired: valid from two days ago to yesterday (openssl ca
            -- takes the dates that x509 -req cannot)
            if name == "expired" then
                local db = d .. "/cadb"
                sh(("mkdir -p %s && : > %s/index.txt && echo 01 > %s/serial"):format(db, db, db))
                H.write_file(db .. "/ca.cnf", ("[ca]\ndefault_ca=x\n[x]\ndatabase=%s/index.txt\n"
                    .. "serial=%s/serial\nnew_certs_dir=%s\ndefault_md=sha256\npolicy=p\n"
                    .. "copy_extensions=none\n[p]\ncommonName=supplied\n"):format(db, db, db))
                local past = os.date("!%Y%m%d%H%M%SZ", os.time() - 2 * 86400)
                local end_ = os.date("!%Y%m%d%H%M%SZ", os.time() - 86400)
                sh(("openssl ca -batch -config %s/ca.cnf -cert %s/ca.pem -keyfile %s/ca.key -in %s/%s.csr "
                    .. "-out %s/%s.pem -startdate %s -enddate %s -extfile %s -notext")
                   :format(db, d, d, d, name, d, name, past, end_, ext))
            else
                sh(("openssl x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial "
                    .. "-days 2 -extfile %s -out %s/%s.pem"):format(d, name, d, d, ext, d, name))
            end
        end
    end
    -- the good leaf, then its root: what a server that sends its whole chain sends
    sh(("cat %s/good.pem %s/ca.pem > %s/with_root.pem && cp %s/good.key %s/with_root.key")
       :format(d, d, d, d, d))
end

local record = H.record_prefix

local pid_of = H.nginx_pid

-- start(sb) -> a running front proxying to sandbox sb (plain http)
function _M.start(sb)
    local upstream = assert(sb.base_url:match("^http://([^/]+)"), "the sandbox must be plain http")
    local d = H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-tls43-XXXXXX"'):gsub("%s+$", "")
    record(d)
    sh(("mkdir -p %s/logs %s/tmp"):format(q(d), q(d)))
    make_certs(d)
    local user = ""
    if H.run("id -u"):match("^0%s*$") then
        user = ("user %s %s;"):format(H.run("id -un"):gsub("%s+$", ""), H.run("id -gn"):gsub("%s+$", ""))
    end
    local last
    for _ = 1, 10 do
        local base = H.free_port(#_M.CASES)
        local port, servers = {}, {}
        for i, name in ipairs(_M.CASES) do
            port[name] = base + i - 1
            servers[#servers + 1] = ([[
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/%s.pem;
        ssl_certificate_key %s/%s.key;
        location / { proxy_pass http://%s; }
    }]]):format(port[name], d, name, d, name, upstream)
        end
        H.write_file(d .. "/nginx.conf", ([[
%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/logs/error.log info;
events { worker_connections 128; }
http {
    access_log %s/logs/access.log;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
%s
}
]]):format(user, d, d, d, d, d, d, d, d, table.concat(servers, "\n")))
        local out, code = H.run(("nginx -p %s -c %s -e %s 2>&1"):format(q(d), q(d .. "/nginx.conf"),
                                                                       q(d .. "/logs/error.log")))
        if code == 0 then
            local up = false
            for _ = 1, 200 do
                local _, c = H.run(("curl -sk -o /dev/null https://127.0.0.1:%d/ 2>&1"):format(port.good))
                if c == 0 then up = true; break end
                H.sleep(0.025)
            end
            if up then
                return setmetatable({ dir = d, port = port, ca_file = d .. "/ca.pem",
                                      pid = pid_of(d) }, Front)
            end
        end
        last = out
        local pid = pid_of(d)
        if pid then H.run("kill -TERM " .. pid .. " 2>/dev/null") end
    end
    H.run("rm -rf " .. q(d))
    error("cannot start the TLS front: " .. tostring(last), 2)
end

-- stops the nginx this module started (its pid, TERM then a bounded wait)
function Front:stop()
    if self.stopped then return end
    self.stopped = true
    H.stop_nginx(self.pid or pid_of(self.dir))
    H.run("rm -rf " .. q(self.dir))
end

return _M
