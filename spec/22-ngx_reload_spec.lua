-- spec/22-ngx_reload_spec.lua: a call in flight when nginx reloads (HUP)
-- runs to its end and its answer reaches the caller (issue 16 item 3):
-- nginx's graceful shutdown waits for the request, and mediquo.ngx neither
-- aborts on ngx.worker.exiting() nor runs its I/O where a reload kills it.
-- Real nginx (examples/nginx.conf), the sandbox, curl clients.

local H = require "spec.helper"
local NH = require "spec.ngx_helper"

local q = H.shell_quote

local function reload(gw)
    local pid = tonumber((H.read_file(gw.prefix .. "/nginx.pid") or ""):match("%d+"))
    assert(pid, "no nginx.pid")
    local _, code = H.run("kill -HUP " .. pid)
    assert.are.equal(0, code)
end

local function booking(code)
    return { code = code, starts_at = "2030-05-20T12:00:00Z", patient = "P1",
             professional = "prof-demo-1" }
end

describe("mediquo.ngx across nginx reloads", function()
    it("answers a call that was in flight at the reload (upstream 2 s, reload at 0.5 s)", function()
        local sb = H.sandbox{ latency_ms = 2000 }
        local gw = NH.gateway(sb, { workers = 1, env = { MEDIQUO_DEADLINE = 15 } })
        finally(function() gw:stop(); sb:stop() end)
        local code = "reload-1-" .. math.random(1, 1e9)
        local h = NH.spawn_posts(gw.url .. "/book", { booking(code) }, 20)
        H.sleep(0.5)
        reload(gw)
        local r = h:wait()[1]
        assert.are.equal(201, r.status, "no answer after the reload (curl status "
                                        .. tostring(r.status) .. ")")
        assert.are.equal(code, r.body and r.body.code)
        assert.truthy(sb:state()[code], "the appointment is not upstream")
        assert.is_true(r.time >= 1.9, "it did not wait on the slow upstream")
    end)

    it("answers every request under load through 3 reloads; the sandbox holds exactly the booked codes", function()
        local sb = H.sandbox{ latency_ms = 150, workers = 2 }
        local gw = NH.gateway(sb, { workers = 2, env = { MEDIQUO_DEADLINE = 15 } })
        local dir = NH.tmpdir("ngx-reload")
        finally(function() gw:stop(); sb:stop(); H.run("rm -rf " .. q(dir)) end)
        -- 16 clients, each at most 40 requests and at most 6 s; one line per
        -- request: code, HTTP status (000 = no answer), curl exit code
        local clients, per, seconds = 16, 40, 6
        local script = {}
        for c = 1, clients do
            script[#script + 1] = ([[
(i=0; end=$(( $(date +%%s) + %d ))
 while [ $i -lt %d ] && [ $(date +%%s) -lt $end ]; do
   i=$((i+1)); code="rl-%d-$i-$$"
   st=$(curl -s -o /dev/null -w '%%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
        --data-binary "{\"code\":\"$code\",\"starts_at\":\"2030-05-20T12:00:00Z\",\
\"patient\":\"P\",\"professional\":\"prof-demo-1\"}" \
        %s/book); rc=$?
   echo "$code $st $rc"
 done > %s/%d.out) &]]):format(seconds, per, c, gw.url, q(dir), c)
        end
        script[#script + 1] = "wait"
        local p = assert(io.popen(table.concat(script, "\n"), "r"))
        for _ = 1, 3 do
            H.sleep(1.5)
            reload(gw)
        end
        p:read("a")
        p:close()

        local sent, answered, booked = 0, 0, {}
        local lost = {}
        for c = 1, clients do
            for line in (H.read_file(dir .. "/" .. c .. ".out") or ""):gmatch("[^\n]+") do
                local code, st, rc = line:match("^(%S+) (%d+) (%d+)$")
                assert(code, line)
                sent = sent + 1
                if st == "201" and rc == "0" then
                    answered = answered + 1
                    booked[code] = true
                else
                    lost[#lost + 1] = line
                end
            end
        end
        assert.is_true(sent >= clients * 4, "too few requests: " .. sent)
        assert.are.same({}, lost)                 -- every request got its answer
        assert.are.equal(sent, answered)
        -- the sandbox holds exactly the codes the callers were told are booked
        local upstream = {}
        for code in pairs(sb:state()) do
            if code:find("^rl%-") then upstream[code] = true end
        end
        assert.are.same(booked, upstream)
        local log = gw:error_log()
        assert.falsy(log:find("left in connection", 1, true), log)
    end)
end)
