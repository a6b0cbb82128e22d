#!/usr/bin/env bash
# Part of `make bench` (issue 8): end to end, and how cost grows with the work.
# For each instance count I of BENCH_E2E_INSTANCES (I ingests, I schedulers,
# I dialers) and each size (pending calls from BENCH_E2E_SIZES, with the
# deployments at the same place in BENCH_E2E_DEPLOYMENTS):
#
#   release: a fresh database and the backlog seeded with SQL (bench/lib.sh,
#     as bench/scheduler.sh seeds it), one fake dialer with channels to spare
#     announced on every dial-jobs partition (its heartbeat kept fresh); the I
#     schedulers alone started on it; releases/s (attempts rows), the
#     schedulers' CPU time per call and peak RSS per pending call;
#   e2e: a fresh database; I ingests, I schedulers and I dialers (sim carrier
#     at full time compression, OB_SIM_TIME_SCALE=1000000, every call answered
#     by a voice); the calls POSTed in batches spread over the deployments and
#     the ingests; calls/s from the first POST to the last call completed,
#     accepted -> completed p50/p99, every process's CPU time per call and the
#     schedulers' peak RSS per call, and Postgres bytes per completed call
#     (tables and their indexes, the largest named), and Postgres's time per
#     completed call by statement (pg_stat_statements, when installed).
#
# Every run has topics of its own (OB_TOPIC_PREFIX), so none meets another's
# messages. Its own stack (OB_LOCAL_PORT_BASE=25000, state in
# .local-bench/e2e/), brought down at the end (by pid files, through
# deploy/local). Writes bench/results/e2e-<timestamp>.json and prints a table.
#
# Usage: bench/e2e.sh [--quick]
# Settings (environment): BENCH_E2E_SIZES, BENCH_E2E_DEPLOYMENTS,
# BENCH_E2E_INSTANCES, BENCH_E2E_PHASES (default "release e2e"),
# BENCH_E2E_CHANNELS (OB_DIALER_CHANNELS, default 5000), BENCH_E2E_LIMIT (seconds per run),
# BENCH_QUIET_TIMEOUT, BENCH_KEEP_STACK, OB_BENCH_E2E_PORT_BASE,
# OB_BENCH_E2E_STATE. OB_SCHEDULER_*, OB_DIALER_*, OB_KAFKA_* and OB_SIM_*
# settings pass through to the services.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
local_dir=$root/deploy/local
py=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64

export OB_LOCAL_PORT_BASE=${OB_BENCH_E2E_PORT_BASE:-25000}
export OB_LOCAL_STATE=${OB_BENCH_E2E_STATE:-$root/.local-bench/e2e}
unset OB_LOCAL_SERVICES
export OB_INGEST_KEY_RATE=${OB_INGEST_KEY_RATE:-1000000}
export OB_INGEST_KEY_CONCURRENCY=${OB_INGEST_KEY_CONCURRENCY:-100000}
export OB_SCHEDULER_RELEASE_MAX=${OB_SCHEDULER_RELEASE_MAX:-2000}
export OB_SIM_TIME_SCALE=${OB_SIM_TIME_SCALE:-1000000}
export OB_WEBHOOK_ENABLED=${OB_WEBHOOK_ENABLED:-false}
export OB_DIALER_CHANNELS=${OB_DIALER_CHANNELS:-${BENCH_E2E_CHANNELS:-5000}}
# shellcheck source=deploy/local/env.sh
. "$local_dir/env.sh"
# shellcheck source=deploy/local/lib.sh
. "$local_dir/lib.sh"
export OB_SELF=bench-e2e

if ((quick)); then
	sizes=${BENCH_E2E_SIZES:-"1000 2000 4000"} deps=${BENCH_E2E_DEPLOYMENTS:-"10 20 40"}
	limit=${BENCH_E2E_LIMIT:-60} quiet_timeout=${BENCH_QUIET_TIMEOUT:-0} mode=quick
else
	sizes=${BENCH_E2E_SIZES:-"10000 100000 1000000"} deps=${BENCH_E2E_DEPLOYMENTS:-"100 1000 10000"}
	limit=${BENCH_E2E_LIMIT:-600} quiet_timeout=${BENCH_QUIET_TIMEOUT:-60} mode=full
