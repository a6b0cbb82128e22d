#!/usr/bin/env bash
# `make bench` and `make bench-quick` (issue 8): every benchmark of the
# project, one after the other, then one table of each stage against the
# limit of what it is built on, measured in the same run (bench/summary.py):
#
#   bench/run.sh        single call, batch, CSV upload  (+ fixed 202, raw produce, libcsv)
#   bench/scheduler.sh  latency, recording, release     (+ raw consume, COPY)
#   bench/dialer.sh     calls in flight, events, webhooks (+ raw produce, COPY)
#   bench/e2e.sh        end to end, and growth at three sizes with 1 and 2 instances
#   bench/media.sh      media calls held on one sip dialer   (target: 1,000 calls on 1 core)
#
# A full run gives each its own stack (their usual ports and state) and
# rewrites BENCHMARKS.md: each script's block and the summary block. --quick
# runs the same harness with small sizes on one shared stack (each script
# with topics of its own; two growth sizes, no webhooks phase, 100 media
# calls held 8 s), meant to
# finish in under two minutes on an idle 2-core machine,
# and leaves BENCHMARKS.md alone; `make test` runs it to prove the harness
# works: its last line is "bench-quick: N passed, M failed", one per stage
# row that got both its figure and its limit (no time is asserted).
#
# Usage: bench/all.sh [--quick]
# Settings: BENCH_ALL (a subset of "ingest scheduler dialer e2e media"),
# OB_BENCH_QUICK_PORT_BASE (27000) and OB_BENCH_QUICK_STATE for --quick;
# each script's own settings (BENCH_*, OB_BENCH_*_PORT_BASE) pass through.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
py=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64
benches=" ${BENCH_ALL:-ingest scheduler dialer e2e media} "
stamp=$(date +%Y%m%dT%H%M%S)
results=$root/bench/results
mkdir -p "$results"
mark=$(mktemp)
trap 'rm -f "$mark"' EXIT

if ((quick)); then
	# One stack for all five, brought up once and down at the end.
	base=${OB_BENCH_QUICK_PORT_BASE:-27000} state=${OB_BENCH_QUICK_STATE:-$root/.local-bench/quick}
	export OB_BENCH_PORT_BASE=$base OB_BENCH_SCHED_PORT_BASE=$base OB_BENCH_DIALER_PORT_BASE=$base
	export OB_BENCH_E2E_PORT_BASE=$base OB_BENCH_MEDIA_PORT_BASE=$base
	export OB_BENCH_STATE=$state OB_BENCH_SCHED_STATE=$state OB_BENCH_DIALER_STATE=$state
	export OB_BENCH_E2E_STATE=$state OB_BENCH_MEDIA_STATE=$state BENCH_KEEP_STACK=1
	# Small sizes: the harness, not the numbers.
	export BENCH_DURATION=${BENCH_DURATION:-2} BENCH_WARMUP=${BENCH_WARMUP:-1}
	export BENCH_BATCH_SIZE=${BENCH_BATCH_SIZE:-1000} BENCH_BATCH_REQUESTS=${BENCH_BATCH_REQUESTS:-2}
	export BENCH_CSV_ROWS=${BENCH_CSV_ROWS:-5000}
	export BENCH_SCHED_DEPLOYMENTS=${BENCH_SCHED_DEPLOYMENTS:-50} BENCH_SCHED_CALLS=${BENCH_SCHED_CALLS:-5000}
	export BENCH_SCHED_LATENCY_CALLS=${BENCH_SCHED_LATENCY_CALLS:-40} BENCH_SCHED_LATENCY_RATE=${BENCH_SCHED_LATENCY_RATE:-40}
	export BENCH_SCHED_LATENCY_WARMUP=${BENCH_SCHED_LATENCY_WARMUP:-20} BENCH_SCHED_RECORD_CALLS=${BENCH_SCHED_RECORD_CALLS:-5000}
	export BENCH_SCHED_RELEASE_LIMIT=${BENCH_SCHED_RELEASE_LIMIT:-20}
	export BENCH_DIALER_INFLIGHT_CALLS=${BENCH_DIALER_INFLIGHT_CALLS:-200}
	export BENCH_DIALER_EVENTS_CALLS=${BENCH_DIALER_EVENTS_CALLS:-2000}
	export BENCH_DIALER_LIMIT=${BENCH_DIALER_LIMIT:-30}
	# Webhooks are no stage of the table: left out of the smoke run.
	export BENCH_DIALER_PHASES=${BENCH_DIALER_PHASES:-"inflight events"}
	export BENCH_E2E_SIZES=${BENCH_E2E_SIZES:-"400 800"} BENCH_E2E_DEPLOYMENTS=${BENCH_E2E_DEPLOYMENTS:-"4 8"}
	export BENCH_E2E_LIMIT=${BENCH_E2E_LIMIT:-30}
	export BENCH_MEDIA_CALLS=${BENCH_MEDIA_CALLS:-100} BENCH_MEDIA_KEY_AFTER_MS=${BENCH_MEDIA_KEY_AFTER_MS:-8000}
	# Stopped by its pid files at the end, also when it came up only in part.
	# shellcheck disable=SC2317 # run by the EXIT trap
	stop_quick() {
		OB_LOCAL_PORT_BASE=$base OB_LOCAL_STATE=$state OB_LOCAL_INGESTS=2 OB_LOCAL_SCHEDULERS=2 \
			"$root/deploy/local/services.sh" stop >/dev/null 2>&1
		OB_LOCAL_PORT_BASE=$base OB_LOCAL_STATE=$state "$root/deploy/local/stack.sh" down
		rm -f "$mark"
	}
	trap stop_quick EXIT
	(
		export OB_LOCAL_PORT_BASE=$base OB_LOCAL_STATE=$state
		"$root/deploy/local/stack.sh" up
	) || exit 1
fi

# run NAME SCRIPT PATTERN: runs one benchmark; sets $last to the results
# file it wrote (empty when none).
status=0
args=()
((quick)) && args=(--quick)
run() {
	local name=$1 script=$2 pattern=$3 env=()
	last=
	[[ $benches == *" $name "* ]] || return 0
	touch "$mark"
	if ((quick)); then
		# Topics of its own on the shared stack, created before it looks.
		env=(OB_TOPIC_PREFIX="quick-$stamp-$name.")
		OB_LOCAL_PORT_BASE=$base OB_LOCAL_STATE=$state "$root/deploy/local/kafka.sh" topics \
			"quick-$stamp-$name.call-requests:8" "quick-$stamp-$name.dial-jobs:8" \
			"quick-$stamp-$name.call-events:8" >&2
	fi
	if ! env "${env[@]}" "$here/$script" "${args[@]}" >&2; then
		echo "bench: $script failed" >&2
		status=1
	fi
	last=$(find "$results" -maxdepth 1 -name "$pattern" -newer "$mark" | sort | tail -n1)
}
run ingest run.sh '2*.json'
ingest=$last
run scheduler scheduler.sh 'scheduler-*.json'
scheduler=$last
run dialer dialer.sh 'dialer-*.json'
dialer=$last
run e2e e2e.sh 'e2e-*.json'
e2e=$last
run media media.sh 'media-*.json'
media=$last

md=()
((quick)) || md=("$root/BENCHMARKS.md")
"$py" "$here/summary.py" "${ingest:--}" "${scheduler:--}" "${dialer:--}" "${e2e:--}" "${media:--}" \
	"$results/bench-$stamp.json" "${md[@]}" || status=1
exit $status
