-- mediquo.cli: the `mediquo` command (bin/mediquo), kept here so it can be
-- tested from Lua. main(argv, io_) -> exit code: 0 when everything
-- succeeded, 1 when something failed, 2 on a usage error.
--
-- `import` runs a whole schedule through client:run_batch and keeps a
-- journal next to the input so that an interrupted import can be re-run:
-- rows that succeeded are skipped, and a row whose outcome the interrupted
-- run never learnt (it was in flight, or not reached) is reconciled - a
-- create answered "already exists" is confirmed by a reschedule to the same
-- start, a cancel answered "already cancelled" counts as done. See
-- README "Command line" for the exact rules.

local mediquo = require "mediquo"
local core = require "mediquo.core"
local cjson = require "cjson.safe"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local format = string.format
local concat = table.concat
local sort = table.sort
local getenv = os.getenv
local floor = math.floor
local setmetatable = setmetatable
local getmetatable = getmetatable
local next = next

local _M = { _VERSION = "0.1.0" }

local json = cjson.new()

local SANDBOX_URL = "http://127.0.0.1:8089/v1"
local SANDBOX_KEY, SANDBOX_SECRET = "sandbox-key", "sandbox-secret"
local COLUMNS = { op = true, code = true, starts_at = true, patient = true,
                  professional = true, duration = true }
local FIELDS_OF = {
    create = { "code", "starts_at", "patient", "professional", "duration" },
    reschedule = { "code", "starts_at" },
    cancel = { "code" },
}
-- Failures that prove the server did not act on the row: after one of
-- these, "already exists" on a re-run is someone else's appointment.
local DEFINITIVE = { invalid_argument = true, bad_request = true, unauthorized = true,
                     forbidden = true, not_found = true, unprocessable = true }

