#!/usr/bin/python3
"""Watchers of the issue-8 benchmarks (bench/scheduler.sh's record phase,
bench/e2e.sh): a count sampled until it reaches a target, with the CPU time
and memory of every process of the bench stack over the same time.

    stages.py watch METRICS_URLS METRIC TARGET LIMIT_S OUT RUN_DIR
        METRIC summed over the comma-separated METRICS_URLS, every 0.5 s.
    stages.py watch-sql DSN SQL TARGET LIMIT_S OUT RUN_DIR [FAKE_DIALER]
        the integer SQL answers, every 0.5 s; with FAKE_DIALER, that row of
        the dialers table is kept fresh (seen_at) every second.

    stages.py watch-both METRICS_URLS METRIC DSN SQL TARGET LIMIT_S OUT RUN_DIR [FAKE_DIALER]
        progress from METRIC (summed over its labels and the URLs) every
        0.5 s, and SQL only once that reached TARGET, to end on the exact
        count: a count(*) every 0.5 s over a million rows took a quarter of
        a core from the stack it measured.

All touch OUT.started after the first sample (the bench starts the work
then), stop when the count reaches TARGET, after LIMIT_S seconds or on
SIGTERM, and write to OUT: the samples, the busy and sustained rates
(bench/report.py), and per process of RUN_DIR/*.pid (ingest,
scheduler, dialer-N, postgres, kafka) the CPU seconds it used and its peak
resident memory (VmHWM), plus the machine's busy cores and the cores used
by processes outside the stack.

    stages.py post APIS KEY DEPLOYMENTS N OUT
        POSTs N calls to the voice number (max_attempts 1) as calls:batch
        requests of at most 10,000, spread evenly over the deployments
        00000000-0000-7000-8004-<i> (i < DEPLOYMENTS) and over the
        comma-separated ingest URLs APIS, two connections per ingest; the
        bodies are built before the clock starts.
    stages.py assemble WORK PARAMS_JSON OUT_JSON
    stages.py table RESULTS_JSON
        bench/e2e.sh's results document and its table.
"""
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
from report import n  # noqa: E402


def watch(read, target, limit_s, out, run_dir, beat=None, confirm=None):
    stop = report.stop_flag()
    t0, m0 = time.time(), report.machine_ticks()
    first = report.proc_table()
    start_ticks = {p: v[1] for p, v in first.items()}
    samples, cpu, hwm, last_beat = [], {}, {}, 0.0
    while True:
        now = time.time()
        if beat and now - last_beat >= 1:
            beat()
            last_beat = now
        value = read()
        samples.append({"t": round(now - t0, 3), "n": value})
        if len(samples) == 1:  # the bench starts the work after the first sample
            open(out + ".started", "w").close()
        table = report.proc_table()
        pids = report.pid_files(run_dir)
        for name, pid in pids.items():
            # A process's whole tree (Kafka's and Postgres's children).
            ticks = sum(table[p][1] - start_ticks.get(p, 0) for p in report.descendants(table, [pid]))
            cpu[name] = max(cpu.get(name, 0), ticks)
            h = report.vm_kb(pid).get("VmHWM")
            if h:
                hwm[name] = max(hwm.get(name, 0), h)
        if value is not None and value >= target and confirm:
            # The cheap count got there: the watch ends when the exact one does.
            confirmed = confirm()
            if confirmed is not None and confirmed >= target:
                samples[-1]["n"] = confirmed
                confirm = None  # samples[-1] holds the exact count
                break
        elif stop or (value is not None and value >= target):
            break
        if stop or now - t0 >= limit_s:
            break
        time.sleep(0.5)
    dt = time.time() - t0
    busy = report.busy_ticks(m0, report.machine_ticks()) / report.HZ
    stack = sum(cpu.values()) / report.HZ
    res = {
        "target": target,
        "reached": (confirm() if confirm else samples[-1]["n"]) if samples else None,
        "seconds": round(dt, 2),
        "samples": samples,
        "rate": report.busy_rate(samples, "n"),
        "cpu_s": {k: round(v / report.HZ, 2) for k, v in sorted(cpu.items())},
        "peak_rss_kb": hwm,
        "machine_busy_cores": round(busy / dt, 2) if dt > 0 else None,
        "outside_cores": round(max(0.0, busy - stack) / dt, 2) if dt > 0 else None,
    }
    report.dump(res, out)


def scrape_sum(urls, metric):
    total, seen = 0, False
    for url in urls.split(","):
        vals = report.scrape(url)
        for name, value in (vals or {}).items():
            if name == metric or name.startswith(metric + "{"):
                total += value
                seen = True
    return total if seen else None


def psql(dsn, sql):
    v = report.psql_ints(dsn, sql)
    return v[0] if v else None


