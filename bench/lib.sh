# shellcheck shell=bash
# Shell helpers the benchmark scripts share: the --quick argument, the
# bench stack's bring-up and tear-down, seeding a due backlog straight into
# Postgres, and the COPY limit (which uses deploy/local/lib.sh's clock and
# process checks, sourced by every script).

# bench_quick SCRIPT [ARG]: prints 1 for --quick and 0 for no argument;
# anything else is a usage error (exit 64):  quick=$(bench_quick "$0" "$@") || exit 64
bench_quick() {
	case ${2:-} in
	--quick) echo 1 ;;
	'') echo 0 ;;
	*)
		echo "usage: $1 [--quick]" >&2
		return 64
		;;
	esac
}

# bench_stack_up [VAR...]: brings up the bench's Kafka and PostgreSQL ($local_dir
# is deploy/local) with a fresh Kafka log when its broker was not running, so
# that runs start from the same place, and stops the services a
# BENCH_KEEP_STACK run left. On exit (the trap it sets) the background
# helpers whose pids the variables VAR hold get SIGTERM, then the services
# and the stack are stopped, unless $keep_stack.
bench_stack_up() {
	bench_bg_vars=("$@")
	trap bench_stack_down EXIT
	trap 'exit 130' INT TERM
	if ! "$local_dir/kafka.sh" status >/dev/null 2>&1; then
		rm -rf "$OB_LOCAL_STATE/kafka/data"
	fi
	"$local_dir/stack.sh" up
	bench_services_stop >/dev/null
}

# pgss_enable ADMIN_DSN: loads pg_stat_statements into the bench's PostgreSQL
# when it is installed (a restart, once per state dir); prints 1 if it is
# there, 0 if not.
pgss_enable() {
	if [[ $(psql "$1" -Atc "select count(*) from pg_available_extensions where name = 'pg_stat_statements'") != 1 ]]; then
		echo 0
		return
	fi
	if [[ $(psql "$1" -Atc 'show shared_preload_libraries') != *pg_stat_statements* ]]; then
		ob_say "enabling pg_stat_statements (restarts the bench's PostgreSQL once)" >&2
		psql "$1" -qc "alter system set shared_preload_libraries = 'pg_stat_statements'"
		"$local_dir/postgres.sh" stop >&2
		"$local_dir/postgres.sh" start >&2
	fi
	echo 1
}

# pgss_reset DSN: the statements' counters from zero (the extension created
# in the database first: every run's database is fresh).
pgss_reset() {
	psql "$1" -qAt -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' \
		-c 'SELECT pg_stat_statements_reset()' >/dev/null
}

# pgss_top DSN: the 15 statements that took the most time in the outbound
# database since pgss_reset, as JSON (calls, total and mean ms, rows, query).
pgss_top() {
	psql "$1" -qAt <<'SQL'
SELECT coalesce(json_agg(x), '[]') FROM (
  SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
         rows, query
  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'outbound')
  ORDER BY total_exec_time DESC LIMIT 15) x;
SQL
}

# bench_services_stop: every service of the bench stack, up to the two
# ingests and schedulers of bench/e2e.sh's growth runs.
bench_services_stop() {
	OB_LOCAL_SERVICES='' OB_LOCAL_INGESTS=2 OB_LOCAL_SCHEDULERS=2 "$local_dir/services.sh" stop
}