fi
instances=${BENCH_E2E_INSTANCES:-"1 2"}
channels=$OB_DIALER_CHANNELS
keep_stack=${BENCH_KEEP_STACK:-0}
phases=" ${BENCH_E2E_PHASES:-release e2e} "
want() { [[ $phases == *" $1 "* ]]; }
read -ra size_list <<<"$sizes"
read -ra dep_list <<<"$deps"
((${#size_list[@]} == ${#dep_list[@]})) || ob_die "BENCH_E2E_SIZES and BENCH_E2E_DEPLOYMENTS differ in length"

dsn=$OB_LOCAL_PG_DSN
admin_dsn=postgresql://outbound@127.0.0.1:$OB_LOCAL_PG_PORT/postgres
fake_dialer=bench-fake-dialer
work=$OB_LOCAL_STATE/bench-work
stamp=$(date +%Y%m%dT%H%M%S)
started=$(date -Iseconds)
results=$root/bench/results/e2e-$stamp.json

for tool in curl kcat psql "$py"; do
	command -v "$tool" >/dev/null || ob_die "$tool not found; run deploy/local/deps.sh (make bench does)"
done
for svc in ingest scheduler dialer; do
	[[ -x $root/build/bin/outbound-$svc ]] || ob_die "build/bin/outbound-$svc missing; run make"
done

q() { psql "$dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }

watcher=
bench_stack_up watcher
pgss=$(pgss_enable "$admin_dsn")
rm -rf "$work"
mkdir -p "$work" "$root/bench/results"
parts=$OB_LOCAL_REQUEST_PARTITIONS
all_parts="{$(seq -s, 0 $((parts - 1)))}"

# fresh_db NAME: an empty database, migrated, and topics of NAME's own.
fresh_db() {
	psql "$admin_dsn" -qc 'drop database if exists outbound with (force)' -c 'create database outbound owner outbound'
	export OB_TOPIC_PREFIX=bench-$stamp-$1.
	OB_LOCAL_SERVICES=scheduler "$local_dir/services.sh" start >/dev/null
	OB_LOCAL_SERVICES=scheduler "$local_dir/services.sh" stop >/dev/null
}

# run_services I START|STOP WHICH: WHICH (ingest scheduler dialer) times I.
run_services() {
	local n=$1 action=$2 names=() svc i
	for svc in $3; do
		for ((i = 1; i <= n; i++)); do
			case $svc:$i in
			dialer:*) names+=("dialer-$i") ;;
			*:1) names+=("$svc") ;;
			*) names+=("$svc-$i") ;;
			esac
		done
	done
	OB_LOCAL_INGESTS=$n OB_LOCAL_SCHEDULERS=$n OB_LOCAL_DIALERS=$n OB_LOCAL_SERVICES="${names[*]}" \
		"$local_dir/services.sh" "$action"
}

# metric_urls SERVICE N: the metrics URLs of the N instances of SERVICE
# (ports as deploy/local/services.sh gives them).
metric_urls() {
	local urls=() i port
	for ((i = 1; i <= $2; i++)); do
		case $1:$i in
		scheduler:1) port=$((OB_LOCAL_PORT_BASE + 81)) ;;
		scheduler:*) port=$((OB_LOCAL_PORT_BASE + 70 + i)) ;;
		dialer:*) port=$((OB_LOCAL_PORT_BASE + 81 + i)) ;;
		esac
		urls+=("http://127.0.0.1:$port/metrics")
	done
	local IFS=,
	echo "${urls[*]}"
}

# pq FRACTION LATER EARLIER: SQL for that percentile of LATER - EARLIER in ms.
pq() {
	echo "percentile_cont($1) WITHIN GROUP (ORDER BY extract(epoch FROM $2 - $3) * 1000)"
}

# wait_started WATCH_OUT: waits until the watcher took its first sample.
wait_started() {
	local deadline=$((SECONDS + 30))
	until [[ -e $1.started ]] || ((SECONDS > deadline)); do sleep 0.05; done
}

quiet() {
	((quiet_timeout == 0)) || ob_say "$1: waiting for the machine to be quiet (at most ${quiet_timeout} s)"
	"$py" "$here/report.py" quiet 0.3 "$quiet_timeout" >"$work/$1.quiet"
}

