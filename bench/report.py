#!/usr/bin/python3
"""What the benchmarks' report scripts share (bench/ingest_report.py,
bench/scheduler_report.py, bench/dialer_report.py, bench/stages.py,
bench/summary.py): the CPU and memory of processes, batch posting, the
command line, the results documents, rates and distributions, tables, and
rewriting a block of BENCHMARKS.md. Each of them keeps only its own phases,
rows and subcommands.

    report.py quiet MAX_BUSY_CORES TIMEOUT_S
        waits until the machine uses less than MAX_BUSY_CORES (measured over
        2 s) or TIMEOUT_S passed; prints {"busy_cores":..,"waited_s":..}.
        Every bench script calls it before each phase.

Every benchmark's report script (ingest_report.py, scheduler_report.py,
dialer_report.py) has the results subcommands of main's results argument:
"""
import datetime
import glob
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")
RESULTS_USAGE = """
    {0} assemble WORK PARAMS_JSON OUT_JSON
        reads what the bench script left in WORK and writes the results document.
    {0} table RESULTS_JSON
        prints the results table.
    {0} markdown RESULTS_JSON BENCHMARKS_MD
        rewrites the benchmark's part of BENCHMARKS.md from the results.
"""


# ---------------------------------------------------------------- command line
def main(doc, cmds, argv, results=None):
    """Runs the subcommand argv[1] of cmds (name -> (function, how many
    arguments: a number or a tuple of the numbers allowed)) with argv[2:]
    and returns its exit code (None: 0); a wrong name or count prints doc to
    stderr and returns 64. results, the functions (assemble, table,
    markdown) of a benchmark, adds those subcommands and their usage."""
    if results:
        cmds = dict(cmds, assemble=(results[0], 3), table=(results[1], 1), markdown=(results[2], 2))
        doc = doc.rstrip() + "\n" + RESULTS_USAGE.format(os.path.basename(argv[0]))
    fn, counts = cmds.get(argv[1], (None, ())) if len(argv) > 1 else (None, ())
    if fn is None or len(argv) - 2 not in (counts if isinstance(counts, tuple) else (counts,)):
        print(doc.strip(), file=sys.stderr)
        return 64
    return fn(*argv[2:]) or 0


def every(interval, limit_s, stop):
    """Yields the seconds since it started, on a fixed schedule of interval
    seconds, until (checked when the caller's loop comes back for more)
    limit_s passed or stop is true: a sampler's loop."""
    t0 = nxt = time.monotonic()
    while True:
        t = time.monotonic() - t0
        yield t
        if t >= limit_s or stop:
            return
        nxt += interval
        time.sleep(max(0.0, nxt - time.monotonic()))


def stop_flag():
    """A list that SIGTERM appends to: the samplers' loops end when it is true."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    return stop


# ---------------------------------------------------------------- processes
def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]), idle  # user..steal (guest is inside user)


def busy_ticks(m0, m1):
    """The machine's busy ticks between two machine_ticks()."""
    return (m1[0] - m1[1]) - (m0[0] - m0[1])


def proc_table():
    """pid -> (ppid, ticks, comm) for every process (threads included)."""
    out = {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1 : s.rindex(")")]
        rest = s[s.rindex(")") + 2 :].split()
        out[int(d[6:])] = (int(rest[1]), int(rest[11]) + int(rest[12]), comm)
    return out


def descendants(table, roots):
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in table]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    return seen


