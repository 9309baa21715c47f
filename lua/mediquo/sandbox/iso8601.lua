-- ISO 8601 date-time parsing for the sandbox: accepts the extended format
-- with a zone (Z or +-HH:MM), checks the calendar, and normalises to UTC
-- "YYYY-MM-DDTHH:MM:SSZ". Pure Lua, so it runs under LuaJIT and Lua 5.4 alike.

local tonumber = tonumber
local match = string.match
local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.2.0" }

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
    return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

local function days_in_month(y, m)
    if m == 2 and is_leap(y) then
        return 29
    end
    return DAYS[m]
end

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil): no os.time, so the host's time zone never leaks in.
local function days_from_civil(y, m, d)
    if m <= 2 then
        y = y - 1
    end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function civil_from_days(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524)
                       - floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then
        y = y + 1
    end
    return y, m, d
end

-- Returns epoch seconds (integer, fraction dropped) or nil, reason.
function _M.parse(s)
    if type(s) ~= "string" then
        return nil, "not a string"
    end
    local y, mo, d, h, mi, rest = match(s,
        "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d)(.*)$")
    if not y then
        return nil, "not an ISO 8601 date-time"
    end
    local sec, zone = match(rest, "^:(%d%d)(.*)$")
    if sec then
        local frac_zone = match(zone, "^[%.,]%d+(.*)$")
        if frac_zone then
            zone = frac_zone
        end
    else
        sec, zone = "00", rest
    end

    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    h, mi, sec = tonumber(h), tonumber(mi), tonumber(sec)
    if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) then
        return nil, "not a calendar date"
    end
    if h > 23 or mi > 59 or sec > 59 then
        return nil, "not a valid time of day"
    end

    local offset
    if zone == "Z" or zone == "z" then
        offset = 0
    else
        local sign, oh, om = match(zone, "^([%+%-])(%d%d):?(%d%d)$")
        if not sign then
            return nil, "missing or invalid time zone"
        end
        oh, om = tonumber(oh), tonumber(om)
        if oh > 23 or om > 59 then
            return nil, "invalid time zone offset"
        end
        offset = (oh * 3600 + om * 60) * (sign == "-" and -1 or 1)
    end

    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
           - offset
end

function _M.format(t)
    local days = floor(t / 86400)
    local secs = t - days * 86400
    local y, m, d = civil_from_days(days)
    return format("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d,
                  floor(secs / 3600), floor(secs % 3600 / 60), secs % 60)
end

-- Parses and normalises in one step: "2024-05-20T12:00:00+02:00" ->
-- "2024-05-20T10:00:00Z"; nil, reason for anything else.
function _M.normalise(s)
    local t, err = _M.parse(s)
    if not t then
        return nil, err
    end
    local y = floor(t / 86400)
    if y < days_from_civil(0, 1, 1) or y > days_from_civil(9999, 12, 31) then
        return nil, "out of range"
    end
    return _M.format(t)
end

return _M
