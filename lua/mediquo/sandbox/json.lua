-- Strict JSON for request bodies: valid UTF-8 only, nesting bounded, no
-- NaN/Infinity/hex numbers. Answers are encoded here too, so every module
-- shares one configured cjson instance instead of touching the global one.

local cjson = require("cjson.safe").new()

local byte = string.byte
local find = string.find

local _M = { _VERSION = "0.2.0", null = cjson.null }

-- Deep enough for any real payload, shallow enough that a hostile body
-- cannot make the decoder recurse for long.
_M.MAX_DEPTH = 64

cjson.decode_max_depth(_M.MAX_DEPTH)
cjson.decode_invalid_numbers(false)
cjson.encode_invalid_numbers(false)

-- Plain byte loop (LuaJIT has no utf8 library). Rejects overlongs,
-- surrogates and code points above U+10FFFF, as RFC 3629 does.
function _M.valid_utf8(s)
    if not find(s, "[\128-\255]") then
        return true
    end
    local i, n = 1, #s
    while i <= n do
        local c = byte(s, i)
        if c < 0x80 then
            i = i + 1
        else
            local need, min
            if c >= 0xC2 and c <= 0xDF then
                need, min = 1, 0x80
            elseif c >= 0xE0 and c <= 0xEF then
                need, min = 2, 0x800
            elseif c >= 0xF0 and c <= 0xF4 then
                need, min = 3, 0x10000
            else
                return false
            end
            if i + need > n then
                return false
            end
            local cp = c % (2 ^ (6 - need))
            for k = 1, need do
                local cc = byte(s, i + k)
                if cc < 0x80 or cc > 0xBF then
                    return false
                end
                cp = cp * 64 + cc % 64
            end
            if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
                return false
            end
            i = i + need + 1
        end
    end
    return true
end

-- Returns the decoded value, or nil and the message a 422 should carry.
function _M.decode_body(s)
    if not s or s == "" then
        return nil, "The body must be a JSON object."
    end
    if not _M.valid_utf8(s) then
        return nil, "The body must be valid UTF-8."
    end
    local v, err = cjson.decode(s)
    if v == nil then
        if err and find(err, "nested", 1, true) then
            return nil, "The body is nested too deeply (at most "
                        .. _M.MAX_DEPTH .. " levels)."
        end
        return nil, "The body must be valid JSON."
    end
    if type(v) ~= "table" then
        return nil, "The body must be a JSON object."
    end
    return v
end

_M.decode = cjson.decode

local encode = cjson.encode

-- For JSON that only this sandbox reads back (state, log): no unescaping.
_M.encode_raw = encode
local gsub = string.gsub

-- cjson escapes every "/" as "\/"; valid, but URLs read badly. Unescaping
-- is safe: a literal backslash is always encoded as "\\", so each "\/"
-- left to right is an escaped slash.
function _M.encode(v)
    local s, err = encode(v)
    if not s then
        return nil, err
    end
    if not find(s, "\\/", 1, true) then
        return s
    end
    return (gsub(s, "\\/", "/"))
end

return _M
