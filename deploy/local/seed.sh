#!/usr/bin/env bash
# Creates the demo tenant of the local stack (account demo@example.com, the
# application "demo" and its deployment "demo-outbound" with capacity 10) and
# its API key, kept in $OB_LOCAL_STATE/demo-api-key so every `make run` shows
# the same one. Idempotent. Prints the key. The work is
# deploy/local/stacklib.py's (seed_demo).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export OB_SELF=seed
exec /usr/bin/python3 "$root/deploy/local/stacklib.py" seed
