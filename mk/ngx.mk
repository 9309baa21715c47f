# mk/ngx.mk: the OpenResty/nginx adapter (mediquo.ngx).
#
#   make gateway-demo    the example gateway (examples/nginx.conf) against a
#                        sandbox: one call through each endpoint, then stops
#   make bench-ngx       /book through mediquo.ngx vs nginx proxy_pass, and
#                        /health p99 idle vs under slow upstream calls
#                        (BENCH_NGX_RUNS, BENCH_NGX_SECONDS; see bench/ngx.sh)

.PHONY: gateway-demo bench-ngx
gateway-demo: deps luajit
	@bash examples/gateway.sh demo

bench-ngx: deps bench-deps luajit
	@bash bench/ngx.sh
