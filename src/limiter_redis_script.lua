-- src/limiter_redis_script.lua: the script Redis runs for every decision of
-- the shared budget (limiter_redis.c asks, redis_conv.c sends it by SHA1,
-- EVAL when Redis lost it): the log of leased slots, the GCRA for the
-- burst, the shared pause and calibration, the registry of hosts, and the
-- learning after Redis lost its memory. Redis's clock (TIME), never a
-- client's. Embedded at build time: the Makefile turns it into
-- src/limiter_redis_script.inc (comment lines left out); luacheck checks it
-- with the redis_script std of .luacheckrc.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
-- The budget's keys (one hash tag: one Cluster slot)
local S = KEYS[1]                   -- its state: epoch, used, GCRA, pause, calibration, learning
local LOG = KEYS[2]                 -- the leased slots, scored by the last instant each may start
local HOSTS = KEYS[3]               -- the hosts sharing it, scored by their last contact
local REC = KEYS[4]                 -- the hosts that handed back their starts while learning
-- The arguments by name, in the order limiter_redis.c request() sends them
-- ARGV[1] is "L" (a lease request, the only kind)
local host = ARGV[2]                -- this host's id in HOSTS
local pm = tonumber(ARGV[3])        -- per_minute: slots per window
local burst = tonumber(ARGV[4])     -- at most this many back to back
local period = tonumber(ARGV[5])    -- the window a slot is held for, ms: the period
                                    -- and the transit guard (limiter.h)
local lease = tonumber(ARGV[6])     -- how long a leased slot stays usable, ms
local want = tonumber(ARGV[7])      -- slots asked for (0: a contact only)
local hl = tonumber(ARGV[8])        -- hosts this host last saw sharing the key
local up = ARGV[9]                  -- this host's recent starts "age_ms:n ...", or "-" (not sent)
local recf = ARGV[10]               -- "1": this host started on its fallback since; "d": it
                                    -- is away (degraded) and started none; "0": neither
