#!/usr/bin/env bash
# `make test` after the builds: for each build directory given (build,
# build/san), the unit tests and then the integration tests against the local
# stack (real Kafka and PostgreSQL, brought up here if it is not running and
# brought down again), then the JSON Schema check of every message the tests
# captured. Ends with one line summing every run; exits non-zero on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
builds=("$@")
((${#builds[@]})) || builds=(build)

status=0
started_stack=0
# How long each part took, printed as it ends and listed again at the end.
timings=()
part=setup
part_start=$SECONDS
mark() {
    timings+=("$part $((SECONDS - part_start)) s")
    echo "---- $part: $((SECONDS - part_start)) s"
    part=$1
    part_start=$SECONDS
}
if ! deploy/local/stack.sh status >/dev/null 2>&1; then
    deploy/local/stack.sh up || exit 1
    started_stack=1
fi

# The callee-type corpus's small slice (tools/detect_corpus*.py: speech
# engines, recorded prompts, sox), made once per generator change.
for f in tools/detect_corpus*.py; do
    if [[ ! build/detect/small/manifest.tsv -nt $f ]]; then
        /usr/bin/python3 tools/detect_corpus.py build/detect/small --small || exit 1
        break
    fi
done

# Test logs and captured messages and responses (build/test-logs) are checked
# after all runs, so they start empty.
rm -rf build/test-logs

# The fault-injection soak (tests/soak), short, once, on a stack of its own
# (it restarts its own Kafka and PostgreSQL, never the tests'): the hard
# profile of make soak at 15 operations/s with small uploads (5,000 rows),
# every kind of fault once or more (it goes on past SOAK_SECONDS until each
# was done), then it waits for the work to settle (retries are 60 s apart
# at least). It
# mostly waits, so it runs beside the first build's tests, niced; its output
# is printed when it ended.
soak_out=$(mktemp)
# Interrupted, the soak is stopped (SIGTERM: it stops what it started).
stop_soak() {
    if kill -0 "$soak_pid" 2>/dev/null; then
        pkill -TERM -P "$soak_pid"
        wait "$soak_pid"
    fi
    rm -f "$log" "$soak_out" "$soak_out.rc"
}
trap stop_soak EXIT
(
    soak_start=$SECONDS
    BUILD=${builds[0]} SOAK_SECONDS=${SOAK_TEST_SECONDS:-60} \
        SOAK_FAULT_EVERY_S=${SOAK_TEST_FAULT_EVERY_S:-10} SOAK_RATE=${SOAK_TEST_RATE:-15} \
        SOAK_BIG_ROWS=5000 SOAK_BIG_EVERY_S=30 SOAK_KILL_ROWS=3000 SOAK_KILL_SEND_S=4 \
        SOAK_QUEUE_CANCEL_EVERY_S=15 SOAK_EXPIRES_S=60 SOAK_SETTLE_S=300 \
        nice /usr/bin/python3 tests/soak/soak.py >"$soak_out" 2>&1
    echo $? >"$soak_out.rc"
    echo "---- soak (beside the tests): $((SECONDS - soak_start)) s" >>"$soak_out"
) &
soak_pid=$!

for build in "${builds[@]}"; do
    mark "tests of $build"
    echo "==== tests of $build"
    # The sanitizer run repeats the large upload with fewer rows.
    if [[ $build == */san ]]; then export OB_TEST_UPLOAD_ROWS=200000; else unset OB_TEST_UPLOAD_ROWS; fi
    mapfile -t unit < <(find "$build/tests/unit" -type f -perm -u+x | sort)
    mapfile -t integ < <(find "$build/tests/integration" -type f -perm -u+x | sort)
    # Two unit binaries at a time too, the slowest (it waits on real calls)
    # first; each one's output printed whole when it ends.
    slow_unit=() other_unit=()
    for t in "${unit[@]}"; do
        case $t in
        */test_dialer_sip_media | */test_dialer_sip | */test_ingest_csv) slow_unit+=("$t") ;;
        *) other_unit+=("$t") ;;
        esac
    done
    printf '%s\n' "${slow_unit[@]}" "${other_unit[@]}" | xargs -P 2 -I{} sh -c \
        'out=$(tools/run_unit.sh {} 2>&1); rc=$?; printf "%s\n" "$out"; exit $rc' \
        2>&1 | tee -a "$log" || status=1
    # Callee-type detection on the small slice of the corpus: the harness runs
    # and a sanity set of targets holds (the issue's targets are make
    # eval-detect's report on the full corpus's test split).
    "$build/tests/detect/eval_detect" build/detect/small --targets sanity 2>&1 | tee -a "$log" ||
        status=1
    # Two binaries at a time (as make check runs them), the crash-and-retry
    # test first and alone. The slowest of the rest first, so that the two
    # lanes end together.
    crash=() slow=() rest=()
    for t in "${integ[@]}"; do
        case $t in
        */test_crash_retry) crash+=("$t") ;;
        */test_sip | */test_failover | */test_windows | */test_security | */test_app | \
            */test_uploads | */test_capacity) slow+=("$t") ;;
        *) rest+=("$t") ;;
        esac
    done
    rest=("${slow[@]}" "${rest[@]}")
    BUILD=$build tools/run_integration.sh "${crash[@]}" 2>&1 | tee -a "$log" || status=1
    printf '%s\n' "${rest[@]}" | BUILD=$build xargs -P 2 -I{} sh -c \
        'out=$(tools/run_integration.sh {} 2>&1); rc=$?; printf "%s\n" "$out"; exit $rc' \
        2>&1 | tee -a "$log" || status=1
