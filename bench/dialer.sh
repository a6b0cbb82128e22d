#!/usr/bin/env bash
# `make bench-dialer`: measures the dialers on this machine.
#
#   1. inflight: one dialer with OB_DIALER_CHANNELS=6000 and webhooks off
#      (OB_SIM_TIME_SCALE=1), the scheduler and ingest; 6,000 calls to the
#      sim's noanswer number (rings 30 s, max_attempts 1) queued through
#      calls:batch; the dialer's outbound_calls_in_flight sampled every 0.5 s:
#      the peak, and the dialer's RSS and CPU at the peak;
#   2. events: 2 dialers (OB_SIM_TIME_SCALE=1000, 5,000 channels each,
#      webhooks off); 50,000 calls to the voice number queued and recorded by
#      the scheduler before the dialers start (OB_SCHEDULER_RELEASE_MAX=2000:
#      one deployment takes all the capacity); rows/s into call_events
#      (count(*) every second) and messages/s onto the call-events topic (its
#      end offsets every second): sustained (between 10% and 90% of the
#      total, the verdict) and over the whole busy period (start-up
#      included);
#      Limits (build/bench/limit_produce and COPY): the phase's events
#      produced again by librdkafka alone with the dialers' producer
#      settings, and its call_events rows written again with COPY;
#   3. webhooks: a local receiver (bench/dialer_report.py receiver: asyncio,
#      answers 200 at once, keep-alive); 40,000 calls with a result_url on it,
#      completed by the phase-2 dialers with webhooks off; then 2 dialers
#      with webhooks on work off that backlog: deliveries/s from their
#      outbound_webhook_deliveries_total{outcome="delivered"} and from webhook_deliveries rows.
#
# Its own stack (Kafka and PostgreSQL on OB_LOCAL_PORT_BASE=26000, state in
# .local-bench/dialer/), a fresh database each run; everything it started is
# stopped at the end (by pid files, through deploy/local). Every phase has a
# time limit. Writes bench/results/dialer-<timestamp>.json, prints a table
# and, for a full run of all phases, rewrites the dialer block of BENCHMARKS.md.
#
# Usage: bench/dialer.sh [--quick]   (--quick: small sizes, a few minutes)
# Settings (environment): BENCH_DIALER_INFLIGHT_CALLS,
# BENCH_DIALER_INFLIGHT_CHANNELS, BENCH_DIALER_EVENTS_CALLS,
# BENCH_DIALER_WEBHOOK_CALLS, BENCH_DIALER_DIALERS, BENCH_DIALER_CHANNELS (per
# dialer, phases 2 and 3), BENCH_DIALER_TIME_SCALE (phases 2 and 3),
# BENCH_DIALER_LIMIT (seconds per phase), BENCH_DIALER_PHASES (default
# "inflight events webhooks"), BENCH_QUIET_TIMEOUT (seconds to wait for
# other work on the machine to calm down before each phase), BENCH_WRITE_DOC, BENCH_KEEP_STACK,
# OB_BENCH_DIALER_PORT_BASE, OB_BENCH_DIALER_STATE. OB_WEBHOOK_* and
# OB_KAFKA_* settings pass through to the dialers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
local_dir=$root/deploy/local
py=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64

export OB_LOCAL_PORT_BASE=${OB_BENCH_DIALER_PORT_BASE:-26000}
export OB_LOCAL_STATE=${OB_BENCH_DIALER_STATE:-$root/.local-bench/dialer}
dialers=${BENCH_DIALER_DIALERS:-2}
export OB_LOCAL_DIALERS=$dialers
unset OB_LOCAL_SERVICES
# One client key queues everything: lift the per-key admission limits.
export OB_INGEST_KEY_RATE=${OB_INGEST_KEY_RATE:-1000000}
export OB_INGEST_KEY_CONCURRENCY=${OB_INGEST_KEY_CONCURRENCY:-100000}
# One deployment holds all the dialers' channels: release up to 2,000 of its
# calls a pass (the default, 500, caps a deployment at ~5,000 calls/s).
export OB_SCHEDULER_RELEASE_MAX=${OB_SCHEDULER_RELEASE_MAX:-2000}
# shellcheck source=deploy/local/env.sh
. "$local_dir/env.sh"
# shellcheck source=deploy/local/lib.sh
. "$local_dir/lib.sh"
export OB_SELF=bench-dialer

