#!/usr/bin/env bash
# Browser tests of the web console (tests/browser/*.test.mjs): headless Debian
# chromium driven by playwright-core, against an ingest, a scheduler and a
# dialer started from BUILD/bin on free ports by deploy/local/stacklib.py,
# with their own topic prefix and Postgres schema on the local stack (which
# must be up), the sim carrier sped up. Screenshots go to
# $OB_BROWSER_SCREENSHOTS (default build/test-logs/screenshots;
# docs/screenshots holds the committed ones).
# Ends with "browser: N passed, M failed". Usage: tools/run_browser.sh [BUILD]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${1:-${BUILD:-build}}
logs=$root/build/test-logs
mkdir -p "$logs"

fail() {
    echo "browser: $*" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
}
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium is missing (deploy/local/deps.sh installs it)"
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    (cd tests/browser && npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/browser failed"
fi

admin_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# The services (their own topic prefix and schema, free ports, logs in
# build/test-logs/browser) by deploy/local/stacklib.py, which starts them,
# runs node beside them with OB_BROWSER_URL set to ingest's URL, then stops
# them with SIGTERM: an unclean exit, like a failed test, fails the run.
out=$logs/browser-tap.txt
status=0
OB_SELF=browser OB_BROWSER_ADMIN_KEY="$admin_key" \
    OB_BROWSER_SCREENSHOTS="${OB_BROWSER_SCREENSHOTS:-$logs/screenshots}" \
    BUILD=$build /usr/bin/python3 deploy/local/stacklib.py isolated ingest,scheduler,dialer \
    --tag browser --env OB_INGEST_ADMIN_KEY="$admin_key" \
    --env OB_SIM_TIME_SCALE="${OB_BROWSER_SIM_TIME_SCALE:-40}" \
    --env OB_DIALER_URL_ALLOW=127.0.0.0/8,::1 --url-env ingest=OB_BROWSER_URL -- \
    node --test --test-reporter=tap tests/browser/*.test.mjs 2>&1 | tee "$out"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
((status == 0)) || ((${failed:-0} > 0)) || failed=1
echo "browser: ${passed:-0} passed, ${failed:-1} failed"
exit $status
