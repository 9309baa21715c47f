-- examples/quickstart.lua: create an appointment, move it, cancel it.
--
--   MEDIQUO_BASE_URL=http://127.0.0.1:8089/v1 lua5.4 examples/quickstart.lua
--
-- Against the real API set MEDIQUO_API_KEY / MEDIQUO_SECRET_KEY and leave
-- MEDIQUO_BASE_URL unset.
local mediquo = require "mediquo"

local client, err = mediquo.new{
    api_key = os.getenv("MEDIQUO_API_KEY") or "sandbox-key",
    secret_key = os.getenv("MEDIQUO_SECRET_KEY") or "sandbox-secret",
    base_url = os.getenv("MEDIQUO_BASE_URL"),
}
if not client then
    io.stderr:write("cannot make a client: ", tostring(err), "\n")
    os.exit(1)
end

local function check(what, value, e)
    if not value then
        io.stderr:write(what, " failed: ", tostring(e), "\n")
        os.exit(1)
    end
    return value
end

local code = "quickstart-" .. os.time()

local appt = check("create", client:create{
    code = code,
    starts_at = "2030-05-20T10:00:00+02:00",   -- sent as 08:00:00Z
    patient = "patient-42",
    professional = "prof-demo-1",
    duration = 1800,
})
print(("created     %s  video call: %s"):format(appt.code, appt.url))

local moved = check("reschedule", client:reschedule(code, os.time() + 7 * 86400))
print(("rescheduled %s  new URL:    %s"):format(moved.code, moved.url))

check("cancel", client:cancel(code))
print(("cancelled   %s"):format(code))

local s = client:stats()
print(("%d requests, %d ok, %d retries"):format(s.requests, s.ok, s.retries))
client:close()
