#!/usr/bin/env python3
"""Fault-injection soak (issue 9) on a stack of its own.

Brings up Kafka and PostgreSQL (deploy/local, OB_LOCAL_PORT_BASE=SOAK_PORT_BASE,
state in SOAK_STATE, wiped first), one ingest, two schedulers, two dialers
and a webhook receiver; queues calls steadily across eight deployments
(small capacities, short campaign windows, retries, expiry, cancels, pauses,
a queue cancel) while, at random moments, it SIGKILLs and restarts ingest,
a scheduler or a dialer, SIGTERMs ingest under load, restarts the broker
(kept down for a while: ingest must answer 503 quickly and recover by
itself), restarts PostgreSQL (schedulers and dialers must report not ready,
then resume) and takes the webhook receiver down and up. Then it lets the
work settle and checks the invariants of the design brief from Postgres,
the whole call-events topic and the receiver's log (tests/soak/check.sql).

Prints the counters line and `soak: N passed, M failed` (invariants), which
tools/test.sh totals. Exits 1 on any failure. Everything it started is
stopped at the end. Settings (environment): SOAK_SECONDS (load, default
1800), SOAK_FAULT_EVERY_S (mean seconds between faults, 30), SOAK_RATE
(requests/s, 3), SOAK_SETTLE_S (longest wait for the work to finish, 300),
SOAK_SEED, SOAK_PORT_BASE (28000), SOAK_STATE (.local-soak), SOAK_TIME_SCALE
(the sim's, 20), BUILD (build: the binaries of $BUILD/bin); SOAK_KEEP=1 leaves
Kafka and PostgreSQL up to look at (stop them with OB_LOCAL_PORT_BASE=28000
OB_LOCAL_STATE=.local-soak deploy/local/stack.sh down).
"""
import csv
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "soak")
LOCAL = os.path.join(ROOT, "deploy", "local")


def env_num(name, default):
    return float(os.environ.get(name, default))


SECONDS = env_num("SOAK_SECONDS", 1800)
FAULT_EVERY = env_num("SOAK_FAULT_EVERY_S", 30)
RATE = env_num("SOAK_RATE", 3)
SETTLE = env_num("SOAK_SETTLE_S", 300)
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
RECEIVER_PORT = BASE + 70
WORK = os.path.join(STATE, "soak")
LOGS = os.path.join(STATE, "logs")
rng = random.Random(SEED)
lock = threading.Lock()
stop_load = threading.Event()


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

class Proc:
    """One service (or the receiver) started by the soak, known by its pid."""

    def __init__(self, name, argv, port, env):
        self.name, self.argv, self.port, self.env = name, argv, port, env
        self.p = None

    def start(self):
        out = open(os.path.join(LOGS, f"{self.name}.log"), "ab")
        self.p = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig, timeout=60):
        """Sends sig and waits; returns the exit code (None: still running)."""
        if not self.alive():
            return self.p.returncode if self.p else None
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def ready(self):
        return http_get(self.port, "/readyz" if self.name != "receiver" else "/") == 200

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                return False
            if self.ready():
                return True
            time.sleep(0.2)
        return False


def http_get(port, path, timeout=3):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return 0


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
    return Proc(name, [os.path.join(STATE, "bin", f"outbound-{svc}")], port, e)


ADMIN_KEY = "soak-admin-" + "%032x" % random.getrandbits(128)
procs = {}


def start_all():
    procs["ingest"] = service("ingest", "ingest", API_PORT)
    procs["scheduler-1"] = service("scheduler-1", "scheduler", BASE + 81)
    procs["scheduler-2"] = service("scheduler-2", "scheduler", BASE + 84)
    procs["dialer-1"] = service("dialer-1", "dialer", BASE + 82)
    procs["dialer-2"] = service("dialer-2", "dialer", BASE + 83)
    procs["receiver"] = Proc("receiver", [sys.executable, os.path.join(HERE, "receiver.py"),
                                          str(RECEIVER_PORT), os.path.join(WORK, "hooks.tsv")],
                             RECEIVER_PORT, dict(os.environ))
    for p in procs.values():
        p.start()
        if not p.wait_ready():
            raise RuntimeError(f"{p.name} not ready; log {LOGS}/{p.name}.log")


