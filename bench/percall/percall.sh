#!/usr/bin/env bash
# bench/percall/percall.sh OUTDIR: the per-call cost of client:create next
# to the physical limit (c_loop.c) and the Lua peers, against a fixed-answer
# nginx (fixed.conf.in) on loopback. Writes OUTDIR/percall.tsv (every run),
# OUTDIR/percall.md (the table), OUTDIR/percall.dat (for the chart) and
# prints summary lines. Called by bench/run.sh; the environment:
#   BENCH_N      calls per run (20000)        BENCH_RUNS  runs per contender (7, at least 5)
#   BENCH_CAP    seconds per run at most (20) BENCH_MODES "pinned split unpinned"
#   BENCH_ONLY   contenders to run (default: all, see CONTENDERS below)
#   C_LOOP       the built c_loop binary      BENCH_STRICT=1: exit 1 when a claim fails
#   BENCH_CPATH  a LUA_CPATH entry put first for the Lua 5.4 rows (scratch builds)
#   BENCH_PAIRED modes in which each contender runs right after a C loop of
#                its own, its ratio taken to that run ("pinned"; "" for none)
# Modes: pinned = server and client both on CPU 0 (taskset; no cross-core
# wake-ups), split = server on CPU 1, client on CPU 0, unpinned = the
# scheduler's choice. Rounds interleave the contenders (order rotated each
# round) so load from elsewhere hits them alike; ratios are taken against
# the C loop of the same round and mode.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: percall.sh OUTDIR}
N=${BENCH_N:-20000}
RUNS=${BENCH_RUNS:-7}
CAP=${BENCH_CAP:-20}
MODES=${BENCH_MODES:-pinned split unpinned}
C_LOOP=${C_LOOP:-$root/build/bench/c_loop}
C_TRANSPORT=${C_TRANSPORT:-$root/build/bench/c_transport}
[ "$RUNS" -ge 5 ] || { echo "percall: BENCH_RUNS must be at least 5" >&2; exit 2; }
[ -x "$C_LOOP" ] || { echo "percall: $C_LOOP not built (make bench-percall builds it)" >&2; exit 2; }
mkdir -p "$out"
cd "$root" || exit 2
eval "$(make -s env)"
# BENCH_CPATH: a mediquo/core.so to try instead of the rock's (a scratch
# build with a change, for a profile); Lua 5.4 rows only
[ -n "${BENCH_CPATH:-}" ] && export LUA_CPATH="$BENCH_CPATH;$LUA_CPATH"

# Lua paths for the peers, which run on the Lua Debian builds them for.
# lua-http's own dependency lpeg_patterns is pure Lua shipped for 5.1 only,
# so Lua 5.3 gets the 5.1 share folder after its own.
PATH_53="/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
PATH_JIT="$root/lua/?.lua;$root/lua/?/init.lua;;"
CPATH_JIT="$root/build/luajit/?.so;;"

limdir=$(mktemp -d /dev/shm/mediquo-bench.XXXXXX 2>/dev/null || mktemp -d)
servers=()
cleanup() {
    for p in "${servers[@]}"; do "$here/server.sh" stop "$p"; done
    rm -rf "$limdir"
}
trap cleanup EXIT

free_port() {
    lua5.4 -e 'local s = require("socket").bind("127.0.0.1", 0); local _, p = s:getsockname(); s:close(); print(p)'
}

# name | label (for the table)
CONTENDERS="c_loop c_readcb c_transport mediquo mediquo_limiter mediquo_core mediquo_luajit luacurl lua_http luasocket"
label() {
    case $1 in
    c_loop) echo "\`c_loop\`: C, libcurl, one reused handle (the limit)" ;;
    c_readcb) echo "\`c_readcb\`: the same C loop, body through a read callback (as src/transport.c sent it before it switched to CURLOPT_POSTFIELDS)" ;;
    c_transport) echo "\`c_transport\`: the client's own transport (src/transport.c) in the same C loop, no Lua" ;;
    mediquo) echo "\`mediquo\`: **client:create**, Lua 5.4, rate_limit = false" ;;
    mediquo_limiter) echo "\`mediquo_limiter\`: client:create, Lua 5.4, shared limiter on" ;;
    mediquo_core) echo "\`mediquo_core\`: mediquo.core :create alone (no Lua method, no error wrapping)" ;;
    mediquo_luajit) echo "\`mediquo_luajit\`: client:create, LuaJIT 2.1, rate_limit = false" ;;
    luacurl) echo "\`luacurl\`: Debian lua-curl 0.3 (luacurl), Lua 5.1, reused handle" ;;
    lua_http) echo "\`lua_http\`: Debian lua-http 0.4, Lua 5.3, one kept connection" ;;
    luasocket) echo "\`luasocket\`: Debian LuaSocket 3 socket.http.request, Lua 5.4 (no keep-alive)" ;;
    esac
}

