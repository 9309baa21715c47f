#!/usr/bin/env bash
# bench/percall/server.sh start PREFIX PORT [CPU] | stop PREFIX
# Starts the fixed-answer nginx (fixed.conf.in) on 127.0.0.1:PORT, pinned to
# CPU when given, waits until it answers (at most 5 s) and returns; stop
# ends the master it started (by the PID it recorded).
set -u
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 prefix=$2
case $cmd in
start)
    port=$3 cpu=${4:-}
    mkdir -p "$prefix/tmp" "$prefix/logs"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" "$here/fixed.conf.in" >"$prefix/nginx.conf"
    pin=()
    [ -n "$cpu" ] && pin=(taskset -c "$cpu")
    "${pin[@]}" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
        >"$prefix/stdout.log" 2>&1 &
    echo $! >"$prefix/master.pid"
    for _ in $(seq 1 50); do
        if curl -s -o /dev/null -X POST "http://127.0.0.1:$port/v1/appointments" 2>/dev/null; then
            exit 0
        fi
        kill -0 "$(cat "$prefix/master.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "fixed-answer nginx did not start on port $port:" >&2
    cat "$prefix/error.log" "$prefix/stdout.log" >&2 2>/dev/null
    exit 1
    ;;
stop)
    [ -f "$prefix/master.pid" ] || exit 0
    pid=$(cat "$prefix/master.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$prefix/master.pid"
    ;;
*)
    echo "usage: $0 start PREFIX PORT [CPU] | stop PREFIX" >&2
    exit 2
    ;;
esac
