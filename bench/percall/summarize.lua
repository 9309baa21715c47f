-- bench/percall/summarize.lua TSV LABELS OUTDIR: turns every run of
-- percall.sh into the table (percall.md), the chart data (percall.dat) and
-- the summary lines, and checks the two claims: client:create at most
-- 1.10x the C loop per call (pinned), and faster than every Lua peer.
-- Each figure is the median of the runs; each ratio is the median of the
-- per-round ratios to the C loop run in the same round and mode - the C
-- loop run just before it when the run was paired (a sixth column names
-- the contender a C loop run was paired with; "-" or absent: not paired).

local tsv, labels_path, out = arg[1], arg[2], arg[3]
local LIMIT = 1.10
local PEERS = { luacurl = true, lua_http = true, luasocket = true }

local function lines(path)
    local f = assert(io.open(path, "r"))
    local t = {}
    for l in f:lines() do t[#t + 1] = l end
    f:close()
    return t
end

local function median(t)
    local s = {}
    for i, v in ipairs(t) do s[i] = v end
    table.sort(s)
    local n = #s
    if n == 0 then return nil end
    if n % 2 == 1 then return s[(n + 1) // 2] end
    return (s[n // 2] + s[n // 2 + 1]) / 2
end

local order, label = {}, {}
for _, l in ipairs(lines(labels_path)) do
    local c, text = l:match("^([^\t]+)\t(.*)$")
    order[#order + 1] = c
    label[c] = text
end

-- us[mode][contender][round] = microseconds per call;
-- paired[mode][contender][round] = that of the C loop run just before it;
-- every C loop run of a mode and round counts for the C loop's own figure
local us, paired, loops, modes, seen = {}, {}, {}, {}, {}
for i, l in ipairs(lines(tsv)) do
    if i > 1 then
        local m, c, r, calls, secs, pair = l:match("^(%S+)\t(%S+)\t(%d+)\t(%d+)\t(%S+)\t?(%S*)$")
        assert(m, "bad line in " .. tsv .. ": " .. l)
        if not seen[m] then
            seen[m] = true; modes[#modes + 1] = m
            us[m], paired[m], loops[m] = {}, {}, {}
        end
        r = tonumber(r)
        local v = tonumber(secs) / tonumber(calls) * 1e6
        if c == "c_loop" then loops[m][#loops[m] + 1] = v end
        if pair ~= "" and pair ~= "-" then
            paired[m][pair] = paired[m][pair] or {}
            paired[m][pair][r] = v
        else
            us[m][c] = us[m][c] or {}
            us[m][c][r] = v
        end
    end
end

local stat = {}   -- stat[mode][c] = { med, min, max, ratio, runs }
for _, m in ipairs(modes) do
    stat[m] = {}
    local base = us[m].c_loop
    for _, c in ipairs(order) do
        local runs = us[m][c]
        if runs then
            local vals, ratios, lo, hi = {}, {}, math.huge, 0
            local own = paired[m][c] or base
            for r, v in pairs(runs) do
                vals[#vals + 1] = v
                lo, hi = math.min(lo, v), math.max(hi, v)
                if c ~= "c_loop" and own and own[r] then ratios[#ratios + 1] = v / own[r] end
            end
            if c == "c_loop" then   -- every C loop run of the mode
                vals, lo, hi = loops[m], math.huge, 0
                for _, v in ipairs(vals) do lo, hi = math.min(lo, v), math.max(hi, v) end
                ratios = { 1 }
            end
            stat[m][c] = { med = median(vals), min = lo, max = hi,
                           ratio = median(ratios), runs = #vals }
        end
    end
end

local function fmt(s)
    if not s then return "-" end
    return ("%.1f µs (%.1f–%.1f) **%.2fx**"):format(s.med, s.min, s.max, s.ratio)
end

local md = {}
local head = "| contender |"
local rule = "|---|"
for _, m in ipairs(modes) do
    head = head .. " " .. m .. ": median (min–max), ratio to C |"
    rule = rule .. "---|"
end
md[#md + 1] = head
md[#md + 1] = rule
for _, c in ipairs(order) do
    local row = "| " .. label[c] .. " |"
    for _, m in ipairs(modes) do row = row .. " " .. fmt(stat[m][c]) .. " |" end
    md[#md + 1] = row
end

-- the claims, on the pinned mode (or the first one run)
local cm = seen.pinned and "pinned" or modes[1]
local verdict, summary = {}, {}
local s = stat[cm]
local ok_all = true
if s.mediquo and s.c_loop then
    local ok = s.mediquo.ratio <= LIMIT
    ok_all = ok_all and ok
    verdict[#verdict + 1] = ("%s: client:create %.1f µs per call = %.2fx the C libcurl loop (%.1f µs), %s %.2fx (%s)")
        :format(cm, s.mediquo.med, s.mediquo.ratio, s.c_loop.med, ok and "within" or "ABOVE", LIMIT,
                ok and "met" or "NOT MET")
    for _, c in ipairs(order) do
        if PEERS[c] and s[c] then
            -- compared through their ratios to the same rounds' C loop
            local faster = s.mediquo.ratio < s[c].ratio
            ok_all = ok_all and faster
            local line = "%s: client:create %.2fx vs %s %.2fx the C loop (%.1f vs %.1f µs): %s (%s)"
            verdict[#verdict + 1] = line:format(
                cm, s.mediquo.ratio, c, s[c].ratio, s.mediquo.med, s[c].med,
                faster and ("%.2fx faster"):format(s[c].ratio / s.mediquo.ratio) or "NOT faster",
                faster and "met" or "NOT MET")
        end
    end
end
for _, m in ipairs(modes) do
    local t = stat[m]
    local parts = {}
    for _, c in ipairs(order) do
        if t[c] then parts[#parts + 1] = ("%s %.1f µs %.2fx"):format(c, t[c].med, t[c].ratio) end
    end
    summary[#summary + 1] = "percall " .. m .. ": " .. table.concat(parts, ", ")
end

local f = assert(io.open(out .. "/percall.md", "w"))
f:write(table.concat(md, "\n"), "\n\n")
for _, v in ipairs(verdict) do f:write("- ", v, "\n") end
f:close()

-- chart data: one row per contender, one column per mode (median µs)
f = assert(io.open(out .. "/percall.dat", "w"))
f:write("contender")
for _, m in ipairs(modes) do f:write("\t", m) end
f:write("\n")
for _, c in ipairs(order) do
    f:write(c)
    for _, m in ipairs(modes) do
        f:write("\t", stat[m][c] and ("%.2f"):format(stat[m][c].med) or "NaN")
    end
    f:write("\n")
end
f:close()

f = assert(io.open(out .. "/percall.summary", "w"))
for _, l in ipairs(summary) do print(l); f:write(l, "\n") end
for _, l in ipairs(verdict) do print("percall claim " .. l); f:write("claim ", l, "\n") end
f:close()
os.exit(ok_all and 0 or 3)
