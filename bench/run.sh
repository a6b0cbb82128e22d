#!/usr/bin/env bash
# `make bench`: measures the ingest API on this machine (issue 3).
#
#   1. single call: wrk, keep-alive, 20 s, posting one call as JSON with the
#      bearer key (bench/wrk_queue.lua); requests/s, p50/p99 and every non-2xx
#      answer; once with 64 connections (saturation: the most requests/s) and
#      once with 16 (a load above the 10,000 requests/s target, where its p99
#      target applies);
#   2. batch: 10 requests of 10,000 calls, from 1 client and then from 2 at
#      once; calls/s accepted (each answer comes after Kafka acknowledged all
#      of its calls);
#   3. CSV upload of 1,000,000 rows: time, and ingest's peak resident memory
#      (VmHWM, reset just before the upload).
#
# It runs its own stack: Kafka, PostgreSQL and ingest only (no scheduler or
# dialers competing for the cores), on OB_LOCAL_PORT_BASE=23000 with its state
# in .local-bench/, so it never meets the developer's stack or the tests. The
# stack is brought up at the start and down at the end (by its pid files).
# Writes bench/results/<timestamp>.json, prints a table and, for a full run,
# rewrites BENCHMARKS.md (its notes section is kept).
#
# Usage: bench/run.sh [--quick]   (--quick: small sizes, a smoke run < 60 s)
# Settings (environment): BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
# BENCH_LOAD_CONNECTIONS,
# BENCH_WRK_THREADS, BENCH_BATCH_SIZE, BENCH_BATCH_REQUESTS,
# BENCH_BATCH_CLIENTS, BENCH_CSV_ROWS, BENCH_QUIET_TIMEOUT (seconds to wait
# for other work on the machine to calm down before each phase),
# BENCH_PHASES (default "single batch csv"), BENCH_WRITE_DOC (1: rewrite
# BENCHMARKS.md; never when a phase is left out), BENCH_KEEP_STACK (1: leave the
# bench stack running), OB_BENCH_PORT_BASE, OB_BENCH_STATE. OB_INGEST_* and
# OB_KAFKA_* settings pass through to ingest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
local_dir=$root/deploy/local
py=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64

# The bench stack: its own ports and state, ingest only.
export OB_LOCAL_PORT_BASE=${OB_BENCH_PORT_BASE:-23000}
export OB_LOCAL_STATE=${OB_BENCH_STATE:-$root/.local-bench}
export OB_LOCAL_SERVICES=ingest
# One client key drives all the load, so the per-key admission limits (meant
# to keep one tenant from crowding out others) would measure themselves:
# lift them unless the caller sets them.
export OB_INGEST_KEY_RATE=${OB_INGEST_KEY_RATE:-1000000}
export OB_INGEST_KEY_CONCURRENCY=${OB_INGEST_KEY_CONCURRENCY:-100000}
# shellcheck source=deploy/local/env.sh
. "$local_dir/env.sh"
# shellcheck source=deploy/local/lib.sh
. "$local_dir/lib.sh"
export OB_SELF=bench

if ((quick)); then
	duration=${BENCH_DURATION:-3} warmup=${BENCH_WARMUP:-1}
	batch_size=${BENCH_BATCH_SIZE:-1000} batch_requests=${BENCH_BATCH_REQUESTS:-2}
	csv_rows=${BENCH_CSV_ROWS:-20000} quiet_timeout=${BENCH_QUIET_TIMEOUT:-0}
	write_doc=${BENCH_WRITE_DOC:-0} mode=quick
else
	duration=${BENCH_DURATION:-20} warmup=${BENCH_WARMUP:-5}
	batch_size=${BENCH_BATCH_SIZE:-10000} batch_requests=${BENCH_BATCH_REQUESTS:-10}
	csv_rows=${BENCH_CSV_ROWS:-1000000} quiet_timeout=${BENCH_QUIET_TIMEOUT:-120}
	write_doc=${BENCH_WRITE_DOC:-1} mode=full
fi
connections=${BENCH_CONNECTIONS:-64}
load_connections=${BENCH_LOAD_CONNECTIONS:-16}
wrk_threads=${BENCH_WRK_THREADS:-2}
batch_clients=${BENCH_BATCH_CLIENTS:-2}
keep_stack=${BENCH_KEEP_STACK:-0}
phases=" ${BENCH_PHASES:-single batch csv} "
[[ $phases == *" single "* && $phases == *" batch "* && $phases == *" csv "* ]] || write_doc=0
want() { [[ $phases == *" $1 "* ]]; }

