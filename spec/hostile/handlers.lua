-- spec/hostile/handlers.lua: a deliberately hostile HTTP server for
-- spec/14-hostile_spec.lua and spec/15-secrets_spec.lua, run by real nginx
-- with its Lua module (spec/hostile/server.lua starts it). Not the sandbox:
-- the sandbox stays a faithful stand-in; this one misbehaves on purpose.
--
-- The first path segment picks the behaviour, so a client's base_url
-- "http://127.0.0.1:PORT/<scenario>" makes every call hit it:
--
--   redirect-301|302|307|308  answer that status, Location: the trap listener
--   trickle                   200, then one body byte per second (bounded)
--   big-header                200 with one 100 KB header line
--   bad-utf8                  400/422 whose `message` is not valid UTF-8
--   deep-ok / deep-400        JSON nested 10,000 deep, as a 200 / a 400
--   shape-<name>              a 200 whose JSON is not the documented shape
--   echo-secret               403 whose message quotes the X-Secret-Key sent
--   echo-secret-ok            200 appointment whose url quotes both keys, one
--                             plainly and one written with \u escapes
--   echo-enc-<name>           403 whose message quotes both keys in encoding
--                             <name> of spec/hostile/encodings.lua (percent,
--                             form, base64 ...); echo-enc422-<name>: a 422
--                             with the same in a field's message too;
--                             echo-encmix-<name>: 403 to a POST, 422 else
--
-- The trap listener (second port) records every request's method, URI and
-- headers in a shared dict; GET /__hostile/trap on the main port returns
-- them as JSON, POST /__hostile/reset empties the record.

local cjson = require "cjson.safe"

local ngx = ngx
local rep = string.rep
local concat = table.concat

local _M = { _VERSION = "0.1.0" }

local TRICKLE_MAX = 30      -- seconds: a trickle ends even if nobody hangs up

local SHAPES = {
    ["data-empty"] = '{"data":{}}',
    ["array"] = '[]',
    ["scalar"] = '"just a string"',
    ["null"] = 'null',
    ["types"] = '{"data":{"appointment":{"code":12,"url":{"x":1}}}}',
    ["no-url"] = '{"data":{"appointment":{"code":"A1"}}}',
    ["empty"] = '',
    ["html"] = '<html><body>Welcome to nginx!</body></html>',
}

local function json_answer(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(body)
    return ngx.exit(status)
end

local function deep(n)
    return rep("[", n) .. rep("]", n)
end

-- the trap: whatever arrives is written down
function _M.trap()
    local dict = ngx.shared.hostile
    local n = dict:incr("trap_n", 1, 0)
    local h = ngx.req.get_headers(100, true)
    local names = {}
    for k, v in pairs(h) do
        names[#names + 1] = k .. ": " .. (type(v) == "table" and concat(v, ", ") or tostring(v))
    end
    dict:set("trap_" .. n, cjson.encode{
        method = ngx.req.get_method(), uri = ngx.var.request_uri, headers = names,
    })
    return json_answer(200, '{"data":{"appointment":{"code":"stolen","url":"http://trap/"}}}')
end

local function trap_list()
    local dict = ngx.shared.hostile
    local out = {}
    for i = 1, dict:get("trap_n") or 0 do
        out[#out + 1] = cjson.decode(dict:get("trap_" .. i) or "null")
    end
    return out
end

function _M.handle()
    local uri = ngx.var.uri
    local scenario = uri:match("^/([^/]+)")
    ngx.req.read_body()    -- a request body is never left half-read

    if scenario == "__hostile" then
        if uri == "/__hostile/trap" then
            return json_answer(200, cjson.encode{ requests = trap_list() })
        elseif uri == "/__hostile/reset" then
            ngx.shared.hostile:flush_all()
            return json_answer(200, '{}')
        end
        return json_answer(404, '{"message":"no such control"}')
    end

    local status = scenario and tonumber(scenario:match("^redirect%-(%d%d%d)$"))
    if status then
        ngx.header["Location"] = "http://127.0.0.1:" .. ngx.var.trap_port .. "/v1" .. uri:gsub("^/[^/]+", "")
        return json_answer(status, '{"message":"moved"}')
    end

    if scenario == "trickle" then
        ngx.status = 200
        ngx.header["Content-Type"] = "application/json"
        ngx.header["Content-Length"] = TRICKLE_MAX
        local body = '{"data":{"appointment":{"code":"slow","url":"http://x/"}}}'
        for i = 1, TRICKLE_MAX do
            ngx.print(body:sub(i, i))
            local ok = ngx.flush(true)
            if not ok then return ngx.exit(444) end   -- the client hung up
            ngx.sleep(1)
        end
        return ngx.exit(200)
    end

    if scenario == "big-header" then
        ngx.header["X-Hostile-Big"] = rep("h", 100 * 1024)
        return json_answer(200, '{"data":{"appointment":{"code":"big","url":"http://x/"}}}')
    end

    if scenario == "bad-utf8" then
        -- a lone continuation byte, a truncated sequence, an overlong '/',
        -- a surrogate, and a control character
        return json_answer(422, '{"message":"bad \128 byte \195( over \192\175 sur \237\160\128 ctl \1 end",'
                                .. '"errors":{"code":["\255\254 nope"]}}')
    end

    if scenario == "deep-ok" then
        return json_answer(200, deep(10000))
    end
    if scenario == "deep-400" then
        return json_answer(400, '{"message":' .. deep(10000) .. '}')
    end

    local shape = scenario and scenario:match("^shape%-(.+)$")
    if shape and SHAPES[shape] then
        return json_answer(200, SHAPES[shape])
    end

    if scenario == "echo-secret" then
        local k = ngx.var.http_x_api_key or ""
        local s = ngx.var.http_x_secret_key or ""
        return json_answer(403, cjson.encode{
            message = "invalid credentials: key " .. k .. " secret " .. s,
            errors = { secret_key = { "got " .. s } },
        })
    end

    if scenario == "echo-secret-ok" then
        local k = ngx.var.http_x_api_key or ""
        local s = ngx.var.http_x_secret_key or ""
        local escaped = s:gsub(".", function(c) return ("\\u%04x"):format(c:byte()) end)
        return json_answer(200, '{"data":{"appointment":{"code":"A1","url":"https://x/'
            .. k .. '/' .. escaped .. '"}}}')
    end

    local which, name = (scenario or ""):match("^echo%-(enc422)%-(.+)$")
    if not which then which, name = (scenario or ""):match("^echo%-(encmix)%-(.+)$") end
    if not which then which, name = (scenario or ""):match("^echo%-(enc)%-(.+)$") end
    if which == "encmix" then
        which = ngx.req.get_method() == "POST" and "enc" or "enc422"
    end
    local echo = name and require("encodings").ECHOES[name]
    if echo then
        local k = ngx.var.http_x_api_key or ""
        local s = ngx.var.http_x_secret_key or ""
        local text = echo(k, s)
        local quoted = cjson.encode(text)
        if name == "json_u" then
            quoted = '"' .. require("encodings").json(text, true) .. '"'
        end
        if which == "enc422" then
            return json_answer(422, '{"message":' .. quoted .. ',"errors":{"secret_key":[' .. quoted .. ']}}')
        end
        return json_answer(403, '{"message":' .. quoted .. '}')
    end

    return json_answer(404, '{"message":"unknown scenario"}')
end

return _M
