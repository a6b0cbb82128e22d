#!/usr/bin/env bash
# Runs the integration-test binaries against the local stack, which must be
# up (make test brings it up). Each test starts its own services.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../deploy/local/env.sh
. "$root/deploy/local/env.sh"
export OB_TEST_KAFKA=${OB_TEST_KAFKA:-$OB_LOCAL_KAFKA_BOOTSTRAP}
export OB_TEST_PG_DSN=${OB_TEST_PG_DSN:-$OB_LOCAL_PG_DSN}
export OB_TEST_BIN_DIR=${OB_TEST_BIN_DIR:-$root/${BUILD:-build}/bin}
# Under the sanitizer build, leaks are checked in the services (the harness
# turns detection on for them), not in the test processes themselves.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
status=0
for t in "$@"; do
    echo "== ${t#*/tests/}"
    started=$SECONDS
    "$t" --jobs 2 || status=1
    echo "== ${t#*/tests/}: $((SECONDS - started)) s"
done
exit $status
