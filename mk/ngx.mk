# mk/ngx.mk: the OpenResty/nginx adapter (mediquo.ngx).
#
#   make gateway-demo    the example gateway (examples/nginx.conf) against a
#                        sandbox: one call through each endpoint, then stops
#   make bench-ngx       /book through mediquo.ngx vs nginx proxy_pass,
#                        /health p99 idle vs under slow upstream calls, and
#                        200 calls at once on a 500 ms upstream
#                        (BENCH_NGX_RUNS, BENCH_NGX_SECONDS, BENCH_NGX_BURST;
#                        see bench/ngx.sh; also `make bench BENCH=ngx`)
#   make bench-ngx-instr instructions a /book in one worker, the gateway and
#                        proxy_pass, counted by callgrind (bench/ngx_instr.sh:
#                        ~1 min; the A/B instrument for a small change)
#   make bench-ngx-health bench-ngx's /health reading for the gateway beside
#                        proxy_pass, a bare Lua cosocket proxy (the floor for a
#                        Lua handler) and a control whose /book spins 300 us
#                        (which it must catch); each with its idle A/A pair and
#                        the workers' CPU a slow /book (bench/ngx_health.sh, ~3 min)

.PHONY: gateway-demo bench-ngx bench-ngx-instr bench-ngx-health
gateway-demo: deps luajit
	@bash examples/gateway.sh demo

bench-ngx: deps bench-deps luajit
	@bash bench/ngx.sh

bench-ngx-instr: deps bench-deps luajit
	@bash bench/ngx_instr.sh

bench-ngx-health: deps bench-deps luajit
	@bash bench/ngx_health.sh
