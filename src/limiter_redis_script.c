/* limiter_redis_script.c: the Lua script Redis runs for every decision of
 * the shared budget (limiter_redis.c sends it, by SHA once loaded): the log
 * of leased slots, the GCRA for the burst, the shared pause and
 * calibration, the registry of hosts, and the learning after Redis lost
 * its memory. Its keys and arguments: limiter_redis.c request(); its
 * `period` (ARGV[5]) is the window a slot is held for: the period and the
 * transit guard (limiter.h). */
#include "limiter_redis_script.h"

static const char SCRIPT[] =
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
"local S, LOG, HOSTS, REC = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
"local host, pm, burst = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
"local period, lease, want = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
"local hl, up, recf, known = tonumber(ARGV[8]), ARGV[9], ARGV[10], ARGV[11]\n"
"local ttl, hostttl = tonumber(ARGV[12]), tonumber(ARGV[13])\n"
"local pz, rem, reset = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])\n"
"local horizon = math.min(1000, period / 4)\n"
"local v = redis.call('HMGET', S, 'epoch', 'used', 'tat', 'seq', 'pause', 'calu', 'call', 'learn', 'expect')\n"
"local epoch, used, tat, seq, pause, calu, call, learn, expect\n"
"if v[1] then\n"
"  epoch, used, tat, seq = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])\n"
"  pause, calu, call = tonumber(v[5]), tonumber(v[6]), tonumber(v[7])\n"
"  learn, expect = tonumber(v[8]), tonumber(v[9])\n"
"else\n"
/* no state: first use, or Redis lost it; what the hosts started before
 * may still be in the window: learn it from them first */
"  epoch, used, tat, seq, pause, calu, call = math.floor(now), 0, 0, 0, 0, 0, 0\n"
"  learn, expect = now + period + lease + horizon, math.max(hl, 1)\n"
"  redis.call('DEL', LOG, REC)\n"
"end\n"
"redis.call('ZADD', HOSTS, now, host)\n"
"redis.call('ZREMRANGEBYSCORE', HOSTS, '-inf', now - hostttl)\n"
"local hosts = redis.call('ZCARD', HOSTS)\n"
"local fresh = known ~= tostring(epoch)\n"
"if recf == '1' and not fresh and learn <= now then\n"
"  learn, expect = now + period + lease + horizon, hosts\n"
"  redis.call('DEL', REC)\n"
"end\n"
"local function add(e, n)\n"
"  seq = seq + 1\n"
"  redis.call('ZADD', LOG, e, seq .. ':' .. n)\n"
"  used = used + n\n"
"end\n"
"if fresh or recf == '1' then\n"
/* this host's starts of the last window, which a fresh state lacks: sent
 * only when asked for ("-": not sent), so one round trip costs ~200 bytes */
"  if up == '-' then\n"
"    redis.call('HSET', S, 'epoch', epoch, 'used', used, 'tat', tat, 'seq', seq, 'pause', pause,\n"
"      'calu', calu, 'call', call, 'learn', learn, 'expect', expect)\n"
"    for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end\n"
"    return {0, 0, hosts, epoch, 1, used, 0, 1}\n"
"  end\n"
"  for a, n in string.gmatch(up, '(-?%d+):(%d+)') do add(now - tonumber(a) + lease, tonumber(n)) end\n"
"end\n"
"local learning = 0\n"
"if learn > now then\n"
"  redis.call('SADD', REC, host)\n"
"  if redis.call('SCARD', REC) < expect then learning = 1 end\n"
"end\n"
"local old = redis.call('ZRANGEBYSCORE', LOG, '-inf', now - period)\n"
"for _, m in ipairs(old) do used = used - tonumber(string.match(m, ':(%d+)$')) end\n"
"if #old > 0 then redis.call('ZREMRANGEBYSCORE', LOG, '-inf', now - period) end\n"
"if used < 0 then used = 0 end\n"
"if pz >= 0 then pause = math.max(pause, now + pz) end\n"
/* the server's remaining, weighed against the whole budget: news only
 * when below what is left here (0 at exactly the limit is no news) */