for n in $instances; do
	for ((s = 0; s < ${#size_list[@]}; s++)); do
		calls=${size_list[s]} dcount=${dep_list[s]} name=i$n-c${size_list[s]}
		# ---------------------------------------------------- release
		if want release; then
			fresh_db "release-$name"
			ob_say "release $name: seeding $dcount deployments and $calls due calls"
			seed_backlog "$dsn" "$dcount" "$calls" 100000 "$parts"
			q -c "INSERT INTO dialers (instance_id, carrier, channels, partitions)
			      VALUES ('$fake_dialer', 'sim', 100000000, '$all_parts')"
			quiet "release-$name"
			ob_say "release $name: $n scheduler(s) on the backlog (at most $limit s)"
			"$py" "$here/stages.py" watch-both "$(metric_urls scheduler "$n")" \
				outbound_dial_jobs_released_total "$dsn" "SELECT count(*) FROM attempts" "$calls" "$limit" \
				"$work/release-$name.json" "$OB_LOCAL_RUN" "$fake_dialer" &
			watcher=$!
			wait_started "$work/release-$name.json"
			run_services "$n" start scheduler
			wait "$watcher" || true
			watcher=
			run_services "$n" stop scheduler || ob_warn "release $name: a scheduler did not stop cleanly"
		fi
		# ---------------------------------------------------- end to end
		if want e2e; then
			fresh_db "e2e-$name"
			run_services "$n" start "ingest scheduler dialer" >/dev/null
			key=$("$local_dir/seed.sh")
			q -c "INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
			      SELECT ('00000000-0000-7000-8004-' || lpad(to_hex(i), 12, '0'))::uuid,
			             '00000000-0000-7000-8000-00000000d002', '00000000-0000-7000-8000-00000000d001',
			             'bench-e2e-' || i, 100000
			      FROM generate_series(0, $dcount - 1) i"
			apis=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
			for ((i = 2; i <= n; i++)); do apis+=,http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 60 + i)); done
			if ((pgss)); then pgss_reset "$dsn"; fi
			quiet "e2e-$name"
			ob_say "e2e $name: $calls calls over $dcount deployments, $n instance(s) of each service" \
				"(at most $limit s)"
			"$py" "$here/stages.py" watch-both "$(metric_urls dialer "$n")" outbound_results_total \
				"$dsn" "SELECT count(*) FROM calls WHERE state = 'completed'" \
				"$calls" "$limit" "$work/e2e-$name.json" "$OB_LOCAL_RUN" &
			watcher=$!
			wait_started "$work/e2e-$name.json"
			"$py" "$here/stages.py" post "$apis" "$key" "$dcount" "$calls" "$work/e2e-$name.post.json" ||
				ob_warn "e2e $name: not every call was accepted"
			wait "$watcher" || true
			watcher=
			# Where the time goes, per call: accepted -> recorded -> released
			# -> dialing (attempt 1) -> completed.
			q -c "WITH c AS (SELECT c.accepted_at, c.recorded_at, a.released_at, a.dialing_at, c.completed_at
			                 FROM calls c LEFT JOIN attempts a ON a.call_id = c.call_id AND a.attempt = 1)
			      SELECT json_build_object('calls', count(*), 'completed', count(completed_at),
			        'first_accepted', extract(epoch FROM min(accepted_at)),
			        'last_completed', extract(epoch FROM max(completed_at)),
			        'p50_ms', $(pq 0.5 completed_at accepted_at), 'p99_ms', $(pq 0.99 completed_at accepted_at),
			        'parts_p50_ms', json_build_object('recorded', $(pq 0.5 recorded_at accepted_at),
			          'released', $(pq 0.5 released_at recorded_at), 'dialing', $(pq 0.5 dialing_at released_at),
			          'completed', $(pq 0.5 completed_at dialing_at)))
			      FROM c" >"$work/e2e-$name.calls.json"
			if ((pgss)); then pgss_top "$dsn" >"$work/e2e-$name.statements.json"; fi
			# What the store holds for them, right after the run (dead row
			# versions the updates left included: autovacuum has not caught up):
			# each table's heap (with TOAST) and its indexes.
			q -c "SELECT coalesce(json_agg(json_build_object('name', relname, 'table', tbl, 'indexes', idx)
			                               ORDER BY tbl + idx DESC), '[]')
			      FROM (SELECT c.relname, pg_table_size(c.oid) AS tbl, pg_indexes_size(c.oid) AS idx
			            FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
			            WHERE ns.nspname = 'public' AND c.relkind = 'r') s" >"$work/e2e-$name.storage.json"
			run_services "$n" stop "ingest scheduler dialer" || ob_warn "e2e $name: a service did not stop cleanly"
		fi
		printf '{"name": "%s", "instances": %d, "calls": %d, "deployments": %d}\n' "$name" "$n" "$calls" "$dcount" \
			>"$work/run-$name.json"
	done
done

commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
[[ -z $(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] ||
	dirty=true
cat >"$work/params.json" <<EOF
{"mode": "$mode", "date": "$started", "port_base": $OB_LOCAL_PORT_BASE, "git_commit": "$commit", "git_dirty": $dirty,
 "params": {"sizes": "$sizes", "deployments": "$deps", "instances": "$instances", "channels_per_dialer": $channels,
            "limit_s": $limit, "sim_time_scale": "$OB_SIM_TIME_SCALE",
            "release_max": "$OB_SCHEDULER_RELEASE_MAX"}}
EOF
"$py" "$here/stages.py" assemble "$work" "$work/params.json" "$results"
"$py" "$here/stages.py" table "$results"
ob_say "raw results: $results (work files: $work; logs: $OB_LOCAL_LOGS)"
