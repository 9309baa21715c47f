-- An import's output as it runs (issue 23), bin/mediquo against the sandbox:
--  * with stdout a file, each result line is there as the row finishes: a
--    paced import of 20 rows at 12 per 10 s shows its first rows within
--    3 s and takes >= 8 s (the 13th row waits for the window);
--  * --results FILE: a CSV of every row (line, op, code, outcome, url,
--    kind, effect), written as rows finish;
--  * on a terminal (tmux) the progress line on stderr never sticks to a
--    result line, and while rows wait for budget it says until when.
local H = require "spec.helper"
local C = require "spec.cli_helper"

local q = H.shell_quote
local sb, tmp

describe("mediquo import output as it runs", function()
    C.sandboxes(0, function(a, _, c) sb, tmp = a, c end)

    it("writes each result line to a file as the row finishes (20 rows at 12 per 10 s)", function()
        local prefix = C.uniq("live")
        local file = C.creates_file(tmp .. "/live.csv", prefix, 20)
        local t0 = H.now()
        C.spawn(tmp, "live", "--sandbox --base-url " .. q(sb.base_url) .. " --per-minute 12 --period 10 "
            .. "--rate-limit-key " .. C.uniq("lk") .. " import " .. q(file) .. " --no-journal")
        local first
        while H.now() - t0 < 30 do
            local out = H.read_file(tmp .. "/live.out") or ""
            if not first and out:find("^line 2: ok create ") then first = H.now() - t0 end
            if H.read_file(tmp .. "/live.rc") then break end
            H.sleep(0.05)
        end
        local rc = C.wait(tmp, "live", 30)
        local wall = H.now() - t0
        local out = H.read_file(tmp .. "/live.out")
        assert.equal(0, rc, out .. (H.read_file(tmp .. "/live.err") or ""))
        assert.matches("20 rows: 20 ok, 0 failed, 0 skipped", out)
        assert.truthy(first, "no result line while the import ran")
        assert.is_true(first < 3, ("the first row showed after %.2f s"):format(first))
        assert.is_true(wall >= 8, ("20 rows at 12 per 10 s took %.2f s: not paced"):format(wall))
        print(("\n[49] first result line after %.2f s, whole import %.2f s"):format(first, wall))
    end)

    it("writes --results as a CSV of every row: line, op, code, outcome, url, kind, effect", function()
        local a, b, c = C.uniq("res"), C.uniq("res"), C.uniq("res")
        local file = H.write_file(tmp .. "/res.csv", "op,code,starts_at,patient,professional\n"
            .. "create," .. a .. ",2030-05-20T10:00:00Z,p,prof-demo-1\n"
            .. "create," .. b .. ",not a date,p,prof-demo-1\n"
            .. "cancel," .. c .. ",,,\n"
            .. "create,\"=HYPERLINK(1)\",2030-05-20T10:00:00Z,p,prof-demo-1\n")
        local results = tmp .. "/res.out.csv"
        local out, err, rc = C.run(tmp, "--sandbox --base-url " .. q(sb.base_url) .. " --no-rate-limit import "
            .. q(file) .. " --no-journal --results " .. q(results))
        assert.equal(1, rc, out .. err)
        local lines = C.lines(H.read_file(results))
        assert.equal("line,op,code,outcome,url,kind,effect", lines[1])
        assert.equal(5, #lines)
        local by = {}
        for k = 2, #lines do by[tonumber(lines[k]:match("^(%d+),"))] = lines[k] end
        local url = sb:state()[a].url
        assert.truthy(url)
        assert.equal(("2,create,%s,ok,%s,,"):format(a, url), by[2])
        assert.equal(("3,create,%s,failed,,invalid_argument,none"):format(b), by[3])
        assert.equal(("4,cancel,%s,failed,,not_found,none"):format(c), by[4])
        -- a cell a spreadsheet would run as a formula is written as text
        assert.equal("5,create,'=HYPERLINK(1),ok," .. sb:state()["=HYPERLINK(1)"].url .. ",,", by[5])
    end)

    it("keeps the progress line off the result lines on a terminal and shows the wait for budget", function()
        local prefix = C.uniq("tty")
        local file = C.creates_file(tmp .. "/tty.csv", prefix, 8)
        -- 4 at once, the next 4 when the 4 s window has passed; stdout and
        -- stderr both the terminal
        local cmd = ("%s --sandbox --base-url %s --per-minute 4 --period 4 --rate-limit-key %s import %s "
            .. "--no-journal; sleep 20"):format(q(C.BIN), q(sb.base_url), C.uniq("tk"), q(file))
        local term = C.tmux(cmd, 200, 30)
        finally(term.stop)
        local pane, waiting = "", nil
        local t0 = H.now()
        while H.now() - t0 < 20 do
            pane = term.pane()
            waiting = waiting or pane:match("waiting for budget until (%d%d:%d%d:%d%d)")
            if pane:find("8 rows: ", 1, true) then break end
            H.sleep(0.1)
        end
        assert.matches("8 rows: 8 ok, 0 failed", pane)
        assert.truthy(waiting, "no 'waiting for budget until' while rows waited:\n" .. pane)
        local results = 0
        for l in pane:gmatch("[^\n]+") do
            if l:find("line %d+: ") then
                results = results + 1
                -- a result line is a whole line: no progress text before or after it
                assert.matches("^line %d+: ok create %S+  url %S+%s*$", l)
            end
        end
        assert.equal(8, results)
        assert.matches("import: 8/8  [%d.]+/s  ETA 0s  failed 0", pane)
    end)
end)
