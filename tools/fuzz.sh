#!/usr/bin/env bash
# Runs every libFuzzer target built in the given directory (build/fuzz) for
# FUZZ_SECONDS each, one at a time under nice: first the checked-in corpus
# (tests/fuzz/corpus/<name>, replayed in full at start), then new inputs,
# which go to <dir>/corpus/<name> so the checked-in one stays small. A crash,
# leak or sanitizer report fails the target and leaves its input in
# <dir>/artifacts/<name>/; add it to the corpus and a unit test once fixed.
# Prints the executions per target and "fuzz: P passed, F failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
dir=${1:-build/fuzz}
seconds=${FUZZ_SECONDS:-600}

mapfile -t targets < <(find "$dir" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
if ((${#targets[@]} == 0)); then
    echo "fuzz: no targets in $dir (make fuzz-build)" >&2
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
passed=0
failed=0
for bin in "${targets[@]}"; do
    name=${bin##*/fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=$dir/corpus/$name
    art=$dir/artifacts/$name
    log=$dir/logs/$name.log
    mkdir -p "$work" "$art" "$dir/logs"
    [[ -d $seeds ]] || mkdir -p "$seeds"
    started=$(date +%s)
    # -timeout: one input taking seconds is a bug (a hang) too.
    nice -n 10 "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - started))
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "fuzz $name: ok, ${execs:-?} executions in ${took} s"
    else
        failed=$((failed + 1))
        echo "fuzz $name: FAILED (exit $rc) after ${execs:-?} executions in ${took} s; log $log"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|assertion|artifact_prefix|Test unit written)' \
            "$log" | head -n 8 | sed 's/^/    /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
