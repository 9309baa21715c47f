#!/usr/bin/env bash
# examples/demo.sh (make demo): start a sandbox, run the quickstart against
# it, stop the sandbox - whatever happens in between.
set -u
cd "$(dirname "$0")/.." || exit 1
eval "$(make -s env 2>/dev/null)"   # (its note about plain `lua` is for people)
port=${DEMO_PORT:-8089}
prefix=$(mktemp -d "${TMPDIR:-/tmp}/mediquo-demo.XXXXXX")
trap 'bin/mediquo-sandbox stop --prefix "$prefix" >/dev/null 2>&1; rm -rf "$prefix"' EXIT
echo "== starting the sandbox"
base=$(bin/mediquo-sandbox start --port "$port" --prefix "$prefix") || exit 1
base=$(printf '%s\n' "$base" | head -n 1)
echo "   $base"
echo "== examples/quickstart.lua"
export MEDIQUO_BASE_URL=$base MEDIQUO_API_KEY=sandbox-key MEDIQUO_SECRET_KEY=sandbox-secret
lua5.4 examples/quickstart.lua
rc=$?
echo "== stopping the sandbox"
exit $rc
