-- mediquo.cli.webhooks: `mediquo webhooks list | add TYPE URL [--header K:V]...
-- | update ID TYPE URL [--header K:V]... | rm ID`: the organization's webhook
-- subscriptions, through the client's engine (budget, retries, deadline;
-- an add that may have been processed is settled by listing, never sent
-- twice blind). Output: one line per subscription (or --json lines);
-- failures as the other commands print them. Exit 0, 1 failed, 2 usage.
local core = require "mediquo.core"
local util = require "mediquo.cli.util"

local _M = { _VERSION = core._VERSION }

local format = string.format
local ipairs = ipairs
local type = type

-- flags only the webhooks command takes (cli.lua merges them in)
_M.FLAGS = { ["--header"] = { "header", "list" } }

-- the client the flags ask for (the rule in force checked first)
local function new_client(io_, flags)
    local c, err = require("mediquo.cli.limiter").client(io_, flags)
    if not c then return nil, err end
    return c
end

-- the CLI's helpers this command uses
local H = { usage_error = util.usage_error, safe = util.safe, err_table = util.err_table,
            emit = util.emit, jsonline = util.jsonline }

-- h: the CLI's helpers (usage_error, safe, err_table, emit)
local function headers_of(flags, h)
    local list = flags.header
    if list == nil then return nil end
    local t = {}
    for _, kv in ipairs(list) do
        local k, v = kv:match("^([^:]+):%s*(.*)$")
        if not k or v == "" then
            return nil, h.usage_error("--header must be NAME:VALUE")
        end
        t[k] = v
    end
    return t
end

local function line(io_, flags, h, s)
    if flags.json then
        io_.stdout:write(h.jsonline(s), "\n")
    else
        io_.stdout:write(h.safe(s.id or "?"), "  ", h.safe(s.type or "?"), "  ",
                         h.safe(type(s.meta) == "table" and s.meta.url or ""), "\n")
    end
end

local function failed(io_, flags, h, op, id, err)
    local rec = { op = op, code = id, ok = false, error = h.err_table(err) }
    h.emit(flags.json and io_.stdout or io_.stderr, flags, rec)
    return 1
end

function _M.run(io_, flags, pos)
    local h = H
    local verb = pos[1]
    local need = { list = 1, add = 3, update = 4, rm = 2 }
    if not need[verb] then
        return h.usage_error("webhooks needs list, add TYPE URL, update ID TYPE URL or rm ID")
    end
    if #pos ~= need[verb] then
        return h.usage_error(format("webhooks %s takes %d argument%s", verb, need[verb] - 1,
                                    need[verb] == 2 and "" or "s"))
    end
    if flags.header and (verb == "list" or verb == "rm") then
        return h.usage_error("--header is only for webhooks add and update")
    end
    local headers, uerr = headers_of(flags, h)
    if uerr then return uerr end
    local c, cerr = new_client(io_, flags)
    if not c then return cerr end
    local v, err
    if verb == "list" then
        v, err = c:webhooks()
        c:close()
        if not v then return failed(io_, flags, h, "webhooks", nil, err) end
        for _, s in ipairs(v) do line(io_, flags, h, s) end
        return 0
    elseif verb == "add" then
        v, err = c:subscribe{ type = pos[2], url = pos[3], headers = headers }
    elseif verb == "update" then
        v, err = c:update_subscription(pos[2], { type = pos[3], url = pos[4], headers = headers })
    else
        v, err = c:unsubscribe(pos[2])
    end
    c:close()
    if not v then
        return failed(io_, flags, h, verb == "rm" and "unsubscribe" or verb == "add" and "subscribe"
                      or "update_subscription", pos[2] ~= nil and verb ~= "add" and pos[2] or nil, err)
    end
    if verb == "rm" then
        if flags.json then
            io_.stdout:write(h.jsonline({ op = "unsubscribe", id = pos[2], ok = true }), "\n")
        else
            io_.stdout:write("ok unsubscribe ", h.safe(pos[2]), "\n")
        end
        return 0
    end
    line(io_, flags, h, v)
    return 0
end

return _M
