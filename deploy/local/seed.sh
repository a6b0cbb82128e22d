#!/usr/bin/env bash
# Creates the demo tenant of the local stack (account demo@example.com, the
# application "demo" and its deployment "demo-outbound" with capacity 10) and
# its API key, kept in $OB_LOCAL_STATE/demo-api-key so every `make run` shows
# the same one. Idempotent. Prints the key.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=lib.sh
. "$root/deploy/local/lib.sh"
export OB_SELF=seed

key_file=$OB_LOCAL_STATE/demo-api-key
# A key in the API's format (obk_ and 40 hex digits); an older demo key in
# another format is replaced (the row below takes the new hash).
if ! grep -qxE 'obk_[0-9a-f]{40}' "$key_file" 2>/dev/null; then
	umask 077
	printf 'obk_%s\n' "$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')" >"$key_file"
fi
key=$(<"$key_file")

# The tables exist once a service has started (services apply the migrations).
psql "$OB_LOCAL_PG_DSN" -v ON_ERROR_STOP=1 -qAt -v key="$key" >/dev/null <<'SQL'
INSERT INTO accounts (account_id, email, name)
VALUES ('00000000-0000-7000-8000-00000000d001', 'demo@example.com', 'Demo account')
ON CONFLICT DO NOTHING;
INSERT INTO applications (application_id, account_id, name)
VALUES ('00000000-0000-7000-8000-00000000d002', '00000000-0000-7000-8000-00000000d001', 'demo')
ON CONFLICT DO NOTHING;
INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
VALUES ('00000000-0000-7000-8000-00000000d003', '00000000-0000-7000-8000-00000000d002',
        '00000000-0000-7000-8000-00000000d001', 'demo-outbound', 10)
ON CONFLICT DO NOTHING;
INSERT INTO api_keys (key_id, account_id, key_hash, key_prefix, label)
VALUES ('00000000-0000-7000-8000-00000000d004', '00000000-0000-7000-8000-00000000d001',
        encode(sha256(convert_to(:'key', 'UTF8')), 'hex'), left(:'key', 12), 'demo key')
ON CONFLICT (key_id) DO UPDATE SET key_hash = EXCLUDED.key_hash, key_prefix = EXCLUDED.key_prefix;
SQL
printf '%s\n' "$key"
