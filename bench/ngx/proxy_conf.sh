#!/usr/bin/env bash
# bench/ngx/proxy_conf.sh PREFIX PORT UPSTREAM_PORT: the proxy_pass baseline
# (bench/ngx/proxy.conf) filled in for nginx under PREFIX (its logs/ and
# tmp/ made), listening on PORT, proxying to the sandbox on UPSTREAM_PORT;
# written to PREFIX/nginx.conf. For bench/ngx.sh and bench/ngx_instr.sh.
set -u
prefix=$1 port=$2 upstream=$3
here=$(cd "$(dirname "$0")" && pwd)
modules="" user=""
nginx -V 2>&1 | grep -q lua-nginx-module ||
    modules="load_module /usr/lib/nginx/modules/ndk_http_module.so; load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
[ "$(id -u)" = 0 ] && user="user root root;"
mkdir -p "$prefix/logs" "$prefix/tmp" || exit 1
sed -e "s|@MODULES@|$modules|" -e "s|@USER@|$user|" -e "s|@PREFIX@|$prefix|g" \
    -e "s|@PORT@|$port|" -e "s|@UPSTREAM_PORT@|$upstream|" "$here/proxy.conf" > "$prefix/nginx.conf"
