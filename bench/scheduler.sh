#!/usr/bin/env bash
# `make bench-scheduler`: measures the scheduler on this machine.
#
#   1. latency: ingest, the scheduler and 2 sim dialers (OB_SIM_TIME_SCALE=100,
#      so calls end fast) with capacity to spare; single calls POSTed at a
#      steady rate, after a warm-up; per call, attempts.dialing_at - calls.accepted_at of
#      attempt 1 (p50/p99), split into accepted -> recorded -> released ->
#      dialing;
#   2. release: 10,000 deployments and 1,000,000 calls queued and due, seeded
#      straight into Postgres across every call-requests partition, and one
#      fake dialer row with 2,000,000 channels on every dial-jobs partition
#      (its heartbeat kept fresh by the bench; its jobs pile up in Kafka).
#      The scheduler alone is started on that backlog; releases/s from its
#      outbound_dial_jobs_released_total, scraped every second until the
#      backlog is released or the time limit; its peak RSS (VmHWM); the CPU
#      of scheduler, Postgres and Kafka; the top statements of
#      pg_stat_statements; EXPLAIN ANALYZE of the scheduler's DUE_SQL and
#      CANDIDATES_SQL (read from scheduler_release.c) on the seeded backlog,
#      and of DUE_SQL once more afterwards, as the next pass would see it:
#      the released calls in flight and one new due call per deployment.
#
#   3. record (between the two): calls queued through ingest with the
#      scheduler stopped, then recorded by the scheduler alone; calls/s into
#      Postgres. Limits (build/bench): librdkafka alone consuming the
#      call-requests topic and, after release, the dial-jobs topic, with the
#      scheduler's consumer settings; COPY of the recorded rows into calls.
#
# Latency runs first, on an empty database, so that its dialers never meet
# the release phase's backlog. The bench runs its own stack (Kafka and
# PostgreSQL on OB_LOCAL_PORT_BASE=24000, state in .local-bench/scheduler/),
# with a fresh database each run; everything it started is stopped at the
# end (by pid files, through deploy/local). Writes
# bench/results/scheduler-<timestamp>.json, prints a table and, for a full
# run of both phases, rewrites the scheduler block of BENCHMARKS.md.
#
# Usage: bench/scheduler.sh [--quick]   (--quick: small sizes, about a minute)
# Settings (environment): BENCH_SCHED_DEPLOYMENTS, BENCH_SCHED_CALLS,
# BENCH_SCHED_CAPACITY, BENCH_SCHED_CHANNELS (the fake dialer's),
# BENCH_SCHED_RELEASE_LIMIT (seconds), BENCH_SCHED_LATENCY_CALLS,
# BENCH_SCHED_LATENCY_RATE (calls/s), BENCH_SCHED_LATENCY_WARMUP (calls sent
# first to another deployment, not counted), BENCH_SCHED_LATENCY_CAPACITY,
# BENCH_SCHED_EXPLAIN_TIMEOUT (seconds, per EXPLAIN ANALYZE),
# BENCH_SCHED_RECORD_CALLS, BENCH_SCHED_PHASES (default "latency record
# release"), BENCH_SCHED_DRAIN_S (how long
# the scheduler may take to stop after the release phase), BENCH_QUIET_TIMEOUT,
# BENCH_WRITE_DOC, BENCH_KEEP_STACK, OB_BENCH_SCHED_PORT_BASE,
# OB_BENCH_SCHED_STATE. OB_SCHEDULER_*, OB_KAFKA_* and OB_SIM_* settings
# pass through to the services.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
local_dir=$root/deploy/local
py=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64

export OB_LOCAL_PORT_BASE=${OB_BENCH_SCHED_PORT_BASE:-24000}
export OB_LOCAL_STATE=${OB_BENCH_SCHED_STATE:-$root/.local-bench/scheduler}
unset OB_LOCAL_SERVICES
# One client key queues the record phase's calls: lift the per-key limits.
export OB_INGEST_KEY_RATE=${OB_INGEST_KEY_RATE:-1000000}
export OB_INGEST_KEY_CONCURRENCY=${OB_INGEST_KEY_CONCURRENCY:-100000}
# shellcheck source=deploy/local/env.sh
. "$local_dir/env.sh"
# shellcheck source=deploy/local/lib.sh
. "$local_dir/lib.sh"
export OB_SELF=bench-scheduler

