#!/bin/sh
# Compiles and runs reload_bench.erl: Erlang's code:load_binary/3 + code:soft_purge/1
# latency, the peer for Kiln's hot reload. Needs erlang-base (apt-get install -y erlang-base).
# Usage: Benchmarks/reload/erlang/run.sh [SMALL_ITERATIONS BIG_ITERATIONS]   (default 1000 500)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v erlc >/dev/null || { echo "erlc not found: apt-get install -y erlang-base" >&2; exit 1; }
out=$(mktemp -d /tmp/reload-erlang.XXXXXX)
trap 'rm -rf "$out"' EXIT
erlc -o "$out" "$here/reload_bench.erl"
erl -noshell -pa "$out" -s reload_bench main "$@" -s init stop
