#!/usr/bin/env bash
# `make bench-media` (issue 21): media calls held by one dialer worker.
#
#   held: one dialer with the sip carrier (OB_DIALER_CHANNELS = the calls)
#   whose trunk is the test callee (build/tests/callee/ob-test-callee) on
#   loopback; N calls (1,000; --quick 100) queued through calls:batch, each
#   running the same document: a `say` of about 7 s, then a `gather`
#   (num_digits 1, timeout 20 s) whose prompt is a `say` looped 6 times
#   (about 27 s). The callee answers, says "Hello?" (espeak-ng, rendered
#   once), sends silence, and presses 1 (RFC 4733) BENCH_MEDIA_KEY_AFTER_MS
#   after our first audio packet (25 s; --quick 8 s), which ends the gather
#   and the call. RTP flows both ways and the callee-type detector runs on
#   every call. Sampled every 0.5 s (bench/media_report.py held): the
#   dialer's outbound_calls_in_flight, its RSS, the CPU of every process.
#   Our RTP as it left: kernel timestamps of the first 100 calls' audio
#   on lo (AF_PACKET, root or CAP_NET_RAW; skipped without), from 1 s
#   after they were all dialed until about the key. Then: the callee's report (per call: the p50/p99/max
#   gap between arrivals of our RTP, as its one thread read them), and the
#   attempts' verdicts, first_audio_ms -
#   decision_ms and gathered digits from Postgres.
#
# The targets (issue 21) are reported as ratios measured in the same run:
# calls connected at once / 1,000, the dialer's cores over the held window
# / 1.0, the p99 over calls of each call's p99 gap / 25 ms, the p99 of the
# first audio after a human verdict / 200 ms.
#
# Its own stack (Kafka and PostgreSQL on OB_LOCAL_PORT_BASE=26500, state in
# .local-bench/media/), a fresh database each run; ingest, the scheduler
# and dialer-1; the dialer's SIP port is BASE+40, the callee's BASE+41, the
# dialer's RTP ports BENCH_MEDIA_RTP_MIN (28000) and up, one even port per
# call; the callee's RTP ports are any free ones. Everything it started is
# stopped at the end. The phase has a time limit. Writes
# bench/results/media-<timestamp>.json, prints a table and, for a full run,
# rewrites the media block of BENCHMARKS.md.
#
# Usage: bench/media.sh [--quick]
# Settings (environment): BENCH_MEDIA_CALLS, BENCH_MEDIA_KEY_AFTER_MS, BENCH_MEDIA_CPS,
# BENCH_MEDIA_LIMIT (seconds for the held phase), BENCH_MEDIA_RTP_MIN,
# BENCH_QUIET_TIMEOUT (seconds to wait for the machine to be quiet first),
# BENCH_WRITE_DOC, BENCH_KEEP_STACK, OB_BENCH_MEDIA_PORT_BASE,
# OB_BENCH_MEDIA_STATE. OB_SIP_* and OB_DIALER_* settings pass through to
# the dialer (those set here win).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
local_dir=$root/deploy/local
py=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
quick=$(bench_quick "$0" "$@") || exit 64

export OB_LOCAL_PORT_BASE=${OB_BENCH_MEDIA_PORT_BASE:-26500}
export OB_LOCAL_STATE=${OB_BENCH_MEDIA_STATE:-$root/.local-bench/media}
export OB_LOCAL_DIALERS=1
unset OB_LOCAL_SERVICES
export OB_INGEST_KEY_RATE=${OB_INGEST_KEY_RATE:-1000000}
export OB_INGEST_KEY_CONCURRENCY=${OB_INGEST_KEY_CONCURRENCY:-100000}
# shellcheck source=deploy/local/env.sh
. "$local_dir/env.sh"
# shellcheck source=deploy/local/lib.sh
. "$local_dir/lib.sh"
export OB_SELF=bench-media

