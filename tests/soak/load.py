"""The soak's traffic (tests/soak/soak.py): what a busy production client
sends, at a steady rate, through both ingests, retrying every request that
failed or was cut off with the same Idempotency-Key until it is answered.

One dispatcher thread draws operations (Poisson, RATE a second) into a
queue that a pool of workers takes from; each worker keeps one persistent
connection per ingest. Operations: single calls (native JSON and Plum form
posts), calls:batch (JSON array and NDJSON), CSV uploads (native and Plum
bulk_queue), cancels of recent calls, pauses and resumes, queue cancels.
Besides them: big uploads now and then, the paced big requests the
kill-ingest fault cuts off, and a watcher that cancels calls and queues at
the moment their calls are dialing. Every call a 202 names is read back at
once on the ingest that accepted it and on the other one.

Everything seen is kept in lists of tuples that soak.py loads into the
soak_* tables (tests/soak/tables.sql) for check.sql.
"""
import base64
import http.client
import json
import queue
import random
import subprocess
import threading
import time
import urllib.parse
from collections import Counter

RETRY_FOR_S = 900  # a request still failing after this long counts as unanswered
BOUNDARY = "soak-8c1f0e4b2d"


class Conn:
    """A persistent connection to one ingest."""

    def __init__(self, port):
        self.port, self.c, self.used = port, None, 0

    def close(self):
        if self.c:
            self.c.close()
        self.c, self.used = None, 0

    def request(self, method, path, body, headers, timeout):
        """Returns (status, raw body, Retry-After); status 0 if no answer.
        A keep-alive connection the server closed meanwhile is opened again
        once, at once (the request never reached it)."""
        for again in (True, False):
            reused = self.used > 0
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                    self.c.connect()
                self.c.sock.settimeout(timeout)
                data = body() if callable(body) else body
                self.c.request(method, path, data, headers, encode_chunked=callable(body))
                r = self.c.getresponse()
                raw = r.read()
                self.used += 1
                if r.will_close:
                    self.close()
                return r.status, raw, r.getheader("Retry-After")
            except (OSError, http.client.HTTPException):
                self.close()
                if not (again and reused and not callable(body)):
                    return 0, b"", None
        return 0, b"", None


def retryable(status, raw, retry_after):
    """No answer, 5xx, 429, or a 409 saying the key's first request is
    still in progress (natively its code; Plum's {"error"} answer says so in
    words, with Retry-After)."""
    return (status == 0 or status >= 500 or status == 429
            or (status == 409 and (b"idempotency_key_in_progress" in raw
                                   or b"still being handled" in raw)))


