# shellcheck shell=bash
# Helpers shared by the deploy/local scripts (bash only): messages, timing,
# process checks by pid file, port probes and locating java. Sourced after
# env.sh by each script; defines functions only and changes no shell options.

# ob_say / ob_warn / ob_die MSG: one line prefixed with the script's name.
ob_say() { printf '%s: %s\n' "${OB_SELF:-local}" "$*"; }
ob_warn() { printf '%s: warning: %s\n' "${OB_SELF:-local}" "$*" >&2; }
ob_die() {
	printf '%s: error: %s\n' "${OB_SELF:-local}" "$*" >&2
	exit 1
}

# ob_now_us: wall clock in microseconds (bash 5 EPOCHREALTIME, no fork).
ob_now_us() { printf '%s\n' "${EPOCHREALTIME/./}"; }

# ob_elapsed START_US: seconds since START_US, formatted like "3.42".
ob_elapsed() {
	local us=$(($(ob_now_us) - $1))
	printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000))
}

# ob_port_busy PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
ob_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ob_pid_running PID: true if PID exists and is not a zombie (a dead daemon
# can linger as a zombie when PID 1 does not reap, as in some containers).
ob_pid_running() {
	local stat
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# ob_pid_cmdline PID: the process's argv joined by spaces (empty if gone).
ob_pid_cmdline() {
	tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true
}

# ob_pidfile_read FILE: print the pid stored in FILE if it names a running
# process whose command line contains every further argument; else fail.
ob_pidfile_read() {
	local file=$1 pid cmd needle
	shift
	[[ -r $file ]] || return 1
	pid=$(head -n1 "$file" 2>/dev/null) || return 1
	ob_pid_running "$pid" || return 1
	cmd=$(ob_pid_cmdline "$pid")
	for needle in "$@"; do
		[[ $cmd == *"$needle"* ]] || return 1
	done
	printf '%s\n' "$pid"
}

# ob_java: path of the java launcher ($JAVA_HOME/bin/java first, then PATH).
ob_java() {
	if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
		printf '%s\n' "$JAVA_HOME/bin/java"
	else
		command -v java
	fi
}

# ob_java_major JAVA: the feature version JAVA reports (8 for "1.8.0_x").
ob_java_major() {
	local v
	v=$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)
	v=${v#1.}
	v=${v%%[!0-9]*}
	printf '%s\n' "${v:-0}"
}

# ob_lock NAME: hold an exclusive lock $OB_LOCAL_RUN/NAME.lock on fd 9 until
# the script exits, so that concurrent start/stop calls run one at a time.
ob_lock() {
	mkdir -p "$OB_LOCAL_RUN"
	exec 9>"$OB_LOCAL_RUN/$1.lock"
	flock 9
}