local known = ARGV[11]              -- the epoch this host last spoke to
local ttl = tonumber(ARGV[12])      -- the keys' expiry, ms
local hostttl = tonumber(ARGV[13])  -- a host not heard of for this long is gone, ms
local pz = tonumber(ARGV[14])       -- a pause to apply, ms from now (-1: none)
local rem = tonumber(ARGV[15])      -- x-ratelimit-remaining seen (-1: none)
local reset = tonumber(ARGV[16])    -- ...and its window's reset, ms from now
local retry = tonumber(ARGV[17])    -- a host away from Redis tries it again this often, ms
local horizon = math.min(1000, period / 4)
-- a quarantine: a host starts on its fallback this long after its first
-- failure; a learning lasts as long
local quarantine = period + lease + horizon
-- this server's run: the state names the run that last wrote it. A state
-- another run wrote came by replication (a replica promoted by a failover,
-- without the old master's last writes: everything it granted since the
-- replica's last sync, ~11 s of it through a SENTINEL FAILOVER) or from
-- disk: as stale as a lost one, it is treated so. An ACL without INFO: no
-- run known ("-"), no such check (docs/limiter-and-redis.md)
local info = redis.pcall('INFO', 'server')
local rid = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or '-'
local v = redis.call('HMGET', S, 'epoch', 'used', 'tat', 'seq', 'pause', 'calu', 'call', 'learn', 'expect', 'rid',
                    'at')
local epoch, used, tat, seq, pause, calu, call, learn, expect
-- "!" for the uploaded starts: the test build's control run, which must
-- show the window broken without the mechanisms (this check included)
if v[1] and (v[10] == rid or up == '!') then
  epoch, used, tat, seq = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
  pause, calu, call = tonumber(v[5]), tonumber(v[6]), tonumber(v[7])
  learn, expect = tonumber(v[8]), tonumber(v[9])
else
  -- no state: first use, or Redis lost it (or another run wrote it); what
  -- the hosts started before may still be in the window: learn it from
  -- them first, under a new epoch (so each host hands back its starts)
  epoch, used, tat, seq, pause, calu, call = math.floor(now), 0, 0, 0, 0, 0, 0
  if v[1] and tonumber(v[1]) == epoch then epoch = epoch + 1 end
  learn, expect = now + quarantine, math.max(hl, 1)
  redis.call('DEL', LOG, REC)
end
redis.call('ZADD', HOSTS, now, host)
redis.call('ZREMRANGEBYSCORE', HOSTS, '-inf', now - hostttl)
local hosts = redis.call('ZCARD', HOSTS)
local fresh = known ~= tostring(epoch)
-- A host back from an outage ("d") after nobody spoke to Redis for almost
-- a quarantine (its first failure came after the last contact, 'at'): a
-- host not back yet may start on its fallback before its next try (every
-- `retry`), unseen here. Learn as after a host's fallback: no
-- grant until every host has called (and handed its fallback starts back)
-- or the learning ends. Without it, the hosts back first took the whole
-- window while one still on its fallback added its burst to it (spec 36's
-- demotion: 47 in a window of 40). Only a host that was away: a quiet
-- fleet (no calls for a while, Redis fine) is no outage. A learning under
-- way is kept; one that has heard every host is over.
local away = recf == 'd' and up ~= '!' and v[1] and tonumber(v[11])
             and now - tonumber(v[11]) > quarantine - retry - 100
             and (learn <= now or redis.call('SCARD', REC) >= expect)
if not fresh and ((recf == '1' and learn <= now) or away) then
  learn, expect = now + quarantine, hosts
  redis.call('DEL', REC)
end
local function add(e, n)
  seq = seq + 1
  redis.call('ZADD', LOG, e, seq .. ':' .. n)
  used = used + n
end
if fresh or recf == '1' then
  -- this host's starts of the last window, which a fresh state lacks: sent
  -- only when asked for ("-": not sent), so one round trip costs ~200 bytes
  if up == '-' then
    redis.call('HSET', S, 'epoch', epoch, 'used', used, 'tat', tat, 'seq', seq, 'pause', pause,
      'calu', calu, 'call', call, 'learn', learn, 'expect', expect, 'rid', rid, 'at', now)
    for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
    return {0, 0, hosts, epoch, 1, used, 0, 1}
  end
  for a, n in string.gmatch(up, '(-?%d+):(%d+)') do add(now - tonumber(a) + lease, tonumber(n)) end
end
local learning = 0
if learn > now then
  redis.call('SADD', REC, host)
  if redis.call('SCARD', REC) < expect then learning = 1 end
end
local old = redis.call('ZRANGEBYSCORE', LOG, '-inf', now - period)
for _, m in ipairs(old) do used = used - tonumber(string.match(m, ':(%d+)$')) end
if #old > 0 then redis.call('ZREMRANGEBYSCORE', LOG, '-inf', now - period) end
if used < 0 then used = 0 end
if pz >= 0 then pause = math.max(pause, now + pz) end
-- the server's remaining, weighed against the whole budget: news only
-- when below what is left here (0 at exactly the limit is no news)
if rem == 0 and used < pm then pause = math.max(pause, now + reset)
elseif rem > 0 and rem < pm - used then calu, call = now + reset, rem end
local grant, wait, delay = 0, 0, 0
if want > 0 then
  if learning == 1 then wait = math.min(learn - now, 200) end
  if pause > now then wait = math.max(wait, pause - now) end
  local room = pm - used
  if calu > now then
    room = math.min(room, call)
    if call <= 0 then wait = math.max(wait, calu - now) end
  end
  if used >= pm then
    local h = redis.call('ZRANGE', LOG, 0, 0, 'WITHSCORES')
    if h[2] then wait = math.max(wait, tonumber(h[2]) + period - now) end
  end
  local step = period / pm
  local base = math.max(tat, now)
  local k = math.floor(burst - (base - now) / step + 1e-9)
  if k < 1 then wait = math.max(wait, base - (burst - 1) * step - now) end
  if wait <= 0 and room > 0 and k >= 1 then
    -- the pacing idle (tat not ahead of now): a lease may hold more than the
    -- burst, what the pacing lets start in a lease's life; the slots past
    -- the burst are reserved for this host (tat moves past them), whose own
    -- GCRA, the same rule, spaces them so. Else what the pacing allows now
    local most = k
    if tat <= now then most = burst + math.floor(lease / step) end
    grant = math.min(want, room, most)
    add(now + lease, grant)
    tat = base + grant * step
    if calu > now then call = call - grant end
    -- with a grant, when the next may come: the host waits that long on its
    -- own instead of asking again at once
    base = math.max(tat, now)
    if math.floor(burst - (base - now) / step + 1e-9) < 1 then wait = base - (burst - 1) * step - now end
    if used >= pm then
      local h = redis.call('ZRANGE', LOG, 0, 0, 'WITHSCORES')
      if h[2] then wait = math.max(wait, tonumber(h[2]) + period - now) end
    end
  elseif learning == 0 and pause <= now and not (calu > now and call <= 0) then
    -- no slot now: reserve the next one, at the first instant F the GCRA and
    -- the window both allow it (the need-th oldest slot's end + period). The
    -- host starts it in [its receive time + F - now, its send time + F - now
    -- + lease]: never before F, never after F + lease, where it is logged. So
    -- one round trip admits one start instead of every host asking again when
    -- a slot frees.
    local f = math.max(now, tat - (burst - 1) * step)
    if used >= pm then
      local need, acc = used - pm + 1, 0
      local items = redis.call('ZRANGE', LOG, 0, need - 1, 'WITHSCORES')
      for i = 1, #items, 2 do
        acc = acc + tonumber(string.match(items[i], ':(%d+)$'))
        if acc >= need then f = math.max(f, tonumber(items[i + 1]) + period) break end
      end
      if acc < need then f = now + horizon + 1 end
    end
    if f - now <= horizon then
      grant, delay = 1, f - now
      add(f + lease, 1)
      tat = math.max(tat, f) + step
      if calu > now then call = call - 1 end
      wait = delay
    end
  end
  if grant == 0 and wait <= 0 then wait = 1 end
end
redis.call('HSET', S, 'epoch', epoch, 'used', used, 'tat', tat, 'seq', seq, 'pause', pause,
  'calu', calu, 'call', call, 'learn', learn, 'expect', expect, 'rid', rid, 'at', now)
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
return {grant, math.ceil(wait * 1000), hosts, epoch, learning, used, math.max(0, math.ceil(pause - now)), 0,
  math.ceil(delay * 1000)}
