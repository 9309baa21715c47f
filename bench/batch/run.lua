-- bench/batch/run.lua: how close batches come to their ideal rates.
--
--  1. Concurrency: the sandbox answers every request after LATENCY ms; N
--     creates at concurrency C via client:run_batch. Ideal: C / latency per
--     second (40/s for 8 at 200 ms). Baseline measured in the same run: the
--     same creates one at a time (the blocking client), whose rate times C
--     is what perfect overlap would give on this machine.
--  2. Limiter: `mediquo import` of M creates with --per-minute P --period T
--     against a sandbox with no latency. Ideal: the last start the limiter's
--     rules allow (at most P starts in any T seconds, burst B back to back,
--     then one every T/P), simulated below, plus one request's time
--     (measured in the same run).
--  3. Pacing: client:run_batch of Q creates with opts.max_wait = math.huge
--     under a limiter of P2 per T2 seconds, burst 1, whose own max_wait
--     (0.5 s) and deadline (1 s) are far shorter than the batch: every row
--     must be applied, at the budget's pace (ideal as in 2), each row's
--     deadline starting when it is sent. The same batch without
--     opts.max_wait is run once to show what pacing saves (rows failed).
-- Each figure is the median of RUNS runs. Env: RUNS (3), N (200), C (8),
-- LATENCY (200), M (300), P (120), T (10), Q (40), P2 (20), T2 (5).
local H = require "spec.helper"
local mediquo = require "mediquo"

local RUNS = tonumber(os.getenv("RUNS")) or 3
local N = tonumber(os.getenv("N")) or 200
local C = tonumber(os.getenv("C")) or 8
local LATENCY = tonumber(os.getenv("LATENCY")) or 200
local M = tonumber(os.getenv("M")) or 300
local P = tonumber(os.getenv("P")) or 120
local T = tonumber(os.getenv("T")) or 10
local Q = tonumber(os.getenv("Q")) or 40
local P2 = tonumber(os.getenv("P2")) or 20
local T2 = tonumber(os.getenv("T2")) or 5

local function median(t)
    local s = {}
    for i, v in ipairs(t) do s[i] = v end
    table.sort(s)
    local k = #s
    return k % 2 == 1 and s[(k + 1) / 2] or (s[k / 2] + s[k / 2 + 1]) / 2
end

local function fmt(t)
    local o = {}
    for i, v in ipairs(t) do o[i] = ("%.3f"):format(v) end
    return table.concat(o, " ")
end

local seq = 0
local function code()
    seq = seq + 1
    return ("bench-%d-%d-%d"):format(os.time(), math.random(1e6), seq)
end

local function op()
    return { op = "create", code = code(), starts_at = "2030-05-20T10:00:00Z",
             patient = "pat-1", professional = "prof-demo-1" }
end

local function client(base)
    return assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                               base_url = base, rate_limit = false })
end

-- 1. concurrency ------------------------------------------------------------
local slow = H.sandbox{ latency_ms = LATENCY }
local c = client(slow.base_url)
local base_rates, rates, ratios = {}, {}, {}
for run = 1, RUNS do
    slow:reset()
    local k = math.max(10, math.floor(N / 20))
    local t0 = H.now()
    for _ = 1, k do assert(c:create(op())) end
    base_rates[run] = k / (H.now() - t0)
    local ops = {}
    for i = 1, N do ops[i] = op() end
    t0 = H.now()
    local _, sum = c:run_batch(ops, { concurrency = C })
    local el = H.now() - t0
    assert(sum.ok == N, "batch failures: " .. sum.failed)
    rates[run] = N / el
    ratios[run] = rates[run] / (base_rates[run] * C)
end
c:close()
local ideal = C / (LATENCY / 1000)
local r = median(rates)
print(("concurrency: %d creates, concurrency %d, sandbox latency %d ms"):format(N, C, LATENCY))
print(("  rate per run (/s):        %s"):format(fmt(rates)))
print(("  sequential baseline (/s): %s"):format(fmt(base_rates)))
print(("  median %.1f/s = %.1f%% of the ideal %.0f/s; %.1f%% of %d x the sequential baseline")
      :format(r, 100 * r / ideal, ideal, 100 * median(ratios), C))
print(("  RESULT concurrency %s (>= 90%% of ideal)"):format(r / ideal >= 0.9 and "PASS" or "FAIL"))