if ((quick)); then
	inflight_calls=${BENCH_DIALER_INFLIGHT_CALLS:-1000} events_calls=${BENCH_DIALER_EVENTS_CALLS:-5000}
	webhook_calls=${BENCH_DIALER_WEBHOOK_CALLS:-2000} limit=${BENCH_DIALER_LIMIT:-60}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-0} write_doc=${BENCH_WRITE_DOC:-0} mode=quick
else
	inflight_calls=${BENCH_DIALER_INFLIGHT_CALLS:-6000} events_calls=${BENCH_DIALER_EVENTS_CALLS:-50000}
	webhook_calls=${BENCH_DIALER_WEBHOOK_CALLS:-40000} limit=${BENCH_DIALER_LIMIT:-180}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-60} write_doc=${BENCH_WRITE_DOC:-1} mode=full
fi
inflight_channels=${BENCH_DIALER_INFLIGHT_CHANNELS:-6000}
channels=${BENCH_DIALER_CHANNELS:-5000}
fast=${BENCH_DIALER_TIME_SCALE:-1000}
keep_stack=${BENCH_KEEP_STACK:-0}
phases=" ${BENCH_DIALER_PHASES:-inflight events webhooks} "
[[ $phases == *" inflight "* && $phases == *" events "* && $phases == *" webhooks "* ]] || write_doc=0
want() { [[ $phases == *" $1 "* ]]; }

prefix=${OB_TOPIC_PREFIX:-outbound.}
dsn=$OB_LOCAL_PG_DSN
admin_dsn=postgresql://outbound@127.0.0.1:$OB_LOCAL_PG_PORT/postgres
api=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
dialer_metrics() { echo "http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 81 + $1))/metrics"; }
receiver_port=$((OB_LOCAL_PORT_BASE + 70))
hook_url=http://127.0.0.1:$receiver_port/hook
account=00000000-0000-7000-8000-00000000d001
application=00000000-0000-7000-8000-00000000d002
dep_inflight=00000000-0000-7000-8000-0000000bd001
dep_events=00000000-0000-7000-8000-0000000bd002
dep_hooks=00000000-0000-7000-8000-0000000bd003
work=$OB_LOCAL_STATE/bench-work
stamp=$(date +%Y%m%dT%H%M%S)
started=$(date -Iseconds)
results=$root/bench/results/dialer-$stamp.json

for tool in curl kcat psql "$py"; do
	command -v "$tool" >/dev/null || ob_die "$tool not found; run deploy/local/deps.sh (make bench-dialer does)"
done
for svc in ingest scheduler dialer; do
	[[ -x $root/build/bin/outbound-$svc ]] || ob_die "build/bin/outbound-$svc missing; run make"
done
# The services run from a copy of build/bin taken now: the tree may be
# rebuilt while the bench runs, and binaries of two builds can disagree on
# the migrations. The copy is retaken until two reads agree (not mid-link).
export OB_LOCAL_BIN=$OB_LOCAL_STATE/bin
mkdir -p "$OB_LOCAL_BIN"
for try in 1 2 3 4 5; do
	sums=$(cd "$root/build/bin" && sha256sum outbound-ingest outbound-scheduler outbound-dialer)
	cp --remove-destination "$root"/build/bin/outbound-{ingest,scheduler,dialer} "$OB_LOCAL_BIN/"
	sleep 1
	[[ $(cd "$OB_LOCAL_BIN" && sha256sum outbound-ingest outbound-scheduler outbound-dialer) == "$sums" &&
		$(cd "$root/build/bin" && sha256sum outbound-ingest outbound-scheduler outbound-dialer) == "$sums" ]] && break
	((try < 5)) || ob_die "build/bin keeps changing; run the bench when the build is quiet"
done
bins=$(for svc in ingest scheduler dialer; do
	printf '"%s": {"mtime": "%s", "sha256": "%s"}\n' "$svc" "$(date -Iseconds -r "$root/build/bin/outbound-$svc")" \
		"$(sha256sum "$OB_LOCAL_BIN/outbound-$svc" | cut -c1-16)"
done | paste -sd,)

