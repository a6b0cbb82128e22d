#!/usr/bin/python3
"""Helpers of bench/dialer.sh (the dialer benchmark): a batch client, a
webhook receiver, the phase samplers, and the results
(bench/results/dialer-<ts>.json, the table, the dialer block of BENCHMARKS.md);
what the benchmarks share is in bench/report.py.

    dialer_report.py batch API KEY DEPLOYMENT N NUMBER RESULT_URL|- OUT
        POSTs N calls to NUMBER (max_attempts 1) through calls:batch in
        requests of up to 10,000 calls, 2 at a time; writes
        {"accepted", "rejected", "statuses", "seconds"} to OUT.
    dialer_report.py receiver PORT OUT
        a webhook receiver (asyncio, HTTP/1.1 keep-alive) answering 200 with
        an empty body to every request; on SIGTERM writes the count to OUT.
    dialer_report.py inflight METRICS_URL PIDFILE EXPECTED LIMIT_S OUT
        samples the dialer's outbound_calls_in_flight every 0.5 s, with its
        RSS and CPU, until EXPECTED calls are in flight, 10 s after the peak,
        or LIMIT_S seconds.
    dialer_report.py events DSN KAFKA TOPIC PARTITIONS LIMIT_S OUT BENCH PG KAFKA_PID
        samples count(*) of call_events and the sum of TOPIC's end offsets
        every second until neither grew for 5 s (after they started to) or
        LIMIT_S seconds; writes the samples and the CPU split to OUT.
    dialer_report.py webhooks METRICS_URLS DSN EXPECTED LIMIT_S OUT BENCH PG KAFKA_PID RECEIVER_PID
        samples the dialers' outbound_webhook_deliveries_total{outcome="delivered"} (comma
        separated URLs, summed) and webhook_deliveries rows delivered every
        second until EXPECTED were delivered, nothing moved for 10 s, or
        LIMIT_S seconds; CPU split with the receiver apart.

And the results subcommands of bench/report.py: assemble, table and
markdown, which rewrites only the block between the dialer-bench markers of
BENCHMARKS.md (appended at the end when absent).
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
from report import dump, load, md_table, n, verdict  # noqa: E402

TARGETS = {
    "calls_in_flight": 5000,
    "events_per_s": 20000,
    "webhooks_per_s": 2000,
}


# ------------------------------------------------------------ batch client
def cmd_batch(api, key, dep, count, number, result_url, out):
    count = int(count)
    reqs = []
    for a in range(0, count, 10000):
        calls = []
        for i in range(a, min(count, a + 10000)):
            c = {"phone_number": number, "message_reference": f"bench-dialer-{dep[-4:]}-{i}", "max_attempts": 1}
            if result_url != "-":
                c["result_url"] = result_url
            calls.append(c)
        reqs.append((f"/api/v1/deployments/{dep}/calls:batch", json.dumps(calls)))
    t0 = time.monotonic()
    res = report.post_all([api], reqs, key, 2, 120)
    res["seconds"] = round(time.monotonic() - t0, 2)
    dump(res, out)
    print(f"  queued {res['accepted']:,} of {count:,} calls in {res['seconds']} s (HTTP {res['statuses']})")
    return 0 if res["accepted"] == count else 1


# ------------------------------------------------------------ webhook receiver
class Receiver(asyncio.Protocol):
    """Minimal HTTP/1.1: headers, then Content-Length bytes of body; no
    chunked bodies (libcurl sends Content-Length for POSTFIELDS)."""

    count = 0
    RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            h = self.buf.find(b"\r\n\r\n")
            if h < 0:
                return
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", self.buf[:h])
            need = h + 4 + (int(m.group(1)) if m else 0)
            if len(self.buf) < need:
                return
            self.buf = self.buf[need:]
            Receiver.count += 1
            self.t.write(self.RESP)


def cmd_receiver(port, out):
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGINT, lambda: stop.done() or stop.set_result(None))

    async def main():
        server = await loop.create_server(Receiver, "127.0.0.1", int(port), backlog=1024)
        await stop
        server.close()

    loop.run_until_complete(main())
    dump({"requests": Receiver.count}, out)


# ------------------------------------------------------------ samplers
def cmd_inflight(url, pidfile, expected, limit_s, out):
    expected, limit_s = int(expected), float(limit_s)
    pid = report.read_pid(pidfile)
    samples, reason = [], "time limit"
    peak_t = None
    peak = -1
    hold_until = None
    for t in report.every(0.5, limit_s, report.stop_flag()):
        m = report.scrape(url) or {}
        ticks = report.proc_ticks(pid)
        vm = report.vm_kb(pid)
        s = {"t": round(t, 2), "in_flight": m.get("outbound_calls_in_flight"), "taken": m.get("outbound_dial_jobs_taken_total"),
             "rss_kb": vm.get("VmRSS"), "hwm_kb": vm.get("VmHWM"), "ticks": ticks}
        if samples and ticks is not None and samples[-1]["ticks"] is not None and s["t"] > samples[-1]["t"]:
            s["cores"] = round((ticks - samples[-1]["ticks"]) / report.HZ / (s["t"] - samples[-1]["t"]), 2)
        samples.append(s)
        v = s["in_flight"] or 0
        if v > peak:
            peak, peak_t = v, t
        if ticks is None:
            reason = "dialer exited"
            break
        # Held for 3 s more, so that RSS and CPU at the peak cover holding
        # the calls, not only taking them.
        if v >= expected and reason != "all calls in flight":
            reason, hold_until = "all calls in flight", t + 3
        if reason == "all calls in flight" and t >= hold_until:
            break
        if peak > 0 and t - peak_t > 10 and hold_until is None:
            reason = "10 s past the peak"
            break
    dump({"end_reason": reason, "expected": expected, "limit_s": limit_s, "pid": pid, "samples": samples}, out)


def topic_end(kafka, topic, parts):
    args = ["kcat", "-b", kafka, "-Q"]
    for p in range(int(parts)):
        args += ["-t", f"{topic}:{p}:-1"]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    vals = [int(x) for x in re.findall(r"offset (-?\d+)", r.stdout)]
    return sum(v for v in vals if v >= 0) if len(vals) == int(parts) else None


def cpu_split(a, b, named, bench, pg, kafka):
    """Cores used between two report.snapshot()s by role: named {pid: role}
    and the services of OB_LOCAL_RUN's pid files, postgres and kafka
    (process trees), bench (this script's tree), the rest of the machine."""
    role = {pid: name.split("-")[0] for name, pid in report.pid_files(os.environ["OB_LOCAL_RUN"]).items()
            if name.startswith(("dialer", "ingest", "scheduler"))}
    role.update(named)
    return report.cpu_split(a, b, report.roles(b[2], pg, kafka, bench, "bench", role), top=False)


def cmd_events(dsn, kafka, topic, parts, limit_s, out, bench, pg, kafka_pid):
    limit_s = float(limit_s)
    samples, reason = [], "time limit"
    cpu0 = report.snapshot()
    last_move = None
    for t in report.every(1.0, limit_s, report.stop_flag()):
        rows = report.psql_ints(dsn, "SELECT count(*) FROM call_events", timeout=10)
        end = topic_end(kafka, topic, parts)
        s = {"t": round(t, 2), "rows": rows[0] if rows else None, "offsets": end}
        if samples and (s["rows"] != samples[-1]["rows"] or s["offsets"] != samples[-1]["offsets"]):
            last_move = t
        samples.append(s)
        if last_move is not None and t - last_move >= 5:
            reason = "quiet for 5 s"
            break
    cpu = cpu_split(cpu0, report.snapshot(), {}, int(bench), int(pg), int(kafka_pid))
    dump({"end_reason": reason, "limit_s": limit_s, "samples": samples, "cpu": cpu}, out)


def cmd_webhooks(urls, dsn, expected, limit_s, out, bench, pg, kafka_pid, receiver):
    expected, limit_s = int(expected), float(limit_s)
    samples, reason = [], "time limit"
    cpu0 = report.snapshot()
    last_move = 0.0
    for t in report.every(1.0, limit_s, report.stop_flag()):
        delivered = created = failed = 0
        for u in urls.split(","):
            m = report.scrape(u) or {}
            delivered += m.get('outbound_webhook_deliveries_total{outcome="delivered"}', 0)
            created += m.get("outbound_webhook_deliveries_created_total", 0)
            failed += m.get('outbound_webhook_tries_total{outcome="failed"}', 0)
        rows = report.psql_ints(dsn, "SELECT count(*), count(*) FILTER (WHERE state = 'delivered') FROM webhook_deliveries",
                                timeout=10)
        s = {"t": round(t, 2), "delivered": delivered, "created": created, "tries_failed": failed,
             "rows": rows[0] if rows else None, "rows_delivered": rows[1] if rows else None,
             "receiver_ticks": report.proc_ticks(int(receiver))}
        if samples and (s["delivered"] != samples[-1]["delivered"] or s["rows"] != samples[-1]["rows"]):
            last_move = t
        samples.append(s)
        if delivered >= expected and (s["rows_delivered"] or 0) >= expected:
            reason = "all delivered"
            break
        if t - last_move >= 10:
            reason = "nothing moved for 10 s"
            break
    cpu = cpu_split(cpu0, report.snapshot(), {int(receiver): "receiver"}, int(bench), int(pg), int(kafka_pid))
    dump({"end_reason": reason, "expected": expected, "limit_s": limit_s, "samples": samples, "cpu": cpu}, out)


# ------------------------------------------------------------ results
def inflight_phase(work):
    w = load(f"{work}/inflight.watch.json")
    if not w:
        return None
    s = w["samples"]
    res = {"end_reason": w["end_reason"], "queued": load(f"{work}/inflight.batch.json", {}), "samples_n": len(s)}
    best = max(s, key=lambda x: x.get("in_flight") or 0) if s else None
    if best:
        res["peak_in_flight"] = best.get("in_flight")
        res["peak_t"] = best["t"]
        res["rss_at_peak_mb"] = round(best["rss_kb"] / 1024, 1) if best.get("rss_kb") else None
        # CPU over the 2 s either side of the first peak sample (one 0.5 s
        # sample is a few clock ticks).
        win = [x for x in s if abs(x["t"] - best["t"]) <= 2 and x.get("ticks") is not None]
        if len(win) > 1 and win[-1]["t"] > win[0]["t"]:
            res["cores_at_peak"] = round((win[-1]["ticks"] - win[0]["ticks"]) / report.HZ / (win[-1]["t"] - win[0]["t"]), 2)
        # How fast the dialer took the calls: 10% to 90% of the peak.
        lo = next((x for x in s if (x.get("in_flight") or 0) >= 0.1 * (best.get("in_flight") or 0)), None)
        hi = next((x for x in s if (x.get("in_flight") or 0) >= 0.9 * (best.get("in_flight") or 0)), None)
        if lo and hi and hi["t"] > lo["t"]:
            res["ramp_per_s"] = round((hi["in_flight"] - lo["in_flight"]) / (hi["t"] - lo["t"]), 1)
        hwm = [x["hwm_kb"] for x in s if x.get("hwm_kb")]
        res["peak_rss_mb"] = round(max(hwm) / 1024, 1) if hwm else None
        cores = [x["cores"] for x in s if x.get("cores") is not None]
        res["max_cores"] = max(cores) if cores else None
        first = next((x for x in s if (x.get("in_flight") or 0) > 0), None)
        res["first_in_flight_t"] = first["t"] if first else None
    res["samples"] = [[x["t"], x.get("in_flight"), x.get("rss_kb"), x.get("cores")] for x in s]
    return res


def events_phase(work):
    w = load(f"{work}/events.watch.json")
    if not w:
        return None
    s = w["samples"]
    res = {"end_reason": w["end_reason"], "queued": load(f"{work}/events.batch.json", {}),
           "postgres": report.busy_rate(s, "rows"), "kafka": report.busy_rate(s, "offsets"), "cpu": w.get("cpu"),
           "by_type": load(f"{work}/events.types.json"), "completed": load(f"{work}/events.completed.json")}
    res["samples"] = [[x["t"], x["rows"], x["offsets"]] for x in s]
    return res


def webhooks_phase(work):
    w = load(f"{work}/webhooks.watch.json")
    if not w:
        return None
    s = w["samples"]
    res = {"end_reason": w["end_reason"], "expected": w["expected"], "queued": load(f"{work}/webhooks.batch.json", {}),
           "metric": report.busy_rate(s, "delivered"), "rows": report.busy_rate(s, "rows_delivered"),
           "created": report.busy_rate(s, "created"),
           "receiver": load(f"{work}/receiver.json"), "cpu": w.get("cpu")}
    if s:
        res["delivered"] = s[-1]["delivered"]
        res["tries_failed"] = s[-1]["tries_failed"]
        t = [x for x in s if x.get("receiver_ticks") is not None]
        if len(t) > 1 and t[-1]["t"] > t[0]["t"]:
            res["receiver_cores"] = round((t[-1]["receiver_ticks"] - t[0]["receiver_ticks"]) / report.HZ / (t[-1]["t"] - t[0]["t"]), 2)
    res["samples"] = [[x["t"], x["delivered"], x["rows_delivered"], x["created"]] for x in s]
    return res


def cmd_assemble(work, params_path, out):
    res = report.results_head(load(params_path, {}), TARGETS)
    res["phases"] = {"inflight": inflight_phase(work), "events": events_phase(work), "webhooks": webhooks_phase(work)}
    res["limits"] = report.limits(work)  # issue 8: raw produce and COPY of the events
    report.write_results(out, res)


def cores_text(cpu, keys):
    if not cpu:
        return "-"
    parts = [f"{k} {n(cpu.get(k + '_cores'), '{:.2f}')}" for k in keys if cpu.get(k + "_cores") is not None]
    return ", ".join(parts) + f" (machine {n(cpu.get('machine_busy_cores'), '{:.2f}')})"


def rows(r):
    p, quick = r["phases"], r.get("mode") == "quick"
    prm = r.get("params", {})
    out = []
    inf = p.get("inflight")
    if inf:
        peak = inf.get("peak_in_flight")
        out.append((
            f"sim calls in flight on 1 dialer ({prm.get('inflight_channels'):,} channels, {inf['queued'].get('accepted', 0):,} ringing calls queued)",
            f"peak {n(peak)} at {n(inf.get('peak_t'), '{:.1f}')} s ({inf.get('end_reason')}; taken at {n(inf.get('ramp_per_s'))} calls/s); RSS {n(inf.get('rss_at_peak_mb'), '{:.1f}')} MB,"
            f" {n(inf.get('cores_at_peak'), '{:.2f}')} cores at the peak (peak RSS {n(inf.get('peak_rss_mb'), '{:.1f}')} MB,"
            f" most cores {n(inf.get('max_cores'), '{:.2f}')})",
            f">= {TARGETS['calls_in_flight']:,}",
            verdict(peak is not None and peak >= TARGETS["calls_in_flight"], quick)))
    ev = p.get("events")
    if ev:
        pg, kf = ev.get("postgres") or {}, ev.get("kafka") or {}
        dialers = prm.get("dialers")
        out.append((
            f"events written to Postgres ({dialers} dialers, {ev['queued'].get('accepted', 0):,} calls)",
            f"{n(pg.get('sustained_per_s'))}/s sustained (10-90% of the rows); {n(pg.get('per_s'))}/s over the whole {n(pg.get('seconds'), '{:.1f}')} s"
            f" ({n(pg.get('total'))} rows; best second {n(pg.get('best_1s'))})",
            f">= {TARGETS['events_per_s']:,}/s",
            verdict((pg.get("sustained_per_s") or 0) >= TARGETS["events_per_s"], quick)))
        out.append((
            "events written to the call-events topic",
            f"{n(kf.get('sustained_per_s'))}/s sustained (10-90% of the messages); {n(kf.get('per_s'))}/s over the whole {n(kf.get('seconds'), '{:.1f}')} s"
            f" ({n(kf.get('total'))} messages; best second {n(kf.get('best_1s'))})",
            f">= {TARGETS['events_per_s']:,}/s",
            verdict((kf.get("sustained_per_s") or 0) >= TARGETS["events_per_s"], quick)))
        out.append(("  events phase: cores used", cores_text(ev.get("cpu"), ("dialer", "scheduler", "postgres", "kafka", "bench", "outside")), "", ""))
    wh = p.get("webhooks")
    if wh:
        m, rw = wh.get("metric") or {}, wh.get("rows") or {}
        out.append((
            f"webhooks delivered to a local receiver ({prm.get('dialers')} dialers, backlog of {wh.get('expected', 0):,})",
            f"{n(m.get('per_s'))}/s over {n(m.get('seconds'), '{:.1f}')} s by the metric, {n(rw.get('per_s'))}/s by rows"
            f" ({n(wh.get('delivered'))} delivered, {wh.get('end_reason')}; best second {n(m.get('best_1s'))}; {n(wh.get('tries_failed'))} tries failed;"
            f" deliveries created from the events at {n((wh.get('created') or {}).get('per_s'))}/s)",
            f">= {TARGETS['webhooks_per_s']:,}/s",
            verdict((m.get("per_s") or 0) >= TARGETS["webhooks_per_s"], quick)))
        out.append(("  webhooks phase: cores used", cores_text(wh.get("cpu"), ("dialer", "receiver", "postgres", "kafka", "bench", "outside"))
                    + f"; receiver answered {n((wh.get('receiver') or {}).get('requests'))} requests", "", ""))
    return out


def cmd_table(path):
    r = load(path)
    report.print_rows(f"dialer benchmark ({r.get('mode')} run, {r.get('date')}, {r['machine'].get('cores')} cores)", rows(r))
    print()


def cmd_markdown(path, md_path):
    r = load(path)
    m, prm = r["machine"], r.get("params", {})
    block = f"""## Dialer

Measured with `make bench-dialer` (bench/dialer.sh) on {r.get('date')}, commit
`{r.get('git_commit')}`{' (with uncommitted changes)' if r.get('git_dirty') else ''}, {m.get('cpu_model', 'unknown CPU')},
{m.get('cores')} cores. Its own stack (`OB_LOCAL_PORT_BASE={r.get('port_base')}`, state in
`.local-bench/dialer/`), ingest, the scheduler and the dialers on one machine;
raw results in `bench/results/{os.path.basename(path)}` (not committed).

- **calls in flight**: one dialer with `OB_DIALER_CHANNELS={prm.get('inflight_channels')}`, webhooks off,
  `OB_SIM_TIME_SCALE=1`; {prm.get('inflight_calls'):,} calls to the sim's noanswer number
  (rings 30 s, `max_attempts` 1) queued with `calls:batch`; its
  `outbound_calls_in_flight` sampled every 0.5 s, with its RSS and CPU.
- **events**: {prm.get('dialers')} dialers with {prm.get('events_channels'):,} channels each, webhooks off,
  `OB_SIM_TIME_SCALE={prm.get('fast_time_scale')}`; {prm.get('events_calls'):,} calls to the voice number queued
  and recorded before the dialers start (`OB_SCHEDULER_RELEASE_MAX=2000`: one
  deployment holds all the channels); `count(*)` of `call_events` and the
  end offsets of the call-events topic sampled every second. The verdict is
  the sustained rate, between 10% and 90% of the total (interpolated); the
  rate over the whole busy period (first to last second that grew) includes
  the dialers' start-up.
- **webhooks**: {prm.get('webhook_calls'):,} calls with a `result_url` on a local receiver
  (Python asyncio, answers 200 at once, keep-alive) completed with webhooks
  off; then {prm.get('dialers')} dialers with webhooks on (`OB_WEBHOOK_CONCURRENCY` default)
  work off that backlog; `outbound_webhook_deliveries_total{{outcome="delivered"}}` summed over the
  dialers and `webhook_deliveries` rows delivered, sampled every second.

{md_table(('measure', 'result', 'target', 'verdict'), rows(r))}

Settings: `BENCH_DIALER_INFLIGHT_CALLS`, `BENCH_DIALER_INFLIGHT_CHANNELS`,
`BENCH_DIALER_EVENTS_CALLS`, `BENCH_DIALER_WEBHOOK_CALLS`, `BENCH_DIALER_DIALERS`,
`BENCH_DIALER_CHANNELS`, `BENCH_DIALER_TIME_SCALE`, `BENCH_DIALER_LIMIT` (seconds per
phase), `BENCH_QUIET_TIMEOUT`, `BENCH_DIALER_PHASES` (a subset of `inflight events webhooks`; such a run
leaves this block alone), `BENCH_KEEP_STACK=1`; `OB_WEBHOOK_*` and `OB_KAFKA_*`
settings reach the dialers. `bench/dialer.sh --quick` is a smoke run with
small sizes that leaves this file alone."""
    report.put_block(md_path, "dialer-bench", "rewritten by bench/dialer.sh; edit the script instead", block)


if __name__ == "__main__":
    cmds = {"batch": (cmd_batch, 7), "receiver": (cmd_receiver, 2), "inflight": (cmd_inflight, 5),
            "events": (cmd_events, 9), "webhooks": (cmd_webhooks, 9)}
    sys.exit(report.main(__doc__, cmds, sys.argv, (cmd_assemble, cmd_table, cmd_markdown)))
