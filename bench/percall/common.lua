-- bench/percall/common.lua: what every Lua contender shares - its
-- arguments, the appointment every call creates, the clock and the one
-- output line the driver (bench/percall/percall.sh) reads.
--
--   lua CONTENDER.lua BASE_URL N MAX_SECONDS [VARIANT]
--   -> "ok CALLS SECONDS" on stdout; any failed call ends the run (exit 1)

local socket = require "socket"

local tonumber = tonumber
local gettime = socket.gettime

local _M = { _VERSION = "0.1.0" }

-- the same appointment for everyone; the body is the one client:create
-- sends (cjson's encoding of this shape)
_M.appointment = {
    code = "bench-1", starts_at = "2030-05-20T10:00:00Z",
    patient = "P1", professional = "prof-demo-1", duration = 900,
}

function _M.body_table(a)
    return {
        appointment = { code = a.code, starts_at = a.starts_at, duration = a.duration },
        patient = { code = a.patient },
        professional = { hash = a.professional },
    }
end

_M.headers = {
    ["X-API-Key"] = "sandbox-key",
    ["X-Secret-Key"] = "sandbox-secret",
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
}

function _M.args(argv)
    local base, n, cap = argv[1], tonumber(argv[2]), tonumber(argv[3])
    if not base or not n or n < 1 or not cap or cap <= 0 then
        io.stderr:write("usage: CONTENDER.lua BASE_URL N MAX_SECONDS [VARIANT]\n")
        os.exit(2)
    end
    return base, n, cap, argv[4]
end

-- the checked answer: what a caller needs back from a create
function _M.check(doc, i)
    local a = type(doc) == "table" and type(doc.data) == "table" and doc.data.appointment
    if type(a) ~= "table" or a.code ~= "bench-1" or type(a.url) ~= "string" then
        _M.fail(i, "the answer is not the expected appointment")
    end
end

function _M.fail(i, why)
    io.stderr:write("call ", i, " failed: ", tostring(why), "\n")
    os.exit(1)
end

-- run(n, cap, one) -> calls one(i) up to n times or until cap seconds
-- have passed (the clock is read every 64 calls, as the C loops do, so
-- the harness costs next to nothing per call), then prints the result line
function _M.run(n, cap, one)
    local t0 = gettime()
    local done = 0
    for i = 1, n do
        one(i)
        done = i
        if i % 64 == 0 and gettime() - t0 > cap then break end
    end
    io.stdout:write(("ok %d %.6f\n"):format(done, gettime() - t0))
end

return _M
