-- mediquo.cli: the `mediquo` command (bin/mediquo), kept here so it can be
-- tested from Lua. main(argv, io_) -> exit code: 0 when everything
-- succeeded, 1 when something failed or could not be applied, 2 when
-- nothing was done (a usage error, an unreadable file, a locked import),
-- 130 when interrupted.
--
-- `import` applies a whole schedule (mediquo.cli.input reads it) exactly
-- once and in file order per code, keeping a journal (mediquo.cli.journal)
-- so an interrupted import can be run again:
--  * rows on one code are applied in file order; after a row whose outcome
--    is unknown (an attempt may have taken effect), later rows on its code
--    are held: not sent, reported with why, exit 1. A re-run settles the
--    unknown row first (a create answered "already exists" is confirmed by
--    a reschedule to its own start, a cancel answered "already cancelled"
--    is done), then sends the held rows.
--  * before a row is sent its `send` line is on disk; on a re-run only rows
--    the journal says were sent, with no outcome, are reconciled - a row
--    never sent that meets "already exists" met someone else's appointment.
--  * a row whose code has a later row applied in an earlier run is not
--    re-sent (it would undo that row): reported held, exit 1.
--  * a journal that cannot be written or synced stops the import (exit 1)
--    and says where; two imports of one file at once are refused (locks).
-- Rows are sent in rounds, one row per code per round, all rows of a round
-- through one client:run_batch (which starts them in array order): so a
-- `send` line written 2 x concurrency rows ahead of the rows settled is
-- never behind the wire, and ordering and holding do not depend on how the
-- batch driver queues rows on one code (it holds them too: run_batch's
-- held rows never occur here). An import paces itself to the shared budget: rows
-- wait for a limiter slot as long as it takes (--max-wait bounds it).

local mediquo = require "mediquo"
local core = require "mediquo.core"
local cjson = require "cjson.safe"
local input = require "mediquo.cli.input"
local journal = require "mediquo.cli.journal"

local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local error = error
local tostring = tostring
local tonumber = tonumber
local format = string.format
local concat = table.concat
local sort = table.sort
local getenv = os.getenv
local floor = math.floor
local min = math.min
local huge = math.huge
local setmetatable = setmetatable
local getmetatable = getmetatable
local next = next

local _M = { _VERSION = "0.2.0" }

local json = cjson.new()

local SANDBOX_URL = "http://127.0.0.1:8089/v1"
local SANDBOX_KEY, SANDBOX_SECRET = "sandbox-key", "sandbox-secret"
-- Failures that prove the server did not act on the row.
local DEFINITIVE = { invalid_argument = true, bad_request = true, unauthorized = true,
                     forbidden = true, not_found = true, unprocessable = true, config = true }