# ------------------------------------------------------------ the API

def api(method, path, body=None, key=None, timeout=30):
    """Returns (status, parsed body or None, seconds taken); status 0 if no answer."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=timeout)
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
deps = []  # dicts: id, name, capacity, window
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
    st, acct, _ = api("POST", "/api/v1/accounts",
                      {"email": f"soak-{SEED}@example.com", "name": "soak"}, key=ADMIN_KEY)
    assert st == 201, f"create account: {st} {acct}"
    KEY = acct["api_key"]["key"]
    st, app, _ = api("POST", "/api/v1/applications", {"name": "soak"})
    assert st == 201, f"create application: {st} {app}"
    t0 = time.time()
    for name, cap, pattern, hook in DEPLOYMENTS:
        body = {"name": name, "capacity": cap, "max_attempts": 1, "retry_interval_s": 60}
        if hook:
            body["result_url"] = f"http://127.0.0.1:{RECEIVER_PORT}/hook/{name}"
        spans = []
        if pattern:
            body["campaign_window"], spans = window_json(pattern, t0, t0 + SECONDS + SETTLE + 600)
        st, d, _ = api("POST", f"/api/v1/applications/{app['application_id']}/deployments", body)
        assert st == 201, f"create deployment {name}: {st} {d}"
        # Calls go to each in proportion to the capacity it has open.
        weight = cap * (pattern[0] / sum(pattern) if pattern else 1)
        deps.append({"id": d["deployment_id"], "name": name, "capacity": cap, "weight": weight})
        windows.extend((d["deployment_id"], a, b) for a, b in spans)


# ------------------------------------------------------------ load

accepted = []  # (call_id, deployment_id, answered at)
cancels = []  # (call_id, sent at, answered at) of 200 answers
queue_cancels = []  # (deployment_id, sent at, answered at) of 202 answers
pauses = []  # (deployment_id, paused at (answer), resume sent at)
answers = []  # (sent at, seconds, status, message_reference) of every queueing request
recent = []  # call ids to cancel
NUMBERS = ["+12125550100"] * 5 + ["+12125550110", "+12125550120", "+12125550130",
                                  "+12125550140", "+12125550150", "+12125550160",
                                  "+12125550170", "+14155550123", "+13125550199"]


def one_call(r, ref):
    c = {"phone_number": r.choice(NUMBERS), "message_reference": ref}
    x = r.random()
    if x < 0.3:
        c.update(max_attempts=2, retry_interval_s=60)
    elif x < 0.4:
        c["expires_at"] = int(time.time()) + r.randint(5, 120)
    elif x < 0.5:
        c["not_before"] = int(time.time()) + r.randint(2, 30)
    if r.random() < 0.05:
        c["result_url"] = f"http://127.0.0.1:{RECEIVER_PORT}/hook/call"
    return c


def queue(r, d, ref, batch=True):
    n = 1 if r.random() < 0.8 or not batch else r.randint(2, 10)
    t = time.time()
    if n == 1:
        st, body, took = api("POST", f"/api/v1/deployments/{d['id']}/calls", one_call(r, ref))
        ids = [body["call_id"]] if st == 202 and body else []
    else:
        st, body, took = api("POST", f"/api/v1/deployments/{d['id']}/calls:batch",
                             [one_call(r, ref) for _ in range(n)])
        ids = [x["call_id"] for x in (body or {}).get("results", [])
               if "call_id" in x] if 200 <= st < 300 else []
    done = time.time()
    with lock:
        # A batch answered 503 may have queued some of its rows (it says so).
        answers.append((t, took, st, ref if n == 1 else None))
        accepted.extend((i, d["id"], done) for i in ids)
        recent.extend(ids)
        del recent[:-200]


def cancel_call(r):
    with lock:
        if not recent:
            return
        cid = r.choice(recent)
    t = time.time()
    st, _, _ = api("POST", f"/api/v1/calls/{cid}:cancel")
    if st == 200:
        with lock:
            cancels.append((cid, t, time.time()))


paused = set()  # deployments a worker has paused: one pause at a time each


def pause_resume(r, d):
    with lock:
        if d["id"] in paused:
            return
        paused.add(d["id"])
    try:
        pause_resume_once(r, d)
    finally:
        with lock:
            paused.discard(d["id"])


def pause_resume_once(r, d):
    st, _, _ = api("POST", f"/api/v1/deployments/{d['id']}:pause")
    if st // 100 != 2:
        return
    paused_at = time.time()
    time.sleep(r.uniform(2, 8))
    resume_sent = time.time()
    while not (api("POST", f"/api/v1/deployments/{d['id']}:resume")[0] // 100 == 2):
        time.sleep(1)  # must not stay paused (ingest or Postgres may be down)
    with lock:
        pauses.append((d["id"], paused_at, resume_sent))


def cancel_queue(d):
    t = time.time()
    st, _, _ = api("POST", f"/api/v1/deployments/{d['id']}:cancel")
    if st == 202:
        with lock:
            queue_cancels.append((d["id"], t, time.time()))


def load_worker(n, workers):
    r = random.Random(SEED * 100 + n)
    sent = 0
    while not stop_load.is_set():
        time.sleep(r.expovariate(RATE / workers))
        d = r.choices(deps, weights=[x["weight"] for x in deps])[0]
        x = r.random()
        if x < 0.86:
            sent += 1
            queue(r, d, f"soak-{n}-{sent}")
        elif x < 0.96:
            cancel_call(r)
        elif x < 0.995:
            pause_resume(r, d)
        else:
            cancel_queue(d)


# ------------------------------------------------------------ faults

faults = []  # (kind, at, detail)
checks = {}  # name: (ok, detail) of the fault-time invariants


def note_check(name, ok, detail):
    with lock:
        prev = checks.get(name)
        if prev is None or (prev[0] and not ok):
            checks[name] = (ok, detail)


def fault(kind):
    r = rng
    if kind in ("kill-ingest", "kill-scheduler", "kill-dialer"):
        name = {"kill-ingest": "ingest", "kill-scheduler": r.choice(["scheduler-1", "scheduler-2"]),
                "kill-dialer": r.choice(["dialer-1", "dialer-2"])}[kind]
        p = procs[name]
        p.signal(signal.SIGKILL)
        time.sleep(r.uniform(0, 3))
        p.start()
        ok = p.wait_ready()
        note_check("restart-ready", ok, f"{name} ready after SIGKILL: {ok}")
        return name
    if kind == "sigterm-ingest":
        p = procs["ingest"]
        rc = p.signal(signal.SIGTERM, timeout=40)
        note_check("sigterm-drain", rc == 0, f"ingest exit {rc} on SIGTERM under load")
        if rc is None:
            p.signal(signal.SIGKILL)
        p.start()
        note_check("restart-ready", p.wait_ready(), "ingest ready after SIGTERM")
        return f"exit {rc}"
    if kind == "restart-kafka":
        local("kafka.sh", "stop")
        down_at = time.time()
        outage = r.uniform(*OUTAGE)
        n = 0
        while time.time() < down_at + outage:  # probes besides the load
            n += 1
            queue(r, deps[3], f"probe-{int(down_at)}-{n}", batch=False)
            time.sleep(0.2)
        up_from = time.time()
        local("kafka.sh", "start")
        up_at = time.time()
        with lock:
            during = [a for a in answers if a[0] >= down_at and a[0] < up_from]
        # A batch sent before ingest noticed waits for its rows' messages to
        # time out (the bulk producer's 30 s): only single calls are bounded.
        took = max((a[1] for a in during if a[3]), default=0)
        # Once ingest's once-a-second check has seen the broker gone: at once.
        late = max((a[1] for a in during if a[0] >= down_at + NOTICE_S), default=0)
        accepted_down = sum(1 for a in during if 200 <= a[2] < 300)
        refused = sum(1 for a in during if a[2] == 503)
        note_check("broker-down-refuses", accepted_down == 0 and refused > 0 and took <= REFUSE_WITHIN_S
                   and late <= 1, f"broker down: {refused} of {len(during)} answers 503,"
                   f" {accepted_down} 2xx, slowest call {took:.1f}s (limit {REFUSE_WITHIN_S:.0f}s),"
                   f" slowest {NOTICE_S}s after the stop {late:.2f}s (limit 1s)")
        ok = False
        while time.time() < up_at + 60 and not ok:
            st, body, _ = api("POST", f"/api/v1/deployments/{deps[3]['id']}/calls",
                              {"phone_number": "+12125550100"})
            if st == 202:
                with lock:
                    accepted.append((body["call_id"], deps[3]["id"], time.time()))
                ok = True
            else:
                time.sleep(0.5)
        note_check("broker-recovers", ok, f"202 again {time.time() - up_at:.1f}s after the broker"
                   f" was back: {ok}")
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
        ok = all(p.wait_ready(60) for p in workers)
        note_check("postgres-back-resumes", ok,
                   f"all ready {time.time() - up_at:.1f}s after Postgres was back: {ok}")
        return f"down {up_at - down_at:.1f}s"
    if kind == "receiver-down":
        p = procs["receiver"]
        p.signal(signal.SIGKILL)
        time.sleep(r.uniform(3, 15))
        p.start()
        p.wait_ready()
        return ""
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
    return psql("SELECT (SELECT count(*) FROM soak_accepted s LEFT JOIN calls c USING (call_id)"
                " WHERE c.state IS DISTINCT FROM 'completed'),"
                " (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),"
                " (SELECT count(*) FROM call_events_outbox)").split()


def read_events():
    """Every message of the call-events topic, as TSV rows for soak_events."""
    r = subprocess.run(["kcat", "-b", KAFKA, "-C", "-t", "outbound.call-events", "-o", "beginning",
                        "-e", "-q", "-f", "%s\n"], stdout=subprocess.PIPE, text=True, timeout=300)
    rows = []
    for line in r.stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        d = e.get("data") or {}
        rows.append((e.get("id"), e.get("type"), d.get("call_id"), d.get("attempt") or ""))
    return rows


def read_hooks():
    rows = []
    try:
        with open(os.path.join(WORK, "hooks.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 4 and line.endswith("\n"):
                    rows.append(parts)
    except FileNotFoundError:
        pass
    return rows


def check():
    """Loads what the driver saw into soak_* tables and runs check.sql."""
    psql(open(os.path.join(HERE, "tables.sql")).read())
    loads = {
        "soak_accepted": [(c, d, ts(t)) for c, d, t in accepted],
        "soak_cancels": [(c, ts(a), ts(b)) for c, a, b in cancels],
        "soak_queue_cancels": [(d, ts(a), ts(b)) for d, a, b in queue_cancels],
        "soak_pauses": [(d, ts(a), ts(b)) for d, a, b in pauses],
        "soak_windows": [(d, ts(a), ts(b)) for d, a, b in windows],
        "soak_requests": [(a[3], a[2]) for a in answers if a[3]],
    }
    for table, rows in loads.items():
        path = write_tsv(table + ".tsv", rows)
        psql(f"\\copy {table} FROM '{path}'")
    deadline = time.time() + SETTLE
    state = unsettled()
    while time.time() < deadline and state != ["0", "0", "0"]:
        time.sleep(2)
        state = unsettled()
    log(f"settled: unfinished calls, pending webhooks, unpublished events = {state}")
    psql(f"\\copy soak_events FROM '{write_tsv('events.tsv', read_events())}'")
    psql(f"\\copy soak_hooks FROM '{write_tsv('hooks-load.tsv', read_hooks())}'")
    stop_services()
    checks_sql = open(os.path.join(HERE, "check.sql")).read()
    out = psql(checks_sql)
    self_test(checks_sql)
    return [line.split("\t") for line in out.splitlines() if line]


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
        started = time.time()
        workers = [threading.Thread(target=load_worker, args=(i, 4), daemon=True) for i in range(4)]
        for w in workers:
            w.start()
        fault_loop(started + SECONDS)
        stop_load.set()
        for w in workers:
            w.join(120)
        log(f"load done: {len(accepted)} accepted, {len(cancels)} cancels, {len(pauses)} pauses,"
            f" {len(queue_cancels)} queue cancels, {len(faults)} faults")
        for name, p in procs.items():  # anything a failed fault left down
            if not p.alive():
                p.start()
                p.wait_ready()
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


def report(counters):
    line = ", ".join(f"{name} {value}" for name, value in counters)
    print(line, flush=True)
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
    for name in ("ingest", "scheduler-1", "scheduler-2", "dialer-1", "dialer-2", "receiver"):
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
    main()
