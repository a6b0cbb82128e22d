#!/usr/bin/python3
"""Helpers of bench/scheduler.sh (the scheduler benchmark): a paced client,
the release-phase watcher, and the results (bench/results/scheduler-<ts>.json,
the table, the scheduler block of BENCHMARKS.md); what the benchmarks share
is in bench/report.py.

    scheduler_report.py pace API KEY DEPLOYMENT N RATE OUT
        POSTs N single calls to the deployment at RATE calls/s (4 keep-alive
        connections on a fixed schedule); writes one line per call to OUT:
        "<seq> <http status> <seconds> <call_id or ->".
    scheduler_report.py watch METRICS_URL PIDFILE DSN DIALER TOTAL LIMIT_S OUT BENCH_PID PG_PID KAFKA_PID
        keeps the fake dialer's heartbeat (dialers.seen_at) fresh every
        second, and once the scheduler (PIDFILE) answers METRICS_URL samples
        every second its released counter, owned partitions, RSS and CPU,
        until TOTAL jobs were released, LIMIT_S seconds passed or the
        scheduler exited (also on SIGTERM); writes the samples and the CPU
        split (scheduler, postgres, kafka, bench, outside) to OUT.
    scheduler_report.py sql NAME C_FILE
        prints the C string constant NAME (e.g. DUE_SQL) of C_FILE as SQL,
        so that the bench explains the queries the scheduler really runs.

And the results subcommands of bench/report.py: assemble, table and
markdown, which rewrites only the block between the scheduler-bench markers
of BENCHMARKS.md (appended at the end when absent).
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
from report import load, md_table, n, verdict  # noqa: E402

TARGETS = {
    "releases_per_s": 20000,
    "latency_p99_ms": 100,
    "scheduler_peak_mb": 256,
}


# ------------------------------------------------------------ paced client
def cmd_pace(api, key, dep, n, rate, out):
    import http.client
    import urllib.parse

    n, rate = int(n), float(rate)
    u = urllib.parse.urlsplit(api)
    path = f"/api/v1/deployments/{dep}/calls"
    lanes = 4
    results = [None] * n
    start = time.monotonic() + 0.2

    def lane(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        for i in range(k, n, lanes):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(
                {"phone_number": "+1 212 555 %04d" % (i % 10000), "message_reference": f"bench-sched-lat-{i}"}
            )
            t0 = time.monotonic()
            try:
                conn.request(
                    "POST",
                    path,
                    body=body,
                    headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                try:
                    call_id = json.loads(data).get("call_id") or "-"
                except ValueError:
                    call_id = "-"
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                status, call_id = 0, "-"
            results[i] = (status, time.monotonic() - t0, call_id)
        conn.close()

    report.run_lanes(lane, lanes)
    wall = time.monotonic() - start
    with open(out, "w") as f:
        for i, (status, secs, call_id) in enumerate(results):
            f.write(f"{i} {status} {secs:.6f} {call_id}\n")
    with open(out + ".wall", "w") as f:
        json.dump({"seconds": round(wall, 3), "calls": n, "rate": rate}, f)


# ------------------------------------------------------------ release watcher
def cmd_watch(url, pidfile, dsn, dialer, total, limit_s, out, bench, pg, kafka):
    total, limit_s = int(total), float(limit_s)
    bench, pg, kafka = int(bench), int(pg), int(kafka)
    stop = report.stop_flag()
    # One psql session keeps the heartbeat: a statement per second on stdin.
    hb = subprocess.Popen(
        ["psql", dsn, "-qAt", "-v", "ON_ERROR_STOP=0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    beat_sql = f"UPDATE dialers SET seen_at = now() WHERE instance_id = '{dialer}';\n"

    def beat():
        try:
            hb.stdin.write(beat_sql)
            hb.stdin.flush()
        except OSError:
            pass

    samples = []
    pid = None
    t_start = None
    reason = "limit"
    cpu0 = cpu1 = None
    wait_deadline = time.monotonic() + 120
    next_tick = time.monotonic()
    while True:
        beat()
        now = time.monotonic()
        if pid is None:
            pid = report.read_pid(pidfile, alive=True)
        if pid is not None and not os.path.exists(f"/proc/{pid}"):
            reason = "scheduler exited"
            break
        m = report.scrape(url) if pid is not None else None
        if m is not None:
            if t_start is None:
                t_start = now
                cpu0 = report.snapshot()
            vm = report.vm_kb(pid)
            samples.append(
                {
                    "t": round(now - t_start, 3),
                    "released": m.get("outbound_dial_jobs_released_total", 0),
                    "owned": m.get("outbound_scheduler_partitions_owned", 0),
                    "rss_kb": vm.get("VmRSS"),
                    "hwm_kb": vm.get("VmHWM"),
                    "cpu_ticks": report.proc_ticks(pid),
                }
            )
            if samples[-1]["released"] >= total:
                reason = "all released"
                break
            if now - t_start >= limit_s:
                reason = "time limit"
                break
        elif t_start is None and now > wait_deadline:
            reason = "scheduler never answered"
            break
        if stop:
            reason = "stopped"
            break
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.monotonic()))
    if cpu0:
        cpu1 = report.snapshot()
    try:
        hb.stdin.close()
        hb.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        hb.kill()
    res = {"end_reason": reason, "total": total, "limit_s": limit_s, "pid": pid, "samples": samples}
    if cpu0 and cpu1:
        role = report.roles(cpu1[2], pg, kafka, bench, "bench", {pid: "scheduler"})
        order = ("scheduler", "postgres", "kafka", "bench", "outside")
        res["cpu"] = report.cpu_split(cpu0, cpu1, role, order, same_name=True)
    report.dump(res, out)


# ------------------------------------------------------------ C string constants
def cmd_sql(name, path):
    with open(path) as f:
        src = f.read()
    m = re.search(r"static const char %s\[\]\s*=\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*;" % re.escape(name), src)
    if not m:
        print(f"{name} not found in {path}", file=sys.stderr)
        return 1
    parts = re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1))
    print("".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts))
    return 0


# ------------------------------------------------------------ results
def latency_phase(work, name="latency"):
    try:
        with open(f"{work}/{name}.client.txt") as f:
            client = [ln.split() for ln in f if ln.strip()]
    except OSError:
        return None
    wall = load(f"{work}/{name}.client.txt.wall", {})
    statuses = {}
    for _, status, _, _ in client:
        statuses[status] = statuses.get(status, 0) + 1
    http_ms = [float(s) * 1000 for _, st, s, _ in client if st == "202"]
    rows = []
    try:
        with open(f"{work}/{name}.rows.csv") as f:
            for ln in f:
                p = ln.strip().split(",")
                if len(p) == 5:
                    rows.append([float(x) if x else None for x in p[1:]])
    except OSError:
        pass
    accepted = statuses.get("202", 0)
    dialed = [r for r in rows if r[3] is not None]
    res = {
        "calls_sent": len(client),
        "rate_per_s": wall.get("rate"),
        "send_seconds": wall.get("seconds"),
        "http_statuses": statuses,
        "http_ms": report.dist(http_ms),
        "recorded": len(rows),
        "dialed": len(dialed),
        "not_dialed": accepted - len(dialed),
        "queue_to_dialing_ms": report.dist([r[3] - r[0] for r in dialed]),
        # Where the time goes: ingest accepted -> scheduler recorded it in
        # Postgres -> released (the pass's clock) -> a dialer started dialing.
        "accepted_to_recorded_ms": report.dist([r[1] - r[0] for r in rows if r[1] is not None]),
        "recorded_to_released_ms": report.dist([r[2] - r[1] for r in rows if r[1] is not None and r[2] is not None]),
        "released_to_dialing_ms": report.dist([r[3] - r[2] for r in dialed if r[2] is not None]),
        "wait": load(f"{work}/{name}.wait.json", {}),
    }
    if name == "latency":
        res["warmup"] = latency_phase(work, "latency.warmup")
    return res


def release_phase(work):
    w = load(f"{work}/release.watch.json")
    if not w:
        return None
    s = w["samples"]
    res = {"end_reason": w["end_reason"], "pending_at_start": w["total"], "limit_s": w["limit_s"]}
    res.update(load(f"{work}/release.seed.json", {}))
    if s:
        last = s[-1]
        first_rel = next((x for x in s if x["released"] > 0), None)
        owned_all = next((x for x in s if x["owned"] >= res.get("request_partitions", 1 << 30)), None)
        res["released"] = last["released"]
        res["seconds"] = last["t"]
        res["first_release_s"] = first_rel["t"] if first_rel else None
        res["all_partitions_owned_s"] = owned_all["t"] if owned_all else None
        res["overall_per_s"] = round(last["released"] / last["t"], 1) if last["t"] > 0 else None
        # The steady period: from the first sample that saw a release to
        # the last one (the end of the backlog or the time limit).
        if first_rel and last["t"] > first_rel["t"]:
            res["steady_per_s"] = round((last["released"] - first_rel["released"]) / (last["t"] - first_rel["t"]), 1)
            res["steady_seconds"] = round(last["t"] - first_rel["t"], 1)
        per_s = []
        # The second in which the backlog ran out is only partly busy.
        busy = s[:-1] if w["end_reason"] == "all released" else s
        for a, b in zip(busy, busy[1:]):
            if a["released"] > 0 or b["released"] > 0:
                if b["t"] > a["t"]:
                    per_s.append((b["released"] - a["released"]) / (b["t"] - a["t"]))
        res["per_second"] = report.dist(per_s)
        hwm = [x["hwm_kb"] for x in s if x.get("hwm_kb")]
        rss = [x["rss_kb"] for x in s if x.get("rss_kb")]
        if hwm:
            res["scheduler_peak_mb"] = round(max(hwm) / 1024, 1)
        if rss:
            res["scheduler_rss_end_mb"] = round(rss[-1] / 1024, 1)
        ticks = [x["cpu_ticks"] for x in s if x.get("cpu_ticks") is not None]
        if len(ticks) > 1 and last["t"] > 0:
            res["scheduler_cores"] = round((ticks[-1] - ticks[0]) / report.HZ / (last["t"] - s[0]["t"]), 2)
    if "cpu" in w:
        res["cpu"] = w["cpu"]
    res["samples"] = [[x["t"], x["released"], x["owned"], x.get("rss_kb")] for x in s]
    res["attempts_in_postgres"] = load(f"{work}/release.attempts.json")
    res["pg_stat_statements"] = load(f"{work}/release.statements.json")
    res["explain"] = explains(work)
    res["drain"] = load(f"{work}/release.drain.json")
    res["in_flight_after"] = (load(f"{work}/release.in_flight.json") or {}).get("in_flight")
    return res


def explains(work):
    """EXPLAIN ANALYZE outputs the bench saved, by query name."""
    out = {}
    for path in sorted(glob.glob(f"{work}/release.explain.*.txt")):
        name = path.split("release.explain.")[1][: -len(".txt")]
        with open(path) as f:
            text = f.read()
        m = re.search(r"Execution Time: ([0-9.]+) ms", text)
        out[name] = {"execution_ms": float(m.group(1)) if m else None, "plan": text.splitlines()}
        if "statement timeout" in text:
            t = re.search(r"statement_timeout = '(\d+)s'", text)
            out[name]["timed_out_s"] = int(t.group(1)) if t else True
    return out


def cmd_assemble(work, params_path, out):
    res = report.results_head(load(params_path, {}), TARGETS)
    res["phases"] = {"release": release_phase(work), "latency": latency_phase(work)}
    # The record phase (bench/stages.py watch) and the limits (issue 8).
    res["phases"]["record"] = load(f"{work}/record.watch.json")
    res["limits"] = report.limits(work)
    report.write_results(out, res)


# ------------------------------------------------------------ table
def rows(r):
    p = r["phases"]
    quick = r.get("mode") == "quick"
    out = []
    rel = p.get("release")
    if rel:
        size = f"{rel.get('deployments', 0):,} deployments, {rel.get('pending_at_start', 0):,} pending"
        rate = rel.get("steady_per_s")
        out.append(
            (
                f"release: dispatch decisions/s ({size})",
                f"{n(rate)} steady ({n(rel.get('released'))} released in {n(rel.get('seconds'), '{:.1f}')} s,"
                f" {rel.get('end_reason')}; per-second p50 {n((rel.get('per_second') or {}).get('p50'))},"
                f" first release after {n(rel.get('first_release_s'), '{:.1f}')} s)",
                f">= {TARGETS['releases_per_s']:,}",
                verdict(rate is not None and rate >= TARGETS["releases_per_s"], quick),
            )
        )
        peak = rel.get("scheduler_peak_mb")
        out.append(
            (
                "release: scheduler peak RSS (VmHWM)",
                f"{n(peak, '{:.1f}')} MB (RSS at the end {n(rel.get('scheduler_rss_end_mb'), '{:.1f}')} MB)",
                f"< {TARGETS['scheduler_peak_mb']} MB",
                verdict(peak is not None and peak < TARGETS["scheduler_peak_mb"], quick),
            )
        )
        dr = rel.get("drain") or {}
        if dr:
            out.append(
                (
                    "release: scheduler stop after the phase (SIGTERM)",
                    f"{'drained' if dr.get('drained') else 'NOT drained'} in {n(dr.get('seconds'), '{:.1f}')} s",
                    "",
                    "",
                )
            )
        cpu = rel.get("cpu") or {}
        out.append(
            (
                "release: cores used (of %s)" % r["machine"].get("cores"),
                f"scheduler {n(cpu.get('scheduler_cores'), '{:.2f}')}, postgres {n(cpu.get('postgres_cores'), '{:.2f}')},"
                f" kafka {n(cpu.get('kafka_cores'), '{:.2f}')}, outside the bench {n(cpu.get('outside_cores'), '{:.2f}')}"
                f" (machine {n(cpu.get('machine_busy_cores'), '{:.2f}')})",
                "",
                "",
            )
        )
    lat = p.get("latency")
    if lat:
        q = lat.get("queue_to_dialing_ms") or {}
        out.append(
            (
                f"queue-to-dialing latency, idle capacity ({lat.get('calls_sent'):,} calls at {n(lat.get('rate_per_s'))}/s)",
                f"p50 {n(q.get('p50'), '{:.1f}')} ms, p99 {n(q.get('p99'), '{:.1f}')} ms, max {n(q.get('max'), '{:.1f}')} ms"
                f" ({lat.get('dialed'):,} dialed, {lat.get('not_dialed'):,} not)",
                f"p99 < {TARGETS['latency_p99_ms']} ms",
                verdict(q.get("p99") is not None and q["p99"] < TARGETS["latency_p99_ms"] and lat.get("not_dialed") == 0, quick),
            )
        )
        for key, label in (
            ("accepted_to_recorded_ms", "accepted -> recorded in Postgres"),
            ("recorded_to_released_ms", "recorded -> released"),
            ("released_to_dialing_ms", "released -> dialing"),
        ):
            d = lat.get(key) or {}
            out.append((f"  latency part: {label}", f"p50 {n(d.get('p50'), '{:.1f}')} ms, p99 {n(d.get('p99'), '{:.1f}')} ms", "", ""))
        wu = lat.get("warmup") or {}
        wq = wu.get("queue_to_dialing_ms") or {}
        if wq:
            out.append(
                (
                    f"  warm-up before it ({wu.get('calls_sent'):,} calls, not counted)",
                    f"p50 {n(wq.get('p50'), '{:.1f}')} ms, p99 {n(wq.get('p99'), '{:.1f}')} ms, max {n(wq.get('max'), '{:.1f}')} ms",
                    "",
                    "",
                )
            )
    return out


def statements_rows(r, limit=8):
    st = ((r["phases"].get("release") or {}).get("pg_stat_statements")) or []
    out = []
    for s in st[:limit]:
        q = re.sub(r"\s+", " ", s["query"])[:110]  # md_table escapes its "|"
        out.append((n(s["calls"]), n(s["total_ms"]), n(s["mean_ms"], "{:.2f}"), n(s["rows"]), f"`{q}`"))
    return out


def cmd_table(path):
    r = load(path)
    report.print_rows(f"scheduler benchmark ({r.get('mode')} run, {r.get('date')})", rows(r))
    st = statements_rows(r, 6)
    if st:
        print("\n  Postgres during the release phase (pg_stat_statements, by total time):")
        print(f"  {'calls':>9} {'total ms':>10} {'mean ms':>9} {'rows':>10}  query")
        for c, t, m, rw, q in st:
            print(f"  {c:>9} {t:>10} {m:>9} {rw:>10}  {q.strip('`')[:90]}")
    for line in explain_lines(r):
        print("  " + line)
    print()


EXPLAIN_WHEN = {
    "DUE_SQL": "on the seeded backlog, before the scheduler starts",
    "CANDIDATES_SQL": "for one deployment, on the seeded backlog",
    "DUE_SQL.next_pass": "after the phase: the released calls in flight, one new due call per deployment",
}


def explain_lines(r):
    rel = r["phases"].get("release") or {}
    out = []
    for k, v in (rel.get("explain") or {}).items():
        when = EXPLAIN_WHEN.get(k, "")
        if k == "DUE_SQL.next_pass" and rel.get("in_flight_after") is not None:
            when += f" ({rel['in_flight_after']:,} in flight)"
        if v.get("execution_ms") is not None:
            out.append(f"EXPLAIN ANALYZE {k}: {v['execution_ms']:,.1f} ms ({when})")
        elif v.get("timed_out_s"):
            out.append(f"EXPLAIN ANALYZE {k}: over {v['timed_out_s']} s, cut off ({when})")
        else:
            out.append(f"EXPLAIN ANALYZE {k}: failed ({when})")
    return out


def cmd_markdown(path, md_path):
    r = load(path)
    m = r["machine"]
    rel = r["phases"].get("release") or {}
    lat = r["phases"].get("latency") or {}
    p = r.get("params", {})
    ex_lines = "\n".join("- " + line for line in explain_lines(r))
    block = f"""## Scheduler

