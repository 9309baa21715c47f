-- mediquo.cli.util: what the `mediquo` commands share - usage errors and
-- stops, text safe for a terminal, the keys file, the client's options
-- from the flags, and the result lines (text or JSON), each written and
-- flushed as it is made.

local mediquo = require "mediquo"
local core = require "mediquo.core"
local cjson = require "cjson.safe"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local format = string.format
local concat = table.concat
local sort = table.sort
local getenv = os.getenv
local floor = math.floor
local setmetatable = setmetatable
local getmetatable = getmetatable
local next = next

local _M = { _VERSION = core._VERSION }

local json = cjson.new()

_M.SANDBOX_URL = "http://127.0.0.1:8089/v1"
local SANDBOX_KEY, SANDBOX_SECRET = "sandbox-key", "sandbox-secret"

local Usage = {}    -- marker metatable: a usage error (exit 2, "see mediquo --help")
local Stop = {}     -- marker metatable: nothing done, said in full (exit 2)

function _M.usage_error(msg)
    return setmetatable({ msg = msg }, Usage)
end

-- a refusal that is not a usage mistake (the rule in force differs...):
-- exit 2, the message as it is (it says what to do)
function _M.stop(msg)
    return setmetatable({ msg = msg }, Stop)
end

function _M.is_usage(v) return getmetatable(v) == Usage end
function _M.is_stop(v) return getmetatable(v) == Stop end

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
function _M.os_reason(msg)
    return (tostring(msg):gsub("^.*: ", ""))
end

function _M.utc(t)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

-- KEY=VALUE lines; values never appear in any message. A file that group
-- or others may read is refused (as ssh refuses such a key) unless
-- insecure_ok.
local function read_keys(path, insecure_ok)
    local mode = core.file_mode and core.file_mode(path)
    if mode and mode % 64 ~= 0 and not insecure_ok then
        return nil, format("--keys-file %s is readable by %s (mode %04o): chmod 600 it, "
            .. "or pass --insecure-keys-file", safe(path),
            mode % 8 ~= 0 and "others" or "its group", mode)
    end
    local f, oerr = io.open(path, "rb")
    if not f then return nil, "cannot read --keys-file " .. safe(path) .. ": " .. _M.os_reason(oerr) end
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

-- the client options the flags and the environment ask for; no_keys: for
-- commands that send nothing (limiter status): placeholders, never sent
function _M.client_opts(flags, no_keys)
    local o = {}
    if flags.sandbox then
        o.base_url = flags.base_url or getenv("MEDIQUO_SANDBOX_URL") or _M.SANDBOX_URL
        o.api_key, o.secret_key = SANDBOX_KEY, SANDBOX_SECRET
    else
        o.base_url = flags.base_url or getenv("MEDIQUO_BASE_URL")
        if no_keys then
            o.api_key, o.secret_key = "unused", "unused"
        elseif flags.keys_file then
            local keys, err = read_keys(flags.keys_file, flags.insecure_keys_file)
            if not keys then return nil, _M.usage_error(err) end
            o.api_key, o.secret_key = keys.api_key, keys.secret_key
        else
            o.api_key, o.secret_key = getenv("MEDIQUO_API_KEY"), getenv("MEDIQUO_SECRET_KEY")
            if not o.api_key or o.api_key == "" or not o.secret_key or o.secret_key == "" then
                return nil, _M.usage_error("no credentials: set MEDIQUO_API_KEY and "
                    .. "MEDIQUO_SECRET_KEY, or use --keys-file FILE or --sandbox")
            end
        end
    end
    o.ca_file, o.timeout, o.deadline = flags.ca_file, flags.timeout, flags.deadline
    o.max_retries, o.retry_post = flags.max_retries, flags.retry_post
    if flags.no_rate_limit then
        for _, k in ipairs{ "per_minute", "period", "burst", "rate_limit_key", "redis", "redis_ca",
                            "max_wait" } do
            if flags[k] ~= nil then
                return nil, _M.usage_error(format("--%s and --no-rate-limit exclude each other",
                                                  k:gsub("_", "-")))
            end
        end
        o.rate_limit = false
    else
        o.rate_limit = { per_minute = flags.per_minute, period = flags.period, burst = flags.burst,
                         key = flags.rate_limit_key, redis = flags.redis,
                         redis_tls = flags.redis_ca and { ca_file = flags.redis_ca } or nil,
                         max_wait = flags.max_wait }
    end
    return o
end

-- Output ------------------------------------------------------------------

function _M.err_table(e)
    return { kind = e.kind, status = e.status, message = e.message,
             retryable = e.retryable, retry_after = e.retry_after, effect = e.effect,
             fields = e.fields and next(e.fields) and e.fields or nil }
end

function _M.jsonline(rec)
    -- cjson leaves C1 controls (U+0080..U+009F) raw: escape them too
    return (json.encode(rec):gsub("\194([\128-\159])", function(c)
        return format("\\u%04x", c:byte())
    end))
end

-- one result line, flushed at once (a file or a pipe sees it as it comes)
function _M.emit(out, flags, rec)
    if flags.json then
        out:write(_M.jsonline(rec), "\n")
        out:flush()
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
    out:flush()
end

function _M.by_kind_text(by)
    local kinds = {}
    for k in pairs(by) do kinds[#kinds + 1] = k end
    sort(kinds)
    for i, k in ipairs(kinds) do kinds[i] = k .. " " .. by[k] end
    return concat(kinds, ", ")
end

-- the client's options, normalised as mediquo.new would
_M.normalized = mediquo.options

return _M
