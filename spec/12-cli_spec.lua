-- bin/mediquo against the sandbox, run as a real process: single commands,
-- imports (CSV and JSON lines) with per-line failures, exit codes, usage
-- errors, --json output, the journal across a SIGKILL, reconciliation, the
-- progress line in a real terminal (tmux), and secrets never echoed.
-- Real-world files: spec/30-cli_files_spec.lua; exactly-once imports:
-- spec/31-cli_exactly_once_spec.lua.
local H = require "spec.helper"
local C = require "spec.cli_helper"
local json = require "cjson.safe"

local q = H.shell_quote
local sb, slow
local tmp

local uniq = C.uniq

local slurp = H.read_file

local write = H.write_file

-- cli(args[, env]) -> stdout, stderr, exit code
local function cli(args, env, stdin)
    return C.run(tmp, args, env, stdin)
end

local lines_of = C.lines

local successes = C.successes

describe("mediquo CLI", function()
    C.sandboxes(200, function(a, b, c) sb, slow, tmp = a, b, c end)

    it("creates, reschedules and cancels one appointment", function()
        local code = uniq()
        local sbx = "--sandbox --base-url " .. q(sb.base_url) .. " --no-rate-limit "
        local out, err, rc = cli(sbx .. "create --code " .. code .. " --starts-at 2030-05-20T10:00:00+02:00"
            .. " --patient pat-1 --professional prof-demo-2 --duration 1200")
        assert.equal(0, rc, err)
        local url = out:match("^ok create " .. code:gsub("%-", "%%-") .. "  url (%S+)\n$")
        assert.truthy(url, out)
        assert.equal(200, (H.http("GET", url)))
        local st = sb:state()[code]
        assert.equal("2030-05-20T08:00:00Z", st.starts_at)
        assert.equal(1200, st.duration)

        out, err, rc = cli(sbx .. "reschedule " .. code .. " 2030-05-21T09:00:00Z")
        assert.equal(0, rc, err)
        assert.matches("^ok reschedule", out)
        assert.equal(410, (H.http("GET", url)))
        out, err, rc = cli(sbx .. "--json cancel " .. code)
        assert.equal(0, rc, err)
        assert.same({ ok = true, op = "cancel", code = code }, json.decode(out))
        out, err, rc = cli(sbx .. "cancel " .. code)
        assert.equal(1, rc)
        assert.equal("", out)
        assert.matches("FAILED cancel " .. code:gsub("%-", "%%-") .. ": bad_request %(HTTP 400%)", err)
        assert.equal("cancelled", sb:state()[code].status)
    end)

    it("runs from the checkout without LUA_PATH, from any folder", function()
        local out, err, rc = cli("--sandbox --base-url " .. q(sb.base_url) .. " --no-rate-limit cancel nope",
                                 "cd / && env -u LUA_PATH -u LUA_CPATH")
        assert.equal(1, rc, err)
        assert.equal("", out)
        assert.matches("not_found %(HTTP 404%)", err)
        -- and as installed by luarocks into the local tree (make all)
        local wrapper = H.root .. "/.rocks/bin/mediquo"
        if slurp(wrapper) then
            local o, e = tmp .. "/out", tmp .. "/err"
            local _, code = H.run(("cd / && env -u LUA_PATH -u LUA_CPATH %s --sandbox --base-url %s "
                .. "--no-rate-limit cancel nope >%s 2>%s"):format(q(wrapper), q(sb.base_url), q(o), q(e)))
            assert.equal(1, code, slurp(e))
            assert.matches("not_found %(HTTP 404%)", slurp(e))
        end
    end)

    it("imports 200 rows with 10 bad ones: 190 ok, each failure with its line and reason", function()
        local rows = { "op,code,starts_at,patient,professional,duration" }
        local bad = {   -- row number (1-based after the header) -> { cells, reason pattern }
            [7] = { "create,%s,2030-02-30T10:00:00Z,p,prof-demo-1,", "invalid_argument: starts_at" },
            [23] = { "create,%s,2030-05-20T10:00:00Z,p,prof-nobody,",
                     "bad_request %(HTTP 400%): Professional not found" },
            [41] = { "create,%s,2030-05-20T10:00:00Z,p,prof-demo-1,abc", "invalid_argument: duration" },
            [58] = { "create,,2030-05-20T10:00:00Z,p,prof-demo-1,", "invalid_argument: code" },
            [77] = { "create,%s,2030-05-20T10:00:00Z,p,prof-demo-1", "has 5 fields, the header has 6" },
            [99] = { "delete,%s,,,,", "invalid_argument: op" },
            [120] = { "reschedule,%s,2030-05-20T10:00:00Z,,,", "not_found %(HTTP 404%)" },
            [141] = { "cancel,%s,,,,", "not_found %(HTTP 404%)" },
            [166] = { "create,%s,tomorrow,p,prof-demo-3,", "invalid_argument: starts_at" },
            [190] = { "create,%s,2030-05-20T10:00:00Z,p,prof-demo-1,0", "invalid_argument: duration" },
        }
        local prefix = uniq("imp")
        for i = 1, 200 do
            local code = ("%s-%03d"):format(prefix, i)
            if bad[i] then
                rows[#rows + 1] = bad[i][1]:format(code)
            else
                rows[#rows + 1] = ("create,%s,2030-05-20T%02d:%02d:00Z,pat-%d,prof-demo-%d,%s")
                    :format(code, 8 + i % 10, i % 60, i, 1 + i % 3, i % 2 == 0 and "900" or "")
            end
        end
        local file = write(tmp .. "/200.csv", table.concat(rows, "\r\n") .. "\r\n")
        local out, err, rc = cli("--sandbox --base-url " .. q(sb.base_url)
                                 .. " --no-rate-limit import " .. q(file) .. " --concurrency 8")
        assert.equal(1, rc, err)
        assert.equal("", err)   -- not a terminal: no progress line
        local ok, failed = 0, {}
        for _, l in ipairs(lines_of(out)) do
            local line = tonumber(l:match("^line (%d+): ok create "))
            if line then
                ok = ok + 1
            else
                line = tonumber(l:match("^line (%d+): FAILED "))
                if line then failed[line - 1] = l end
            end
        end
        assert.equal(190, ok)
        local count = 0
        for i, case in pairs(bad) do
            assert.truthy(failed[i], "no failure reported for row " .. i .. " (line " .. (i + 1) .. ")")
            assert.matches(case[2], failed[i])
        end
        for _ in pairs(failed) do count = count + 1 end
        assert.equal(10, count)
        assert.matches("200 rows: 190 ok, 10 failed, 0 skipped %(bad_request 1, invalid_argument 7, "
                       .. "not_found 2%)\n$", out)
        local k = 0
        for _ in pairs(sb:state()) do k = k + 1 end
        assert.equal(190, k)
        assert.equal(190, successes(sb, "POST", "/v1/appointments")["?"])
    end)

    it("prints one parseable JSON object per result with --json, JSON lines from stdin", function()
        local a, b = uniq(), uniq()
        local input = write(tmp .. "/in.jsonl", table.concat({
            json.encode{ op = "create", code = a, starts_at = "2030-05-20T10:00:00Z",
                         patient = "p", professional = "prof-demo-1", duration = 600 },
            "",
            json.encode{ op = "create", code = b, starts_at = 1900000000,
                         patient = "p", professional = "prof-demo-2" },
            json.encode{ op = "reschedule", code = a, starts_at = "2030-06-01T10:00:00Z" },
            "not json",
            json.encode{ op = "cancel", code = uniq("missing") },
        }, "\n") .. "\n")
        local out, err, rc = cli("--sandbox --base-url " .. q(sb.base_url)
                                 .. " --no-rate-limit --json import -", nil, input)
        assert.equal(1, rc, err)
        local recs = {}
        for _, l in ipairs(lines_of(out)) do
            local doc = json.decode(l)
            assert.is_table(doc, "not JSON: " .. l)
            recs[#recs + 1] = doc
        end
        assert.equal(6, #recs)
        local by_line = {}
        for i = 1, 5 do by_line[recs[i].line] = recs[i] end
        assert.is_true(by_line[1].ok)
        assert.matches("/call/", by_line[1].url)
        assert.is_true(by_line[3].ok)
        assert.equal(b, by_line[3].code)
        assert.is_true(by_line[4].ok)
        assert.equal("reschedule", by_line[4].op)
        assert.is_false(by_line[5].ok)
        assert.equal("invalid_argument", by_line[5].error.kind)
        assert.is_false(by_line[6].ok)
        assert.equal("not_found", by_line[6].error.kind)
        assert.equal(404, by_line[6].error.status)
        assert.same({ total = 5, ok = 3, failed = 2, skipped = 0, held = 0,
                      by_kind = { invalid_argument = 1, not_found = 1 } }, recs[6].summary)
        assert.equal("2030-06-01T10:00:00Z", sb:state()[a].starts_at)
        assert.equal(600, sb:state()[a].duration)
    end)

    it("re-runs an import killed with SIGKILL: every appointment created once, every cancel done", function()
        local prefix = uniq("kill")
        local rows = { "op,code,starts_at,patient,professional,duration" }
        for i = 1, 30 do
            rows[#rows + 1] = ("create,%s-%02d,2030-05-20T10:%02d:00Z,pat-%d,prof-demo-1,900")
                :format(prefix, i, i, i)
        end
        for i = 1, 30, 3 do     -- every third one is cancelled later in the file
            rows[#rows + 1] = ("cancel,%s-%02d,,,,"):format(prefix, i)
        end
        local file = write(tmp .. "/kill.csv", table.concat(rows, "\n") .. "\n")
        local args = "--sandbox --base-url " .. q(slow.base_url) .. " --no-rate-limit import "
            .. q(file) .. " --concurrency 4"
        -- 40 ops, 4 at a time, 200 ms each: about 2 s; killed once 6 are
        -- journaled (so about 4 are in flight, sent and not journaled)
        local pid = tonumber((H.run(("%s %s >%s 2>&1 </dev/null & echo $!"):format(
            q(C.BIN), args, q(tmp .. "/first.out")))))
        assert.truthy(pid)
        local function journaled_ok()
            return select(2, (slurp(file .. ".journal") or ""):gsub("\nok\t", ""))
        end
        local t0 = H.now()
        while journaled_ok() < 6 and H.now() - t0 < 15 do H.sleep(0.02) end
        H.run("kill -KILL " .. pid)
        H.sleep(0.1)
        local journaled = journaled_ok()
        assert.is_true(journaled > 0 and journaled < 40,
                       "the kill did not land halfway: " .. journaled .. " ops journaled")

        local out, err, rc = cli(args)
        assert.equal(0, rc, out .. err)
        local skipped = select(2, out:gsub("skipped", ""))
        assert.equal(journaled, skipped - 1)   -- "... N skipped" in the summary line too
        assert.matches(("40 rows: %d ok, 0 failed, %d skipped"):format(40 - journaled, journaled), out)
        -- the ops in flight at the kill had reached the server: confirmed
        assert.matches("%(reconciled: created by the interrupted run, confirmed%)", out)

        local st = slow:state()
        local posts = successes(slow, "POST", "/v1/appointments")["?"]
        local deletes = successes(slow, "DELETE", "/v1/appointments/")
        for i = 1, 30 do
            local code = ("%s-%02d"):format(prefix, i)
            assert.truthy(st[code], code .. " lost")
            assert.equal(i % 3 == 1 and "cancelled" or "active", st[code].status, code)
            if i % 3 == 1 then assert.equal(1, deletes[code], code) end
        end
        assert.equal(30, posts)     -- one successful create per code, over both runs
        -- a second re-run has nothing left to do
        out, err, rc = cli(args)
        assert.equal(0, rc, err)
        assert.matches("40 rows: 0 ok, 0 failed, 40 skipped", out)
    end)

    it("reconciles 'already exists' only on a re-run, for rows with no outcome", function()
        local code = uniq("rec")
        local status = H.http("POST", sb.base_url .. "/appointments", json.encode{
            appointment = { code = code, starts_at = "2030-05-20T10:00:00Z" },
            patient = { code = "p" }, professional = { hash = "prof-demo-1" } }, H.auth())
        assert.equal(200, status)
        local file = write(tmp .. "/rec.csv", "op,code,starts_at,patient,professional\n"
            .. "create," .. code .. ",2030-05-20T10:00:00Z,p,prof-demo-1\n")
        local sbx = "--sandbox --base-url " .. q(sb.base_url) .. " --no-rate-limit "
        -- a first run: the code is someone else's
        local out, _, rc = cli(sbx .. "import " .. q(file) .. " --no-journal")
        assert.equal(1, rc)
        assert.matches("line 2: FAILED create " .. code:gsub("%-", "%%-")
                       .. ": bad_request %(HTTP 400%): Appointment already exists", out)
        -- a re-run of an interrupted import (its journal has no word on line 2)
        write(file .. ".journal", "# mediquo import journal v1\n")
        out, _, rc = cli(sbx .. "import " .. q(file))
        assert.equal(0, rc, out)
        local url = out:match("line 2: ok create %S+  url (%S+)  "
                              .. "%(reconciled: created by the interrupted run, confirmed%)")
        assert.truthy(url, out)
        assert.equal(200, (H.http("GET", url)))
        out, _, rc = cli(sbx .. "--json import " .. q(file))
        assert.equal(0, rc)     -- the journal now records line 2 as done
        assert.is_true(json.decode(lines_of(out)[1]).skipped)

        -- a row the journal says failed for good (a first run's definite
        -- "already exists") is not reconciled on a re-run
        local other = uniq("rec")
        assert.equal(200, (H.http("POST", sb.base_url .. "/appointments", json.encode{
            appointment = { code = other, starts_at = "2030-05-20T10:00:00Z" },
            patient = { code = "p" }, professional = { hash = "prof-demo-1" } }, H.auth())))
        local file2 = write(tmp .. "/rec2.csv", "op,code,starts_at,patient,professional\n"
            .. "create," .. other .. ",2030-05-21T10:00:00Z,p,prof-demo-1\n")
        for _ = 1, 2 do
            out, _, rc = cli(sbx .. "import " .. q(file2))
            assert.equal(1, rc)
            assert.matches("line 2: FAILED create .*already exists", out)
        end
        assert.matches("\nfail\t2\tcreate\t", slurp(file2 .. ".journal"))
        assert.equal("2030-05-20T10:00:00Z", sb:state()[other].starts_at)   -- untouched
    end)

    it("shows a progress line on a terminal (tmux), and none otherwise", function()
        local has_tmux = select(2, H.run("command -v tmux >/dev/null 2>&1"))
        assert.equal(0, has_tmux, "tmux is needed for this spec")
        local rows = { "op,code,starts_at,patient,professional" }
        local prefix = uniq("prog")
        for i = 1, 40 do
            rows[#rows + 1] = ("create,%s-%02d,2030-05-20T10:00:00Z,p,prof-demo-1"):format(prefix, i)
        end
        rows[#rows + 1] = "create,,2030-05-20T10:00:00Z,p,prof-demo-1"
        local file = write(tmp .. "/prog.csv", table.concat(rows, "\n") .. "\n")
        local sock = "mediquo-spec-" .. uniq("tmux")
        local cmd = ("%s --sandbox --base-url %s --no-rate-limit import %s --no-journal >%s; sleep 20")
            :format(q(C.BIN), q(slow.base_url), q(file), q(tmp .. "/prog.out"))
        local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(q(os.getenv("LUA_PATH") or ""),
                                                        q(os.getenv("LUA_CPATH") or ""))
        local _, rc = H.run(("tmux -L %s -f /dev/null new-session -d -x 160 -y 10 %s"):format(
            q(sock), q(env .. " sh -c " .. q(cmd))))
        assert.equal(0, rc)
        local pane, mid = "", nil
        local t0 = H.now()
        while H.now() - t0 < 15 do
            pane = H.run(("tmux -L %s capture-pane -p"):format(q(sock)))
            local k = tonumber(pane:match("import: (%d+)/41"))
            if k and k > 0 and k < 41 then mid = k end
            if pane:find("import: 41/41", 1, true) then break end
            H.sleep(0.1)
        end
        H.run(("tmux -L %s kill-server 2>/dev/null"):format(q(sock)))
        assert.matches("import: 41/41  [%d.]+/s  ETA 0s  failed 1 %(invalid_argument 1%)", pane)
        assert.truthy(mid, "no progress seen before the end")
        -- the same import with stderr not a terminal: nothing on it
        local out, err, code = cli("--sandbox --base-url " .. q(sb.base_url)
                                   .. " --no-rate-limit import " .. q(file) .. " --no-journal")
        assert.equal(1, code)
        assert.equal("", err)
        assert.matches("41 rows: 40 ok, 1 failed", out)
    end)

    it("exits 2 with a usage message naming the problem", function()
        local sbx = "--sandbox --base-url " .. q(sb.base_url) .. " "
        local badcsv = write(tmp .. "/bad.csv", "op,code,when\ncancel,x,\n")
        local cases = {
            { "", "no command given" },
            { "frobnicate", "unknown command 'frobnicate'" },
            { sbx .. "create --code X --patient p --professional prof-demo-1", "create needs %-%-starts%-at" },
            { sbx .. "--bogus cancel X", "unknown option %-%-bogus" },
            { sbx .. "cancel", "cancel needs CODE" },
            { sbx .. "reschedule X", "reschedule needs CODE STARTS_AT" },
            { sbx .. "import", "import needs FILE" },
            { sbx .. "import " .. q(tmp .. "/none.csv"), "cannot read" },
            { sbx .. "import " .. q(badcsv), "%S+/bad%.csv: unknown CSV column 'when'" },
            { sbx .. "--concurrency 0 import " .. q(badcsv), "%-%-concurrency must be from 1 to 64" },
            { sbx .. "--duration 5 cancel X", "%-%-duration is only for 'create'" },
            { sbx .. "--timeout soon cancel X", "%-%-timeout must be a number" },
            { sbx .. "limiter", "limiter needs 'status'" },
            { "--base-url http://example.com/v1 --sandbox cancel X", "base_url" },
        }
        for _, case in ipairs(cases) do
            local out, err, rc = cli(case[1])
            assert.equal(2, rc, case[1])
            assert.equal("", out, case[1])
            assert.matches("^mediquo: " .. case[2], err)
            assert.matches("; see mediquo %-%-help\n$", err)     -- one line, not the whole help
        end
        local _, err, rc = cli("cancel X", "env -u MEDIQUO_API_KEY -u MEDIQUO_SECRET_KEY")
        assert.equal(2, rc)
        assert.matches("no credentials", err)
        assert.equal(0, select(3, cli("--help")))
        assert.equal(0, #sb:log())     -- none of these sent anything
    end)

    it("takes keys from the environment or --keys-file and never echoes them", function()
        local secret = "s3cr3t-" .. uniq("k")
        local keys = write(tmp .. "/keys", "# test keys\nMEDIQUO_API_KEY=sandbox-key\n"
                           .. "MEDIQUO_SECRET_KEY=" .. secret .. "\n")
        H.run("chmod 600 " .. q(keys))     -- a keys file others may read is refused (spec 50)
        local base = " --base-url " .. q(sb.base_url) .. " --no-rate-limit "
        local out, err, rc = cli("--keys-file " .. q(keys) .. base .. "cancel nope")
        assert.equal(1, rc)
        assert.matches("forbidden %(HTTP 403%)", err)
        assert.is_nil((out .. err):find(secret, 1, true))
        out, err, rc = cli(base .. "--json cancel nope",
                           "MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret")
        assert.equal("", err)
        assert.equal(1, rc)
        assert.equal("not_found", json.decode(out).error.kind)
        out, err, rc = cli(base .. "--json cancel nope",
                           "MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=" .. secret)
        assert.equal(1, rc)
        assert.equal("forbidden", json.decode(out).error.kind)
        assert.is_nil((out .. err):find(secret, 1, true))
        local broken = write(tmp .. "/broken", "MEDIQUO_API_KEY sandbox-key " .. secret .. "\n")
        H.run("chmod 600 " .. q(broken))
        out, err, rc = cli("--keys-file " .. q(broken) .. base .. "cancel nope")
        assert.equal(2, rc)
        assert.matches("keys%-file line 1 is not KEY=VALUE", err)
        assert.is_nil((out .. err):find(secret, 1, true))
        for _, e in ipairs(sb:log()) do
            assert.is_nil(json.encode(e):find(secret, 1, true))
        end
    end)

    it("shows the shared limiter's status", function()
        local key = uniq("lim")
        local base = "--sandbox --base-url " .. q(sb.base_url) .. " --rate-limit-key " .. key
            .. " --per-minute 50 "
        local out, err, rc = cli(base .. "--json limiter status")
        assert.equal(0, rc, err)
        local st = json.decode(out)
        -- (a limiter may add fields: the rule in force, the backend)
        for k, v in pairs{ key = key, per_minute = 50, period = 60, used = 0, available = 50 } do
            assert.equal(v, st[k], k)
        end
        assert.is_nil(st.paused_until)
        assert.equal(1, select(3, cli(base .. "cancel nope")))
        out, err, rc = cli(base .. "limiter status")
        assert.equal(0, rc, err)
        assert.matches(("^limiter %s: 50 per 60s, used 1, available 49, not paused[^\n]*\n$"):format(
            key:gsub("%-", "%%-")), out)
    end)
end)
