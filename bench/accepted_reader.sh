#!/usr/bin/env bash
# The accepted-calls reader of ingest (services/ingest/ingest_accepted.c,
# docs/reliability.md): how fast a new ingest reads a backlog of accepted,
# unrecorded calls, the CPU it spends per call and its memory per call held.
# Against the local stack (deploy/local/stack.sh up): one ingest queues
# N x 100,000 calls by calls:batch with no scheduler running, then a second
# ingest starts and is timed until its outbound_calls_unrecorded gauge holds
# them all. Usage: bench/accepted_reader.sh [N] (default 3). Stops what it
# started and drops its schema.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../deploy/local/env.sh
. deploy/local/env.sh
n=${1:-3}
bin=${BUILD:-build}/bin
prefix=rb$RANDOM
tmp=$(mktemp -d)
pids=()
cleanup() {
	((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
	psql -q "$OB_LOCAL_PG_DSN" -c "DROP SCHEMA IF EXISTS $prefix CASCADE" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export OB_TOPIC_PREFIX=$prefix. OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP \
	OB_PG_DSN="$OB_LOCAL_PG_DSN?options=-csearch_path%3D$prefix" OB_LOG_LEVEL=warn \
	OB_INGEST_ADMIN_KEY=0123456789abcdef0123456789abcdef OB_INGEST_KEY_RATE=100000
psql -q "$OB_LOCAL_PG_DSN" -c "CREATE SCHEMA $prefix"
port_a=$((OB_LOCAL_PORT_BASE + 601)) port_b=$((OB_LOCAL_PORT_BASE + 602))
OB_HTTP_PORT=$port_a OB_INSTANCE_ID=$prefix-a "$bin/outbound-ingest" 2>"$tmp/a.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "localhost:$port_a/readyz" >/dev/null && break; sleep 0.3; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
key=$(curl -s -XPOST -H "Authorization: Bearer $OB_INGEST_ADMIN_KEY" -H 'Content-Type: application/json' \
	"localhost:$port_a/api/v1/accounts" -d '{"name":"b","email":"b@example.com"}' | json '["api_key"]["key"]')
api() { curl -s -XPOST -H "Authorization: Bearer $key" -H "Content-Type: $1" "localhost:$port_a$2" "${@:3}"; }
app=$(api application/json /api/v1/applications -d '{"name":"a"}' | json '["application_id"]')
dep=$(api application/json "/api/v1/applications/$app/deployments" -d '{"name":"d","capacity":2}' |
	json '["deployment_id"]')
python3 -c '
for i in range(100000): print("{\"phone_number\": \"+1212%07d\", \"message_reference\": \"r%d\"}" % (2000000 + i, i))' >"$tmp/batch.ndjson"
for _ in $(seq "$n"); do
	api application/x-ndjson "/api/v1/deployments/$dep/calls:batch" -o /dev/null --data-binary @"$tmp/batch.ndjson"
done
want=$((n * 100000))
start=$(date +%s.%N)
OB_HTTP_PORT=$port_b OB_INSTANCE_ID=$prefix-b "$bin/outbound-ingest" 2>"$tmp/b.log" &
b=$!
pids+=("$b")
held=0
for _ in $(seq 1200); do
	held=$(curl -s "localhost:$port_b/metrics" | awk '$1 == "outbound_calls_unrecorded" {print $2}' || true)
	((${held:-0} >= want)) && break
	sleep 0.1
done
end=$(date +%s.%N)
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$b/stat")
rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$b/status")
echo "accepted reader: $held of $want unrecorded calls read in $(echo "$end - $start" | bc) s from start;" \
	"cpu $cpu s ($(echo "scale=1; $cpu * 1000000 / $want" | bc) us a call); rss $((rss / 1024)) MB" \
	"($(echo "$rss * 1024 / $want" | bc) bytes a call); load $(cut -d' ' -f1 /proc/loadavg)"