done

mark "soak (what was left of it)"
wait "$soak_pid"
tee -a "$log" <"$soak_out"
[[ $(cat "$soak_out.rc" 2>/dev/null) == 0 ]] || status=1

# The web console in headless chromium, once, against the normal build.
mark browser
tools/run_browser.sh "${builds[0]}" 2>&1 | tee -a "$log" || status=1
# The container files: compose schema, dashboards and alerts against the
# metrics the services export (scraped live, so while the stack is up).
mark "deploy check"
BUILD=${builds[0]} /usr/bin/python3 tools/check_deploy.py 2>&1 | tee -a "$log" || status=1
# The API against its OpenAPI document with generated requests (schemathesis).
mark "api check"
BUILD=${builds[0]} /usr/bin/python3 tools/check_api.py 2>&1 | tee -a "$log" || status=1
# A client written from Plum's outbound documentation (tests/plum), end to
# end through the Plum routes: codes, Link, errors, bulk_queue, result_url.
mark "plum client"
BUILD=${builds[0]} /usr/bin/python3 tests/plum/plum_client.py 2>&1 | tee -a "$log" || status=1

if ((started_stack)); then
    deploy/local/stack.sh down || status=1
fi

# Every message the integration tests captured must match its schema, and
# every HTTP answer they got must match the OpenAPI document.
mark "schema, openapi and k8s checks"
/usr/bin/python3 tools/check_schemas.py 2>&1 | tee -a "$log" || status=1
/usr/bin/python3 tools/check_openapi.py 2>&1 | tee -a "$log" || status=1
# The Kubernetes manifests (deploy/k8s), statically: no cluster needed.
/usr/bin/python3 tools/check_deploy_k8s.py 2>&1 | tee -a "$log" || status=1
/usr/bin/python3 tools/check_docs.py 2>&1 | tee -a "$log" || status=1 # links, OB_* settings (docs/testing.md)
# The settings reference of docs/configuration.md against the services' tables.
/usr/bin/python3 tools/config_reference.py "${builds[0]}" 2>&1 | tee -a "$log" || status=1
# The vocabulary (common/domain/ob_vocab.h) against the SQL, schemas, OpenAPI and console.
/usr/bin/python3 tools/check_vocab.py 2>&1 | tee -a "$log" || status=1
# The C layers include only downwards: common/infra, proto, common/domain, services.
/usr/bin/python3 tools/check_layers.py 2>&1 | tee -a "$log" || status=1
# The benchmark harness with small sizes, on a stack of its own: that every
# stage and its limit were measured, not how fast (bench/all.sh --quick).
mark bench-quick
bench/all.sh --quick 2>&1 | tee -a "$log" || status=1
# The libFuzzer targets (build/fuzz, built by make test): each replays its
# checked-in corpus, which holds every input that once crashed it, then
# fuzzes for 5 s. `make fuzz` is the long run.
mark fuzz
FUZZ_SECONDS=5 tools/fuzz.sh build/fuzz 2>&1 | tee -a "$log" || status=1

mark end
printf 'took: %s\n' "${timings[@]}"

# Criterion prints "Synthesis: Tested: N | Passing: P | Failing: F | Crashing: C";
# the schema check prints "schemas: P passed, F failed" (and the browser
# tests "browser: P passed, F failed", the manifest check "k8s: ...", the
# container checks "deploy: ...", the Plum client "plum: ...", the benchmark
# harness "bench-quick: ...", the fuzz targets "fuzz: ...", the soak
# "soak: ..." with one per invariant, the docs check "docs: ...").
read -r passed failed < <(
    {
        sed -n 's/.*Synthesis: Tested: [0-9]* | Passing: \([0-9]*\) | Failing: \([0-9]*\).*/\1 \2/p' "$log"
        sed -n 's/^\(schemas\|openapi\|browser\|k8s\|deploy\|api\|plum\|detect\|bench-quick\|fuzz\|soak\|docs\): \([0-9]*\) passed, \([0-9]*\) failed$/\2 \3/p' "$log"
    } | awk '{p += $1; f += $2} END {print p + 0, f + 0}'
)
((failed == 0)) || status=1
if ((passed == 0)); then
    echo "no test ran" >&2
    status=1
fi
# What failed, named again at the very end (CI shows a log's tail only).
if ((status)); then
    echo "what failed:"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -E '\[FAIL\]|^FAIL|FAILED|: FAIL|^failed|^no test ran' |
        cut -c1-300 | head -40
fi
echo "total: $passed passed, $failed failed"
exit $status
