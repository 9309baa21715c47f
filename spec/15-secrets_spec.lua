-- Secrets never leak: every client the project ships (the blocking client,
-- batches, the CLI, the nginx adapter) is run with recognisable keys through
-- every outcome (success, 403, invalid arguments, refused connection,
-- timeout, rate limit), and everything they produce is scanned for the
-- keys: error fields and tostring, client tostring, stats, CLI stdout and
-- stderr, the gateway's answers, metrics and error log, the sandbox's log
-- and error log.
local H = require "spec.helper"
local mediquo = require "mediquo"
local hostile = require "spec.hostile.server"

local json = H.json
local q = H.shell_quote

local function hex(n)
    local t = {}
    for i = 1, n do t[i] = ("%x"):format(math.random(0, 15)) end
    return table.concat(t)
end

math.randomseed(os.time() + math.floor(H.now() * 1e6) % 1e6)
local SECRET = "S3CRET-CANARY-" .. hex(16)
local KEY = "K3Y-CANARY-" .. hex(16)
-- what must never show up anywhere our code writes
local NEEDLES = { SECRET, KEY, H.secret_key }

local sb
local seen      -- every string produced, with where it came from
local function reset_seen() seen = {} end

-- record(where, value): strings, numbers, tables (recursively, keys too),
-- and the tostring of anything with a metatable
local function record(where, v, depth)
    depth = depth or 0
    local t = type(v)
    if t == "string" then
        seen[#seen + 1] = { where = where, text = v }
    elseif t == "table" and depth < 8 then
        if getmetatable(v) then seen[#seen + 1] = { where = where .. " (tostring)", text = tostring(v) } end
        for k, x in pairs(v) do
            record(where .. "." .. tostring(k), k, depth + 1)
            record(where .. "." .. tostring(k), x, depth + 1)
        end
    elseif v ~= nil then
        seen[#seen + 1] = { where = where, text = tostring(v) }
    end
end

-- fails naming where a needle showed up
local function assert_clean(needles, what)
    assert.is_true(#seen > 0, "nothing was recorded: the scan would prove nothing")
    for _, s in ipairs(seen) do
        for _, needle in ipairs(needles or NEEDLES) do
            assert.is_nil(s.text:find(needle, 1, true),
                          ("%s leaks a key in %s: %s"):format(what or "output", s.where, s.text:sub(1, 300)))
        end
    end
end

local function read(path)
    return H.read_file(path) or ""
end

local A = { code = "S1", starts_at = "2030-05-20T10:00:00Z", patient = "pat-1", professional = "prof-demo-1" }

local function new_client(extra)
    return H.client({ api_key = KEY, secret_key = SECRET, base_url = sb.base_url, rate_limit = false,
                      timeout = 2, deadline = 4, max_retries = 1 }, extra)
end

-- every operation on a client, everything recorded
local function exercise(c, tag)
    record(tag .. " client", tostring(c))
    record(tag .. " core", tostring(c._core))
    local code = "S-" .. hex(8)
    local calls = {
        { "create", c:create{ code = code, starts_at = A.starts_at, patient = A.patient,
                              professional = A.professional } },
        { "reschedule", c:reschedule(code, "2030-05-21T10:00:00Z") },
        { "cancel", c:cancel(code) },
        { "bad create", c:create{ code = "", starts_at = "2030-02-30T10:00:00Z" } },
        { "bad reschedule", c:reschedule("x\1", {}) },
        { "bad cancel", c:cancel(SECRET:rep(300)) },
    }
    for _, r in ipairs(calls) do
        record(tag .. " " .. r[1] .. " value", r[2])
        record(tag .. " " .. r[1] .. " err", r[3])
    end
    local results, summary = c:run_batch({
        { op = "create", code = code .. "b", starts_at = A.starts_at, patient = "p", professional = "prof-demo-1" },
        { op = "cancel", code = code .. "b" },
        { op = "cancel" },
    }, { concurrency = 2 })
    record(tag .. " batch results", results)
    record(tag .. " batch summary", summary)
    record(tag .. " stats", c:stats())
    return calls
end

describe("secrets", function()
    setup(function() sb = H.sandbox() end)
    before_each(function()
        sb:reset()
        reset_seen()
    end)

    it("are found by the scan when planted (so a clean scan means something)", function()
        record("planted", { nested = { "prefix " .. SECRET .. " suffix" } })
        assert.has_error(function() assert_clean() end)
        reset_seen()
        record("planted key", setmetatable({}, { __tostring = function() return KEY end }))
        assert.has_error(function() assert_clean() end)
    end)

    it("are absent from everything the client produces on a 403", function()
        local c = new_client()
        local calls = exercise(c, "403")
        assert.equal("forbidden", calls[1][3].kind)     -- the path under test was taken
        c:close()
        record("closed client", tostring(c))
        assert_clean()
    end)

    it("are absent from errors of refused options and arguments", function()
        local bad = {
            { api_key = KEY, secret_key = SECRET .. "\n" },
            { api_key = KEY .. "\0", secret_key = SECRET },
            { api_key = KEY:rep(200), secret_key = SECRET },
            { api_key = KEY, secret_key = SECRET:rep(200) },
            { api_key = KEY, secret_key = SECRET, timeout = SECRET },
            { api_key = KEY, secret_key = SECRET, base_url = "ftp://x/" },
            { api_key = { KEY }, secret_key = SECRET },
            { api_key = KEY, secret_key = SECRET, rate_limit = { per_minute = SECRET } },
            { api_key = KEY, secret_key = SECRET, ca_file = "/nonexistent/" .. SECRET },
        }
        for i, o in ipairs(bad) do
            local c, err = mediquo.new(o)
            assert.is_nil(c, "case " .. i)
            -- the unreadable ca_file is the host's setup (config), the rest bad input
            assert.equal(i == #bad and "config" or "invalid_argument", err.kind)
            record("new #" .. i, err)
        end
        assert_clean({ KEY, H.secret_key, SECRET })
    end)

    it("are absent on a refused connection, a timeout and a rate limit", function()
        -- nothing listens on port 1 of loopback
        local c = new_client{ base_url = "http://127.0.0.1:1/v1" }
        local calls = exercise(c, "refused")
        assert.equal("network", calls[1][3].kind)
        c:close()

        sb:faults{ next = 20, mode = "delay", ms = 1500 }
        c = new_client{ timeout = 0.5, max_retries = 0 }
        calls = exercise(c, "timeout")
        assert.equal("timeout", calls[1][3].kind)
        c:close()
        sb:reset()

        local dir = H.run('mktemp -d "${TMPDIR:-/tmp}/mediquo-secrets-XXXXXX"'):gsub("%s+$", "")
        c = new_client{ rate_limit = { per_minute = 1, burst = 1, max_wait = 0, key = "secrets-" .. hex(8),
                                       dir = dir } }
        calls = exercise(c, "rate limited")
        assert.equal("rate_limited", calls[2][3].kind)
        c:close()
        H.run("rm -rf " .. q(dir))
        assert_clean()
    end)

    it("are absent from the success path with the real pair", function()
        local c = new_client{ api_key = H.api_key, secret_key = H.secret_key }
        local calls = exercise(c, "ok")
        assert.is_nil(calls[1][3], tostring(calls[1][3]))
        assert.is_string(calls[1][2].url)
        assert.is_true(calls[3][2])
        c:close()
        assert_clean()
    end)

    it("are absent from the sandbox's log and error log", function()
        local c = new_client()
        exercise(c, "log")
        c:close()
        local log = sb:log()
        assert.is_true(#log >= 3)
        for _, e in ipairs(log) do assert.is_false(e.secret_ok) end
        -- The sandbox's log shows the X-API-Key it received (what a server
        -- sees: the log's purpose); only the secret must be absent there.
        record("sandbox log", json.encode(log))
        assert_clean({ SECRET, H.secret_key })
        reset_seen()
        record("sandbox error.log", read(sb.prefix .. "/logs/error.log") .. " ")
        assert_clean()
    end)

    it("are absent from the CLI's output", function()
        local bin = H.root .. "/bin/mediquo"
        if not io.open(bin, "rb") then
            pending("bin/mediquo is not there")
            return
        end
        local keys = os.tmpname()
        local f = assert(io.open(keys, "wb"))
        f:write("MEDIQUO_API_KEY=", KEY, "\nMEDIQUO_SECRET_KEY=", SECRET, "\n")
        f:close()
        local base = ("--base-url %s --no-rate-limit --timeout 2 --deadline 4"):format(q(sb.base_url))
        local env = ("MEDIQUO_API_KEY=%s MEDIQUO_SECRET_KEY=%s"):format(q(KEY), q(SECRET))
        local runs = {
            env .. " " .. q(bin) .. " " .. base .. " create --code C1 --starts-at 2030-05-20T10:00:00Z"
                .. " --patient p --professional prof-demo-1",
            env .. " " .. q(bin) .. " " .. base .. " --json cancel C1",
            env .. " " .. q(bin) .. " " .. base .. " reschedule C1 2030-02-30T10:00:00Z",
            q(bin) .. " " .. base .. " --keys-file " .. q(keys) .. " --json cancel C2",
            q(bin) .. " --base-url http://127.0.0.1:1/v1 --no-rate-limit --keys-file " .. q(keys) .. " cancel C3",
            env .. " " .. q(bin) .. " " .. base .. " --bogus-option",
        }
        for i, cmd in ipairs(runs) do
            local out, code = H.run(cmd .. " 2>&1")
            assert.is_true(code == 1 or code == 2, "run " .. i .. " exit " .. tostring(code) .. ": " .. out)
            assert.is_true(#out > 0)
            record("cli run " .. i, out)
        end
        os.remove(keys)
        assert_clean()
    end)

    it("are absent from the nginx adapter's answers, metrics and error log", function()
        local ok, NH = pcall(require, "spec.ngx_helper")
        if not ok or not io.open(H.root .. "/lua/mediquo/ngx.lua", "rb") then
            pending("the nginx adapter or its spec helper is not there")
            return
        end
        local gw = NH.gateway(sb, { workers = 1, threads = 2,
                                    env = { MEDIQUO_API_KEY = KEY, MEDIQUO_SECRET_KEY = SECRET,
                                            MEDIQUO_DEADLINE = 3 } })
        local st, body = gw:post("/book", { code = "N1", starts_at = A.starts_at, patient = "p",
                                            professional = "prof-demo-1" })
        assert.equal(502, st)       -- the gateway's own keys were refused upstream
        assert.equal("forbidden", type(body) == "table" and body.error)
        record("gateway book", body)
        st, body = gw:post("/cancel", { code = "N1" })
        assert.equal(502, st)
        record("gateway cancel", body)
        st, body = gw:post("/book", { code = "", starts_at = "nope" })
        assert.equal(400, st)
        record("gateway bad book", body)
        local _, metrics = gw:get("/metrics")
        record("gateway metrics", metrics)
        assert.is_true(#sb:log() >= 2)
        gw:stop()
        record("gateway error.log", gw:error_log() .. " ")
        assert_clean()
    end)

    -- A server that quotes the key it was sent (some APIs do: "invalid key
    -- ...") would put it in the error's message: the C transport, where the
    -- keys live, scrubs them from every answer before Lua sees it.
    it("are redacted from a server's message that quotes them", function()
        local srv = hostile.start()
        local c = new_client{ base_url = srv.url .. "/echo-secret" }
        local _, err = c:create(A)
        srv:stop()
        assert.equal("forbidden", err.kind)
        record("echo", err)
        assert_clean()
    end)

    -- On success client:create hands on only the code and the URL, read in
    -- C: those are scrubbed after unescaping, so "\u0073..." cannot smuggle
    -- a key past the scrub.
    it("are redacted from an appointment URL that quotes them, escaped or not", function()
        local srv = hostile.start()
        local c = new_client{ base_url = srv.url .. "/echo-secret-ok" }
        local a, err = c:create(A)
        srv:stop()
        assert.truthy(a, tostring(err))
        assert.equal("A1", a.code)
        assert.truthy(a.url:find("^https://x/%*+/%*+$"), a.url)
        record("echo url", a.url)
        assert_clean()
    end)
end)
