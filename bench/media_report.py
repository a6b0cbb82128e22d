#!/usr/bin/python3
"""Helpers of bench/media.sh (media calls held by one dialer with the sip
carrier, against the test callee): the batch client, the sampler, and the
results (bench/results/media-<ts>.json, the table, the media block of
BENCHMARKS.md); what the benchmarks share is in bench/report.py.

    media_report.py batch API KEY DEPLOYMENT N NUMBER APP_JSON OUT
        POSTs N calls to NUMBER (max_attempts 1), each with the document in
        the file APP_JSON as its app, through calls:batch in requests of
        250 calls, 2 at a time; writes {"accepted", "rejected", "statuses",
        "seconds"} to OUT.
    media_report.py held METRICS_URL DIALER_PIDFILE CALLEE_PID EXPECTED LIMIT_S OUT BENCH PG KAFKA
        every 0.5 s: the dialer's outbound_calls_in_flight and SIP gauges,
        the CPU of every process (by role: dialer, callee, ingest,
        scheduler, postgres, kafka, bench, outside) and the dialer's RSS,
        until the calls in flight fell back to 0 after EXPECTED or fewer
        were up, or LIMIT_S seconds.
    media_report.py sniff METRICS_URL EXPECTED LO HI SECONDS OUT
        our RTP as it left the dialer: kernel timestamps of the audio sent
        on lo from UDP ports LO..HI for SECONDS, from 1 s after EXPECTED
        calls are in flight; per call p99 and max gap (root or CAP_NET_RAW;
        otherwise {"skipped": why}).

And the results subcommands of bench/report.py: assemble (WORK holds
held.json, batch.json, callee.jsonl, attempts.json, params), table and
markdown, which rewrites only the block between the media-bench markers of
BENCHMARKS.md (appended at the end when absent).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: what the benchmarks share)
from report import dist, dump, load, md_table, n, verdict  # noqa: E402

# Issue 21: 1,000 concurrent media calls on one worker using at most one
# core, our RTP's p99 inter-packet gap under 25 ms at 20 ms ptime, the
# first audio packet after a human verdict within 200 ms p99.
TARGETS = {"calls": 1000, "cores": 1.0, "gap_p99_ms": 25.0, "first_audio_p99_ms": 200.0}
# The share of the peak that makes the held window: calls up at once.
HELD_SHARE = 0.95
# The key the callee presses (bench/media.sh's rules), which ends the gather.
KEY = "1"
ROLES = ("dialer", "callee", "ingest", "scheduler", "postgres", "kafka", "bench", "outside")


# ------------------------------------------------------------ batch client
def cmd_batch(api, key, dep, count, number, app_path, out):
    count = int(count)
    with open(app_path) as f:
        app = json.load(f)
    reqs = []
    for a in range(0, count, 250):
        calls = [{"phone_number": number, "message_reference": f"bench-media-{i}", "max_attempts": 1, "app": app}
                 for i in range(a, min(count, a + 250))]
        reqs.append((f"/api/v1/deployments/{dep}/calls:batch", json.dumps(calls)))
    t0 = time.monotonic()
    res = report.post_all([api], reqs, key, 2, 120)
    res["seconds"] = round(time.monotonic() - t0, 2)
    dump(res, out)
    print(f"  queued {res['accepted']:,} of {count:,} calls in {res['seconds']} s (HTTP {res['statuses']})")
    return 0 if res["accepted"] == count else 1


# ------------------------------------------------------------ sampler
def thread_ticks(pid):
    """tid -> utime + stime of each thread of pid ({} when it is gone)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        t = report.proc_ticks(f"{pid}/task/{tid}")
        if t is not None:
            out[tid] = t
    return out


def roles_now(table, callee, bench, pg, kafka):
    role = {pid: name.split("-")[0] for name, pid in report.pid_files(os.environ["OB_LOCAL_RUN"]).items()
            if name.startswith(("dialer", "ingest", "scheduler"))}
    role[callee] = "callee"
    return report.roles(table, pg, kafka, bench, "bench", role)


