-- mediquo.cli.import: `mediquo import FILE`, a thin client of
-- client:run_batch. It reads the file (mediquo.cli.input), keeps a journal
-- (mediquo.cli.journal) and writes each result as the row finishes; every
-- scheduling decision is run_batch's:
--  * rows on one code go in file order, one at a time; after a row whose
--    outcome is unknown (err.effect "unknown") later rows on its code are
--    held (run_batch's one hold rule): not sent, reported, exit 1. A re-run
--    settles the unknown row first (run_batch's `resumed`: a create
--    answered "already exists" is confirmed, a cancel "already cancelled"
--    is done), then sends the held rows.
--  * the journal's `send` line is written in run_batch's before_send hook:
--    on disk exactly before the request goes out, never for a row not sent;
--    its `sent` line in on_sent, once the request's first bytes have left
--    (so `sent` is said only of rows that went); its outcome line after it
--    settles (on_result). On a re-run only rows with `send` or `sent` and
--    no outcome are reconciled (in doubt: a kill between `send` and `sent`
--    may have come before or after the bytes left).
--  * a row whose code had a later row applied in an earlier run is not
--    handed to run_batch (sending it would undo that row): held, exit 1.
--  * a journal that cannot be written stops the import (exit 1) and says
--    where; two imports of one file at once are refused (locks).
--  * --dry-run checks every row as the engine would and sends nothing.
-- An import paces itself to the shared budget: rows wait for a limiter
-- slot as long as it takes (--max-wait bounds it).

local core = require "mediquo.core"
local input = require "mediquo.cli.input"
local journal = require "mediquo.cli.journal"
local dates = require "mediquo.cli.dates"
local util = require "mediquo.cli.util"
local climiter = require "mediquo.cli.limiter"
local progress = require "mediquo.cli.progress"

local type = type
local ipairs = ipairs
local pcall = pcall
local error = error
local tostring = tostring
local format = string.format
local concat = table.concat
local huge = math.huge
local setmetatable = setmetatable
local getmetatable = getmetatable

local safe, usage_error, emit = util.safe, util.usage_error, util.emit

local _M = {}

-- the flags only `import` takes
_M.FLAGS = {
    ["--concurrency"] = { "concurrency", "integer" },
    ["--journal"] = { "journal", "string" },
    ["--no-journal"] = { "no_journal", true },
    ["--separator"] = { "separator", "string" },
    ["--ignore-unknown-columns"] = { "ignore_unknown", true },
    ["--timezone"] = { "timezone", "string" },
    ["--day-first"] = { "day_first", true },
    ["--dry-run"] = { "dry_run", true },
    ["--results"] = { "results", "string" },
}

local SEPARATOR = { [","] = ",", comma = ",", [";"] = ";", semicolon = ";",
                    tab = "\t", ["\\t"] = "\t", ["\t"] = "\t" }

local JournalError = {}     -- marker metatable: the journal failed, stop

-- the import's flags checked -> settings | nil, usage error
local function settings(flags, pos)
    if #pos ~= 1 then return nil, usage_error("import needs FILE (or - for stdin)") end
    if flags.journal and flags.no_journal then
        return nil, usage_error("--journal and --no-journal exclude each other")
    end
    local s = { conc = flags.concurrency or 4, path = pos[1] }
    if s.conc < 1 or s.conc > 64 then return nil, usage_error("--concurrency must be from 1 to 64") end
    if flags.separator then
        s.sep = SEPARATOR[flags.separator]
        if not s.sep then return nil, usage_error("--separator must be ',' ';' or 'tab'") end
    end
    if flags.max_wait and flags.max_wait < 0 then return nil, usage_error("--max-wait must be >= 0") end
    local derr
    s.date, derr = dates.reader{ timezone = flags.timezone, day_first = flags.day_first }
    if not s.date then return nil, usage_error(derr) end
    return s
end

-- the file's text, locked while it is imported -> text, lock, regular | nil, usage error
local function read_input(io_, path, shown)
    if path == "-" then
        local text = io_.stdin:read("*a")
        if not text then return nil, usage_error("cannot read stdin") end
        return text, nil, false
    end
    -- locked before it is read: one import of a file at a time
    local lock, oerr, why = core.lock(path)
    if not lock then
        if why == "locked" then
            return nil, usage_error(shown .. " is being imported by another mediquo process "
                .. "(one import of a file at a time; wait for it to finish)")
        end
        return nil, usage_error("cannot read " .. shown .. ": " .. util.os_reason(oerr))
    end
    local regular = oerr == true
    local f, text
    f, oerr = io.open(path, "rb")
    if f then
        text, oerr = f:read("*a")
        f:close()
    end
    if not text then
        lock:close()
        return nil, usage_error("cannot read " .. shown .. ": " .. util.os_reason(oerr or "read failed"))
    end
    return text, lock, regular
end

local function tell_format(io_, shown, info)
    if info.detected and info.separator ~= "," then
        io_.stderr:write("mediquo: ", shown, ": cells split at ", input.SEP_NAME[info.separator],
                         " (detected from the header; --separator to choose)\n")
    end
    if #info.ignored > 0 then
        io_.stderr:write("mediquo: ", shown, ": ignoring unknown ",
                         info.format == "csv" and "columns: " or "fields: ",
                         concat(info.ignored, ", "), "\n")
    end
end

-- --dry-run: every row checked as the engine checks it; nothing sent, no
-- journal. Exit 0 when all are valid, 1 naming each bad row otherwise.
local function dry_run(io_, flags, rows)
    local bad = 0
    for _, row in ipairs(rows) do
        local why = row.bad
        if not why then
            local ok, field, fwhy = core.check_op(row.op)
            if not ok then why = format("%s: %s", field, fwhy) end
        end
        local op = row.op or {}
        local rec = { line = row.line, op = op.op, code = op.code, ok = not why, dry_run = true }
        if why then
            bad = bad + 1
            rec.error = { kind = "invalid_argument", message = why, effect = "none" }
            emit(io_.stdout, flags, rec)
        end
    end
    if flags.json then
        io_.stdout:write(util.jsonline{ summary = { total = #rows, valid = #rows - bad, bad = bad,
                                                    dry_run = true } }, "\n")
    else
        io_.stdout:write(format("%d rows: %d valid, %d bad (dry run: nothing sent)\n",
                                #rows, #rows - bad, bad))
    end
    return bad > 0 and 1 or 0
end

-- --results FILE: one CSV line per row (line, op, code, outcome, url, kind, effect)
local function results_file(path)
    if not path then return nil end
    local f, err = io.open(path, "wb")
    if not f then return nil, usage_error("--results " .. safe(path) .. ": " .. util.os_reason(err)) end
    f:write("line,op,code,outcome,url,kind,effect\n")
    f:flush()
    local function cell(v)
        v = v == nil and "" or tostring(v)
        if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
        -- a cell a spreadsheet would run as a formula is quoted as text
        if v:match("^[=+%-@]") then v = "'" .. v end
        return v
    end
    return {
        write = function(rec)
            local e = rec.error or {}
            local outcome = rec.skipped and "skipped" or rec.held and "held"
                or rec.ok and (rec.reconciled and "reconciled" or "ok") or "failed"
            f:write(concat({ cell(rec.line), cell(rec.op), cell(rec.code), outcome, cell(rec.url),
                             cell(e.kind), cell(e.effect) }, ","), "\n")
            f:flush()
        end,
        close = function() f:close() end,
    }
end

-- What the journal says of each row: the rows to hand to run_batch, those
-- settled here (bad, done earlier, or not to be re-sent), and which of the
-- former an earlier run may have sent (in doubt).
local function plan(rows, j)
    local seen = j and j.seen or {}
    local v1 = j and j.version == 1
    local keys, ckey, last_ok = {}, {}, {}
    for r, row in ipairs(rows) do
        local op = row.op or {}
        keys[r] = journal.key(row)
        ckey[r] = (type(op.code) == "string" or type(op.code) == "number") and op.code ~= ""
            and tostring(op.code) or ("\0" .. r)
        local prior = seen[keys[r]]
        if not row.bad and prior and prior.state == "ok" then last_ok[ckey[r]] = r end
    end
    local settled, send, indoubt = {}, {}, {}
    for r, row in ipairs(rows) do
        local prior = seen[keys[r]]
        local op = row.op or {}
        local rec = { line = row.line, op = op.op, code = op.code }
        if row.bad then
            rec.ok, rec.error = false, { kind = "invalid_argument", message = row.bad, effect = "none" }
            settled[r] = rec
        elseif prior and prior.state == "ok" then
            rec.skipped, rec.reason = true, "done in an earlier run (journal)"
            settled[r] = rec
        else
            indoubt[r] = (prior and (prior.state == "send" or prior.state == "sent"
                                     or prior.state == "unknown"))
                or (v1 and not prior) or nil
            local later = last_ok[ckey[r]]
            if later and later > r then
                rec.ok, rec.held = false, true
                rec.reason = format("not re-sent: line %d on the same code was applied after it in an "
                    .. "earlier run, and sending this row now would undo that (its own outcome: %s)",
                    rows[later].line, indoubt[r] and "unknown" or (prior and prior.kind or "failed"))
                settled[r] = rec
            else
                send[#send + 1] = r
            end
        end
    end
    return { keys = keys, settled = settled, send = send, indoubt = indoubt }
end

-- the journal event of an outcome: what the engine says became of it
local function event_of(value, err)
    if value or err.effect == "done" then return "ok" end
    if err.effect == "none" then return "fail" end
    return "unknown"
end

-- run_batch over the rows to send; each outcome journaled, then shown
local function send_rows(ctx, c, rows, p)
    local j = ctx.j
    local ops, sent = {}, {}
    for k, r in ipairs(p.send) do ops[k] = rows[r].op end
    local unsynced     -- the line of a `send` written and not yet fsynced
    local function jwrite(events, line, how, nosync)
        if not j then return end
        local ok, werr = j:write(events, nosync)
        if not ok then
            error(setmetatable({ msg = werr, line = line, before = how == "before",
                                 applied = how == "applied" }, JournalError), 0)
        end
        if nosync then unsynced = line else unsynced = nil end     -- an fsync syncs all before it
    end
    local opts = {
        concurrency = ctx.conc, max_wait = ctx.batch_wait,
        resumed = function(k) return p.indoubt[p.send[k]] == true end,
        -- `send` is written (it outlives a kill) right before the request
        -- leaves, `sent` once its first bytes have; both are fsynced once
        -- it is out (on_wait, below, or the outcome's line): only a power
        -- loss in those few ms could lose them (a re-run then reports the
        -- row "already exists" rather than taking it as its own)
        before_send = function(k)
            local r = p.send[k]
            jwrite({ { "send", p.keys[r] } }, rows[r].line, "before", true)
            sent[r] = true
            ctx.n.sent = ctx.n.sent + 1
        end,
        on_sent = function(k)
            local r = p.send[k]
            jwrite({ { "sent", p.keys[r] } }, rows[r].line, "sent", true)
        end,
        on_wait = function(wait)
            if unsynced and j then
                local ok, werr = j:sync()
                if not ok then error(setmetatable({ msg = werr, line = unsynced }, JournalError), 0) end
                unsynced = nil
            end
            ctx.wait = wait
            ctx.tick()
        end,
        on_result = function(k, value, err, how)
            local r = p.send[k]
            local row = rows[r]
            local rec = { line = row.line, op = row.op.op, code = row.op.code }
            if value then
                rec.ok = true
                if type(value) == "table" then rec.url = value.url end
                if how == "reconciled" then
                    rec.reconciled = row.op.op == "create" and "created by the interrupted run, confirmed"
                        or "already cancelled by the interrupted run"
                end
            elseif err.held then
                local b = rows[p.send[err.held]]
                rec.ok, rec.held = false, true
                rec.reason = format("not sent: line %d (%s %s) may have taken effect (%s), and this row "
                    .. "must not overtake it; run the import again to settle it",
                    b.line, safe(b.op.op), safe(b.op.code), err.kind)
                rec.error = { kind = err.kind, effect = "none" }
            else
                rec.ok, rec.error = false, util.err_table(err)
                if err.effect == "unknown" then
                    rec.note = "it may have taken effect: run the import again to settle it"
                end
                -- an outcome for each row sent now or in doubt from before
                -- (a row refused before sending leaves no line)
                if sent[r] or p.indoubt[r] then
                    local ev = event_of(value, err)
                    jwrite({ { ev, p.keys[r], err.kind } }, row.line, ev == "ok" and "applied")
                end
            end
            if value then jwrite({ { "ok", p.keys[r] } }, row.line, "applied") end
            ctx.record(rec, err and not err.held and err.kind or nil)
        end,
    }
    local ran, res, berr = pcall(c.run_batch, c, ops, opts)
    if not ran then
        if getmetatable(res) == JournalError then return res end
        error(res, 0)
    end
    if not res then error("run_batch: " .. tostring(berr), 0) end
end

local function summary_line(ctx, total, stopped)
    local n, out = ctx.n, ctx.out
    local unreached = total - n.done
    if stopped then
        ctx.io.stderr:write(format("mediquo: journal %s: %s; the import stopped at line %d: %s "
            .. "no row after it was sent. Rows in flight were abandoned and may have been applied; "
            .. "once the journal can be written, run the same command again: rows done are skipped, "
            .. "rows in flight are reconciled\n", safe(ctx.jpath), safe(stopped.msg), stopped.line,
            stopped.before and "it was not sent;" or (stopped.applied and "it was applied, the journal "
            .. "does not say so;" or "its outcome is not in the journal;")))
    end
    if ctx.flags.json then
        out:write(util.jsonline{ summary = { total = total, ok = n.ok, failed = n.failed, held = n.held,
            skipped = n.skipped, not_reached = unreached > 0 and unreached or nil, by_kind = ctx.by,
            stopped_at = stopped and stopped.line or nil } }, "\n")
    else
        out:write(format("%d rows: %d ok, %d failed, %d skipped%s%s%s\n", total, n.ok, n.failed,
            n.skipped, n.held > 0 and format(", %d held", n.held) or "",
            unreached > 0 and format(", %d not reached", unreached) or "",
            n.failed > 0 and (" (" .. util.by_kind_text(ctx.by) .. ")") or ""))
    end
    out:flush()
    return (n.failed > 0 or n.held > 0 or stopped) and 1 or 0
end

-- the counters, the output and the progress line of one import
local function reporter(io_, flags, total, res, rule)
    local ctx = { io = io_, out = io_.stdout, flags = flags, by = {},
                  n = { done = 0, sent = 0, ok = 0, failed = 0, held = 0, skipped = 0 } }
    -- the time left is never less than the rule in force allows
    local budget = rule and rule.per_minute / rule.period or nil
    local prog = progress.new(io_.stderr, io_.isatty(2), total, budget)
    local function state()
        local n = ctx.n
        return { done = n.done, sent = n.sent, held = n.held, by_kind = ctx.by, wait = ctx.wait }
    end
    ctx.tick = function(final) prog:update(state(), final) end
    ctx.record = function(rec, kind)
        local n = ctx.n
        n.done = n.done + 1
        if rec.skipped then
            n.skipped = n.skipped + 1
        elseif rec.held then
            n.held = n.held + 1
        elseif rec.ok then
            n.ok = n.ok + 1
        else
            n.failed = n.failed + 1
            kind = kind or "invalid_argument"
            ctx.by[kind] = (ctx.by[kind] or 0) + 1
        end
        prog:clear()
        emit(ctx.out, flags, rec)
        if res then res.write(rec) end
        prog:update(state(), false, true)
    end
    return ctx
end

function _M.run(io_, flags, pos, cctx)
    local s, serr = settings(flags, pos)
    if not s then return serr end
    local path = s.path
    local shown = path == "-" and "stdin" or safe(path)
    local text, lock, regular = read_input(io_, path, shown)
    if not text then return lock end
    local j, c, res
    local function release()
        if c then c:close() end
        if j then j:close() end
        if lock then lock:close() end
        if res then res.close() end
    end
    local rows, info = input.parse(text, { separator = s.sep, ignore_unknown = flags.ignore_unknown,
                                           date = s.date })
    if not rows then
        release()
        return usage_error(shown .. ": " .. safe(info))
    end
    tell_format(io_, shown, info)
    if flags.dry_run then
        release()
        return dry_run(io_, flags, rows)
    end
    -- the client first: a rule in force other than the one asked for
    -- stops the import before anything is written or sent
    local uerr, rule
    c, uerr, rule = climiter.client(io_, flags)
    if not c then
        release()
        return uerr
    end
    local jpath = flags.journal
    -- stdin or a pipe (`import <(...)`) is read once: no default journal
    if not jpath and not flags.no_journal and regular then jpath = path .. ".journal" end
    if jpath then
        local jerr, why
        j, jerr, why = journal.open(jpath)
        if not j then
            release()
            if why == "locked" then
                return usage_error("the journal " .. safe(jpath) .. " is in use by another import")
            end
            return usage_error("the journal " .. safe(jpath) .. ": " .. safe(jerr))
        end
        cctx.journal = jpath
    end
    cctx.importing = true
    res, uerr = results_file(flags.results)
    if uerr then
        release()
        return uerr
    end
    local ctx = reporter(io_, flags, #rows, res, rule)
    ctx.j, ctx.jpath, ctx.conc = j, jpath, s.conc
    -- pacing: a row waits for its first limiter slot as long as it takes
    -- (--max-wait bounds it) and its deadline starts when it is sent
    ctx.batch_wait = not flags.no_rate_limit and (flags.max_wait or huge) or nil
    local p = plan(rows, j)
    for r = 1, #rows do
        if p.settled[r] then ctx.record(p.settled[r], p.settled[r].error and "invalid_argument") end
    end
    local stopped = #p.send > 0 and send_rows(ctx, c, rows, p) or nil
    release()
    ctx.tick(true)
    return summary_line(ctx, #rows, stopped)
end

return _M
