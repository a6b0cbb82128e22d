#!/usr/bin/env bash
# Brings the local Kafka and PostgreSQL up or down together for make run, make
# test and make bench: up = Kafka started, ready and with its topics, and
# PostgreSQL started and ready. Installs nothing (deps.sh does that); the C
# services are started elsewhere. Usage: stack.sh up | down | status.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=lib.sh
. "$root/deploy/local/lib.sh"
export OB_SELF=stack
here=$root/deploy/local

# PostgreSQL starts while the broker JVM boots, so `up` costs about the
# broker's start time; on a failure the caller still gets the other's status.
cmd_up() {
	local start
	start=$(ob_now_us)
	"$here/kafka.sh" start --no-wait
	"$here/postgres.sh" start
	"$here/kafka.sh" wait
	"$here/kafka.sh" topics
	ob_say "up in $(ob_elapsed "$start") s: kafka $OB_LOCAL_KAFKA_BOOTSTRAP, postgres $OB_LOCAL_PG_DSN"
}

# Both are stopped even when the first stop fails.
cmd_down() {
	local rc=0
	"$here/kafka.sh" stop || rc=1
	"$here/postgres.sh" stop || rc=1
	return "$rc"
}

# Exit 0 when both run, 3 otherwise.
cmd_status() {
	local rc=0
	"$here/kafka.sh" status || rc=3
	"$here/postgres.sh" status || rc=3
	return "$rc"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up | down | status" >&2
	exit 64
	;;
esac