def cmd_held(url, pidfile, callee, expected, limit_s, out, bench, pg, kafka):
    expected, limit_s, callee = int(expected), float(limit_s), int(callee)
    bench, pg, kafka = int(bench), int(pg), int(kafka)
    pid = report.read_pid(pidfile)
    samples, snaps, reason, peak = [], [], "time limit", 0
    for t in report.every(0.5, limit_s, report.stop_flag()):
        m = report.scrape(url) or {}
        snap = report.snapshot()
        vm = report.vm_kb(pid)
        s = {"t": round(t, 2), "in_flight": m.get("outbound_calls_in_flight"),
             "rtp_ports": m.get("outbound_sip_rtp_ports_in_use"),
             "rtp_received": m.get("outbound_sip_rtp_packets_received_total"),
             "digits_received": m.get("outbound_sip_dtmf_digits_received_total"),
             "invites": m.get("outbound_sip_invites_total"),
             "dialer_ticks": report.proc_ticks(pid), "callee_ticks": report.proc_ticks(callee),
             "threads": thread_ticks(pid),
             "rss_kb": vm.get("VmRSS"), "hwm_kb": vm.get("VmHWM")}
        samples.append(s)
        snaps.append(snap)
        v = s["in_flight"] or 0
        peak = max(peak, v)
        if s["dialer_ticks"] is None:
            reason = "dialer exited"
            break
        if peak > 0 and v == 0:
            reason = "every call ended"
            break
    # The CPU split (cores by role) over the whole phase and over the held
    # window: the samples with at least HELD_SHARE of the peak up.
    held = [i for i, s in enumerate(samples) if peak and (s["in_flight"] or 0) >= HELD_SHARE * peak]
    split = lambda a, b: report.cpu_split(snaps[a], snaps[b], roles_now(snaps[b][2], callee, bench, pg, kafka),  # noqa: E731
                                          ROLES, top=True)
    res = {"end_reason": reason, "expected": expected, "limit_s": limit_s, "pid": pid, "callee_pid": callee,
           "peak_in_flight": peak, "samples": samples,
           "cpu_phase": split(0, len(snaps) - 1) if len(snaps) > 1 else None,
           "held_window": [samples[held[0]]["t"], samples[held[-1]]["t"]] if len(held) > 1 else None,
           "cpu_held": split(held[0], held[-1]) if len(held) > 1 else None}
    dump(res, out)


def cmd_sniff(url, expected, lo, hi, seconds, out):
    """Our RTP as it left: the kernel's timestamps (SO_TIMESTAMPNS) of the
    audio packets sent on lo from UDP ports LO..HI (the first calls' RTP
    ports) to ports outside LO..HI, for SECONDS from 1 s after EXPECTED
    calls are in flight (1 s: their INVITEs are out). An
    AF_PACKET socket: root or CAP_NET_RAW; without, {"skipped": why}."""
    import ctypes
    import socket
    import struct

    expected, lo, hi, seconds = int(expected), int(lo), int(hi), float(seconds)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))  # ETH_P_ALL, no link header
    except OSError as e:
        dump({"skipped": f"no AF_PACKET socket: {e}"}, out)
        return 0
    # Classic BPF: UDP (protocol 17) with a source port in lo..hi (an IPv4
    # header of 20 bytes); everything else stays in the kernel.
    prog = [(0x30, 0, 0, 9), (0x15, 0, 4, 17), (0x28, 0, 0, 20), (0x35, 0, 2, lo), (0x25, 1, 0, hi),
            (0x06, 0, 0, 65535), (0x06, 0, 0, 0)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
    sock.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog), ctypes.addressof(code)))  # SO_ATTACH_FILTER
    sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("lo", 0))
    stop = report.stop_flag()
    t0 = time.monotonic()
    while not stop and time.monotonic() - t0 < 600:
        if ((report.scrape(url) or {}).get("outbound_calls_in_flight") or 0) >= HELD_SHARE * expected:
            break
        time.sleep(0.2)
    time.sleep(1)
    while True:  # what queued meanwhile
        sock.setblocking(False)
        try:
            sock.recv(2048)
        except OSError:
            break
    sock.settimeout(0.2)
    times, end = {}, time.monotonic() + seconds
    while time.monotonic() < end and not stop:
        try:
            data, anc, _, addr = sock.recvmsg(2048, 64)
        except OSError:
            continue
        ihl = (data[0] & 15) * 4
        if addr[2] != socket.PACKET_OUTGOING or len(data) < ihl + 10:
            continue
        sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
        if lo <= dport <= hi or data[ihl + 9] & 0x7F not in (0, 8):  # not to the callee, or not audio
            continue
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == 35:
                sec, ns = struct.unpack("qq", val[:16])
                times.setdefault(sport, []).append(sec + ns / 1e9)
    per = []
    for t in times.values():
        g = sorted((b - a) * 1000 for a, b in zip(t, t[1:]))
        if g:
            per.append({"n": len(g), "p99": report.pct(g, 99), "max": g[-1], "over_40ms": sum(1 for x in g if x > 40)})
    dump({"seconds": seconds, "ports": [lo, hi], "calls": len(per), "gaps": sum(x["n"] for x in per),
          "gap_p99_ms": dist([x["p99"] for x in per]), "gap_max_ms": dist([x["max"] for x in per]),
          "gaps_over_40ms": sum(x["over_40ms"] for x in per)}, out)
    return 0


