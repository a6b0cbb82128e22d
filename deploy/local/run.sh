#!/usr/bin/env bash
# `make run`: brings up Kafka, PostgreSQL, ingest, the scheduler and two
# dialers, creates the demo tenant, prints where to look, and on Ctrl-C stops
# everything it started (services drained by SIGTERM, then the stack).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=lib.sh
. "$root/deploy/local/lib.sh"
export OB_SELF=run
here=$root/deploy/local

stop_all() {
	trap - INT TERM EXIT
	echo
	ob_say "stopping"
	local rc=0
	"$here/services.sh" stop || rc=1
	"$here/stack.sh" down || rc=1
	exit "$rc"
}
trap stop_all INT TERM EXIT

"$here/stack.sh" up
# The sim dialers play generated recordings to the callee-type detector, so
# the demo's answered calls are classified by what they sound like.
corpus=$root/build/detect/small
if [[ ! -s $corpus/manifest.tsv ]]; then
	ob_say "generating the callee-type corpus (espeak-ng, sox)"
	/usr/bin/python3 "$root/tools/detect_corpus.py" "$corpus" --small >/dev/null
fi
export OB_SIM_AUDIO_DIR=${OB_SIM_AUDIO_DIR:-$corpus}
"$here/services.sh" start
key=$("$here/seed.sh")
api=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
deployment=00000000-0000-7000-8000-00000000d003

cat <<EOT

  outbound is running.

  Web console    $api/   (sign in with the demo API key below; Queue Calls uploads a CSV)
  API            $api/api/v1
  Health         $api/healthz   $api/readyz   $api/metrics
  Demo API key   $key
  Admin key      $(<"$OB_LOCAL_STATE/admin-key")  (creates accounts: POST /api/v1/accounts)
  Deployment     $deployment  (demo-outbound, capacity 10)
  Logs           $OB_LOCAL_LOGS/{ingest,scheduler,dialer-1,dialer-2,kafka,postgres}.log

  Queue a call (+1 212 555 0100 is the sim carrier's "a person answers" number):

    curl -sS -X POST $api/api/v1/deployments/$deployment/calls \\
      -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
      -d '{"phone_number": "+12125550100", "message_reference": "hello"}'

  Then follow it (the call takes about half a minute at real-time speed):

    curl -sS $api/api/v1/calls/CALL_ID -H 'Authorization: Bearer $key'

  Or with the command-line client:

    build/bin/outboundctl configure --url $api --key $key
    build/bin/outboundctl call queue $deployment +12125550100 --reference hello
    build/bin/outboundctl calls watch $deployment

  A call that speaks and listens (+1 212 555 0212 presses 1, 2, #; docs/application.md):

    build/bin/outboundctl call queue $deployment +12125550212 --app - <<'JSON'
    [{"verb": "say", "text": "Hello! Your parcel arrives tomorrow."},
     {"verb": "gather", "finish_on_key": "#", "prompt": [{"verb": "say", "text": "Enter your code, then the pound key."}]}]
    JSON
    build/bin/outboundctl call show CALL_ID     # the verbs it ran and the digits gathered

  Ctrl-C stops everything.

EOT

# Stay in the foreground while the services run.
while "$here/services.sh" status >/dev/null; do sleep 2; done
ob_warn "a service stopped unexpectedly; see $OB_LOCAL_LOGS"
