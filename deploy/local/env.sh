# shellcheck shell=bash
# Local-stack settings shared by deploy/local/*.sh and the Makefile: repo root,
# state dir, ports and connection strings, all derived from OB_LOCAL_PORT_BASE so
# that two checkouts with different bases never collide. Source it (it sets no
# shell options); run it directly to print the values as `export K='v'` lines.

# Root from this file's own path (bash); a POSIX sh that sources it falls back
# to $OB_LOCAL_ROOT or the current directory (make runs recipes from the root).
if [ -n "${BASH_SOURCE:-}" ]; then
	OB_LOCAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
elif [ -z "${OB_LOCAL_ROOT:-}" ]; then
	OB_LOCAL_ROOT=$(pwd)
fi

OB_LOCAL_STATE=${OB_LOCAL_STATE:-$OB_LOCAL_ROOT/.local}
case $OB_LOCAL_STATE in
/*) ;;
*) OB_LOCAL_STATE=$(pwd)/$OB_LOCAL_STATE ;;
esac
OB_LOCAL_PORT_BASE=${OB_LOCAL_PORT_BASE:-19000}
case $OB_LOCAL_PORT_BASE in
'' | *[!0-9]*)
	echo "env.sh: OB_LOCAL_PORT_BASE must be a number, got '$OB_LOCAL_PORT_BASE'" >&2
	# shellcheck disable=SC2317 # return when sourced, exit when executed
	return 78 2>/dev/null || exit 78
	;;
esac
if [ "$OB_LOCAL_PORT_BASE" -lt 1024 ] || [ "$OB_LOCAL_PORT_BASE" -gt 65000 ]; then
	echo "env.sh: OB_LOCAL_PORT_BASE must be in 1024..65000, got $OB_LOCAL_PORT_BASE" >&2
	# shellcheck disable=SC2317 # return when sourced, exit when executed
	return 78 2>/dev/null || exit 78
fi

OB_LOCAL_KAFKA_PORT=$((OB_LOCAL_PORT_BASE + 92))
OB_LOCAL_KAFKA_CONTROLLER_PORT=$((OB_LOCAL_PORT_BASE + 93))
OB_LOCAL_PG_PORT=$((OB_LOCAL_PORT_BASE + 432))
OB_LOCAL_KAFKA_BOOTSTRAP=127.0.0.1:$OB_LOCAL_KAFKA_PORT
OB_LOCAL_PG_DSN=postgresql://outbound@127.0.0.1:$OB_LOCAL_PG_PORT/outbound
OB_LOCAL_LOGS=$OB_LOCAL_STATE/logs
OB_LOCAL_RUN=$OB_LOCAL_STATE/run

# Partition counts of the default topics created by `kafka.sh topics`.
OB_LOCAL_REQUEST_PARTITIONS=${OB_LOCAL_REQUEST_PARTITIONS:-8}
OB_LOCAL_DIAL_JOB_PARTITIONS=${OB_LOCAL_DIAL_JOB_PARTITIONS:-8}
OB_LOCAL_EVENT_PARTITIONS=${OB_LOCAL_EVENT_PARTITIONS:-8}

export OB_LOCAL_ROOT OB_LOCAL_STATE OB_LOCAL_PORT_BASE OB_LOCAL_KAFKA_PORT \
	OB_LOCAL_KAFKA_CONTROLLER_PORT OB_LOCAL_PG_PORT OB_LOCAL_KAFKA_BOOTSTRAP \
	OB_LOCAL_PG_DSN OB_LOCAL_LOGS OB_LOCAL_RUN OB_LOCAL_REQUEST_PARTITIONS \
	OB_LOCAL_DIAL_JOB_PARTITIONS OB_LOCAL_EVENT_PARTITIONS

# Executed rather than sourced: print the settings for eval or for a log.
if [ -n "${BASH_SOURCE:-}" ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
	for _ob_var in OB_LOCAL_ROOT OB_LOCAL_STATE OB_LOCAL_PORT_BASE \
		OB_LOCAL_KAFKA_PORT OB_LOCAL_KAFKA_CONTROLLER_PORT OB_LOCAL_PG_PORT \
		OB_LOCAL_KAFKA_BOOTSTRAP OB_LOCAL_PG_DSN OB_LOCAL_LOGS OB_LOCAL_RUN \
		OB_LOCAL_REQUEST_PARTITIONS OB_LOCAL_DIAL_JOB_PARTITIONS \
		OB_LOCAL_EVENT_PARTITIONS; do
		printf "export %s='%s'\n" "$_ob_var" "${!_ob_var}"
	done
	unset _ob_var
fi
