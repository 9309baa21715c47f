-- examples/quickstart.lua: create an appointment, move it, cancel it; the
-- README's Quick start (spec/32-readme_spec.lua keeps the two the same).
--
--   export MEDIQUO_BASE_URL=$(bin/mediquo-sandbox start)      # the sandbox
--   export MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret
--   lua5.4 examples/quickstart.lua
--
-- Against the real API export your own keys and leave MEDIQUO_BASE_URL unset.
local mediquo = require "mediquo"

local client = assert(mediquo.new{
    api_key    = os.getenv("MEDIQUO_API_KEY"),
    secret_key = os.getenv("MEDIQUO_SECRET_KEY"),
    base_url   = os.getenv("MEDIQUO_BASE_URL"),   -- unset: the real API
})

-- the code is yours, and doubles as the idempotency key: one per booking
local code = ("quick-%d-%d"):format(os.time(), math.random(1e9))

local appt, err = client:create{
    code = code,
    starts_at = "2030-05-20T10:00:00+02:00",      -- or epoch seconds; sent as UTC
    patient = "patient-42",
    professional = "prof-demo-1",                 -- a professional the sandbox knows
    duration = 1800,                              -- optional, seconds
}
if not appt then
    -- branch on err.kind / err.effect; tostring(err) is one line, never a secret
    error(tostring(err))
end
print("created", appt.code, appt.url)

local moved = assert(client:reschedule(code, os.time() + 86400))
print("moved", moved.url)                         -- a new URL; the old one stops working
assert(client:cancel(code))
print("cancelled", code)
client:close()
