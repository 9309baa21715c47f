-- bench/webhook.lua: webhook events verified and parsed per second in one
-- worker (one Lua state, one core): mediquo.webhook.parse on a
-- patient_consultation_finished event shaped as the sandbox sends it
-- (~2 KB, a SOAP report and history), signature checked against a
-- two-secret rotation (the matching one second: the worst case). Run by
-- `make bench-webhook` under LuaJIT (what nginx runs) and Lua 5.4.
--   lua5.4 bench/webhook.lua [seconds]
local webhook = require "mediquo.webhook"
local cjson = require "cjson"
local clock = os.clock

local seconds = tonumber(arg[1]) or 3
local secret = "current-webhook-secret-0123456789"
local body = cjson.encode{
    type = "patient_consultation_finished", occurred_on = 1715000000,
    payload = {
        consultation = { id = "3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f", type = "appointment",
                         channel = "video", service_type = "scheduled",
                         consultation_url = "https://sdk.mediquo.com/call/46ea4bc1af2f39fb9a40ed540c08ea97",
                         scheduled_start_date = "2031-03-10T10:00:00Z",
                         scheduled_end_date = "2031-03-10T10:15:00Z",
                         start_date = "2031-03-10T10:01:00Z", end_date = "2031-03-10T10:14:00Z",
                         created_at = "2031-03-01T09:00:00Z", speciality = { id = 1, name = "General" } },
        reports = { { id = "r-1", type = "soap", content = {
            subjective = ("Dry cough for two weeks, worse at night. "):rep(4),
            objective = ("Clear lungs on auscultation, no fever. "):rep(4),
            assessment = "Viral bronchitis", plan = ("Rest, fluids, review in 7 days. "):rep(3) } } },
        patient = { code = "PATIENT-0001",
                    allergies = { { id = 1, name = "Penicillin", description = "hives" } },
                    diseases = { { id = 2, name = "Hypertension" } },
                    medications = { { id = 3, name = "Enalapril", posology = "10mg/day" } } },
        professional = { id = "prof-demo-1", name = "Dr. Demo" },
        prescriptions = { { id = "rx-1", active_substances = { "dextromethorphan" } } },
        preconsultation = { reason = "Persistent cough", documents = {} },
    },
}
local opts = { headers = { ["x-webhook-signature"] = secret }, body = body,
               secret = { "previous-webhook-secret-0123456789", secret } }

assert(webhook.parse(opts))
local n, t0 = 0, clock()
local deadline = t0 + seconds
repeat
    for _ = 1, 1000 do
        local ev = webhook.parse(opts)
        if not ev then error("parse failed") end
    end
    n = n + 1000
until clock() >= deadline
local took = clock() - t0
print(("webhook parse (%s): %d events of %d bytes in %.2f s CPU: %.0f events/s verified and parsed in one worker")
      :format(jit and jit.version or _VERSION, n, #body, took, n / took))

-- The constant-time claim, measured: core.webhook_check with a signature
-- wrong in its first byte, wrong in its last byte, of another length, and
-- right (the body kept tiny so the comparison dominates). Interleaved
-- rounds, median ns per check: the wrong ones should not differ.
local core = require "mediquo.core"
local tiny = "{}"
local sigs = {
    { "right (+ the id: one more SHA-256)", secret },
    { "first byte wrong", "X" .. secret:sub(2) },
    { "last byte wrong", secret:sub(1, -2) .. "X" },
    { "shorter", secret:sub(1, 8) },
}
local secrets = { "previous-webhook-secret-0123456789", secret }
local per = {}
for round = 1, 15 do
    for _, s in ipairs(sigs) do
        local start = clock()
        for _ = 1, 20000 do
            core.webhook_check(1024, tiny, s[2], secrets[1], secrets[2])
        end
        local ns = (clock() - start) / 20000 * 1e9
        per[s[1]] = per[s[1]] or {}
        per[s[1]][round] = ns
    end
end
local parts = {}
for _, s in ipairs(sigs) do
    local t = per[s[1]]
    table.sort(t)
    parts[#parts + 1] = ("%s %.0f ns"):format(s[1], t[8])
end
print(("webhook signature check (%s), median of 15 x 20000: %s")
      :format(jit and jit.version or _VERSION, table.concat(parts, ", ")))
