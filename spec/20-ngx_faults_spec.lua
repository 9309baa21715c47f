-- spec/20-ngx_faults_spec.lua: the engine's fault table (spec/fault_table.lua)
-- through mediquo.ngx in real nginx: for each sandbox fault the same success
-- or error kind, status, attempts, message and effect as the blocking client
-- (18-engine_faults), and the same requests seen by the sandbox -- one engine
-- decides for both; mediquo.ngx only moves the bytes (cosockets) and waits.
--
-- The gateway (examples/nginx.conf, one worker) gets one more location that
-- configures mediquo.ngx with a row's options and runs the row's call.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local T = require "spec.fault_table"

local json = H.json

local ROW_LOCATION = [[
        location = /fault-row { content_by_lua_block {
            local cjson = require "cjson.safe"
            local mq = require "mediquo.ngx"
            ngx.req.read_body()
            local t = cjson.decode(ngx.req.get_body_data())
            local ok, cerr = mq.configure(t.opts)
            if not ok then ngx.status = 500; return ngx.say(tostring(cerr)) end
            local v, err = mq[t.op](t.a, t.b)
            local e = err and { kind = err.kind, status = err.status, attempts = err.attempts,
                                message = err.message, effect = err.effect }
            ngx.say(cjson.encode{ value = v or cjson.null, err = e or cjson.null, stats = mq.stats() })
        } }
        location = /health]]

describe("engine fault table, mediquo.ngx", function()
    local gw, path
    setup(function()
        path = NH.conf_variant(function(conf)
            return (conf:gsub("        location = /health", function() return ROW_LOCATION end, 1))
        end)
        gw = NH.gateway(H.sandbox{}, { workers = 1, conf = path })
    end)
    teardown(function()
        if gw then gw:stop() end
        if path then os.remove(path) end
    end)

    for _, row in ipairs(T.rows) do
        it(row.name, function()
            local sb = H.sandbox{}
            local code = T.code(row)
            local skip = T.prepare(sb, row, code)
            local opts = T.options(sb, row)
            opts.metrics = false
            local op, a, b = T.args(row, code)
            local st, out = gw:post("/fault-row", { opts = opts, op = op, a = a, b = b })
            assert.are.equal(200, st, type(out) == "string" and out or json.encode(out))
            local v = out.value ~= json.null and out.value or nil
            local err = out.err ~= json.null and out.err or nil
            T.check(row, v, err, T.seen(sb, skip), sb:state()[code])
            -- the adapter counted exactly what the sandbox saw
            assert.are.equal(row.requests, out.stats.requests)
            if row.ok then
                assert.are.equal(1, out.stats.ok)
            else
                assert.are.equal(1, out.stats.by_kind[row.kind])
            end
        end)
    end

    it("logged no Lua error in nginx", function()
        local log = gw:error_log()
        assert.falsy(log:find("runtime error", 1, true), log)
        assert.falsy(log:find("[alert]", 1, true), log)
    end)
end)