def cmd_post(apis, key, dcount, count, out):
    dcount, count = int(dcount), int(count)
    reqs = []
    for d in range(dcount):
        dep = "00000000-0000-7000-8004-%012x" % d
        mine = count // dcount + (1 if d < count % dcount else 0)
        for a in range(0, mine, 10000):
            calls = [
                {"phone_number": "+12125550100", "message_reference": f"e2e-{d}-{i}", "max_attempts": 1}
                for i in range(a, min(mine, a + 10000))
            ]
            reqs.append((f"/api/v1/deployments/{dep}/calls:batch", json.dumps(calls)))
    urls = apis.split(",")
    t0 = time.time()
    posted = report.post_all(urls, reqs, key, 2 * len(urls), 300)
    res = {"accepted": posted["accepted"], "statuses": posted["statuses"], "requests": len(reqs),
           "start": t0, "seconds": round(time.time() - t0, 3)}
    report.dump(res, out)
    print(f"  accepted {res['accepted']:,} of {count:,} calls in {res['seconds']} s (HTTP {res['statuses']})")
    return 0 if res["accepted"] == count else 1


def per_call(cpu_s, prefix, calls):
    """CPU microseconds per call of the processes named prefix*."""
    total = sum(v for k, v in cpu_s.items() if k.startswith(prefix))
    return round(total / calls * 1e6, 1) if calls else None


def rss_of(peaks, prefix):
    return sum(v for k, v in peaks.items() if k.startswith(prefix))


def release_run(w, calls):
    if not w:
        return None
    rate = w.get("rate") or {}
    cpu, rss = w.get("cpu_s", {}), rss_of(w.get("peak_rss_kb", {}), "scheduler")
    return {
        "released": w.get("reached"),
        "per_s": rate.get("sustained_per_s") or rate.get("per_s"),
        "busy_per_s": rate.get("per_s"),
        "seconds": w.get("seconds"),
        "cpu_us_per_call": {r: per_call(cpu, r, calls) for r in ("scheduler", "postgres", "kafka")},
        "scheduler_peak_rss_mb": round(rss / 1024, 1),
        "scheduler_bytes_per_pending": round(rss * 1024 / calls, 1) if calls else None,
        "machine_busy_cores": w.get("machine_busy_cores"),
        "outside_cores": w.get("outside_cores"),
    }


def storage(rels, completed):
    """Postgres bytes per completed call: every table with its indexes, and
    the largest four by name (table + indexes)."""
    if not rels or not completed:
        return None
    total = sum(r["table"] + r["indexes"] for r in rels)
    return {
        "bytes_per_call": round(total / completed, 1),
        "largest": [{"name": r["name"], "table_per_call": round(r["table"] / completed, 1),
                     "indexes_per_call": round(r["indexes"] / completed, 1)} for r in rels[:4]],
    }


def statements(top, completed):
    """The statements that took Postgres's time, per completed call: how
    often each ran (per 1,000 calls) and its us; the query's first 100
    characters."""
    if not top or not completed:
        return None
    return [{"per_1000_calls": round(t["calls"] * 1000 / completed, 1),
             "us_per_call": round(t["total_ms"] * 1000 / completed, 1),
             "query": " ".join(t["query"].split())[:100]} for t in top]


def e2e_run(w, post, db, calls, rels=None, top=None):
    if not w or not db:
        return None
    span = (db.get("last_completed") or 0) - (db.get("first_accepted") or 0)
    cpu, rss = w.get("cpu_s", {}), rss_of(w.get("peak_rss_kb", {}), "scheduler")
    return {
        "accepted": (post or {}).get("accepted"),
        "post_seconds": (post or {}).get("seconds"),
        "completed": db.get("completed"),
        "seconds": round(span, 2),
        "per_s": round(db["completed"] / span, 1) if span > 0 else None,
        "latency_ms": {"p50": round(db.get("p50_ms") or 0, 1), "p99": round(db.get("p99_ms") or 0, 1)},
        "parts_p50_ms": {k: round(v, 1) for k, v in (db.get("parts_p50_ms") or {}).items() if v is not None},
        "cpu_us_per_call": {
            r: per_call(cpu, r, db.get("completed") or 0) for r in ("ingest", "scheduler", "dialer", "postgres", "kafka")
        },
        "scheduler_peak_rss_mb": round(rss / 1024, 1),
        "scheduler_bytes_per_call": round(rss * 1024 / calls, 1) if calls else None,
        "postgres_storage": storage(rels, db.get("completed") or 0),
        "postgres_statements": statements(top, db.get("completed") or 0),
        "machine_busy_cores": w.get("machine_busy_cores"),
        "outside_cores": w.get("outside_cores"),
    }


