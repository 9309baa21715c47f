-- spec/hostile/encodings.lua: the encodings a server may quote a header
-- value back in, for spec/42-hostile_encodings_spec.lua - used by the
-- hostile server (spec/hostile/handlers.lua, in nginx) to echo the keys and
-- by the spec to search every output for them. Plain Lua (5.1 to 5.4, no
-- bit operators), independent of src/secrets_enc.c.

local byte, format, concat = string.byte, string.format, table.concat
local floor = math.floor

local E = {}

local STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- base64(s[, url[, nopad]])
function E.base64(s, url, nopad)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = byte(s, i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local k = { floor(n / 262144) % 64, floor(n / 4096) % 64, floor(n / 64) % 64, n % 64 }
        local keep = 4 - ((b == nil) and 2 or (c == nil) and 1 or 0)
        for j = 1, 4 do
            if j <= keep then
                out[#out + 1] = STD:sub(k[j] + 1, k[j] + 1)
            elseif not nopad then
                out[#out + 1] = "="
            end
        end
    end
    local r = concat(out)
    if url then r = r:gsub("%+", "-"):gsub("/", "_") end
    return r
end

-- percent-encoding: every byte but the unreserved ones (RFC 3986), or
-- every byte (all), hex upper or lower case; form: '+' for a space
function E.percent(s, lower, all, form)
    local hex = lower and "%%%02x" or "%%%02X"
    return (s:gsub(".", function(ch)
        if form and ch == " " then return "+" end
        if not all and ch:find("^[%w%-%._~]$") then return ch end
        return format(hex, byte(ch))
    end))
end

-- JSON string escapes: "\/" for '/', and every byte as \u00XX (escape_all)
function E.json(s, escape_all)
    if escape_all then
        return (s:gsub(".", function(ch) return format("\\u%04x", byte(ch)) end))
    end
    return (s:gsub('[\\"/]', { ["\\"] = "\\\\", ['"'] = '\\"', ["/"] = "\\/" }))
end

-- The echoes the hostile server sends, by name: (key, secret) -> text
-- of a refusal's message. json_u is sent as JSON \u escapes of every byte.
E.ECHOES = {
    raw = function(k, s) return "invalid credentials: key " .. k .. " secret " .. s end,
    json_u = function(k, s) return "invalid credentials: key " .. k .. " secret " .. s end,
    percent_upper = function(k, s)
        return "invalid secret_key=" .. E.percent(s) .. "&api_key=" .. E.percent(k)
    end,
    percent_lower = function(k, s)
        return "invalid secret_key=" .. E.percent(s, true) .. "&api_key=" .. E.percent(k, true)
    end,
    percent_all = function(k, s) return "got " .. E.percent(k, false, true) .. " / " .. E.percent(s, true, true) end,
    form = function(k, s) return "body was api_key=" .. E.percent(k, false, false, true)
        .. "&secret_key=" .. E.percent(s, false, false, true) end,
    b64_key = function(k) return "key (base64) " .. E.base64(k) end,
    b64_secret = function(_, s) return "secret (base64) " .. E.base64(s) end,
    b64_basic = function(k, s) return "Authorization: Basic " .. E.base64(k .. ":" .. s) .. " refused" end,
    b64url_nopad = function(k, s) return "token " .. E.base64(k .. ":" .. s, true, true) .. "." end,
    b64_phase1 = function(k, s) return "blob " .. E.base64("x" .. s .. "|" .. k .. "tail") end,
    b64_phase2 = function(k, s) return "blob " .. E.base64("xy" .. s .. "|" .. k) end,
    b64_json = function(k, s)
        return "jwt " .. E.base64('{"user":"' .. k .. '","pass":"' .. s .. '"}', true, true)
    end,
    b64_percent = function(k, s) return "?auth=" .. E.percent(E.base64(k .. ":" .. s)) end,
}

-- the names, in a fixed order
E.NAMES = {}
for name in pairs(E.ECHOES) do E.NAMES[#E.NAMES + 1] = name end
table.sort(E.NAMES)

-- The base64 characters that the bytes of key alone decide when key sits
-- `phase` bytes into a 3-byte group: encode it with 0x00 and with 0xFF
-- bytes around it and keep the longest run alike in both.
local function run(key, phase, url)
    local a = E.base64(("\0"):rep(phase) .. key .. ("\0"):rep(3), url)
    local b = E.base64(("\255"):rep(phase) .. key .. ("\255"):rep(3), url)
    local best, best_at, cur = 0, 1, 0
    for i = 1, #a do
        cur = a:sub(i, i) == b:sub(i, i) and cur + 1 or 0
        if cur > best then best, best_at = cur, i - cur + 1 end
    end
    return a:sub(best_at, best_at + best - 1)
end

-- needles(key) -> { {name, text}... }: every form of key a leak could take
-- in an output: raw, JSON-escaped, percent (either case, reserved or
-- every byte), form, and its base64 runs (3 phases, 2 alphabets)
function E.needles(key)
    local t = {
        { "raw", key }, { "json", E.json(key) }, { "json_u", E.json(key, true) },
        { "percent", E.percent(key) }, { "percent_lower", E.percent(key, true) },
        { "percent_all", E.percent(key, false, true) }, { "percent_all_lower", E.percent(key, true, true) },
        { "form", E.percent(key, false, false, true) },
    }
    for phase = 0, 2 do
        t[#t + 1] = { "base64 phase " .. phase, run(key, phase) }
        t[#t + 1] = { "base64url phase " .. phase, run(key, phase, true) }
    end
    return t
end

return E