_M.USAGE = [[
usage: mediquo [options] create --code C --starts-at T --patient P --professional H [--duration S]
       mediquo [options] reschedule CODE STARTS_AT
       mediquo [options] cancel CODE
       mediquo [options] import FILE|- [import options]
       mediquo [options] limiter status|resume
options:
  --base-url URL        API base URL (default $MEDIQUO_BASE_URL or https://sdk.mediquo.com/v1)
  --keys-file FILE      KEY=VALUE lines: MEDIQUO_API_KEY=..., MEDIQUO_SECRET_KEY=...
                        (default: those environment variables)
  --sandbox             use a running sandbox and its credentials (base URL:
                        --base-url, $MEDIQUO_SANDBOX_URL or http://127.0.0.1:8089/v1)
  --json                one JSON object per result on stdout
  --ca-file FILE        CA bundle for TLS
  --timeout S           seconds per attempt (default 10)
  --deadline S          seconds per operation, retries included (default 30)
  --max-retries N       retries after the first attempt (default 2)
  --retry-post          retry a create after a failure that may have reached the server
  --max-wait S          seconds to wait for a rate-limit slot (single commands:
                        default 10; import: as long as it takes)
  --per-minute N        the shared budget (default 600) ...
  --period S            ... per this many seconds (default 60)
  --rate-limit-key K    which budget to share (default: the API's host:port)
  --redis URL           share the budget through Redis: redis://[:password@]host:port,
                        rediss:// (TLS), redis-sentinel://h:p,h:p/master, redis-cluster://h:p,...
  --redis-ca FILE       the CA that signed the rediss:// server's certificate
                        (default: the system bundle)
  --no-rate-limit       no shared budget
  -h, --help            this text
import options:
  --concurrency N       requests in flight at once, 1 to 64 (default 4)
  --journal FILE        where to record progress (default FILE.journal)
  --no-journal          keep no journal (an interrupted import cannot resume)
                        (stdin and pipes have none unless --journal is given)
  --separator SEP       CSV cells split at ',' ';' or 'tab' (default: detected)
  --ignore-unknown-columns
                        skip CSV columns / JSON fields other than op, code,
                        starts_at, patient, professional, duration
FILE: CSV with a header row, or JSON lines; - reads stdin (no journal).
A re-run of an interrupted import skips rows done and reconciles rows in flight.
exit: 0 all applied, 1 some failed or held, 2 nothing done (usage), 130 interrupted]]

-- flag -> { key, kind }; kind: "string" | "number" | "integer" | true (boolean)
local FLAGS = {
    ["--base-url"] = { "base_url", "string" },
    ["--keys-file"] = { "keys_file", "string" },
    ["--sandbox"] = { "sandbox", true },
    ["--json"] = { "json", true },
    ["--ca-file"] = { "ca_file", "string" },
    ["--timeout"] = { "timeout", "number" },
    ["--deadline"] = { "deadline", "number" },
    ["--max-retries"] = { "max_retries", "integer" },
    ["--retry-post"] = { "retry_post", true },
    ["--max-wait"] = { "max_wait", "number" },
    ["--per-minute"] = { "per_minute", "integer" },
    ["--period"] = { "period", "number" },
    ["--rate-limit-key"] = { "rate_limit_key", "string" },
    ["--redis"] = { "redis", "string" },
    ["--redis-ca"] = { "redis_ca", "string" },
    ["--no-rate-limit"] = { "no_rate_limit", true },
    ["--concurrency"] = { "concurrency", "integer" },
    ["--journal"] = { "journal", "string" },
    ["--no-journal"] = { "no_journal", true },
    ["--separator"] = { "separator", "string" },
    ["--ignore-unknown-columns"] = { "ignore_unknown", true },
    ["--code"] = { "code", "string" },
    ["--starts-at"] = { "starts_at", "string" },
    ["--patient"] = { "patient", "string" },
    ["--professional"] = { "professional", "string" },
    ["--duration"] = { "duration", "integer" },
    ["-h"] = { "help", true },
    ["--help"] = { "help", true },
}
-- which command accepts which command-specific flag
local ONLY = { concurrency = "import", journal = "import", no_journal = "import",
               separator = "import", ignore_unknown = "import",
               code = "create", starts_at = "create", patient = "create",
               professional = "create", duration = "create" }
local SEPARATOR = { [","] = ",", comma = ",", [";"] = ";", semicolon = ";",
                    tab = "\t", ["\\t"] = "\t", ["\t"] = "\t" }

function _M.flags()
    local t = {}
    for name in pairs(FLAGS) do t[#t + 1] = name end
    sort(t)
    return t
end

-- an integral float as an integer where the Lua has them (5.3+)
local int = math.tointeger or function(v) return v end

local Usage = {}    -- marker metatable for usage errors

local function usage_error(msg)
    return setmetatable({ msg = msg }, Usage)
end

-- What may reach a terminal: control characters (C0, DEL, and C1 as UTF-8
-- or as raw bytes) shown as \xHH, so no value from a file or a server can
-- move the cursor, retitle the window or hide a line.
local function safe(s)
    return (tostring(s):gsub("\194[\128-\159]", function(c)
        return format("\\u%04x", c:byte(2))
    end):gsub("[%c\127]", function(c)
        return c == "\t" and "\\t" or format("\\x%02x", c:byte())
    end))
end
_M.safe = safe

-- an OS message without the path io.open puts in front
local function os_reason(msg)
    return (tostring(msg):gsub("^.*: ", ""))
end

-- parse(argv) -> flags, positional | nil, usage_error
local function parse(argv)
    local flags, pos = {}, {}
    local i = 1
    while i <= #argv do
        local a = argv[i]
        local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
        name = name or a
        local spec = FLAGS[name]
        if spec then
            local key, kind = spec[1], spec[2]
            if kind == true then
                if inline then return nil, usage_error(name .. " takes no value") end
                flags[key] = true
            else
                local v = inline
                if v == nil then
                    i = i + 1
                    v = argv[i]
                end
                if v == nil then return nil, usage_error(name .. " needs a value") end
                if kind ~= "string" then
                    local n = tonumber(v)
                    if not n or n ~= n or (kind == "integer" and n ~= floor(n)) then
                        return nil, usage_error(name .. " must be " ..
                            (kind == "integer" and "an integer" or "a number"))
                    end
                    v = kind == "integer" and int(n) or n
                end
                flags[key] = v
            end
        elseif a ~= "-" and a:sub(1, 1) == "-" then
            return nil, usage_error("unknown option " .. safe(name:sub(1, 40)))
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return flags, pos
end

-- KEY=VALUE lines; values never appear in any message
local function read_keys(path)
    local f, oerr = io.open(path, "rb")
    if not f then return nil, "cannot read --keys-file " .. safe(path) .. ": " .. os_reason(oerr) end
    local keys, n = {}, 0
    for line in f:lines() do
        n = n + 1
        line = line:gsub("\r$", "")
        if not line:match("^%s*$") and not line:match("^%s*#") then
            local k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
            if not k then
                f:close()
                return nil, "--keys-file line " .. n .. " is not KEY=VALUE"
            end
            v = v:match('^"(.*)"$') or v:match("^'(.*)'$") or v
            k = k:upper()
            if k == "MEDIQUO_API_KEY" or k == "API_KEY" then keys.api_key = v
            elseif k == "MEDIQUO_SECRET_KEY" or k == "SECRET_KEY" then keys.secret_key = v
            end
        end
    end
    f:close()
    if not keys.api_key or not keys.secret_key then
        return nil, "--keys-file must set MEDIQUO_API_KEY and MEDIQUO_SECRET_KEY"
    end
    return keys
end

-- the client options the flags and the environment ask for
local function client_opts(flags)
    local o = {}
    if flags.sandbox then
        o.base_url = flags.base_url or getenv("MEDIQUO_SANDBOX_URL") or SANDBOX_URL
        o.api_key, o.secret_key = SANDBOX_KEY, SANDBOX_SECRET
    else
        o.base_url = flags.base_url or getenv("MEDIQUO_BASE_URL")
        if flags.keys_file then
            local keys, err = read_keys(flags.keys_file)
            if not keys then return nil, usage_error(err) end
            o.api_key, o.secret_key = keys.api_key, keys.secret_key
        else
            o.api_key, o.secret_key = getenv("MEDIQUO_API_KEY"), getenv("MEDIQUO_SECRET_KEY")
            if not o.api_key or o.api_key == "" or not o.secret_key or o.secret_key == "" then
                return nil, usage_error("no credentials: set MEDIQUO_API_KEY and "
                    .. "MEDIQUO_SECRET_KEY, or use --keys-file FILE or --sandbox")
            end
        end
    end
    o.ca_file, o.timeout, o.deadline = flags.ca_file, flags.timeout, flags.deadline
    o.max_retries, o.retry_post = flags.max_retries, flags.retry_post
    if flags.no_rate_limit then
        for _, k in ipairs{ "per_minute", "period", "rate_limit_key", "redis", "redis_ca", "max_wait" } do
            if flags[k] ~= nil then
                return nil, usage_error(format("--%s and --no-rate-limit exclude each other",
                                               k:gsub("_", "-")))
            end
        end
        o.rate_limit = false
    else
        o.rate_limit = { per_minute = flags.per_minute, period = flags.period,
                         key = flags.rate_limit_key, redis = flags.redis,
                         redis_tls = flags.redis_ca and { ca_file = flags.redis_ca } or nil,
                         max_wait = flags.max_wait }
    end
    return o
end

-- the client's options, normalised as mediquo.new would (mediquo.options)
local normalized = mediquo.options

-- Output ------------------------------------------------------------------

local function err_table(e)
    return { kind = e.kind, status = e.status, message = e.message,
             retryable = e.retryable, retry_after = e.retry_after, effect = e.effect,
             fields = e.fields and next(e.fields) and e.fields or nil }
end

local function jsonline(rec)
    -- cjson leaves C1 controls (U+0080..U+009F) raw: escape them too
    return (json.encode(rec):gsub("\194([\128-\159])", function(c)
        return format("\\u%04x", c:byte())
    end))
end

local function emit(out, flags, rec)
    if flags.json then
        out:write(jsonline(rec), "\n")
        return
    end
    local where = rec.line and format("line %d: ", rec.line) or ""
    local what = safe((rec.op or "") .. (rec.code and (" " .. rec.code) or ""))
    if rec.skipped then
        out:write(where, "skipped ", what, " (", rec.reason, ")\n")
    elseif rec.held then
        out:write(where, "HELD ", what, ": ", safe(rec.reason), "\n")
    elseif rec.ok then
        out:write(where, "ok ", what, rec.url and ("  url " .. safe(rec.url)) or "",
                  rec.reconciled and "  (reconciled: " .. rec.reconciled .. ")" or "", "\n")
    else
        local e = rec.error
        out:write(where, "FAILED ", what, ": ", safe(e.kind),
                  e.status and format(" (HTTP %d)", e.status) or "",
                  e.message and (": " .. safe(e.message)) or "",
                  rec.note and ("  (" .. rec.note .. ")") or "", "\n")
    end
end

local function by_kind_text(by)
    local kinds = {}
    for k in pairs(by) do kinds[#kinds + 1] = k end
    sort(kinds)
    for i, k in ipairs(kinds) do kinds[i] = k .. " " .. by[k] end
    return concat(kinds, ", ")
end

-- Commands ------------------------------------------------------------------

local function new_client(flags)
    local o, uerr = client_opts(flags)
    if not o then return nil, uerr end
    local c, err = mediquo.new(o)
    if not c then return nil, usage_error(safe(err.message or err)) end
    return c
end

local function single(io_, flags, c, op, code, value, err)
    local rec = { op = op, code = code }
    c:close()
    if value then
        rec.ok = true
        if type(value) == "table" then rec.url = value.url end
        emit(io_.stdout, flags, rec)
        return 0
    end
    rec.ok = false
    rec.error = err_table(err)
    if flags.json then emit(io_.stdout, flags, rec) else emit(io_.stderr, flags, rec) end
    return 1
end

local function cmd_create(io_, flags, pos)
    if #pos > 0 then return usage_error("create takes no positional arguments (use --code ...)") end
    for _, k in ipairs{ "code", "starts_at", "patient", "professional" } do
        if flags[k] == nil then return usage_error("create needs --" .. k:gsub("_", "-")) end
    end
    local c, uerr = new_client(flags)
    if not c then return uerr end
    local v, err = c:create{ code = flags.code, starts_at = flags.starts_at, patient = flags.patient,
                             professional = flags.professional, duration = flags.duration }
    return single(io_, flags, c, "create", flags.code, v, err)
end

local function cmd_reschedule(io_, flags, pos)
    if #pos ~= 2 then return usage_error("reschedule needs CODE STARTS_AT") end
    local c, uerr = new_client(flags)
    if not c then return uerr end
    local v, err = c:reschedule(pos[1], pos[2])
    return single(io_, flags, c, "reschedule", pos[1], v, err)
end

local function cmd_cancel(io_, flags, pos)
    if #pos ~= 1 then return usage_error("cancel needs CODE") end
    local c, uerr = new_client(flags)
    if not c then return uerr end
    local v, err = c:cancel(pos[1])
    return single(io_, flags, c, "cancel", pos[1], v, err)
end

local function utc(t)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

-- limiter status | resume: open the budget the client would use, without
-- making a client (a read must not change the rule in force)
local function cmd_limiter(io_, flags, pos)
    local what = pos[1]
    if #pos ~= 1 or (what ~= "status" and what ~= "resume") then
        return usage_error("limiter needs 'status' or 'resume'")
    end
    if flags.no_rate_limit then return usage_error("--no-rate-limit: there is no limiter to show") end
    local o, uerr = client_opts(flags)
    if not o then return uerr end
    local norm, nerr = normalized(o)
    if not norm then return usage_error(safe(nerr.message or nerr)) end
    local cfg = norm.rate_limit
    local lim, lerr = mediquo.limiter(cfg)
    if not lim then return usage_error(safe(lerr.message or lerr)) end
    local before, serr = lim:status()
    local st = before
    if before and what == "resume" then
        if type(lim.resume) ~= "function" then
            lim:close()
            return usage_error("this build's limiter cannot resume (limiter:resume is missing)")
        end
        local ok, rerr = lim:resume()
        if ok then
            st, serr = lim:status()
        else
            st, serr = nil, rerr
        end
    end
    lim:close()
    if not st then
        io_.stderr:write("mediquo: limiter ", what, ": ", safe(serr and (serr.message or serr) or "failed"), "\n")
        return 1
    end
    local function paused_at(t)
        return t.paused_until and t.paused_until > 0 and t.paused_until or nil
    end
    local paused = paused_at(st)
    local rec = { key = cfg.key, per_minute = st.per_minute, period = st.period or cfg.period,
                  used = st.used, available = st.available, paused_until = paused,
                  backend = st.backend, hosts = st.hosts, degraded = st.degraded, error = st.error,
                  rule = st.rule, warning = st.warning }
    if what == "resume" then
        rec.resumed = true
        rec.was_paused_until = paused_at(before)
    end
    if flags.json then
        io_.stdout:write(jsonline(rec), "\n")
        return 0
    end
    local extra = {}
    if rec.backend then extra[#extra + 1] = "backend " .. safe(rec.backend) end
    if rec.hosts then extra[#extra + 1] = format("%s host%s", safe(rec.hosts), rec.hosts == 1 and "" or "s") end
    if rec.degraded ~= nil then
        extra[#extra + 1] = rec.degraded and "DEGRADED (each host on its own share)" or "not degraded"
    end
    if rec.error then extra[#extra + 1] = "last error: " .. safe(rec.error) end
    if type(rec.rule) == "table" and rec.rule.set_by_pid then
        extra[#extra + 1] = format("rule set by pid %s", safe(rec.rule.set_by_pid))
            .. (tonumber(rec.rule.set_at) and (" at " .. utc(rec.rule.set_at)) or "")
    end
    if what == "resume" then
        io_.stdout:write(format("limiter %s: resumed%s\n", safe(rec.key), rec.was_paused_until
            and format(" (it was paused until %s)", utc(rec.was_paused_until)) or " (it was not paused)"))
    end
    io_.stdout:write(format("limiter %s: %d per %gs, used %d, available %d, %s%s\n",
        safe(rec.key), rec.per_minute, rec.period, rec.used, rec.available,
        paused and format("paused until %s", utc(paused)) or "not paused",
        #extra > 0 and (", " .. concat(extra, ", ")) or ""))
    if rec.warning then io_.stderr:write("mediquo: warning: ", safe(rec.warning), "\n") end
    return 0
end

-- the progress line: on a terminal only, at most 5 times a second; the
-- rate counts rows settled by the server (not rows skipped); the time left
-- is never less than the shared budget allows (budget: rows per second)
local function progress(io_, enabled, total, budget)
    if not enabled then return function() end end
    local t0, last = core.now(), -1
    return function(done, sent, by, held, final)
        local now = core.now()
        if not final and now - last < 0.2 then return end
        last = now
        local el = now - t0
        local rate = el > 0 and sent / el or 0
        local eta = rate > 0 and (total - done) / rate or 0
        if budget and (total - done) / budget > eta then eta = (total - done) / budget end
        local failed = 0
        for _, n in pairs(by) do failed = failed + n end
        io_.stderr:write(format("\r\27[Kimport: %d/%d  %.1f/s  ETA %ds  failed %d%s%s",
            done, total, rate, floor(eta + 0.5), failed,
            failed > 0 and (" (" .. by_kind_text(by) .. ")") or "",
            held > 0 and format("  held %d", held) or ""), final and "\n" or "")
        io_.stderr:flush()
    end
end

-- what became of a failed row on the server: err.effect (API.md) when the
-- engine says; otherwise judged from the kind, erring towards "unknown"
local function effect_of(err)
    if err.effect then return err.effect end
    local kind = err.kind
    if DEFINITIVE[kind] or kind == "rate_limited" or (err.attempts or 1) == 0 then return "none" end
    if kind == "server_error" and err.status == 503 then return "none" end
    if tostring(err.message):find("^the appointment was created, but confirming it failed") then
        return "done"
    end
    return "unknown"
end

local JournalError = {}     -- marker metatable: the journal failed, stop

local function cmd_import(io_, flags, pos, ctx)
    if #pos ~= 1 then return usage_error("import needs FILE (or - for stdin)") end
    if flags.journal and flags.no_journal then
        return usage_error("--journal and --no-journal exclude each other")
    end
    local conc = flags.concurrency or 4
    if conc < 1 or conc > 64 then return usage_error("--concurrency must be from 1 to 64") end
    local sep
    if flags.separator then
        sep = SEPARATOR[flags.separator]
        if not sep then return usage_error("--separator must be ',' ';' or 'tab'") end
    end
    if flags.max_wait and flags.max_wait < 0 then return usage_error("--max-wait must be >= 0") end
    local path, text = pos[1]
    local regular = false       -- a regular file (not stdin, a pipe or a FIFO)
    local shown = path == "-" and "stdin" or safe(path)
    local lock
    if path == "-" then
        text = io_.stdin:read("*a")
        if not text then return usage_error("cannot read stdin") end
    else
        -- locked before it is read: one import of a file at a time
        local why, oerr
        lock, oerr, why = core.lock(path)
        regular = oerr == true
        if not lock then
            if why == "locked" then
                return usage_error(shown .. " is being imported by another mediquo process "
                    .. "(one import of a file at a time; wait for it to finish)")
            end
            return usage_error("cannot read " .. shown .. ": " .. os_reason(oerr))
        end
        local f
        f, oerr = io.open(path, "rb")
        if f then
            text, oerr = f:read("*a")
            f:close()
        end
        if not text then
            lock:close()
            return usage_error("cannot read " .. shown .. ": " .. os_reason(oerr or "read failed"))
        end
    end
    local function release(c, j)
        if c then c:close() end
        if j then j:close() end
        if lock then lock:close() end
    end
    local rows, info = input.parse(text, { separator = sep, ignore_unknown = flags.ignore_unknown })
    if not rows then
        release()
        return usage_error(shown .. ": " .. safe(info))
    end
    if info.detected and info.separator ~= "," then
        io_.stderr:write("mediquo: ", shown, ": cells split at ", input.SEP_NAME[info.separator],
                         " (detected from the header; --separator to choose)\n")
    end
    if #info.ignored > 0 then
        io_.stderr:write("mediquo: ", shown, ": ignoring unknown ",
                         info.format == "csv" and "columns: " or "fields: ",
                         concat(info.ignored, ", "), "\n")
    end

    local jpath = flags.journal
    -- stdin or a pipe (`import <(...)`) is read once: no default journal
    if not jpath and not flags.no_journal and regular then jpath = path .. ".journal" end
    local j
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
        ctx.journal = jpath
    end
    ctx.importing = true

    local c, uerr = new_client(flags)
    if not c then
        release(nil, j)
        return uerr
    end
    -- pacing: a row waits for its first limiter slot as long as it takes
    -- (--max-wait bounds it) and its deadline starts when it is sent
    -- (run_batch's opts.max_wait), so N rows at B per minute take about
    -- N/B minutes and none fails for lack of budget
    local batch_wait = not flags.no_rate_limit and (flags.max_wait or huge) or nil

    local out = io_.stdout
    local total = #rows
    local n = { done = 0, sent = 0, ok = 0, failed = 0, held = 0, skipped = 0 }
    local by = {}
    local tick = progress(io_, io_.isatty(2), total,
                          not flags.no_rate_limit and (flags.per_minute or 600) / (flags.period or 60) or nil)
    local keys, st, indoubt, ckey = {}, {}, {}, {}
    local function record(rec, kind)
        n.done = n.done + 1
        if rec.skipped then
            n.skipped = n.skipped + 1
        elseif rec.held then
            n.held = n.held + 1
        elseif rec.ok then
            n.ok = n.ok + 1
        else
            n.failed = n.failed + 1
            by[kind] = (by[kind] or 0) + 1
        end
        emit(out, flags, rec)
        tick(n.done, n.sent, by, n.held)
    end
    local function rec_of(r)
        local op = rows[r].op or {}
        return { line = rows[r].line, op = op.op, code = op.code }
    end
    local function hold(r, reason)
        st[r] = "held"
        local rec = rec_of(r)
        rec.ok, rec.held, rec.reason = false, true, reason
        record(rec)
    end

    -- what the journal says of each row, and which code each row is on
    local seen = j and j.seen or {}
    local v1 = j and j.version == 1
    local last_ok = {}
    for r, row in ipairs(rows) do
        local op = row.op or {}
        keys[r] = journal.key(row)
        ckey[r] = (type(op.code) == "string" or type(op.code) == "number") and op.code ~= ""
            and tostring(op.code) or ("\0" .. r)
        local prior = seen[keys[r]]
        if not row.bad and prior and prior.state == "ok" then last_ok[ckey[r]] = r end
    end
    for r, row in ipairs(rows) do
        local prior = seen[keys[r]]
        local rec = rec_of(r)
        if row.bad then
            st[r] = "failed"
            rec.ok = false
            rec.error = { kind = "invalid_argument", message = row.bad }
            record(rec, "invalid_argument")
        elseif prior and prior.state == "ok" then
            st[r] = "skipped"
            rec.skipped, rec.reason = true, "done in an earlier run (journal)"
            record(rec)
        else
            indoubt[r] = (prior and (prior.state == "send" or prior.state == "unknown"))
                or (v1 and not prior) or nil
            local later = last_ok[ckey[r]]
            if later and later > r then
                hold(r, format("not re-sent: line %d on the same code was applied after it in an "
                    .. "earlier run, and sending this row now would undo that (its own outcome: %s)",
                    rows[later].line, indoubt[r] and "unknown" or (prior and prior.kind or "failed")))
            else
                st[r] = "pending"
            end
        end
    end

    local blocked = {}      -- code -> why later rows on it are held
    local stopped           -- the journal error that stopped the import

    -- one row's outcome: journal first (so the file never says less than
    -- the server did), then the output
    local function settle(r, value, err, how)
        local row = rows[r]
        local op = row.op
        local rec = rec_of(r)
        n.sent = n.sent + 1
        local event, kind
        if value then
            st[r] = "done"
            event = "ok"
            rec.ok = true
            if type(value) == "table" then rec.url = value.url end
            if how == "reconciled" then
                rec.reconciled = op.op == "create" and "created by the interrupted run, confirmed"
                    or "already cancelled by the interrupted run"
            end
        else
            st[r] = "failed"
            kind = err.kind
            rec.ok = false
            rec.error = err_table(err)
            local effect = effect_of(err)
            rec.error.effect = effect
            if effect == "done" then
                event = "ok"    -- applied: never to be sent again, later rows may go
            elseif effect == "none" and (DEFINITIVE[kind] or not indoubt[r]) then
                event = "fail"
            else
                -- it, or an earlier run's attempt, may have taken effect
                event = "unknown"
                blocked[ckey[r]] = format("not sent: line %d (%s %s) may have taken effect (%s%s), "
                    .. "and this row must not overtake it; run the import again to settle it",
                    row.line, safe(op.op), safe(op.code), kind,
                    err.status and format(" HTTP %d", err.status) or "")
                rec.note = "it may have taken effect: run the import again to settle it"
            end
        end
        if j then
            local ok, werr = j:write{ { event, keys[r], kind } }
            if not ok then
                error(setmetatable({ msg = werr, line = row.line, applied = event == "ok" }, JournalError), 0)
            end
        end
        record(rec, kind)
    end

    -- one round: the first pending row of each code, through run_batch.
    -- Before a row can be sent its `send` line is on disk: rows are marked
    -- 2 x concurrency ahead of those settled (run_batch starts them in
    -- array order, at most `concurrency` at once).
    local function run_round(round)
        local ops = {}
        for k, r in ipairs(round) do ops[k] = rows[r].op end
        local marked, finished = 0, 0
        local function mark_upto(m)
            m = min(m, #round)
            if not j or m <= marked then return end
            local events = {}
            for k = marked + 1, m do events[#events + 1] = { "send", keys[round[k]] } end
            local ok, werr = j:write(events)
            if not ok then
                error(setmetatable({ msg = werr, line = rows[round[marked + 1]].line, before = true },
                                   JournalError), 0)
            end
            marked = m
        end
        local opts = {
            concurrency = conc, max_wait = batch_wait,
            resumed = function(k) return indoubt[round[k]] == true end,
            on_result = function(k, value, err, how)
                finished = finished + 1
                settle(round[k], value, err, how)
                mark_upto(2 * conc + finished)
            end,
        }
        local ran, res, berr = pcall(function()
            mark_upto(2 * conc)
            return c:run_batch(ops, opts)
        end)
        if not ran then
            if getmetatable(res) == JournalError then
                stopped = res
                return
            end
            error(res, 0)
        end
        if not res then error("run_batch: " .. tostring(berr), 0) end
    end

    while not stopped do
        local round, taken = {}, {}
        for r = 1, total do
            if st[r] == "pending" then
                local ck = ckey[r]
                if blocked[ck] then
                    hold(r, blocked[ck])
                elseif not taken[ck] then
                    taken[ck] = true
                    round[#round + 1] = r
                end
            end
        end
        if #round == 0 then break end
        run_round(round)
    end
    release(c, j)
    tick(n.done, n.sent, by, n.held, true)

    local unreached = total - n.done
    if stopped then
        io_.stderr:write(format("mediquo: journal %s: %s; the import stopped at line %d: %s "
            .. "no row after it was sent. Rows in flight were abandoned and may have been applied; "
            .. "once the journal can be written, run the same command again: rows done are skipped, "
            .. "rows in flight are reconciled\n", safe(jpath), safe(stopped.msg), stopped.line,
            stopped.before and "it was not sent;" or (stopped.applied and "it was applied, the journal "
            .. "does not say so;" or "its outcome is not in the journal;")))
    end
    local summary = { total = total, ok = n.ok, failed = n.failed, held = n.held, skipped = n.skipped,
                      not_reached = unreached > 0 and unreached or nil, by_kind = by,
                      stopped_at = stopped and stopped.line or nil }
    if flags.json then
        out:write(jsonline{ summary = summary }, "\n")
    else
        out:write(format("%d rows: %d ok, %d failed, %d skipped%s%s%s\n", total, n.ok, n.failed,
            n.skipped, n.held > 0 and format(", %d held", n.held) or "",
            unreached > 0 and format(", %d not reached", unreached) or "",
            n.failed > 0 and (" (" .. by_kind_text(by) .. ")") or ""))
    end
    return (n.failed > 0 or n.held > 0 or stopped) and 1 or 0
end

local COMMANDS = { create = cmd_create, reschedule = cmd_reschedule, cancel = cmd_cancel,
                   import = cmd_import, limiter = cmd_limiter }

local function default_io()
    return {
        stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
        isatty = function(fd)
            local ok = os.execute("test -t " .. fd)
            return ok == true or ok == 0
        end,
    }
end

-- what to say when Ctrl-C stops a command
local function interrupted(io_, ctx)
    local msg
    if ctx.journal then
        msg = "interrupted; run the same command again to resume: rows the journal "
            .. safe(ctx.journal) .. " records as done are skipped, rows that were in flight are reconciled"
    elseif ctx.importing then
        msg = "interrupted; this import keeps no journal (stdin, a pipe or --no-journal), so there is "
            .. "nothing to resume: rows reported ok were applied, rows in flight may have been"
    else
        msg = "interrupted; the request may have reached the server"
    end
    io_.stderr:write("\nmediquo: ", msg, "\n")
    return 130
end

-- main(argv[, io]) -> exit code
function _M.main(argv, io_)
    io_ = io_ or default_io()
    local flags, pos = parse(argv or {})
    local code
    if flags then
        local cmd = table.remove(pos, 1)
        if flags.help then
            io_.stdout:write(_M.USAGE, "\n")
            return 0
        end
        if not cmd then
            pos = usage_error("no command given")
        elseif not COMMANDS[cmd] then
            pos = usage_error("unknown command '" .. safe(cmd:sub(1, 40)) .. "'")
        else
            for key, only in pairs(ONLY) do
                if flags[key] ~= nil and only ~= cmd then
                    local flag
                    for name, spec in pairs(FLAGS) do
                        if spec[1] == key and name:sub(1, 2) == "--" then flag = name end
                    end
                    pos = usage_error(format("%s is only for '%s'", flag, only))
                    break
                end
            end
            if getmetatable(pos) ~= Usage then
                local ctx = {}
                local ran, res = pcall(COMMANDS[cmd], io_, flags, pos, ctx)
                if not ran then
                    if tostring(res):find("interrupted!$") then return interrupted(io_, ctx) end
                    error(res, 0)
                end
                code = res
            end
        end
        if type(code) == "table" then pos = code end
    end
    if getmetatable(pos) == Usage then
        io_.stderr:write("mediquo: ", pos.msg, "; see mediquo --help\n")
        return 2
    end
    return code
end

_M._parse_input = input.parse

return _M
