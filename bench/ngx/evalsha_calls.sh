#!/usr/bin/env bash
# bench/ngx/evalsha_calls.sh PORT: the EVALSHA calls the redis-server on
# 127.0.0.1:PORT answered so far (0 before the first): the Redis round
# trips of the limiter. For bench/ngx.sh and bench/ngx_instr.sh.
redis-cli -p "$1" info commandstats | awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3 + 0; f = 1 } END { if (!f) print 0 }'