# bench_bg_stop PID: SIGTERM to a helper this script started, and its exit.
bench_bg_stop() {
	if [[ -n $1 ]] && ob_pid_running "$1"; then
		kill -TERM "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

# shellcheck disable=SC2317 # run by bench_stack_up's EXIT trap
bench_stack_down() {
	local rc=$? var
	trap - EXIT INT TERM
	for var in "${bench_bg_vars[@]}"; do bench_bg_stop "${!var:-}"; done
	if ((keep_stack)); then
		ob_say "leaving the bench stack running (OB_LOCAL_PORT_BASE=$OB_LOCAL_PORT_BASE" \
			"OB_LOCAL_STATE=$OB_LOCAL_STATE; stop: services.sh stop; stack.sh down)"
	else
		ob_say "stopping the bench stack"
		bench_services_stop || rc=1
		"$local_dir/stack.sh" down || rc=1
	fi
	exit "$rc"
}

# seed_backlog DSN DEPLOYMENTS CALLS CAPACITY REQUEST_PARTITIONS: a bench
# account and application, DEPLOYMENTS deployments of CAPACITY and CALLS
# queued calls due between 1 and 11 minutes ago. Call i belongs to
# deployment i % DEPLOYMENTS; a deployment's calls share a partition, as
# ingest keys call requests by deployment.
seed_backlog() {
	psql "$1" -v ON_ERROR_STOP=1 -qAt <<SQL
INSERT INTO accounts (account_id, email, name)
VALUES ('00000000-0000-7000-8000-0000000be001', 'bench-scheduler@example.com', 'Scheduler bench');
INSERT INTO applications (application_id, account_id, name)
VALUES ('00000000-0000-7000-8000-0000000be002', '00000000-0000-7000-8000-0000000be001', 'bench-scheduler');
INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
SELECT ('00000000-0000-7000-8001-' || lpad(to_hex(i), 12, '0'))::uuid,
       '00000000-0000-7000-8000-0000000be002', '00000000-0000-7000-8000-0000000be001',
       'bench-' || i, $4
FROM generate_series(0, $2 - 1) i;
INSERT INTO calls (call_id, deployment_id, account_id, request_partition, phone_number,
                   message_reference, max_attempts, retry_interval_s, not_before,
                   next_attempt_at, accepted_at)
SELECT ('00000000-0000-7000-8002-' || lpad(to_hex(i), 12, '0'))::uuid,
       ('00000000-0000-7000-8001-' || lpad(to_hex(i % $2), 12, '0'))::uuid,
       '00000000-0000-7000-8000-0000000be001', (i % $2) % $5,
       '+1212555' || lpad((i % 10000)::text, 4, '0'), 'bench-sched-' || i, 1, 600, t, t, t
FROM generate_series(0, $3 - 1) i,
     LATERAL (SELECT now() - interval '1 minute' - (i % 600) * interval '1 second' AS t) n;
VACUUM ANALYZE calls;
VACUUM ANALYZE deployments;
VACUUM ANALYZE attempts;
SQL
}

# copy_limit DSN OUT TABLE WHERE [TABLE WHERE ...]: the limit of writing
# rows. The rows of each TABLE matching its WHERE (what a service wrote) are
# saved, deleted (last table first, for the foreign keys) and written back
# with COPY into the same tables, with their indexes, constraints and
# triggers as they were, in one psql session; prints one JSON line to OUT
# (rows: the first table's; per_s: those rows per second).
copy_limit() {
	local dsn=$1 out=$2 tmp i n start secs rows copies=() deletes=()
	shift 2
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-copy.XXXXXX")
	n=$(($# / 2))
	local -a table=() where=()
	while (($#)); do
		table+=("$1") where+=("$2")
		shift 2
	done
	for ((i = 0; i < n; i++)); do
		psql "$dsn" -v ON_ERROR_STOP=1 -qAt \
			-c "\\copy (SELECT * FROM ${table[i]} WHERE ${where[i]}) TO '$tmp/$i'" || return 1
		copies+=(-c "\\copy ${table[i]} FROM '$tmp/$i'")
		deletes=(-c "DELETE FROM ${table[i]} WHERE ${where[i]}" "${deletes[@]}")
	done
	psql "$dsn" -v ON_ERROR_STOP=1 -qAt "${deletes[@]}" || return 1
	for ((i = 0; i < n; i++)); do psql "$dsn" -qAt -c "VACUUM ${table[i]}"; done
	rows=$(wc -l <"$tmp/0")
	start=$(ob_now_us)
	psql "$dsn" -v ON_ERROR_STOP=1 -qAt "${copies[@]}" || return 1
	secs=$(ob_elapsed "$start")
	printf '{"tool":"copy","tables":"%s","rows":%d,"all_rows":%d,"seconds":%s,"per_s":%s}\n' "${table[*]}" \
		"$rows" "$(cat "$tmp"/* | wc -l)" "$secs" \
		"$(awk -v r="$rows" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? r / s : 0) }')" >"$out"
	rm -rf "$tmp"
}
