-- mediquo.ngx_webhook: mediquo.ngx.receive, a whole nginx content handler
-- for mediQuo's webhook deliveries.
--
--   http { lua_shared_dict mediquo_webhooks 1m; }
--   location = /mediquo/events {
--       content_by_lua_block {
--           require("mediquo.ngx").receive{
--               secret = { "current", "previous" },      -- rotation
--               on_event = function(ev) ... end,         -- ev: type, occurred_on, payload, id
--               dedupe = 86400,                          -- seconds; 0: off
--           }
--       }
--   }
--
-- Answers: 405 (Allow: POST) for another method; 411 without a
-- Content-Length; 413 when Content-Length is over max_body (the body is not
-- read); 401 for a bad signature; 400 for a malformed event; 200 for an
-- event already handled within `dedupe` seconds on this nginx (any worker)
-- without calling on_event; 409 while another worker is handling the same
-- event (so the sender delivers it again); 500 when on_event raises or
-- returns nil, err (the event is not marked handled, so the redelivery runs
-- it again); otherwise 200.
--
-- The "handled" and "being handled" marks live in a lua_shared_dict (why
-- not a file like the limiter's: only nginx workers receive, the dict's
-- add() is the atomic claim across workers and its TTL is the `dedupe`
-- window; see docs/webhooks.md). The body is read from the request socket
-- in pieces, never more than Content-Length, never more than max_body. No
-- log line names anything of the payload: the type and the first 12 hex
-- digits of the event id only.

local webhook = require "mediquo.webhook"

local ngx = ngx
local type = type
local pcall = pcall
local tonumber = tonumber
local concat = table.concat
local min = math.min
local floor = math.floor
local pairs = pairs
local setmetatable = setmetatable

local _M = { _VERSION = require("mediquo.core")._VERSION }

_M.DICT = "mediquo_webhooks"
local CHUNK = 65536
local BUSY_TTL = 60          -- a claim outlives a worker that died holding it by this much

local function answer(status, message, extra)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    if extra then
        for k, v in pairs(extra) do ngx.header[k] = v end
    end
    -- messages are ours (kinds, field names): never the body's words
    ngx.print('{"status":', status, ',"message":"', message, '"}')
    return ngx.exit(ngx.HTTP_OK)
end

local checked = setmetatable({}, { __mode = "k" })

-- the handler's options, checked once per options table
local function options(o)
    local c = checked[o]
    if c then return c end
    local w, err = webhook.options(o)
    if not w then return nil, err end
    if type(o.on_event) ~= "function" then
        return nil, "on_event: must be a function"
    end
    local dedupe = o.dedupe
    if dedupe == nil then dedupe = 86400 end
    if type(dedupe) ~= "number" or dedupe < 0 or dedupe ~= floor(dedupe) then
        return nil, "dedupe: must be a whole number of seconds (0: off)"
    end
    local dict_name = o.dict or _M.DICT
    local dict
    if dedupe > 0 then
        dict = ngx.shared[dict_name]
        if not dict then
            return nil, "dedupe needs 'lua_shared_dict " .. dict_name
                        .. " 1m;' in the http block (or dedupe = 0)"
        end
    end
    w.on_event, w.dedupe, w.dict = o.on_event, dedupe, dict
    checked[o] = w
    return w
end

-- the body, read from the request socket in bounded pieces; nil, status
local function read_body(len)
    if len == 0 then return "" end
    local sock = ngx.req.socket()
    if not sock then
        -- already read (lua_need_request_body on), or a request socket is
        -- not offered (HTTP/2): nginx's own reader, bounded by the
        -- Content-Length already checked against max_body
        ngx.req.read_body()
        local b = ngx.req.get_body_data()
        if not b then
            local name = ngx.req.get_body_file()
            local f = name and io.open(name, "rb")
            if f then
                b = f:read(len + 1)
                f:close()
            end
        end
        if b and #b == len then return b end
        return nil, 400
    end
    sock:settimeout(10000)
    local parts, n, left = {}, 0, len
    while left > 0 do
        local data = sock:receive(min(left, CHUNK))
        if not data then return nil, 400 end
        n = n + 1
        parts[n] = data
        left = left - #data
    end
    return concat(parts)
end

local STATUS = { unauthorized = 401, too_large = 413, invalid_argument = 400 }

local function log_failure(ev, how)
    ngx.log(ngx.ERR, "mediquo webhook: on_event failed (", how, ") for ", ev.type,
            " event ", ev.id:sub(1, 12), "; answered 500 so it is delivered again")
end

-- receive{ secret, on_event, dedupe = 86400, max_body = 1048576, header, dict }
function _M.receive(o)
    local w, err = options(o)
    if not w then
        ngx.log(ngx.ERR, "mediquo.ngx.receive: ", type(err) == "table" and err.message or err)
        return answer(500, "receiver misconfigured")
    end
    if ngx.req.get_method() ~= "POST" then
        return answer(405, "method not allowed", { Allow = "POST" })
    end
    local cl = ngx.var.http_content_length
    local len = cl and cl:find("^%d+$") and tonumber(cl)
    if not len then
        return answer(411, "Content-Length required")
    end
    if len > w.max_body then
        -- refused before a byte of the body is read; nginx's own 413 also
        -- ends keep-alive, so the rest is never parsed, only drained for at
        -- most lingering_time
        return ngx.exit(413)
    end
    local body, status = read_body(len)
    if not body then
        return answer(status, "body cut short")
    end
    local ev, perr = webhook.verify(w, ngx.req.get_headers(100), body)
    body = nil  -- luacheck: ignore 311
    if not ev then
        local s = STATUS[perr.kind] or 500
        return answer(s, perr.kind)
    end

    local dict, id = w.dict, ev.id
    if dict then
        if dict:get("done:" .. id) then
            return answer(200, "already handled")
        end
        local ok, aerr = dict:safe_add("busy:" .. id, ngx.worker.pid(), BUSY_TTL)
        if not ok then
            if aerr == "exists" then
                return answer(409, "being handled; deliver again")
            end
            ngx.log(ngx.ERR, "mediquo webhook: lua_shared_dict ", _M.DICT,
                    " is full (", aerr, "); make it larger")
            return answer(500, "dedupe state full")
        end
    end
    local pok, res, ferr = pcall(w.on_event, ev)
    if not pok or (not res and ferr ~= nil) then
        if dict then dict:delete("busy:" .. id) end
        log_failure(ev, pok and "returned nil, err" or "raised")
        return answer(500, "on_event failed")
    end
    if dict then
        local ok, serr = dict:safe_set("done:" .. id, true, w.dedupe)
        if not ok then
            ngx.log(ngx.WARN, "mediquo webhook: could not mark ", ev.type, " event ",
                    id:sub(1, 12), " handled (", serr, "): a redelivery would run it again")
        end
        dict:delete("busy:" .. id)
    end
    return answer(200, "ok")
end

return _M
