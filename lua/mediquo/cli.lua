-- mediquo.cli: the `mediquo` command (bin/mediquo), kept here so it can be
-- tested from Lua. main(argv, io_) -> exit code: 0 when everything
-- succeeded, 1 when something failed or could not be applied, 2 when
-- nothing was done (a usage error, an unreadable file, a locked import, a
-- rule in force other than the one asked for), 130 when interrupted.
--
-- This file reads the flags and hands the command to its module
-- (COMMANDS: command name -> module; a module's run(io_, flags, pos, ctx)
-- returns the exit code, or a usage error / stop from mediquo.cli.util).
-- A module may add flags of its own (module.FLAGS: flag -> { key, kind
-- [, command] }), taken only by its commands.

local core = require "mediquo.core"
local util = require "mediquo.cli.util"

local type = type
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local format = string.format
local sort = table.sort
local floor = math.floor

local safe, usage_error = util.safe, util.usage_error

local _M = { _VERSION = core._VERSION }

-- command name -> module
local COMMANDS = {
    create = require "mediquo.cli.single",
    reschedule = require "mediquo.cli.single",
    cancel = require "mediquo.cli.single",
    import = require "mediquo.cli.import",
    limiter = require "mediquo.cli.limiter",
    webhooks = require "mediquo.cli.webhooks",
}

