-- mediquo.ngx_connect: a cosocket connect to a host *name* that ends within
-- a limit, name resolution included. nginx resolves a name for a cosocket
-- with its `resolver`, bounded only by `resolver_timeout` (30 s by
-- default): the socket's connect timeout starts after the name is
-- resolved, so a resolver that never answers held a call 30 s whatever
-- its deadline. Here the connect runs in a light thread, and a second one
-- sleeps the limit; when the limit comes first the connect is killed
-- (lua-nginx-module's kill ends the pending resolution: the worker keeps
-- serving) and the attempt fails as "connect" (kind network: nothing was
-- sent), naming the resolver. IP addresses never come here.
--
--   local ok, err = require("mediquo.ngx_connect").connect(sock, host, port, pool_opts, limit, where)

local ngx = ngx
local co_status = coroutine.status
local tostring = tostring
local format = string.format

local _M = { _VERSION = require("mediquo.core")._VERSION }

local function connecting(sock, host, port, pool)
    return sock:connect(host, port, pool)
end

local function sleeping(s)
    ngx.sleep(s)
end

-- connect(sock, host, port, pool, limit (s), where) -> true | nil, err
-- err "resolve_timeout" (and a message) when nothing came within limit
function _M.connect(sock, host, port, pool, limit, where)
    local spawn, wait, kill = ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill
    local th = spawn(connecting, sock, host, port, pool)
    if co_status(th) == "dead" then         -- done at once (a kept-alive connection)
        local fine, ok, err = wait(th)
        if not fine then return nil, tostring(ok) end      -- the thread raised
        return ok, err
    end
    local sl = spawn(sleeping, limit)
    local fine, ok, err = wait(th, sl)
    if not fine then                        -- a thread raised
        kill(th)
        kill(sl)
        return nil, tostring(ok)
    end
    if ok == nil and err == nil then        -- the sleeper ended first
        kill(th)
        return nil, "resolve_timeout", format(
            "no connection to %s within %.3gs: the name was not resolved in time by nginx's "
            .. "resolver (the `resolver` directive; its resolver_timeout does not bound a call), "
            .. "or the server did not accept", where, limit)
    end
    kill(sl)
    return ok, err
end

return _M
