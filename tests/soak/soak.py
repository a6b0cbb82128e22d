#!/usr/bin/env python3
"""Fault-injection soak (issues 9 and 19) on a stack of its own, as hard as
production.

Brings up Kafka and PostgreSQL (deploy/local, OB_LOCAL_PORT_BASE=SOAK_PORT_BASE,
state in SOAK_STATE, wiped first), two ingests, two schedulers, two dialers
and a webhook receiver. The traffic (tests/soak/load.py) runs SOAK_RATE
operations a second through both ingests: single calls (native and Plum
form posts), calls:batch (JSON and NDJSON), CSV uploads (native and Plum
bulk_queue; a big one of SOAK_BIG_ROWS rows every SOAK_BIG_EVERY_S),
cancels of calls and of queues at the moment their calls are dialing,
pauses and resumes; every call a 202 names is read back at once on both
ingests; every request that failed or was cut off is retried with the same
Idempotency-Key until answered. About every SOAK_FAULT_EVERY_S it SIGKILLs
an ingest in the middle of a big upload or batch (SOAK_KILL_ROWS rows),
SIGKILLs a scheduler or a dialer, SIGTERMs an ingest under load, restarts
the broker (kept down for a while: ingest must answer 503 quickly and
recover by itself), restarts PostgreSQL (schedulers and dialers must report
not ready, then resume) and takes the webhook receiver down and up. Then it
lets the work settle and checks the invariants of the design brief from
Postgres, the whole call-events topic, the receiver's log and what the
client saw (tests/soak/check.sql), after a self-test that injects a
violation of each (tests/soak/inject.sql) and sees every counter move.

Prints the counters line and `soak: N passed, M failed` (invariants), which
tools/test.sh totals. Exits 1 on any failure. Everything it started is
stopped at the end. Settings (environment), the hard profile by default:
SOAK_SECONDS (load, 1800), SOAK_FAULT_EVERY_S (mean seconds between faults,
15), SOAK_RATE (operations/s, 40), SOAK_BIG_ROWS (100000), SOAK_BIG_EVERY_S
(360; 0: none), SOAK_KILL_ROWS (rows of the request an ingest is killed in,
10000), SOAK_KILL_SEND_S (seconds it takes to send, 8), SOAK_QUEUE_CANCEL_EVERY_S
(30), SOAK_EXPIRES_S (the rows of batches and uploads expire within, 180),
SOAK_SETTLE_S (longest wait for the work to finish, 600), SOAK_SEED,
SOAK_PORT_BASE (28000), SOAK_STATE (.local-soak), SOAK_TIME_SCALE (the
sim's, 20), BUILD (build: the binaries of $BUILD/bin); SOAK_KEEP=1 leaves
Kafka and PostgreSQL up to look at (stop them with OB_LOCAL_PORT_BASE=28000
OB_LOCAL_STATE=.local-soak deploy/local/stack.sh down).
"""
import csv
import faulthandler
import http.client
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "soak")
LOCAL = os.path.join(ROOT, "deploy", "local")
sys.path.insert(0, LOCAL)
import stacklib  # noqa: E402  (deploy/local/stacklib.py)


def env_num(name, default):
    return float(os.environ.get(name, default))


SECONDS = env_num("SOAK_SECONDS", 1800)
FAULT_EVERY = env_num("SOAK_FAULT_EVERY_S", 15)
RATE = env_num("SOAK_RATE", 40)
SETTLE = env_num("SOAK_SETTLE_S", 600)
BIG_ROWS = int(env_num("SOAK_BIG_ROWS", 100000))
BIG_EVERY = env_num("SOAK_BIG_EVERY_S", 360)
KILL_ROWS = int(env_num("SOAK_KILL_ROWS", 10000))
KILL_SEND_S = env_num("SOAK_KILL_SEND_S", 8)
QUEUE_CANCEL_EVERY = env_num("SOAK_QUEUE_CANCEL_EVERY_S", 30)
EXPIRES = int(env_num("SOAK_EXPIRES_S", 180))  # rows of batches and uploads expire within
# Deployments get this many times the capacities below, so that the dialing
# keeps up with the rate (the campaign windows and caps stay as sharp).
CAPACITY_SCALE = max(1, round(RATE / 20))
SEED = int(os.environ.get("SOAK_SEED", int(time.time())))
BASE = int(os.environ.get("SOAK_PORT_BASE", 28000))
STATE = os.path.abspath(os.environ.get("SOAK_STATE", os.path.join(ROOT, ".local-soak")))
KEEP = os.environ.get("SOAK_KEEP") == "1"
BUILD = os.environ.get("BUILD", "build")  # the services come from $BUILD/bin
TIME_SCALE = os.environ.get("SOAK_TIME_SCALE", "20")
OUTAGE = (6, 15)  # seconds a broker or Postgres stays down
# The broker is down: ingest must refuse within the ack timeout and a margin.
ACK_TIMEOUT_MS = 3000
REFUSE_WITHIN_S = ACK_TIMEOUT_MS / 1000 + 6  # librdkafka's timeout scan, ingest's grace
NOTICE_S = 4  # ingest notices a broker gone within its once-a-second check
FAULTS = ["kill-ingest", "kill-scheduler", "kill-dialer", "sigterm-ingest",
          "restart-kafka", "restart-postgres", "receiver-down"]

