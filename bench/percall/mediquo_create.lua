-- bench/percall/mediquo_create.lua: client:create in a loop (see common.lua).
-- VARIANT: "nolimit" (rate_limit = false: the per-call cost of the client
-- itself), "limiter" (the shared limiter on, with a budget too large to
-- ever wait, in the directory MEDIQUO_BENCH_LIMDIR: its cost alone), "core"
-- (client._core:create alone: the C core without the Lua method around it,
-- for the profile).

package.path = package.path .. ";" .. arg[0]:match("^(.*)/[^/]*$") .. "/?.lua"
local common = require "common"
local mediquo = require "mediquo"

local base, n, cap, variant = common.args(arg)
local rate_limit = false
if variant == "limiter" then
    rate_limit = { per_minute = 1000000, burst = 1000000,
                   key = "bench-percall",
                   dir = os.getenv("MEDIQUO_BENCH_LIMDIR") }
elseif variant ~= "nolimit" and variant ~= "core" then
    io.stderr:write("mediquo_create.lua: VARIANT must be nolimit, limiter or core\n")
    os.exit(2)
end

local client = assert(mediquo.new{
    api_key = "sandbox-key", secret_key = "sandbox-secret",
    base_url = base, rate_limit = rate_limit,
})
local appt = common.appointment
local fail = common.fail

if variant == "core" then
    -- the C core alone, for the profile: its create (checks, body, engine,
    -- transport, result) without the Lua method and error wrapping around it
    local core = mediquo.core_of(client)
    common.run(n, cap, function(i)
        local a, err = core:create(appt)
        if not a or a.code ~= "bench-1" then fail(i, err and err.kind) end
    end)
else
    common.run(n, cap, function(i)
        local a, err = client:create(appt)
        if not a or a.code ~= "bench-1" then fail(i, err) end
    end)
end
local st = client:stats()
client:close()
-- every call one request: no retry hid a failure
if st.requests ~= st.ok or st.retries ~= 0 then
    fail(-1, "requests " .. st.requests .. " ~= ok " .. st.ok)
end
