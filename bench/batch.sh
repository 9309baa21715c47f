#!/usr/bin/env bash
# bench/batch.sh: batch concurrency and limiter-paced import figures
# (bench/batch/run.lua says what is measured). `make bench-batch`.
#   RUNS N C LATENCY M P T  see bench/batch/run.lua
set -eu
cd "$(dirname "$0")/.."
eval "$(make -s env)"
exec lua5.4 bench/batch/run.lua