api=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
dep=00000000-0000-7000-8000-00000000d003
topic=${OB_TOPIC_PREFIX:-outbound.}call-requests
work=$OB_LOCAL_STATE/bench-work
data=$OB_LOCAL_STATE/bench-data
stamp=$(date +%Y%m%dT%H%M%S)
started=$(date -Iseconds)
results=$root/bench/results/$stamp.json

for tool in wrk curl kcat "$py"; do
	command -v "$tool" >/dev/null || ob_die "$tool not found; run deploy/local/deps.sh (make bench does)"
done
[[ -x $root/build/bin/outbound-ingest ]] || ob_die "build/bin/outbound-ingest missing; run make"
limits=$root/build/bench
for tool in limit_http limit_produce limit_csv; do
	[[ -x $limits/$tool ]] || ob_die "build/bench/$tool missing; run make bench-tools"
done

# ------------------------------------------------------------ the stack
# A fresh Kafka log each run (when the bench broker is not running);
# Postgres only keeps the tenant and uploads.
bench_stack_up
"$local_dir/services.sh" start # applies the migrations seed.sh needs
key=$("$local_dir/seed.sh")
ingest_pid=$(ob_pidfile_read "$OB_LOCAL_RUN/ingest.pid" outbound-ingest) || ob_die "ingest is not running"
kafka_pid=$(<"$OB_LOCAL_RUN/kafka.pid")
pg_pid=$(head -n1 "$OB_LOCAL_RUN/postgres.pid")

rm -rf "$work"
mkdir -p "$work" "$data" "$root/bench/results"

auth=(-H "Authorization: Bearer $key")
probe=$(curl -sS -o "$work/probe.json" -w '%{http_code}' -X POST "${auth[@]}" \
	-H 'Content-Type: application/json' \
	-d '{"phone_number": "+1 212 555 0100", "message_reference": "bench-probe"}' \
	"$api/api/v1/deployments/$dep/calls")
[[ $probe == 202 ]] || ob_die "a probe call got HTTP $probe: $(cat "$work/probe.json")"

offsets() {
	local args=() p parts
	parts=$(kcat -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -L -t "$topic" 2>/dev/null |
		sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -n1)
	for ((p = 0; p < ${parts:-0}; p++)); do args+=(-t "$topic:$p:-1"); done
	kcat -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -Q "${args[@]}" >"$1" 2>&1 || true
}

# phase_begin NAME [PID] / phase_end NAME: wait for a quiet machine, then
# record Kafka's end offsets around the phase and who used the CPU during it
# (PID, default ingest, is counted in the "ingest" column).
phase_begin() {
	if ((quiet_timeout > 0)); then
		ob_say "$1: waiting for the machine to be quiet (at most ${quiet_timeout} s)"
	fi
	"$py" "$here/report.py" quiet 0.3 "$quiet_timeout" >"$work/$1.quiet"
	offsets "$work/$1.offsets.before"
	"$py" "$here/ingest_report.py" watch "$work/$1.cpu" $$ "${2:-$ingest_pid}" "$kafka_pid" "$pg_pid" &
	watcher=$!
	sleep 0.2 # its first sample
}
phase_end() {
	kill -TERM "$watcher"
	wait "$watcher" || true
	# wrk leaves requests in flight when it stops; let ingest answer them.
	sleep 1
	offsets "$work/$1.offsets.after"
	ob_pid_running "$ingest_pid" || ob_die "ingest died during $1; log: $OB_LOCAL_LOGS/ingest.log"
}

now() { date +%s.%N; }

# vm FIELD: ingest's FIELD (VmHWM, VmRSS) from /proc/PID/status, in kB.
vm() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$ingest_pid/status"; }

# batch_client NAME CLIENT: one client, $batch_requests requests one after the other.
batch_client() {
	local name=$1 c=$2 r
	for ((r = 1; r <= batch_requests; r++)); do
		curl -sS -o "$work/$name.c$c.r$r.json" -w "$c $r %{http_code} %{time_total}\n" \
			-X POST "${auth[@]}" -H 'Content-Type: application/json' -H 'Expect:' \
			--data-binary @"$data/batch-$batch_size.json" \
			"$api/api/v1/deployments/$dep/calls:batch" >>"$work/$name.c$c.txt" ||
			echo "$c $r 000 0" >>"$work/$name.c$c.txt"
	done
}