_M.USAGE = [[
usage: mediquo [options] create --code C --starts-at T --patient P --professional H [--duration S]
       mediquo [options] reschedule CODE STARTS_AT
       mediquo [options] cancel CODE
       mediquo [options] import FILE|- [--concurrency N] [--journal FILE | --no-journal]
       mediquo [options] limiter status
options:
  --base-url URL        API base URL (default $MEDIQUO_BASE_URL or https://sdk.mediquo.com/v1)
  --keys-file FILE      KEY=VALUE lines: MEDIQUO_API_KEY=..., MEDIQUO_SECRET_KEY=...
                        (default: those environment variables)
  --sandbox             use a running sandbox and its credentials (base URL:
                        --base-url, $MEDIQUO_SANDBOX_URL or http://127.0.0.1:8089/v1)
  --json                one JSON object per result on stdout
  --ca-file FILE        CA bundle for TLS
  --timeout S, --deadline S, --max-retries N, --retry-post
  --per-minute N, --period S, --rate-limit-key K, --no-rate-limit
  -h, --help            this text
exit: 0 all succeeded, 1 some failed, 2 usage error]]

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
    ["--per-minute"] = { "per_minute", "integer" },
    ["--period"] = { "period", "number" },
    ["--rate-limit-key"] = { "rate_limit_key", "string" },
    ["--no-rate-limit"] = { "no_rate_limit", true },
    ["--concurrency"] = { "concurrency", "integer" },
    ["--journal"] = { "journal", "string" },
    ["--no-journal"] = { "no_journal", true },
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
               code = "create", starts_at = "create", patient = "create",
               professional = "create", duration = "create" }

-- an integral float as an integer where the Lua has them (5.3+)
local int = math.tointeger or function(v) return v end

local Usage = {}    -- marker metatable for usage errors

local function usage_error(msg)
    return setmetatable({ msg = msg }, Usage)
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
                    if not n or (kind == "integer" and n ~= floor(n)) then
                        return nil, usage_error(name .. " must be " ..
                            (kind == "integer" and "an integer" or "a number"))
                    end
                    v = kind == "integer" and int(n) or n
                end
                flags[key] = v
            end
        elseif a ~= "-" and a:sub(1, 1) == "-" then
            return nil, usage_error("unknown option " .. name:gsub("[%c]", "?"))
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return flags, pos
end

-- KEY=VALUE lines; values never appear in any message
local function read_keys(path)
    local f = io.open(path, "rb")
    if not f then return nil, "cannot read --keys-file" end
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
        o.rate_limit = false
    else
        o.rate_limit = { per_minute = flags.per_minute, period = flags.period,
                         key = flags.rate_limit_key }
    end
    return o
end

-- Output ------------------------------------------------------------------

local function err_table(e)
    return { kind = e.kind, status = e.status, message = e.message,
             retryable = e.retryable, retry_after = e.retry_after,
             fields = e.fields and next(e.fields) and e.fields or nil }
end

local function emit(out, flags, rec)
    if flags.json then
        out:write(json.encode(rec), "\n")
        return
    end
    local where = rec.line and format("line %d: ", rec.line) or ""
    local what = (rec.op or "") .. (rec.code and (" " .. rec.code) or "")
    if rec.skipped then
        out:write(where, "skipped ", what, " (", rec.reason, ")\n")
    elseif rec.ok then
        out:write(where, "ok ", what, rec.url and ("  url " .. rec.url) or "",
                  rec.reconciled and "  (reconciled: " .. rec.reconciled .. ")" or "", "\n")
    else
        local e = rec.error
        out:write(where, "FAILED ", what, ": ", e.kind,
                  e.status and format(" (HTTP %d)", e.status) or "",
                  e.message and (": " .. e.message) or "", "\n")
    end
end

local function by_kind_text(by)
    local kinds = {}
    for k in pairs(by) do kinds[#kinds + 1] = k end
    sort(kinds)
    for i, k in ipairs(kinds) do kinds[i] = k .. " " .. by[k] end
    return concat(kinds, ", ")
end

-- Input -------------------------------------------------------------------

-- CSV (RFC 4180: quotes, "" inside quotes, CRLF) -> records { line=, fields }
local function csv_records(text)
    local recs, i, n, line = {}, 1, #text, 1
    while i <= n do
        local rec, start_line = {}, line
        while true do
            local field
            if text:sub(i, i) == '"' then
                local buf = {}
                i = i + 1
                while true do
                    local q = text:find('"', i, true)
                    if not q then return nil, format("line %d: unterminated quoted field", start_line) end
                    local chunk = text:sub(i, q - 1)
                    local _, nl = chunk:gsub("\n", "")
                    line = line + nl
                    buf[#buf + 1] = chunk
                    if text:sub(q + 1, q + 1) == '"' then
                        buf[#buf + 1] = '"'
                        i = q + 2
                    else
                        i = q + 1
                        break
                    end
                end
                field = concat(buf)
                local c = text:sub(i, i)
                if c ~= "," and c ~= "\n" and c ~= "\r" and c ~= "" then
                    return nil, format("line %d: text after a closing quote", line)
                end
            else
                local j = text:find("[,\r\n]", i)
                field = text:sub(i, (j or n + 1) - 1)
                i = j or n + 1
            end
            rec[#rec + 1] = field
            local c = text:sub(i, i)
            if c == "," then
                i = i + 1
            else
                if c == "\r" then i = i + 1 end
                if text:sub(i, i) == "\n" then i = i + 1 end
                line = line + 1
                break
            end
        end
        recs[#recs + 1] = { line = start_line, fields = rec }
    end
    return recs
end

local function row_op(fields)
    local op = {}
    local kind = fields.op
    op.op = kind
    for _, k in ipairs(FIELDS_OF[kind] or { "code", "starts_at", "patient", "professional", "duration" }) do
        local v = fields[k]
        if v ~= nil and v ~= cjson.null and v ~= "" then
            if k == "duration" and type(v) == "string" and v:match("^%s*%d+%s*$") then
                v = int(tonumber(v))
            end
            op[k] = v
        end
    end
    return op
end

-- parse_input(text) -> rows { line, op, raw } | nil, usage message
local function parse_input(text)
    local rows = {}
    local first = text:match("^%s*(.)")
    if first == "{" then    -- JSON lines
        local line = 0
        for l in (text:gsub("\r\n", "\n") .. "\n"):gmatch("([^\n]*)\n") do
            line = line + 1
            if not l:match("^%s*$") then
                local doc = json.decode(l)
                local row = { line = line, raw = l }
                if type(doc) ~= "table" then
                    row.bad = "not a JSON object"
                else
                    row.op = row_op(doc)
                    for k in pairs(doc) do
                        if not COLUMNS[k] then row.bad = "unknown field " .. tostring(k):sub(1, 40) end
                    end
                end
                rows[#rows + 1] = row
            end
        end
        return rows
    end
    local recs, err = csv_records(text)
    if not recs then return nil, err end
    if #recs == 0 then return nil, "the input is empty (a CSV header row is required)" end
    local header = recs[1].fields
    local cols = {}
    for i, name in ipairs(header) do
        name = name:gsub("^\239\187\191", ""):match("^%s*(.-)%s*$"):lower()
        if not COLUMNS[name] then
            return nil, "unknown CSV column '" .. name:sub(1, 40):gsub("%c", "?") .. "' (columns: "
                .. "op,code,starts_at,patient,professional,duration)"
        end
        cols[i] = name
    end
    local has_op = false
    for _, c in ipairs(cols) do has_op = has_op or c == "op" end
    if not has_op then return nil, "the CSV header has no 'op' column" end
    for r = 2, #recs do
        local rec = recs[r]
        local f = rec.fields
        if not (#f == 1 and f[1]:match("^%s*$")) then     -- blank lines
            local row = { line = rec.line, raw = concat(f, "\31") }
            if #f ~= #cols then
                row.bad = format("has %d fields, the header has %d", #f, #cols)
            else
                local t = {}
                for i, c in ipairs(cols) do t[c] = f[i] end
                row.op = row_op(t)
            end
            rows[#rows + 1] = row
        end
    end
    return rows
end

-- a 32-bit hash of the row's text, so an edited row is not skipped (plain
-- arithmetic: the module stays loadable by every Lua the rock supports)
local function hash(s)
    local h = 5381
    for i = 1, #s do
        h = (h * 33 + s:byte(i)) % 4294967296
    end
    return format("%08x", h)
end

-- Journal -------------------------------------------------------------------

local JOURNAL_HEADER = "# mediquo import journal v1"

local function row_key(row)
    local op = row.op or {}
    return concat({ row.line, tostring(op.op), tostring(op.code), hash(row.raw) }, "\t")
end

-- load(path) -> { key -> "ok" | "fail" } , existed
local function journal_load(path)
    local f = io.open(path, "rb")
    if not f then return {}, false end
    local text = f:read("*a") or ""
    f:close()
    local seen = {}
    -- only complete lines count: a line cut short by a kill is ignored
    for l in text:gmatch("([^\n]*)\n") do
        local state, key = l:match("^(%a+)\t(.+)$")
        if state == "ok" then
            seen[key] = "ok"
        elseif state == "fail" then
            local k = key:match("^(.*)\t[%a_]+$")
            if k and seen[k] ~= "ok" then seen[k] = "fail" end
        end
    end
    return seen, true
end

-- Commands ------------------------------------------------------------------

local function new_client(flags)
    local o, uerr = client_opts(flags)
    if not o then return nil, uerr end
    local c, err = mediquo.new(o)
    if not c then return nil, usage_error(tostring(err.message or err)) end
    return c
end

local function single(io_, flags, c, op, code, value, err)
    local rec = { op = op, code = code }
    if value then
        rec.ok = true
        if type(value) == "table" then rec.url = value.url end
        emit(io_.stdout, flags, rec)
        return 0
    end
    rec.ok = false
    rec.error = err_table(err)
    if flags.json then emit(io_.stdout, flags, rec) else emit(io_.stderr, flags, rec) end
    c:close()
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

local function cmd_limiter(io_, flags, pos)
    if #pos ~= 1 or pos[1] ~= "status" then return usage_error("limiter needs 'status'") end
    if flags.no_rate_limit then return usage_error("--no-rate-limit: there is no limiter to show") end
    local o, uerr = client_opts(flags)
    if not o then return uerr end
    local c, err = mediquo.new(o)   -- validates and opens the same limiter the client uses
    if not c then return usage_error(tostring(err.message or err)) end
    c:close()
    local cfg = assert(mediquo.options(o)).rate_limit
    local lim, lerr = mediquo.limiter(cfg)
    if not lim then return usage_error(tostring(lerr.message or lerr)) end
    local st = lim:status()
    lim:close()
    local rec = { key = cfg.key, per_minute = st.per_minute, period = cfg.period,
                  used = st.used, available = st.available,
                  paused_until = st.paused_until and st.paused_until > 0 and st.paused_until or nil }
    if flags.json then
        io_.stdout:write(json.encode(rec), "\n")
    else
        io_.stdout:write(format("limiter %s: %d per %gs, used %d, available %d, %s\n",
            rec.key, rec.per_minute, rec.period, rec.used, rec.available,
            rec.paused_until and format("paused until %s", os.date("!%Y-%m-%dT%H:%M:%SZ",
                floor(rec.paused_until))) or "not paused"))
    end
    return 0
end

-- the progress line: on a terminal only, at most 5 times a second
local function progress(io_, enabled, total)
    if not enabled then return function() end end
    local t0, last = core.now(), -1
    return function(done, by, final)
        local now = core.now()
        if not final and now - last < 0.2 then return end
        last = now
        local el = now - t0
        local rate = el > 0 and done / el or 0
        local eta = rate > 0 and (total - done) / rate or 0
        local failed = 0
        for _, n in pairs(by) do failed = failed + n end
        io_.stderr:write(format("\r\27[Kimport: %d/%d  %.1f/s  ETA %ds  failed %d%s",
            done, total, rate, floor(eta + 0.5), failed,
            failed > 0 and (" (" .. by_kind_text(by) .. ")") or ""), final and "\n" or "")
        io_.stderr:flush()
    end
end

local function cmd_import(io_, flags, pos)
    if #pos ~= 1 then return usage_error("import needs FILE (or - for stdin)") end
    if flags.journal and flags.no_journal then
        return usage_error("--journal and --no-journal exclude each other")
    end
    local conc = flags.concurrency or 4
    if conc < 1 or conc > 64 then return usage_error("--concurrency must be from 1 to 64") end
    local path, text = pos[1]
    if path == "-" then
        text = io_.stdin:read("*a")
    else
        local f = io.open(path, "rb")
        if not f then return usage_error("cannot read " .. path) end
        text = f:read("*a")
        f:close()
    end
    if not text then return usage_error("cannot read " .. path) end
    local rows, perr = parse_input(text)
    if not rows then return usage_error(path .. ": " .. perr) end

    local jpath = flags.journal
    if not jpath and not flags.no_journal and path ~= "-" then jpath = path .. ".journal" end
    local seen, rerun = {}, false
    if jpath then seen, rerun = journal_load(jpath) end

    local c, uerr = new_client(flags)
    if not c then return uerr end

    local jf
    if jpath then
        jf = io.open(jpath, "ab")
        if not jf then
            c:close()
            return usage_error("cannot write the journal " .. jpath)
        end
        if not rerun then jf:write(JOURNAL_HEADER, "\n") end
    end
    local function journal(state, row, kind)
        if not jf then return end
        jf:write(state, "\t", row_key(row), kind and ("\t" .. kind) or "", "\n")
        local ok, err = c._core:sync(jf)
        if not ok then io_.stderr:write("mediquo: journal: ", err, "\n") end
    end

    local out = io_.stdout
    local total, done, failed, okn, skipped = #rows, 0, 0, 0, 0
    local by = {}
    local tick = progress(io_, io_.isatty(2), total)
    local function record(row, rec, kind)
        done = done + 1
        if rec.skipped then
            skipped = skipped + 1
        elseif rec.ok then
            okn = okn + 1
            journal("ok", row)
        else
            failed = failed + 1
            by[kind] = (by[kind] or 0) + 1
            if DEFINITIVE[kind] then journal("fail", row, kind) end
        end
        emit(out, flags, rec)
        tick(done, by)
    end

    -- rows to send now; rows the journal says are done are skipped
    local ops, idx = {}, {}
    for _, row in ipairs(rows) do
        local op = row.op or {}
        local rec = { line = row.line, op = op.op, code = op.code }
        if row.bad then
            rec.ok = false
            rec.error = { kind = "invalid_argument", message = row.bad }
            record(row, rec, "invalid_argument")
        elseif seen[row_key(row)] == "ok" then
            rec.skipped, rec.reason = true, "done in an earlier run (journal)"
            record(row, rec)
        else
            ops[#ops + 1] = op
            idx[#ops] = row
        end
    end

    -- A re-run: a row with no definite outcome in the journal may have
    -- reached the server before the interruption, so "already exists" /
    -- "already cancelled" for it is taken as its own effect (a create is
    -- confirmed by a reschedule to its own start, which gives the URL).
    local function resumed(i)
        return rerun and seen[row_key(idx[i])] == nil
    end
    local function finish(i, value, err, how)
        local row = idx[i]
        local op = row.op
        local rec = { line = row.line, op = op.op, code = op.code }
        if value then
            rec.ok = true
            if type(value) == "table" then rec.url = value.url end
            if how == "reconciled" then
                rec.reconciled = op.op == "create" and "created by the interrupted run, confirmed"
                    or "already cancelled by the interrupted run"
            end
            record(row, rec)
        else
            rec.ok = false
            rec.error = err_table(err)
            record(row, rec, err.kind)
        end
    end

    local res, serr = c:run_batch(ops, { concurrency = conc, on_result = finish,
                                         resumed = resumed })
    if not res then
        c:close()
        return usage_error(tostring(serr))
    end
    c:close()
    if jf then jf:close() end
    tick(done, by, true)

    local summary = { total = total, ok = okn, failed = failed, skipped = skipped, by_kind = by }
    if flags.json then
        out:write(json.encode{ summary = summary }, "\n")
    else
        out:write(format("%d rows: %d ok, %d failed, %d skipped%s\n", total, okn, failed, skipped,
            failed > 0 and (" (" .. by_kind_text(by) .. ")") or ""))
    end
    return failed > 0 and 1 or 0
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
            pos = usage_error("unknown command '" .. cmd:sub(1, 40):gsub("%c", "?") .. "'")
        else
            for key, only in pairs(ONLY) do
                if flags[key] ~= nil and only ~= cmd then
                    pos = usage_error(format("--%s is only for '%s'", key:gsub("_", "-"), only))
                    break
                end
            end
            if getmetatable(pos) ~= Usage then code = COMMANDS[cmd](io_, flags, pos) end
        end
        if type(code) == "table" then pos = code end
    end
    if getmetatable(pos) == Usage then
        io_.stderr:write("mediquo: ", pos.msg, "\n", _M.USAGE, "\n")
        return 2
    end
    return code
end

_M._parse_input = parse_input

return _M