# ------------------------------------------------------------ results
def callee_lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def peak_connected(attempts):
    """Calls connected at once, from the attempts' connected_at .. ended_at
    (epoch seconds), and for how long at least HELD_SHARE of that was up."""
    ev = []
    for a in attempts:
        if a.get("connected") is not None and a.get("ended") is not None:
            ev += [(a["connected"], 1), (a["ended"], -1)]
    ev.sort(key=lambda x: (x[0], x[1]))
    cur = peak = 0
    for _, d in ev:
        cur += d
        peak = max(peak, cur)
    cur, since, held = 0, None, 0.0
    for t, d in ev:
        cur += d
        if cur >= HELD_SHARE * peak and since is None:
            since = t
        elif cur < HELD_SHARE * peak and since is not None:
            held += t - since
            since = None
    return peak, round(held, 1)


def held_phase(work):
    w = load(f"{work}/held.json")
    if not w:
        return None
    s = w["samples"]
    res = {"end_reason": w["end_reason"], "queued": load(f"{work}/batch.json", {}),
           "peak_in_flight": w.get("peak_in_flight"), "held_window_s": w.get("held_window"),
           "cpu_held": w.get("cpu_held"), "cpu_phase": w.get("cpu_phase")}
    win = w.get("held_window")
    if win and win[1] > win[0]:
        pts = [x for x in s if win[0] <= x["t"] <= win[1]]
        a, b = pts[0], pts[-1]
        secs = b["t"] - a["t"]
        cpu_s = (b["dialer_ticks"] - a["dialer_ticks"]) / report.HZ
        # Call-seconds held in the window: the calls in flight integrated
        # over the samples (trapezoids).
        call_s = sum((p["in_flight"] + q["in_flight"]) / 2 * (q["t"] - p["t"]) for p, q in zip(pts, pts[1:]))
        # The dialer's busiest thread (libre's, which receives and sends
        # every call's RTP, is one): one thread can use one core at most.
        tids = set(a.get("threads") or {}) & set(b.get("threads") or {})
        busiest = max(((b["threads"][k] - a["threads"][k]) for k in tids), default=None)
        res["busiest_thread_cores"] = round(busiest / report.HZ / secs, 3) if busiest is not None else None
        res["held_s"] = round(secs, 1)
        res["dialer_cores"] = round(cpu_s / secs, 3)
        res["dialer_core_ms_per_call_s"] = round(1000 * cpu_s / call_s, 3) if call_s else None
        res["mean_in_flight"] = round(call_s / secs, 1)
        if a.get("callee_ticks") is not None and b.get("callee_ticks") is not None:
            res["callee_cores"] = round((b["callee_ticks"] - a["callee_ticks"]) / report.HZ / secs, 3)
        if a.get("rtp_received") is not None and b.get("rtp_received") is not None:
            res["rtp_received_per_s"] = round((b["rtp_received"] - a["rtp_received"]) / secs)
        rss = [x["rss_kb"] for x in pts if x.get("rss_kb")]
        res["rss_held_mb"] = round(max(rss) / 1024, 1) if rss else None
    hwm = [x["hwm_kb"] for x in s if x.get("hwm_kb")]
    res["peak_rss_mb"] = round(max(hwm) / 1024, 1) if hwm else None
    base = next((x["rss_kb"] for x in s if x.get("rss_kb")), None)
    res["rss_before_mb"] = round(base / 1024, 1) if base else None
    # The busiest thread's cores over each 1 s of the phase, at most: a
    # thread near 1.0 is saturated, and its calls' packets wait.
    worst = None
    for i, x in enumerate(s):
        y = next((z for z in s[i:] if z["t"] - x["t"] >= 1.0), None)
        if not y:
            break
        for k in set(x.get("threads") or {}) & set(y.get("threads") or {}):
            c = (y["threads"][k] - x["threads"][k]) / report.HZ / (y["t"] - x["t"])
            if worst is None or c > worst[0]:
                worst = (round(c, 2), x["t"])
    res["busiest_thread_peak_1s"] = {"cores": worst[0], "at_t": worst[1]} if worst else None
    # RTP the dialer read, over each 1 s of the held window, against what
    # the calls up sent it (50 packets/s each): under 100% it fell behind.
    low = None
    for i, x in enumerate(s):
        y = next((z for z in s[i:] if z["t"] - x["t"] >= 1.0), None)
        if not y or not win or x["t"] < win[0] or y["t"] > win[1]:
            continue
        if x.get("rtp_received") is None or y.get("rtp_received") is None or not x.get("in_flight"):
            continue
        share = (y["rtp_received"] - x["rtp_received"]) / (y["t"] - x["t"]) / (50 * x["in_flight"])
        if low is None or share < low[0]:
            low = (round(share, 3), x["t"])
    res["rtp_read_min_1s"] = {"share": low[0], "at_t": low[1]} if low else None
    res["samples"] = [[x["t"], x.get("in_flight"), x.get("rss_kb"), x.get("dialer_ticks"), x.get("callee_ticks"),
                       x.get("rtp_received")] for x in s]

    # What the callee heard: our RTP's pacing, per call.
    lines = callee_lines(f"{work}/callee.jsonl")
    answered = [x for x in lines if x.get("answered")]
    p99 = [x["gap_p99_ms"] for x in answered if x.get("gap_p99_ms") is not None]
    res["callee"] = {"calls": len(lines), "answered": len(answered),
                     "gap_p99_ms": dist(p99),
                     "gap_p50_ms": dist([x["gap_p50_ms"] for x in answered if x.get("gap_p50_ms") is not None]),
                     "gap_max_ms": dist([x["gap_max_ms"] for x in answered if x.get("gap_max_ms") is not None]),
                     "gaps_over_40ms": sum(x.get("gaps_over_40ms") or 0 for x in answered),
                     "calls_with_gaps_over_40ms": sum(1 for x in answered if x.get("gaps_over_40ms")),
                     "packets": sum(x.get("packets") or 0 for x in answered),
                     "first_packet_ms": dist([x["first_packet_ms"] for x in answered
                                              if x.get("first_packet_ms") is not None]),
                     "digits_sent": sum(1 for x in answered if x.get("digits_sent")),
                     "hangups": {}}
    for x in lines:
        h = x.get("hangup") or "none"
        res["callee"]["hangups"][h] = res["callee"]["hangups"].get(h, 0) + 1

    res["sent"] = load(f"{work}/sniff.json")

    # What the API records: the verdict, the first audio after it, the digits.
    att = load(f"{work}/attempts.json", []) or []
    res["attempts"] = len(att)
    res["results"] = {}
    for a in att:
        r = a.get("result") or "none"
        res["results"][r] = res["results"].get(r, 0) + 1
    human = [a for a in att if a.get("result") == "voice" and a.get("first_audio_ms") is not None
             and a.get("decision_ms") is not None]
    res["first_audio_after_verdict_ms"] = dist([a["first_audio_ms"] - a["decision_ms"] for a in human])
    res["decision_ms"] = dist([a["decision_ms"] for a in att if a.get("decision_ms") is not None])
    res["gathered"] = sum(1 for a in att if a.get("digits") == KEY and a.get("gather") == "num_digits")
    res["completed"] = sum(1 for a in att if a.get("call_state") == "completed")
    res["peak_connected"], res["connected_at_share_s"] = peak_connected(att)
    # How long the dialer took to connect them: the first answer to the
    # answer of HELD_SHARE of the calls.
    up = sorted(a["connected"] for a in att if a.get("connected") is not None)
    if up:
        res["ramp_s"] = round(report.pct(up, 100 * HELD_SHARE) - up[0], 2)
    return res


