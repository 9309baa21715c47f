-- mediquo.cli.dates: the start times an import file holds, as the API
-- takes them (UTC, YYYY-MM-DDTHH:MM:SSZ).
--
--   local reader, err = dates.reader{ timezone = "Europe/Madrid", day_first = true }
--   local iso, why = reader(cell)
--
-- Read: ISO 8601 with a zone (passed on as it is: the engine checks and
-- converts it), and the forms spreadsheets write - a space for the T,
-- seconds optional, `DD/MM/YYYY` with --day-first (`YYYY/MM/DD` always) -
-- with or without a zone (Z or +HH:MM). A time without a zone is read in
-- --timezone: an IANA name through the system's tzdata (mediquo.core's
-- zone_time: DST as the zone has it; a time the clocks skip or pass twice
-- is refused, never guessed) or a fixed offset such as +02:00.

local core = require "mediquo.core"

local tonumber = tonumber
local format = string.format
local floor = math.floor

local _M = {}

-- days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's)
local function days_from_civil(y, m, d)
    y = m <= 2 and y - 1 or y
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * (m > 2 and m - 3 or m + 9) + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end
local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid(y, mo, d, h, mi, s)
    if mo < 1 or mo > 12 or d < 1 then return false end
    local md = MDAYS[mo] + ((mo == 2 and leap(y)) and 1 or 0)
    return d <= md and h <= 23 and mi <= 59 and s <= 59
end

-- "+02:00" / "-0530" / "Z" -> seconds east of UTC | nil
local function offset_of(z)
    if z == "Z" or z == "z" then return 0 end
    local sign, hh, mm = z:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    hh, mm = tonumber(hh), tonumber(mm)
    if hh > 23 or mm > 59 then return nil end
    return (sign == "-" and -1 or 1) * (hh * 3600 + mm * 60)
end
_M.offset_of = offset_of

-- reader(opts) -> function(cell) -> iso | nil, why   | nil, message (a bad --timezone)
function _M.reader(opts)
    local tz, fixed = opts.timezone, nil
    if tz then
        fixed = offset_of(tz)
        if not fixed and not core.zone_time(tz, 2030, 1, 1, 12, 0, 0) then
            return nil, format("--timezone %s is neither a zone of the system's tzdata (e.g. "
                .. "Europe/Madrid) nor an offset such as +02:00", tz:sub(1, 60):gsub("%c", "?"))
        end
    end
    return function(v)
        -- ISO 8601 with a T and a zone: the engine's own reading
        if v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.,%d]*[Zz]$")
            or v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.,%d]*[+-]%d%d:?%d%d$") then
            return v
        end
        local y, mo, d, rest = v:match("^(%d%d%d%d)[-/](%d%d?)[-/](%d%d?)(.*)$")
        if not y then
            local a, b, c
            a, b, c, rest = v:match("^(%d%d?)[/.-](%d%d?)[/.-](%d%d%d%d)(.*)$")
            if a then
                if not opts.day_first then
                    return nil, "is DD/MM/YYYY or MM/DD/YYYY: say which with --day-first "
                        .. "(DD/MM/YYYY), or write YYYY-MM-DD"
                end
                y, mo, d = c, b, a
            end
        end
        if not y then return nil, "is not a date and time (YYYY-MM-DD HH:MM[:SS], with a zone "
            .. "or --timezone)" end
        local h, mi, s, frac, zone = rest:match("^[T ](%d%d?):(%d%d):?(%d?%d?)([.,]?%d*)%s*(.-)$")
        if not h or (s ~= "" and #s ~= 2) or (frac ~= "" and s == "") then
            return nil, "has no time of day HH:MM[:SS] after the date"
        end
        y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
            tonumber(s) or 0
        if not valid(y, mo, d, h, mi, s) then return nil, "is not a valid date and time" end
        local t
        if zone ~= "" then
            local off = offset_of(zone)
            if not off then return nil, "has a zone that is not Z or +HH:MM" end
            t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off
        elseif fixed then
            t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - fixed
        elseif tz then
            local why
            t, why = core.zone_time(tz, y, mo, d, h, mi, s)
            if not t then
                return nil, why == "ambiguous"
                    and format("happens twice in %s (the clocks go back): write its offset", tz)
                    or format("does not exist in %s (the clocks skip it)", tz)
            end
        else
            return nil, "has no zone: add one (Z, +02:00) or say the file's with --timezone ZONE"
        end
        return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
    end
end

return _M