def proc_ticks(pid):
    """utime + stime of one process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def vm_kb(pid):
    """{"VmRSS": kB, "VmHWM": kB} of one process ({} when it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                m = re.match(r"(VmRSS|VmHWM):\s+(\d+) kB", line)
                if m:
                    out[m.group(1)] = int(m.group(2))
    except OSError:
        pass
    return out


def read_pid(pidfile, alive=False):
    """The pid in the first line of pidfile; with alive, None unless that
    process is running (a stale file from an earlier run)."""
    try:
        with open(pidfile) as f:
            pid = int(f.readline().strip())
        if alive:
            os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def pid_files(run_dir):
    """name -> pid of every running process with a pid file in RUN_DIR."""
    out = {}
    for path in glob.glob(os.path.join(run_dir, "*.pid")):
        pid = read_pid(path, alive=True)
        if pid is not None:
            out[os.path.basename(path)[:-4]] = pid
    return out


def roles(table, pg, kafka, bench, bench_role, named):
    """pid -> role: Postgres's and Kafka's process trees, the bench's own
    tree (bench_role, where neither), then named {pid: role} over all."""
    role = {}
    for p in descendants(table, [pg]):
        role[p] = "postgres"
    for p in descendants(table, [kafka]):
        role[p] = "kafka"
    for p in descendants(table, [bench]):
        role.setdefault(p, bench_role)
    role.update(named)
    return role


def tally(per, outside, before, table, role):
    """Adds each process's ticks in table beyond before (pid -> ticks; 0 for
    a pid not in it) to per[its role], and those of processes with no role
    to outside[their name] as well."""
    for p, (_, ticks, comm) in table.items():
        d = ticks - before.get(p, 0)
        if d <= 0:
            continue
        r = role.get(p, "outside")
        per[r] = per.get(r, 0) + d
        if r == "outside":
            outside[comm] = outside.get(comm, 0) + d


def cores_doc(dt, busy, per, outside, order=None, seconds_digits=1, top=True):
    """The CPU document of a phase of dt seconds: the machine's busy cores,
    each role's (order, or all of per sorted) and, with top, the four
    busiest names outside the bench."""
    cores = lambda t: round(t / HZ / dt, 2) if dt > 0 else None  # noqa: E731
    res = {"seconds": round(dt, seconds_digits), "machine_busy_cores": cores(busy)}
    for r in order or sorted(per):
        res[r + "_cores"] = cores(per.get(r, 0))
    if top:
        most = sorted(outside.items(), key=lambda kv: -kv[1])[:4]
        res["outside_top"] = {k: cores(v) for k, v in most if (cores(v) or 0) >= 0.02}
    return res


def snapshot():
    return (time.time(), machine_ticks(), proc_table())


def cpu_split(a, b, role, order=None, same_name=False, top=True):
    """cores_doc between two snapshot()s. A process that started after a
    counts with all its ticks; with same_name, so does one whose name
    changed (a reused pid); without, a name changed by exec is the same
    process."""
    before = {p: v[1] for p, v in a[2].items() if not same_name or b[2].get(p, (0, 0, v[2]))[2] == v[2]}
    per, outside = {}, {}
    tally(per, outside, before, b[2], role)
    return cores_doc(b[0] - a[0], busy_ticks(a[1], b[1]), per, outside, order, top=top)


def cmd_quiet(max_busy, timeout):
    max_busy, timeout = float(max_busy), float(timeout)
    start = time.time()
    # Measured over 2 s; without a wait (a quick run) a glance of 0.25 s
    # says how busy it was: the quick run has some 40 phases.
    window = 2.0 if timeout > 0 else 0.25
    while True:
        m0 = machine_ticks()
        time.sleep(window)
        busy = busy_ticks(m0, machine_ticks()) / HZ / window
        waited = time.time() - start
        if busy < max_busy or waited >= timeout:
            print(json.dumps({"busy_cores": round(busy, 2), "waited_s": round(waited, 1)}))
            return


# ---------------------------------------------------------------- the stack
def scrape(url):
    """A Prometheus text page as {name or name{labels}: integer value}."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (-?\d+)$", line)
        if m:
            vals[m.group(1)] = int(m.group(2))
    return vals


def psql_ints(dsn, sql, timeout=None):
    """The integers of the one row SQL answers, None when it fails."""
    try:
        r = subprocess.run(["psql", dsn, "-qAtc", sql], capture_output=True, text=True, timeout=timeout)
        return [int(x) for x in r.stdout.split("|")] if r.returncode == 0 and r.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def post_all(urls, reqs, key, lanes, timeout):
    """POSTs every (path, JSON body) of reqs with the bearer key: lane k of
    lanes keep-alive connections, to urls[k % len(urls)], sends reqs[k::lanes].
    Returns {"accepted", "rejected", "statuses"} summed over the answers
    (status 0: no answer)."""
    import http.client
    import urllib.parse

    res = {"accepted": 0, "rejected": 0, "statuses": {}}
    lock = threading.Lock()

    def lane(k):
        u = urllib.parse.urlsplit(urls[k % len(urls)])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        for path, body in reqs[k::lanes]:
            try:
                conn.request("POST", path, body=body,
                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
                r = conn.getresponse()
                status, data = r.status, json.loads(r.read() or b"{}")
            except (OSError, ValueError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                status, data = 0, {}
            with lock:
                res["statuses"][str(status)] = res["statuses"].get(str(status), 0) + 1
                res["accepted"] += int(data.get("accepted", 0))
                res["rejected"] += int(data.get("rejected", 0))
        conn.close()

    run_lanes(lane, lanes)
    return res


def run_lanes(lane, count):
    """Runs lane(0) .. lane(count - 1), each in a thread of its own, and
    returns when all have."""
    threads = [threading.Thread(target=lane, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ---------------------------------------------------------------- documents
def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_text(path, text):
    """Writes path whole or not at all (a rename)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def dump(obj, out):
    """A work file: one line of JSON."""
    write_text(out, json.dumps(obj))


def write_results(out, res):
    """A results document: indented JSON, its folder made when missing."""
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    write_text(out, json.dumps(res, indent=2) + "\n")


def results_head(params, targets, with_versions=False):
    """The start of a results document: date, machine, [versions,] targets,
    then the bench script's params.json."""
    res = {
        "date": params.get("date") or datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    if with_versions:
        res["versions"] = versions()
    res["targets"] = targets
    res.update(params)
    return res


def limits(work):
    """The limit tools' JSON lines (WORK/limit.NAME.json), by NAME."""
    out = {}
    for path in sorted(glob.glob(f"{work}/limit.*.json")):
        v = load(path)
        if v is not None:
            out[os.path.basename(path)[len("limit.") : -len(".json")]] = v
    return out


def machine_info():
    info = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            info["cpu_model"] = m.group(1).strip() if m else "unknown"
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    info["memory_gib"] = round(kb / 1024 / 1024, 1)
    try:
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    return info


def versions():
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    v = {}
    m = re.search(r"wrk (\S+)", run(["wrk", "-v"]))
    v["wrk"] = m.group(1) if m else None
    for pkg in ("librdkafka1", "libmicrohttpd12", "postgresql-15"):
        v[pkg] = run(["dpkg-query", "-W", "-f=${Version}", pkg]).strip() or None
    v["kafka"] = next(
        (
            os.path.basename(p)[len("kafka_2.13-") : -4]
            for p in glob.glob(os.path.join(os.path.dirname(__file__), "..", ".cache/kafka/libs/kafka_2.13-*.jar"))
        ),
        None,
    )
    return v


# ---------------------------------------------------------------- figures
def pct(sorted_vals, q):
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def dist(vals):
    v = sorted(vals)
    if not v:
        return None
    r = lambda x: round(x, 1)  # noqa: E731
    return {
        "n": len(v),
        "min": r(v[0]),
        "p50": r(pct(v, 50)),
        "p90": r(pct(v, 90)),
        "p99": r(pct(v, 99)),
        "max": r(v[-1]),
        "mean": r(sum(v) / len(v)),
    }


def busy_rate(samples, key):
    """Rate of samples[key] over its busy period (first to last sample
    where it grew), and the best 1-second rate."""
    pts = [(s["t"], s[key]) for s in samples if s.get(key) is not None]
    if len(pts) < 2:
        return None
    grew = [i for i in range(1, len(pts)) if pts[i][1] > pts[i - 1][1]]
    if not grew:
        return {"total": 0, "per_s": 0, "seconds": 0, "best_1s": 0}
    a, b = grew[0] - 1, grew[-1]
    best = max((pts[i][1] - pts[i - 1][1]) / (pts[i][0] - pts[i - 1][0]) for i in grew if pts[i][0] > pts[i - 1][0])
    secs = pts[b][0] - pts[a][0]
    total = pts[b][1] - pts[a][1]
    res = {"total": total, "seconds": round(secs, 1), "per_s": round(total / secs, 1) if secs > 0 else None, "best_1s": round(best, 1)}
    res["sustained_per_s"] = sustained_rate(pts[a:b + 1])
    return res


def sustained_rate(pts):
    """Rate between the samples where 10% and 90% of the busy period's
    growth was reached (interpolated): the running rate, without the
    start-up (consumers joining, first fetches) and the last stragglers."""
    base, total = pts[0][1], pts[-1][1] - pts[0][1]
    if total <= 0 or len(pts) < 3:
        return None

    def when(frac):
        goal = base + frac * total
        for (t0, v0), (t1, v1) in zip(pts, pts[1:]):
            if v1 >= goal:
                return t0 + (t1 - t0) * ((goal - v0) / (v1 - v0) if v1 > v0 else 0)
        return pts[-1][0]

    t10, t90 = when(0.1), when(0.9)
    return round(0.8 * total / (t90 - t10), 1) if t90 > t10 else None


# ---------------------------------------------------------------- tables
def n(x, spec="{:,.0f}"):
    """A figure for a table, "-" when it was not measured."""
    return "-" if x is None else spec.format(x)


def verdict(ok, quick=False):
    if quick:
        return "n/a (quick run)"
    return "met" if ok else "MISSED"


def text_table(header, body):
    w = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * n for n in w])] + [line(r) for r in body])


