#!/usr/bin/env bash
# Fuzzes the crate-file decoder (decode, validate, encode round trip) with libFuzzer.
#
# Usage: scripts/fuzz-crate.sh [--runs N] [--jobs N] [EXTRA_SEED_DIR...]
#
# Builds Fuzz/CrateFile/main.swift with every file of Sources/KilnCode into one
# module (swiftc -sanitize=fuzzer), builds a release `kiln` and with it a crate
# file from every .ssa file of Tests/Conformance and of any directory given
# (files that do not compile are skipped), and runs the fuzzer on them. Each
# seed is stored twice, behind the harness's control byte 0 (decode as is) and
# 1 (reseal first): see the harness. The corpus it grows is kept in
# .build-fuzz-crate/corpus between runs; crashing inputs land in fuzz-out/.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs=10000000
jobs=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done

build="$root/.build-fuzz-crate"
binary="$build/fuzz-crate"
crates="$build/crates"
seeds="$build/seeds"
corpus="$build/corpus"
artifacts="$root/fuzz-out"
mkdir -p "$build" "$crates" "$seeds" "$corpus" "$artifacts"

# Rebuild when the harness or any source of KilnCode is newer than the binary.
sources=("$root/Fuzz/CrateFile/main.swift" "$root"/Sources/KilnCode/*.swift)
stale=0
[ -x "$binary" ] || stale=1
for file in "${sources[@]}"; do
    [ "$file" -nt "$binary" ] && stale=1
done
if [ "$stale" = 1 ]; then
    echo "building $binary"
    swiftc -O -sanitize=fuzzer -parse-as-library -module-name KilnFuzz \
        -module-cache-path "$build/module-cache" \
        "${sources[@]}" -o "$binary"
fi

# Seed corpus: crate files built now by a release kiln from whatever IL exists.
echo "building kiln (release)"
kiln="$root/.build-crate/release/kiln"
if ! (cd "$root" && swift build -c release --scratch-path .build-crate --product kiln >"$build/kiln-build.log" 2>&1); then
    # The tree may be mid-edit elsewhere; the last kiln still writes usable seeds.
    [ -x "$kiln" ] || { cat "$build/kiln-build.log" >&2; exit 1; }
    echo "warning: kiln does not build now (see $build/kiln-build.log); using the last one" >&2
fi
rm -f "$crates"/* "$seeds"/*
built=0
skipped=0
for directory in "$root/Tests/Conformance" "${extra[@]}"; do
    for file in "$directory"/*.ssa; do
        [ -f "$file" ] || continue
        name="$(basename "$directory")_$(basename "$file" .ssa)"
        if "$kiln" build "$file" -o "$crates/$name.kcrate" 2>/dev/null; then
            { printf '\000'; cat "$crates/$name.kcrate"; } > "$seeds/$name.0"
            { printf '\001'; cat "$crates/$name.kcrate"; } > "$seeds/$name.1"
            built=$((built + 1))
        else
            skipped=$((skipped + 1))
        fi
    done
done
echo "seeds: $built crate files ($skipped IL files did not compile)"

log="$build/fuzz.log"
if [ "$jobs" = 1 ]; then where="$log"; else where="$build/fuzz-N.log"; fi
echo "fuzzing: $runs runs, $jobs job(s); log in $where"
status=0
start=$(date +%s)
if [ "$jobs" = 1 ]; then
    SWIFT_BACKTRACE=enable=no "$binary" -runs="$runs" -max_len=262144 -timeout=5 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$seeds" 2>&1 | tee "$log" || status=$?
    total="$(grep -Eo '^Done [0-9]+ runs' "$log" | awk '{ sum += $2 } END { print sum + 0 }')"
else
    # Each job runs `runs / jobs` inputs and writes its own fuzz-N.log.
    rm -f "$build"/fuzz-*.log
    (cd "$build" && SWIFT_BACKTRACE=enable=no "$binary" -runs="$((runs / jobs))" -jobs="$jobs" -workers="$jobs" \
        -max_len=262144 -timeout=5 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$seeds") || status=$?
    total="$(cat "$build"/fuzz-*.log | grep -Eo '^Done [0-9]+ runs' | awk '{ sum += $2 } END { print sum + 0 }')"
fi
echo "total executions: $total"
echo "wall time: $(( $(date +%s) - start )) s"
if [ "$status" != 0 ]; then
    echo "the fuzzer stopped with a finding (status $status); see $artifacts" >&2
fi
exit "$status"