def cmd_assemble(work, params_path, out):
    res = report.results_head(load(params_path, {}), TARGETS)
    h = held_phase(work)
    res["phases"] = {"held": h}
    res["limits"] = ratios(h, res.get("params", {}))
    report.write_results(out, res)


def gap_p99(h):
    """The p99 over calls of each call's p99 gap of our RTP: as it left the
    dialer when that was measured (the target's figure), else as the callee
    read it (its one thread's delays included)."""
    sent = ((h or {}).get("sent") or {}).get("gap_p99_ms") or {}
    if sent.get("p99") is not None:
        return sent["p99"]
    return (((h or {}).get("callee") or {}).get("gap_p99_ms") or {}).get("p99")


def ratios(h, prm):
    """The figures over their targets (issue 21), measured in this run:
    above 1 is past the target for cores, gaps and latency, under 1 short of
    it for calls."""
    if not h:
        return {}
    r = lambda a, b: round(a / b, 3) if a is not None and b else None  # noqa: E731
    return {"calls": r(h.get("peak_connected"), TARGETS["calls"]),
            "cores": r(h.get("dialer_cores"), TARGETS["cores"]),
            "gap_p99": r(gap_p99(h), TARGETS["gap_p99_ms"]),
            "gap_p99_callee": r((h["callee"].get("gap_p99_ms") or {}).get("p99"), TARGETS["gap_p99_ms"]),
            "first_audio_p99": r((h.get("first_audio_after_verdict_ms") or {}).get("p99"), TARGETS["first_audio_p99_ms"])}


