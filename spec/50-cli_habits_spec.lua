-- What people bring to an import and expect of a command line (issue 23),
-- bin/mediquo against the sandbox:
--  * a ';'-separated export with spreadsheet dates: `2030-05-20 10:00` read
--    with --timezone Europe/Madrid (the system's tzdata, DST as the zone
--    has it) is stored as 2030-05-20T08:00:00Z under the trimmed code;
--    --day-first, fixed offsets, a time the clocks skip or pass twice,
--    an unknown zone; every refusal names the line and the column;
--  * --dry-run checks every row and sends nothing (no journal);
--  * --version is the rockspec's version;
--  * a keys file group or others may read is refused unless
--    --insecure-keys-file;
--  * messages in one shape: "<where>: unknown field 'x' (did you mean
--    'y'?)" with err.field x, for mediquo.new, rate_limit, create fields,
--    run_batch options and the CLI's flags; a 404 off /v1 asks about it.
local H = require "spec.helper"
local C = require "spec.cli_helper"
local mediquo = require "mediquo"
local core = require "mediquo.core"

local q = H.shell_quote
local lit = C.lit
local sb, tmp

describe("mediquo CLI habits", function()
    C.sandboxes(0, function(a, _, c) sb, tmp = a, c end)

    local function cli(args, env) return C.run(tmp, args, env) end
    local function sbx() return C.sbx(sb) end

    it("reads a ';' export with spreadsheet dates in --timezone, cells trimmed", function()
        local x, w, d = C.uniq("X-8"), C.uniq("W"), C.uniq("D")
        local file = H.write_file(tmp .. "/export.csv", "op;code;starts_at;patient;professional\r\n"
            .. "create; " .. x .. " ;2030-05-20 10:00;  p ;prof-demo-1\r\n"        -- summer: +02:00
            .. "create;" .. w .. ";2030-01-15 10:00:30;p;prof-demo-1\r\n"           -- winter: +01:00
            .. "create;" .. d .. ";2030-05-20T10:00:00+05:00;p;prof-demo-1\r\n")    -- its own zone
        local out, err, rc = cli(sbx() .. "import " .. q(file) .. " --no-journal --timezone Europe/Madrid")
        assert.equal(0, rc, out .. err)
        assert.matches("3 rows: 3 ok", out)
        local st = sb:state()
        assert.truthy(st[x], "the code was not trimmed")
        assert.equal("2030-05-20T08:00:00Z", st[x].starts_at)
        assert.equal("p", st[x].patient)
        assert.equal("2030-01-15T09:00:30Z", st[w].starts_at)
        assert.equal("2030-05-20T05:00:00Z", st[d].starts_at)
        -- --day-first, and a fixed offset
        sb:reset()
        local f2 = H.write_file(tmp .. "/dayfirst.csv", "op,code,starts_at,patient,professional\n"
            .. "create," .. x .. ",20/05/2030 10:00,p,prof-demo-1\n")
        out, err, rc = cli(sbx() .. "import " .. q(f2) .. " --no-journal --day-first --timezone +02:00")
        assert.equal(0, rc, out .. err)
        assert.equal("2030-05-20T08:00:00Z", sb:state()[x].starts_at)
    end)

    it("refuses what it cannot read for sure, naming the line and the column", function()
        local file = H.write_file(tmp .. "/refused.csv", "op,code,starts_at,patient,professional\n"
            .. "create,a1,20/05/2030 10:00,p,prof-demo-1\n"        -- DD/MM or MM/DD?
            .. "create,a2,2030-05-20 10:00,p,prof-demo-1\n"        -- no zone, no --timezone
            .. "create,a3,2030-02-30 10:00Z,p,prof-demo-1\n")      -- no such day
        local out, err, rc = cli(sbx() .. "import " .. q(file) .. " --no-journal")
        assert.equal(1, rc, out .. err)
        assert.matches("line 2: FAILED create a1: invalid_argument: starts_at: '20/05/2030 10:00' is DD/MM/YYYY "
                       .. "or MM/DD/YYYY: say which with %-%-day%-first", out)
        assert.matches("line 3: FAILED create a2: invalid_argument: starts_at: '2030%-05%-20 10:00' has no zone: "
                       .. "add one %(Z, %+02:00%) or say the file's with %-%-timezone ZONE", out)
        assert.matches("line 4: FAILED create a3: invalid_argument: starts_at: '2030%-02%-30 10:00Z' is not a "
                       .. "valid date", out)
        -- the clocks skip 02:30 on 2030-03-31 in Madrid and pass 02:30 twice on 2030-10-27
        local dst = H.write_file(tmp .. "/dst.csv", "op,code,starts_at,patient,professional\n"
            .. "create,g1,2030-03-31 02:30,p,prof-demo-1\n"
            .. "create,g2,2030-10-27 02:30,p,prof-demo-1\n")
        out, err, rc = cli(sbx() .. "import " .. q(dst) .. " --no-journal --timezone Europe/Madrid")
        assert.equal(1, rc, out .. err)
        assert.matches("line 2: FAILED create g1: invalid_argument: starts_at: '2030%-03%-31 02:30' does not "
                       .. "exist in Europe/Madrid", out)
        assert.matches("line 3: FAILED create g2: invalid_argument: starts_at: '2030%-10%-27 02:30' happens "
                       .. "twice in Europe/Madrid", out)
        assert.equal(0, #sb:log())
        -- an unknown zone stops it before anything is read
        out, err, rc = cli(sbx() .. "import " .. q(dst) .. " --no-journal --timezone Mars/Olympus")
        assert.equal(2, rc, out)
        assert.matches("%-%-timezone Mars/Olympus is neither a zone of the system's tzdata", err)
    end)

    it("checks every row with --dry-run and sends nothing", function()
        local good = C.creates_file(tmp .. "/dry-good.csv", C.uniq("dry"), 5)
        local out, err, rc = cli(sbx() .. "import " .. q(good) .. " --dry-run")
        assert.equal(0, rc, out .. err)
        assert.equal("5 rows: 5 valid, 0 bad (dry run: nothing sent)\n", out)
        local bad = H.write_file(tmp .. "/dry-bad.csv", "op,code,starts_at,patient,professional,duration\n"
            .. "create,d1,2030-05-20T10:00:00Z,p,prof-demo-1,\n"
            .. "create,d2,2030-05-20T10:00:00Z,p,prof-demo-1,-5\n"
            .. "delete,d3,,,,\n"
            .. "reschedule,d4,2030-05-20T10:00:00Z,,,\n"
            .. "create,,2030-05-20T10:00:00Z,p,prof-demo-1,\n")
        out, err, rc = cli(sbx() .. "import " .. q(bad) .. " --dry-run")
        assert.equal(1, rc, out .. err)
        assert.matches("line 3: FAILED create d2: invalid_argument: duration: ", out)
        assert.matches("line 4: FAILED delete d3: invalid_argument: op: must be create, reschedule or cancel", out)
        assert.matches("line 6: FAILED create: invalid_argument: code: ", out)
        assert.is_nil(out:find("line 2:", 1, true))
        assert.is_nil(out:find("line 5:", 1, true))
        assert.matches("5 rows: 2 valid, 3 bad %(dry run: nothing sent%)\n$", out)
        assert.equal(0, #sb:log())
        assert.is_nil(H.read_file(bad .. ".journal"))
        assert.is_nil(H.read_file(good .. ".journal"))
    end)

    it("prints the rockspec's version with --version", function()
        local out, _, rc = cli("--version")
        assert.equal(0, rc)
        local v = out:match("^mediquo (%d+%.%d+%.%d+)\n$")
        assert.truthy(v, out)
        assert.equal(core._VERSION, v)
        -- one source: src/version.h; the release rockspec and the User-Agent agree
        assert.matches('#define MQ_VERSION "' .. lit(v) .. '"', H.read_file(H.root .. "/src/version.h"))
        local spec = H.read_file(H.root .. "/rockspec/mediquo-" .. v .. "-1.rockspec")
        assert.truthy(spec, "no rockspec for " .. v)
        assert.matches('\nversion = "' .. lit(v) .. '%-1"', spec)
        local rel = H.run("make -s -C " .. q(H.root) .. " -n rockspec-release 2>/dev/null")
        assert.truthy(rel:find("mediquo-" .. v .. "-1", 1, true), rel)
        cli(sbx() .. "cancel nope")
        assert.matches("^lua%-mediquo/" .. lit(v), sb:log()[1].user_agent)
    end)

    it("refuses a keys file its group or others may read, unless --insecure-keys-file", function()
        local keys = H.write_file(tmp .. "/keys", "MEDIQUO_API_KEY=sandbox-key\nMEDIQUO_SECRET_KEY=sandbox-secret\n")
        local base = " --base-url " .. q(sb.base_url) .. " --no-rate-limit "
        H.run("chmod 644 " .. q(keys))
        local out, err, rc = cli("--keys-file " .. q(keys) .. base .. "cancel nope")
        assert.equal(2, rc, out .. err)
        assert.matches("%-%-keys%-file " .. lit(keys) .. " is readable by others %(mode 0644%): chmod 600 it, "
                       .. "or pass %-%-insecure%-keys%-file", err)
        H.run("chmod 640 " .. q(keys))
        out, err, rc = cli("--keys-file " .. q(keys) .. base .. "cancel nope")
        assert.equal(2, rc, out)
        assert.matches("is readable by its group %(mode 0640%)", err)
        assert.equal(0, #sb:log())
        out, err, rc = cli("--keys-file " .. q(keys) .. " --insecure-keys-file" .. base .. "cancel nope")
        assert.equal(1, rc, out .. err)
        assert.matches("not_found %(HTTP 404%)", err)
        H.run("chmod 600 " .. q(keys))
        out, err, rc = cli("--keys-file " .. q(keys) .. base .. "cancel nope")
        assert.equal(1, rc, out .. err)
        assert.matches("not_found %(HTTP 404%)", err)
    end)

    it("words an unknown field one way everywhere, with the name meant and err.field the field", function()
        local _, e = mediquo.new{ api_key = "k", secret_key = "s", timout = 3 }
        assert.equal("opts: unknown field 'timout' (did you mean 'timeout'?)", e.message)
        assert.equal("timout", e.field)
        _, e = mediquo.new{ api_key = "k", secret_key = "s", rate_limit = { per_min = 3 } }
        assert.equal("rate_limit: unknown field 'per_min' (did you mean 'per_minute'?)", e.message)
        assert.equal("per_min", e.field)
        local c = assert(mediquo.new{ api_key = "k", secret_key = "s", base_url = sb.base_url, rate_limit = false })
        finally(function() c:close() end)
        _, e = c:create{ cod = "x", starts_at = "2030-05-20T10:00:00Z", patient = "p", professional = "h" }
        assert.equal("appointment: unknown field 'cod' (did you mean 'code'?)", e.message)
        assert.equal("cod", e.field)
        _, e = c:run_batch({}, { concurency = 2 })
        assert.equal("opts: unknown field 'concurency' (did you mean 'concurrency'?)", e.message)
        assert.equal("concurency", e.field)
        -- nothing near: no guess
        _, e = mediquo.new{ api_key = "k", secret_key = "s", zzz = 1 }
        assert.equal("opts: unknown field 'zzz'", e.message)
        local out, err, rc = cli(sbx() .. "--timout 3 cancel X")
        assert.equal(2, rc, out .. err)
        assert.equal("mediquo: unknown option --timout (did you mean --timeout?); see mediquo --help\n", err)
        -- a file's columns too
        local f = H.write_file(tmp .. "/typo.csv", "op,code,strats_at\ncancel,x,\n")
        out, err, rc = cli(sbx() .. "import " .. q(f) .. " --no-journal")
        assert.equal(2, rc, out .. err)
        assert.matches("unknown CSV column 'strats_at' %(did you mean 'starts_at'%?%) %(columns: ", err)
        assert.equal(0, #sb:log())
    end)

    it("asks whether base_url is missing /v1 on a 404 off /v1", function()
        local root = sb.base_url:gsub("/v1$", "")
        local out, err, rc = cli("--sandbox --base-url " .. q(root) .. " --no-rate-limit cancel X")
        assert.equal(1, rc, out .. err)
        assert.matches("not_found %(HTTP 404%): .*%(is base_url missing /v1%?%)", err)
        -- under /v1 a 404 is the appointment's, and says nothing of it
        out, err = cli(sbx() .. "cancel X")
        assert.equal("", out)
        assert.matches("not_found %(HTTP 404%)", err)
        assert.is_nil(err:find("missing /v1", 1, true))
    end)
end)
