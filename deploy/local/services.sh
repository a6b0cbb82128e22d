#!/usr/bin/env bash
# Starts and stops the outbound services of the local stack (ingest, the
# scheduler and two dialers) from build/bin, each with its pid file in
# $OB_LOCAL_RUN and its JSON log in $OB_LOCAL_LOGS. Ports: ingest BASE+80,
# scheduler BASE+81, dialers BASE+82 and up; ingest-N at BASE+60+N and
# scheduler-N at BASE+70+N when OB_LOCAL_INGESTS or OB_LOCAL_SCHEDULERS ask
# for more than one. Usage: services.sh start | stop | status.
# OB_LOCAL_SERVICES picks a subset (space or comma separated: ingest,
# scheduler, dialer for all OB_LOCAL_DIALERS dialers, or dialer-N), e.g.
# OB_LOCAL_SERVICES=ingest for make bench; unset or empty means all of them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=lib.sh
. "$root/deploy/local/lib.sh"
export OB_SELF=services

bin=${OB_LOCAL_BIN:-$root/build/bin}
# The local stack's bootstrap admin key (creates accounts), kept with the state.
admin_key_file=$OB_LOCAL_STATE/admin-key
if [[ -z ${OB_INGEST_ADMIN_KEY:-} ]]; then
	mkdir -p "$OB_LOCAL_STATE"
	[[ -s $admin_key_file ]] || (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$admin_key_file")
	OB_INGEST_ADMIN_KEY=$(<"$admin_key_file")
	export OB_INGEST_ADMIN_KEY
fi
dialers=${OB_LOCAL_DIALERS:-2}
# More instances of ingest and the scheduler (ingest-2, scheduler-2, ...),
# for make bench's growth runs; one of each by default.
ingests=${OB_LOCAL_INGESTS:-1}
schedulers=${OB_LOCAL_SCHEDULERS:-1}
all=(ingest)
for ((i = 2; i <= ingests; i++)); do all+=("ingest-$i"); done
all+=(scheduler)
for ((i = 2; i <= schedulers; i++)); do all+=("scheduler-$i"); done
for ((i = 1; i <= dialers; i++)); do all+=("dialer-$i"); done
names=("${all[@]}")
if [[ -n ${OB_LOCAL_SERVICES:-} ]]; then
	declare -A wanted=()
	for want in ${OB_LOCAL_SERVICES//,/ }; do
		case $want in
		dialer | dialers) for ((i = 1; i <= dialers; i++)); do wanted[dialer-$i]=1; done ;;
		*)
			[[ " ${all[*]} " == *" $want "* ]] ||
				ob_die "OB_LOCAL_SERVICES: unknown service '$want' (known: ${all[*]}, dialer)"
			wanted[$want]=1
			;;
		esac
	done
	# Kept in the usual order, so that stop still takes the front door first.
	names=()
	for name in "${all[@]}"; do [[ -z ${wanted[$name]:-} ]] || names+=("$name"); done
	((${#names[@]} > 0)) || ob_die "OB_LOCAL_SERVICES='$OB_LOCAL_SERVICES' names no service"
fi

port_of() {
	case $1 in
	ingest) echo $((OB_LOCAL_PORT_BASE + 80)) ;;
	scheduler) echo $((OB_LOCAL_PORT_BASE + 81)) ;;
	ingest-*) echo $((OB_LOCAL_PORT_BASE + 60 + ${1#ingest-})) ;;
	scheduler-*) echo $((OB_LOCAL_PORT_BASE + 70 + ${1#scheduler-})) ;;
	dialer-*) echo $((OB_LOCAL_PORT_BASE + 81 + ${1#dialer-})) ;;
	esac
}

start_one() {
	local name=$1 svc=${1%%-*} port pid
	port=$(port_of "$name")
	if pid=$(ob_pidfile_read "$OB_LOCAL_RUN/$name.pid" "outbound-$svc"); then
		ob_say "$name already running (pid $pid, port $port)"
		return 0
	fi
	ob_port_busy "$port" && ob_die "port $port for $name is taken; set OB_LOCAL_PORT_BASE"
	mkdir -p "$OB_LOCAL_RUN" "$OB_LOCAL_LOGS"
	# Settings already in the environment (OB_SIM_TIME_SCALE, OB_LOG_LEVEL, ...)
	# pass through; these are the stack's own. Dialers refuse loopback URLs
	# by default; locally the application and webhook receivers are there.
	local -a own=()
	[[ $svc == dialer ]] && own=("OB_DIALER_URL_ALLOW=${OB_DIALER_URL_ALLOW-127.0.0.0/8,::1}")
	env "${own[@]}" OB_HTTP_PORT=$port OB_INSTANCE_ID=$name \
		OB_KAFKA_BOOTSTRAP_SERVERS=$OB_LOCAL_KAFKA_BOOTSTRAP OB_PG_DSN=$OB_LOCAL_PG_DSN \
		OB_TOPIC_PARTITIONS=$OB_LOCAL_REQUEST_PARTITIONS \
		setsid "$bin/outbound-$svc" </dev/null >>"$OB_LOCAL_LOGS/$name.log" 2>&1 &
	echo $! >"$OB_LOCAL_RUN/$name.pid"
}

wait_ready() {
	local name=$1 port deadline tries=0
	port=$(port_of "$name")
	deadline=$((SECONDS + 60))
	until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
		if ! ob_pidfile_read "$OB_LOCAL_RUN/$name.pid" >/dev/null; then
			# A base in the kernel's ephemeral port range (32768-60999 by
			# default) can find the port briefly held by some client's
			# connection: try again a few times before giving up.
			if ((tries < 3)) && tail -n 1 "$OB_LOCAL_LOGS/$name.log" | grep -q 'cannot listen'; then
				tries=$((tries + 1))
				ob_warn "$name: port $port busy; starting it again ($tries/3)"
				sleep 1
				start_one "$name"
				continue
			fi
			tail -n 20 "$OB_LOCAL_LOGS/$name.log" >&2 || true
			ob_die "$name exited; log: $OB_LOCAL_LOGS/$name.log"
		fi
		((SECONDS < deadline)) || ob_die "$name not ready after 60 s; log: $OB_LOCAL_LOGS/$name.log"
		sleep 0.1
	done
}

cmd_start() {
	local name
	for name in "${names[@]}"; do start_one "$name"; done
	for name in "${names[@]}"; do wait_ready "$name"; done
	ob_say "ready: ${names[*]}"
}

# SIGTERM each by pid, front door first; report any unclean exit.
cmd_stop() {
	local name pid rc=0 deadline
	for name in "${names[@]}"; do
		pid=$(ob_pidfile_read "$OB_LOCAL_RUN/$name.pid" "outbound-") || continue
		kill -TERM "$pid"
		deadline=$((SECONDS + 60))
		while ob_pid_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		if ob_pid_running "$pid"; then
			ob_warn "$name did not drain in 60 s; killing"
			kill -KILL "$pid"
			rc=1
		fi
		rm -f "$OB_LOCAL_RUN/$name.pid"
	done
	ob_say "stopped"
	return "$rc"
}

cmd_status() {
	local name pid rc=0
	for name in "${names[@]}"; do
		if pid=$(ob_pidfile_read "$OB_LOCAL_RUN/$name.pid" "outbound-"); then
			ob_say "$name: running pid $pid on http://127.0.0.1:$(port_of "$name")"
		else
			ob_say "$name: stopped"
			rc=3
		fi
	done
	return "$rc"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 start | stop | status" >&2
	exit 64
	;;
esac