def rows(r):
    h, quick = r["phases"].get("held"), r.get("mode") == "quick"
    prm, lim = r.get("params", {}), r.get("limits", {})
    if not h:
        return []
    c = h.get("callee") or {}
    g, fa = c.get("gap_p99_ms") or {}, h.get("first_audio_after_verdict_ms") or {}
    peak, cores = h.get("peak_connected"), h.get("dialer_cores")
    queued = (h.get("queued") or {}).get("accepted", 0)
    ratio = lambda k: f"{lim[k]:.2f}" if lim.get(k) is not None else "-"  # noqa: E731
    return [
        (f"media calls up at once on 1 dialer ({queued:,} queued, {prm.get('channels'):,} channels,"
         f" OB_SIP_CPS={prm.get('cps', 0) or 'none'})",
         f"{n(peak)} connected at once (dialer's calls in flight: peak {n(h.get('peak_in_flight'))}); "
         f"{n(h.get('connected_at_share_s'), '{:.1f}')} s with >= {HELD_SHARE:.0%} of them up; {HELD_SHARE:.0%} answered within {n(h.get('ramp_s'), '{:.2f}')} s of the first",
         f">= {TARGETS['calls']:,} (ratio {ratio('calls')})",
         verdict(peak is not None and peak >= TARGETS["calls"], quick)),
        ("dialer CPU while they are held",
         f"{n(cores, '{:.3f}')} cores over {n(h.get('held_s'), '{:.1f}')} s ({n(h.get('mean_in_flight'), '{:,.0f}')} calls on average):"
         f" {n(h.get('dialer_core_ms_per_call_s'), '{:.2f}')} core-ms per call-second; RSS {n(h.get('rss_held_mb'), '{:.1f}')} MB"
         f" (peak {n(h.get('peak_rss_mb'), '{:.1f}')}, {n(h.get('rss_before_mb'), '{:.1f}')} before); busiest thread"
         f" {n(h.get('busiest_thread_cores'), '{:.2f}')} cores (over any 1 s of the phase at most"
         f" {n((h.get('busiest_thread_peak_1s') or {}).get('cores'), '{:.2f}')})",
         f"<= {TARGETS['cores']:.1f} core (ratio {ratio('cores')})",
         verdict(cores is not None and cores <= TARGETS["cores"] and (peak or 0) >= TARGETS["calls"], quick)),
        ("our RTP's pacing as the callee read it (per call p99 gap; its one thread's delays included)",
         f"p50 {n(g.get('p50'), '{:.1f}')} / p99 {n(g.get('p99'), '{:.1f}')} / max {n(g.get('max'), '{:.1f}')} ms over "
         f"{n(g.get('n'))} calls; {n(c.get('gaps_over_40ms'))} gaps over 40 ms in {n(c.get('calls_with_gaps_over_40ms'))} calls"
         f" (worst gap {n((c.get('gap_max_ms') or {}).get('max'), '{:.0f}')} ms); {n(c.get('packets'))} packets;"
         f" the dialer read at least {n(100 * ((h.get('rtp_read_min_1s') or {}).get('share') or 0), '{:.0f}')}% of the"
         f" callee's RTP as it came (worst 1 s)",
         f"p99 < {TARGETS['gap_p99_ms']:.0f} ms (ratio {ratio('gap_p99_callee')})",
         verdict(g.get("p99") is not None and g["p99"] < TARGETS["gap_p99_ms"], quick)),
        ("our RTP's pacing as it left the dialer (kernel timestamps on lo, per call p99 gap)", sent_text(h.get("sent")),
         f"p99 < {TARGETS['gap_p99_ms']:.0f} ms (ratio {ratio('gap_p99') if (h.get('sent') or {}).get('gap_p99_ms') else '-'})",
         verdict(((h.get("sent") or {}).get("gap_p99_ms") or {}).get("p99") is not None
                 and h["sent"]["gap_p99_ms"]["p99"] < TARGETS["gap_p99_ms"], quick)),
        ("first audio after a human verdict (first_audio_ms - decision_ms)",
         f"p50 {n(fa.get('p50'), '{:.0f}')} / p99 {n(fa.get('p99'), '{:.0f}')} / max {n(fa.get('max'), '{:.0f}')} ms over "
         f"{n(fa.get('n'))} attempts (verdict {n((h.get('decision_ms') or {}).get('p50'), '{:.0f}')} ms after the answer, p50)",
         f"p99 < {TARGETS['first_audio_p99_ms']:.0f} ms (ratio {ratio('first_audio_p99')})",
         verdict(fa.get("p99") is not None and fa["p99"] < TARGETS["first_audio_p99_ms"], quick)),
        ("every call completed with its key gathered",
         f"{n(h.get('gathered'))} of {n(queued)} gathered the key; {n(h.get('completed'))} completed; results {h.get('results')};"
         f" callee: {n(c.get('answered'))} answered, hangups {c.get('hangups')}",
         f"{n(queued)}", "met" if queued and h.get("gathered") == queued else "MISSED"),
        ("  held window: cores used", cores_text(h.get("cpu_held")), "", ""),
    ]


