-- bench/jitter/worker.lua: one process of one simulated host under full
-- demand, for bench/jitter.lua: books appointments on the sandbox as fast
-- as the limiter lets it, its budget shared through Redis, until UNTIL
-- (Unix seconds). MODE "client": through the blocking client (which also
-- heeds the server's 429 and x-ratelimit-remaining); "raw": a slot from
-- mediquo.limiter, then a plain HTTP POST (luasocket) whose answer is only
-- counted: nothing but the limiter's spacing stands between jitter and a
-- 429. Writes one line at the end: "ok N limited N http429 N other N[ err]".
--
--   lua5.4 bench/jitter/worker.lua OUT BASE_URL KEY DIR REDIS PER_MINUTE BURST PERIOD UNTIL TAG MODE

local mediquo = require "mediquo"

local out, base_url, key, dir, redis = arg[1], arg[2], arg[3], arg[4], arg[5]
local per_minute, burst, period = tonumber(arg[6]), tonumber(arg[7]), tonumber(arg[8])
local until_s, tag, mode = tonumber(arg[9]), arg[10], arg[11] or "client"

local function finish(line)
    local f = assert(io.open(out, "w"))
    f:write(line, "\n")
    f:close()
end

local rl = { per_minute = per_minute, burst = burst, period = period, key = key,
             dir = dir, redis = redis ~= "-" and redis or nil, max_wait = period }
local client, err
if mode == "raw" then
    local lim
    lim, err = mediquo.limiter(rl)
    if lim then
        local http = require "socket.http"
        local ltn12 = require "ltn12"
        client = {}
        function client.create(_, a)
            local ok, e = lim:acquire()
            if not ok then return nil, e end
            local body = ('{"appointment":{"code":"%s","starts_at":"%s"},"patient":{"code":"%s"},'
                          .. '"professional":{"hash":"%s"}}'):format(a.code, a.starts_at, a.patient,
                                                                        a.professional)
            local _, code = http.request{
                url = base_url .. "/appointments", method = "POST", source = ltn12.source.string(body),
                headers = { ["X-API-Key"] = "sandbox-key", ["X-Secret-Key"] = "sandbox-secret",
                            ["Content-Type"] = "application/json", ["Content-Length"] = #body },
                sink = ltn12.sink.null() }
            if code == 200 then return true end
            return nil, { status = code, kind = "http " .. tostring(code) }
        end
        function client.close() lim:close() end
    end
else
    client, err = mediquo.new{
        base_url = base_url, api_key = "sandbox-key", secret_key = "sandbox-secret",
        max_retries = 0, deadline = 2 * period + 5, rate_limit = rl,
    }
end
if not client then
    finish("error " .. tostring(err))
    os.exit(1)
end

local n = { ok = 0, limited = 0, http429 = 0, other = 0 }
local first
for i = 1, 10000000 do
    if os.time() >= until_s then break end
    local ok, e = client:create{ code = tag .. "-" .. i, starts_at = "2030-01-01T10:00:00Z",
                                 patient = "p-" .. i, professional = "prof-demo-1" }
    if ok then
        n.ok = n.ok + 1
    elseif e.status == 429 then
        n.http429 = n.http429 + 1
    elseif e.kind == "rate_limited" then
        n.limited = n.limited + 1
    else
        n.other = n.other + 1
        first = first or tostring(e)
    end
end
client:close()
finish(("ok %d limited %d http429 %d other %d%s"):format(n.ok, n.limited, n.http429, n.other,
                                                           first and (" " .. first) or ""))
