-- bin/mediquo with the files people really have (issue 17, "CLI for real
-- files"), as a real process against the sandbox: `;` and tab separators
-- (an Excel export with a BOM and CRLF), unknown columns, short rows,
-- one-line usage errors, --help, file errors with the OS reason, Ctrl-C,
-- an import paced to the shared budget, --max-wait, `limiter resume` and
-- `--redis`.
local H = require "spec.helper"
local C = require "spec.cli_helper"
local json = require "cjson.safe"

local q = H.shell_quote
local lit = C.lit
local sb, slow, tmp

local function cli(args, env, stdin)
    return C.run(tmp, args, env, stdin)
end

local function count(t)
    local k = 0
    for _ in pairs(t) do k = k + 1 end
    return k
end

describe("mediquo CLI with real files", function()
    C.sandboxes(150, function(a, b, c) sb, slow, tmp = a, b, c end)

    local function sbx(s) return C.sbx(s or sb) end

    it("reads a ';'-separated Excel export (BOM, CRLF, a notes column) and says how it read it", function()
        local a, b = C.uniq("xl"), C.uniq("xl")
        local file = H.write_file(tmp .. "/excel.csv", "\239\187\191"
            .. "op;code;starts_at;patient;professional;duration;notes\r\n"
            .. "create;" .. a .. ";2030-05-20T10:00:00Z;pat-1;prof-demo-1;900;\"first; of two\"\r\n"
            .. "create;" .. b .. ";2030-05-21T10:00:00+02:00;pat-2;prof-demo-2;;\r\n"
            .. "reschedule;" .. a .. ";2030-06-01T09:30:00Z;;;;moved\r\n")
        -- an unknown column refuses the file, naming it and the way out
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(2, rc, out .. err)
        assert.matches("unknown CSV column 'notes' %(columns: op,code,starts_at,patient,professional,duration; "
                       .. "%-%-ignore%-unknown%-columns to skip it%); see mediquo %-%-help\n$", err)
        out, err, rc = cli(sbx() .. "import " .. q(file) .. " --ignore-unknown-columns")
        assert.equal(0, rc, out .. err)
        assert.matches("cells split at ';' %(detected from the header; %-%-separator to choose%)", err)
        assert.equal(1, select(2, err:gsub("ignoring unknown columns: notes\n", "")))
        assert.matches("3 rows: 3 ok, 0 failed, 0 skipped", out)
        local st = sb:state()
        assert.equal("2030-06-01T09:30:00Z", st[a].starts_at)
        assert.equal(900, st[a].duration)
        assert.equal("2030-05-21T08:00:00Z", st[b].starts_at)
        assert.equal("pat-2", st[b].patient)
        -- Excel's "sep=;" line names the separator (and counts as line 1)
        local c = C.uniq("xl")
        local named = H.write_file(tmp .. "/named.csv", "sep=;\r\nop;code;starts_at;patient;professional\r\n"
            .. "create;" .. c .. ";2030-05-20T10:00:00Z;p;prof-demo-1\r\n")
        out, err, rc = cli(sbx() .. "import " .. q(named) .. " --no-journal")
        assert.equal(0, rc, out .. err)
        assert.equal("", err)
        assert.matches("^line 3: ok create " .. lit(c), out)
        -- forcing the wrong separator says what it saw and how to choose
        out, err, rc = cli(sbx() .. "import " .. q(file) .. " --separator , --no-journal")
        assert.equal(2, rc)
        assert.equal("", out)
        assert.matches("unknown CSV column 'op;code;starts_at;patient;professional.*"
                       .. "%-%-separator if the cells are not split at ','", err)
    end)

    it("reads tab-separated files, and says when no separator makes sense", function()
        local a = C.uniq("tab")
        local file = H.write_file(tmp .. "/tab.tsv", "op\tcode\tstarts_at\tpatient\tprofessional\n"
            .. "create\t" .. a .. "\t2030-05-20T10:00:00Z\tp\tprof-demo-1\n")
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc, out .. err)
        assert.matches("cells split at tab", err)
        assert.equal("active", sb:state()[a].status)
        local junk = H.write_file(tmp .. "/junk.csv", "what|ever|this|is\n1|2|3|4\n")
        out, err, rc = cli(sbx() .. "import " .. q(junk))
        assert.equal(2, rc)
        assert.equal("", out)
        assert.matches("^mediquo: %S+junk%.csv: the header 'what|ever|this|is' names no known column when "
                       .. "split at ',', ';' or tab %(columns: op,code,starts_at,patient,professional,"
                       .. "duration; %-%-separator to choose%); see mediquo %-%-help\n$", err)
    end)

    it("reads a pipe (import <(...)) like stdin: no lock, no default journal", function()
        local a = C.uniq("pipe")
        local file = H.write_file(tmp .. "/pipe.csv", "op,code,starts_at,patient,professional\n"
            .. "create," .. a .. ",2030-05-20T10:00:00Z,p,prof-demo-1\n")
        local out, rc = H.run(("cd %s && bash -c %s 2>&1"):format(q(tmp), q(q(C.BIN) .. " " .. sbx()
            .. "import <(cat " .. q(file) .. ")")))
        assert.equal(0, rc, out)      -- not "the journal /dev/fd/63.journal: cannot open"
        assert.matches("^line 2: ok create " .. lit(a) .. "  url %S+\n1 rows: 1 ok", out)
        assert.equal("active", sb:state()[a].status)
    end)

    it("reports a row with too few cells with its line, op, code and what is missing", function()
        local a, b, c = C.uniq("few"), C.uniq("few"), C.uniq("few")
        local file = H.write_file(tmp .. "/few.csv", "op,code,starts_at,patient,professional,duration\n"
            .. "create," .. a .. ",2030-05-20T10:00:00Z\n"
            .. "cancel," .. b .. "\n"                                   -- all a cancel needs
            .. "create," .. c .. ",2030-05-20T10:00:00Z,p,prof-demo-1,900,extra\n")
        local out, err, rc = cli(sbx() .. "import " .. q(file) .. " --no-journal")
        assert.equal(1, rc, err)
        assert.matches("line 2: FAILED create " .. lit(a) .. ": invalid_argument: has 3 fields, the header "
                       .. "has 6 %(missing: patient, professional, duration%)\n", out)
        assert.matches("line 3: FAILED cancel " .. lit(b) .. ": not_found %(HTTP 404%)", out)
        assert.matches("line 4: FAILED create " .. lit(c) .. ": invalid_argument: has 7 fields, the header "
                       .. "has 6\n", out)
        assert.equal(0, count(sb:state()))
    end)

    it("skips unknown JSON fields with --ignore-unknown-columns, naming them once", function()
        local a, b = C.uniq("jl"), C.uniq("jl")
        local file = H.write_file(tmp .. "/in.jsonl", json.encode{ op = "create", code = a, note = "x",
            starts_at = "2030-05-20T10:00:00Z", patient = "p", professional = "prof-demo-1" } .. "\n"
            .. json.encode{ op = "create", code = b, note = "y", starts_at = "2030-05-20T10:00:00Z",
                            patient = "p", professional = "prof-demo-1" } .. "\n")
        local out, err, rc = cli(sbx() .. "import " .. q(file) .. " --no-journal")
        assert.equal(1, rc, err)
        assert.matches("line 1: FAILED create " .. lit(a) .. ": invalid_argument: unknown field 'note'", out)
        out, err, rc = cli(sbx() .. "import " .. q(file) .. " --no-journal --ignore-unknown-columns")
        assert.equal(0, rc, out .. err)
        assert.equal("mediquo: " .. file .. ": ignoring unknown fields: note\n", err)
        assert.equal(2, count(sb:state()))
    end)

    it("gives one-line usage errors, each ending 'see mediquo --help', and --help lists every flag", function()
        local dir = tmp .. "/adir"
        H.run("mkdir -p " .. q(dir))
        local valid = H.write_file(tmp .. "/valid.csv", "op,code\ncancel,x\n")
        local cases = {
            { "", "no command given" },
            { sbx() .. "frobnicate", "unknown command 'frobnicate'" },
            { sbx() .. "--bogus cancel X", "unknown option %-%-bogus" },
            { sbx() .. "import", "import needs FILE" },
            { sbx() .. "--separator '|' import x.csv", "%-%-separator must be ',' ';' or 'tab'" },
            { sbx() .. "--max-wait 3 --no-rate-limit cancel X", "%-%-max%-wait and %-%-no%-rate%-limit" },
            { sbx() .. "--ignore-unknown-columns cancel X", "%-%-ignore%-unknown%-columns is only for 'import'" },
            { sbx() .. "limiter frob", "limiter needs 'status' or 'resume'" },
            -- file errors say why
            { sbx() .. "import " .. q(tmp .. "/none.csv"),
              "cannot read " .. lit(tmp) .. "/none%.csv: No such file or directory" },
            { sbx() .. "import " .. q(dir), "cannot read " .. lit(dir) .. ": Is a directory" },
            { sbx() .. "import " .. q(valid) .. " --journal " .. q(tmp .. "/no/such/dir/j"),
              "the journal " .. lit(tmp) .. "/no/such/dir/j: cannot open: No such file or directory" },
            { "--keys-file " .. q(tmp .. "/nokeys") .. " cancel X",
              "cannot read %-%-keys%-file " .. lit(tmp) .. "/nokeys: No such file or directory" },
        }
        for _, case in ipairs(cases) do
            local out, err, rc = cli(case[1])
            assert.equal(2, rc, case[1])
            assert.equal("", out, case[1])
            assert.matches("^mediquo: " .. case[2], err)
            assert.matches("; see mediquo %-%-help\n$", err)
            assert.equal(1, select(2, err:gsub("\n", "")), "more than one line: " .. err)
        end
        local help, _, rc = cli("--help")
        assert.equal(0, rc)
        for _, flag in ipairs(require("mediquo.cli").flags()) do
            assert.truthy(help:find(flag, 1, true), flag .. " is not in --help")
        end
        for _, flag in ipairs{ "--concurrency", "--journal", "--no-journal", "--separator", "--max-wait",
                               "--ignore-unknown-columns", "--redis", "limiter status|resume" } do
            assert.truthy(help:find(flag, 1, true), flag)
        end
    end)

    it("on Ctrl-C says whether there is anything to resume", function()
        local prefix = C.uniq("int")
        local file = C.creates_file(tmp .. "/int.csv", prefix, 40)
        local function interrupt(name, args, stdin)
            local pid = C.spawn(tmp, name, args, stdin)
            local t0 = H.now()
            while count(slow:state()) < 3 and H.now() - t0 < 20 do H.sleep(0.02) end
            H.run("kill -INT " .. pid)
            return C.wait(tmp, name, 20), H.read_file(tmp .. "/" .. name .. ".err") or ""
        end
        local rc, err = interrupt("stdin", sbx(slow) .. "--concurrency 1 import -", file)
        assert.equal(130, rc, err)
        assert.matches("mediquo: interrupted; this import keeps no journal %(stdin, a pipe or %-%-no%-journal%), so "
                       .. "there is nothing to resume", err)
        assert.is_nil(err:find("run the same command again", 1, true))
        slow:reset()
        rc, err = interrupt("file", sbx(slow) .. "--concurrency 1 import " .. q(file))
        assert.equal(130, rc, err)
        assert.matches("mediquo: interrupted; run the same command again to resume", err)
        local out
        out, err, rc = cli(sbx(slow) .. "import " .. q(file))
        assert.equal(0, rc, out .. err)
        assert.equal(40, count(slow:state()))
    end)

    it("paces an import to the shared budget: 30 rows at 10 per 5 s, all applied in about 10 s", function()
        local prefix = C.uniq("pace")
        local file = C.creates_file(tmp .. "/pace.csv", prefix, 30)
        local t0 = H.now()
        local out, err, rc = cli("--sandbox --base-url " .. q(sb.base_url) .. " --per-minute 10 --period 5 "
            .. "--rate-limit-key " .. C.uniq("pk") .. " import " .. q(file) .. " --no-journal")
        local wall = H.now() - t0
        assert.equal(0, rc, out .. err)
        assert.matches("30 rows: 30 ok, 0 failed, 0 skipped", out)
        assert.is_nil(out:find("rate_limited", 1, true))
        assert.equal(30, count(sb:state()))
        -- ideal: rows 21-30 get their slots 10 s after the first ten
        assert.is_true(wall >= 9.5 and wall <= 11, ("wall %.2f s, ideal 10 s"):format(wall))
    end)

    it("waits for budget longer than one slot wait (2 per 11 s), and --max-wait bounds the wait", function()
        local prefix = C.uniq("slowpace")
        local file = C.creates_file(tmp .. "/slowpace.csv", prefix, 4, "%s-%d")
        local base = "--sandbox --base-url " .. q(sb.base_url) .. " --per-minute 2 --period 11 "
        local t0 = H.now()
        local out, err, rc = cli(base .. "--rate-limit-key " .. C.uniq("pk") .. " import " .. q(file)
                                 .. " --no-journal")
        local wall = H.now() - t0
        assert.equal(0, rc, out .. err)      -- a 10 s slot wait would fail rows 3 and 4
        assert.matches("4 rows: 4 ok, 0 failed", out)
        assert.is_true(wall >= 10.5, ("wall %.2f s: the budget was not respected"):format(wall))
        -- with --max-wait 1 rows 3 and 4 give up after about a second
        sb:reset()
        out, err, rc = cli(base .. "--rate-limit-key " .. C.uniq("pk") .. " --max-wait 1 import "
                           .. q(file) .. " --no-journal")
        assert.equal(1, rc, err)
        assert.matches("4 rows: 2 ok, 2 failed, 0 skipped %(rate_limited 2%)", out)
        assert.equal(2, count(sb:state()))
    end)

    it("shows rows done, rate and a time left that the budget can meet, on a terminal (tmux)", function()
        local prefix = C.uniq("eta")
        local file = C.creates_file(tmp .. "/eta.csv", prefix, 12)
        -- 4 at once, then 2 a second: the last row goes about 4 s in (a rate
        -- measured over the first burst would promise all of it at once)
        local cmd = ("%s --sandbox --base-url %s --per-minute 4 --period 2 --rate-limit-key %s import %s "
            .. "--no-journal >%s; sleep 20"):format(q(C.BIN), q(sb.base_url), C.uniq("ek"), q(file),
                                                  q(tmp .. "/eta.out"))
        local term = C.tmux(cmd, 160, 10)
        finally(term.stop)
        local seen = {}     -- rows done -> the time left shown
        local pane = ""
        local t0 = H.now()
        while H.now() - t0 < 20 do
            pane = term.pane()
            local k, eta = pane:match("import: (%d+)/12  [%d.]+/s  ETA (%d+)s")
            if k then seen[tonumber(k)] = seen[tonumber(k)] or tonumber(eta) end
            if pane:find("import: 12/12", 1, true) then break end
            H.sleep(0.05)
        end
        term.stop()
        assert.matches("import: 12/12  [%d.]+/s  ETA 0s  failed 0", pane)
        local checked = 0
        for k, eta in pairs(seen) do
            if k < 12 then
                -- 12 - k rows left at 2 a second
                assert.is_true(eta >= (12 - k) / 2 - 1, ("at %d/12 the time left shown was %ds"):format(k, eta))
                checked = checked + 1
            end
        end
        assert.is_true(checked > 0, "no progress seen while rows waited for budget")
    end)

    it("bounds a single command's wait for a slot with --max-wait", function()
        local key = C.uniq("mw")
        local base = "--sandbox --base-url " .. q(sb.base_url) .. " --per-minute 1 --period 60 "
            .. "--rate-limit-key " .. key .. " "
        local _, _, rc = cli(base .. "cancel nope")
        assert.equal(1, rc)
        local t0 = H.now()
        local out, err
        out, err, rc = cli(base .. "--max-wait 0.5 --json cancel nope")
        assert.is_true(H.now() - t0 < 8, "waited past --max-wait")
        assert.equal(1, rc, err)
        local doc = json.decode(out)
        assert.equal("rate_limited", doc.error.kind)
        assert.matches("0%.5", doc.error.message)
        assert.equal(1, #sb:log())      -- the second never reached the server
    end)

    it("resumes a paused limiter with 'limiter resume'", function()
        local lim = require "mediquo.limiter"
        if type(lim.resume) ~= "function" then
            pending("needs limiter:resume() (branch limiter)")
            return
        end
        local key = C.uniq("res")
        local base = "--sandbox --base-url " .. q(sb.base_url) .. " --rate-limit-key " .. key .. " "
        sb:faults{ next = 1, mode = "ratelimit", seconds = 300 }
        local _, _, rc = cli(base .. "--max-retries 0 cancel nope")
        assert.equal(1, rc)
        local out = cli(base .. "limiter status")
        assert.matches("paused until", out)
        local err
        out, err, rc = cli(base .. "limiter resume")
        assert.equal(0, rc, err)
        assert.matches("resumed %(it was paused until", out)
        assert.matches("not paused", out)
        out, err, rc = cli(base .. "cancel nope")
        assert.equal(1, rc)
        assert.equal("", out)
        assert.matches("not_found", err)
    end)

    it("shares the budget through Redis with --redis and shows the backend", function()
        local lim = require "mediquo.limiter"
        if not lim.normalize({ redis = "redis://127.0.0.1:1" }, "k") then
            pending("needs rate_limit.redis (branch redis)")
            return
        end
        local port = H.free_port()
        local rdir = tmp .. "/redis"
        H.run("mkdir -p " .. q(rdir))
        local _, rrc = H.run(("redis-server --port %d --bind 127.0.0.1 --save '' --dir %s --daemonize yes "
            .. "--pidfile %s/pid >/dev/null 2>&1"):format(port, q(rdir), q(rdir)))
        assert.equal(0, rrc)
        finally(function()
            local pid = tonumber((H.read_file(rdir .. "/pid") or ""):match("%d+"))
            if pid then H.run("kill " .. pid) end
        end)
        H.sleep(0.3)
        local base = "--sandbox --base-url " .. q(sb.base_url) .. " --rate-limit-key " .. C.uniq("rk")
            .. " --redis redis://127.0.0.1:" .. port .. " "
        local _, err, rc = cli(base .. "cancel nope")
        assert.equal(1, rc, err)
        local out
        out, err, rc = cli(base .. "--json limiter status")
        assert.equal(0, rc, err)
        local st = json.decode(out)
        assert.equal("redis", st.backend)
        assert.equal(1, st.used)
    end)
end)
