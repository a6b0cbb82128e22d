#!/usr/bin/env python3
"""Starts, seeds and stops outbound stacks (issue 20): the one place that
launches the services from build/bin, waits for /readyz, signals and stops
them, and creates tenants. Used by `make run` and the benches (through
services.sh and seed.sh, which call its command line), by the checks that
want services of their own (tools/check_*.py, tests/plum, the browser
tests: `isolated`) and by the soak, which kills and restarts them.

Command line: stacklib.py start | stop | status  (services.sh's),
stacklib.py seed  (seed.sh's: the demo tenant, prints its key),
stacklib.py isolated SERVICES [--tag T] [--env K=V]... [--url-env SVC=VAR]...
-- COMMAND...  (runs COMMAND beside isolated services, then stops them).
"""

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
# Where the kernel hands out client ports (32768-60999 by default), a
# service's port can be some connection's for a moment: so many tries.
BUSY_TRIES = 3


class StackError(Exception):
    """Something of the stack did not start or stop; the message names the log."""


def local_env(overrides=None):
    """The local stack's OB_LOCAL_* settings (deploy/local/env.sh) as a dict,
    computed from this process's environment updated with overrides."""
    run = subprocess.run(["bash", os.path.join(ROOT, "deploy/local/env.sh")],
                         env=dict(os.environ, **(overrides or {})),
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise StackError(run.stderr.strip() or f"env.sh exited {run.returncode}")
    return dict(re.findall(r"^export (\w+)='(.*)'$", run.stdout, re.M))


def http_status(port, path, timeout=3):
    """The status of GET http://127.0.0.1:PORT/PATH; 0 when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return 0


def pid_running(pid):
    """True if pid exists and is no zombie (a container's PID 1 may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def free_ports(n):
    """n TCP ports free on 127.0.0.1 now (the kernel's pick)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Service:
    """One instance of a service (or any HTTP server): started in a session
    of its own, stdin from /dev/null, stdout and stderr appended to log, its
    pid in pidfile if one is given. Known by the process it started or, in
    another process (services.sh stop), by its pid file."""

    def __init__(self, name, argv, port, env, log, pidfile=None, ready_path="/readyz"):
        self.name, self.argv, self.port, self.env = name, argv, port, env
        self.log, self.pidfile, self.ready_path = log, pidfile, ready_path
        self.proc = None  # the Popen when this process started it

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        """The running process's pid (started here, or read from the pid file
        and checked to run argv[0]); None when not running."""
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        if not self.pidfile:
            return None
        try:
            with open(self.pidfile) as f:
                pid = int(f.readline())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            return None
        same = os.path.basename(cmd) == os.path.basename(self.argv[0])
        return pid if same and pid_running(pid) else None

    def alive(self):
        return self.pid is not None

    def start(self):
        """Starts it (StackError when the binary cannot be run)."""
        os.makedirs(os.path.dirname(self.log), exist_ok=True)
        with open(self.log, "ab") as out:
            try:
                self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            except OSError as e:
                raise StackError(f"{self.name}: cannot run {self.argv[0]}: {e.strerror}")
        if self.pidfile:
            os.makedirs(os.path.dirname(self.pidfile), exist_ok=True)
            with open(self.pidfile, "w") as f:
                f.write(f"{self.proc.pid}\n")

    def ready(self):
        return http_status(self.port, self.ready_path) == 200

    def log_tail(self, lines=20):
        try:
            with open(self.log, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=READY_TIMEOUT_S, check=True, retry_busy=True):
        """Waits until ready_path answers 200. A start that lost its port to
        a client's connection is tried again (BUSY_TRIES). Returns True when
        ready; otherwise raises StackError naming the log, or returns False
        with check=False."""
        deadline, tries = time.monotonic() + timeout, 0
        while not self.ready():
            if not self.alive():
                if (retry_busy and tries < BUSY_TRIES
                        and "cannot listen" in self.log_tail(1)):
                    tries += 1
                    warn(f"{self.name}: port {self.port} busy; starting it again"
                         f" ({tries}/{BUSY_TRIES})")
                    time.sleep(1)
                    self.start()
                    continue
                why = f"{self.name} exited; log: {self.log}"
            elif time.monotonic() >= deadline:
                why = f"{self.name} not ready after {timeout:g} s; log: {self.log}"
            else:
                time.sleep(0.1)
                continue
            if check:
                raise StackError(why)
            return False
        return True

    def signal(self, sig, timeout=STOP_TIMEOUT_S):
        """Sends sig and waits up to timeout seconds for the exit (see wait);
        when it was not running, returns its last code or None."""
        pid = self.pid
        if pid is None:
            return self.proc.returncode if self.proc else None
        os.kill(pid, sig)
        return self.wait(timeout)

    def wait(self, timeout=None):
        """Waits up to timeout seconds (None: for ever) for the exit. Returns
        the exit code (0 for a process known only by its pid file), or None
        when it still runs."""
        if self.proc is not None:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        pid = self.pid
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid is not None and pid_running(pid):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
        return 0

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, and SIGKILL if it has not exited within timeout; removes
        the pid file. Returns the exit code, None if it had to be killed."""
        rc = self.signal(signal.SIGTERM, timeout)
        if rc is None and self.alive():
            warn(f"{self.name} did not drain in {timeout:g} s; killing")
            self.signal(signal.SIGKILL, 10)
            rc = None
        if self.pidfile:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.pidfile)
        return rc

    def peak_rss_mb(self):
        """The process's peak resident memory (VmHWM) in MB; 0 when gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                return next(int(x.split()[1]) // 1024 for x in f if x.startswith("VmHWM"))
        except (OSError, StopIteration, TypeError):
            return 0


def say(msg):
    print(f"{os.environ.get('OB_SELF', 'stacklib')}: {msg}", flush=True)


def warn(msg):
    print(f"{os.environ.get('OB_SELF', 'stacklib')}: warning: {msg}", file=sys.stderr,
          flush=True)


# ------------------------------------------------------------ the local stack

class LocalStack:
    """The services of the local stack (deploy/local): ingest at BASE+80,
    the scheduler at BASE+81, dialers at BASE+82 and up, ingest-N at
    BASE+60+N and scheduler-N at BASE+70+N; pid files in $OB_LOCAL_RUN, logs
    in $OB_LOCAL_LOGS, binaries from $OB_LOCAL_BIN (build/bin). The instance
    counts come from OB_LOCAL_INGESTS, OB_LOCAL_SCHEDULERS (1) and
    OB_LOCAL_DIALERS (2); OB_LOCAL_SERVICES picks a subset."""

    def __init__(self, overrides=None):
        self.env = dict(os.environ, **(overrides or {}))
        self.env.update(local_env(overrides))
        e = self.env
        self.base = int(e["OB_LOCAL_PORT_BASE"])
        self.bin = e.get("OB_LOCAL_BIN") or os.path.join(ROOT, "build/bin")
        self.all = (["ingest"] + [f"ingest-{i}" for i in range(2, num(e, "OB_LOCAL_INGESTS", 1) + 1)]
                    + ["scheduler"]
                    + [f"scheduler-{i}" for i in range(2, num(e, "OB_LOCAL_SCHEDULERS", 1) + 1)]
                    + [f"dialer-{i}" for i in range(1, num(e, "OB_LOCAL_DIALERS", 2) + 1)])

    def admin_key(self):
        """OB_INGEST_ADMIN_KEY, else the stack's own, kept in the state."""
        if self.env.get("OB_INGEST_ADMIN_KEY"):
            return self.env["OB_INGEST_ADMIN_KEY"]
        path = os.path.join(self.env["OB_LOCAL_STATE"], "admin-key")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            old = os.umask(0o077)
            try:
                with open(path, "w") as f:
                    f.write(secrets.token_hex(24))
            finally:
                os.umask(old)
        with open(path) as f:
            return f.read().strip()

    def names(self, wanted=None):
        """The instances named by wanted (OB_LOCAL_SERVICES' syntax: space or
        comma separated names, "dialer" for every dialer), in start order."""
        wanted = self.env.get("OB_LOCAL_SERVICES", "") if wanted is None else wanted
        if not wanted.strip():
            return list(self.all)
        picked = set()
        for want in wanted.replace(",", " ").split():
            if want in ("dialer", "dialers"):
                picked.update(n for n in self.all if n.startswith("dialer-"))
            elif want in self.all:
                picked.add(want)
            else:
                raise StackError(f"OB_LOCAL_SERVICES: unknown service '{want}'"
                                 f" (known: {' '.join(self.all)}, dialer)")
        names = [n for n in self.all if n in picked]  # the front door stops first
        if not names:
            raise StackError(f"OB_LOCAL_SERVICES='{wanted}' names no service")
        return names

    def port_of(self, name):
        svc, _, n = name.partition("-")
        if not n:
            return self.base + {"ingest": 80, "scheduler": 81}[svc]
        return self.base + {"ingest": 60, "scheduler": 70, "dialer": 81}[svc] + int(n)

    def service(self, name):
        svc = name.partition("-")[0]
        port = self.port_of(name)
        e = self.env
        # Settings already in the environment (OB_SIM_TIME_SCALE, OB_LOG_LEVEL,
        # ...) pass through; these are the stack's own. Dialers refuse loopback
        # URLs by default; locally the application and webhook receivers are there.
        env = dict(e, OB_HTTP_PORT=str(port), OB_INSTANCE_ID=name,
                   OB_KAFKA_BOOTSTRAP_SERVERS=e["OB_LOCAL_KAFKA_BOOTSTRAP"],
                   OB_PG_DSN=e["OB_LOCAL_PG_DSN"],
                   OB_TOPIC_PARTITIONS=e["OB_LOCAL_REQUEST_PARTITIONS"],
                   OB_INGEST_ADMIN_KEY=self.admin_key())
        if svc == "dialer":
            env["OB_DIALER_URL_ALLOW"] = e.get("OB_DIALER_URL_ALLOW", "127.0.0.0/8,::1")
        return Service(name, [os.path.join(self.bin, f"outbound-{svc}")], port, env,
                       os.path.join(e["OB_LOCAL_LOGS"], f"{name}.log"),
                       os.path.join(e["OB_LOCAL_RUN"], f"{name}.pid"))

    def start(self, names):
        """Starts those not running, then waits for each to be ready."""
        services = [self.service(name) for name in names]
        for s in services:
            if s.alive():
                say(f"{s.name} already running (pid {s.pid}, port {s.port})")
                continue
            if port_taken(s.port):
                raise StackError(f"port {s.port} for {s.name} is taken; set OB_LOCAL_PORT_BASE")
            s.start()
        for s in services:
            try:
                s.wait_ready()
            except StackError:
                sys.stderr.write(s.log_tail())
                raise
        say(f"ready: {' '.join(names)}")

    def stop(self, names):
        """SIGTERM each by its pid file, in order; False if one had to be killed."""
        ok = True
        for name in names:
            s = self.service(name)
            # The pid file of a process already gone is left (bench/scheduler.sh
            # removes it itself).
            if s.alive():
                ok = s.stop() is not None and ok
        say("stopped")
        return ok

    def status(self, names):
        ok = True
        for name in names:
            s = self.service(name)
            if s.alive():
                say(f"{name}: running pid {s.pid} on {s.url}")
            else:
                say(f"{name}: stopped")
                ok = False
        return ok


