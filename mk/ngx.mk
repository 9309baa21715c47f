# mk/ngx.mk: the OpenResty/nginx adapter (mediquo.ngx).
#
#   make gateway-demo    the example gateway (examples/nginx.conf) against a
#                        sandbox: one call through each endpoint, then stops
#   make bench-ngx       /book through mediquo.ngx vs nginx proxy_pass,
#                        /health p99 idle vs under slow upstream calls, and
#                        200 calls at once on a 500 ms upstream
#                        (BENCH_NGX_RUNS, BENCH_NGX_SECONDS, BENCH_NGX_BURST;
#                        see bench/ngx.sh; also `make bench BENCH=ngx`)

.PHONY: gateway-demo bench-ngx
gateway-demo: deps luajit
	@bash examples/gateway.sh demo

bench-ngx: deps bench-deps luajit
	@bash bench/ngx.sh