"if rem == 0 and used < pm then pause = math.max(pause, now + reset)\n"
"elseif rem > 0 and rem < pm - used then calu, call = now + reset, rem end\n"
"local grant, wait, delay = 0, 0, 0\n"
"if want > 0 then\n"
"  if learning == 1 then wait = math.min(learn - now, 200) end\n"
"  if pause > now then wait = math.max(wait, pause - now) end\n"
"  local room = pm - used\n"
"  if calu > now then\n"
"    room = math.min(room, call)\n"
"    if call <= 0 then wait = math.max(wait, calu - now) end\n"
"  end\n"
"  if used >= pm then\n"
"    local h = redis.call('ZRANGE', LOG, 0, 0, 'WITHSCORES')\n"
"    if h[2] then wait = math.max(wait, tonumber(h[2]) + period - now) end\n"
"  end\n"
"  local step = period / pm\n"
"  local base = math.max(tat, now)\n"
"  local k = math.floor(burst - (base - now) / step + 1e-9)\n"
"  if k < 1 then wait = math.max(wait, base - (burst - 1) * step - now) end\n"
"  if wait <= 0 and room > 0 and k >= 1 then\n"
"    grant = math.min(want, room, k)\n"
"    add(now + lease, grant)\n"
"    tat = base + grant * step\n"
"    if calu > now then call = call - grant end\n"
/* with a grant, when the next may come: the host waits that long on its
 * own instead of asking again at once */
"    base = math.max(tat, now)\n"
"    if math.floor(burst - (base - now) / step + 1e-9) < 1 then wait = base - (burst - 1) * step - now end\n"
"    if used >= pm then\n"
"      local h = redis.call('ZRANGE', LOG, 0, 0, 'WITHSCORES')\n"
"      if h[2] then wait = math.max(wait, tonumber(h[2]) + period - now) end\n"
"    end\n"
"  elseif learning == 0 and pause <= now and not (calu > now and call <= 0) then\n"
/* no slot now: reserve the next one, at the first instant F the GCRA and
 * the window both allow it (the need-th oldest slot's end + period). The
 * host starts it in [its receive time + F - now, its send time + F - now
 * + lease]: never before F, never after F + lease, where it is logged. So
 * one round trip admits one start instead of every host asking again when
 * a slot frees. */
"    local f = math.max(now, tat - (burst - 1) * step)\n"
"    if used >= pm then\n"
"      local need, acc = used - pm + 1, 0\n"
"      local items = redis.call('ZRANGE', LOG, 0, need - 1, 'WITHSCORES')\n"
"      for i = 1, #items, 2 do\n"
"        acc = acc + tonumber(string.match(items[i], ':(%d+)$'))\n"
"        if acc >= need then f = math.max(f, tonumber(items[i + 1]) + period) break end\n"
"      end\n"
"      if acc < need then f = now + horizon + 1 end\n"
"    end\n"
"    if f - now <= horizon then\n"
"      grant, delay = 1, f - now\n"
"      add(f + lease, 1)\n"
"      tat = math.max(tat, f) + step\n"
"      if calu > now then call = call - 1 end\n"
"      wait = delay\n"
"    end\n"
"  end\n"
"  if grant == 0 and wait <= 0 then wait = 1 end\n"
"end\n"
"redis.call('HSET', S, 'epoch', epoch, 'used', used, 'tat', tat, 'seq', seq, 'pause', pause,\n"
"  'calu', calu, 'call', call, 'learn', learn, 'expect', expect)\n"
"for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end\n"
"return {grant, math.ceil(wait * 1000), hosts, epoch, learning, used, math.max(0, math.ceil(pause - now)), 0,\n"
"  math.ceil(delay * 1000)}\n";

const char *mq_rdl_script(void) { return SCRIPT; }
