-- examples/gateway.lua: the request handlers of examples/nginx.conf, a
-- booking gateway in front of the mediQuo API built on mediquo.ngx.
--
--   POST /book        {"code","starts_at","patient","professional","duration"?}
--                     -> 201 {"code","url"}
--   POST /reschedule  {"code","starts_at"} -> 200 {"code","url"}
--   POST /cancel      {"code"}             -> 200 {"ok":true}
--   GET  /metrics     Prometheus text (host-wide counters)
--   GET  /stats       this worker's counters
--   GET  /status      the operator's page (mediquo.ngx.status)
--
-- The fields come as a JSON object, form fields or query arguments
-- (mediquo.ngx.read); every answer, and its status, is mediquo.ngx.reply's:
-- {"error": kind, "message", "field", "effect"} with 4xx for the caller's
-- input (409 for a code that exists), 429 + Retry-After for a spent budget,
-- 502/503/504 for the upstream, 500 for the gateway's own setup (details
-- in error.log only), and X-RateLimit-Limit / -Remaining on each.
-- luacheck: globals ngx

local mq = require "mediquo.ngx"
local cjson = require "cjson.safe"

local ngx = ngx

local _M = { _VERSION = "0.2.0" }

function _M.book()
    local a, err = mq.read("create")
    if not a then return mq.reply(nil, err) end
    return mq.reply(mq.create(a))
end

function _M.reschedule()
    local a, err = mq.read("reschedule")
    if not a then return mq.reply(nil, err) end
    return mq.reply(mq.reschedule(a.code, a.starts_at))
end

function _M.cancel()
    local a, err = mq.read("cancel")
    if not a then return mq.reply(nil, err) end
    return mq.reply(mq.cancel(a.code))
end

function _M.metrics()
    local text, err = mq.metrics()
    if not text then return mq.reply(nil, err, { headers = false }) end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.print(text)
end

-- this worker's own counters (mediquo.ngx.stats), for operators
function _M.stats()
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(mq.stats()))
end

return _M