Measured with `make bench-scheduler` (bench/scheduler.sh) on {r.get('date')}, commit
`{r.get('git_commit')}`{' (with uncommitted changes)' if r.get('git_dirty') else ''}, {m.get('cpu_model', 'unknown CPU')},
{m.get('cores')} cores. Its own stack (`OB_LOCAL_PORT_BASE={r.get('port_base')}`, state in
`.local-bench/scheduler/`); raw results in `bench/results/{os.path.basename(path)}` (not committed).

- **release**: {rel.get('deployments', 0):,} deployments (capacity {rel.get('capacity')}) and
  {rel.get('pending_at_start', 0):,} calls queued and due, seeded with SQL across the
  {rel.get('request_partitions')} call-requests partitions; one fake dialer announced
  with {rel.get('dialer_channels', 0):,} channels on all {rel.get('dial_job_partitions')} dial-jobs
  partitions (its heartbeat kept fresh, its jobs left in Kafka); the scheduler
  alone, started fresh on that backlog. Releases/s from
  `outbound_dial_jobs_released_total` (scraped every second), from the first
  release to the end of the backlog or {p.get('release_limit_s')} s.
- **latency**: ingest, scheduler and 2 sim dialers (`OB_SIM_TIME_SCALE={p.get('sim_time_scale')}`),
  {lat.get('calls_sent', 0):,} single calls POSTed at {n(lat.get('rate_per_s'))}/s to a
  deployment of capacity {p.get('latency_capacity')}, after {p.get('latency_warmup')} warm-up calls to
  another deployment; per call `attempts.dialing_at - calls.accepted_at` of
  attempt 1, and its parts (`calls.recorded_at`, `attempts.released_at`).

