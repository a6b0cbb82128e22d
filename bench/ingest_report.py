#!/usr/bin/python3
"""The ingest benchmark's own report (bench/run.sh): its CPU watch, its
phases, and the results (bench/results/<timestamp>.json, the table,
BENCHMARKS.md); what the benchmarks share is in bench/report.py.

    ingest_report.py watch OUT BENCH_PID INGEST_PID KAFKA_PID PG_PID
        until SIGTERM, samples the CPU of every process twice a second and
        then writes the cores used by ingest, the bench's Kafka, its Postgres
        (and children), the clients (run.sh's descendants) and everything
        else on the machine, so a phase can be split into who used the cores.

And the results subcommands of bench/report.py: assemble, table and
markdown, which rewrites BENCHMARKS.md from the results, keeping its
hand-written notes (between the "notes" markers), make bench's summary and
the scheduler, dialer and media benchmarks' blocks (bench/summary.py's,
bench/scheduler.sh's, bench/dialer.sh's and bench/media.sh's, between their
markers) as they are.
"""
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
from report import load, md_table, text_table, verdict  # noqa: E402

NOTES_BEGIN = "<!-- notes:begin (kept when bench/run.sh rewrites this file) -->"
NOTES_END = "<!-- notes:end -->"

TARGETS = {
    "single_rps": 10000,
    "single_p99_ms": 20,
    "batch_calls_per_s": 100000,
    "csv_s": 15,
    "csv_peak_mb": 200,
}


def cmd_watch(out, bench, ingest, kafka, pg):
    """Samples every process's CPU every 0.5 s until SIGTERM, then writes the
    cores each role used. Sampling catches processes that live for part of
    the phase (another engineer's test run, say); only those shorter than a
    sample, and the last moments of one that exits, are left in
    short_lived_cores (the machine's total minus everything attributed)."""
    bench, ingest, kafka, pg, me = int(bench), int(ingest), int(kafka), int(pg), os.getpid()
    stop = report.stop_flag()
    t0, m0 = time.time(), report.machine_ticks()
    prev = {p: v[1] for p, v in report.proc_table().items()}  # alive at the start: only their growth counts
    per, outside = {}, {}
    while True:
        last = bool(stop)
        table = report.proc_table()
        role = report.roles(table, pg, kafka, bench, "client", {ingest: "ingest", me: "monitor"})
        report.tally(per, outside, prev, table, role)
        prev = {p: v[1] for p, v in table.items()}
        if last:
            break
        for _ in range(5):
            if stop:
                break
            time.sleep(0.1)
    dt, busy = time.time() - t0, report.busy_ticks(m0, report.machine_ticks())
    per["short_lived"] = max(0, busy - sum(per.values()))
    order = ("ingest", "kafka", "postgres", "client", "outside", "monitor", "short_lived")
    report.dump(report.cores_doc(dt, busy, per, outside, order, seconds_digits=2), out)


# ------------------------------------------------------------ the results
def read_offsets(path):
    """Sum of the partitions' end offsets from `kcat -Q` output."""
    total = 0
    try:
        with open(path) as f:
            for line in f:
                m = re.search(r"offset (-?\d+)", line)
                if m and int(m.group(1)) >= 0:
                    total += int(m.group(1))
    except OSError:
        return None
    return total


def phase_common(work, name):
    res = {}
    cpu = load(f"{work}/{name}.cpu")
    if cpu:
        res["cpu"] = cpu
    o0, o1 = read_offsets(f"{work}/{name}.offsets.before"), read_offsets(f"{work}/{name}.offsets.after")
    if o0 is not None and o1 is not None:
        res["kafka_messages_added"] = o1 - o0
    q = load(f"{work}/{name}.quiet")
    if q:
        res["quiet_before"] = q
    return res