def num(env, name, default):
    value = env.get(name) or str(default)
    if not value.isdigit():
        raise StackError(f"{name} must be a whole number, got '{value}'")
    return int(value)


def port_taken(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------ isolated services

@contextlib.contextmanager
def isolation(tag):
    """A topic prefix and a Postgres schema of their own (TAG and 8 hex
    digits) on the local stack's Kafka and Postgres, as the integration
    tests isolate themselves. Yields (prefix, env): the settings a service
    takes to use them (OB_TOPIC_PREFIX, OB_KAFKA_BOOTSTRAP_SERVERS,
    OB_PG_DSN). Drops the schema afterwards. Raises StackError when the
    schema cannot be made."""
    env = local_env()
    pg = env["OB_LOCAL_PG_DSN"]
    prefix = tag + uuid.uuid4().hex[:8]
    made = subprocess.run(["psql", pg, "-qAtc", f"CREATE SCHEMA {prefix}"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        raise StackError(f"cannot create schema {prefix}: {made.stderr.strip()}")
    try:
        yield prefix, {"OB_TOPIC_PREFIX": prefix + ".",
                       "OB_KAFKA_BOOTSTRAP_SERVERS": env["OB_LOCAL_KAFKA_BOOTSTRAP"],
                       "OB_PG_DSN": f"{pg}?options=-csearch_path%3D{prefix}"}
    finally:
        subprocess.run(["psql", pg, "-qAtc", f"DROP SCHEMA {prefix} CASCADE"],
                       capture_output=True)


def service_bin(svc):
    """The binary of a service in $BUILD/bin (build/bin)."""
    return os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin", f"outbound-{svc}")


def stop_all(services, timeout=30):
    """SIGTERM to every one at once (a second one would mean exit now), then
    waits for each; one still running after timeout is killed. Returns what
    went wrong: an unclean exit or a kill, one line each."""
    errors = []
    for s in services:
        if s.alive():
            os.kill(s.pid, signal.SIGTERM)
    for s in services:
        rc = s.wait(timeout)
        if rc is None:
            s.signal(signal.SIGKILL, 10)
            errors.append(f"{s.name} did not exit within {timeout:g} s of SIGTERM")
        elif rc != 0:
            errors.append(f"{s.name} exited {rc} after SIGTERM")
    return errors


@contextlib.contextmanager
def isolated(services, tag, extra_env=None, logdir=None):
    """Starts services (names such as "ingest") from $BUILD/bin in an
    isolation of their own (see isolation) on free ports. Yields (urls,
    errors): the base URL of each that became ready, and what went wrong.
    On exit stops them (stop_all; its complaints are appended to errors)
    and drops the schema. Logs in logdir (build/test-logs/TAG)."""
    logdir = logdir or os.path.join(ROOT, "build/test-logs", tag)
    urls, errors, started, yielded = {}, [], [], False
    try:
        with isolation(tag) as (prefix, iso_env):
            try:
                for svc, port in zip(services, free_ports(len(services))):
                    child = dict(os.environ, OB_HTTP_PORT=str(port), OB_HTTP_ADDR="127.0.0.1",
                                 OB_TOPIC_PARTITIONS="2", OB_INSTANCE_ID=f"{prefix}-{svc}",
                                 OB_DIALER_CHANNELS="4", **iso_env, **(extra_env or {}))
                    s = Service(svc, [service_bin(svc)], port, child,
                                os.path.join(logdir, f"{svc}.log"))
                    try:
                        s.start()
                        started.append(s)
                        s.wait_ready()
                        urls[svc] = s.url
                    except StackError as e:
                        errors.append(str(e))
                yielded = True
                yield urls, errors
            finally:
                errors.extend(stop_all(started))
    except StackError as e:  # the schema: told like any other start-up error
        if yielded:
            raise
        yield urls, errors + [str(e)]


# ------------------------------------------------------------ tenants

DEMO_SQL = """
INSERT INTO accounts (account_id, email, name)
VALUES ('00000000-0000-7000-8000-00000000d001', 'demo@example.com', 'Demo account')
ON CONFLICT DO NOTHING;
INSERT INTO applications (application_id, account_id, name)
VALUES ('00000000-0000-7000-8000-00000000d002', '00000000-0000-7000-8000-00000000d001', 'demo')
ON CONFLICT DO NOTHING;
INSERT INTO deployments (deployment_id, application_id, account_id, name, capacity)
VALUES ('00000000-0000-7000-8000-00000000d003', '00000000-0000-7000-8000-00000000d002',
        '00000000-0000-7000-8000-00000000d001', 'demo-outbound', 10)
ON CONFLICT DO NOTHING;
INSERT INTO api_keys (key_id, account_id, key_hash, key_prefix, label)
VALUES ('00000000-0000-7000-8000-00000000d004', '00000000-0000-7000-8000-00000000d001',
        encode(sha256(convert_to(:'key', 'UTF8')), 'hex'), left(:'key', 12), 'demo key')
ON CONFLICT (key_id) DO UPDATE SET key_hash = EXCLUDED.key_hash, key_prefix = EXCLUDED.key_prefix;
"""
DEMO_DEPLOYMENT = "00000000-0000-7000-8000-00000000d003"


def seed_demo(env=None):
    """The local stack's demo tenant (account demo@example.com, application
    "demo", deployment "demo-outbound" of capacity 10) with its API key,
    kept in $OB_LOCAL_STATE/demo-api-key so that every run shows the same
    one; written straight to Postgres (the services must have applied the
    migrations). Idempotent. Returns the key."""
    env = env or local_env()
    path = os.path.join(env["OB_LOCAL_STATE"], "demo-api-key")
    try:
        with open(path) as f:
            key = f.read().strip()
    except OSError:
        key = ""
    # A key in the API's format (obk_ and 40 hex digits); an older demo key
    # in another format is replaced (the row takes the new hash).
    if not re.fullmatch(r"obk_[0-9a-f]{40}", key):
        key = "obk_" + secrets.token_hex(20)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    run = subprocess.run(["psql", env["OB_LOCAL_PG_DSN"], "-v", "ON_ERROR_STOP=1", "-qAt",
                          "-v", f"key={key}"], input=DEMO_SQL, capture_output=True, text=True)
    if run.returncode != 0:
        raise StackError(f"seeding the demo tenant: {run.stderr.strip()}")
    return key


def api_post(base, path, key, body, timeout=30):
    """POSTs JSON to an ingest; returns the parsed answer (HTTPError if not 2xx)."""
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def create_tenant(base, admin_key, email, application="app", deployments=({"name": "d",
                                                                          "capacity": 1},),
                  account_name=None, post=api_post):
    """Creates through the API of the ingest at base an account (its API
    key), one application and its deployments (each a request body), with
    post(base, path, key, body) -> parsed answer (api_post by default).
    Returns {"key", "account", "application_id", "deployments": [answers]}."""
    body = {"email": email}
    if account_name:
        body["name"] = account_name
    account = post(base, "/api/v1/accounts", admin_key, body)
    key = account["api_key"]["key"]
    app = post(base, "/api/v1/applications", key, {"name": application})["application_id"]
    deps = [post(base, f"/api/v1/applications/{app}/deployments", key, d) for d in deployments]
    return {"key": key, "account": account, "application_id": app, "deployments": deps}


# ------------------------------------------------------------ command line

def run_isolated(args):
    extra = dict(kv.split("=", 1) for kv in args.env)
    url_env = dict(kv.split("=", 1) for kv in args.url_env)
    services = args.services.replace(",", " ").split()
    rc = 0
    with isolated(services, args.tag, extra) as (urls, errors):
        if errors:
            for e in errors:
                warn(e)
            return 1
        child = dict(os.environ, **{var: urls[svc] for svc, var in url_env.items()})
        rc = subprocess.run(args.command, env=child).returncode
    for e in errors:  # what stopping them found
        warn(e)
    return rc or (1 if errors else 0)


def main(argv):
    p = argparse.ArgumentParser(prog="stacklib.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("start", "stop", "status", "seed"):
        sub.add_parser(cmd)
    iso = sub.add_parser("isolated")
    iso.add_argument("services")
    iso.add_argument("--tag", default="iso")
    iso.add_argument("--env", action="append", default=[], metavar="K=V")
    iso.add_argument("--url-env", action="append", default=[], metavar="SVC=VAR")
    iso.add_argument("command", nargs="+")
    args = p.parse_args(argv)
    try:
        if args.cmd == "seed":
            print(seed_demo())
            return 0
        if args.cmd == "isolated":
            return run_isolated(args)
        stack = LocalStack()
        names = stack.names()
        if args.cmd == "start":
            stack.start(names)
            return 0
        if args.cmd == "stop":
            return 0 if stack.stop(names) else 1
        return 0 if stack.status(names) else 3
    except StackError as e:
        print(f"{os.environ.get('OB_SELF', 'stacklib')}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