if ((quick)); then
	deployments=${BENCH_SCHED_DEPLOYMENTS:-500} calls=${BENCH_SCHED_CALLS:-50000}
	release_limit=${BENCH_SCHED_RELEASE_LIMIT:-30}
	lat_calls=${BENCH_SCHED_LATENCY_CALLS:-200} lat_rate=${BENCH_SCHED_LATENCY_RATE:-50}
	lat_warmup=${BENCH_SCHED_LATENCY_WARMUP:-100} rec_calls=${BENCH_SCHED_RECORD_CALLS:-20000}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-0} write_doc=${BENCH_WRITE_DOC:-0} mode=quick
	explain_timeout=${BENCH_SCHED_EXPLAIN_TIMEOUT:-20}
else
	deployments=${BENCH_SCHED_DEPLOYMENTS:-10000} calls=${BENCH_SCHED_CALLS:-1000000}
	release_limit=${BENCH_SCHED_RELEASE_LIMIT:-120}
	lat_calls=${BENCH_SCHED_LATENCY_CALLS:-2000} lat_rate=${BENCH_SCHED_LATENCY_RATE:-100}
	lat_warmup=${BENCH_SCHED_LATENCY_WARMUP:-300} rec_calls=${BENCH_SCHED_RECORD_CALLS:-200000}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-60} write_doc=${BENCH_WRITE_DOC:-1} mode=full
	explain_timeout=${BENCH_SCHED_EXPLAIN_TIMEOUT:-60}
fi
capacity=${BENCH_SCHED_CAPACITY:-100}
channels=${BENCH_SCHED_CHANNELS:-2000000}
lat_capacity=${BENCH_SCHED_LATENCY_CAPACITY:-1000}
export OB_SIM_TIME_SCALE=${OB_SIM_TIME_SCALE:-100}
keep_stack=${BENCH_KEEP_STACK:-0}
phases=" ${BENCH_SCHED_PHASES:-latency record release} "
[[ $phases == *" latency "* && $phases == *" record "* && $phases == *" release "* ]] || write_doc=0
want() { [[ $phases == *" $1 "* ]]; }

prefix=${OB_TOPIC_PREFIX:-outbound.}
dsn=$OB_LOCAL_PG_DSN
admin_dsn=postgresql://outbound@127.0.0.1:$OB_LOCAL_PG_PORT/postgres
api=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
metrics=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 81))/metrics
account=00000000-0000-7000-8000-00000000d001
application=00000000-0000-7000-8000-00000000d002
lat_dep=00000000-0000-7000-8000-0000000be005
warm_dep=00000000-0000-7000-8000-0000000be006
fake_dialer=bench-fake-dialer
work=$OB_LOCAL_STATE/bench-work
stamp=$(date +%Y%m%dT%H%M%S)
started=$(date -Iseconds)
results=$root/bench/results/scheduler-$stamp.json
release_src=$root/services/scheduler/scheduler_release.c

for tool in curl kcat psql "$py"; do
	command -v "$tool" >/dev/null || ob_die "$tool not found; run deploy/local/deps.sh (make bench-scheduler does)"
done
for svc in ingest scheduler dialer; do
	[[ -x $root/build/bin/outbound-$svc ]] || ob_die "build/bin/outbound-$svc missing; run make"
done

# Which scheduler build ran: the tree may be rebuilt while the bench runs.
sched_bin="{\"mtime\": \"$(date -Iseconds -r "$root/build/bin/outbound-scheduler")\",
 \"sha256\": \"$(sha256sum "$root/build/bin/outbound-scheduler" | cut -c1-16)\"}"

