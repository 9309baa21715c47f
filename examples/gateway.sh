#!/usr/bin/env bash
# examples/gateway.sh: start or stop the example booking gateway
# (examples/nginx.conf) -- real nginx with its Lua module, on 127.0.0.1.
#
#   examples/gateway.sh start [--port 8090] [--workers 2] [--prefix DIR]
#   examples/gateway.sh stop  [--prefix DIR]
#   examples/gateway.sh demo  # a sandbox + the gateway, one booking through each endpoint
#
# start needs MEDIQUO_API_KEY and MEDIQUO_SECRET_KEY (and MEDIQUO_BASE_URL
# for anything but production) in the environment; see examples/nginx.conf
# for the other variables (MEDIQUO_GATEWAY_CONF: another template). The
# prefix (config, pid, logs) defaults to ${TMPDIR:-/tmp}/mediquo-gateway-PORT.
# Needs `make luajit` (mediquo/core.so for LuaJIT under build/luajit/).
# Started as root, the workers run as root too, so that they share the
# rate-limit file with your root scripts: the file is 0600 and shared only
# within one user (MEDIQUO_NGINX_USER="nobody nogroup": another user).
set -u
prog=gateway.sh
die() { echo "$prog: $*" >&2; exit 1; }
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

cmd=${1:-}
[ $# -gt 0 ] && shift
port=8090 workers=2 prefix=
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
        --port) port=$2 ;;
        --workers) workers=$2 ;;
        --prefix) prefix=$2 ;;
        *) die "unknown option: $1" ;;
    esac
    shift 2
done
for v in "$port" "$workers"; do
    [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || die "--port and --workers take positive integers"
done
: "${prefix:=${TMPDIR:-/tmp}/mediquo-gateway-$port}"

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

do_stop() {
    local pid i
    pid=$(cat "$prefix/nginx.pid" 2>/dev/null) || return 0
    if pid_alive "$pid"; then
        kill -TERM "$pid"
        for i in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.05; done
        pid_alive "$pid" && { kill -KILL "$pid"; sleep 0.1; }
    fi
    rm -f "$prefix/nginx.pid"
}

do_start() {
    local nginx moddir=${MEDIQUO_NGINX_MODULES:-/usr/lib/nginx/modules} modules="" user="" reuse="" ca resolver
    nginx=${MEDIQUO_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
    [ -x "$nginx" ] || die "nginx not found (install nginx-core, or set MEDIQUO_NGINX)"
    [ -f "$root/build/luajit/mediquo/core.so" ] || die "build/luajit/mediquo/core.so missing: run 'make luajit'"
    [ -n "${MEDIQUO_API_KEY:-}" ] && [ -n "${MEDIQUO_SECRET_KEY:-}" ] ||
        die "set MEDIQUO_API_KEY and MEDIQUO_SECRET_KEY"
    if ! "$nginx" -V 2>&1 | grep -q lua-nginx-module; then
        for m in ndk_http_module ngx_http_lua_module; do
            [ -f "$moddir/$m.so" ] || die "missing $moddir/$m.so (install libnginx-mod-http-lua)"
            modules+="load_module $moddir/$m.so; "
        done
    fi
    # MEDIQUO_NGINX_USER ("nobody nogroup"): the workers' user when started as root
    [ "$(id -u)" = 0 ] && user="user ${MEDIQUO_NGINX_USER:-root root};"
    ca=${MEDIQUO_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
    [ -r "$ca" ] || die "cannot read the CA bundle $ca (install ca-certificates, or set MEDIQUO_CA_FILE)"
    # nginx resolves with its own resolver: the system's first name server
    resolver=$(awk '$1 == "nameserver" { print ($2 ~ /:/ ? "[" $2 "]" : $2); exit }' /etc/resolv.conf 2>/dev/null)
    : "${resolver:=127.0.0.1}"
    [ "$workers" -gt 1 ] && reuse=" reuseport"
    mkdir -p "$prefix/logs" "$prefix/tmp" || die "cannot create $prefix"
    prefix=$(cd "$prefix" && pwd)
    if pid_alive "$(cat "$prefix/nginx.pid" 2>/dev/null)"; then
        die "already running with prefix $prefix"
    fi
    sed -e "s|@MODULES@|$modules|" -e "s|@USER@|$user|" -e "s|@WORKERS@|$workers|" \
        -e "s|@CA_FILE@|$ca|" -e "s|@RESOLVER@|$resolver|" -e "s|@PREFIX@|$prefix|g" -e "s|@ROOT@|$root|g" \
        -e "s|@PORT@|$port|" -e "s|@REUSEPORT@|$reuse|" \
        "${MEDIQUO_GATEWAY_CONF:-$root/examples/nginx.conf}" > "$prefix/nginx.conf" ||
        die "cannot write $prefix/nginx.conf"
    : > "$prefix/logs/error.log"
    local out i
    if ! out=$("$nginx" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" 2>&1); then
        do_stop
        die "nginx failed to start: $(printf '%s' "$out" | grep -m1 -E 'emerg|alert|error' || printf '%s' "$out" | head -n1)"
    fi
    for i in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/health")" = 200 ] && {
            echo "http://127.0.0.1:$port"; return 0; }
        sleep 0.02
    done
    do_stop
    die "nginx started but /health did not answer (see $prefix/logs/error.log)"
}

# demo: a sandbox, the gateway against it, each endpoint once, both stopped.
do_demo() {
    local sb gw code
    sbdir=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-demo-sb.XXXXXX")
    gwdir=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-demo-gw.XXXXXX")
    trap '"$0" stop --prefix "$gwdir" >/dev/null 2>&1; "$root/bin/mediquo-sandbox" stop --prefix "$sbdir" >/dev/null 2>&1; rm -rf "$sbdir" "$gwdir"' EXIT
    sb=$("$root/bin/mediquo-sandbox" start --port "$((port + 1))" --prefix "$sbdir") || exit 1
    gw=$(MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret MEDIQUO_BASE_URL=$sb \
         MEDIQUO_RL_DIR=$gwdir "$0" start --port "$port" --prefix "$gwdir") || exit 1
    echo "sandbox $sb, gateway $gw"
    code="demo-$$"
    show() { echo "\$ curl $*"; curl -s -w '  -> HTTP %{http_code}\n' "$@"; }
    show -X POST "$gw/book" -d "{\"code\":\"$code\",\"starts_at\":\"2030-05-20T12:00:00+02:00\",\"patient\":\"P1\",\"professional\":\"prof-demo-1\"}"
    show -X POST "$gw/book" -d "{\"code\":\"$code\",\"starts_at\":\"2030-05-20T12:00:00+02:00\",\"patient\":\"P1\",\"professional\":\"prof-demo-1\"}"
    show -X POST "$gw/book" -d '{"code":"x","starts_at":"2030-02-30T10:00:00Z","patient":"P1","professional":"prof-demo-1"}'
    show -X POST "$gw/reschedule" -d "{\"code\":\"$code\",\"starts_at\":\"2030-05-21T09:30:00Z\"}"
    show -X POST "$gw/cancel" -d "{\"code\":\"$code\"}"
    show -X POST "$gw/cancel" -d '{"code":"no-such-code"}'
    show "$gw/health"
    echo "\$ curl $gw/metrics | grep -v '^#' | grep -v ' 0\$'"
    curl -s "$gw/metrics" | grep -v '^#' | grep -v ' 0$'
}

case $cmd in
    start) do_start ;;
    stop) do_stop ;;
    demo) do_demo ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
       [ -z "$cmd" ] || exit 1 ;;
esac