def md_table(header, body):
    esc = lambda x: str(x).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in body]
    return "\n".join(out)


def print_rows(title, body):
    """(measure, result, target, verdict) rows as indented lines under a title."""
    w = max(len(x[0]) for x in body) if body else 10
    print()
    print(title)
    for m, res, tgt, v in body:
        print(f"  {m:<{w}}  {res}" + (f"  [target {tgt}: {v}]" if tgt else ""))


# ---------------------------------------------------------------- BENCHMARKS.md
def block_markers(name):
    """The begin marker's start and the end marker of a block of BENCHMARKS.md."""
    return f"<!-- {name}:begin", f"<!-- {name}:end -->"


def find_block(text, name):
    """The block NAME of text, markers included ("" when absent)."""
    begin, end = block_markers(name)
    i, j = text.find(begin), text.find(end)
    return text[i : j + len(end)] if i >= 0 and j > i else ""


def put_block(md_path, name, note, body, first=False):
    """Rewrites the block NAME of md_path (its begin marker saying note) to
    body and leaves the rest alone; a missing block goes at the end or, with
    first, before the first section."""
    begin, end = block_markers(name)
    block = f"{begin} ({note}) -->\n{body}\n{end}"
    try:
        with open(md_path) as f:
            text = f.read()
    except OSError:
        text = "# Benchmarks\n"
    i, j, k = text.find(begin), text.find(end), text.find("\n## ")
    if i >= 0 and j > i:
        text = text[:i] + block + text[j + len(end) :]
    elif first and k >= 0:
        text = text[: k + 1] + block + "\n\n" + text[k + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(md_path, text)


if __name__ == "__main__":
    sys.exit(main(__doc__, {"quiet": (cmd_quiet, 2)}, sys.argv))
