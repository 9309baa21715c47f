-- Imports apply a file exactly once and in file order, across failures,
-- kills and re-runs (issue 16 items 1, 7 and 9), with bin/mediquo as a real
-- process against the sandbox:
--  * after a row whose outcome is unknown, later rows on its code are held
--    (create+reschedule and create+cancel with an `after` 500); the re-run
--    settles them in file order and the final state is the file's;
--  * a row an earlier run applied after an unsettled one is never undone;
--  * the journal cannot be forged by a value, a full disk stops the import
--    (tmpfs) and the re-run applies every row once;
--  * a second import of the same file (or journal) refuses to start;
--  * a killed run reconciles only the rows it had sent: a later row that
--    meets someone else's appointment is not taken for ours.
local H = require "spec.helper"
local C = require "spec.cli_helper"
local json = require "cjson.safe"

local q = H.shell_quote
local lit = C.lit
local sb, slow, tmp

local function cli(args, env, stdin)
    return C.run(tmp, args, env, stdin)
end

local HEADER = "op,code,starts_at,patient,professional\n"

local function create_row(code, at)
    return ("create,%s,%s,p,prof-demo-1\n"):format(code, at)
end

-- an appointment made straight on the sandbox (someone else's)
local function make_appointment(s, code, at)
    local status = H.http("POST", s.base_url .. "/appointments", json.encode{
        appointment = { code = code, starts_at = at },
        patient = { code = "p" }, professional = { hash = "prof-demo-1" } }, H.auth())
    assert.equal(200, status)
end

describe("mediquo import, exactly once", function()
    C.sandboxes(150, function(a, b, c) sb, slow, tmp = a, b, c end)

    local function sbx(s) return C.sbx(s or sb) end

    it("holds a reschedule behind a create whose outcome is unknown; the re-run applies both in order",
       function()
        local code = C.uniq("r1")
        local file = H.write_file(tmp .. "/held1.csv", HEADER .. create_row(code, "2030-05-20T10:00:00Z")
            .. ("reschedule,%s,2030-06-01T10:00:00Z,,\n"):format(code))
        sb:faults{ next = 1, mode = "after", status = 500 }
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(1, rc, out .. err)
        assert.matches("line 2: FAILED create " .. lit(code) .. ": server_error %(HTTP 500%)", out)
        assert.matches("line 3: HELD reschedule " .. lit(code) .. ": not sent: line 2 %(create "
                       .. lit(code) .. "%) may have taken effect", out)
        assert.matches("2 rows: 0 ok, 1 failed, 0 skipped, 1 held", out)
        -- the reschedule was not sent: the server holds the create's start
        assert.equal("2030-05-20T10:00:00Z", sb:state()[code].starts_at)
        assert.is_nil(C.successes(sb, "PUT", "/v1/appointments/")[code])

        sb:reset()
        make_appointment(sb, code, "2030-05-20T10:00:00Z")   -- what run 1's create did
        local before = #sb:log()
        out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc, out .. err)
        assert.matches("line 2: ok create " .. lit(code) .. "  url %S+  %(reconciled: created by the "
                       .. "interrupted run, confirmed%)", out)
        assert.matches("line 3: ok reschedule " .. lit(code), out)
        assert.equal("2030-06-01T10:00:00Z", sb:state()[code].starts_at)   -- the file's last word
        -- in file order: the create settled (POST "exists", PUT to its own
        -- start) before the reschedule was sent
        local seq = {}
        for k, e in ipairs(sb:log()) do
            if k > before then seq[#seq + 1] = ("%s %d"):format(e.method, e.status) end
        end
        assert.same({ "POST 400", "PUT 200", "PUT 200" }, seq)
        local _
        out, _, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc)
        assert.matches("2 rows: 0 ok, 0 failed, 2 skipped", out)
        assert.equal("2030-06-01T10:00:00Z", sb:state()[code].starts_at)
    end)

    it("holds a cancel behind a create whose outcome is unknown; the re-run cancels, and the next is done",
       function()
        local code = C.uniq("c1")
        local file = H.write_file(tmp .. "/held2.csv", HEADER .. create_row(code, "2030-05-20T10:00:00Z")
            .. ("cancel,%s,,,\n"):format(code))
        sb:faults{ next = 1, mode = "after", status = 500 }
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(1, rc, out .. err)
        assert.matches("line 3: HELD cancel " .. lit(code), out)
        assert.equal("active", sb:state()[code].status)
        out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc, out .. err)
        assert.matches("line 2: ok create .*%(reconciled", out)
        assert.matches("line 3: ok cancel " .. lit(code), out)
        assert.equal("cancelled", sb:state()[code].status)
        -- not "fails on every re-run forever": nothing left to do
        for _ = 1, 2 do
            out, _, rc = cli(sbx() .. "import " .. q(file))
            assert.equal(0, rc, out)
            assert.matches("2 rows: 0 ok, 0 failed, 2 skipped", out)
        end
        assert.equal("cancelled", sb:state()[code].status)
    end)

    it("never re-sends a row whose code had a later row applied (an older journal), and says so", function()
        local code = C.uniq("v1")
        local file = H.write_file(tmp .. "/v1.csv", HEADER .. create_row(code, "2030-05-20T10:00:00Z")
            .. ("reschedule,%s,2030-06-01T10:00:00Z,,\n"):format(code))
        -- what a version 1 run left: the create failed (no word on it), the
        -- reschedule was applied (its key as that version wrote it)
        make_appointment(sb, code, "2030-06-01T10:00:00Z")
        local input = require "mediquo.cli.input"
        local journal = require "mediquo.cli.journal"
        local rows = assert(input.parse(H.read_file(file)))
        H.write_file(file .. ".journal", "# mediquo import journal v1\nok\t" .. journal.key(rows[2]) .. "\n")
        local before = #sb:log()
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(1, rc, out .. err)
        assert.matches("line 2: HELD create " .. lit(code) .. ": not re%-sent: line 3 on the same code "
                       .. "was applied after it", out)
        assert.matches("line 3: skipped", out)
        assert.equal("2030-06-01T10:00:00Z", sb:state()[code].starts_at)    -- not undone
        assert.equal(before, #sb:log())     -- nothing sent
    end)

    it("keeps the journal one line per event whatever a row holds, and the terminal clean", function()
        local y = C.uniq("y")
        local file = tmp .. "/forge.csv"
        local body = "create," .. y .. ",2030-05-20T10:00:00Z,p,prof-demo-1\n"
        -- the key a forged line must carry to pass for the last row (line 5:
        -- the quoted code before it spans three lines)
        local input = require "mediquo.cli.input"
        local journal = require "mediquo.cli.journal"
        local probe = assert(input.parse(HEADER .. "create,\"a\nb\nc\",2030-05-20T10:00:00Z,p,prof-demo-1\n"
            .. body))
        local forged = "ok\t" .. journal.key(probe[2])
        assert.equal(5, probe[2].line)
        local evil = "x\n" .. forged .. "\n\27]0;pwned\7\27[2J"
        H.write_file(file, HEADER .. "create,\"" .. evil .. "\",2030-05-20T10:00:00Z,p,prof-demo-1\n" .. body)
        local rows = assert(input.parse(H.read_file(file)))
        assert.equal(journal.key(probe[2]), journal.key(rows[2]))     -- the forgery would fit
        -- run 1: the last row's create is refused for now (a 503, no retry)
        sb:faults{ next = 1, mode = "status", status = 503 }
        local out, err, rc = cli(sbx() .. "--max-retries 0 --concurrency 1 import " .. q(file))
        assert.equal(1, rc, out .. err)
        assert.matches("line 5: FAILED create " .. lit(y) .. ": server_error %(HTTP 503%)", out)
        assert.is_nil(sb:state()[y])
        assert.is_nil(out:find("\27", 1, true), "a raw ESC reached the terminal")
        assert.is_nil(err:find("\27", 1, true))
        assert.is_nil(out:find("\7", 1, true))
        for _, l in ipairs(C.lines(out)) do
            assert.truthy(l:match("^line %d+: ") or l:match("^%d+ rows: "), "a forged output line: " .. l)
        end
        assert.matches("\\x1b%]0;pwned\\x07\\x1b%[2J", out)
        -- every journal line is one event of a known shape
        local jtext = H.read_file(file .. ".journal")
        for l in jtext:gmatch("[^\n]+") do
            assert.truthy(l == journal.HEADER or l:match("^%a+\t%d+\t[^\t]*\t[^\t]*\t%x+\t?[%a_]*$"), l)
        end
        assert.is_nil(jtext:find("\n" .. forged .. "\n", 1, true), "the forged line is in the journal")
        -- run 2: the last row is sent again, not skipped as done
        out, err, rc = cli(sbx() .. "--concurrency 1 import " .. q(file))
        assert.matches("line 5: ok create " .. lit(y), out)
        assert.equal("active", sb:state()[y].status)
        assert.equal(1, rc, out .. err)     -- the evil code itself stays refused
    end)

    it("stops on a full disk with exit 1, says where, and the re-run applies every row once", function()
        local mnt = tmp .. "/full"
        H.run("mkdir -p " .. q(mnt))
        local _, mrc = H.run(("mount -t tmpfs -o size=16k tmpfs %s 2>&1"):format(q(mnt)))
        assert.equal(0, mrc, "mounting a tmpfs needs root (CI runs as root)")
        finally(function() H.run("umount " .. q(mnt) .. " 2>/dev/null") end)
        local prefix = C.uniq("full")
        local rows = { HEADER }
        for i = 1, 300 do rows[#rows + 1] = create_row(("%s-%03d"):format(prefix, i), "2030-05-20T10:00:00Z") end
        local file = H.write_file(tmp .. "/full.csv", table.concat(rows))
        local args = sbx() .. "import " .. q(file) .. " --concurrency 8 --journal " .. q(mnt .. "/j")
        local out, err, rc = cli(args)
        assert.equal(1, rc, err)
        assert.matches("mediquo: journal %S+: cannot write: No space left on device; the import stopped "
                       .. "at line %d+", err)
        local stopped = tonumber(err:match("stopped at line (%d+)"))
        assert.is_true(stopped > 10 and stopped < 300, tostring(stopped))
        assert.matches("not reached", out)
        assert.equal(1, select(2, err:gsub("No space left", "")))     -- said once, not per row
        local applied = 0
        for _ in pairs(sb:state()) do applied = applied + 1 end
        assert.is_true(applied < 300)

        H.run("mount -o remount,size=1m " .. q(mnt))
        out, err, rc = cli(args)
        assert.equal(0, rc, out .. err)
        assert.matches("300 rows: %d+ ok, 0 failed, %d+ skipped\n$", out)
        local st = sb:state()
        for i = 1, 300 do
            assert.truthy(st[("%s-%03d"):format(prefix, i)], i)
        end
        assert.equal(300, C.successes(sb, "POST", "/v1/appointments")["?"])   -- each created once
    end)

    it("ends a line a kill cut short before appending, so no event runs into it", function()
        local a, b = C.uniq("torn"), C.uniq("torn")
        local file = H.write_file(tmp .. "/torn.csv", HEADER .. create_row(a, "2030-05-20T10:00:00Z")
            .. create_row(b, "2030-05-20T10:00:00Z"))
        local input = require "mediquo.cli.input"
        local journal = require "mediquo.cli.journal"
        local rows = assert(input.parse(H.read_file(file)))
        -- row 1 done; the line about row 2 cut short (no newline)
        H.write_file(file .. ".journal", journal.HEADER .. "\nok\t" .. journal.key(rows[1]) .. "\nsend\t3\tcre")
        local out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc, out .. err)
        assert.matches("line 2: skipped create " .. lit(a), out)
        assert.matches("line 3: ok create " .. lit(b), out)
        local jtext = H.read_file(file .. ".journal")
        local key = journal.key(rows[2])
        local tail = "\nsend\t3\tcre\nsend\t" .. key .. "\nsent\t" .. key .. "\nok\t" .. key .. "\n"
        assert.equal(tail, jtext:sub(-#tail))
        out, err, rc = cli(sbx() .. "import " .. q(file))
        assert.equal(0, rc, err)
        assert.matches("2 rows: 0 ok, 0 failed, 2 skipped", out)
    end)

    it("refuses a second import of the same file, or into the same journal, while one runs", function()
        local prefix = C.uniq("lock")
        local rows = { HEADER }
        for i = 1, 16 do rows[#rows + 1] = create_row(("%s-%02d"):format(prefix, i), "2030-05-20T10:00:00Z") end
        local file = H.write_file(tmp .. "/lock.csv", table.concat(rows))
        local other = H.write_file(tmp .. "/lock2.csv", HEADER .. create_row(prefix .. "-x", "2030-05-20T10:00:00Z"))
        C.spawn(tmp, "first", sbx(slow) .. "--concurrency 1 import " .. q(file))
        local t0 = H.now()
        while not (H.read_file(file .. ".journal") or ""):find("\nsend\t") and H.now() - t0 < 20 do
            H.sleep(0.02)
        end
        local out, err, rc = cli(sbx(slow) .. "import " .. q(file))
        assert.equal(2, rc, out .. err)
        assert.equal("", out)
        assert.matches("^mediquo: %S+lock%.csv is being imported by another mediquo process", err)
        out, err, rc = cli(sbx(slow) .. "import " .. q(other) .. " --journal " .. q(file .. ".journal"))
        assert.equal(2, rc, out .. err)
        assert.matches("the journal %S+ is in use by another import", err)
        assert.is_nil(slow:state()[prefix .. "-x"])
        assert.equal(0, C.wait(tmp, "first", 60))
        -- once it is done, the file may be imported again (nothing left)
        local _
        out, _, rc = cli(sbx(slow) .. "import " .. q(file))
        assert.equal(0, rc)
        assert.matches("16 rows: 0 ok, 0 failed, 16 skipped", out)
        local posts = C.successes(slow, "POST", "/v1/appointments")["?"]
        assert.equal(16, posts)
    end)

    it("after a kill, reconciles the rows it had sent and no others", function()
        local prefix = C.uniq("kill")
        local theirs = prefix .. "-theirs"
        make_appointment(slow, theirs, "2030-01-01T08:00:00Z")
        local rows = { HEADER }
        for i = 1, 30 do rows[#rows + 1] = create_row(("%s-%02d"):format(prefix, i), "2030-05-20T10:00:00Z") end
        rows[#rows + 1] = create_row(theirs, "2030-05-20T10:00:00Z")     -- last: never reached
        local file = H.write_file(tmp .. "/kill.csv", table.concat(rows))
        local args = sbx(slow) .. "import " .. q(file) .. " --concurrency 2"
        local pid = C.spawn(tmp, "killed", args)
        local function oks()
            return select(2, (H.read_file(file .. ".journal") or ""):gsub("\nok\t", ""))
        end
        local t0 = H.now()
        while oks() < 4 and H.now() - t0 < 20 do H.sleep(0.02) end
        H.run("kill -KILL " .. pid)
        C.wait(tmp, "killed", 10)
        local done = oks()
        assert.is_true(done >= 4 and done < 20, "the kill did not land early: " .. done)
        local jtext = H.read_file(file .. ".journal")
        local marked = select(2, jtext:gsub("\nsend\t", ""))
        assert.is_true(marked < 31, "every row was marked sent: " .. marked)

        local out, err, rc = cli(args)
        assert.equal(1, rc, out .. err)
        -- someone else's appointment is not taken for ours
        assert.matches("line 32: FAILED create " .. lit(theirs) .. ": bad_request %(HTTP 400%): "
                       .. "Appointment already exists", out)
        assert.equal("2030-01-01T08:00:00Z", slow:state()[theirs].starts_at)
        assert.matches(("31 rows: %d ok, 1 failed, %d skipped"):format(30 - done, done), out)
        local st = slow:state()
        for i = 1, 30 do assert.equal("active", st[("%s-%02d"):format(prefix, i)].status) end
        assert.equal(31, C.successes(slow, "POST", "/v1/appointments")["?"])   -- 30 + theirs, once each
    end)
end)