if ((quick)); then
	calls=${BENCH_MEDIA_CALLS:-100} key_after=${BENCH_MEDIA_KEY_AFTER_MS:-8000} limit=${BENCH_MEDIA_LIMIT:-90}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-0} write_doc=${BENCH_WRITE_DOC:-0} mode=quick
else
	calls=${BENCH_MEDIA_CALLS:-1000} key_after=${BENCH_MEDIA_KEY_AFTER_MS:-25000} limit=${BENCH_MEDIA_LIMIT:-240}
	quiet_timeout=${BENCH_QUIET_TIMEOUT:-60} write_doc=${BENCH_WRITE_DOC:-1} mode=full
fi
keep_stack=${BENCH_KEEP_STACK:-0}
# The capture of our RTP as it left: from 1 s after the calls were dialed to
# about the key, i.e. while they are held.
sniff_s=$((key_after / 1000 > 4 ? key_after / 1000 - 3 : 1))
# The trunk's calls-per-second limit (OB_SIP_CPS); 0, none: every call is
# dialed, answered and analysed by the detector at once, the hardest case.
cps=${BENCH_MEDIA_CPS:-0}
rtp_min=${BENCH_MEDIA_RTP_MIN:-28000}
rtp_max=$((rtp_min + 2 * calls - 1))
sip_port=$((OB_LOCAL_PORT_BASE + 40))
callee_port=$((OB_LOCAL_PORT_BASE + 41))
ring_ms=200
number=+12125550100
((rtp_max <= 65535)) || ob_die "BENCH_MEDIA_RTP_MIN=$rtp_min leaves no room for $calls calls' RTP ports"
# A socket per call in the dialer and in the callee, and their SIP, HTTP,
# Kafka and Postgres connections.
(($(ulimit -n) >= calls + 512)) || ob_die "ulimit -n is $(ulimit -n); $calls calls need $((calls + 512))"

dsn=$OB_LOCAL_PG_DSN
admin_dsn=postgresql://outbound@127.0.0.1:$OB_LOCAL_PG_PORT/postgres
api=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 80))
metrics=http://127.0.0.1:$((OB_LOCAL_PORT_BASE + 82))/metrics
account=00000000-0000-7000-8000-00000000d001
application=00000000-0000-7000-8000-00000000d002
dep=00000000-0000-7000-8000-0000000bd021
work=$OB_LOCAL_STATE/bench-work
stamp=$(date +%Y%m%dT%H%M%S)
started=$(date -Iseconds)
results=$root/bench/results/media-$stamp.json
callee_bin=$root/build/tests/callee/ob-test-callee

for tool in curl psql espeak-ng "$py"; do
	command -v "$tool" >/dev/null || ob_die "$tool not found; run deploy/local/deps.sh (make bench-media does)"
done
for svc in ingest scheduler dialer; do
	[[ -x $root/build/bin/outbound-$svc ]] || ob_die "build/bin/outbound-$svc missing; run make"
done
[[ -x $callee_bin ]] || ob_die "$callee_bin missing; run make build/tests/callee/ob-test-callee (make bench-media does)"
# The services and the callee run from a copy taken now (the tree may be
# rebuilt meanwhile), retaken until two reads agree (not mid-link).
export OB_LOCAL_BIN=$OB_LOCAL_STATE/bin
mkdir -p "$OB_LOCAL_BIN"
srcs=("$root"/build/bin/outbound-{ingest,scheduler,dialer} "$callee_bin")
for try in 1 2 3 4 5; do
	sums=$(sha256sum "${srcs[@]}" | cut -d' ' -f1)
	cp --remove-destination "${srcs[@]}" "$OB_LOCAL_BIN/"
	sleep 1
	[[ $(cd "$OB_LOCAL_BIN" && sha256sum outbound-ingest outbound-scheduler outbound-dialer ob-test-callee |
		cut -d' ' -f1) == "$sums" && $(sha256sum "${srcs[@]}" | cut -d' ' -f1) == "$sums" ]] && break
	((try < 5)) || ob_die "the binaries keep changing; run the bench when the build is quiet"