# run_batches NAME CLIENTS
run_batches() {
	local name=$1 clients=$2 c start end pids=()
	phase_begin "$name"
	ob_say "batch: $clients client(s) x $batch_requests requests x $batch_size calls"
	start=$(now)
	for ((c = 1; c <= clients; c++)); do
		batch_client "$name" "$c" &
		pids+=($!)
	done
	wait "${pids[@]}"
	end=$(now)
	printf '{"start":%s,"end":%s,"clients":%d,"calls_per_request":%d}\n' \
		"$start" "$end" "$clients" "$batch_size" >"$work/$name.wall"
	# The phase's messages, by their timestamps, for the raw produce limit.
	echo "${start%.*}${start#*.}" | cut -c1-13 >"$work/$name.start_ms"
	echo "$(($(date +%s%3N) + 1))" >"$work/$name.end_ms"
	phase_end "$name"
}

# ------------------------------------------------------------ 1. single call
if want single; then
	ob_say "single call: warm-up ${warmup} s"
	BENCH_KEY=$key BENCH_OUT=$work/warmup.wrk.json wrk -t"$wrk_threads" -c"$connections" \
		-d"${warmup}s" -s "$here/wrk_queue.lua" "$api/api/v1/deployments/$dep/calls" >/dev/null
	# Twice: at saturation (every core busy, the most requests/s), and at
	# the lighter load where the latency target is held.
	for run in "single $connections" "single_load $load_connections"; do
		read -r name conns <<<"$run"
		phase_begin "$name"
		ob_say "single call: wrk -t$wrk_threads -c$conns -d${duration}s"
		BENCH_KEY=$key BENCH_OUT=$work/$name.wrk.json wrk -t"$wrk_threads" -c"$conns" \
			-d"${duration}s" --latency -s "$here/wrk_queue.lua" "$api/api/v1/deployments/$dep/calls" |
			sed 's/^/    /'
		phase_end "$name"
	done
fi

# The limit: libmicrohttpd with ingest's configuration answering a fixed
# 202 (build/bench/limit_http), under the same wrk load as the saturation run.
if want single; then
	limit_port=$((OB_LOCAL_PORT_BASE + 79))
	# Like services.sh, a few tries: the port may be a client's for a moment.
	for try in 1 2 3; do
		# The same OB_INGEST_* settings reach it; the others are only required.
		OB_HTTP_PORT=$limit_port OB_INSTANCE_ID=limit-http OB_PG_DSN=$OB_LOCAL_PG_DSN \
			OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP setsid "$limits/limit_http" \
			>"$work/limit.http.json" 2>"$OB_LOCAL_LOGS/limit-http.log" </dev/null &
		limit_pid=$!
		until curl -fsS -o /dev/null "http://127.0.0.1:$limit_port/healthz" 2>/dev/null; do
			ob_pid_running "$limit_pid" || break
			sleep 0.1
		done
		ob_pid_running "$limit_pid" && break
		((try < 3)) || ob_die "limit_http exited; log: $OB_LOCAL_LOGS/limit-http.log"
		sleep 1
	done
	BENCH_KEY=$key wrk -t"$wrk_threads" -c"$connections" -d"${warmup}s" -s "$here/wrk_queue.lua" \
		"http://127.0.0.1:$limit_port/api/v1/deployments/$dep/calls" >/dev/null
	phase_begin single_limit "$limit_pid"
	ob_say "single call limit (fixed 202): wrk -t$wrk_threads -c$connections -d${duration}s"
	BENCH_KEY=$key BENCH_OUT=$work/single_limit.wrk.json wrk -t"$wrk_threads" -c"$connections" \
		-d"${duration}s" --latency -s "$here/wrk_queue.lua" \
		"http://127.0.0.1:$limit_port/api/v1/deployments/$dep/calls" | sed 's/^/    /'
	phase_end single_limit
	kill -TERM "$limit_pid"
	wait "$limit_pid" || ob_warn "limit_http did not exit cleanly"
fi

