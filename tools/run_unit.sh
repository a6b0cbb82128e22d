#!/usr/bin/env bash
# Runs every unit-test binary given on the command line; fails if any fails.
set -uo pipefail
status=0
for t in "$@"; do
    echo "== ${t#build/}"
    "$t" --jobs 2 || status=1
done
exit $status
