#!/bin/sh
# fuzz/run.sh: run built libFuzzer harnesses for a fixed time, JOBS at once,
# then print one summary line each and fail if any found a crash.
#   sh fuzz/run.sh BUILD_FUZZ_DIR SECONDS JOBS NAME...
# Each NAME runs $DIR/fuzz_NAME on $DIR/corpus-NAME, a working corpus seeded
# from fuzz/corpus/NAME (the committed seeds stay small; the working corpus
# grows across runs until `make clean`). Crashes land in
# $DIR/artifacts-NAME/; the full log is $DIR/NAME.log. FUZZ_ARGS is passed
# to every harness (e.g. FUZZ_ARGS=-max_len=64).
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = --one ]; then
    dir=$2 secs=$3 name=$4
    corp=$dir/corpus-$name art=$dir/artifacts-$name log=$dir/$name.log
    mkdir -p "$corp" "$art"
    rm -f "$dir/$name.summary"
    [ -d "$here/corpus/$name" ] && cp -n "$here/corpus/$name"/* "$corp"/ 2>/dev/null
    dict=
    [ -f "$here/$name.dict" ] && dict=-dict=$here/$name.dict
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$dir/fuzz_$name" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$art/" $dict ${FUZZ_ARGS:-} "$corp" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corpn=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        status=ok
    else
        status="FAILED (exit $rc; artifacts: $(ls "$art" | tr '\n' ' ')log: $log)"
    fi
    printf 'fuzz %-15s %5ss %12s execs %8s/s  cov: %-5s ft: %-6s corp: %-10s %s\n' \
        "$name" "$took" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corpn:-?}" \
        "$status" >"$dir/$name.summary"
    exit 0
fi

dir=$1 secs=$2 jobs=$3
shift 3
[ $# -gt 0 ] || { echo "fuzz: no harness to run" >&2; exit 1; }
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh "$0" --one "$dir" "$secs" {}
fail=0
for name in "$@"; do
    if [ -f "$dir/$name.summary" ]; then
        cat "$dir/$name.summary"
        grep -q ' ok$' "$dir/$name.summary" || fail=1
    else
        echo "fuzz $name: did not run"; fail=1
    fi
done
exit $fail