def cmd_assemble(work, params_path, out):
    res = report.load(params_path, {})
    res["machine"] = report.machine_info()
    runs = []
    for path in sorted(glob.glob(f"{work}/run-*.json")):
        r = report.load(path)
        name, calls = r["name"], r["calls"]
        r["release"] = release_run(report.load(f"{work}/release-{name}.json"), calls)
        r["e2e"] = e2e_run(report.load(f"{work}/e2e-{name}.json"), report.load(f"{work}/e2e-{name}.post.json"),
                           report.load(f"{work}/e2e-{name}.calls.json"), calls,
                           report.load(f"{work}/e2e-{name}.storage.json", None),
                           report.load(f"{work}/e2e-{name}.statements.json", None))
        runs.append(r)
    res["runs"] = sorted(runs, key=lambda r: (r["instances"], r["calls"]))
    report.write_results(out, res)


GROWTH_HEADER = ("instances", "pending calls", "deployments", "releases/s", "scheduler CPU us/call",
                 "scheduler bytes/pending call", "e2e calls/s", "e2e scheduler peak RSS MB", "e2e p50 / p99 ms",
                 "e2e CPU us/call (ingest, scheduler, dialer, postgres, kafka)",
                 "e2e Postgres bytes/call (largest: table + indexes)", "outside cores")


def growth_rows(r):
    out = []
    for run in r.get("runs", []):
        rel, e2e = run.get("release") or {}, run.get("e2e") or {}
        c = e2e.get("cpu_us_per_call") or {}
        lat = e2e.get("latency_ms") or {}
        outside = [x for x in (rel.get("outside_cores"), e2e.get("outside_cores")) if x is not None]
        out.append((
            str(run["instances"]), n(run["calls"]), n(run["deployments"]), n(rel.get("per_s")),
            n((rel.get("cpu_us_per_call") or {}).get("scheduler"), "{:,.1f}"),
            n(rel.get("scheduler_bytes_per_pending"), "{:,.1f}"),
            n(e2e.get("per_s")) + (f" ({e2e['completed']:,} completed in the time limit)"
                                     if e2e.get("completed") is not None and e2e["completed"] < run["calls"] else ""),
            n(e2e.get("scheduler_peak_rss_mb"), "{:,.1f}"),
            f"{n(lat.get('p50'), '{:,.1f}')} / {n(lat.get('p99'), '{:,.1f}')}" if lat else "-",
            ", ".join(n(c.get(k), "{:,.1f}") for k in ("ingest", "scheduler", "dialer", "postgres", "kafka")) if c else "-",
            storage_text(e2e.get("postgres_storage")),
            " / ".join(f"{x:.2f}" for x in outside) or "-",
        ))
    return out


def storage_text(st):
    """"1,234 (calls 300 + 400, ...)": bytes per call and the largest tables."""
    if not st:
        return "-"
    parts = ", ".join(f"{r['name']} {r['table_per_call']:,.0f} + {r['indexes_per_call']:,.0f}"
                      for r in st.get("largest", [])[:3])
    return f"{st['bytes_per_call']:,.0f} ({parts})"


def cmd_table(path):
    r = report.load(path)
    print(report.text_table(GROWTH_HEADER, growth_rows(r)))
    last = next((x for x in reversed(r.get("runs", [])) if (x.get("e2e") or {}).get("postgres_statements")), None)
    if last:
        print(f"Postgres's time per completed call by statement ({last['name']}):")
        print(report.text_table(("runs/1,000 calls", "us/call", "statement"),
                                [(f"{t['per_1000_calls']:,.1f}", f"{t['us_per_call']:,.1f}", t["query"])
                                 for t in last["e2e"]["postgres_statements"]]))
    print(f"raw results: {os.path.relpath(path)}")


def heartbeat(dsn, fake):
    """With a FAKE_DIALER argument, what keeps its row of dialers fresh."""
    if not fake:
        return None
    return lambda: psql(dsn, f"UPDATE dialers SET seen_at = now() WHERE instance_id = '{fake[0]}'")


def cmd_watch(urls, metric, target, limit_s, out, run_dir):
    watch(lambda: scrape_sum(urls, metric), int(target), float(limit_s), out, run_dir)


def cmd_watch_sql(dsn, sql, target, limit_s, out, run_dir, *fake):
    watch(lambda: psql(dsn, sql), int(target), float(limit_s), out, run_dir, heartbeat(dsn, fake))


def cmd_watch_both(urls, metric, dsn, sql, target, limit_s, out, run_dir, *fake):
    watch(lambda: scrape_sum(urls, metric) or 0, int(target), float(limit_s), out, run_dir,
          heartbeat(dsn, fake), confirm=lambda: psql(dsn, sql))


if __name__ == "__main__":
    sys.exit(report.main(__doc__, {
        "watch": (cmd_watch, 6),
        "watch-sql": (cmd_watch_sql, (6, 7)),
        "watch-both": (cmd_watch_both, (8, 9)),
        "post": (cmd_post, 5),
        "assemble": (cmd_assemble, 3),
        "table": (cmd_table, 1),
    }, sys.argv))
