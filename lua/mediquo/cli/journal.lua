-- mediquo.cli.journal: the import journal, what lets an interrupted import
-- be run again without applying a row twice or out of order.
--
--   local j, err, why = journal.open(path)   -- why "locked": another import has it
--   local seen = j.seen                       -- key -> { state, kind } as the file was opened
--   local ok, err = j:write{ { "send", key }, { "ok", key }, ... }  -- on disk when it returns
--
-- One line per event, appended and fsynced (mediquo.core.journal); the
-- import writes its `send` and `sent` lines unsynced around the request
-- and syncs them once it is out (j:write(events, true), j:sync()):
--   send\tKEY            the row is about to be sent (in doubt until a later
--                        line settles it: a kill may land before or after
--                        its bytes leave)
--   sent\tKEY            its request's first bytes have left (in doubt until
--                        an outcome line)
--   ok\tKEY              applied
--   fail\tKEY\tKIND      refused: it had no effect
--   unknown\tKEY\tKIND   failed after an attempt that may have taken effect
-- KEY is line, op, code and a hash of the row's text, tab-separated, each
-- escaped (\\, \t, \n, \r, \xHH for other control bytes) so no value in a
-- row can end a line or add a field: a code holding "\nok\t..." stays one
-- field of its own line. The last line about a row wins. A version 1
-- journal (no `send` lines) is read too: there every row without an
-- outcome is in doubt.

local core = require "mediquo.core"

local format = string.format
local concat = table.concat
local tostring = tostring
local setmetatable = setmetatable
local open = io.open

local _M = { _VERSION = core._VERSION }
local mt = { __index = _M }

_M.HEADER = "# mediquo import journal v2"
local HEADER_V1 = "# mediquo import journal v1"
local STATES = { send = true, sent = true, ok = true, fail = true, unknown = true }

local ESC = { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r" }

local function escape(s)
    return (tostring(s):gsub("[%c\\]", function(c)
        return ESC[c] or format("\\x%02x", c:byte())
    end))
end
_M.escape = escape

-- a 32-bit hash of the row's text, so an edited row is not skipped (plain
-- arithmetic: the module stays loadable by every Lua the rock supports)
local function hash(s)
    local h = 5381
    for i = 1, #s do
        h = (h * 33 + s:byte(i)) % 4294967296
    end
    return format("%08x", h)
end

-- key(row) -> the row's identity in the journal (escaped, one line)
function _M.key(row)
    local op = row.op or {}
    return concat({ row.line, escape(op.op), escape(op.code), hash(row.raw) }, "\t")
end

-- text -> seen { key -> { state, kind } }, version
local function load(text)
    local seen, version = {}, nil
    local first = text:match("^[^\n]*")
    if first == _M.HEADER then
        version = 2
    elseif first == HEADER_V1 then
        version = 1
    end
    -- only complete lines count: a line cut short by a kill is ignored
    for l in text:gmatch("([^\n]*)\n") do
        local state, rest = l:match("^(%a+)\t(.+)$")
        if STATES[state] then
            -- KEY has 4 fields; fail/unknown add a kind
            local line, op, code, h, kind = rest:match("^(%d+)\t([^\t]*)\t([^\t]*)\t(%x+)\t?([%a_]*)$")
            if line then
                local key = concat({ line, op, code, h }, "\t")
                seen[key] = { state = state, kind = kind ~= "" and kind or nil }
            end
        end
    end
    return seen, version
end
_M._load = load

-- open(path) -> journal | nil, message, "locked" | "os"
function _M.open(path)
    local fh, msg, why = core.journal(path)
    if not fh then return nil, msg, why end
    local f, rerr = open(path, "rb")
    if not f then
        fh:close()
        return nil, "cannot read: " .. tostring(rerr):gsub("^.-: ", ""), "os"
    end
    local text = f:read("*a") or ""
    f:close()
    local seen, version = load(text)
    local self = setmetatable({ fh = fh, path = path, seen = seen, version = version }, mt)
    if text == "" then
        local ok, werr = fh:append(_M.HEADER .. "\n")
        if not ok then
            fh:close()
            return nil, werr, "os"
        end
        self.version = 2
    elseif not version then
        fh:close()
        return nil, "is not an import journal (its first line is not '" .. _M.HEADER .. "')", "os"
    end
    self.existed = text ~= ""
    return self
end

-- j:write(events[, nosync]) -> true | nil, message; events = { { state, key[, kind] }, ... }
-- all on disk (fsynced) when it returns true; nothing of them when it fails.
-- nosync: written (it outlives a kill of the process), synced by the next
-- write or j:sync()
function _M.write(self, events, nosync)
    local buf = {}
    for i = 1, #events do
        local e = events[i]
        buf[i] = e[1] .. "\t" .. e[2] .. (e[3] and ("\t" .. e[3]) or "") .. "\n"
    end
    if #buf == 0 then return true end
    return self.fh:append(concat(buf), nosync)
end

function _M.sync(self)
    return self.fh:sync()
end

function _M.close(self)
    self.fh:close()
end

return _M
