-- spec/42-hostile_encodings_spec.lua: a hostile server (spec/hostile/) that
-- refuses each request and quotes both keys back in its message - raw, as
-- JSON \u escapes, percent-encoded (upper and lower hex, reserved bytes or
-- every byte), form-encoded, and base64 (the key, the secret, key:secret as
-- Basic auth, URL-safe unpadded, inside a longer string at each byte phase,
-- in a JSON token, percent-encoded), as a 403's message and a 422's message
-- and field message: through the blocking client, a batch, the CLI (text
-- and --json) and the example gateway (real nginx), the keys
-- are found in none of the outputs, each searched for in every encoding
-- (spec/hostile/encodings.lua). The keys hold '+', '/', '=', '~', '?' and
-- a space, so every encoding differs from the raw bytes and base64 meets
-- both alphabets.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"
local C = require "spec.cli_helper"
local hostile = require "spec.hostile.server"
local E = require "spec.hostile.encodings"

local json = H.json
local q = H.shell_quote

local KEY = "AK~~~live+7f/3a9c="
local SECRET = "SK??s3cr3t/Zq+w== x9>>"

-- every form either key could leak in
local NEEDLES = {}
for _, k in ipairs{ KEY, SECRET } do
    for _, n in ipairs(E.needles(k)) do
        NEEDLES[#NEEDLES + 1] = { what = (k == KEY and "api key " or "secret key ") .. n[1], text = n[2] }
    end
end

-- every string in v (tables recursively, keys too, and tostring of
-- anything with a metatable), into out
local function strings(v, out, depth)
    depth = depth or 0
    local t = type(v)
    if t == "string" then
        out[#out + 1] = v
    elseif t == "table" and depth < 8 then
        if getmetatable(v) then out[#out + 1] = tostring(v) end
        for k, x in pairs(v) do
            strings(k, out, depth + 1)
            strings(x, out, depth + 1)
        end
    elseif v ~= nil then
        out[#out + 1] = tostring(v)
    end
    return out
end

-- fails naming the needle and where it was found; a JSON text is also
-- searched decoded
local function assert_clean(where, ...)
    local texts = strings({ ... }, {})
    local n = #texts
    for i = 1, n do
        for line in texts[i]:gmatch("[^\n]+") do
            local d = json.decode(line)
            if type(d) == "table" then strings(d, texts) end
        end
    end
    assert.is_true(#texts > 0, where .. ": nothing to search")
    for _, s in ipairs(texts) do
        for _, nd in ipairs(NEEDLES) do
            assert.is_nil(s:find(nd.text, 1, true),
                          ("%s leaks the %s (%s) in: %s"):format(where, nd.what, nd.text, s:sub(1, 400)))
        end
    end
end

local A = { code = "E1", starts_at = "2030-05-20T10:00:00Z", patient = "pat-1", professional = "prof-demo-1" }

describe("hostile server quoting the keys back in every encoding", function()
    local srv, tmp
    setup(function()
        srv = hostile.start()
        tmp = C.tmpdir()
    end)
    teardown(function()
        if srv then srv:stop() end
        C.cleanup(tmp)
    end)

    it("has keys whose encodings all differ from the raw bytes (so each search means something)", function()
        for _, nd in ipairs(NEEDLES) do
            assert.is_true(#nd.text >= 6, nd.what)
            if not nd.what:find("raw", 1, true) then
                assert.is_nil(nd.text:find(nd.what:find("^api") and KEY or SECRET, 1, true), nd.what)
            end
        end
        -- the URL-safe runs differ from the standard ones somewhere
        local url_differs = false
        for _, k in ipairs{ KEY, SECRET } do
            for _, n in ipairs(E.needles(k)) do
                if n[1]:find("url", 1, true) and n[2]:find("[-_]") then url_differs = true end
            end
        end
        assert.is_true(url_differs)
    end)

    it("finds what it searches for when it is there (the search is not blind)", function()
        for _, name in ipairs(E.NAMES) do
            local text = E.ECHOES[name](KEY, SECRET)
            assert.has_error(function() assert_clean("planted " .. name, text) end, nil, name)
        end
    end)

    for _, name in ipairs(E.NAMES) do
        it("keeps " .. name .. " out of the client's errors and a batch's results", function()
            for _, status in ipairs{ "enc", "enc422" } do
                local c = H.client({ api_key = KEY, secret_key = SECRET, rate_limit = false,
                                     base_url = srv.url .. "/echo-" .. status .. "-" .. name,
                                     timeout = 5, deadline = 10, max_retries = 1 })
                local v, err = c:create(A)
                assert.is_nil(v)
                assert.equal(status == "enc" and "forbidden" or "unprocessable", err.kind)
                -- the refusal did come back with its message (what is scrubbed is there)
                assert.truthy(err.message:find("*", 1, true), err.message)
                local _, err2 = c:cancel("E1")
                local results, summary = c:run_batch({
                    { op = "create", code = "E2", starts_at = A.starts_at, patient = "p", professional = "h" },
                    { op = "cancel", code = "E3" },
                }, { concurrency = 2 })
                assert.equal(2, summary.failed)
                assert_clean("client " .. status, err, tostring(err), err2, tostring(err2),
                             results, tostring(results[1].err), summary, c:stats(), tostring(c))
                c:close()
            end
        end)
    end

    it("keeps every encoding out of the CLI's text and --json output", function()
        local env = ("MEDIQUO_API_KEY=%s MEDIQUO_SECRET_KEY=%s"):format(q(KEY), q(SECRET))
        -- a create meets the 403, a cancel the 422 with a field message
        local create = " create --code E1 --starts-at 2030-05-20T10:00:00Z --patient p --professional h"
        for _, name in ipairs(E.NAMES) do
            local base = "--base-url " .. q(srv.url .. "/echo-encmix-" .. name) .. " --no-rate-limit "
            for _, cmd in ipairs{ "cancel E1", create } do
                local out, err, rc = C.run(tmp, base .. cmd, env)
                assert.equal(1, rc, out .. err)
                assert.truthy((out .. err):find("*", 1, true), name .. ": " .. out .. err)
                assert_clean("cli text " .. name .. " " .. cmd, out, err)
                out, err, rc = C.run(tmp, base .. "--json " .. cmd, env)
                assert.equal(1, rc, out .. err)
                assert.is_table(json.decode(out), out)
                assert_clean("cli --json " .. name .. " " .. cmd, out, err)
            end
        end
    end)

    it("keeps every encoding out of the example gateway's answers and its error.log", function()
        for _, name in ipairs(E.NAMES) do
            local gw = NH.gateway({ base_url = srv.url .. "/echo-encmix-" .. name },
                                  { workers = 1, env = { MEDIQUO_API_KEY = KEY, MEDIQUO_SECRET_KEY = SECRET,
                                                          MEDIQUO_MAX_RETRIES = 0 } })
            local ok, e = pcall(function()
                local st, body = gw:post("/book", A)
                assert.equal(502, st, json.encode(body))
                assert.equal("forbidden", body.error)
                -- a 422 (the field messages too) goes to the caller as 422
                local st2, body2 = gw:post("/cancel", { code = "E1" })
                assert.equal(422, st2, json.encode(body2))
                assert.equal("unprocessable", body2.error)
                assert.truthy(json.encode(body2.fields or {}):find("*", 1, true), json.encode(body2))
                assert_clean("gateway " .. name, json.encode(body), body, json.encode(body2), body2,
                             gw:error_log())
            end)
            gw:stop()
            assert(ok, e)
        end
    end)
end)
