#!/usr/bin/env bash
# bench/limiter.sh: builds bench/limiter.c against the limiter sources and
# runs it (cost per call from C, exact counts, accuracy under saturation).
# Called by `make bench-limiter`; bounded to 120 s.
#   CC, OPT        compiler and optimisation (cc, -O2)
#   BUILD          where the binary goes (./build)
#   BENCH_SECONDS  seconds per timed cost run (1)
#   BENCH_DIR      where the state files go (a fresh temp dir, removed after)
set -eu
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${OPT:=-O2}" "${BUILD:=$PWD/build}" "${BENCH_SECONDS:=1}"
mkdir -p "$BUILD"
$CC $OPT -Wall -Wextra -Werror -std=c99 -D_GNU_SOURCE -Isrc -o "$BUILD/bench-limiter" \
    bench/limiter.c src/limiter.c src/limiter_file.c src/limiter_opts.c src/shmfile.c src/shmguard.c -lpthread -lm
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mediquo-bench.XXXXXX")}
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$dir"' EXIT
echo "== bench-limiter: $(uname -m), $(nproc) CPUs, state files in $dir"
timeout 120 "$BUILD/bench-limiter" "$dir" "$BENCH_SECONDS"