def sent_text(sent):
    if not sent:
        return "-"
    if sent.get("skipped"):
        return f"not measured ({sent['skipped']})"
    g, m = sent.get("gap_p99_ms") or {}, sent.get("gap_max_ms") or {}
    return (f"p50 {n(g.get('p50'), '{:.1f}')} / p99 {n(g.get('p99'), '{:.1f}')} / max {n(g.get('max'), '{:.1f}')} ms over"
            f" {n(sent.get('calls'))} calls (RTP ports {sent['ports'][0]}-{sent['ports'][1]}, {n(sent.get('seconds'), '{:.0f}')} s);"
            f" worst gap {n(m.get('max'), '{:.1f}')} ms, {n(sent.get('gaps_over_40ms'))} gaps over 40 ms")


def cores_text(cpu):
    if not cpu:
        return "-"
    parts = [f"{k} {cpu[k + '_cores']:.2f}" for k in ROLES if cpu.get(k + "_cores")]
    top = ", ".join(f"{k} {v:.2f}" for k, v in (cpu.get("outside_top") or {}).items())
    return ", ".join(parts) + f" (machine {n(cpu.get('machine_busy_cores'), '{:.2f}')} of {os.cpu_count()})" + (
        f"; outside: {top}" if top else "")


def cmd_table(path):
    r = load(path)
    report.print_rows(f"media benchmark ({r.get('mode')} run, {r.get('date')}, {r['machine'].get('cores')} cores)", rows(r))
    print()