body=$(lua5.4 -e 'package.path = package.path .. ";'"$here"'/?.lua"
    print((require("mediquo.core").create_request(require("common").appointment)))')
[ -n "$body" ] || { echo "percall: could not build the request body" >&2; exit 1; }

# run_one CONTENDER BASE_URL PIN... -> "ok CALLS SECONDS"
run_one() {
    local c=$1 b=$2; shift 2
    case $c in
    c_loop) timeout 120 "$@" "$C_LOOP" "$b/appointments" "$body" "$N" "$CAP" ;;
    c_readcb) timeout 120 "$@" "$C_LOOP" "$b/appointments" "$body" "$N" "$CAP" readfunc ;;
    c_transport) timeout 120 "$@" "$C_TRANSPORT" "$b/appointments" "$body" "$N" "$CAP" ;;
    mediquo) timeout 120 "$@" lua5.4 "$here/mediquo_create.lua" "$b" "$N" "$CAP" nolimit ;;
    mediquo_limiter) MEDIQUO_BENCH_LIMDIR=$limdir timeout 120 "$@" lua5.4 "$here/mediquo_create.lua" "$b" "$N" "$CAP" limiter ;;
    mediquo_core) timeout 120 "$@" lua5.4 "$here/mediquo_create.lua" "$b" "$N" "$CAP" core ;;
    mediquo_luajit) LUA_PATH=$PATH_JIT LUA_CPATH=$CPATH_JIT timeout 120 "$@" luajit "$here/mediquo_create.lua" "$b" "$N" "$CAP" nolimit ;;
    luacurl) env -u LUA_PATH -u LUA_CPATH timeout 120 "$@" lua5.1 "$here/peer_luacurl.lua" "$b" "$N" "$CAP" ;;
    lua_http) LUA_PATH=$PATH_53 env -u LUA_CPATH timeout 120 "$@" lua5.3 "$here/peer_lua_http.lua" "$b" "$N" "$CAP" ;;
    luasocket) timeout 120 "$@" lua5.4 "$here/peer_luasocket.lua" "$b" "$N" "$CAP" ;;
    *) echo "unknown contender $c" >&2; return 2 ;;
    esac
}

# can this contender run here? (a peer whose package is missing is left
# out with a note rather than failing the whole group)
available() {
    case $1 in
    c_transport) [ -x "$C_TRANSPORT" ] ;;
    mediquo_luajit) [ -f "$root/build/luajit/mediquo/core.so" ] && command -v luajit >/dev/null \
                        && luajit -e 'require "cjson"; require "socket"' 2>/dev/null ;;
    luacurl) env -u LUA_PATH -u LUA_CPATH lua5.1 -e 'require "curl"; require "cjson"; require "socket"' 2>/dev/null ;;
    lua_http) LUA_PATH=$PATH_53 env -u LUA_CPATH lua5.3 -e 'require "http.client"; require "cjson"; require "socket"' 2>/dev/null ;;
    *) return 0 ;;
    esac
}

list="" skipped=""
for c in ${BENCH_ONLY:-$CONTENDERS}; do
    if available "$c"; then list="$list $c"; else skipped="$skipped $c"; fi
done
case " $list " in *" c_loop "*) ;; *) list="c_loop $list" ;; esac   # the baseline always runs
[ -n "$skipped" ] && echo "percall: not run (interpreter or package missing):$skipped"

declare -A base_of pin_of
for m in $MODES; do
    p=$(free_port)
    case $m in
    pinned) cpu=0; pin_of[$m]="taskset -c 0" ;;
    split) cpu=1; pin_of[$m]="taskset -c 0" ;;
    unpinned) cpu=""; pin_of[$m]="" ;;
    *) echo "percall: unknown mode $m" >&2; exit 2 ;;
    esac
    prefix="$out/nginx-$m"
    "$here/server.sh" start "$prefix" "$p" $cpu || exit 1
    servers+=("$prefix")
    base_of[$m]="http://127.0.0.1:$p/v1"
done

tsv="$out/percall.tsv"
printf 'mode\tcontender\tround\tcalls\tseconds\tpair\n' >"$tsv"

# one run, checked and recorded: record MODE CONTENDER ROUND PAIR
record() {
    local m=$1 c=$2 r=$3 pair=$4 line rc
    # shellcheck disable=SC2086
    line=$(run_one "$c" "${base_of[$m]}" ${pin_of[$m]})
    rc=$?
    set -- $line
    if [ "$rc" -ne 0 ] || [ "${1:-}" != ok ]; then
        echo "percall: $c ($m, round $r) failed (exit $rc): $line" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$c" "$r" "$2" "$3" "$pair" >>"$tsv"
}
# In these modes every contender runs right after a C loop of its own,
# and its ratio is to that run: load from elsewhere comes and goes within
# seconds on this shared machine, so the nearest baseline is the fairest.
PAIRED=" ${BENCH_PAIRED-pinned} "
echo "percall: N=$N per run, $RUNS rounds, modes: $MODES"
for r in $(seq 1 "$RUNS"); do
    # rotate the order each round
    set -- $list
    k=$(( (r - 1) % $# ))
    order="${*:$((k + 1))} ${*:1:$k}"
    for m in $MODES; do
        for c in $order; do
            case $PAIRED in
            *" $m "*) [ "$c" != c_loop ] && record "$m" c_loop "$r" "$c" ;;
            esac
            record "$m" "$c" "$r" -
        done
    done
    echo "percall: round $r of $RUNS done"
done

labels="$out/labels.tsv"
: >"$labels"
for c in $list; do printf '%s\t%s\n' "$c" "$(label "$c")" >>"$labels"; done
lua5.4 "$here/summarize.lua" "$tsv" "$labels" "$out"
rc=$?
if [ -n "$skipped" ]; then
    printf '\nNot run here (interpreter or package missing):%s.\n' "$skipped" >>"$out/percall.md"
fi
# 3: a claim is not met - written in percall.md; a failure only when asked
if [ "$rc" -eq 3 ] && [ "${BENCH_STRICT:-0}" != 1 ]; then rc=0; fi
exit "$rc"