done
bins=$(for b in outbound-ingest outbound-scheduler outbound-dialer ob-test-callee; do
	printf '"%s": {"sha256": "%s"}\n' "$b" "$(sha256sum "$OB_LOCAL_BIN/$b" | cut -c1-16)"
done | paste -sd,)

q() { psql "$dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }
services() { OB_LOCAL_SERVICES=$1 "$local_dir/services.sh" "${@:2}"; }

# ------------------------------------------------------------ the stack
watcher='' callee='' sniffer=''
bench_stack_up watcher callee sniffer
psql "$admin_dsn" -qc 'drop database if exists outbound with (force)' -c 'create database outbound owner outbound'
kafka_pid=$(<"$OB_LOCAL_RUN/kafka.pid")
pg_pid=$(head -n1 "$OB_LOCAL_RUN/postgres.pid")
rm -rf "$work"
mkdir -p "$work" "$root/bench/results"

# The callee: "Hello?", then silence; the key after our first audio.
espeak-ng -v en-us -w "$work/hello.wav" 'Hello?'
cat >"$work/rules.json" <<EOF
{"default": {"ring_ms": $ring_ms, "greeting": "hello.wav", "greeting_after_ms": 200,
             "digits": "1", "digits_after_ms": $key_after,
             "comment": "bench/media.sh: a person who says Hello? and presses 1"}}
EOF
# The document: the same texts for every call, so the TTS cache serves them.
cat >"$work/app.json" <<'EOF'
{"verbs": [
  {"verb": "say", "text": "Hello, this is a reminder from the dental office about your appointment tomorrow at ten in the morning."},
  {"verb": "gather", "num_digits": 1, "timeout_s": 20,
   "prompt": [{"verb": "say", "loop": 6,
               "text": "Press one to confirm your appointment, or press two if you need to change it."}]}]}
EOF

"$OB_LOCAL_BIN/ob-test-callee" --listen "127.0.0.1:$callee_port" --rules "$work/rules.json" \
	--report "$work/callee.jsonl" --max-calls $((calls + 100)) --cap-ms 300000 \
	>"$work/callee.out" 2>"$OB_LOCAL_LOGS/callee.log" &
callee=$!
for _ in $(seq 50); do
	grep -q '^ready ' "$work/callee.out" 2>/dev/null && break
	ob_pid_running "$callee" || ob_die "the callee exited: $(tail -n5 "$OB_LOCAL_LOGS/callee.log")"
	sleep 0.1
done
grep -q '^ready ' "$work/callee.out" || ob_die "the callee did not say ready in 5 s"

services "ingest scheduler" start
key=$("$local_dir/seed.sh")
q -c "INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
      VALUES ('$dep', '$application', '$account', 'bench-media', $((calls * 2)))"
env OB_DIALER_CARRIER=sip OB_SIP_TRUNK="127.0.0.1:$callee_port" OB_SIP_PORT="$sip_port" \
	OB_SIP_RTP_PORT_MIN="$rtp_min" OB_SIP_RTP_PORT_MAX="$rtp_max" OB_DIALER_CHANNELS="$calls" \
	OB_SIP_CPS="$cps" OB_WEBHOOK_ENABLED=false OB_DRAIN_TIMEOUT_MS=3000 OB_LOCAL_SERVICES=dialer-1 "$local_dir/services.sh" start
deadline=$((SECONDS + 30))
until [[ $(q -c "SELECT count(*) = 1 FROM dialers WHERE seen_at > now() - interval '3 seconds'") == t ]]; do
	((SECONDS < deadline)) || {
		ob_warn "held: the dialer did not announce itself in 30 s"
		break
	}
	sleep 0.5
done

# ------------------------------------------------------------ held
if ((quiet_timeout > 0)); then
	ob_say "held: waiting for the machine to be quiet (at most ${quiet_timeout} s)"
fi
"$py" "$here/report.py" quiet 0.3 "$quiet_timeout" >"$work/held.quiet"
ob_say "held: $calls media calls through 1 dialer (OB_SIP_CPS=$cps, key after $((key_after / 1000)) s; at most $limit s)"
"$py" "$here/media_report.py" held "$metrics" "$OB_LOCAL_RUN/dialer-1.pid" "$callee" "$calls" "$limit" \
	"$work/held.json" $$ "$pg_pid" "$kafka_pid" &
watcher=$!
# Our RTP as it left, for the first 100 calls' ports (kernel timestamps).
"$py" "$here/media_report.py" sniff "$metrics" "$calls" "$rtp_min" $((rtp_min + 199)) "$sniff_s" "$work/sniff.json" &
sniffer=$!
"$py" "$here/media_report.py" batch "$api" "$key" "$dep" "$calls" "$number" "$work/app.json" "$work/batch.json" ||
	ob_warn "held: not every call was queued"
wait "$watcher" || true
watcher=
bench_bg_stop "$sniffer"
sniffer=
ob_say "held: $(q -c "SELECT count(*) FILTER (WHERE state = 'completed') || ' of ' || count(*) || ' calls completed'
                      FROM calls WHERE deployment_id = '$dep'")"
services dialer-1 stop || true
# Every call the callee still holds is ended and reported.
bench_bg_stop "$callee"
callee=
# The attempts as the scheduler recorded them (the events trail the
# dialer's stop by a moment).
deadline=$((SECONDS + 30))
until [[ $(q -c "SELECT count(*) FILTER (WHERE state <> 'completed') = 0 FROM calls WHERE deployment_id = '$dep'") == t ]]; do
	((SECONDS < deadline)) || break
	sleep 0.5
done
q >"$work/attempts.json" <<SQL
SELECT coalesce(json_agg(json_build_object(
         'result', a.result, 'decision_ms', a.decision_ms, 'first_audio_ms', a.first_audio_ms,
         'greeting_end_ms', a.greeting_end_ms, 'digits', a.digits, 'call_state', c.state,
         'gather', (SELECT v->>'outcome' FROM jsonb_array_elements(a.verbs) v WHERE v->>'verb' = 'gather' LIMIT 1),
         'connected', extract(epoch FROM a.connected_at), 'ended', extract(epoch FROM a.ended_at))), '[]')
FROM attempts a JOIN calls c USING (call_id) WHERE a.deployment_id = '$dep'
SQL

# ------------------------------------------------------------ results
svc_env=$("$py" -c 'import json, os, re
print(json.dumps({k: v for k, v in sorted(os.environ.items())
                  if re.match("OB_(SIP|DIALER)_", k) and not re.search("KEY|PASSWORD|SECRET", k)}))')
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
[[ -z $(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] ||
	dirty=true
cat >"$work/params.json" <<EOF
{"mode": "$mode", "date": "$started", "port_base": $OB_LOCAL_PORT_BASE, "git_commit": "$commit", "git_dirty": $dirty,
 "service_env": $svc_env, "binaries": {$bins}, "quiet": {"held": $(cat "$work/held.quiet" 2>/dev/null || echo null)},
 "ulimit_n": $(ulimit -n), "rmem_max": $(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo null),
 "params": {"calls": $calls, "channels": $calls, "rtp_min": $rtp_min, "rtp_max": $rtp_max, "sip_port": $sip_port,
            "callee_port": $callee_port, "ring_ms": $ring_ms, "key_after_ms": $key_after, "cps": $cps, "limit_s": $limit}}
EOF
"$py" "$here/media_report.py" assemble "$work" "$work/params.json" "$results"
"$py" "$here/media_report.py" table "$results"
if ((write_doc)); then
	"$py" "$here/media_report.py" markdown "$results" "$root/BENCHMARKS.md"
	ob_say "rewrote the media block of BENCHMARKS.md"
fi
ob_say "raw results: $results (work files: $work; logs: $OB_LOCAL_LOGS)"