KAFKA = f"127.0.0.1:{BASE + 92}"
DSN = f"postgresql://outbound@127.0.0.1:{BASE + 432}/outbound"
API_PORT = BASE + 80
API_PORTS = [API_PORT, BASE + 85]  # ingest-1, ingest-2
INGESTS = ["ingest-1", "ingest-2"]
RECEIVER_PORT = BASE + 70
WORK = os.path.join(STATE, "soak")
LOGS = os.path.join(STATE, "logs")
rng = random.Random(SEED)
lock = threading.Lock()


def log(msg):
    print(f"soak [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stack_env():
    e = dict(os.environ)
    e.update(OB_LOCAL_PORT_BASE=str(BASE), OB_LOCAL_STATE=STATE)
    return e


def local(script, *args, check=True):
    r = subprocess.run([os.path.join(LOCAL, script), *args], env=stack_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{r.stdout}")
    return r.returncode


def psql_script(sql):
    """Runs a script of several statements (psql -c would keep only the last answer)."""
    r = subprocess.run(["psql", DSN, "-v", "ON_ERROR_STOP=1", "-qAtX", "-F", "\t", "-f", "-"],
                       input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout


def psql(sql, *args):
    r = subprocess.run(["psql", DSN, "-v", "ON_ERROR_STOP=1", "-qAtX", "-F", "\t", *args, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout


# ------------------------------------------------------------ processes

def proc(name, argv, port, env, ready_path="/readyz"):
    """One service (or the receiver) started by the soak (deploy/local/stacklib.py),
    its log in LOGS; mu is held by whoever kills and restarts it."""
    p = stacklib.Service(name, argv, port, env, os.path.join(LOGS, f"{name}.log"),
                         ready_path=ready_path)
    p.mu = threading.Lock()
    return p


def service(name, svc, port, extra=None):
    e = dict(os.environ)
    e.update(OB_HTTP_PORT=str(port), OB_INSTANCE_ID=name, OB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
             OB_PG_DSN=DSN, OB_TOPIC_PARTITIONS="8", OB_SIM_TIME_SCALE=TIME_SCALE,
             OB_SIM_SEED=str(SEED), OB_WEBHOOK_RETRY_BASE_MS="500", OB_WEBHOOK_RETRY_MAX_MS="4000",
             OB_WEBHOOK_TIMEOUT_MS="3000", OB_INGEST_ACK_TIMEOUT_MS=str(ACK_TIMEOUT_MS),
             OB_INGEST_ADMIN_KEY=ADMIN_KEY, OB_DRAIN_TIMEOUT_MS="20000", OB_LOG_LEVEL="info",
             # The webhook receiver is on loopback, which dialers refuse by default.
             OB_DIALER_URL_ALLOW="127.0.0.0/8,::1")
    e.update(extra or {})
    return proc(name, [os.path.join(STATE, "bin", f"outbound-{svc}")], port, e)


ADMIN_KEY = "soak-admin-" + "%032x" % random.getrandbits(128)
procs = {}


def start_all():
    for name, port in zip(INGESTS, API_PORTS):
        procs[name] = service(name, "ingest", port)
    procs["scheduler-1"] = service("scheduler-1", "scheduler", BASE + 81)
    procs["scheduler-2"] = service("scheduler-2", "scheduler", BASE + 84)
    procs["dialer-1"] = service("dialer-1", "dialer", BASE + 82)
    procs["dialer-2"] = service("dialer-2", "dialer", BASE + 83)
    procs["receiver"] = proc("receiver", [sys.executable, os.path.join(HERE, "receiver.py"),
                                          str(RECEIVER_PORT), os.path.join(WORK, "hooks.tsv")],
                             RECEIVER_PORT, dict(os.environ), ready_path="/")
    for p in procs.values():
        p.start()
        p.wait_ready(90)  # StackError naming the log


# ------------------------------------------------------------ the API

def api(method, path, body=None, key=None, timeout=30, port=API_PORT):
    """Returns (status, parsed body or None, seconds taken); status 0 if no answer."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        hdrs = {"Authorization": f"Bearer {key or KEY}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, data, hdrs)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return r.status, parsed, time.time() - t0
    except OSError:
        return 0, None, time.time() - t0


KEY = None
# name: (capacity, campaign window: (open minutes, closed minutes) or None, result_url)
DEPLOYMENTS = [("d0", 1, None, True), ("d1", 2, None, True), ("d2", 3, (2, 1), True),
               ("d3", 5, None, True), ("d4", 2, (1, 1), False), ("d5", 4, None, True),
               ("d6", 1, (1, 2), True), ("d7", 3, None, False)]
# The batches, uploads and part of the single calls go to one more, "bulk":
# no window, no result_url, every row with an expiry a few minutes out, so
# that what it cannot dial ends as expired.
BULK_CAPACITY = 30
deps = []  # dicts: id, name, capacity, window
bulk = {}  # the same for "bulk"
tenant = {}  # email, app_id
windows = []  # (deployment_id, open from, open to) in Unix seconds


def window_json(pattern, t0, until):
    """Weekly UTC hours open `open` minutes out of every open+closed from
    t0's minute to until (the cycle stretched so that a day has at most 14
    spans: the API takes 16); returns the JSON and the open intervals."""
    open_m, closed_m = pattern
    k = max(1, math.ceil((until - t0) / 60 / (14 * (open_m + closed_m))))
    open_m, closed_m = open_m * k, closed_m * k
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hours, spans = {}, []
    m = int(t0 // 60)
    while m * 60 < until:
        start, end = m * 60, (m + open_m) * 60
        spans.append((start, end))
        while start < end:  # split at midnight
            d = datetime.fromtimestamp(start, timezone.utc)
            midnight = (start // 86400 + 1) * 86400
            stop = min(end, midnight)
            e = datetime.fromtimestamp(stop, timezone.utc)
            hours.setdefault(days[d.weekday()], []).append(
                [d.strftime("%H:%M"), "24:00" if stop == midnight else e.strftime("%H:%M")])
            start = stop
        m += open_m + closed_m
    return {"time_zone": "UTC", "hours": hours}, spans


def create_tenant():
    global KEY
    email = f"soak-{SEED}@example.com"
    t0 = time.time()
    plan, bodies = [], []
    for name, cap, pattern, hook in DEPLOYMENTS + [("bulk", BULK_CAPACITY, None, False)]:
        # d0 keeps capacity 1 (the self-test's over-capacity case is built on it).
        cap = cap if name == "d0" else cap * CAPACITY_SCALE
        body = {"name": name, "capacity": cap, "max_attempts": 1, "retry_interval_s": 60}
        if hook:
            body["result_url"] = f"http://127.0.0.1:{RECEIVER_PORT}/hook/{name}"
        spans = []
        if pattern:
            body["campaign_window"], spans = window_json(pattern, t0, t0 + SECONDS + SETTLE + 600)
        plan.append((name, cap, pattern, spans))
        bodies.append(body)
    t = stacklib.create_tenant(f"http://127.0.0.1:{API_PORT}", ADMIN_KEY, email, "soak", bodies,
                               account_name="soak")
    KEY = t["key"]
    tenant.update(email=email, app_id=t["application_id"])
    for (name, cap, pattern, spans), d in zip(plan, t["deployments"]):
        # Calls go to each in proportion to the capacity it has open.
        weight = cap * (pattern[0] / sum(pattern) if pattern else 1)
        dep = {"id": d["deployment_id"], "name": name, "capacity": cap, "weight": weight}
        if name == "bulk":
            bulk.update(dep)
        else:
            deps.append(dep)
        windows.extend((d["deployment_id"], a, b) for a, b in spans)


# ------------------------------------------------------------ load

traffic = None  # load.Traffic, once the tenant exists


# ------------------------------------------------------------ faults

faults = []  # (kind, at, detail)
checks = {}  # name: (ok, detail) of the fault-time invariants


def note_check(name, ok, detail):
    with lock:
        prev = checks.get(name)
        if prev is None or (prev[0] and not ok):
            checks[name] = (ok, detail)


killed = []  # refs of the requests an ingest was killed in the middle of


def restart(p, how):
    """After a kill (p.mu held): starts it again and waits until ready."""
    time.sleep(rng.uniform(0, 3))
    p.start()
    ok = p.wait_ready(90, check=False)
    note_check("restart-ready", ok, f"{p.name} ready after {how}: {ok}")


LIVENESS_S = 60  # longer than any outage the faults cause
exits = []  # (service, exit code, when): services that exited by themselves
live_stop = threading.Event()
outage = threading.Event()  # the broker or PostgreSQL is down (a fault): not ready is right


def save_stacks(p):
    """Every thread's stack of a wedged service (gdb), for the report."""
    path = os.path.join(LOGS, f"{p.name}-stacks-{int(time.time())}.txt")
    with open(path, "w") as f:
        subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                       stdout=f, stderr=subprocess.DEVNULL, timeout=120, check=False)
    return path


def liveness():
    """As an orchestrator's liveness probe would: a service alive and not
    ready for LIVENESS_S on end fails the check stays-live; its stacks are
    saved, then it is killed and started again so that the soak goes on."""
    since = {}
    while not live_stop.wait(5):
        for name, p in list(procs.items()):
            if name == "receiver" or not p.mu.acquire(blocking=False):
                continue
            try:
                if not p.alive() and p.proc is not None:
                    # Exited by itself (a fault's kill holds p.mu): a fatal
                    # producer error makes a service drain and exit, for its
                    # orchestrator to start it again, as this does.
                    code = p.proc.poll()
                    exits.append((name, code, time.time()))
                    log(f"{name} exited by itself (code {code}); started again")
                    restart(p, f"its own exit (code {code})")
                    since.pop(name, None)
                    continue
                if outage.is_set() or p.ready():
                    since.pop(name, None)
                    continue
                t0 = since.setdefault(name, time.time())
                if time.time() - t0 < LIVENESS_S:
                    continue
                stacks = save_stacks(p)
                note_check("stays-live", False, f"{name} (pid {p.pid}) alive and not ready from"
                           f" {ts(t0)} for {LIVENESS_S}s: stacks in {stacks}; killed, restarted")
                log(f"{name} stopped answering ready; stacks in {stacks}")
                p.signal(signal.SIGKILL)
                restart(p, "a liveness kill")
                since.pop(name, None)
            finally:
                p.mu.release()


def kill_mid_request(r):
    """SIGKILLs an ingest while a big upload or batch to it is a third or
    more sent; the traffic retries it with its key until answered."""
    p = procs[r.choice(INGESTS)]
    with p.mu:
        return kill_proc_mid_request(p)


def kill_proc_mid_request(p):
    r = rng
    started = threading.Event()
    # Joined by traffic.finish() like the traffic's own threads: a kill near
    # the end of a short run is still being retried when the load stops
    # (found by CI: the coverage check ran before its retry was answered).
    cutter = threading.Thread(target=traffic.kill_request, args=(p.port, started), daemon=True)
    traffic.threads.append(cutter)
    cutter.start()
    if not started.wait(120):
        raise RuntimeError("the request to cut off was not a third sent in 120 s")
    time.sleep(r.uniform(0, 1.5))
    with traffic.lock:
        cut = [(ref, f) for ref, f in traffic.in_flight.items() if f[0] == p.port]
    p.signal(signal.SIGKILL)
    killed.extend(ref for ref, _ in cut)
    restart(p, "SIGKILL")
    return f"{p.name} with " + ", ".join(f"{ref} {f[1]}/{f[2]} rows sent" for ref, f in cut)


def probe(port, ref, sent_after=None):
    """One single call outside the traffic, recorded like the traffic's."""
    t = time.time()
    st, body, took = api("POST", f"/api/v1/deployments/{deps[3]['id']}/calls",
                         {"phone_number": "+12125550100", "message_reference": ref}, port=port)
    with traffic.lock:
        traffic.answers.append((t, took, st, True, port))
        traffic.requests[ref] = st
        if st == 202 and body:
            traffic.accepted.append((body["call_id"], deps[3]["id"], time.time()))
    return st


def fault(kind):
    r = rng
    if kind == "kill-ingest":
        return kill_mid_request(r)
    if kind in ("kill-scheduler", "kill-dialer"):
        p = procs[r.choice(["scheduler-1", "scheduler-2"] if kind == "kill-scheduler"
                           else ["dialer-1", "dialer-2"])]
        with p.mu:
            p.signal(signal.SIGKILL)
            restart(p, "SIGKILL")
        return p.name
    if kind == "sigterm-ingest":
        p = procs[r.choice(INGESTS)]
        with p.mu:
            rc = p.signal(signal.SIGTERM, timeout=40)
            note_check("sigterm-drain", rc == 0, f"{p.name} exit {rc} on SIGTERM under load")
            if rc is None:
                p.signal(signal.SIGKILL)
            restart(p, "SIGTERM")
        return f"{p.name} exit {rc}"
    if kind in ("restart-kafka", "restart-postgres"):
        outage.set()
        try:
            return restart_dependency(kind, r)
        finally:
            outage.clear()
    if kind == "receiver-down":
        p = procs["receiver"]
        p.signal(signal.SIGKILL)
        time.sleep(r.uniform(3, 15))
        p.start()
        p.wait_ready(90, check=False)
        return ""
    raise ValueError(kind)


def restart_dependency(kind, r):
    """Stops the broker or PostgreSQL for a while and checks what the
    services do meanwhile and after."""
    if kind == "restart-kafka":
        local("kafka.sh", "stop")
        down_at = time.time()
        down_for = r.uniform(*OUTAGE)
        n = 0
        while time.time() < down_at + down_for:  # probes besides the load
            n += 1
            probe(API_PORTS[n % 2], f"probe-{int(down_at)}-{n}")
            time.sleep(0.2)
        up_from = time.time()
        local("kafka.sh", "start")
        up_at = time.time()
        with traffic.lock:
            during = [a for a in traffic.answers if a[0] >= down_at and a[0] < up_from]
        # A batch sent before ingest noticed waits for its rows' messages to
        # time out (the bulk producer's 30 s), and may be acknowledged once
        # the broker is back: only single calls are bounded.
        took = max((a[1] for a in during if a[3]), default=0)
        # Once ingest's once-a-second check has seen the broker gone, a call
        # is refused at once (a batch or upload first sends its body).
        after_notice = [a for a in during if a[0] >= down_at + NOTICE_S]
        late = max((a[1] for a in after_notice if a[3]), default=0)
        slow = max(during, key=lambda a: a[1], default=None)
        if slow:
            log(f"broker down from {ts(down_at)}: slowest answer {slow[1]:.2f}s, status {slow[2]},"
                f" sent {ts(slow[0])} to port {slow[4]}{' (single call)' if slow[3] else ''}")
        accepted_down = sum(1 for a in during if 200 <= a[2] < 300 and (a[3] or a in after_notice))
        refused = sum(1 for a in during if a[2] == 503)
        note_check("broker-down-refuses", accepted_down == 0 and refused > 0 and took <= REFUSE_WITHIN_S
                   and late <= 1, f"broker down: {refused} of {len(during)} answers 503,"
                   f" {accepted_down} 2xx, slowest call {took:.1f}s (limit {REFUSE_WITHIN_S:.0f}s),"
                   f" slowest call {NOTICE_S}s after the stop {late:.2f}s (limit 1s)")
        ok = False
        while time.time() < up_at + 60 and not ok:
            ok = all(probe(port, f"probe-up-{int(up_at)}-{port}") == 202 for port in API_PORTS)
            if not ok:
                time.sleep(0.5)
        note_check("broker-recovers", ok, f"202 again on both ingests {time.time() - up_at:.1f}s"
                   f" after the broker was back: {ok}")
        return f"down {up_from - down_at:.1f}s, answers {len(during)}"
    if kind == "restart-postgres":
        local("postgres.sh", "stop")
        down_at = time.time()
        time.sleep(max(4, r.uniform(*OUTAGE)))
        workers = [p for n, p in procs.items() if n.startswith(("scheduler", "dialer"))]
        not_ready = [p.name for p in workers if p.alive() and not p.ready()]
        note_check("postgres-down-pauses", len(not_ready) == len(workers),
                   f"not ready while Postgres down: {not_ready}")
        local("postgres.sh", "start")
        up_at = time.time()
        ok = all(p.wait_ready(60, check=False) for p in workers)
        note_check("postgres-back-resumes", ok,
                   f"all ready {time.time() - up_at:.1f}s after Postgres was back: {ok}")
        return f"down {up_at - down_at:.1f}s"
    raise ValueError(kind)


def fault_loop(deadline):
    """Faults in shuffled rounds of every kind until the deadline, and past
    it (the load going on) until each kind was done at least once."""
    order, done = [], set()
    while True:
        time.sleep(rng.uniform(0.5, 1.5) * FAULT_EVERY)
        if time.time() >= deadline and done >= set(FAULTS):
            return
        if not order:
            order = rng.sample(FAULTS, len(FAULTS))
        kind = order.pop()
        done.add(kind)
        at = time.time()
        try:
            detail = fault(kind)
        except Exception as e:  # a fault that could not be done is a failed check
            detail = f"error: {e}"
            note_check("faults-done", False, f"{kind}: {e}")
        faults.append((kind, at, detail))
        log(f"fault {kind} {detail} ({time.time() - at:.1f}s)")


# ------------------------------------------------------------ settle and check

def write_tsv(name, rows):
    path = os.path.join(WORK, name)
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(rows)
    return path


def ts(x):
    return datetime.fromtimestamp(x, timezone.utc).isoformat()


def unsettled():
    """Calls not finished (accepted and not recorded, or recorded and not
    completed), webhooks pending, events not published."""
    return psql("SELECT (SELECT count(*) FROM soak_accepted s WHERE NOT EXISTS"
                " (SELECT 1 FROM calls c WHERE c.call_id = s.call_id))"
                " + (SELECT count(*) FROM calls WHERE state <> 'completed'),"
                " (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),"
                " (SELECT count(*) FROM call_events_outbox)").split()


def read_events():
    """Every message of the call-events topic into events.tsv (streamed: an
    hour's run has millions); returns the file's path for soak_events."""
    path = os.path.join(WORK, "events.tsv")
    p = subprocess.Popen(["kcat", "-b", KAFKA, "-C", "-t", "outbound.call-events", "-o", "beginning",
                          "-e", "-q", "-f", "%s\n"], stdout=subprocess.PIPE, text=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        for line in p.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            d = e.get("data") or {}
            w.writerow((e.get("id"), e.get("type"), d.get("call_id"), d.get("attempt") or ""))
    p.wait()
    return path


def read_hooks():
    rows = []
    try:
        with open(os.path.join(WORK, "hooks.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 4 and line.endswith("\n") and parts[1]:
                    rows.append(parts)
    except FileNotFoundError:
        pass
    return rows


def check():
    """Loads what the driver saw into soak_* tables and runs check.sql."""
    psql(open(os.path.join(HERE, "tables.sql")).read())
    t = traffic
    seen = {}
    for c, d, at in t.accepted:  # a call named twice (a replayed 202) counts from the first
        seen.setdefault(c, (c, d, ts(at)))
    loads = {
        "soak_accepted": list(seen.values()),
        "soak_cancels": [(c, st, ts(a), ts(b), dl) for c, st, a, b, dl in t.cancels],
        "soak_queue_cancels": [(d, route, ts(a), ts(b), dl)
                               for d, route, a, b, dl in t.queue_cancels],
        "soak_pauses": [(d, ts(a), ts(b)) for d, a, b in t.pauses],
        "soak_windows": [(d, ts(a), ts(b)) for d, a, b in windows],
        "soak_requests": list(t.requests.items()),
        "soak_reads": [(c, "t" if same else "f", route, st, rec, state, ms)
                       for c, same, route, st, rec, state, ms in t.reads],
        "soak_bulk": [(ref, kind, key, rows, q, d, ts(at), tries)
                      for ref, kind, key, rows, q, d, at, tries in t.bulk_reqs],
    }
    for table, rows in loads.items():
        path = write_tsv(table + ".tsv", rows)
        psql(f"\\copy {table} FROM '{path}'")
    deadline = time.time() + SETTLE
    state = unsettled()
    while time.time() < deadline and state != ["0", "0", "0"]:
        time.sleep(5)
        state = unsettled()
    log(f"settled: unfinished calls, pending webhooks, unpublished events = {state}")
    psql(f"\\copy soak_events FROM '{read_events()}'")
    psql(f"\\copy soak_hooks FROM '{write_tsv('hooks-load.tsv', read_hooks())}'")
    stop_services()
    checks_sql = open(os.path.join(HERE, "check.sql")).read()
    out = psql(checks_sql)
    counters = [line.split("\t") for line in out.splitlines() if line]
    print(", ".join(f"{name} {value}" for name, value in counters), flush=True)
    if any(v != "0" for n, v in counters if n not in ("accepted", "final")):
        for line in bounded(open(os.path.join(HERE, "explain.sql")).read()).splitlines():
            log("violation " + line.replace("\t", ": ", 1))
    log("dials after a cancel's answer of the attempt in motion then (released before,"
        " not a violation): " + bounded(IN_MOTION_SQL).strip().replace("\t", " "))
    self_test(checks_sql)
    return counters


def bounded(sql, limit="180s"):
    """A query for the record only: given up after limit (an hour's run has
    millions of calls), so that the checks themselves always end."""
    try:
        return psql_script(f"SET statement_timeout = '{limit}';\n{sql}")
    except RuntimeError as e:
        return f"(not known: {e})"


# Calls accepted before a queue cancel (or cancelled one by one, 202) whose
# attempt released before the answer was dialed after it: the dial job was
# already with a dialer. Counted, and the longest gap, for the record.
IN_MOTION_SQL = """
WITH known AS (SELECT call_id, deployment_id, answered_at FROM soak_accepted
               UNION ALL SELECT c.call_id, c.deployment_id, b.answered_at FROM calls c
                   JOIN soak_bulk b ON b.ref = c.message_reference),
x AS (SELECT a.call_id, a.dialing_at - q.answered_at AS gap FROM attempts a JOIN known s USING (call_id)
          JOIN soak_queue_cancels q ON q.deployment_id = s.deployment_id
      WHERE s.answered_at < q.sent_at AND a.released_at <= q.answered_at
        AND a.dialing_at > q.answered_at
      UNION ALL SELECT a.call_id, a.dialing_at - k.answered_at FROM attempts a
          JOIN soak_cancels k USING (call_id)
      WHERE k.status = 202 AND a.released_at <= k.answered_at AND a.dialing_at > k.answered_at)
SELECT 'calls', count(DISTINCT call_id), 'longest', coalesce(max(gap), '0') FROM x
"""


def self_test(checks_sql):
    """The checker must count violations: one of each, injected and rolled back."""
    inject = open(os.path.join(HERE, "inject.sql")).read()
    try:
        out = psql_script(f"BEGIN;\n{inject}\n{checks_sql}\nROLLBACK;\n")
    except RuntimeError as e:
        note_check("checker-sees-violations", False, f"self-test broke: {e}")
        return
    counts = [line.split("\t") for line in out.splitlines() if "\t" in line]
    blind = [name for name, n in counts if name not in ("accepted", "final") and n == "0"]
    note_check("checker-sees-violations", not blind and len(counts) > 2,
               f"counters that missed an injected violation: {blind}")


def main():
    global traffic
    log(f"seed {SEED}, {SECONDS:.0f}s of load at {RATE}/s, a fault every ~{FAULT_EVERY:.0f}s,"
        f" ports {BASE}+, state {STATE}")
    local("stack.sh", "down", check=False)
    shutil.rmtree(STATE, ignore_errors=True)
    os.makedirs(WORK)
    os.makedirs(LOGS)
    os.makedirs(os.path.join(STATE, "bin"))
    for svc in ("ingest", "scheduler", "dialer"):  # a rebuild mid-run must not change them
        shutil.copy(os.path.join(ROOT, BUILD, "bin", f"outbound-{svc}"), os.path.join(STATE, "bin"))
    local("stack.sh", "up")
    ok = False
    try:
        start_all()
        create_tenant()
        traffic = load.Traffic(
            ports=API_PORTS, key=KEY, email=tenant["email"], app_id=tenant["app_id"], deps=deps,
            bulk=bulk, rate=RATE, seed=SEED, receiver_port=RECEIVER_PORT,
            psql_argv=["psql", DSN], log=log, big_rows=BIG_ROWS, big_every=BIG_EVERY,
            kill_rows=KILL_ROWS, kill_send_s=KILL_SEND_S, queue_cancel_every=QUEUE_CANCEL_EVERY,
            workers=max(24, int(RATE * 1.5)), expires_s=EXPIRES)
        traffic.start()
        for f in (watch_progress, liveness):
            threading.Thread(target=f, daemon=True).start()
        fault_loop(traffic.started + SECONDS)
        stuck = traffic.finish()
        live_stop.set()
        note_check("stays-live", True, f"no service was alive and not ready for {LIVENESS_S}s")
        # An exit of its own is a drain (a fatal producer error): its code
        # says so; a crash is a death by a signal.
        crashed = [(n, c) for n, c, _ in exits if c is None or c < 0]
        note_check("exits-by-design", not crashed,
                   f"services that exited by themselves and were started again:"
                   f" {[(n, c, ts(w)) for n, c, w in exits]}; crashed: {crashed}")
        t = traffic
        log(f"load done: {t.stats['ops']} operations in {t.elapsed:.0f}s"
            f" ({t.stats['ops'] / t.elapsed:.1f}/s), {len(t.accepted)} calls named by a 202,"
            f" {sum(b[3] for b in t.bulk_reqs)} rows in {len(t.bulk_reqs)} batches and uploads,"
            f" {len(t.reads)} reads, {len(t.cancels)} cancels, {len(t.queue_cancels)} queue"
            f" cancels, {len(t.pauses)} pauses, {len(faults)} faults")
        log("traffic: " + ", ".join(f"{k} {v}" for k, v in sorted(t.stats.items())))
        note_check("requests-answered", not t.unanswered and not stuck,
                   f"unanswered after {load.RETRY_FOR_S}s of retries: {t.unanswered[:5]}"
                   f" ({len(t.unanswered)}); threads still busy: {len(stuck)}")
        coverage(t)
        for name, p in procs.items():  # anything a failed fault left down
            if not p.alive():
                p.start()
                p.wait_ready(90, check=False)
        counters = check()
        ok = report(counters)
    except Exception as e:  # counted as a failure by tools/test.sh's total
        log(f"FAILED: the soak itself broke: {e!r}")
        print("soak: 0 passed, 1 failed", flush=True)
    finally:
        stop_services()  # SOAK_KEEP keeps Kafka and PostgreSQL only
        if not KEEP:
            local("stack.sh", "down", check=False)
    sys.exit(0 if ok else 1)


def watch_progress():
    """A line a minute: the rate reached, the retries, the ingests' memory."""
    last = 0
    while not traffic.stop.wait(60):
        t = traffic
        ops = t.stats["ops"]
        log(f"progress: {(ops - last) / 60:.1f} operations/s, {len(t.accepted)} calls named,"
            f" {sum(b[3] for b in t.bulk_reqs)} rows, {t.stats['retried']} requests retried,"
            f" {t.stats['ops-dropped']} dropped; peak RSS MB "
            + ", ".join(f"{n} {p.peak_rss_mb()}" for n, p in procs.items() if n != "receiver")
            + f"; calls unrecorded {gauge(API_PORT, 'outbound_calls_unrecorded')},"
              f" recording lag {gauge(API_PORT, 'outbound_call_recording_lag_seconds')}s")
        last = ops


def gauge(port, name):
    """A metric's value from a service's /metrics ('?' if unreadable)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return next((line.split()[-1] for line in text.splitlines()
                     if line.startswith(name + " ") or line.startswith(name + "{")), "?")
    except (OSError, http.client.HTTPException):
        return "?"


def coverage(t):
    """Each new check must have had something to check, and the load its rate."""
    reads = {(same, route) for _, same, route, st, *_ in t.reads if st == 200}
    note_check("covered-reads", len(reads) == 4,
               f"{len(t.reads)} reads after a 202 (same/other ingest x native/Plum: {sorted(reads)})")
    # Every request's tries, those whose rows expired while it was retried
    # too (the first retry after a kill may wait out the dead ingest's claim
    # lease; found by CI: a killed request's rows expired before it was
    # answered, so it was not counted as retried).
    retried = [ref for ref in killed if t.bulk_tries.get(ref, 0) > 1]
    note_check("covered-kill-retry", bool(retried) and t.stats["retry-409-in-progress"] > 0,
               f"{len(retried)} of {len(killed)} requests cut off by a kill retried to an answer,"
               f" {t.stats['retry-409-in-progress']} answers 409 idempotency_key_in_progress")
    dialing = sum(1 for c in t.cancels if c[1] == 202 and c[4])
    queues = sum(1 for q in t.queue_cancels if q[4])
    note_check("covered-cancel-dialing", dialing > 0 and queues > 0,
               f"{dialing} cancels of calls being dialed answered 202, {queues} queue cancels"
               f" while a call of the queue was dialing")
    rate = t.stats["ops"] / t.elapsed
    note_check("load-rate", rate >= 0.9 * RATE and t.stats["ops-dropped"] <= 0.01 * t.stats["ops"],
               f"{rate:.1f} operations/s of {RATE:g}, {t.stats['ops-dropped']} dropped (workers busy)")


def report(counters):
    """The counters' verdicts and the run's own checks (the counters line
    was printed by check())."""
    passed = failed = 0
    values = dict(counters)
    for name, value in counters:
        if name in ("accepted", "final"):
            continue
        good = value == "0"
        passed, failed = passed + good, failed + (not good)
        if not good:
            log(f"FAILED {name}: {value}")
    good = values["accepted"] == values["final"] and int(values["accepted"]) > 0
    passed, failed = passed + good, failed + (not good)
    kinds = {k for k, _, d in faults if not str(d).startswith("error")}
    missing = [k for k in FAULTS if k not in kinds]
    note_check("faults-done", not missing, f"faults not done: {missing}")
    for name, (good, detail) in sorted(checks.items()):
        passed, failed = passed + good, failed + (not good)
        log(f"{'ok' if good else 'FAILED'} {name}: {detail}")
    counts = {k: sum(1 for f in faults if f[0] == k) for k in FAULTS}
    log("faults: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    print(f"soak: {passed} passed, {failed} failed", flush=True)
    return failed == 0


def stop_services():
    """SIGTERM each, front door first; each must drain and exit 0."""
    codes = {}
    for name in INGESTS + ["scheduler-1", "scheduler-2", "dialer-1", "dialer-2", "receiver"]:
        p = procs.get(name)
        if p and p.alive():
            rc = p.signal(signal.SIGTERM, 60)
            if rc is None:
                p.signal(signal.SIGKILL)
            codes[name] = rc
    bad = {n: c for n, c in codes.items() if c != 0 and n != "receiver"}
    note_check("clean-exit", not bad, f"final SIGTERM exit codes {codes}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stops what it started
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where it waits
    main()