# ------------------------------------------------------------ 2. batches
if want batch; then
	"$py" "$here/gen.py" batch "$batch_size" "$data/batch-$batch_size.json"
	run_batches batch_sequential 1
	run_batches batch_concurrent "$batch_clients"
	# The limit: the concurrent phase's messages, read back from the topic,
	# produced again by librdkafka alone with ingest's batch producer
	# settings, to a topic of their own with as many partitions.
	kcat -C -b "$OB_LOCAL_KAFKA_BOOTSTRAP" -t "$topic" -o "s@$(<"$work/batch_concurrent.start_ms")" \
		-o "e@$(<"$work/batch_concurrent.end_ms")" -e -q -f '%k\t%s\n' >"$work/batch.messages"
	phase_begin batch_limit
	ob_say "batch limit: raw produce of $(wc -l <"$work/batch.messages") messages"
	OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP OB_TOPIC_PARTITIONS=$OB_LOCAL_REQUEST_PARTITIONS \
		"$limits/limit_produce" "${topic}.limit" bulk "$work/batch.messages" >"$work/limit.produce.json" ||
		ob_warn "batch limit: limit_produce failed"
	phase_end batch_limit
fi

# ------------------------------------------------------------ 3. CSV upload
if want csv; then
	"$py" "$here/gen.py" csv "$csv_rows" "$data/calls-$csv_rows.csv"
	phase_begin csv
	hwm_before=$(vm VmHWM)
	rss_before=$(vm VmRSS)
	# Reset the peak to the current RSS, so VmHWM afterwards is this upload's peak
	# (the earlier phases may have raised it). Needs root or the same user.
	reset=false
	if echo 5 2>/dev/null >"/proc/$ingest_pid/clear_refs"; then reset=true; fi
	hwm_reset=$(vm VmHWM)
	touch "$work/csv.sampling"
	(while [[ -e $work/csv.sampling ]]; do vm VmRSS; sleep 0.1; done >"$work/csv.rss") &
	sampler=$!
	ob_say "CSV upload: $csv_rows rows ($(du -m "$data/calls-$csv_rows.csv" | cut -f1) MB)"
	curl -sS -o "$work/csv.response.json" -w '%{http_code} %{time_total} %{size_upload}\n' \
		-X POST "${auth[@]}" -H 'Content-Type: text/csv' -H 'Expect:' \
		--data-binary @"$data/calls-$csv_rows.csv" \
		"$api/api/v1/deployments/$dep/uploads" >"$work/csv.curl.txt" || echo "000 0 0" >"$work/csv.curl.txt"
	rm -f "$work/csv.sampling"
	wait "$sampler" || true
	hwm_after=$(vm VmHWM)
	printf '{"rows":%d,"hwm_before_kb":%d,"rss_before_kb":%d,"reset":%s,"hwm_reset_kb":%d,"hwm_after_kb":%d,"rss_after_kb":%d}\n' \
		"$csv_rows" "$hwm_before" "$rss_before" "$reset" "$hwm_reset" "$hwm_after" "$(vm VmRSS)" >"$work/csv.vm"
	phase_end csv
	# The limit: libcsv alone reading and splitting the same file.
	"$limits/limit_csv" "$data/calls-$csv_rows.csv" >"$work/limit.csv.json" || ob_warn "csv limit: limit_csv failed"
fi
printf '{"hwm_kb":%d,"rss_kb":%d}\n' "$(vm VmHWM)" "$(vm VmRSS)" >"$work/end.vm"

# ------------------------------------------------------------ results
# Ingest settings from the environment (never the admin key).
ingest_env=$("$py" -c 'import json, os, re
print(json.dumps({k: v for k, v in sorted(os.environ.items())
                  if re.match("OB_(INGEST|KAFKA)_", k) and not re.search("KEY|PASSWORD|SECRET|SASL", k)}))')
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
# Read-only: no optional locks, so a concurrent git command never meets ours.
[[ -z $(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] ||
	dirty=true
cat >"$work/params.json" <<EOF
{"mode": "$mode", "date": "$started", "port_base": $OB_LOCAL_PORT_BASE, "git_commit": "$commit", "git_dirty": $dirty,
 "ingest_env": $ingest_env,
 "params": {"single": {"threads": $wrk_threads, "connections": $connections, "load_connections": $load_connections, "duration_s": $duration, "warmup_s": $warmup},
            "batch": {"size": $batch_size, "requests": $batch_requests, "clients": $batch_clients},
            "csv": {"rows": $csv_rows}}}
EOF
"$py" "$here/ingest_report.py" assemble "$work" "$work/params.json" "$results"
"$py" "$here/ingest_report.py" table "$results"
if ((write_doc)); then
	"$py" "$here/ingest_report.py" markdown "$results" "$root/BENCHMARKS.md"
	ob_say "rewrote BENCHMARKS.md"
fi
