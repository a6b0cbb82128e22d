"""Runs outbound services from build/bin against the local stack's Kafka and
Postgres, isolated like the integration tests: their own topic prefix and
Postgres schema, free ports. For checks that need live services
(tools/check_deploy.py, tools/check_api.py)."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin")


def local_env():
    """The local stack's OB_LOCAL_* settings (deploy/local/env.sh)."""
    out = subprocess.run(["bash", os.path.join(ROOT, "deploy/local/env.sh")],
                         capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^export (\w+)='(.*)'$", out, re.M))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_ready(base, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def running(services, tag, extra_env=None):
    """Starts services (names such as "ingest") and yields (urls, errors):
    the base URL of each that became ready, and what went wrong. On exit
    stops them with SIGTERM (a non-zero exit is an error appended to the
    yielded list) and drops their schema."""
    env = local_env()
    pg = env["OB_LOCAL_PG_DSN"]
    prefix = tag + uuid.uuid4().hex[:8]
    logdir = os.path.join(ROOT, "build/test-logs", tag)
    os.makedirs(logdir, exist_ok=True)
    urls, errors, procs = {}, [], []
    made = subprocess.run(["psql", pg, "-qAtc", f"CREATE SCHEMA {prefix}"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        yield urls, [f"cannot create schema {prefix}: {made.stderr.strip()}"]
        return
    try:
        for svc, port in zip(services, free_ports(len(services))):
            child = dict(os.environ, OB_HTTP_PORT=str(port), OB_HTTP_ADDR="127.0.0.1",
                         OB_TOPIC_PREFIX=prefix + ".", OB_TOPIC_PARTITIONS="2",
                         OB_KAFKA_BOOTSTRAP_SERVERS=env["OB_LOCAL_KAFKA_BOOTSTRAP"],
                         OB_PG_DSN=f"{pg}?options=-csearch_path%3D{prefix}",
                         OB_INSTANCE_ID=f"{prefix}-{svc}", OB_DIALER_CHANNELS="4",
                         **(extra_env or {}))
            with open(os.path.join(logdir, f"{svc}.log"), "wb") as log:
                proc = subprocess.Popen([os.path.join(BIN, f"outbound-{svc}")],
                                        env=child, stdout=log, stderr=log)
            procs.append((svc, proc))
            base = f"http://127.0.0.1:{port}"
            if wait_ready(base, proc):
                urls[svc] = base
            else:
                errors.append(f"{svc} not ready (log: build/test-logs/{tag}/{svc}.log)")
        yield urls, errors
    finally:
        for svc, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for svc, proc in procs:
            try:
                if proc.wait(timeout=30) != 0:
                    errors.append(f"{svc} exited {proc.returncode} after SIGTERM")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                errors.append(f"{svc} did not exit within 30 s of SIGTERM")
        subprocess.run(["psql", pg, "-qAtc", f"DROP SCHEMA {prefix} CASCADE"],
                       capture_output=True)