def single_phase(work, name):
    w = load(f"{work}/{name}.wrk.json")
    if not w:
        return None
    res = phase_common(work, name)
    dur = w["duration_us"] / 1e6
    ok = sum(n for s, n in w["statuses"].items() if 200 <= int(s) < 300)
    non2xx = {s: n for s, n in w["statuses"].items() if not 200 <= int(s) < 300}
    res.update(
        {
            "requests": w["requests"],
            "duration_s": round(dur, 2),
            "requests_per_s": round(w["requests"] / dur, 1),
            "accepted_per_s": round(ok / dur, 1),
            "accepted": ok,
            "latency_ms": {k: round(v / 1000, 2) for k, v in w["latency_us"].items()},
            "statuses": w["statuses"],
            "non_2xx": non2xx,
            "non_2xx_total": sum(non2xx.values()),
            "non_2xx_only_429_503": all(s in ("429", "503") for s in non2xx),
            "socket_errors": w["socket_errors"],
        }
    )
    # wrk stops with requests in flight: those may still be queued after it
    # has given up on them, so Kafka may hold up to one per connection more.
    if "kafka_messages_added" in res:
        res["durable_check"] = res["kafka_messages_added"] >= ok
    return res


def batch_phase(work, name):
    lines = []
    for path in sorted(glob.glob(f"{work}/{name}.c*.txt")):
        with open(path) as f:
            lines += [ln.split() for ln in f if ln.strip()]
    if not lines:
        return None
    res = phase_common(work, name)
    t = load(f"{work}/{name}.wall")
    wall = t["end"] - t["start"]
    accepted = rejected = 0
    codes = {}
    times = []
    for client, req, code, total in lines:
        codes[code] = codes.get(code, 0) + 1
        times.append(float(total))
        body = load(f"{work}/{name}.c{client}.r{req}.json", {})
        accepted += int(body.get("accepted") or 0)
        rejected += int(body.get("rejected") or 0)
    times.sort()
    res.update(
        {
            "clients": t["clients"],
            "requests": len(lines),
            "calls_per_request": t["calls_per_request"],
            "wall_s": round(wall, 2),
            "accepted": accepted,
            "rejected": rejected,
            "statuses": codes,
            "calls_per_s": round(accepted / wall, 1) if wall > 0 else None,
            "request_s": {
                "min": round(times[0], 3),
                "median": round(times[len(times) // 2], 3),
                "max": round(times[-1], 3),
            },
        }
    )
    if "kafka_messages_added" in res:
        res["durable_check"] = res["kafka_messages_added"] == accepted
    return res


def csv_phase(work):
    body = load(f"{work}/csv.response.json")
    try:
        with open(f"{work}/csv.curl.txt") as f:
            code, total, size = f.read().split()[:3]
    except (OSError, ValueError):
        return None
    res = phase_common(work, "csv")
    vm = load(f"{work}/csv.vm", {})
    samples = []
    try:
        with open(f"{work}/csv.rss") as f:
            samples = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        pass
    body = body or {}
    res.update(
        {
            "rows": vm.get("rows"),
            "file_mb": round(int(size) / 1e6, 1),
            "status": int(code),
            "seconds": round(float(total), 2),
            "rows_per_s": round(int(body.get("queued") or 0) / float(total), 1) if float(total) else None,
            "answer": {k: body.get(k) for k in ("status", "rows", "queued", "rejected")},
            "vm_kb": vm,
            "rss_samples_max_kb": max(samples) if samples else None,
        }
    )
    if vm.get("hwm_after_kb"):
        res["peak_rss_mb"] = round(vm["hwm_after_kb"] / 1024, 1)
        res["peak_rss_growth_mb"] = round((vm["hwm_after_kb"] - vm.get("rss_before_kb", 0)) / 1024, 1)
    if "kafka_messages_added" in res:
        res["durable_check"] = res["kafka_messages_added"] == (body.get("queued") or 0)
    return res


def cmd_assemble(work, params_path, out):
    res = report.results_head(load(params_path, {}), TARGETS, with_versions=True)
    phases = {name: single_phase(work, name) for name in ("single", "single_load", "single_limit")}
    for name in ("batch_sequential", "batch_concurrent"):
        phases[name] = batch_phase(work, name)
    phases["csv"] = csv_phase(work)
    phases["batch_limit"] = phase_common(work, "batch_limit") or None
    res["phases"] = phases
    res["limits"] = report.limits(work)
    hwm_end = load(f"{work}/end.vm")
    if hwm_end:
        res["ingest_vm_at_end_kb"] = hwm_end
    report.write_results(out, res)


# -------------------------------------------------------------- the table
def rows(r):
    """(measure, result, target, verdict) rows of the table. A quick run's
    sizes are too small to hold against the targets: no verdicts."""
    p = r["phases"]
    out = []
    if r.get("mode") == "quick":
        return [row[:3] + ("n/a (quick run)",) for row in rows(dict(r, mode="full"))]
    sp = r.get("params", {}).get("single", {})
    for name, conns in (("single", sp.get("connections")), ("single_load", sp.get("load_connections"))):
        s = p.get(name)
        if not s:
            continue
        lat = s["latency_ms"]
        rps_ok = s["requests_per_s"] >= TARGETS["single_rps"]
        p99_ok = lat["p99"] < TARGETS["single_p99_ms"]
        what = f"single call, {conns} connections"
        if name == "single":
            # Saturation: the throughput target; its p99 is reported, and
            # held against the target only by the lighter run below.
            out.append(
                (
                    f"{what} (saturation): requests/s",
                    f"{s['requests_per_s']:,.0f} ({s['accepted']:,} accepted in {s['duration_s']} s)",
                    f">= {TARGETS['single_rps']:,}",
                    verdict(rps_ok),
                )
            )
            out.append(
                (
                    f"{what} (saturation): latency p50 / p99",
                    f"{lat['p50']:.1f} ms / {lat['p99']:.1f} ms",
                    "(reported)",
                    "-",
                )
            )
        else:
            out.append(
                (
                    f"{what}: requests/s, latency p50 / p99",
                    f"{s['requests_per_s']:,.0f}/s; {lat['p50']:.1f} ms / {lat['p99']:.1f} ms",
                    f">= {TARGETS['single_rps']:,}/s with p99 < {TARGETS['single_p99_ms']} ms",
                    verdict(rps_ok and p99_ok),
                )
            )
        non = ", ".join(f"{k}: {v}" for k, v in sorted(s["non_2xx"].items())) or "none"
        sock = sum(s["socket_errors"].values())
        out.append(
            (
                f"{what}: non-2xx answers",
                f"{s['non_2xx_total']} ({non}); socket errors {sock}",
                "0, or 429/503 only",
                verdict(s["non_2xx_only_429_503"] and sock == 0),
            )
        )
    best = None
    for name, label in (("batch_sequential", "sequential"), ("batch_concurrent", "concurrent")):
        b = p.get(name)
        if not b:
            continue
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(b["statuses"].items()))
        out.append(
            (
                f"batch, {b['clients']} client{'s' if b['clients'] > 1 else ''} ({label}): calls/s",
                f"{b['calls_per_s']:,.0f} ({b['accepted']:,} calls in {b['requests']} x "
                f"{b['calls_per_request']:,}, {b['wall_s']} s; answers {codes})",
                f">= {TARGETS['batch_calls_per_s']:,}",
                verdict(b["calls_per_s"] >= TARGETS["batch_calls_per_s"]),
            )
        )
        if best is None or b["calls_per_s"] > best["calls_per_s"]:
            best = b
    if best:
        out.append(
            (
                "batch: best calls/s",
                f"{best['calls_per_s']:,.0f} ({best['clients']} client{'s' if best['clients'] > 1 else ''})",
                f">= {TARGETS['batch_calls_per_s']:,}",
                verdict(best["calls_per_s"] >= TARGETS["batch_calls_per_s"]),
            )
        )
    c = p.get("csv")
    if c:
        a = c["answer"]
        out.append(
            (
                f"CSV upload of {c['rows']:,} rows ({c['file_mb']} MB): time",
                f"{c['seconds']} s ({a.get('queued') or 0:,} queued, {a.get('rejected') or 0} rejected, "
                f"HTTP {c['status']})",
                f"< {TARGETS['csv_s']} s",
                verdict(200 <= c["status"] < 300 and c["seconds"] < TARGETS["csv_s"]
                        and (a.get("queued") or 0) == c["rows"]),
            )
        )
        if "peak_rss_mb" in c:
            vm = c["vm_kb"]
            out.append(
                (
                    "CSV upload: ingest peak RSS (VmHWM)",
                    f"{c['peak_rss_mb']} MB (RSS before {vm.get('rss_before_kb', 0) / 1024:.1f} MB, "
                    f"+{c['peak_rss_growth_mb']} MB; lifetime peak before the upload "
                    f"{vm.get('hwm_before_kb', 0) / 1024:.1f} MB)",
                    f"< {TARGETS['csv_peak_mb']} MB",
                    verdict(c["peak_rss_mb"] < TARGETS["csv_peak_mb"]),
                )
            )
    return out


def cpu_rows(r):
    out = []
    for name, label in (
        ("single", "single call, saturation"),
        ("single_load", "single call, lighter load"),
        ("batch_sequential", "batch, sequential"),
        ("batch_concurrent", "batch, concurrent"),
        ("csv", "CSV upload"),
    ):
        ph = r["phases"].get(name)
        if not ph or not ph.get("cpu"):
            continue
        c = ph["cpu"]
        other = ", ".join(f"{k} {v}" for k, v in c.get("outside_top", {}).items())
        out.append(
            (
                label,
                f"{c['machine_busy_cores']:.2f}",
                f"{c['ingest_cores']:.2f}",
                f"{c['kafka_cores']:.2f}",
                f"{c['postgres_cores']:.2f}",
                f"{c['client_cores'] + c.get('short_lived_cores', 0) + c.get('monitor_cores', 0):.2f}",
                f"{c['outside_cores']:.2f}" + (f" ({other})" if other else ""),
                "yes" if ph.get("durable_check") else ("no" if "durable_check" in ph else "?"),
            )
        )
    return out


MAIN_HEADER = ("measure", "result", "target", "verdict")
CPU_HEADER = ("phase", "machine busy", "ingest", "kafka", "postgres", "clients (wrk, curl)",
              "outside the bench", "Kafka holds every accepted call")


def cmd_table(path):
    r = load(path)
    m = r["machine"]
    print()
    print(f"ingest benchmark ({r['mode']}), {r['date']}, {m['cores']} cores "
          f"{m.get('cpu_model', '')}, {m['memory_gib']} GiB")
    print()
    print(text_table(MAIN_HEADER, rows(r)))
    print()
    print("CPU during each phase, in cores (of " + str(m["cores"]) + "):")
    print(text_table(CPU_HEADER, cpu_rows(r)))
    print()
    print(f"raw results: {os.path.relpath(path)}")


def cmd_markdown(path, md_path):
    r = load(path)
    m, v, p = r["machine"], r["versions"], r["params"]
    notes = old = ""
    try:
        with open(md_path) as f:
            old = f.read()
    except OSError:
        pass
    i, j = old.find(NOTES_BEGIN), old.find(NOTES_END)
    if i >= 0 and j > i:
        notes = old[i + len(NOTES_BEGIN) : j].strip("\n")
    # make bench's summary (bench/summary.py) stays at the top; bench/scheduler.sh's,
    # bench/dialer.sh's and bench/media.sh's blocks are their own: kept as they are, at the end.
    summary_block = report.find_block(old, "summary")
    summary_block += "\n\n" if summary_block else ""
    others = "".join(f"\n{b}\n" for b in (report.find_block(old, name)
                                            for name in ("scheduler-bench", "dialer-bench", "media-bench")) if b)
    if not notes:
        notes = "(No notes yet.)"
    env = ", ".join(f"`{k}={val}`" for k, val in sorted(r.get("ingest_env", {}).items())) or "none (defaults)"
    s = p.get("single", {})
    b = p.get("batch", {})
    c = p.get("csv", {})
    doc = f"""# Benchmarks

Every stage of outbound beside the limit of what it is built on, measured with
`make bench` (bench/all.sh) in one run, then each benchmark's own block: ingest
(bench/run.sh, `make bench-ingest`), the scheduler and the dialers. The blocks
are rewritten by the scripts from `bench/results/*.json`; only the notes
section is written by hand and kept.

{summary_block}## Ingest API (bench/run.sh)

### Machine and run

| | |
|---|---|
| date | {r['date']} |
| CPU | {m.get('cpu_model', 'unknown')}, {m['cores']} cores |
| memory | {m['memory_gib']} GiB |
| OS | Debian {m.get('debian', '?')}, Linux {m['kernel']} |
| versions | wrk {v.get('wrk')}, Kafka {v.get('kafka')}, librdkafka {v.get('librdkafka1')}, libmicrohttpd {v.get('libmicrohttpd12')}, PostgreSQL {v.get('postgresql-15')} |
| commit | `{r.get('git_commit', '?')}`{' (with uncommitted changes)' if r.get('git_dirty') else ''} |
| stack | Kafka, PostgreSQL and ingest only (no scheduler, no dialers), `OB_LOCAL_PORT_BASE={r.get('port_base')}`, state in `.local-bench/` |
| ingest settings | {env} |
| raw results | `bench/results/{os.path.basename(path)}` (not committed) |

All clients run on the same machine as the stack and share its cores.

### Results

{md_table(MAIN_HEADER, rows(r))}

CPU used during each phase, in cores (of {m['cores']}). "outside the bench" is
every other process on the machine (e.g. another stack or a test run);
"Kafka holds every accepted call" compares the growth of the end offsets of
`outbound.call-requests` with the calls the answers accepted.

{md_table(CPU_HEADER, cpu_rows(r))}

### Commands

```sh
make bench-ingest   # deps, build, then bench/run.sh: stack up, the three benchmarks and their limits, stack down
bench/run.sh --quick  # the same with small sizes (a smoke run; BENCHMARKS.md untouched)
```

What bench/run.sh runs, once the bench stack (`OB_LOCAL_PORT_BASE={r.get('port_base')}
OB_LOCAL_STATE=.local-bench`, `OB_LOCAL_SERVICES=ingest`) is up and seeded with
the demo tenant (`$KEY`: its API key, `$DEP`: `00000000-0000-7000-8000-00000000d003`,
`$API`: `http://127.0.0.1:{int(r.get('port_base', 23000)) + 80}`):

```sh
# single call: keep-alive, {s.get('duration_s')} s (after a {s.get('warmup_s')} s warm-up), with
# {s.get('connections')} connections (saturation) and then {s.get('load_connections')} (the p99 target's load)
BENCH_KEY=$KEY wrk -t{s.get('threads')} -c{s.get('connections')} -d{s.get('duration_s')}s --latency -s bench/wrk_queue.lua $API/api/v1/deployments/$DEP/calls
BENCH_KEY=$KEY wrk -t{s.get('threads')} -c{s.get('load_connections')} -d{s.get('duration_s')}s --latency -s bench/wrk_queue.lua $API/api/v1/deployments/$DEP/calls

# batch: {b.get('requests')} requests of {b.get('size'):,} calls per client, 1 client then {b.get('clients')} clients at once
bench/gen.py batch {b.get('size')} batch.json
curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -H 'Expect:' \\
  --data-binary @batch.json "$API/api/v1/deployments/$DEP/calls:batch"

# CSV upload of {c.get('rows'):,} rows; ingest's VmHWM is reset (echo 5 >/proc/PID/clear_refs)
# just before, and read from /proc/PID/status after
bench/gen.py csv {c.get('rows')} calls.csv
curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: text/csv' -H 'Expect:' \\
  --data-binary @calls.csv "$API/api/v1/deployments/$DEP/uploads"
```

Settings (environment or make variables): `BENCH_DURATION`, `BENCH_WARMUP`,
`BENCH_CONNECTIONS`, `BENCH_LOAD_CONNECTIONS`, `BENCH_WRK_THREADS`, `BENCH_BATCH_SIZE`,
`BENCH_BATCH_REQUESTS`, `BENCH_BATCH_CLIENTS`, `BENCH_CSV_ROWS`,
`BENCH_QUIET_TIMEOUT`, `BENCH_PHASES` (a subset of `single batch csv`; such a
run leaves this file alone), `BENCH_KEEP_STACK=1`. Any `OB_INGEST_*` or
`OB_KAFKA_*` setting reaches ingest, e.g. `make bench OB_INGEST_THREADS=64
OB_INGEST_PG_POOL=64` or `OB_KAFKA_LINGER_MS=0` (librdkafka's `linger.ms`).

### Targets

| measure | target |
|---|---|
| single call | >= {TARGETS['single_rps']:,} requests/s with p99 < {TARGETS['single_p99_ms']} ms |
| batch | >= {TARGETS['batch_calls_per_s']:,} calls/s accepted durably |
| CSV upload | 1,000,000 rows in < {TARGETS['csv_s']} s with < {TARGETS['csv_peak_mb']} MB peak memory |

## Notes

{NOTES_BEGIN}
{notes}
{NOTES_END}
{others}"""
    report.write_text(md_path, doc)


if __name__ == "__main__":
    sys.exit(report.main(__doc__, {"watch": (cmd_watch, 5)}, sys.argv, (cmd_assemble, cmd_table, cmd_markdown)))