-- 2. limiter ----------------------------------------------------------------
-- the limiter's rules (src/limiter.c): a start k is admitted at the first t
-- with t >= start[k - P] + T (sliding window) and t >= tat - (B - 1) * step
-- (GCRA burst), tat = max(tat, t) + step
local function last_start(m, per, burst, period)
    local step, tat, s = period / per, 0, {}
    for k = 1, m do
        local t = math.max(0, tat - (burst - 1) * step)
        if k > per then t = math.max(t, s[k - per] + period) end
        s[k] = t
        tat = math.max(tat, t) + step
    end
    return s[m]
end

local fast = H.sandbox()
local burst = P < 60 and P or 60        -- the rate_limit default
local durations, ideals = {}, {}
local dir = H.run("mktemp -d \"${TMPDIR:-/tmp}/mediquo-bench-XXXXXX\""):gsub("%s+$", "")
for run = 1, RUNS do
    fast:reset()
    local c1 = client(fast.base_url)
    local one = {}
    for i = 1, 5 do
        local t0 = H.now()
        assert(c1:create(op()))
        one[i] = H.now() - t0
    end
    c1:close()
    local rows = { "op,code,starts_at,patient,professional" }
    for i = 1, M do
        rows[i + 1] = ("create,%s,2030-05-20T10:00:00Z,pat-%d,prof-demo-%d"):format(code(), i, 1 + i % 3)
    end
    local file = dir .. "/import-" .. run .. ".csv"
    local f = assert(io.open(file, "wb"))
    f:write(table.concat(rows, "\n"), "\n")
    f:close()
    local cmd = ("%s/bin/mediquo --sandbox --base-url %s --per-minute %d --period %g "
                 .. "--rate-limit-key bench-batch-%s --concurrency %d --no-journal import %s >%s")
        :format(H.root, fast.base_url, P, T, code(), C, file, dir .. "/out")
    local t0 = H.now()
    local _, rc = H.run(cmd)
    durations[run] = H.now() - t0
    assert(rc == 0, "import failed: see " .. dir .. "/out")
    ideals[run] = last_start(M, P, burst, T) + median(one)
end
H.run("rm -rf " .. H.shell_quote(dir))
local d, i0 = median(durations), median(ideals)
print(("limiter: `mediquo import` of %d creates, --per-minute %d --period %g (burst %d), concurrency %d")
      :format(M, P, T, burst, C))
print(("  duration per run (s): %s"):format(fmt(durations)))
print(("  median %.3f s; ideal %.3f s (last start the limit allows %.3f s + one request %.4f s): %+.2f%%")
      :format(d, i0, last_start(M, P, burst, T), i0 - last_start(M, P, burst, T), 100 * (d / i0 - 1)))
print(("  RESULT limiter %s (within 2%% of ideal)"):format(math.abs(d / i0 - 1) <= 0.02 and "PASS" or "FAIL"))

-- 3. pacing -------------------------------------------------------------------
local function paced_client(key)
    return assert(mediquo.new{ api_key = H.api_key, secret_key = H.secret_key,
                               base_url = fast.base_url, deadline = 1, timeout = 0.9,
                               rate_limit = { per_minute = P2, period = T2, burst = 1,
                                              max_wait = 0.5, key = key } })
end
local pdur, pideal = {}, {}
for run = 1, RUNS do
    fast:reset()
    local c2 = paced_client("bench-pace-" .. code())
    local ops = {}
    for i = 1, Q do ops[i] = op() end
    local t0 = H.now()
    local _, sum = c2:run_batch(ops, { concurrency = C, max_wait = math.huge })
    pdur[run] = H.now() - t0
    c2:close()
    assert(sum.ok == Q, "paced batch failures: " .. sum.failed)
    pideal[run] = last_start(Q, P2, 1, T2)
end
local c3 = paced_client("bench-nopace-" .. code())
local ops3 = {}
for i = 1, Q do ops3[i] = op() end
local _, sum3 = c3:run_batch(ops3, { concurrency = C })
c3:close()
local pd, pi = median(pdur), median(pideal)
print(("pacing: run_batch of %d creates, opts.max_wait = math.huge, %d per %g s, burst 1, concurrency %d, "
       .. "deadline 1 s"):format(Q, P2, T2, C))
print(("  duration per run (s): %s"):format(fmt(pdur)))
print(("  median %.3f s; ideal %.3f s (the last start the limit allows): %+.2f%%; every row applied")
      :format(pd, pi, 100 * (pd / pi - 1)))
print(("  without opts.max_wait: %d of %d rows applied, %d failed (%s)")
      :format(sum3.ok, Q, sum3.failed, sum3.by_kind.rate_limited and
              (sum3.by_kind.rate_limited .. " rate_limited") or "-"))
print(("  RESULT pacing %s (every row applied, within 5%% of ideal)")
      :format(math.abs(pd / pi - 1) <= 0.05 and "PASS" or "FAIL"))
