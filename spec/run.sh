#!/usr/bin/env bash
# spec/run.sh: runs every spec suite (busted, TAP output) and ends with one
# line "N passed, N failed" summing all of them. Called by `make test`.
#   SUITES   which suites to run (default: "cunit lua54 luajit")
#   BUSTED_ARGS  extra busted arguments (e.g. --filter=...)
set -u
cd "$(dirname "$0")/.." || exit 2
root=$PWD
eval "$(make -s env)"
# the test build (-DMQ_TESTING: the limiter's test hooks), which the specs
# that use a hook load in their children (spec/helper.lua H.hooks_env)
make -s --no-print-directory test-build >/dev/null || { echo "make test-build failed" >&2; exit 2; }
export MEDIQUO_TEST_PIDS
MEDIQUO_TEST_PIDS=$(mktemp "${TMPDIR:-/tmp}/mediquo-test-pids.XXXXXX")
logdir=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-test-logs.XXXXXX")

# limiter/metrics state files that exist before the run are not ours to
# remove; the ones the specs make in the default dir are
shm_before=$(ls /dev/shm/mediquo-*.shm 2>/dev/null | sort)

cleanup() {
    # stop every sandbox a spec left running (specs stop their own; this is
    # the net under a spec that died)
    if [ -s "$MEDIQUO_TEST_PIDS" ]; then
        sort -u "$MEDIQUO_TEST_PIDS" | while read -r prefix; do
            [ -n "$prefix" ] && bin/mediquo-sandbox stop --prefix "$prefix" >/dev/null 2>&1
        done
    fi
    rm -f "$MEDIQUO_TEST_PIDS"
    comm -13 <(printf '%s\n' "$shm_before") <(ls /dev/shm/mediquo-*.shm 2>/dev/null | sort) \
        | while read -r f; do [ -n "$f" ] && rm -f "$f"; done
}
trap cleanup EXIT

passed=0
failed=0
skipped=0

# run_suite NAME CMD... : runs a busted command, counts TAP lines
run_suite() {
    local name=$1; shift
    local out="$logdir/$name.tap"
    echo "== suite $name: $*"
    t_suite=$SECONDS
    "$@" -o TAP ${BUSTED_ARGS:-} >"$out" 2>&1
    local rc=$?
    local p f k
    k=$(grep -c '^ok .*# SKIP' "$out")      # pending specs: not a pass
    p=$(( $(grep -c '^ok ' "$out") - k ))
    f=$(grep -c '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # busted itself failed (a spec file did not load, a crash)
        tail -n 40 "$out"
    fi
    grep -A 25 '^not ok ' "$out" | head -n 200
    echo "-- $name: $p passed, $f failed, $k skipped"
    echo "   ($name took $((SECONDS - t_suite)) s)"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
}

specs() { ls spec/[0-9]*_spec.lua 2>/dev/null | grep -E "$1" ; }

for suite in ${SUITES:-cunit lua54 luajit}; do
    case $suite in
    cunit)
        # the C parsers' table-driven tests (test/test_parsers.c)
        echo "== suite cunit: make test-parsers"
        out="$logdir/cunit.log"
        make -s --no-print-directory test-parsers >"$out" 2>&1
        rc=$?
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        if [ -z "$line" ]; then p=0; f=1; tail -n 20 "$out"; fi
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        grep -i 'fail' "$out" | grep -v ' 0 failed' | head -n 20
        echo "-- cunit: $p passed, $f failed"
        passed=$((passed + p)); failed=$((failed + f))
        ;;
    lua54)
        # shellcheck disable=SC2046
        run_suite lua54 lua5.4 /usr/bin/busted $(specs '.')
        ;;
    luajit)
        # the C core built against LuaJIT, from the same sources; specs that
        # need no nginx and no Lua 5.4-only feature (files listed in
        # spec/luajit.list)
        if [ -f spec/luajit.list ]; then
            LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" \
            LUA_CPATH="$root/build/luajit/?.so;;" \
            MEDIQUO_LUA=luajit \
            run_suite luajit luajit /usr/bin/busted $(grep -v '^#' spec/luajit.list)
        fi
        ;;
    lua53|lua51)
        # the specs that need no nginx (spec/unit.list), on older Luas:
        # the rock built for that version by `make test-all`
        v=${suite#lua}; v="${v:0:1}.${v:1}"
        LUA_PATH="$root/.rocks-$v/share/lua/$v/?.lua;$root/lua/?.lua;;" \
        LUA_CPATH="$root/.rocks-$v/lib/lua/$v/?.so;;" \
        MEDIQUO_LUA=lua$v \
        run_suite "$suite" "lua$v" /usr/bin/busted $(grep -v '^#' spec/unit.list)
        ;;
    esac
done

echo "logs: $logdir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
