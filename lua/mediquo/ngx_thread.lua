-- mediquo.ngx_thread: the half of mediquo.ngx that runs inside nginx's
-- thread pool (ngx.run_worker_thread), in a plain LuaJIT VM with no ngx.*
-- API. It makes one HTTP attempt with the C core and hands back plain
-- values only (strings, numbers, booleans, nil): no userdata or function
-- can cross back into the request's VM.
--
-- Each thread VM is pooled and reused by nginx, so its core.client (and
-- with it the open keep-alive connection) is kept here and reused by every
-- later call that lands on this VM, as long as the configuration id is the
-- same; a new configuration replaces it.

local core = require "mediquo.core"

local type = type
local tostring = tostring

local _M = { _VERSION = "0.1.0" }

local client, client_id     -- this VM's client and the config it was made from

local function get_client(cfg)
    if client and client_id == cfg.id then
        return client
    end
    if client then
        client:close()
        client, client_id = nil, nil
    end
    local c, msg = core.client{
        api_key = cfg.api_key, secret_key = cfg.secret_key, base_url = cfg.base_url,
        user_agent = cfg.user_agent, ca_file = cfg.ca_file, insecure = cfg.insecure,
        timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
    }
    if not c then
        return nil, msg
    end
    client, client_id = c, cfg.id
    return c
end

-- attempt(cfg, method, path, body, timeout, connect_timeout) ->
--   outcome, status, body, retry_after, rl_remaining, rl_limit, rl_reset, message
-- (the returns of the core client's :attempt; see src/lclient.c)
function _M.attempt(cfg, method, path, body, timeout, connect_timeout)
    if type(cfg) ~= "table" then
        return "failed", nil, "", nil, nil, nil, nil, "mediquo.ngx_thread: no configuration"
    end
    local c, msg = get_client(cfg)
    if not c then
        -- core.client's messages name options, never their values
        return "failed", nil, "", nil, nil, nil, nil, "mediquo.ngx_thread: " .. tostring(msg)
    end
    return c:attempt(method, path, body, timeout, connect_timeout)
end

return _M
