# mk/bench_redis_ha.mk: `make bench-redis` also runs bench/redis_ha.lua (issue
# 20): an admission through plain and TLS Redis side by side, through
# Sentinel and Cluster (round trips and us per admission), and the TLS
# handshake counted per connection against the leases; ~40 s, real
# redis-server, redis-sentinel and a 3-master Cluster on loopback.
#   make bench-redis-ha          this part alone
#   BENCH_REDIS_N=20000          admissions per process
#   BENCH_REDIS_RUNS=3           runs of each row (the median shown)

.PHONY: bench-redis-ha
bench-redis: bench-redis-ha
bench-redis-ha: rock luajit test-build
	@eval "$$($(MAKE) -s env)" && lua5.4 bench/redis_ha.lua
