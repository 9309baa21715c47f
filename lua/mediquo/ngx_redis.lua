-- mediquo.ngx_redis: the Redis round trip of the shared limiter inside
-- nginx, on a cosocket: no thread, no blocking of the event loop. The C
-- core decides what to ask (limiter:redis_begin), builds the bytes
-- (core.redis_format: hiredis's formatter), reads the answer
-- (core.redis_reader: hiredis's reply reader) and applies it
-- (limiter:redis_finish); this module only moves the bytes, through
-- nginx's keepalive pool.
--
--   local ok, wait, at = require("mediquo.ngx_redis").try(lim, budget)
--
-- lim is a core.limiter opened with redis_cosocket = true; try() has the
-- contract of lim:try() (true, at | false, seconds to wait [, fault: a
-- state file, the lease file or the local one, is unusable: a host fault,
-- no wait]) and never takes longer than budget seconds. A limiter without
-- Redis is tried as is.

local core = require "mediquo.core"

local ngx = ngx
local concat = table.concat
local format = string.format
local byte = string.byte
local tostring = tostring
local type = type

local _M = { _VERSION = "0.2.0" }

local SCRIPT = core.redis_script()
local SHA
local NKEYS = "4"
local POOL_SIZE = 16
local IDLE_MS = 30000

local function sha()
    if not SHA then
        SHA = ngx.sha1_bin(SCRIPT):gsub(".", function(c) return format("%02x", byte(c)) end)
    end
    return SHA
end

-- what each URL needs to connect: parsed once, the password stays in C
local urls = {}
local function url_of(url)
    local u = urls[url]
    if not u then
        u = assert(core.redis_url(url))
        -- one pool per URL (credentials included), named without them
        u.pool = "mediquo-redis:" .. u.where .. "/" .. u.db .. "#" .. ngx.crc32_long(url)
        urls[url] = u
    end
    return u
end

-- reads n replies -> array | nil, err
local function read(sock, n)
    local reader = core.redis_reader()
    local replies = {}
    for _ = 1, 10000 do
        while #replies < n do
            local rep, perr = reader:get()
            if rep == nil then
                if perr then
                    reader:close()
                    return nil, "not Redis: " .. perr, true
                end
                break
            end
            replies[#replies + 1] = rep
        end
        if #replies >= n then
            reader:close()
            return replies
        end
        local data, err = sock:receiveany(65536)
        if not data then
            reader:close()
            return nil, err
        end
        local ok, ferr = reader:feed(data)
        if not ok then
            reader:close()
            return nil, "not Redis: " .. tostring(ferr), true
        end
    end
    reader:close()
    return nil, "too many reads"
end

-- one round trip: -> the script's array | nil, message, refused
local function round_trip(lim, url, argv, tmo)
    local u = url_of(url)
    local ms = tmo * 1000
    if ms < 1 then ms = 1 end
    local sock = ngx.socket.tcp()
    sock:settimeouts(ms, ms, ms)
    local ok, err
    if u.path then
        ok, err = sock:connect("unix:" .. u.path, { pool = u.pool })
    else
        ok, err = sock:connect(u.host, u.port, { pool = u.pool })
    end
    if not ok then
        return nil, format("redis %s unreachable (connect: %s)", u.where, tostring(err))
    end
    local out, names = {}, {}
    if sock:getreusedtimes() == 0 then
        -- a new connection: AUTH and SELECT first, in the same write
        local auth, select = lim:redis_hello{ url = url }
        if auth then out[#out + 1] = core.redis_format(auth); names[#names + 1] = "AUTH" end
        if select then out[#out + 1] = core.redis_format(select); names[#names + 1] = "SELECT" end
    end
    local cmd = { "EVALSHA", sha(), NKEYS }
    for i = 1, #argv do cmd[#cmd + 1] = argv[i] end
    out[#out + 1] = core.redis_format(cmd)
    names[#names + 1] = "EVALSHA"
    local sent, serr = sock:send(concat(out))
    if not sent then
        sock:close()
        return nil, format("redis %s unreachable (send: %s)", u.where, tostring(serr))
    end
    local replies, rerr, proto = read(sock, #names)
    if not replies then
        sock:close()
        if proto then
            return nil, format("redis %s does not speak the Redis protocol (%s): is the URL right?",
                               u.where, rerr), true
        end
        return nil, format("redis %s unreachable (read: %s)", u.where, tostring(rerr))
    end
    for i = 1, #names - 1 do
        local r = replies[i]
        if type(r) == "table" and r.err then
            sock:close()
            local msg, refused = core.redis_explain(url, names[i], r.err)
            return nil, msg, refused
        end
    end
    local r = replies[#names]
    if type(r) == "table" and r.err and r.err:sub(1, 8) == "NOSCRIPT" then
        -- Redis lost its script cache (restart, failover, SCRIPT FLUSH):
        -- send the script itself; EVAL caches it again
        cmd[1], cmd[2] = "EVAL", SCRIPT
        sent, serr = sock:send(core.redis_format(cmd))
        if not sent then
            sock:close()
            return nil, format("redis %s unreachable (send: %s)", u.where, tostring(serr))
        end
        replies, rerr = read(sock, 1)
        if not replies then
            sock:close()
            return nil, format("redis %s unreachable (read: %s)", u.where, tostring(rerr))
        end
        r = replies[1]
    end
    if type(r) == "table" and r.err then
        sock:close()
        local msg, refused = core.redis_explain(url, "EVALSHA", r.err)
        return nil, msg, refused
    end
    if type(r) ~= "table" then
        sock:close()
        return nil, format("redis %s: the limiter script answered no array", u.where), true
    end
    sock:setkeepalive(IDLE_MS, POOL_SIZE)
    return r
end

-- try(lim, budget, url) -> true, at | false, wait [, fault] (url: the
-- limiter's rate_limit.redis, nil for a limiter without Redis)
function _M.try(lim, budget, url)
    if not url then
        return lim:try()
    end
    local st, a, b = lim:redis_begin(budget)
    if st == 1 then return true, a end
    if st == 0 then return false, a, b end      -- b: a fault, or nil
    local reply, err, refused = round_trip(lim, url, a, b)
    local fault
    if reply then
        st, a, fault = lim:redis_finish(reply)
    else
        st, a, fault = lim:redis_finish(nil, err, refused)
    end
    if st == 1 then return true, a end
    return false, a, fault
end

return _M
