#!/usr/bin/env bash
# Fuzzes the IL front end (parse, verify, print round trip) with libFuzzer.
#
# Usage: scripts/fuzz-frontend.sh [--runs N] [--jobs N] [EXTRA_SEED_DIR...]
#
# Builds Fuzz/FrontEnd/main.swift with every file of Sources/KilnIL into one
# module (swiftc -sanitize=fuzzer), makes a seed corpus from the test inputs
# (every .ssa file, and every case of a .txt file split at lines starting with
# '###') plus the .ssa files of any directory given, and runs the fuzzer.
# The corpus it grows is kept in .build-fuzz/corpus between runs; crashing
# inputs land in fuzz-out/. Both directories are ignored by git.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs=10000000
jobs=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done

build="$root/.build-fuzz"
binary="$build/fuzz-frontend"
seeds="$build/seeds"
corpus="$build/corpus"
artifacts="$root/fuzz-out"
mkdir -p "$build" "$seeds" "$corpus" "$artifacts"

# Rebuild when the harness or any front-end source is newer than the binary.
sources=("$root/Fuzz/FrontEnd/main.swift" "$root"/Sources/KilnIL/*.swift)
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

# Seed corpus, rebuilt every run from whatever inputs exist now.
rm -f "$seeds"/*
count=0
add_seed() { cp "$1" "$seeds/$2"; count=$((count + 1)); }
inputs="$root/Tests/KilnILTests/Inputs"
if [ -d "$inputs" ]; then
    while IFS= read -r -d '' file; do
        add_seed "$file" "$(echo "${file#$inputs/}" | tr '/' '_')"
    done < <(find "$inputs" -type f -name '*.ssa' -print0)
    while IFS= read -r -d '' file; do
        stem="$(echo "${file#$inputs/}" | tr '/' '_')"
        # One seed per case: a line starting with ### begins a new one.
        awk -v out="$seeds/$stem" '
            /^###/ { case_number++; next }
            { print > (out "." case_number ".case") }
        ' "$file"
        count=$((count + $(ls "$seeds" | grep -c "^$stem\." || true)))
    done < <(find "$inputs" -type f -name '*.txt' -print0)
fi
for directory in "${extra[@]}"; do
    for file in "$directory"/*.ssa; do
        [ -f "$file" ] && add_seed "$file" "extra_$(basename "$file")"
    done
done
echo "seeds: $count files"

log="$build/fuzz.log"
if [ "$jobs" = 1 ]; then where="$log"; else where="$build/fuzz-N.log"; fi
echo "fuzzing: $runs runs, $jobs job(s); log in $where"
status=0
if [ "$jobs" = 1 ]; then
    SWIFT_BACKTRACE=enable=no "$binary" -runs="$runs" -max_len=4096 -timeout=5 -rss_limit_mb=2048 \
        -dict="$root/Fuzz/FrontEnd/il.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        "$corpus" "$seeds" 2>&1 | tee "$log" || status=$?
    total="$(grep -Eo '^Done [0-9]+ runs' "$log" | awk '{ sum += $2 } END { print sum + 0 }')"
else
    # Each job runs `runs / jobs` inputs and writes its own fuzz-N.log.
    rm -f "$build"/fuzz-*.log
    (cd "$build" && SWIFT_BACKTRACE=enable=no "$binary" -runs="$((runs / jobs))" -jobs="$jobs" -workers="$jobs" \
        -max_len=4096 -timeout=5 -rss_limit_mb=2048 -dict="$root/Fuzz/FrontEnd/il.dict" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$seeds") || status=$?
    total="$(cat "$build"/fuzz-*.log | grep -Eo '^Done [0-9]+ runs' | awk '{ sum += $2 } END { print sum + 0 }')"
fi
echo "total executions: $total"
if [ "$status" != 0 ]; then
    echo "the fuzzer stopped with a finding (status $status); see $artifacts" >&2
fi
exit "$status"
