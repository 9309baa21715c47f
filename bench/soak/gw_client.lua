-- bench/soak/gw_client.lua: one client of the soak's gateway leg. Books,
-- reschedules and cancels its own appointment codes through the example
-- gateway (POST /book, /reschedule, /cancel) with curl, one process per
-- request, while nginx is reloaded under it. Every request becomes one JSON
-- line in OUT, written as soon as it is answered: op, code, what was sent,
-- HTTP status (0 = no answer), curl's exit code, and the answer (url, or
-- the error's kind and effect). Bounded: at most MAX requests and SECONDS.
--
--   lua5.4 bench/soak/gw_client.lua URL ID SECONDS MAX PAUSE SEED OUT
local json = require "cjson"
local socket = require "socket"

local url, id, seconds, max, pause, seed, out_path = arg[1], tonumber(arg[2]), tonumber(arg[3]),
    tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]), arg[7]
assert(url and id and seconds and max and pause and seed and out_path,
       "usage: gw_client.lua URL ID SECONDS MAX PAUSE SEED OUT")
math.randomseed(seed)
local random = math.random

local sh = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/sh.lua")
local q, iso = sh.q, sh.iso

local out = assert(io.open(out_path, "wb"))

-- one request: HTTP status (0 when none), curl's exit code, decoded body
local function post(path, t)
    local p = assert(io.popen(("curl -s --max-time 30 -H 'Content-Type: application/json' "
        .. "-w '\\n%%{http_code}' --data-binary %s %s; echo \" $?\""):format(
        q(json.encode(t)), q(url .. path)), "r"))
    local text = p:read("a")
    p:close()
    local body, status, rc = text:match("^(.*)\n(%d%d%d) (%d+)\n?$")
    if not status then return 0, -1, nil, text end
    local ok, v = pcall(json.decode, body)
    return tonumber(status), tonumber(rc), ok and type(v) == "table" and v or nil, body
end

local sent = 0
local function op(what, code, t)
    sent = sent + 1
    local t0 = socket.gettime()
    local status, rc, v, raw = post("/" .. what, t)
    local rec = { op = what, code = code, status = status, rc = rc, t0 = t0,
                  took = socket.gettime() - t0,
                  starts_at = t.starts_at, patient = t.patient, professional = t.professional }
    if (status == 200 or status == 201) and v then
        rec.ok = true
        rec.url = v.url
    elseif v and type(v.error) == "string" then     -- mediquo.ngx.reply's error body
        rec.kind, rec.effect = v.error, v.effect
        rec.message = v.message
    else
        rec.raw = (raw or ""):sub(1, 200)     -- not the gateway's JSON: nginx's own page, or nothing
    end
    out:write(json.encode(rec), "\n")
    out:flush()
    return rec
end

local live, n = {}, 0
local t_end = socket.gettime() + seconds
while sent < max and socket.gettime() < t_end do
    local x = random()
    if #live < 3 or x < 0.5 then
        n = n + 1
        local code = ("gw-%d-%d-%d"):format(id, seed, n)
        local r = op("book", code, { code = code, starts_at = iso(1900000000 + random(0, 1e8)),
                                     patient = "gw-p-" .. id,
                                     professional = "prof-demo-" .. (n % 3 + 1) })
        if r.ok then live[#live + 1] = code end
    else
        -- a live code: one whose every answer so far said what the server
        -- holds (an unknown outcome retires it, the way a careful caller
        -- leaves it alone until it reconciles)
        local i = random(#live)
        local code = live[i]
        local r
        if x < 0.8 then
            r = op("reschedule", code, { code = code, starts_at = iso(1900000000 + random(0, 1e8)) })
        else
            r = op("cancel", code, { code = code })
        end
        if r.ok and r.op == "cancel" or not r.ok and r.effect ~= "none" then
            table.remove(live, i)
        end
    end
    socket.sleep(pause)
end
out:close()