_M.USAGE = [[
usage: mediquo [options] create --code C --starts-at T --patient P --professional H [--duration S]
       mediquo [options] reschedule CODE STARTS_AT
       mediquo [options] cancel CODE
       mediquo [options] import FILE|- [import options]
       mediquo [options] limiter status|resume
       mediquo [options] limiter set-rule --per-minute N [--period S] [--burst B]
       mediquo [options] webhooks list | add TYPE URL [--header K:V]... | update ID TYPE URL
                                  [--header K:V]... | rm ID
       mediquo --version
options:
  --base-url URL        API base URL (default $MEDIQUO_BASE_URL or https://sdk.mediquo.com/v1)
  --keys-file FILE      KEY=VALUE lines: MEDIQUO_API_KEY=..., MEDIQUO_SECRET_KEY=...
                        (default: those environment variables); refused when
                        its group or others may read it
  --insecure-keys-file  use a keys file others may read anyway
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
  --period S            ... per this many seconds (default 60) ...
  --burst B             ... at most B back to back (default 60). When the
                        rule in force for the key differs, nothing is sent
                        (exit 2): see `limiter set-rule`; without these
                        flags the rule in force is used (named on stderr)
  --rate-limit-key K    which budget to share (default: the API's host:port)
  --redis URL           share the budget through Redis: redis://[:password@]host:port,
                        rediss:// (TLS), redis-sentinel://h:p,h:p/master, redis-cluster://h:p,...
  --redis-ca FILE       the CA that signed the rediss:// server's certificate
                        (default: the system bundle)
  --no-rate-limit       no shared budget
  --version             the version of mediquo
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
  --timezone ZONE       read start times without a zone in ZONE: an IANA name
                        (Europe/Madrid) or an offset (+02:00)
  --day-first           read DD/MM/YYYY dates (default: refused as ambiguous)
  --dry-run             check every row, send nothing, keep no journal
  --results FILE        a CSV of every row: line,op,code,outcome,url,kind,effect
FILE: CSV with a header row, or JSON lines; - reads stdin (no journal).
Start times: ISO 8601, or as spreadsheets write them (2030-05-20 10:00).
A re-run of an interrupted import skips rows done and reconciles rows in flight.
exit: 0 all applied, 1 some failed or held, 2 nothing done (usage), 130 interrupted]]

-- flag -> { key, kind[, command] }; kind: "string" | "number" | "integer" | true (boolean)
local FLAGS = {
    ["--base-url"] = { "base_url", "string" },
    ["--keys-file"] = { "keys_file", "string" },
    ["--insecure-keys-file"] = { "insecure_keys_file", true },
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
    ["--burst"] = { "burst", "integer" },
    ["--rate-limit-key"] = { "rate_limit_key", "string" },
    ["--redis"] = { "redis", "string" },
    ["--redis-ca"] = { "redis_ca", "string" },
    ["--no-rate-limit"] = { "no_rate_limit", true },
    ["--code"] = { "code", "string", "create" },
    ["--starts-at"] = { "starts_at", "string", "create" },
    ["--patient"] = { "patient", "string", "create" },
    ["--professional"] = { "professional", "string", "create" },
    ["--duration"] = { "duration", "integer", "create" },
    ["--version"] = { "version", true },
    ["-h"] = { "help", true },
    ["--help"] = { "help", true },
}
-- key -> the command(s) that take it: a command name, or a module
local ONLY = {}
for _, spec in pairs(FLAGS) do
    if spec[3] then ONLY[spec[1]] = spec[3] end
end
for _, mod in pairs(COMMANDS) do
    if type(mod) == "table" and type(mod.FLAGS) == "table" then
        for name, spec in pairs(mod.FLAGS) do
            FLAGS[name] = spec
            ONLY[spec[1]] = spec[3] or mod
        end
    end
end

function _M.flags()
    local t = {}
    for name in pairs(FLAGS) do t[#t + 1] = name end
    sort(t)
    return t
end

-- an integral float as an integer where the Lua has them (5.3+)
local int = math.tointeger or function(v) return v end

local function flag_names()
    local t = {}
    for name in pairs(FLAGS) do
        if name:sub(1, 2) == "--" then t[#t + 1] = name end
    end
    sort(t)
    return t
end

-- "unknown option --timout (did you mean --timeout?)"
local function unknown_option(name)
    local shown = safe(name:sub(1, 40))
    local near = core.suggest and core.suggest(name, flag_names())
    return usage_error("unknown option " .. shown .. (near and format(" (did you mean %s?)", near) or ""))
end

local function flag_value(name, kind, v)
    if kind == "string" then return v end
    local n = tonumber(v)
    if not n or n ~= n or (kind == "integer" and n ~= floor(n)) then
        return nil, usage_error(name .. " must be " .. (kind == "integer" and "an integer" or "a number"))
    end
    return kind == "integer" and int(n) or n
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
                if kind == "list" then
                    local list = flags[key] or {}
                    list[#list + 1] = v
                    v = list
                else
                    local uerr
                    v, uerr = flag_value(name, kind, v)
                    if v == nil then return nil, uerr end
                end
                flags[key] = v
            end
        elseif a ~= "-" and a:sub(1, 1) == "-" then
            return nil, unknown_option(name)
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return flags, pos
end

-- a flag given to a command that does not take it -> usage error | nil
local function misplaced(flags, cmd)
    for key, only in pairs(ONLY) do
        if flags[key] ~= nil and only ~= cmd and only ~= COMMANDS[cmd] then
            local flag, owner
            for name, spec in pairs(FLAGS) do
                if spec[1] == key and name:sub(1, 2) == "--" then flag = name end
            end
            if type(only) == "string" then
                owner = only
            else
                for c, m in pairs(COMMANDS) do if m == only then owner = c end end
            end
            return usage_error(format("%s is only for '%s'", flag, owner))
        end
    end
end

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

-- the command's module run -> exit code, or a usage error / stop
local function dispatch(io_, flags, pos)
    local cmd = table.remove(pos, 1)
    if not cmd then return usage_error("no command given") end
    local mod = COMMANDS[cmd]
    if not mod then return usage_error("unknown command '" .. safe(cmd:sub(1, 40)) .. "'") end
    local bad = misplaced(flags, cmd)
    if bad then return bad end
    local ctx = { command = cmd }
    local run = type(mod) == "function" and mod or mod.run
    local ran, res = pcall(run, io_, flags, pos, ctx)
    if not ran then
        if tostring(res):find("interrupted!$") then return interrupted(io_, ctx) end
        error(res, 0)
    end
    return res
end

-- main(argv[, io]) -> exit code
function _M.main(argv, io_)
    io_ = io_ or default_io()
    local flags, pos = parse(argv or {})
    local res = pos
    if flags then
        if flags.help then
            io_.stdout:write(_M.USAGE, "\n")
            return 0
        end
        if flags.version then
            io_.stdout:write("mediquo ", core._VERSION, "\n")
            return 0
        end
        res = dispatch(io_, flags, pos)
    end
    if util.is_usage(res) then
        io_.stderr:write("mediquo: ", res.msg, "; see mediquo --help\n")
        return 2
    end
    if util.is_stop(res) then
        io_.stderr:write("mediquo: ", res.msg, "\n")
        return 2
    end
    return res
end

_M.safe = safe

return _M
