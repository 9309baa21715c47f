-- The rule in force is never silently different from the one asked for
-- (issue 23), with bin/mediquo as a real process against the sandbox:
--  * --per-minute / --period / --burst other than the rule in force for the
--    key: exit 2 before anything is sent (the sandbox saw nothing, no
--    journal), naming the rule, who set it and when, and `limiter set-rule`;
--  * without those flags the rule in force is used and named on stderr;
--  * `limiter set-rule` changes it for every sharer (seen by another
--    process's limiter), after which the same import runs;
--  * `limiter status` prints the rule in force as it is (not the asked
--    period mixed in) and needs no API keys.
local H = require "spec.helper"
local C = require "spec.cli_helper"
local limiter = require "mediquo.limiter"

local q = H.shell_quote
local lit = C.lit
local sb, tmp

local NOKEYS = "env -u MEDIQUO_API_KEY -u MEDIQUO_SECRET_KEY"

describe("mediquo and the rule in force", function()
    C.sandboxes(0, function(a, _, c) sb, tmp = a, c end)

    local function cli(args, env) return C.run(tmp, args, env) end
    local function base(key)
        return "--sandbox --base-url " .. q(sb.base_url) .. " --rate-limit-key " .. key .. " "
    end

    it("stops before sending when the flags differ from the rule in force, and says what to do", function()
        local key = C.uniq("rk")
        -- another process made the budget first: 600 per 60 s
        local other = assert(limiter.new{ key = key, per_minute = 600, period = 60 })
        finally(function() other:close() end)
        local file = C.creates_file(tmp .. "/conflict.csv", C.uniq("cf"), 5)
        local out, err, rc = cli(base(key) .. "--per-minute 12 --period 10 import " .. q(file))
        assert.equal(2, rc, out .. err)
        assert.equal("", out)
        assert.matches("^mediquo: the rule in force for " .. lit(key) .. " is 600 per 60s %(burst 60%), "
                       .. "set by pid %d+ at %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ; this command asks for "
                       .. "%-%-per%-minute 12 %-%-period 10%. Nothing was sent%. ", err)
        assert.matches("mediquo limiter set%-rule %-%-per%-minute 12 %-%-period 10 %-%-rate%-limit%-key "
                       .. lit(key), err)
        assert.matches("leave out %-%-per%-minute, %-%-period and %-%-burst", err)
        assert.equal(0, #sb:log())                          -- nothing sent
        assert.is_nil(H.read_file(file .. ".journal"))      -- nothing journaled
        -- --burst alone differing stops it too; a single command as well
        out, err, rc = cli(base(key) .. "--burst 5 cancel nope")
        assert.equal(2, rc, out .. err)
        assert.matches("asks for %-%-burst 5", err)
        assert.equal(0, #sb:log())
        -- flags equal to the rule in force are fine
        out, err, rc = cli(base(key) .. "--per-minute 600 --period 60 import " .. q(file) .. " --no-journal")
        assert.equal(0, rc, out .. err)
        assert.matches("5 rows: 5 ok", out)
    end)

    it("uses the rule in force without the flags and names it on stderr", function()
        local key = C.uniq("rk")
        local other = assert(limiter.new{ key = key, per_minute = 30, period = 20, burst = 10 })
        finally(function() other:close() end)
        local file = C.creates_file(tmp .. "/named.csv", C.uniq("nm"), 3)
        local out, err, rc = cli(base(key) .. "import " .. q(file) .. " --no-journal")
        assert.equal(0, rc, out .. err)
        assert.matches("3 rows: 3 ok", out)
        assert.matches("^mediquo: rate limit for " .. lit(key) .. ": 30 per 20s %(burst 10%), set by pid %d+ "
                       .. "at [%dT:Z-]+ %(the rule in force%)\n$", err)
    end)

    it("changes the rule for every sharer with 'limiter set-rule', then the import runs", function()
        local key = C.uniq("rk")
        local other = assert(limiter.new{ key = key, per_minute = 600, period = 60 })
        finally(function() other:close() end)
        local out, err, rc = cli(base(key) .. "limiter set-rule --per-minute 12 --period 10")
        assert.equal(0, rc, out .. err)
        assert.matches("^limiter " .. lit(key) .. ": the rule in force is now 12 per 10s %(burst 12%), set by "
                       .. "pid %d+ at [%dT:Z-]+ %(it was 600 per 60s %(burst 60%)", out)
        -- another process sees it
        local r = other:status().rule
        assert.same({ 12, 10, 12 }, { r.per_minute, r.period, r.burst })
        local file = C.creates_file(tmp .. "/after.csv", C.uniq("af"), 4)
        out, err, rc = cli(base(key) .. "--per-minute 12 --period 10 import " .. q(file) .. " --no-journal")
        assert.equal(0, rc, out .. err)
        assert.matches("4 rows: 4 ok", out)
        -- set-rule needs --per-minute
        out, err, rc = cli(base(key) .. "limiter set-rule --period 5")
        assert.equal(2, rc, out)
        assert.matches("limiter set%-rule needs %-%-per%-minute N", err)
    end)

    it("shows the rule in force as it is with 'limiter status', with no API keys", function()
        local key = C.uniq("rk")
        local other = assert(limiter.new{ key = key, per_minute = 600, period = 60 })
        finally(function() other:close() end)
        assert(other:acquire(0))
        -- no credentials, no --sandbox: a read of the limiter needs none;
        -- --period 10 asked for must not be mixed into the rule shown
        local out, err, rc = cli("--rate-limit-key " .. key .. " --period 10 limiter status", NOKEYS)
        assert.equal(0, rc, out .. err)
        assert.matches("^limiter " .. lit(key) .. ": 600 per 60s, used 1, available 599, not paused, "
                       .. ".*rule set by pid %d+", out)
        out, err, rc = cli("--rate-limit-key " .. key .. " --json limiter status", NOKEYS)
        assert.equal(0, rc, err)
        local st = require("cjson").decode(out)
        assert.same({ 600, 60, 60 }, { st.per_minute, st.period, st.burst })
    end)
end)
