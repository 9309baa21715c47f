-- test/answer_cjson.lua: the C answer scanner (core.appointment, src/answer.c)
-- against cjson, the reference it stands in front of, and the same scanner
-- reading request bodies (core.json_fields, mediquo.ngx.read's) too. Lua 5.4:
--
--   lua5.4 test/answer_cjson.lua [count] [seed]
--
-- Runs the hand-written cases below and `count` (20000) generated bodies:
-- valid answers with duplicate keys, escapes, nesting and whitespace, most
-- of them then mutated (truncated, bytes flipped, inserted, deleted, runs
-- copied). The rule: whenever scan gives code, url, cjson (decode_max_depth
-- 64, as protocol.lua) decodes the body to the same two strings. A nil from
-- scan where cjson finds them is allowed (the caller then decodes with
-- cjson); those are counted by category. Exit status: 0, 1 on a mismatch,
-- 77 when mediquo.core has no appointment function yet.

local ok, core = pcall(require, "mediquo.core")
local scan = ok and type(core) == "table" and core.appointment
if type(scan) ~= "function" then
    io.stderr:write("answer_cjson: require('mediquo.core').appointment is not there yet; skipped\n")
    os.exit(77)
end

local json = require("cjson.safe").new()
json.decode_max_depth(64)

local char, byte, sub, rep, format = string.char, string.byte, string.sub, string.rep, string.format
local concat, random = table.concat, math.random

local COUNT = tonumber(arg[1]) or 20000
local SEED = tonumber(arg[2]) or 20240517
math.randomseed(SEED)

-- What protocol.lua's appointment_of takes from the body.
local function reference(body)
    local doc = json.decode(body)
    local a = type(doc) == "table" and type(doc.data) == "table" and doc.data.appointment
    if type(a) == "table" and type(a.code) == "string" and type(a.url) == "string" then
        return a.code, a.url
    end
end

-- ---- generated answers -----------------------------------------------------

local function pick(t) return t[random(#t)] end
local function chance(p) return random() < p end

local WS = { " ", "\t", "\n", "\r", "  ", "\r\n" }
local function ws() return chance(0.15) and pick(WS) or "" end

-- One code point as a \u escape (a surrogate pair above U+FFFF).
local function u_escape(cp)
    local f = chance(0.5) and "\\u%04x" or "\\u%04X"
    if cp < 0x10000 then return format(f, cp) end
    cp = cp - 0x10000
    return format(f, 0xD800 + (cp >> 10)) .. format(f, 0xDC00 + (cp & 0x3FF))
end

local SHORT = { ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b",
                ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- A Lua string as JSON string text, escaped at random (any way cjson reads).
local function jstr(s)
    local out, i = { '"' }, 1
    local esc = random() * 0.6
    while i <= #s do
        local c = byte(s, i)
        local n = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
        local ch = sub(s, i, i + n - 1)
        local valid = n == 1 and c < 0x80 or utf8.len(ch) == 1
        if not valid then ch = char(c) end
        local must = c < 0x20 or ch == '"' or ch == "\\"
        if valid and (must or chance(esc)) then
            if SHORT[ch] and chance(0.7) then out[#out + 1] = SHORT[ch]
            else out[#out + 1] = u_escape(utf8.codepoint(ch)) end
        else
            out[#out + 1] = ch
        end
        i = i + #ch
    end
    out[#out + 1] = '"'
    return concat(out)
end

local WORDS = { "A1", "https://x/call/t", "https://meet.mediquo.com/call/abc?x=1&y=2", "",
                "caf\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82\xac100", 'say "hi"', "back\\slash",
                "tab\tnl\n", "\x7f", "\xff\xfe", "APPT-0001", "\u{10FFFF}", "\u{FFFF}", "/" }
local function text()
    if chance(0.2) then
        local t = {}
        for k = 1, random(0, 12) do t[k] = char(random(1, 255)) end
        return concat(t)
    end
    return pick(WORDS)
end

local NUMBERS = { "0", "-0", "7", "-12", "3.25", "1e5", "1E+5", "-2.5e-3", "0.0", "1e400",
                  "123456789012345678901234567890", "9007199254740993", "-0.0E-0" }
local KEYS = { "id", "code", "url", "data", "appointment", "starts_at", "x", "", "k\xc3\xa9y" }

local value
local function object(members)
    local parts = {}
    for k, m in ipairs(members) do parts[k] = ws() .. jstr(m[1]) .. ws() .. ":" .. ws() .. m[2] .. ws() end
    return "{" .. (#parts == 0 and ws() or concat(parts, ",")) .. "}"
end
function value(depth)
    local r = random(depth > 6 and 6 or 8)
    if r == 1 then return pick(NUMBERS)
    elseif r == 2 then return pick({ "true", "false", "null" })
    elseif r <= 5 then return jstr(text())
    elseif r == 6 then
        local m = {}
        for k = 1, random(0, 3) do m[k] = { pick(KEYS), value(depth + 1) } end
        return object(m)
    else
        local t = {}
        for k = 1, random(0, 3) do t[k] = ws() .. value(depth + 1) .. ws() end
        return "[" .. (#t == 0 and ws() or concat(t, ",")) .. "]"
    end
end

-- Members with, now and then, extra fields and earlier or later copies of
-- the key that matters (whose value may or may not be the good one).
local function members(key, good, bad)
    local m = {}
    for _ = 1, random(0, 2) do m[#m + 1] = { pick(KEYS), value(3) } end
    if chance(0.2) then m[#m + 1] = { key, bad() } end
    m[#m + 1] = { key, good }
    for _ = 1, random(0, 2) do m[#m + 1] = { pick(KEYS), value(3) } end
    if chance(0.15) then m[#m + 1] = { key, bad() } end
    if chance(0.05) then table.remove(m, random(#m)) end
    return m
end

local function deep(n)
    local o, c = {}, {}
    for k = 1, n do
        if chance(0.5) then o[k], c[n - k + 1] = "[", "]" else o[k], c[n - k + 1] = '{"x":', "}" end
    end
    return concat(o) .. "0" .. concat(c)
end

local function answer()
    local function str() return jstr(text()) end
    local function any() return value(3) end
    local appt = members("code", str(), any)
    for _, m in ipairs(members("url", str(), any)) do appt[#appt + 1] = m end
    if chance(0.1) then appt[#appt + 1] = { "x", deep(random(58, 64)) } end
    local data = members("appointment", object(appt), any)
    local top = members("data", object(data), any)
    return ws() .. object(top) .. ws()
end

-- ---- mutations --------------------------------------------------------------

local SIGNIFICANT = { "{", "}", "[", "]", ",", ":", '"', "\\", "u", "0", "e", "-", ".", " ",
                      "\0", "\1", "\f", "d", "/" }
local function mutate(s)
    for _ = 1, random(1, 3) do
        local n, i = #s, random(#s + 1)
        local r = random(6)
        if n == 0 then break
        elseif r == 1 then s = sub(s, 1, random(0, n - 1))                         -- truncate
        elseif r == 2 then s = sub(s, 1, i - 1) .. char(random(0, 255)) .. sub(s, i + 1)
        elseif r == 3 then s = sub(s, 1, i - 1) .. pick(SIGNIFICANT) .. sub(s, i)  -- insert
        elseif r == 4 then s = sub(s, 1, i - 1) .. sub(s, i + 1)                   -- delete
        elseif r == 5 then                                                        -- copy a run
            local j = random(n)
            s = sub(s, 1, i - 1) .. sub(s, j, j + random(0, 24)) .. sub(s, i)
        else s = sub(s, 1, i - 1) .. value(3) .. sub(s, i + random(0, 8)) end     -- replace
    end
    return s
end

-- ---- hand-written cases -----------------------------------------------------

local function appt(c, u) return '{"data":{"appointment":{"code":' .. c .. ',"url":' .. u .. "}}}" end
local REST = '"data":{"appointment":{"code":"A1","url":"u"}}}'
local CASES = {
    appt('"A1"', '"https://x/call/t"'),
    ' \t\r\n{ "data" : { "appointment" :\n{ "code" : "A1" , "url" : "u" } } }\r\n',
    appt('"A\\/1"', '"https:\\/\\/x\\/call\\/t"'),
    appt('"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"u"'),
    appt('"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF"', '"u"'),
    appt('"\\ud83d\\ude00x\\uDBFF\\uDFFF"', '"\\u0075"'),
    appt('"caf\xc3\xa9 \xff\x80\x7f"', '"u"'),
    appt('""', '""'),
    '{"d\\u0061ta":{"\\u0061ppointment":{"c\\u006fde":"A1","ur\\u006c":"u"}}}',
    '{"data":{"appointment":{"code":"A1","url":"u"}},"data":null}',
    '{"data":1,"data":{"appointment":{"code":"A1","url":"u"}}}',
    '{"data":{"appointment":{"code":"A1","url":"u"}},"data":{}}',
    '{"data":{"appointment":[],"appointment":{"code":"A1","url":"u"}}}',
    '{"data":{"appointment":{"code":"A1","url":"u"},"appointment":{"url":"u"}}}',
    '{"data":{"appointment":{"code":7,"url":"u","code":"A1"}}}',
    '{"data":{"appointment":{"code":"A1","url":"u","url":{"a":"b"}}}}',
    '{"d\\u0061ta":{"appointment":{"code":"A1","url":"u"}},"data":false}',
    '{"data":{"appointment":{"code":"A1"}}}',
    appt("1", '"u"'), appt('"A1"', "null"), appt("[\"A1\"]", '"u"'),
    "[" .. appt('"A1"', '"u"') .. "]",
    appt('"A1"', '"u"') .. "x", appt('"A1"', '"u"') .. "\0", appt('"A1"', '"u"') .. "\0junk",
    appt('"A1"', '"u"') .. "\f", "\xef\xbb\xbf" .. appt('"A1"', '"u"'),
    appt('"A\n1"', '"u"'), '{"x":"\1",' .. REST, appt('"A\\u0000"', '"u"'),
    appt('"\\ud83d"', '"u"'), appt('"\\ude00"', '"u"'), appt('"\\ud83d\\u0041"', '"u"'),
    appt('"A\\x"', '"u"'), appt('"A\\u12G4"', '"u"'),
    '{"n":01,' .. REST, '{"n":1.,' .. REST, '{"n":.5,' .. REST, '{"n":+1,' .. REST,
    '{"n":0x10,' .. REST, '{"n":NaN,' .. REST, '{"n":-Infinity,' .. REST, '{"n":1e400,' .. REST,
    '{"n":[1,],' .. REST, '{"n":1,,' .. REST, '{"n":tru,' .. REST,
    '{"x":' .. rep("[", 61) .. rep("]", 61) .. "," .. REST,
    '{"x":' .. rep("[", 62) .. rep("]", 62) .. "," .. REST,
    '{"data":{"appointment":{"code":"A1","url":"u","x":' .. rep("[", 61) .. rep("]", 61) .. "}}}",
    '{"data":{"appointment":{"code":"A1","url":"u","x":' .. rep("[", 62) .. rep("]", 62) .. "}}}",
}

-- ---- the comparison ---------------------------------------------------------

-- RFC 8259 number?
local function strict_number(t)
    local i = t:match("^%-?()")
    local j = t:match("^0()", i) or t:match("^[1-9]%d*()", i)
    if not j then return false end
    j = t:match("^%.%d+()", j) or j
    j = t:match("^[eE][%+%-]?%d+()", j) or j
    return j == #t + 1
end

-- Why scan may say nil where cjson finds the strings: the ways it is
-- stricter on purpose. Walks the body as cjson does (to a NUL byte),
-- telling strings from the rest.
local function why(s)
    local rest, i, n = {}, 1, #s
    while i <= n do
        local c = byte(s, i)
        if c == 0 then return "NUL byte after the value (cjson ends the text there)" end
        if c == 34 then                                     -- a string
            i = i + 1
            while i <= n and byte(s, i) ~= 34 do
                c = byte(s, i)
                if c == 92 then
                    if sub(s, i + 1, i + 5) == "u0000" then return "\\u0000 escape" end
                    i = i + 1
                elseif c < 32 then
                    return "raw control byte in a string"
                end
                i = i + 1
            end
            rest[#rest + 1] = " S "
        else
            rest[#rest + 1] = char(c)
        end
        i = i + 1
    end
    rest = concat(rest)
    if not rest:match("^[ \t\n\r]*{") then return "top level is not an object" end
    for t in rest:gmatch("[%w%.%+%-]+") do
        if t ~= "S" and t ~= "true" and t ~= "false" and t ~= "null" and not strict_number(t) then
            return "number outside RFC 8259 (cjson reads it with strtod)"
        end
    end
    return "other"
end

local stats, order = {}, { "hand-written", "valid", "mutated" }
for _, o in ipairs(order) do stats[o] = { bodies = 0, yes = 0, no = 0 } end
local mismatches, fallbacks, examples = 0, {}, {}   -- examples: one per category

local function compare(body, origin)
    local st = stats[origin]
    st.bodies = st.bodies + 1
    local c, u = scan(body)
    local rc, ru = reference(body)
    if c ~= nil then
        if c == rc and u == ru then
            st.yes = st.yes + 1
        else
            mismatches = mismatches + 1
            print(format("MISMATCH (%s): scan %q %q, cjson %q %q on %q", origin, c, u,
                         tostring(rc), tostring(ru), body))
        end
    elseif rc ~= nil then
        local cat = origin .. ": " .. why(body)
        fallbacks[cat] = (fallbacks[cat] or 0) + 1
        examples[cat] = examples[cat] or body
    else
        st.no = st.no + 1
    end
end

for _, body in ipairs(CASES) do compare(body, "hand-written") end
for _ = 1, COUNT do
    local body = answer()
    if chance(0.25) then compare(body, "valid") else compare(mutate(body), "mutated") end
end

local total = 0
for _, o in ipairs(order) do
    local st = stats[o]
    total = total + st.bodies
    print(format("%-12s %6d bodies: %6d both give code/url, %6d both refuse", o, st.bodies,
                 st.yes, st.no))
end
print(format("%d bodies (seed %d), %d mismatches", total, SEED, mismatches))
local cats = {}
for k in pairs(fallbacks) do cats[#cats + 1] = k end
table.sort(cats)
total = 0
for _, k in ipairs(cats) do total = total + fallbacks[k] end
print(format("%d fallbacks (scan nil, cjson finds code/url):", total))
for _, k in ipairs(cats) do
    print(format("  %6d  %s", fallbacks[k], k))
    local eg = format("%q", examples[k]):gsub("\\\n", "\\n")
    print("          e.g. " .. (#eg > 150 and sub(eg, 1, 150) .. "..." or eg))
end

-- ---- request bodies: core.json_fields against cjson -------------------------
-- What mediquo.ngx.read takes from a JSON body: whenever json_fields gives
-- a table, cjson decodes the body to an object whose create fields (a
-- null: none) are the very same values, of the same types, and no other.
-- A nil (the reader then decodes with cjson) is allowed; counted.
local json_fields = core.json_fields
local FIELDS, is_field = core.OP_FIELDS.create, {}
for _, f in ipairs(FIELDS) do is_field[f] = true end

local function request_body()
    local m = {}
    for _ = 1, random(0, 7) do
        local k = chance(0.7) and pick(FIELDS) or pick(KEYS)
        local v = chance(0.6) and (chance(0.8) and jstr(text()) or pick(NUMBERS)) or value(3)
        m[#m + 1] = { k, v }
    end
    return ws() .. object(m) .. ws()
end

local REQUESTS = {
    '{"code":"b1-1","starts_at":"2030-05-20T10:00:00Z","patient":"P1","professional":"prof-demo-1"}',
    ' {"code":"A1","duration":30,"starts_at":1893456000,"patient":null,"x":[1,{"y":null}]}\n',
    '{"c\\u006fde":"A\\/1","code":"A2","patient":"caf\\u00e9"}',
    '{"code":{"a":1}}', '{"code":["A1"]}', '{"duration":true,"patient":false}',
    '{"code":"A\t1"}', '{"code":"A1"} x', '{"code":"A1",}', '{"duration":0x10}', '{}', '[1]',
    '{"duration":-0,"starts_at":1e400}', '{"code":"A1","code":null}',
}

local req = { bodies = 0, taken = 0, refused = 0, mismatches = 0 }
local function compare_request(body)
    req.bodies = req.bodies + 1
    local t = json_fields(body, "create")
    if t == nil then
        req.refused = req.refused + 1
        return
    end
    req.taken = req.taken + 1
    local doc, bad = json.decode(body), nil
    if type(doc) ~= "table" then
        bad = "cjson does not decode it"
    else
        for _, f in ipairs(FIELDS) do
            local want = doc[f]
            if want == json.null then want = nil end
            if t[f] ~= want or math.type(t[f]) ~= math.type(want) then
                bad = format("%s: %s (%s) against cjson's %s", f, tostring(t[f]), type(t[f]), tostring(want))
                break
            end
        end
        for k in pairs(t) do
            if not is_field[k] then bad = "an extra key " .. tostring(k) end
        end
    end
    if bad then
        req.mismatches = req.mismatches + 1
        print(format("REQUEST MISMATCH: %s on %q", bad, body))
    end
end

for _, body in ipairs(REQUESTS) do compare_request(body) end
for _ = 1, COUNT do
    local body = request_body()
    compare_request(chance(0.5) and body or mutate(body))
end
print(format("request bodies %d: %d read by json_fields, %d left to cjson, %d mismatches",
             req.bodies, req.taken, req.refused, req.mismatches))
mismatches = mismatches + req.mismatches

os.exit(mismatches == 0 and 0 or 1)
