#!/usr/bin/python3
"""The one table of `make bench` (issue 8): every stage's figure beside the
limit of what it is built on, measured in the same run, and their ratio;
then how cost grows (bench/e2e.sh) and the targets.

    summary.py INGEST_JSON SCHEDULER_JSON DIALER_JSON E2E_JSON MEDIA_JSON OUT_JSON [BENCHMARKS_MD]
        reads the five results documents of one run (a missing one is "-"),
        writes the combined document OUT_JSON and prints the table; with
        BENCHMARKS_MD, rewrites its block between the summary markers. Ends
        with "bench-quick: N passed, M failed": a row passes when both its
        figure and its limit were measured (no time is asserted).
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
import media_report as media  # noqa: E402
import stages  # noqa: E402
from report import n  # noqa: E402

HEADER = ("stage", "project figure", "limit in the same run", "ratio", "cores outside the bench")

# Published limits of the alternatives, quoted beside the measured table.
ALTERNATIVES = """\
| alternative | published limit | source |
|---|---|---|
| Twilio Programmable Voice | 1 outbound call per second per account by default (API calls above it are queued; raised per account in the Console) | [Twilio glossary: CPS](https://www.twilio.com/docs/glossary/cps), [How fast can I place or receive phone calls with Twilio?](https://support.twilio.com/hc/en-us/articles/223180028-How-fast-can-I-place-or-receive-phone-calls-with-Twilio) |
| Twilio Elastic SIP Trunking | 1 call per second per trunk per region by default; above it a call fails with SIP 503 | [Twilio: High Volume Voice](https://www.twilio.com/en-us/blog/high-volume-voice-considerations) |
| Plum Voice Fuse queue API | "If you plan to queue more than one call at a time, use the Queue Multiple Calls API": looping the single-call API "can cause DDoS, which will result in all calls failing" | [Plum: Queue Call](https://docs.plumvoice.com/fuse/apis/outbound-calls/outbound-call), [Plum: Queue Multiple Calls](https://docs.plumvoice.com/fuse/apis/outbound-calls/multiple-outbound-calls) |
"""


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def outside(*vals):
    vals = [v for v in vals if v is not None]
    return " / ".join(f"{v:.2f}" for v in vals) if vals else "-"


def main_e2e_run(e2e, want=100000):
    runs = [r for r in (e2e or {}).get("runs", []) if r.get("instances") == 1 and r.get("e2e")]
    return min(runs, key=lambda r: abs(r["calls"] - want)) if runs else None


def build(ing, sch, dia, e2e, med=None):
    """The stage rows: dicts with the texts of the table and the numbers."""
    rows = []

    def add(stage, fig, fig_v, lim, lim_v, out, kind="throughput"):
        rows.append({"stage": stage, "figure": fig, "figure_value": fig_v, "limit": lim, "limit_value": lim_v,
                     "ratio": ratio(fig_v, lim_v) if kind == "throughput" else ratio(lim_v, fig_v),
                     "outside": out})

    ph, lim = get(ing, "phases") or {}, get(ing, "limits") or {}
    s, sl, s16 = ph.get("single") or {}, ph.get("single_limit") or {}, ph.get("single_load") or {}
    add("single-call API (wrk, keep-alive, 64 connections)",
        f"{n(s.get('requests_per_s'))} req/s, p50 {n(get(s, 'latency_ms', 'p50'), '{:.1f}')} / "
        f"p99 {n(get(s, 'latency_ms', 'p99'), '{:.1f}')} ms (16 connections: {n(s16.get('requests_per_s'))} req/s, "
        f"p99 {n(get(s16, 'latency_ms', 'p99'), '{:.1f}')} ms)",
        s.get("requests_per_s"),
        f"fixed 202, ingest's libmicrohttpd configuration: {n(sl.get('requests_per_s'))} req/s, "
        f"p50 {n(get(sl, 'latency_ms', 'p50'), '{:.1f}')} / p99 {n(get(sl, 'latency_ms', 'p99'), '{:.1f}')} ms",
        sl.get("requests_per_s"), outside(get(s, "cpu", "outside_cores"), get(sl, "cpu", "outside_cores")))
    batches = [b for b in (ph.get("batch_sequential"), ph.get("batch_concurrent")) if b and b.get("calls_per_s")]
    best = max(batches, key=lambda b: b["calls_per_s"]) if batches else {}
    p = lim.get("produce") or {}
    add("batch API (calls accepted durably)",
        f"{n(best.get('calls_per_s'))} calls/s ({best.get('clients', '-')} client(s), {n(best.get('accepted'))} calls)",
        best.get("calls_per_s"),
        f"raw librdkafka produce, ingest's batch producer settings: {n(p.get('per_s'))} msg/s ({n(p.get('messages'))} of the same messages)",
        p.get("per_s"), outside(get(best, "cpu", "outside_cores"), get(ph, "batch_limit", "cpu", "outside_cores")))
    c, cl = ph.get("csv") or {}, lim.get("csv") or {}
    add(f"CSV upload ({n(c.get('rows'))} rows)",
        f"{n(c.get('seconds'), '{:.2f}')} s, peak RSS {n(c.get('peak_rss_mb'), '{:.1f}')} MB ({n(c.get('rows_per_s'))} rows/s)",
        c.get("rows_per_s"),
        f"libcsv alone reading and splitting the file: {n(cl.get('seconds'), '{:.4f}')} s, peak RSS "
        f"{n((cl.get('peak_rss_kb') or 0) / 1024 if cl else None, '{:.1f}')} MB ({n(cl.get('rows_per_s'))} rows/s)",
        cl.get("rows_per_s"), outside(get(c, "cpu", "outside_cores")))

    sph, slim = get(sch, "phases") or {}, get(sch, "limits") or {}
    rec, cc = sph.get("record") or {}, slim.get("copy_calls") or {}
    rec_rate = get(rec, "rate", "sustained_per_s") or get(rec, "rate", "per_s")
    add("recording accepted calls (scheduler -> Postgres)",
        f"{n(rec_rate)} calls/s ({n(rec.get('reached'))} calls, sustained 10-90%)", rec_rate,
        f"COPY of the same rows into calls (+ their call_events): {n(cc.get('per_s'))} rows/s ({n(cc.get('rows'))} rows)",
        cc.get("per_s"), outside(rec.get("outside_cores")))
    rel, lat = sph.get("release") or {}, sph.get("latency") or {}
    cj, cr = slim.get("consume_jobs") or {}, slim.get("consume_requests") or {}
    q2d = lat.get("queue_to_dialing_ms") or {}
    add(f"scheduler ({n(rel.get('deployments'))} deployments, {n(rel.get('pending_at_start'))} pending)",
        f"{n(rel.get('steady_per_s'))} releases/s; queue-to-dialing p50 {n(q2d.get('p50'), '{:.1f}')} / "
        f"p99 {n(q2d.get('p99'), '{:.1f}')} ms", rel.get("steady_per_s"),
        f"librdkafka alone consuming the released dial jobs: {n(cj.get('per_s'))} msg/s (call requests: {n(cr.get('per_s'))} msg/s)",
        cj.get("per_s"), outside(get(rel, "cpu", "outside_cores")))

    dph, dlim = get(dia, "phases") or {}, get(dia, "limits") or {}
    ev, inf = dph.get("events") or {}, dph.get("inflight") or {}
    ce, pe = dlim.get("copy_events") or {}, dlim.get("produce_events") or {}
    pg_rate = get(ev, "postgres", "sustained_per_s") or get(ev, "postgres", "per_s")
    k_rate = get(ev, "kafka", "sustained_per_s") or get(ev, "kafka", "per_s")
    add("dialer + results: events to Postgres",
        f"{n(pg_rate)} events/s; {n(inf.get('peak_in_flight'))} concurrent calls on one worker", pg_rate,
        f"COPY of the same call_events rows: {n(ce.get('per_s'))} rows/s", ce.get("per_s"),
        outside(get(ev, "cpu", "outside_cores")))
    add("dialer + results: events to the topic", f"{n(k_rate)} events/s", k_rate,
        f"raw librdkafka produce of the same events, the dialers' settings: {n(pe.get('per_s'))} msg/s",
        pe.get("per_s"), outside(get(ev, "cpu", "outside_cores")))

    # The slowest stage's limit, in calls/s (a voice call writes 3 events).
    calls = get(ev, "completed", "calls") or 0
    per_call = (get(ev, "postgres", "total") or 0) / calls if calls else None
    cands = {"batch produce": p.get("per_s"), "COPY calls": cc.get("per_s"),
             "consume call requests": cr.get("per_s"), "consume dial jobs": cj.get("per_s")}
    if per_call:
        cands["COPY events"] = ce.get("per_s") and ce["per_s"] / per_call
        cands["produce events"] = pe.get("per_s") and pe["per_s"] / per_call
    cands = {k: v for k, v in cands.items() if v}
    slow = min(cands, key=cands.get) if cands else None
    run = main_e2e_run(e2e)
    er = (run or {}).get("e2e") or {}
    add(f"end to end ({n((run or {}).get('calls'))} calls, POST to completed, sim carrier at full compression)",
        f"{n(er.get('per_s'))} calls/s; accepted->completed p50 {n(get(er, 'latency_ms', 'p50'), '{:.0f}')} / "
        f"p99 {n(get(er, 'latency_ms', 'p99'), '{:.0f}')} ms; Postgres "
        f"{n(get(er, 'cpu_us_per_call', 'postgres'), '{:,.0f}')} us of CPU and "
        f"{stages.storage_text(er.get('postgres_storage'))} bytes per completed call", er.get("per_s"),
        f"slowest stage's limit: {slow or '-'}, {n(cands.get(slow))} calls/s"
        + (f" ({per_call:.1f} events per call)" if per_call else ""),
        cands.get(slow), outside(er.get("outside_cores")))

    # Media calls (bench/media.sh): its limit is issue 21's target, 1,000
    # calls held on one worker within one core; the ratio is calls over it.
    mh = get(med, "phases", "held") or {}
    fa, gp = mh.get("first_audio_after_verdict_ms") or {}, {"p99": media.gap_p99(mh)}
    add("media calls held on one dialer (sip carrier, test callee, RTP both ways)",
        f"{n(mh.get('peak_connected'))} calls at once on {n(mh.get('dialer_cores'), '{:.2f}')} cores; our RTP's "
        f"per-call p99 gap p99 {n(gp.get('p99'), '{:.1f}')} ms; first audio after the verdict p99 "
        f"{n(fa.get('p99'), '{:.0f}')} ms", mh.get("peak_connected"),
        f"target: {media.TARGETS['calls']:,} calls on <= {media.TARGETS['cores']:.0f} core, p99 gap < "
        f"{media.TARGETS['gap_p99_ms']:.0f} ms, first audio p99 < {media.TARGETS['first_audio_p99_ms']:.0f} ms",
        media.TARGETS["calls"] if mh else None, outside(get(mh, "cpu_held", "outside_cores")))
    return rows


def shape(first, last, n0, n1):
    """How a per-call cost moved from size n0 to n1: flat, logarithmic or worse."""
    if not first or not last or n1 <= n0:
        return "-"
    import math

    g = last / first
    if g <= 1.25:
        return f"flat (x{g:.2f})"
    if g <= 1.25 * math.log(n1) / math.log(n0):
        return f"logarithmic or better (x{g:.2f})"
    return f"worse than logarithmic (x{g:.2f})"


def growth_notes(e2e):
    out = []
    for inst in sorted({r["instances"] for r in (e2e or {}).get("runs", [])}):
        runs = [r for r in e2e["runs"] if r["instances"] == inst]
        if len(runs) < 2:
            continue
        a, b = runs[0], runs[-1]
        for label, key, sub in (("scheduler CPU per released call", "release", ("cpu_us_per_call", "scheduler")),
                                ("e2e CPU per call (all services)", "e2e", None)):
            def val(r):
                d = r.get(key) or {}
                if sub is None:
                    c = d.get("cpu_us_per_call") or {}
                    return sum(v for k, v in c.items() if k in ("ingest", "scheduler", "dialer") and v) or None
                return get(d, *sub)
            out.append(f"{inst} instance(s), {label}, {a['calls']:,} -> {b['calls']:,} pending: "
                       f"{shape(val(a), val(b), a['calls'], b['calls'])}")
        # Memory: what each added pending call costs (a per-call average
        # hides a linear growth behind a fixed base).
        for label, key in (("scheduler memory (release)", "release"), ("scheduler memory (end to end)", "e2e")):
            pts = [(r["calls"], get(r, key, "scheduler_peak_rss_mb")) for r in runs]
            pts = [(c, m) for c, m in pts if m]
            if len(pts) > 1:
                steps = ", ".join(f"{(m1 - m0) * 1048576 / (c1 - c0):,.0f} B per added call "
                                  f"({c0:,} -> {c1:,})" for (c0, m0), (c1, m1) in zip(pts, pts[1:]))
                out.append(f"{inst} instance(s), {label}: {pts[0][1]} -> {pts[-1][1]} MB; {steps}")
    return out


def targets(rows, ing, sch, e2e, med=None):
    s, s16 = get(ing, "phases", "single") or {}, get(ing, "phases", "single_load") or {}
    single = [x for x in (s, s16) if x.get("requests_per_s")]
    sok = any(x["requests_per_s"] >= 10000 and get(x, "latency_ms", "p99") is not None
              and x["latency_ms"]["p99"] < 20 for x in single)
    sv = "; ".join(f"{x['requests_per_s']:,.0f} req/s at p99 {get(x, 'latency_ms', 'p99')} ms" for x in single) or "-"
    by = {r["stage"].split(" (")[0]: r for r in rows}
    rel = get(sch, "phases", "release") or {}
    q99 = get(sch, "phases", "latency", "queue_to_dialing_ms", "p99")
    run = main_e2e_run(e2e)
    erate = get(run, "e2e", "per_s")
    def peaks(phase):
        return [(r["calls"], get(r, phase, "scheduler_peak_rss_mb")) for r in (e2e or {}).get("runs", [])
                if r["instances"] == 1 and get(r, phase, "scheduler_peak_rss_mb")]

    def flat(mem):
        return len(mem) > 1 and all(b[1] <= a[1] * 1.5 for a, b in zip(mem, mem[1:]))

    rel_mem, e2e_mem = peaks("release"), peaks("e2e")
    def pct(r):
        return r and r.get("ratio")

    def share(r):
        return f"{pct(r) * 100:.0f}% ({r['figure_value']:,.0f} of {r['limit_value']:,.0f}/s)" if pct(r) else "-"

    out = [
        ("single call: >= 10,000 req/s at p99 < 20 ms", sv, sok),
        ("batch ingest >= 50% of the raw produce rate", share(by.get("batch API")),
         (pct(by.get("batch API")) or 0) >= 0.5),
        ("recording >= 50% of COPY", share(by.get("recording accepted calls")),
         (pct(by.get("recording accepted calls")) or 0) >= 0.5),
        ("scheduler >= 20,000 releases/s", f"{n(rel.get('steady_per_s'))} releases/s",
         (rel.get("steady_per_s") or 0) >= 20000),
        ("queue-to-dialing p99 < 100 ms", f"{n(q99, '{:.1f}')} ms", q99 is not None and q99 < 100),
        ("end to end >= 10,000 calls/s", f"{n(erate)} calls/s", (erate or 0) >= 10000),
        ("scheduler memory flat as the backlog grows",
         "release: " + (", ".join(f"{c:,} pending: {m} MB" for c, m in rel_mem) or "-")
         + "; end to end: " + (", ".join(f"{c:,} calls: {m} MB" for c, m in e2e_mem) or "-"),
         flat(rel_mem) and flat(e2e_mem)),
    ]
    mh = get(med, "phases", "held")
    if mh:
        t, lim = media.TARGETS, get(med, "limits") or {}
        fa = get(mh, "first_audio_after_verdict_ms", "p99")
        gp = media.gap_p99(mh)
        out += [
            (f"media: >= {t['calls']:,} calls at once on one dialer using <= {t['cores']:.0f} core",
             f"{n(mh.get('peak_connected'))} calls on {n(mh.get('dialer_cores'), '{:.2f}')} cores (ratios "
             f"{n(lim.get('calls'), '{:.2f}')}, {n(lim.get('cores'), '{:.2f}')})",
             (mh.get("peak_connected") or 0) >= t["calls"] and (mh.get("dialer_cores") or 9) <= t["cores"]),
            (f"media: our RTP's p99 gap < {t['gap_p99_ms']:.0f} ms", f"{n(gp, '{:.1f}')} ms (p99 over calls)",
             gp is not None and gp < t["gap_p99_ms"]),
            (f"media: first audio after a human verdict p99 < {t['first_audio_p99_ms']:.0f} ms", f"{n(fa, '{:.0f}')} ms",
             fa is not None and fa < t["first_audio_p99_ms"]),
        ]
    return out


def cmd(paths):
    ing, sch, dia, e2e, med = (report.load(p) if p != "-" else None for p in paths[:5])
    out, md = paths[5], (paths[6] if len(paths) > 6 else None)
    rows = build(ing, sch, dia, e2e, med)
    machine = next((d["machine"] for d in (ing, sch, dia, e2e, med) if d and d.get("machine")), report.machine_info())
    doc = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine,
           "sources": {k: p for k, p in zip(("ingest", "scheduler", "dialer", "e2e", "media"), paths[:5])},
           "rows": rows, "growth": (e2e or {}).get("runs"), "growth_notes": growth_notes(e2e),
           "targets": [{"target": t, "measured": v, "met": ok} for t, v, ok in targets(rows, ing, sch, e2e, med)],
           "settings": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("BENCH_", "OB_BENCH_"))},
           "git_commit": next((d.get("git_commit") for d in (ing, sch, dia, e2e, med) if d), None), "out": out}
    report.write_results(out, doc)
    body = [(r["stage"], r["figure"], r["limit"], n((r["ratio"] or 0) * 100, "{:.0f}%") if r["ratio"] else "-",
             r["outside"]) for r in rows]
    print(report.text_table(HEADER, body))
    print()
    print(report.text_table(stages.GROWTH_HEADER, stages.growth_rows(e2e or {})))
    for line in doc["growth_notes"]:
        print("  " + line)
    print()
    for t in doc["targets"]:
        print(f"  {'met   ' if t['met'] else 'MISSED'}  {t['target']}: {t['measured']}")
    if md:
        markdown(doc, body, e2e, md)
    ok = sum(1 for r in rows if r["figure_value"] is not None and r["limit_value"] is not None)
    print(f"bench-quick: {ok} passed, {len(rows) - ok} failed")
    return 0 if ok == len(rows) else 1


def markdown(doc, body, e2e, md_path):
    m = doc["machine"]
    tl = "\n".join(f"| {t['target']} | {t['measured']} | {'met' if t['met'] else 'MISSED'} |" for t in doc["targets"])
    notes = "\n".join(f"- {x}" for x in doc["growth_notes"]) or "- (no growth runs)"
    settings = ", ".join(f"`{k}={v}`" for k, v in doc.get("settings", {}).items()) or "the defaults"
    src = ", ".join(f"`bench/results/{os.path.basename(p)}`" for p in doc["sources"].values() if p != "-")
    block = f"""## All stages against their limits (make bench)

Measured with `make bench` on {doc['date']}: {m.get('cpu_model', 'unknown CPU')}, {m.get('cores')} cores,
{m.get('memory_gib')} GiB memory, Linux {m.get('kernel')}; commit `{doc.get('git_commit')}`. Each limit is
what the part the stage is built on does alone, measured by `build/bench/*` (bench/limits) or COPY
on the same stack in the same run; the ratio is the project's figure over that limit. "Cores
outside the bench" is the CPU (of {m.get('cores')}) that processes outside the measured stack used
meanwhile: other people's work on this shared machine and, in the growth runs, the bench's own
client and samplers. A figure measured beside a busy neighbour is depressed by as much.
Raw results: {src}, and this table's `bench/results/{os.path.basename(doc.get('out', 'bench-*.json'))}`.

{report.md_table(HEADER, body)}

### How cost grows

bench/e2e.sh: the scheduler alone on a seeded backlog (release), then POST to completed with
every service (e2e), at each size and with 1 and 2 instances of each service. CPU time is
utime+stime from /proc of each process over the run, per call; memory is the schedulers' peak
RSS (VmHWM), over the pending calls for release. An e2e run stops at `BENCH_E2E_LIMIT`; its
rate and latencies are then those of the calls completed by then.

{report.md_table(stages.GROWTH_HEADER, stages.growth_rows(e2e or {}))}

{notes}

### Targets

| target | measured | verdict |
|---|---|---|
{tl}

### The alternatives' published limits

{ALTERNATIVES}
### Commands

```sh
make bench        # bench/all.sh: bench/run.sh, bench/scheduler.sh, bench/dialer.sh, bench/e2e.sh, bench/media.sh, then this table
make bench-quick  # the same harness with small sizes (< 2 minutes, BENCHMARKS.md untouched); part of make test
make bench-tools  # only the limit tools: build/bench/limit_http, limit_produce, limit_consume, limit_csv
```

Settings of this run: {settings}. Each script's settings are listed in its own block
below and in its header (bench/*.sh); the growth sizes are `BENCH_E2E_SIZES`,
`BENCH_E2E_DEPLOYMENTS` and `BENCH_E2E_INSTANCES`."""
    report.put_block(md_path, "summary", "rewritten by make bench: bench/all.sh, bench/summary.py", block, first=True)


if __name__ == "__main__":
    if len(sys.argv) not in (7, 8):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(64)
    sys.exit(cmd(sys.argv[1:]))
