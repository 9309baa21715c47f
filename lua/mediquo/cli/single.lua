-- mediquo.cli.single: `mediquo create|reschedule|cancel`, one operation:
-- its result on stdout (an error on stderr, or stdout with --json).

local util = require "mediquo.cli.util"
local CREATE_FIELDS = require("mediquo.core").OP_FIELDS.create
local climiter = require "mediquo.cli.limiter"

local type = type
local ipairs = ipairs

local usage_error = util.usage_error

local _M = {}

local function finish(io_, flags, c, op, code, value, err)
    local rec = { op = op, code = code }
    c:close()
    if value then
        rec.ok = true
        if type(value) == "table" then rec.url = value.url end
        util.emit(io_.stdout, flags, rec)
        return 0
    end
    rec.ok = false
    rec.error = util.err_table(err)
    util.emit(flags.json and io_.stdout or io_.stderr, flags, rec)
    return 1
end

local ARGS = {
    create = function(flags, pos)
        if #pos > 0 then return nil, usage_error("create takes no positional arguments (use --code ...)") end
        local a = {}
        for _, k in ipairs(CREATE_FIELDS) do
            if flags[k] == nil and k ~= "duration" then    -- duration: optional
                return nil, usage_error("create needs --" .. k:gsub("_", "-"))
            end
            a[k] = flags[k]
        end
        return a, flags.code
    end,
    reschedule = function(_, pos)
        if #pos ~= 2 then return nil, usage_error("reschedule needs CODE STARTS_AT") end
        return pos, pos[1]
    end,
    cancel = function(_, pos)
        if #pos ~= 1 then return nil, usage_error("cancel needs CODE") end
        return pos, pos[1]
    end,
}

-- run(io_, flags, pos, ctx): ctx.command is create, reschedule or cancel
function _M.run(io_, flags, pos, ctx)
    local op = ctx.command
    local args, code = ARGS[op](flags, pos)
    if not args then return code end
    local c, uerr = climiter.client(io_, flags)
    if not c then return uerr end
    local v, err
    if op == "create" then
        v, err = c:create(args)
    else
        v, err = c[op](c, args[1], args[2])
    end
    return finish(io_, flags, c, op, code, v, err)
end

return _M