{md_table(('measure', 'result', 'target', 'verdict'), rows(r))}

Postgres during the release phase (pg_stat_statements, top by total time):

{md_table(('calls', 'total ms', 'mean ms', 'rows', 'query'), statements_rows(r)) if statements_rows(r) else '(pg_stat_statements not available)'}

{ex_lines}

Settings: `BENCH_SCHED_DEPLOYMENTS`, `BENCH_SCHED_CALLS`, `BENCH_SCHED_CAPACITY`,
`BENCH_SCHED_CHANNELS`, `BENCH_SCHED_RELEASE_LIMIT`, `BENCH_SCHED_DRAIN_S`,
`BENCH_SCHED_EXPLAIN_TIMEOUT`, `BENCH_SCHED_LATENCY_CALLS`, `BENCH_SCHED_LATENCY_RATE`,
`BENCH_SCHED_LATENCY_WARMUP`, `BENCH_SCHED_LATENCY_CAPACITY`, `BENCH_SCHED_PHASES`
(a subset of `latency release`; such a run leaves this block alone),
`BENCH_QUIET_TIMEOUT`, `BENCH_KEEP_STACK=1`; `OB_SCHEDULER_*`, `OB_KAFKA_*` and
`OB_SIM_*` settings reach the services. `bench/scheduler.sh --quick` is a
smoke run with small sizes that leaves this file alone."""
    report.put_block(md_path, "scheduler-bench", "rewritten by bench/scheduler.sh; edit the script instead", block)


if __name__ == "__main__":
    cmds = {"pace": (cmd_pace, 6), "watch": (cmd_watch, 10), "sql": (cmd_sql, 2)}
    sys.exit(report.main(__doc__, cmds, sys.argv, (cmd_assemble, cmd_table, cmd_markdown)))