def cmd_markdown(path, md_path):
    r = load(path)
    m, prm = r["machine"], r.get("params", {})
    block = f"""## Media calls on one dialer (bench/media.sh)

Measured with `make bench-media` (bench/media.sh) on {r.get('date')}, commit
`{r.get('git_commit')}`{' (with uncommitted changes)' if r.get('git_dirty') else ''}, {m.get('cpu_model', 'unknown CPU')},
{m.get('cores')} cores. Its own stack (`OB_LOCAL_PORT_BASE={r.get('port_base')}`, state in
`.local-bench/media/`): ingest, the scheduler, one dialer with the sip carrier
(`OB_DIALER_CHANNELS={prm.get('channels')}`, RTP ports {prm.get('rtp_min')}-{prm.get('rtp_max')}) and the test
callee (tests/callee, [docs/testing-callee.md](docs/testing-callee.md)) as its trunk on
loopback, all on this machine; raw results in `bench/results/{os.path.basename(path)}` (not committed).

{prm.get('calls'):,} calls queued with `calls:batch`, each with the same document: a `say` of
about 7 s, then a `gather` (`num_digits` 1, `timeout_s` 20) whose prompt is a
`say` looped 6 times (about 27 s), so that our audio flows until the key.
The callee answers after {prm.get('ring_ms')} ms, says "Hello?" (espeak-ng, rendered once),
then sends silence, and presses 1 (RFC 4733) {prm.get('key_after_ms', 0) / 1000:g} s after our first audio
packet, which ends the gather and the call: RTP goes both ways at 50
packets/s per call, the callee-type detector and the in-band DTMF reader
run on every call. The dialer's `outbound_calls_in_flight`, and the CPU of
every process from /proc, are sampled every 0.5 s; the held window is the
time at least {HELD_SHARE:.0%} of the peak was in flight, and the dialer's
cores are its utime+stime over that window's wall time. The pacing is what
the callee measured on the packets it read from us (gap between arrivals,
per call, as its one thread got to them), and, for the first 100 calls, the
kernel's timestamps of our packets as they left the dialer on lo (an
AF_PACKET socket, from 1 s after every call was dialed until about the
key): the target's figure. The
first audio after the verdict is each answered
attempt's `first_audio_ms - decision_ms`. The ratio is the figure over the
target, measured in the same run.

{md_table(('measure', 'result', 'target', 'verdict'), rows(r))}

Settings: `BENCH_MEDIA_CALLS`, `BENCH_MEDIA_KEY_AFTER_MS`, `BENCH_MEDIA_CPS` (the
trunk's calls per second, `OB_SIP_CPS`; 0 by default: all the calls at once), `BENCH_MEDIA_LIMIT`
(seconds), `BENCH_MEDIA_RTP_MIN`, `BENCH_QUIET_TIMEOUT`, `BENCH_KEEP_STACK=1`,
`OB_BENCH_MEDIA_PORT_BASE`, `OB_BENCH_MEDIA_STATE`. `bench/media.sh --quick`
(100 calls, the key after 8 s) is a smoke run that leaves this file alone."""
    report.put_block(md_path, "media-bench", "rewritten by bench/media.sh; edit the script instead", block)


if __name__ == "__main__":
    cmds = {"batch": (cmd_batch, 7), "held": (cmd_held, 9), "sniff": (cmd_sniff, 6)}
    sys.exit(report.main(__doc__, cmds, sys.argv, (cmd_assemble, cmd_table, cmd_markdown)))
