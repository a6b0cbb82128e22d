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
# The work is deploy/local/stacklib.py's (LocalStack), shared with the
# checks, the soak and the browser tests.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export OB_SELF=services
case ${1:-} in
start | stop | status) exec /usr/bin/python3 "$root/deploy/local/stacklib.py" "$1" ;;
*)
	echo "usage: $0 start | stop | status" >&2
	exit 64
	;;
esac