q() { psql "$dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }
services() { OB_LOCAL_SERVICES=${1:-} "$local_dir/services.sh" "${@:2}"; }

# ------------------------------------------------------------ the stack
watcher=
bench_stack_up watcher

pgss=$(pgss_enable "$admin_dsn")
# A fresh database every run; the services apply the migrations.
psql "$admin_dsn" -qc 'drop database if exists outbound with (force)' -c 'create database outbound owner outbound'
kafka_pid=$(<"$OB_LOCAL_RUN/kafka.pid")
pg_pid=$(head -n1 "$OB_LOCAL_RUN/postgres.pid")

# kafka_total TOPIC: the sum of its partitions' end offsets.
kafka_total() {
	local args=() p parts
	parts=$(partitions_of "$1")
	for ((p = 0; p < ${parts:-0}; p++)); do args+=(-t "$1:$p:-1"); done
	kcat -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -Q "${args[@]}" 2>/dev/null |
		sed -n 's/.*offset \([0-9]*\).*/\1/p' | awk '{t += $1} END {print t + 0}'
}

partitions_of() {
	kcat -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -L -t "$1" 2>/dev/null |
		sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -n1
}
req_parts=$(partitions_of "${prefix}call-requests")
job_parts=$(partitions_of "${prefix}dial-jobs")
[[ $req_parts =~ ^[0-9]+$ && $job_parts =~ ^[0-9]+$ ]] || ob_die "cannot read the topics' partition counts"
all_job_parts="{$(seq -s, 0 $((job_parts - 1)))}"
all_req_parts="{$(seq -s, 0 $((req_parts - 1)))}"

rm -rf "$work"
mkdir -p "$work" "$root/bench/results"

quiet() {
	if ((quiet_timeout > 0)); then
		ob_say "$1: waiting for the machine to be quiet (at most ${quiet_timeout} s)"
	fi
	"$py" "$here/report.py" quiet 0.3 "$quiet_timeout" >"$work/$1.quiet"
}

# wait_until SECONDS SQL: until SQL answers t, or SECONDS passed (fails).
wait_until() {
	local deadline=$((SECONDS + $1))
	until [[ $(q -c "$2") == t ]]; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

# run_calls NAME DEPLOYMENT N: N calls at $lat_rate/s, then waits (at most 60 s)
# until each accepted one is dialing; leaves NAME.client.txt, NAME.wait.json
# and NAME.rows.csv (per call: accepted, recorded, released, dialing in ms).
run_calls() {
	local name=$1 dep=$2 n=$3 accepted start
	ob_say "latency: $name: $n calls at $lat_rate/s (OB_SIM_TIME_SCALE=$OB_SIM_TIME_SCALE)"
	"$py" "$here/scheduler_report.py" pace "$api" "$key" "$dep" "$n" "$lat_rate" "$work/$name.client.txt"
	accepted=$(awk '$2 == 202' "$work/$name.client.txt" | wc -l)
	start=$SECONDS
	wait_until 60 "SELECT count(*) >= $accepted FROM attempts
	               WHERE deployment_id = '$dep' AND attempt = 1 AND dialing_at IS NOT NULL" ||
		ob_warn "latency: $name: not every accepted call was dialing after 60 s"
	printf '{"accepted": %d, "waited_s": %d}\n' "$accepted" $((SECONDS - start)) >"$work/$name.wait.json"
	q -F, >"$work/$name.rows.csv" <<SQL
SELECT c.call_id, extract(epoch FROM c.accepted_at) * 1000, extract(epoch FROM c.recorded_at) * 1000,
       extract(epoch FROM a.released_at) * 1000, extract(epoch FROM a.dialing_at) * 1000
FROM calls c LEFT JOIN attempts a ON a.call_id = c.call_id AND a.attempt = 1
WHERE c.deployment_id = '$dep';
SQL
}

# ------------------------------------------------------------ 1. latency
if want latency; then
	services "ingest scheduler dialer" start
	key=$("$local_dir/seed.sh")
	q <<SQL
INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
VALUES ('$lat_dep', '$application', '$account', 'bench-latency', $lat_capacity),
       ('$warm_dep', '$application', '$account', 'bench-latency-warmup', $lat_capacity);
SQL
	# Both dialers announced and, between them, consuming every dial-jobs
	# partition; the scheduler owning every call-requests partition.
	ob_say "latency: waiting for the dialers' and the scheduler's partitions"
	wait_until 60 "SELECT count(*) = 2 AND (SELECT count(DISTINCT p) FROM dialers, unnest(partitions) p
	                 WHERE seen_at > now() - interval '3 seconds') = $job_parts
	               FROM dialers WHERE seen_at > now() - interval '3 seconds'" ||
		ob_die "dialers did not announce every dial-jobs partition in 60 s"
	deadline=$((SECONDS + 60))
	until curl -fsS "$metrics" 2>/dev/null | grep -qx "outbound_scheduler_partitions_owned $req_parts"; do
		((SECONDS < deadline)) || ob_die "the scheduler does not own the $req_parts call-requests partitions"
		sleep 0.5
	done
	sleep 2 # let a late rebalance settle
	quiet latency
	# A warm-up first, to a deployment of its own: the consumers' first
	# fetches after start-up take about a second, and that is start-up cost,
	# not the steady latency (its numbers are reported apart).
	run_calls latency.warmup "$warm_dep" "$lat_warmup"
	run_calls latency "$lat_dep" "$lat_calls"
	# Dialers withdraw their rows when they drain.
	services "" stop || ob_warn "latency: a service did not stop cleanly"
fi

# ------------------------------------------------------------ 2. record
# Accepted calls recorded in Postgres: $rec_calls calls queued through ingest
# while the scheduler is stopped, then the scheduler alone (no dialer, so
# nothing is released) records them; calls/s from its
# outbound_calls_recorded_total. The limits: librdkafka alone consuming the
# call-requests topic with the scheduler's consumer settings, and COPY of
# the same rows into the same tables (calls, and the call_events rows the
# recording wrote).
rec_dep=00000000-0000-7000-8000-0000000be007
if want record; then
	services "ingest" start
	key=${key:-$("$local_dir/seed.sh")}
	q -c "INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
	      VALUES ('$rec_dep', '$application', '$account', 'bench-record', 100000)"
	ob_say "record: queueing $rec_calls calls with the scheduler stopped"
	"$py" "$here/dialer_report.py" batch "$api" "$key" "$rec_dep" "$rec_calls" "+12125550100" - \
		"$work/record.batch.json" || ob_warn "record: not every call was queued"
	services "" stop || ob_warn "record: ingest did not stop cleanly"
	quiet record
	ob_say "record: the scheduler alone records them (at most $release_limit s)"
	"$py" "$here/stages.py" watch "$metrics" outbound_calls_recorded_total "$rec_calls" "$release_limit" \
		"$work/record.watch.json" "$OB_LOCAL_RUN" &
	watcher=$!
	until [[ -e $work/record.watch.json.started ]]; do sleep 0.05; done
	services scheduler start
	wait "$watcher" || true
	watcher=
	services scheduler stop || ob_warn "record: the scheduler did not stop cleanly"
	requests=$(kafka_total "${prefix}call-requests")
	ob_say "record limit: raw consume of $requests call requests"
	OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP "$here/../build/bench/limit_consume" \
		"${prefix}call-requests" "$requests" "$release_limit" >"$work/limit.consume_requests.json" ||
		ob_warn "record limit: limit_consume failed"
	ob_say "record limit: COPY of the recorded rows"
	copy_limit "$dsn" "$work/limit.copy_calls.json" calls "deployment_id = '$rec_dep'" \
		call_events "deployment_id = '$rec_dep'" ||
		ob_warn "record limit: COPY failed"
fi

# explain NAME LABEL ARGS: EXPLAIN ANALYZE of the scheduler's SQL constant
# NAME (from scheduler_release.c) with ARGS, into release.explain.LABEL.txt;
# cut off after $explain_timeout s. Best effort: the source may change.
explain() {
	local sql out=$work/release.explain.$2.txt
	sql=$("$py" "$here/scheduler_report.py" sql "$1" "$release_src") || return 0
	if ! q >"$out" 2>&1 <<SQL
SET statement_timeout = '${explain_timeout}s';
PREPARE bench_q AS $sql;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q($3);
SQL
	then
		echo "bench: failed, or cut off at statement_timeout = '${explain_timeout}s'; the plan:" >>"$out"
		q >>"$out" 2>&1 <<SQL || true
PREPARE bench_q AS $sql;
EXPLAIN EXECUTE bench_q($3);
SQL
		ob_warn "EXPLAIN of $1 ($2) failed or took over $explain_timeout s (see $out)"
	fi
}

# ------------------------------------------------------------ 3. release
dep0=00000000-0000-7000-8001-000000000000
if want release; then
	# The migrations, if the latency phase did not run.
	if [[ $(q -c "SELECT to_regclass('public.dialers') IS NOT NULL") != t ]]; then
		services scheduler start
		services scheduler stop || true
	fi
	ob_say "release: seeding $deployments deployments (capacity $capacity) and $calls queued calls" \
		"across $req_parts partitions"
	seed_start=$(ob_now_us)
	seed_backlog "$dsn" "$deployments" "$calls" "$capacity" "$req_parts"
	seed_s=$(ob_elapsed "$seed_start")
	ob_say "release: seeded in $seed_s s"
	cat >"$work/release.seed.json" <<EOF
{"deployments": $deployments, "capacity": $capacity, "calls": $calls, "request_partitions": $req_parts,
 "dial_job_partitions": $job_parts, "dialer_channels": $channels, "seed_s": $seed_s}
EOF

	# The scheduler's own queries on the seeded backlog, as its source has them.
	explain DUE_SQL DUE_SQL "'$all_req_parts', $(date +%s%3N)"
	explain CANDIDATES_SQL CANDIDATES_SQL "'$dep0', $(date +%s%3N), $capacity"

	q <<SQL
INSERT INTO dialers (instance_id, carrier, channels, partitions)
VALUES ('$fake_dialer', 'sim', $channels, '$all_job_parts');
SQL
	if ((pgss)); then pgss_reset "$dsn"; fi
	quiet release
	ob_say "release: starting the scheduler on the backlog (at most $release_limit s)"
	rm -f "$OB_LOCAL_RUN/scheduler.pid"
	"$py" "$here/scheduler_report.py" watch "$metrics" "$OB_LOCAL_RUN/scheduler.pid" "$dsn" "$fake_dialer" \
		"$calls" "$release_limit" "$work/release.watch.json" $$ "$pg_pid" "$kafka_pid" &
	watcher=$!
	services scheduler start
	# The watcher ends by itself: backlog released, time limit, or scheduler gone.
	wait "$watcher" || true
	watcher=
	if ((pgss)); then pgss_top "$dsn" >"$work/release.statements.json"; fi
	q -c "SELECT json_build_object('attempts', count(*), 'published', count(job_published_at))
	      FROM attempts WHERE deployment_id NOT IN ('$lat_dep', '$warm_dep')" >"$work/release.attempts.json"
	# The scheduler checks its stop flag between passes, and a pass over a
	# large backlog can take minutes: SIGTERM, then after BENCH_SCHED_DRAIN_S
	# a second SIGTERM (exit now); how long the drain took goes in the results.
	if sched_pid=$(ob_pidfile_read "$OB_LOCAL_RUN/scheduler.pid" outbound-scheduler); then
		drain_start=$(ob_now_us)
		kill -TERM "$sched_pid"
		deadline=$((SECONDS + ${BENCH_SCHED_DRAIN_S:-15}))
		while ob_pid_running "$sched_pid" && ((SECONDS < deadline)); do sleep 0.1; done
		drained=true
		if ob_pid_running "$sched_pid"; then
			drained=false
			ob_warn "release: the scheduler did not drain in ${BENCH_SCHED_DRAIN_S:-15} s; second SIGTERM"
			kill -TERM "$sched_pid" 2>/dev/null || true
		fi
		printf '{"drained": %s, "seconds": %s}\n' "$drained" "$(ob_elapsed "$drain_start")" >"$work/release.drain.json"
	fi
	services scheduler stop || ob_warn "release: the scheduler did not stop cleanly"
	# services.sh leaves the pid file of a process that was already gone.
	ob_pidfile_read "$OB_LOCAL_RUN/scheduler.pid" >/dev/null || rm -f "$OB_LOCAL_RUN/scheduler.pid"

	# The next pass's view: what was released stays in flight (the fake
	# dialer never ends a call) and every deployment gets one new due call.
	q <<SQL
INSERT INTO calls (call_id, deployment_id, account_id, request_partition, phone_number,
                   max_attempts, retry_interval_s, not_before, next_attempt_at, accepted_at)
SELECT ('00000000-0000-7000-8003-' || lpad(to_hex(i), 12, '0'))::uuid,
       ('00000000-0000-7000-8001-' || lpad(to_hex(i), 12, '0'))::uuid,
       '00000000-0000-7000-8000-0000000be001', i % $req_parts, '+12125550000', 1, 600, now(), now(), now()
FROM generate_series(0, $deployments - 1) i;
ANALYZE calls;
SQL
	q -c "SELECT json_build_object('in_flight', count(*)) FROM calls WHERE active_attempt IS NOT NULL
	      AND deployment_id NOT IN ('$lat_dep', '$warm_dep')" >"$work/release.in_flight.json"
	explain DUE_SQL DUE_SQL.next_pass "'$all_req_parts', $(date +%s%3N)"
	# The limit: librdkafka alone consuming the dial jobs the scheduler released.
	jobs=$(kafka_total "${prefix}dial-jobs")
	ob_say "release limit: raw consume of $jobs dial jobs"
	OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP "$here/../build/bench/limit_consume" \
		"${prefix}dial-jobs" "$jobs" "$release_limit" >"$work/limit.consume_jobs.json" ||
		ob_warn "release limit: limit_consume failed"
fi

# ------------------------------------------------------------ results
svc_env=$("$py" -c 'import json, os, re
print(json.dumps({k: v for k, v in sorted(os.environ.items())
                  if re.match("OB_(SCHEDULER|KAFKA|SIM)_", k) and not re.search("KEY|PASSWORD|SECRET|SASL", k)}))')
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
[[ -z $(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] ||
	dirty=true
cat >"$work/params.json" <<EOF
{"mode": "$mode", "date": "$started", "port_base": $OB_LOCAL_PORT_BASE, "git_commit": "$commit", "git_dirty": $dirty,
 "service_env": $svc_env, "pg_stat_statements": $pgss,
 "scheduler_binary": $sched_bin,
 "params": {"deployments": $deployments, "calls": $calls, "capacity": $capacity, "dialer_channels": $channels,
            "release_limit_s": $release_limit, "latency_calls": $lat_calls, "latency_rate": $lat_rate, "latency_warmup": $lat_warmup,
            "latency_capacity": $lat_capacity, "record_calls": $rec_calls, "sim_time_scale": "$OB_SIM_TIME_SCALE"},
 "quiet": {"latency": $(cat "$work/latency.quiet" 2>/dev/null || echo null),
           "record": $(cat "$work/record.quiet" 2>/dev/null || echo null),
           "release": $(cat "$work/release.quiet" 2>/dev/null || echo null)}}
EOF
"$py" "$here/scheduler_report.py" assemble "$work" "$work/params.json" "$results"
"$py" "$here/scheduler_report.py" table "$results"
if ((write_doc)); then
	"$py" "$here/scheduler_report.py" markdown "$results" "$root/BENCHMARKS.md"
	ob_say "rewrote the scheduler block of BENCHMARKS.md"
fi
ob_say "raw results: $results (work files: $work; logs: $OB_LOCAL_LOGS)"
