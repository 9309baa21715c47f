-- mediquo.cli.input: the rows of an import file, for the `mediquo` command.
--
--   local rows, info = input.parse(text, { separator = ";", ignore_unknown = true,
--                                          date = dates.reader{...} })
--   -- rows[k] = { line = N, op = {op=, code=, ...}, raw = "...", bad = msg|nil }
--   -- info = { format = "csv"|"jsonl", separator = ",", detected = true,
--   --          ignored = { "notes", ... } }  | nil, message
--
-- CSV as RFC 4180 writes it (quotes, "" inside quotes, CRLF), with `,`,
-- `;` (what Excel writes in most European locales) or a tab between cells,
-- a UTF-8 BOM allowed; or JSON lines (one object per line). The separator
-- is the one that splits the header into known column names, unless the
-- caller names one or the file's first line does (Excel's `sep=;`).
-- Cells are trimmed; opts.date (mediquo.cli.dates) reads starts_at; a
-- row's refusal names its column.

local cjson = require "cjson.safe"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local format = string.format
local concat = table.concat
local sort = table.sort

local _M = { _VERSION = require("mediquo.core")._VERSION }

local json = cjson.new()

-- which fields each op takes: the engine's one table (core.OP_FIELDS);
-- the columns are "op" and create's fields, which hold every other op's
local FIELDS_OF = require("mediquo.core").OP_FIELDS
_M.COLUMNS = { "op" }
for _, f in ipairs(FIELDS_OF.create) do _M.COLUMNS[#_M.COLUMNS + 1] = f end
local KNOWN = {}
for _, c in ipairs(_M.COLUMNS) do KNOWN[c] = true end
_M.SEPARATORS = { ",", ";", "\t" }
local SEP_NAME = { [","] = "','", [";"] = "';'", ["\t"] = "tab" }
_M.SEP_NAME = SEP_NAME

local int = math.tointeger or function(v) return v end
local suggest = require("mediquo.core").suggest

-- " (did you mean 'code'?)" when a known column is near name
local function near(name)
    local n = suggest(name, _M.COLUMNS)
    return n and format(" (did you mean '%s'?)", n) or ""
end

-- a value as it may be shown: at most 40 bytes, control characters as '?'
local function shown(s)
    return (tostring(s):sub(1, 40):gsub("%c", "?"))
end

-- CSV (RFC 4180) split at sep -> records { line=, fields } | nil, message
-- (first_line: the line number text starts at, default 1)
local function csv_records(text, sep, max_records, first_line)
    local recs, i, n, line = {}, 1, #text, first_line or 1
    local plain = "[" .. (sep == "\t" and "\t" or sep) .. "\r\n]"
    while i <= n and (not max_records or #recs < max_records) do
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
                if c ~= sep and c ~= "\n" and c ~= "\r" and c ~= "" then
                    return nil, format("line %d: text after a closing quote", line)
                end
            else
                local j = text:find(plain, i)
                field = text:sub(i, (j or n + 1) - 1)
                i = j or n + 1
            end
            rec[#rec + 1] = field
            local c = text:sub(i, i)
            if c == sep then
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

local function column_name(cell)
    return cell:match("^%s*(.-)%s*$"):lower()
end

-- the header's cells split at sep -> names, how many are known
local function header_at(text, sep)
    local recs = csv_records(text, sep, 1)
    if not recs or not recs[1] then return nil, 0 end
    local names, known = {}, 0
    for i, cell in ipairs(recs[1].fields) do
        names[i] = column_name(cell)
        if KNOWN[names[i]] then known = known + 1 end
    end
    return names, known
end

-- the separator that splits the header into the most known columns
local function detect(text)
    local best, best_known = nil, 0
    for _, sep in ipairs(_M.SEPARATORS) do
        local _, known = header_at(text, sep)
        if known > best_known then best, best_known = sep, known end
    end
    return best
end

local function trim(v)
    if type(v) ~= "string" then return v end
    return (v:gsub("^[ \t\r\n]+", ""):gsub("[ \t\r\n]+$", ""))
end

-- the op of a row's cells -> op, why (a refusal naming the column) | nil
local function row_op(fields, opts)
    local op = {}
    local kind = trim(fields.op)
    op.op = kind
    local bad
    for _, k in ipairs(FIELDS_OF[kind] or FIELDS_OF.create) do
        local v = trim(fields[k])
        if v ~= nil and v ~= cjson.null and v ~= "" then
            if k == "duration" and type(v) == "string" and v:match("^%d+$") then
                v = int(tonumber(v))
            elseif k == "starts_at" and type(v) == "string" and opts.date then
                local iso, why = opts.date(v)
                if not iso then
                    bad = bad or format("starts_at: '%s' %s", shown(v), why)
                end
                v = iso or v
            end
            op[k] = v
        end
    end
    return op, bad
end

local function sorted_keys(set)
    local t = {}
    for k in pairs(set) do t[#t + 1] = k end
    sort(t)
    return t
end

local function parse_jsonl(text, opts)
    local rows, ignored = {}, {}
    local line = 0
    for l in (text:gsub("\r\n", "\n") .. "\n"):gmatch("([^\n]*)\n") do
        line = line + 1
        if not l:match("^%s*$") then
            local doc = json.decode(l)
            local row = { line = line, raw = l }
            if type(doc) ~= "table" then
                row.bad = "not a JSON object"
            else
                row.op, row.bad = row_op(doc, opts)
                for k in pairs(doc) do
                    if not KNOWN[k] then
                        if opts.ignore_unknown then
                            ignored[shown(k)] = true
                        else
                            row.bad = "unknown field '" .. shown(k) .. "'" .. near(k)
                                .. " (--ignore-unknown-columns to skip it)"
                        end
                    end
                end
            end
            rows[#rows + 1] = row
        end
    end
    return rows, { format = "jsonl", ignored = sorted_keys(ignored) }
end

-- parse(text[, opts]) -> rows, info | nil, message
-- opts.separator: "," ";" or "\t" (default: detected); opts.ignore_unknown
function _M.parse(text, opts)
    opts = opts or {}
    text = text:gsub("^\239\187\191", "")      -- a UTF-8 BOM (Excel writes one)
    if text:match("^%s*(.)") == "{" then return parse_jsonl(text, opts) end
    if text:match("^%s*$") then return nil, "the input is empty (a CSV header row is required)" end

    local sep, detected = opts.separator, false
    -- Excel's "sep=;" first line names the separator
    local first_line = 1
    local named, rest = text:match("^sep=([,;\t])\r?\n(.*)$")
    if named then
        text, first_line = rest, 2
        sep = sep or named
    end
    if not sep then
        sep, detected = detect(text), true
        if not sep then
            local first = text:match("^[^\r\n]*")
            return nil, format("the header '%s' names no known column when split at ',', ';' or tab "
                .. "(columns: %s; --separator to choose)", shown(first), concat(_M.COLUMNS, ","))
        end
    end
    local recs, err = csv_records(text, sep, nil, first_line)
    if not recs then return nil, err end

    local cols, ignored, seen = {}, {}, {}
    for i, cell in ipairs(recs[1].fields) do
        local name = column_name(cell)
        if KNOWN[name] then
            if seen[name] then return nil, "the CSV header names '" .. name .. "' twice" end
            seen[name] = true
            cols[i] = name
        elseif opts.ignore_unknown or (name == "" and i == #recs[1].fields and i > 1) then
            if name ~= "" then ignored[#ignored + 1] = shown(name) end
            cols[i] = false
        else
            return nil, format("unknown CSV column '%s'%s (columns: %s; --ignore-unknown-columns "
                .. "to skip it%s)", shown(name), near(name), concat(_M.COLUMNS, ","),
                detected and sep ~= "," and "" or ", --separator if the cells are not split at "
                .. SEP_NAME[sep])
        end
    end
    if not seen.op then
        return nil, "the CSV header has no 'op' column (split at " .. SEP_NAME[sep] .. ")"
    end

    local rows = {}
    local ncols = #recs[1].fields
    for r = 2, #recs do
        local rec = recs[r]
        local f = rec.fields
        if not (#f == 1 and f[1]:match("^%s*$")) then     -- blank lines
            local row = { line = rec.line, raw = concat(f, "\31") }
            local t = {}
            for i, c in ipairs(cols) do
                if c and f[i] ~= nil then t[c] = f[i] end
            end
            row.op, row.bad = row_op(t, opts)
            if #f < ncols then
                -- what is missing matters when the row's op uses it
                local uses = { op = true }
                for _, k in ipairs(FIELDS_OF[t.op] or _M.COLUMNS) do uses[k] = true end
                local missing = {}
                for i = #f + 1, ncols do
                    if cols[i] and uses[cols[i]] then missing[#missing + 1] = cols[i] end
                end
                if #missing > 0 then
                    row.bad = format("has %d fields, the header has %d (missing: %s)", #f, ncols,
                                     concat(missing, ", "))
                end
            elseif #f > ncols then
                row.bad = format("has %d fields, the header has %d", #f, ncols)
            end
            rows[#rows + 1] = row
        end
    end
    return rows, { format = "csv", separator = sep, detected = detected, ignored = ignored }
end

return _M