q() { psql "$dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }
services() { OB_LOCAL_SERVICES=$1 "$local_dir/services.sh" "${@:2}"; }

# ------------------------------------------------------------ the stack
watcher='' receiver=''
bench_stack_up watcher receiver
psql "$admin_dsn" -qc 'drop database if exists outbound with (force)' -c 'create database outbound owner outbound'
kafka_pid=$(<"$OB_LOCAL_RUN/kafka.pid")
pg_pid=$(head -n1 "$OB_LOCAL_RUN/postgres.pid")
event_parts=$(kcat -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -L -t "${prefix}call-events" 2>/dev/null |
	sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -n1)
[[ $event_parts =~ ^[0-9]+$ ]] || ob_die "cannot read the call-events topic's partition count"

rm -rf "$work"
mkdir -p "$work" "$root/bench/results"

# wait_until SECONDS SQL: until SQL answers t, or SECONDS passed (fails).
wait_until() {
	local deadline=$((SECONDS + $1))
	until [[ $(q -c "$2") == t ]]; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

quiet() {
	if ((quiet_timeout > 0)); then
		ob_say "$1: waiting for the machine to be quiet (at most ${quiet_timeout} s)"
	fi
	"$py" "$here/report.py" quiet 0.3 "$quiet_timeout" >"$work/$1.quiet"
}

# start_dialers NAMES ENV...: the dialers NAMES, with the settings ENV.
start_dialers() {
	local names=$1
	shift
	env "$@" OB_LOCAL_SERVICES="$names" "$local_dir/services.sh" start
}
all_dialers=$(seq -s' ' -f 'dialer-%g' 1 "$dialers")

services "ingest scheduler" start
key=$("$local_dir/seed.sh")
q <<SQL
INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
VALUES ('$dep_inflight', '$application', '$account', 'bench-dialer-inflight', 100000),
       ('$dep_events', '$application', '$account', 'bench-dialer-events', 100000),
       ('$dep_hooks', '$application', '$account', 'bench-dialer-webhooks', 100000);
SQL

# ------------------------------------------------------------ 1. in flight
if want inflight; then
	quiet inflight
	ob_say "inflight: 1 dialer, $inflight_channels channels, $inflight_calls calls ringing 30 s (at most $limit s)"
	start_dialers dialer-1 OB_DIALER_CHANNELS="$inflight_channels" OB_WEBHOOK_ENABLED=false \
		OB_SIM_TIME_SCALE=1 OB_DRAIN_TIMEOUT_MS=3000
	wait_until 30 "SELECT count(*) = 1 FROM dialers WHERE seen_at > now() - interval '3 seconds'" ||
		ob_warn "inflight: the dialer did not announce itself in 30 s"
	"$py" "$here/dialer_report.py" inflight "$(dialer_metrics 1)" "$OB_LOCAL_RUN/dialer-1.pid" \
		"$inflight_calls" "$limit" "$work/inflight.watch.json" &
	watcher=$!
	"$py" "$here/dialer_report.py" batch "$api" "$key" "$dep_inflight" "$inflight_calls" "+12125550140" - \
		"$work/inflight.batch.json" || ob_warn "inflight: not every call was queued"
	wait "$watcher" || true
	watcher=
	# The calls still ringing are hung up after the short drain.
	services dialer-1 stop || true
fi

# ------------------------------------------------------------ 2. events
if want events; then
	ob_say "events: queueing $events_calls calls (voice) before the dialers start"
	"$py" "$here/dialer_report.py" batch "$api" "$key" "$dep_events" "$events_calls" "+12125550100" - \
		"$work/events.batch.json" || ob_warn "events: not every call was queued"
	wait_until 120 "SELECT count(*) >= $events_calls FROM calls WHERE deployment_id = '$dep_events'" ||
		ob_warn "events: the scheduler did not record every call in 120 s"
	quiet events
	ob_say "events: $dialers dialers x $channels channels, OB_SIM_TIME_SCALE=$fast (at most $limit s)"
	"$py" "$here/dialer_report.py" events "$dsn" "$OB_LOCAL_KAFKA_BOOTSTRAP" "${prefix}call-events" "$event_parts" \
		"$limit" "$work/events.watch.json" $$ "$pg_pid" "$kafka_pid" &
	watcher=$!
	events_start_ms=$(date +%s%3N)
	start_dialers "$all_dialers" OB_DIALER_CHANNELS="$channels" OB_WEBHOOK_ENABLED=false OB_SIM_TIME_SCALE="$fast"
	wait "$watcher" || true
	watcher=
	events_end_ms=$(($(date +%s%3N) + 1))
	q -c "SELECT coalesce(json_object_agg(type, n), '{}') FROM (SELECT e.type, count(*) n FROM call_events e
	      WHERE e.deployment_id = '$dep_events' GROUP BY 1) x" >"$work/events.types.json"
	q -c "SELECT json_build_object('completed', count(*) FILTER (WHERE state = 'completed'), 'calls', count(*))
	      FROM calls WHERE deployment_id = '$dep_events'" >"$work/events.completed.json"
	# The limits: the phase's events, read back from the topic, produced
	# again by librdkafka alone with the dialers' producer settings (to a
	# topic of their own with as many partitions); and COPY of the phase's
	# call_events rows into call_events. The dialers are stopped first.
	services "$all_dialers" stop || true
	kcat -C -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -t "${prefix}call-events" -o "s@$events_start_ms" \
		-o "e@$events_end_ms" -e -q -f '%k\t%s\n' >"$work/events.messages"
	quiet events_limit
	ob_say "events limit: raw produce of $(wc -l <"$work/events.messages") events"
	OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP OB_TOPIC_PARTITIONS=$event_parts \
		"$root/build/bench/limit_produce" "${prefix}call-events.limit" bulk "$work/events.messages" \
		>"$work/limit.produce_events.json" || ob_warn "events limit: limit_produce failed"
	ob_say "events limit: COPY of the phase's call_events rows"
	copy_limit "$dsn" "$work/limit.copy_events.json" call_events "deployment_id = '$dep_events'" ||
		ob_warn "events limit: COPY failed"
fi

# ------------------------------------------------------------ 3. webhooks
if want webhooks; then
	ob_say "webhooks: $webhook_calls calls with a result_url, completed with webhooks off"
	start_dialers "$all_dialers" OB_DIALER_CHANNELS="$channels" OB_WEBHOOK_ENABLED=false OB_SIM_TIME_SCALE="$fast"
	"$py" "$here/dialer_report.py" batch "$api" "$key" "$dep_hooks" "$webhook_calls" "+12125550100" "$hook_url" \
		"$work/webhooks.batch.json" || ob_warn "webhooks: not every call was queued"
	wait_until "$limit" "SELECT count(*) FILTER (WHERE state = 'completed') >= $webhook_calls FROM calls
	                     WHERE deployment_id = '$dep_hooks'" ||
		ob_warn "webhooks: not every call completed in $limit s"
	services "$all_dialers" stop || true

	"$py" "$here/dialer_report.py" receiver "$receiver_port" "$work/receiver.json" &
	receiver=$!
	sleep 0.5
	quiet webhooks
	ob_say "webhooks: $dialers dialers with webhooks on (at most $limit s)"
	urls=$(for ((i = 1; i <= dialers; i++)); do dialer_metrics "$i"; done | paste -sd,)
	"$py" "$here/dialer_report.py" webhooks "$urls" "$dsn" "$webhook_calls" "$limit" "$work/webhooks.watch.json" \
		$$ "$pg_pid" "$kafka_pid" "$receiver" &
	watcher=$!
	start_dialers "$all_dialers" OB_DIALER_CHANNELS="$channels" OB_WEBHOOK_ENABLED=true OB_SIM_TIME_SCALE="$fast"
	wait "$watcher" || true
	watcher=
	bench_bg_stop "$receiver"
	receiver=
fi

# ------------------------------------------------------------ results
svc_env=$("$py" -c 'import json, os, re
print(json.dumps({k: v for k, v in sorted(os.environ.items())
                  if re.match("OB_(WEBHOOK|KAFKA|DIALER)_", k) and not re.search("KEY|PASSWORD|SECRET|SASL", k)}))')
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
[[ -z $(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] ||
	dirty=true
cat >"$work/params.json" <<EOF
{"mode": "$mode", "date": "$started", "port_base": $OB_LOCAL_PORT_BASE, "git_commit": "$commit", "git_dirty": $dirty,
 "service_env": $svc_env, "binaries": {$bins},
 "quiet": {"inflight": $(cat "$work/inflight.quiet" 2>/dev/null || echo null),
           "events": $(cat "$work/events.quiet" 2>/dev/null || echo null),
           "webhooks": $(cat "$work/webhooks.quiet" 2>/dev/null || echo null)},
 "params": {"inflight_calls": $inflight_calls, "inflight_channels": $inflight_channels, "events_calls": $events_calls,
            "webhook_calls": $webhook_calls, "dialers": $dialers, "events_channels": $channels,
            "fast_time_scale": "$fast", "limit_s": $limit, "event_partitions": $event_parts}}
EOF
"$py" "$here/dialer_report.py" assemble "$work" "$work/params.json" "$results"
"$py" "$here/dialer_report.py" table "$results"
if ((write_doc)); then
	"$py" "$here/dialer_report.py" markdown "$results" "$root/BENCHMARKS.md"
	ob_say "rewrote the dialer block of BENCHMARKS.md"
fi
ob_say "raw results: $results (work files: $work; logs: $OB_LOCAL_LOGS)"
