#!/usr/bin/env python3
"""The accepted-calls reader of ingest (services/ingest/ingest_accepted.c,
docs/reliability.md): how fast a new ingest reads a backlog of accepted,
unrecorded calls, the CPU it spends per call and its memory per call held.
Against the local stack (deploy/local/stack.sh up), in a topic prefix and
schema of its own (deploy/local/stacklib.py): one ingest queues N x 100,000
calls by calls:batch with no scheduler running, then a second ingest starts
and is timed until its outbound_calls_unrecorded gauge holds them all.
Usage: bench/accepted_reader.sh [N] (default 3). Stops what it started and
drops its schema."""

import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "deploy", "local"))
import stacklib  # noqa: E402

ADMIN_KEY = "0123456789abcdef0123456789abcdef"


def unrecorded(url):
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(" ")
                if name == "outbound_calls_unrecorded":
                    return int(float(value))
    except OSError:
        pass
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = int(stacklib.local_env()["OB_LOCAL_PORT_BASE"])
    want = n * 100000
    with tempfile.TemporaryDirectory() as tmp, \
            stacklib.isolation(f"rb{os.getpid()}") as (prefix, iso_env):
        env = dict(os.environ, OB_LOG_LEVEL="warn", OB_INGEST_ADMIN_KEY=ADMIN_KEY,
                   OB_INGEST_KEY_RATE="100000", **iso_env)
        ingests = [stacklib.Service(f"ingest-{x}", [stacklib.service_bin("ingest")], base + port,
                                    dict(env, OB_HTTP_PORT=str(base + port),
                                         OB_INSTANCE_ID=f"{prefix}-{x}"),
                                    os.path.join(tmp, f"{x}.log"))
                   for x, port in (("a", 601), ("b", 602))]
        a, b = ingests
        try:
            a.start()
            a.wait_ready()
            t = stacklib.create_tenant(a.url, ADMIN_KEY, "b@example.com", "a",
                                       [{"name": "d", "capacity": 2}], account_name="b")
            dep = t["deployments"][0]["deployment_id"]
            batch = "".join('{"phone_number": "+1212%07d", "message_reference": "r%d"}\n'
                            % (2000000 + i, i) for i in range(100000)).encode()
            for _ in range(n):
                req = urllib.request.Request(
                    f"{a.url}/api/v1/deployments/{dep}/calls:batch", data=batch, method="POST",
                    headers={"Authorization": f"Bearer {t['key']}",
                             "Content-Type": "application/x-ndjson"})
                with urllib.request.urlopen(req, timeout=600) as r:
                    r.read()
            start = time.monotonic()
            b.start()
            held = 0
            for _ in range(1200):
                held = unrecorded(b.url)
                if held >= want:
                    break
                time.sleep(0.1)
            took = time.monotonic() - start
            with open(f"/proc/{b.pid}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            with open(f"/proc/{b.pid}/status") as f:
                rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            print(f"accepted reader: {held} of {want} unrecorded calls read in {took:.3f} s from"
                  f" start; cpu {cpu:g} s ({cpu * 1e6 / want:.1f} us a call); rss {rss // 1024} MB"
                  f" ({rss * 1024 // want} bytes a call); load {load}")
        finally:
            for e in stacklib.stop_all(ingests):
                print(f"accepted reader: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
