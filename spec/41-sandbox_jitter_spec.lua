-- spec/41-sandbox_jitter_spec.lua: the sandbox at its strictest (issue 20):
-- `--sliding` (no window of `--window` seconds ever holds more than
-- `--per-minute` counted requests) and `--latency-ms MIN-MAX` (each request
-- held a random time in that range, then counted and answered: transit
-- jitter). Real nginx sandboxes, plain HTTP (curl); ~40 s.

local H = require "spec.helper"
local json = H.json

local BODY = '{"appointment":{"code":"%s","starts_at":"2024-05-20T10:00:00Z"},'
    .. '"patient":{"code":"p-1"},"professional":{"hash":"prof-demo-1"}}'

-- one create, answered -> status, headers, seconds it took
local function create(sb, code)
    local t0 = H.now()
    local status, _, hs = H.http("POST", sb.base_url .. "/appointments", BODY:format(code), H.auth())
    return status, hs, H.now() - t0
end

-- the shell command that sends `n` creates `gap` seconds apart whatever
-- their answers take (curl in the background: a send never waits for the
-- one before), their statuses into the file `out`
local function paced(sb, n, gap, tag, out)
    local cmd = {}
    for i = 1, n do
        cmd[#cmd + 1] = ("curl -s -o /dev/null -w '%%{http_code}\\n' -X POST -H 'X-API-Key: %s' "
            .. "-H 'X-Secret-Key: %s' -H 'Content-Type: application/json' -d %s %s/appointments >>%s &")
            :format(H.api_key, H.secret_key, H.shell_quote(BODY:format(tag .. i)), sb.base_url, out)
        cmd[#cmd + 1] = ("sleep %.3f"):format(gap)
    end
    cmd[#cmd + 1] = "wait"
    return "(" .. table.concat(cmd, "\n") .. ")"
end

local function statuses(out)
    local st = {}
    for _, l in ipairs(H.lines(out)) do st[#st + 1] = tonumber(l) end
    os.remove(out)
    return st
end

local function count(t, v)
    local n = 0
    for _, x in ipairs(t) do if x == v then n = n + 1 end end
    return n
end

describe("sandbox --sliding and --latency-ms MIN-MAX", function()
    it("refuses a bad range, and says what it runs", function()
        for _, bad in ipairs{ "50-10", "x", "1-2-3", "-5", "70000" } do
            local out, code = H.run(H.shell_quote(H.bin) .. " start --port 1 --latency-ms "
                                    .. H.shell_quote(bad) .. " 2>&1")
            assert.is_not.equal(0, code, bad)
            assert.matches("--latency-ms", out, 1, true)
        end
        local sb = H.sandbox{ sliding = true, latency_ms = "5-20", per_minute = 7, window = 3 }
        local _, raw = H.http("GET", sb.url .. "/__sandbox/ping")
        local s = json.decode(raw).settings
        assert.same({ true, 5, 20, 7, 3 },
                    { s.sliding, s.latency_ms, s.latency_max_ms, s.per_minute, s.window })
    end)

    it("holds each request a random time in MIN-MAX", function()
        local sb = H.sandbox{ latency_ms = "40-120" }
        local lo, hi = math.huge, 0
        for i = 1, 30 do
            local status, _, took = create(sb, "lat-" .. i)
            assert.equal(200, status)
            lo, hi = math.min(lo, took), math.max(hi, took)
        end
        assert.truthy(lo >= 0.039, "fastest " .. lo)
        assert.truthy(hi < 0.120 + 0.5, "slowest " .. hi)
        -- drawn, not fixed: 30 uniform draws over 80 ms spread well over 20 ms
        assert.truthy(hi - lo > 0.02, ("all between %.3f and %.3f s"):format(lo, hi))
    end)

    it("--sliding: no window ever holds more than the limit (a fixed window would)", function()
        local function run(opts)
            local sb = H.sandbox(opts)
            local st = {}
            st[#st + 1] = create(sb, "s-a")             -- t = 0: opens a fixed window
            H.sleep(1.5)
            for i = 1, 4 do st[#st + 1] = create(sb, "s-b" .. i) end    -- t = 1.5: 5 of 5
            H.sleep(0.7)                                -- t = 2.2: the fixed window is over
            local hs
            for i = 1, 5 do
                local s, h = create(sb, "s-c" .. i)
                st[#st + 1] = s
                hs = hs or (s == 429 and h)
            end
            return st, hs
        end
        local st, hs = run{ sliding = true, per_minute = 5, window = 2 }
        -- the 4 of t = 1.5 are in every window up to t = 3.5: 1 more, not 5
        assert.same({ 200, 200, 200, 200, 200, 200, 429, 429, 429, 429 }, st)
        local ra = tonumber(hs["retry-after"])
        assert.truthy(ra and ra >= 1 and ra <= 2, tostring(hs["retry-after"]))
        assert.truthy(tonumber(hs["x-ratelimit-reset"]))
        -- the control: the fixed window (the default) lets 10 in 0.7 s through
        st = run{ per_minute = 5, window = 2 }
        assert.equal(10, count(st, 200))
    end)

    it("counts a request when it is released: sent 1.05 s apart at 1 per 1 s, jitter makes 429s", function()
        -- two sandboxes, the same sends at once: with a random hold of
        -- 0-400 ms a request may be counted less than 1 s after the one
        -- before (each pair: ~38%); with a fixed hold of 200 ms, never
        local jit = H.sandbox{ sliding = true, per_minute = 1, window = 1, latency_ms = "0-400" }
        local fixed = H.sandbox{ sliding = true, per_minute = 1, window = 1, latency_ms = 200 }
        local oa, ob = os.tmpname(), os.tmpname()
        H.run(paced(jit, 16, 1.05, "j-", oa) .. " & " .. paced(fixed, 16, 1.05, "f-", ob) .. " & wait")
        local a, b = statuses(oa), statuses(ob)
        assert.equal(16, #a)
        assert.equal(16, #b)
        assert.equal(16, count(b, 200), "fixed hold: " .. table.concat(b, " "))
        assert.truthy(count(a, 429) >= 1, "no 429 from 0-400 ms of jitter: " .. table.concat(a, " "))
        -- the log's 429s are the ones counted out of order
        local logged = 0
        for _, e in ipairs(jit:api_log()) do if e.status == 429 then logged = logged + 1 end end
        assert.equal(count(a, 429), logged)
    end)
end)
