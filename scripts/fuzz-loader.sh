#!/usr/bin/env bash
# Fuzzes the whole crate-file loading path (decode, validate, load, unload) with
# kiln-fuzz, a mutation fuzzer seeded from IL files compiled to crate files.
#
# Usage: scripts/fuzz-loader.sh [--runs N] [--seed N] [EXTRA_IL_OR_CRATE_FILES...]
#
# Seeds: every .ssa file of Tests/Conformance and Benchmarks/programs, plus the
# files given (QBE's test/*.ssa, say). A finding stops the run with a message
# and exit status 1. The decoder alone is fuzzed with coverage guidance by
# scripts/fuzz-crate.sh (libFuzzer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs|--seed) options+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
cd "$root"
swift build -c release --product kiln-fuzz
exec .build/release/kiln-fuzz "${options[@]}" Tests/Conformance/*.ssa Benchmarks/programs/*.ssa "$@"
