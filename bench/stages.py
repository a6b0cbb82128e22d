#!/usr/bin/python3
"""Watchers of the issue-8 benchmarks (bench/scheduler.sh's record phase,
bench/e2e.sh): a count sampled until it reaches a target, with the CPU time
and memory of every process of the bench stack over the same time.

    stages.py watch METRICS_URLS METRIC TARGET LIMIT_S OUT RUN_DIR
        METRIC summed over the comma-separated METRICS_URLS, every 0.5 s.
    stages.py watch-sql DSN SQL TARGET LIMIT_S OUT RUN_DIR [FAKE_DIALER]
        the integer SQL answers, every 0.5 s; with FAKE_DIALER, that row of
        the dialers table is kept fresh (seen_at) every second.

Both stop when the count reaches TARGET, after LIMIT_S seconds or on
SIGTERM, and write to OUT: the samples, the busy and sustained rates
(bench/dialer_report.py), and per process of RUN_DIR/*.pid (ingest,
scheduler, dialer-N, postgres, kafka) the CPU seconds it used and its peak
resident memory (VmHWM), plus the machine's busy cores and the cores used
by processes outside the stack.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dialer_report  # noqa: E402  (rates)
import report  # noqa: E402  (CPU accounting)


def stack_pids(run_dir):
    """name -> pid of every running process with a pid file in RUN_DIR."""
    out = {}
    for path in glob.glob(os.path.join(run_dir, "*.pid")):
        try:
            with open(path) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        out[os.path.basename(path)[:-4]] = pid
    return out


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def watch(read, target, limit_s, out, run_dir, beat=None):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
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
        table = report.proc_table()
        pids = stack_pids(run_dir)
        for name, pid in pids.items():
            # A process's whole tree (Kafka's and Postgres's children).
            ticks = sum(table[p][1] - start_ticks.get(p, 0) for p in report.descendants(table, [pid]))
            cpu[name] = max(cpu.get(name, 0), ticks)
            h = vm_hwm_kb(pid)
            if h:
                hwm[name] = max(hwm.get(name, 0), h)
        if stop or (value is not None and value >= target) or now - t0 >= limit_s:
            break
        time.sleep(0.5)
    dt = time.time() - t0
    m1 = report.machine_ticks()
    busy = ((m1[0] - m1[1]) - (m0[0] - m0[1])) / report.HZ
    stack = sum(cpu.values()) / report.HZ
    res = {
        "target": target,
        "reached": samples[-1]["n"] if samples else None,
        "seconds": round(dt, 2),
        "samples": samples,
        "rate": dialer_report.busy_rate(samples, "n"),
        "cpu_s": {k: round(v / report.HZ, 2) for k, v in sorted(cpu.items())},
        "peak_rss_kb": hwm,
        "machine_busy_cores": round(busy / dt, 2) if dt > 0 else None,
        "outside_cores": round(max(0.0, busy - stack) / dt, 2) if dt > 0 else None,
    }
    with open(out, "w") as f:
        json.dump(res, f)


def scrape_sum(urls, metric):
    total, seen = 0, False
    for url in urls.split(","):
        vals = dialer_report.scrape(url)
        if vals and metric in vals:
            total += vals[metric]
            seen = True
    return total if seen else None


def psql(dsn, sql):
    r = subprocess.run(["psql", dsn, "-qAtc", sql], capture_output=True, text=True)
    try:
        return int(r.stdout.strip())
    except ValueError:
        return None


def main(argv):
    if len(argv) == 8 and argv[1] == "watch":
        urls, metric, target, limit_s, out, run_dir = argv[2:]
        watch(lambda: scrape_sum(urls, metric), int(target), float(limit_s), out, run_dir)
        return 0
    if len(argv) in (8, 9) and argv[1] == "watch-sql":
        dsn, sql, target, limit_s, out, run_dir = argv[2:8]
        beat = None
        if len(argv) == 9:
            fake = argv[8]
            beat = lambda: psql(dsn, f"UPDATE dialers SET seen_at = now() WHERE instance_id = '{fake}'")
        watch(lambda: psql(dsn, sql), int(target), float(limit_s), out, run_dir, beat)
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
