#!/usr/bin/env bash
# Browser tests of the web console (tests/browser/*.test.mjs): headless Debian
# chromium driven by playwright-core, against an ingest, a scheduler and a
# dialer started here from BUILD/bin on free ports, with their own topic
# prefix and Postgres schema on the local stack (which must be up), the sim
# carrier sped up. Screenshots go to $OB_BROWSER_SCREENSHOTS (default
# build/test-logs/screenshots; docs/screenshots holds the committed ones).
# Ends with "browser: N passed, M failed". Usage: tools/run_browser.sh [BUILD]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=../deploy/local/env.sh
. "$root/deploy/local/env.sh"
build=${1:-${BUILD:-build}}
bin=$root/$build/bin
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

prefix=b$(date +%s)$$
dsn="$OB_LOCAL_PG_DSN?options=-csearch_path%3D$prefix"
psql "$OB_LOCAL_PG_DSN" -qAtc "CREATE SCHEMA $prefix" >/dev/null || fail "cannot create schema $prefix"
admin_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
mapfile -t ports < <(/usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()')

pids=()
names=()
start() {
    local svc=$1 port=$2
    env OB_HTTP_PORT="$port" OB_TOPIC_PREFIX="$prefix." OB_TOPIC_PARTITIONS=2 \
        OB_KAFKA_BOOTSTRAP_SERVERS="$OB_LOCAL_KAFKA_BOOTSTRAP" OB_PG_DSN="$dsn" \
        OB_INSTANCE_ID="$prefix-$svc" OB_INGEST_ADMIN_KEY="$admin_key" \
        OB_SIM_TIME_SCALE="${OB_BROWSER_SIM_TIME_SCALE:-40}" \
        OB_DIALER_URL_ALLOW=127.0.0.0/8,::1 \
        "$bin/outbound-$svc" </dev/null >"$logs/$prefix-$svc.log" 2>&1 &
    pids+=($!)
    names+=("$svc")
}

# SIGTERM each service, front door first; an unclean exit fails the run.
stop_all() {
    local i rc
    for i in "${!pids[@]}"; do
        kill -TERM "${pids[$i]}" 2>/dev/null
        wait "${pids[$i]}"
        rc=$?
        if ((rc != 0)); then
            echo "browser: ${names[$i]} exited $rc on SIGTERM (log $logs/$prefix-${names[$i]}.log)" >&2
            status=1
        fi
    done
    pids=()
    psql "$OB_LOCAL_PG_DSN" -qAtc "DROP SCHEMA $prefix CASCADE" >/dev/null 2>&1
}
status=0
trap stop_all EXIT

start ingest "${ports[0]}"
start scheduler "${ports[1]}"
start dialer "${ports[2]}"
for i in 0 1 2; do
    deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null "http://127.0.0.1:${ports[$i]}/readyz" 2>/dev/null; do
        kill -0 "${pids[$i]}" 2>/dev/null || fail "${names[$i]} exited; log $logs/$prefix-${names[$i]}.log"
        ((SECONDS < deadline)) || fail "${names[$i]} not ready in 60 s"
        sleep 0.2
    done
done

out=$logs/browser-tap.txt
OB_BROWSER_URL="http://127.0.0.1:${ports[0]}" OB_BROWSER_ADMIN_KEY="$admin_key" \
    OB_BROWSER_SCREENSHOTS="${OB_BROWSER_SCREENSHOTS:-$logs/screenshots}" \
    node --test --test-reporter=tap tests/browser/*.test.mjs 2>&1 | tee "$out"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
stop_all
trap - EXIT
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
((status == 0)) || ((${failed:-0} > 0)) || failed=1
echo "browser: ${passed:-0} passed, ${failed:-1} failed"
exit $status