def parse(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class Traffic:
    def __init__(self, *, ports, key, email, app_id, deps, bulk, rate, seed, receiver_port,
                 psql_argv, log, small_rows=(20, 120), batch_rows=(2, 20),
                 big_rows=100000, big_every=360, kill_rows=20000, kill_send_s=8,
                 call_cancel_every=1.0, queue_cancel_every=30, workers=24, expires_s=180):
        self.ports, self.key, self.app_id = ports, key, app_id
        self.basic = "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()
        self.deps, self.bulk, self.rate, self.seed = deps, bulk, rate, seed
        self.receiver_port, self.psql_argv, self.log = receiver_port, psql_argv, log
        self.small_rows, self.batch_rows = small_rows, batch_rows
        self.big_rows, self.big_every = big_rows, big_every
        self.kill_rows, self.kill_send_s = kill_rows, kill_send_s
        self.call_cancel_every, self.queue_cancel_every = call_cancel_every, queue_cancel_every
        self.nworkers = workers
        self.expires_s = expires_s  # rows of batches and uploads expire within this
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.local = threading.local()
        self.seq = 0
        # What was seen (see tables.sql for the meaning of each column).
        self.accepted = []  # (call_id, deployment_id, answered at)
        self.requests = {}  # ref -> final status of a single call's request
        self.answers = []  # (sent at, seconds, status, single call?, port) of every queueing exchange
        self.bulk_reqs = []  # (ref, kind, key, rows, queued per answer, deployment, answered at, tries)
        self.bulk_tries = {}  # ref -> tries until answered, of every batch and upload (expired too)
        self.reads = []  # (call_id, same instance?, route, status, recorded, state, ms after 202)
        self.cancels = []  # (call_id, status, sent at, answered at, seen dialing)
        self.queue_cancels = []  # (deployment_id, route, sent at, answered at, seen dialing)
        self.pauses = []  # (deployment_id, paused at, resume sent at)
        self.unanswered = []  # (what, first sent at, last status)
        self.recent = []  # call ids to cancel
        self.paused = set()
        self.stats = Counter()
        self.in_flight = {}  # ref -> (port, rows sent, rows) of the big requests being sent

    # -------------------------------------------------------- plumbing

    def conns(self):
        c = getattr(self.local, "conns", None)
        if c is None:
            c = self.local.conns = {p: Conn(p) for p in self.ports}
        return c

    def next_id(self, prefix):
        with self.lock:
            self.seq += 1
            return f"{prefix}-{self.seed}-{self.seq}"

    def exchange(self, method, path, body=None, headers=None, *, key=None, port=None, timeout=10,
                 single=False, queueing=False, plum=False, what="", on_try=None,
                 sent_first=False):
        """Sends until answered: a failure (no answer, 5xx, 429, 409 in
        progress or not recorded) is retried with the same key, after
        Retry-After, on the other ingest when this one gave no answer or a
        5xx. Returns (status, raw, sent at, answered at, port, tries): sent at
        is the last try's, or with sent_first the first try's (under a key
        the first try may be the one that acted, its answer replayed)."""
        hdrs = {"Authorization": self.basic if plum else f"Bearer {self.key}"}
        hdrs.update(headers or {})
        if key:
            hdrs["Idempotency-Key"] = key
        port = port or self.ports[0]
        first, tries, wait = time.time(), 0, 0.25
        while True:
            tries += 1
            t = time.time()
            if on_try:
                on_try(port)
            st, raw, ra = self.conns()[port].request(method, path, body, hdrs, timeout)
            done = time.time()
            if queueing:
                with self.lock:
                    self.answers.append((t, done - t, st, single, port))
            if not retryable(st, raw, ra):
                if tries > 1:
                    self.stats["retried"] += 1
                return st, raw, first if sent_first else t, done, port, tries
            with self.lock:
                self.stats[f"retry-{st}" if st != 409 else "retry-409-in-progress"] += 1
            if time.time() - first > RETRY_FOR_S:
                with self.lock:
                    self.unanswered.append((what or path, first, st))
                return st, raw, t, done, port, tries
            if st == 0 or st >= 500:
                port = self.other(port)
            try:
                pause = min(5.0, float(ra)) if ra else wait
            except ValueError:
                pause = wait
            wait = min(2.0, wait * 1.5)
            time.sleep(pause * random.uniform(0.8, 1.2))

    def other(self, port):
        return self.ports[(self.ports.index(port) + 1) % len(self.ports)]

    def read_back(self, r, ids, port, plum):
        """Reads each call at once on the ingest that accepted it and on
        the other, by the native or the Plum route; a 404 is a violation."""
        for cid, at in ids:
            for same in (True, False) if len(self.ports) > 1 else (True,):
                route_plum = plum if same else not plum
                path = f"/api/outbound/{cid}" if route_plum else f"/api/v1/calls/{cid}"
                p = port if same else self.other(port)
                for _ in range(20):  # 503 recording_behind, or an ingest down: again
                    st, raw, ra = self.conns()[p].request("GET", path, None, {
                        "Authorization": self.basic if route_plum else f"Bearer {self.key}"}, 10)
                    b = parse(raw) or {}
                    state = (b.get("call_details") or {}).get("state") if route_plum else b.get("state")
                    if b.get("call_id") not in (None, cid):
                        st = -st  # someone else's call: recorded as a wrong answer
                    with self.lock:
                        self.reads.append((cid, same, "plum" if route_plum else "native", st,
                                           str(b.get("recorded", True)).lower() if st == 200
                                           else b.get("code", ""),
                                           state or "", int((time.time() - at) * 1000)))
                    if st in (0, 503) or st > 500:
                        try:  # as a client should: after Retry-After (503 recording_behind: 1 s)
                            time.sleep(min(5.0, float(ra)) if ra else 0.5)
                        except ValueError:
                            time.sleep(0.5)
                        p = self.other(p) if st == 0 else p
                        continue
                    break

    # -------------------------------------------------------- calls

    def one_call(self, r, ref, expiring=0.1):
        c = {"phone_number": r.choice(NUMBERS), "message_reference": ref}
        x = r.random()
        if x < 0.3:
            c.update(max_attempts=2, retry_interval_s=60)
            if r.random() < 0.5:  # rings 30 s (sim time): long enough to be caught dialing
                c["phone_number"] = "+12125550140"
        elif x < 0.3 + expiring:
            c["expires_at"] = int(time.time()) + r.randint(5, 120)
        elif x < 0.4 + expiring:
            c["not_before"] = int(time.time()) + r.randint(2, 30)
        if r.random() < 0.05:
            c["result_url"] = f"http://127.0.0.1:{self.receiver_port}/hook/call"
        return c

    def accept(self, ids, dep_id, at):
        with self.lock:
            self.accepted.extend((i, dep_id, at) for i in ids)
            self.recent.extend(ids)
            del self.recent[:-300]

    def single(self, r, d, port):
        ref = self.next_id("s")
        st, raw, _, done, p, _ = self.exchange(
            "POST", f"/api/v1/deployments/{d['id']}/calls", json.dumps(self.one_call(r, ref)),
            {"Content-Type": "application/json"}, key=ref, port=port, single=True,
            queueing=True, timeout=30)
        self.requests[ref] = st
        body = parse(raw) or {}
        if st == 202 and body.get("call_id"):
            self.accept([body["call_id"]], d["id"], done)
            self.read_back(r, [(body["call_id"], done)], p, False)

    def plum_single(self, r, d, port):
        ref = self.next_id("p")
        c = self.one_call(r, ref)
        form = {"phone_number": c["phone_number"], "message_reference": ref}
        if "max_attempts" in c:
            form.update(max_attempts=2, reattempt_wait=60)
        if "expires_at" in c:
            form["end_timestamp"] = c["expires_at"]
        if "not_before" in c:
            form["start_timestamp"] = c["not_before"]
        st, raw, _, done, p, _ = self.exchange(
            "POST", f"/api/apps/{self.app_id}/{d['id']}/queue", urllib.parse.urlencode(form),
            {"Content-Type": "application/x-www-form-urlencoded"}, key=ref, port=port,
            single=True, queueing=True, plum=True, timeout=30)
        self.requests[ref] = st
        body = parse(raw) or {}
        if st == 200 and body.get("call_id"):  # Plum says 200 (with a Link) for a queued call
            self.accept([body["call_id"]], d["id"], done)
            self.read_back(r, [(body["call_id"], done)], p, True)

    # -------------------------------------------------------- many rows

    def rows(self, n, r, bad_every=0):
        """n rows with distinct phone numbers; every bad_every-th one invalid."""
        out = []
        for i in range(n):
            bad = bad_every and i % bad_every == bad_every - 1
            out.append("12" if bad else f"+1212{2000000 + i:07d}")
        return out

    def bulk_request(self, r, kind, d, n, port, *, pace_s=0, big=False, kill_target=None):
        """A batch (json, ndjson) or an upload (csv, plum-csv) of n rows, one
        message_reference on every row; retried until answered. Returns the
        status."""
        ref = self.next_id(kind)
        bad_every = 0 if big or n < 10 else r.choice([0, 0, 7])
        phones = self.rows(n, r, bad_every)
        good = sum(1 for p in phones if p != "12")
        expires = int(time.time()) + r.randint(self.expires_s // 3, self.expires_s)
        chunk = max(1, n // 40)
        state = {"sent": 0}

        def lines():
            if kind == "csv" or kind == "plum-csv":
                yield "phone_number,message_reference,expires_at\n"
            for i, ph in enumerate(phones):
                if kind == "json":
                    yield ("[" if i == 0 else ",") + json.dumps(
                        {"phone_number": ph, "message_reference": ref, "expires_at": expires})
                elif kind == "ndjson":
                    yield json.dumps({"phone_number": ph, "message_reference": ref,
                                      "expires_at": expires}) + "\n"
                else:
                    yield f"{ph},{ref},{expires}\n"
            if kind == "json":
                yield "[]" if not phones else "]"

        def body():
            """The body in chunks, paced over pace_s; records progress."""
            buf = []
            if kind == "plum-csv":
                yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csv\";"
                       f" filename=\"{ref}.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
            for i, line in enumerate(lines()):
                buf.append(line)
                if len(buf) >= chunk:
                    yield "".join(buf).encode()
                    buf = []
                    state["sent"] = min(i, n)
                    with self.lock:
                        self.in_flight[ref] = (state["port"], state["sent"], n)
                    if pace_s:
                        time.sleep(pace_s * chunk / n)
            if buf:
                yield "".join(buf).encode()
            if kind == "plum-csv":
                yield f"\r\n--{BOUNDARY}--\r\n".encode()
            state["sent"] = n

        ctype = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
                 "plum-csv": f"multipart/form-data; boundary={BOUNDARY}"}[kind]
        path = {"json": f"/api/v1/deployments/{d['id']}/calls:batch",
                "ndjson": f"/api/v1/deployments/{d['id']}/calls:batch",
                "csv": f"/api/v1/deployments/{d['id']}/uploads",
                "plum-csv": f"/api/apps/{self.app_id}/{d['id']}/bulk_queue"}[kind]
        state["port"] = port
        if kill_target is not None:
            kill_target["ref"] = ref
        # The body is made again for each try, which notes the port it goes to.
        st, raw, _, done, p, tries = self.exchange(
            "POST", path, body, {"Content-Type": ctype}, key=ref, port=port,
            timeout=300 if big else 120, queueing=True, plum=kind == "plum-csv", what=ref,
            on_try=lambda p: state.__setitem__("port", p))
        with self.lock:
            self.in_flight.pop(ref, None)
        ans = parse(raw) or {}
        queued = ans.get("queued")
        ids = []
        if kind in ("json", "ndjson") and isinstance(ans.get("results"), list):
            ids = [x["call_id"] for x in ans["results"] if "call_id" in x]
            queued = len(ids)
        with self.lock:
            self.bulk_tries[ref] = tries
            if done >= expires:
                # Its rows expired while it was retried (faults, leases): a
                # retry rightly refuses them as already expired, after an
                # earlier try that was cut off may have queued some, so its
                # rows are not judged one by one (found by make test's soak
                # on a loaded machine: 37 tries, every row expired).
                self.stats["bulk-expired-before-answer"] += 1
            else:
                self.bulk_reqs.append((ref, kind, ref, good, -1 if queued is None else queued,
                                       d["id"], done, tries))
            self.stats[f"{kind}-rows"] += good
        if ids:
            self.accept(ids, d["id"], done)
            sample = [ids[0], ids[-1]] if len(ids) > 1 else ids
            self.read_back(r, [(i, done) for i in sample], p, False)
        return st

    # -------------------------------------------------------- the rest

    def cancel_call(self, r, cid=None, dialing=""):
        if cid is None:
            with self.lock:
                if not self.recent:
                    return
                cid = r.choice(self.recent)
        key = self.next_id("cancel")
        for _ in range(3):  # 409 call_not_recorded: again after its Retry-After, twice
            st, raw, sent, done, _, _ = self.exchange("POST", f"/api/v1/calls/{cid}:cancel",
                                                      key=key, port=r.choice(self.ports),
                                                      what="cancel")
            if not (st == 409 and b"call_not_recorded" in raw):
                break
            with self.lock:
                self.stats["cancel-409-not-recorded"] += 1
            time.sleep(1)
        with self.lock:
            self.cancels.append((cid, st, sent, done, dialing))
            self.stats[f"cancel-{st}{'-dialing' if dialing else ''}"] += 1
        return st

    def cancel_queue(self, d, plum=False, dialing=""):
        if plum:
            st, _, sent, done, _, _ = self.exchange(
                "DELETE", f"/api/apps/{self.app_id}/{d['id']}/cancel", plum=True,
                key=self.next_id("plum-queue-cancel"), sent_first=True,
                port=random.choice(self.ports), what="plum queue cancel")
        else:
            st, _, sent, done, _, _ = self.exchange("POST", f"/api/v1/deployments/{d['id']}:cancel",
                                                    key=self.next_id("queue-cancel"),
                                                    sent_first=True,
                                                    port=random.choice(self.ports),
                                                    what="queue cancel")
        with self.lock:
            self.stats[f"queue-cancel-{st}{'-dialing' if dialing else ''}"] += 1
            if st == 202:
                self.queue_cancels.append((d["id"], "plum" if plum else "native", sent, done,
                                           dialing))

    def pause_resume(self, r, d):
        with self.lock:
            if d["id"] in self.paused:
                return
            self.paused.add(d["id"])
        try:
            st, _, _, paused_at, _, _ = self.exchange("POST", f"/api/v1/deployments/{d['id']}:pause",
                                                      key=self.next_id("pause"),
                                                      port=r.choice(self.ports), what="pause")
            if st // 100 != 2:
                return
            time.sleep(r.uniform(2, 8))
            resume_sent = time.time()
            self.exchange("POST", f"/api/v1/deployments/{d['id']}:resume",
                          key=self.next_id("resume"), port=r.choice(self.ports), what="resume")
            with self.lock:
                self.pauses.append((d["id"], paused_at, resume_sent))
        finally:
            with self.lock:
                self.paused.discard(d["id"])

    MIX = [("single", 0.50), ("plum", 0.14), ("json", 0.06), ("ndjson", 0.04), ("csv", 0.02),
           ("plum-csv", 0.01), ("cancel", 0.18), ("pause", 0.04), ("queue-cancel", 0.01)]

    def op(self, r, kind):
        port = r.choice(self.ports)
        small = r.choices(self.deps, weights=[x["weight"] for x in self.deps])[0]
        d = small if r.random() < 0.6 else self.bulk
        if kind == "single":
            self.single(r, d, port)
        elif kind == "plum":
            self.plum_single(r, d, port)
        elif kind in ("json", "ndjson"):
            self.bulk_request(r, kind, self.bulk, r.randint(*self.batch_rows), port)
        elif kind in ("csv", "plum-csv"):
            self.bulk_request(r, kind, self.bulk, r.randint(*self.small_rows), port)
        elif kind == "cancel":
            self.cancel_call(r)
        elif kind == "pause":
            self.pause_resume(r, small)
        elif kind == "queue-cancel":
            self.cancel_queue(small, plum=r.random() < 0.5)

    def worker(self, n, jobs):
        r = random.Random(self.seed * 1000 + n)
        while True:
            kind = jobs.get()
            if kind is None:
                return
            try:
                self.op(r, kind)
            except Exception as e:  # a broken op is reported, the load goes on
                with self.lock:
                    self.stats["op-error"] += 1
                self.log(f"op {kind} broke: {e!r}")

    def dispatcher(self, jobs):
        r = random.Random(self.seed * 7 + 1)
        kinds, weights = zip(*self.MIX)
        t = time.time()
        while not self.stop.is_set():
            t += r.expovariate(self.rate)
            time.sleep(max(0.0, t - time.time()))
            try:
                jobs.put_nowait(r.choices(kinds, weights)[0])
                self.stats["ops"] += 1
            except queue.Full:
                self.stats["ops-dropped"] += 1  # the workers fell behind

    def big_uploads(self):
        """One big upload every big_every seconds (native and Plum in turn)."""
        r = random.Random(self.seed * 11)
        n = 0
        while not self.stop.wait(self.big_every * r.uniform(0.7, 1.3)):
            n += 1
            kind = "csv" if n % 2 else "plum-csv"
            t = time.time()
            st = self.bulk_request(r, kind, self.bulk, self.big_rows, r.choice(self.ports), big=True)
            self.log(f"big upload ({kind}, {self.big_rows} rows): {st} in {time.time() - t:.1f}s")

    def kill_request(self, port, started):
        """The big request a kill-ingest fault cuts off: sent to port,
        paced; started is set once a third of it was sent. Runs in its own
        thread, retried until answered like any other."""
        r = random.Random(time.time())
        kind = r.choice(["csv", "plum-csv", "json", "ndjson"])
        target = {}

        def watch():
            while not self.stop.is_set():
                with self.lock:
                    f = self.in_flight.get(target.get("ref"))
                if f and f[1] >= f[2] // 3:
                    started.set()
                    return
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()
        st = self.bulk_request(r, kind, self.bulk, self.kill_rows, port, pace_s=self.kill_send_s,
                               kill_target=target)
        started.set()
        with self.lock:
            self.stats["kill-requests"] += 1
        self.log(f"the killed {kind} request ({self.kill_rows} rows) was answered {st}")

    # -------------------------------------------------------- at the moment of dialing

    def dialing_watcher(self):
        """Polls the calls being dialed and cancels some of them, and now and
        then the queue of one, at that moment."""
        r = random.Random(self.seed * 13)
        q = Psql(self.psql_argv)
        next_call = next_queue = time.time() + 5
        plum = False
        by_id = {d["id"]: d for d in self.deps + [self.bulk]}
        while not self.stop.wait(0.2):
            now = time.time()
            if now < min(next_call, next_queue):
                continue
            rows = q.rows("SELECT a.call_id, a.deployment_id, a.attempt, c.max_attempts, a.state"
                          " FROM attempts a JOIN calls c USING (call_id)"
                          " WHERE a.state IN ('dialing', 'connected') LIMIT 200")
            if not rows:
                continue
            dialing = [x for x in rows if x[4] == "dialing"] or rows
            if now >= next_call:
                # Prefer a call that has a retry left: the cancel must stop it.
                pick = [x for x in dialing if int(x[2]) < int(x[3])] or dialing
                cid, _, attempt, _, st = r.choice(pick)
                self.cancel_call(r, cid, dialing=f"{st}:{attempt}")
                next_call = now + self.call_cancel_every * r.uniform(0.5, 1.5)
            if now >= next_queue:
                cid, dep, attempt, _, st = r.choice(dialing)
                plum = not plum
                self.cancel_queue(by_id[dep], plum=plum, dialing=f"{st}:{cid}")
                next_queue = now + self.queue_cancel_every * r.uniform(0.5, 1.5)
        q.close()

    # -------------------------------------------------------- run

    def start(self):
        jobs = queue.Queue(maxsize=50 * self.nworkers)  # a backlog while the platform is down
        self.jobs = jobs
        self.threads = [threading.Thread(target=self.worker, args=(i, jobs), daemon=True)
                        for i in range(self.nworkers)]
        self.threads += [threading.Thread(target=f, daemon=True)
                         for f in (lambda: self.dispatcher(jobs), self.dialing_watcher)]
        if self.big_every > 0:
            self.threads.append(threading.Thread(target=self.big_uploads, daemon=True))
        for t in self.threads:
            t.start()
        self.started = time.time()

    def finish(self, timeout=RETRY_FOR_S + 120):
        """Stops drawing operations and waits for those begun (retries included)."""
        self.stop.set()
        while True:  # operations drawn and not begun are dropped
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                break
        for _ in range(self.nworkers):
            self.jobs.put(None)
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(1, deadline - time.time()))
        self.elapsed = time.time() - self.started
        return [t for t in self.threads if t.is_alive()]


class Psql:
    """One psql process kept open, so a poll costs a query, not a connection."""

    def __init__(self, argv):
        self.argv, self.p = argv, None

    def close(self):
        if self.p:
            self.p.kill()
            self.p.wait()
        self.p = None

    def rows(self, sql):
        for _ in range(2):
            try:
                if self.p is None or self.p.poll() is not None:
                    self.p = subprocess.Popen(self.argv + ["-qAtX", "-F", "\t"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL, text=True, bufsize=1)
                self.p.stdin.write(sql.rstrip(";") + ";\nSELECT '--end--';\n")
                self.p.stdin.flush()
                out = []
                while True:
                    line = self.p.stdout.readline()
                    if not line:
                        raise OSError("psql ended")
                    if line == "--end--\n":
                        return [x.split("\t") for x in out]
                    out.append(line.rstrip("\n"))
            except OSError:  # Postgres restarted: a new connection
                self.close()
                time.sleep(1)
        return []


NUMBERS = ["+12125550100"] * 5 + ["+12125550110", "+12125550120", "+12125550130",
                                  "+12125550140", "+12125550150", "+12125550160",
                                  "+12125550170", "+14155550123", "+13125550199"]
