#!/usr/bin/env python3
"""A SIP callee with media for the sip carrier's media tests
(tests/unit/services/dialer/test_dialer_sip_media.c): a minimal UAS on UDP
that answers every INVITE, and what it does with the call depends on the
dialed number's last three digits:

  201  answers PCMU, echoes the RTP audio it gets back to the sender
  202  answers PCMA first (m=audio ... 8 0 101), echoes
  203  echoes; 500 ms after the answer presses 1, 2, # as RFC 4733 events
       (payload type 101, each event's packets repeated as phones do)
  204  echoes nothing; 500 ms after the answer plays 4 then 7 as in-band
       DTMF tones in its PCMU audio
  205  presses 5 both ways at once: RFC 4733 and in-band
  206  486 Busy Here
  207  answers, plays 900 ms of a 1000 Hz tone, hangs up (BYE) 1000 ms after
       the answer (the party a connect calls)
  209  answers, echoes; takes a REFER (202 Accepted) and hangs up (BYE)
       100 ms later, as a trunk does once it took the call over; the others
       refuse a REFER (501)
  208  a machine: 5 s of speech-like sound, 300 ms of silence, a 1000 Hz beep
       of 500 ms (5600-6100 ms after the answer), then silence

On the call's end it writes one JSON line per call to the report file: the
number, the payload types, packets, marker bits and RTP timestamp steps of
the audio it got, the gaps between their arrivals (p50, p99, max in ms) and the share of their
energy at 1000 Hz. It prints its SIP port on stdout once bound.

usage: media_callee.py REPORT_FILE
"""
import json
import math
import os
import random
import re
import select
import socket
import struct
import sys
import time

RATE = 8000


def ulaw_decode(b):
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if (b & 0x80) else (t - 0x84)


def alaw_decode(b):
    b ^= 0x55
    t = (b & 0x0F) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if (b & 0x80) else -t


def ulaw_encode(v):
    v = max(-32635, min(32635, int(v)))
    sign = 0x80 if v < 0 else 0
    v = (-v if v < 0 else v) + 0x84
    exp = 7
    mask = 0x4000
    while exp > 0 and not v & mask:
        exp -= 1
        mask >>= 1
    mant = (v >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


ULAW = [ulaw_decode(i) for i in range(256)]
ALAW = [alaw_decode(i) for i in range(256)]
DTMF = {"1": (697, 1209), "2": (697, 1336), "4": (770, 1209), "5": (770, 1336),
        "7": (852, 1209), "#": (941, 1477)}
EVENTS = {"0": 0, "1": 1, "2": 2, "4": 4, "5": 5, "7": 7, "*": 10, "#": 11}


def machine_greeting():
    """300 ms of line noise, 5 s of a 120 Hz voice with its harmonics in
    200 ms syllables, 300 ms of noise, a 500 ms beep at 1000 Hz, 4 s of noise
    (made once: too slow to make while a call waits)."""
    hiss = lambda: random.randint(-30, 30)
    out = [hiss() for _ in range(300 * RATE // 1000)]
    for i in range(5000 * RATE // 1000):
        in_syllable = (i % (RATE * 240 // 1000)) < RATE * 200 // 1000
        v = sum(math.sin(2 * math.pi * 120 * h * i / RATE + h) / h for h in range(1, 21))
        out.append((3000 if in_syllable else 150) * v + hiss())
    out += [hiss() for _ in range(300 * RATE // 1000)]
    out += [8000 * math.sin(2 * math.pi * 1000 * i / RATE) + hiss() for i in range(500 * RATE // 1000)]
    out += [hiss() for _ in range(4000 * RATE // 1000)]
    return out


def share_at(samples, freq):
    """The share of the samples' energy at freq (Goertzel, 20 ms blocks)."""
    total = at = 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    for i in range(0, len(samples) - 159, 160):
        s1 = s2 = 0.0
        block = samples[i:i + 160]
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        at += (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (160 / 2)
        total += sum(x * x for x in block)
    return at / total if total else 0.0


class Call:
    def __init__(self, callee, msg, src):
        self.callee = callee
        self.msg = msg
        self.src = src
        self.number = re.search(r"sip:\+?(\d+)@", msg["start"]).group(1)
        self.kind = self.number[-3:]
        self.tag = "%08x" % random.getrandbits(32)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.peer = None
        m = re.search(r"c=IN IP4 (\S+)", msg["body"])
        p = re.search(r"m=audio (\d+)", msg["body"])
        if m and p:
            self.peer = (m.group(1), int(p.group(1)))
        self.answer_at = None
        self.arrivals = []
        self.pts = set()
        self.markers = 0
        self.last_ts = None
        self.ts_steps = set()
        self.audio = []
        self.seq = random.randint(0, 1000)
        self.ts = random.randint(0, 1 << 20)
        self.ssrc = random.getrandbits(32)
        self.script = []  # (at seconds after the answer, packet bytes)
        self.bye_at = None
        self.done = False
        self.referred_to = ""
        self.x_headers = [h for h in msg["hdrs"] if h.startswith("x-outbound-")]

    def sdp(self):
        port = self.rtp.getsockname()[1]
        fmts = "8 0 101" if self.kind == "202" else "0 8 101"
        return ("v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\nm=audio %d RTP/AVP %s\r\n"
                # telephone-event's rtpmap first: a reader that takes the
                # last rtpmap line for it (an old dialer bug) sends its
                # events as PCMA
                "a=rtpmap:101 telephone-event/8000\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:8 PCMA/8000\r\n"
                "a=fmtp:101 0-16\r\na=ptime:20\r\n" % (port, fmts))

    def packet(self, pt, payload, marker=False, ts=None):
        self.seq = (self.seq + 1) & 0xFFFF
        return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq,
                           self.ts if ts is None else ts, self.ssrc) + payload

    def audio_packets(self, at, samples):
        """PCMU packets of samples from at (s after the answer), 20 ms each."""
        for i in range(0, len(samples), 160):
            block = samples[i:i + 160] + [0] * (160 - len(samples[i:i + 160]))
            self.script.append((at, self.packet(0, bytes(ulaw_encode(x) for x in block))))
            self.ts += 160
            at += 0.02
        return at

    def dtmf_tones(self, key, ms):
        lo, hi = DTMF[key]
        return [6000 * (math.sin(2 * math.pi * lo * i / RATE) + math.sin(2 * math.pi * hi * i / RATE)) / 2
                for i in range(ms * RATE // 1000)]

    def telev(self, at, key):
        """One key press as RFC 4733: start packets, then three end packets."""
        ev = EVENTS[key]
        ts = self.ts
        for k in range(5):
            end = k >= 3
            dur = 160 * (k + 1) if not end else 160 * 3
            payload = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur)
            self.script.append((at + 0.02 * min(k, 3), self.packet(101, payload, marker=k == 0, ts=ts)))
        self.ts += 160 * 4

    def answered(self):
        self.answer_at = time.monotonic()
        if self.kind == "203":
            for i, key in enumerate("12#"):
                self.telev(0.5 + 0.3 * i, key)
        elif self.kind == "204":
            at = 0.5
            for key in "47":
                at = self.audio_packets(at, self.dtmf_tones(key, 100) + [0] * 800)
        elif self.kind == "205":
            self.telev(0.5, "5")
            self.audio_packets(0.5, self.dtmf_tones("5", 100) + [0] * 800)
        elif self.kind == "207":
            self.audio_packets(0.0, [8000 * math.sin(2 * math.pi * 1000 * i / RATE) for i in range(900 * RATE // 1000)])
            self.bye_at = 1.0
        elif self.kind == "208":
            self.audio_packets(0.0, MACHINE)
        self.script.sort(key=lambda e: e[0])

    def on_rtp(self, data, src):
        if len(data) < 12:
            return
        pt = data[1] & 0x7F
        if pt not in (0, 8):
            return
        self.arrivals.append(time.monotonic())
        ts = struct.unpack("!I", data[4:8])[0]
        if self.last_ts is not None:
            self.ts_steps.add((ts - self.last_ts) & 0xFFFFFFFF)
        self.last_ts = ts
        self.pts.add(pt)
        self.markers += 1 if data[1] & 0x80 else 0
        table = ALAW if pt == 8 else ULAW
        self.audio.extend(table[b] for b in data[12:])
        if self.kind in ("201", "202", "203", "209"):
            self.rtp.sendto(data, src)  # the echo

    def tick(self, now):
        if self.answer_at is None or self.peer is None:
            return
        t = now - self.answer_at
        while self.script and self.script[0][0] <= t:
            self.rtp.sendto(self.script.pop(0)[1], self.peer)
        if self.bye_at is not None and t >= self.bye_at:
            self.bye_at = None
            self.callee.send_bye(self)

    def report(self):
        gaps = sorted((b - a) * 1000 for a, b in zip(self.arrivals, self.arrivals[1:]))
        pick = lambda q: round(gaps[min(len(gaps) - 1, int(q * len(gaps)))], 1) if gaps else 0
        return {"number": self.number, "pts": sorted(self.pts), "packets": len(self.arrivals),
                "markers": self.markers, "ts_steps": sorted(self.ts_steps), "gap_p50": pick(0.5), "gap_p99": pick(0.99),
                "gap_max": round(gaps[-1], 1) if gaps else 0,
                "share_1000": round(share_at(self.audio, 1000), 3),
                "referred_to": self.referred_to, "x_headers": sorted(self.x_headers)}


class Callee:
    def __init__(self, report):
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.report = report
        self.calls = {}

    def parse(self, data):
        head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs.setdefault(name.strip().lower(), []).append(value.strip())
        return {"start": lines[0], "hdrs": hdrs, "body": body}

    def reply(self, msg, src, code, reason, to_tag=None, body=""):
        h = msg["hdrs"]
        to = h["to"][0] + (";tag=" + to_tag if to_tag and "tag=" not in h["to"][0] else "")
        out = ["SIP/2.0 %d %s" % (code, reason)]
        out += ["Via: " + v for v in h.get("via", [])]
        out += ["From: " + h["from"][0], "To: " + to, "Call-ID: " + h["call-id"][0],
                "CSeq: " + h["cseq"][0], "Contact: <sip:callee@127.0.0.1:%d>" % self.port]
        if body:
            out.append("Content-Type: application/sdp")
        out.append("Content-Length: %d" % len(body.encode()))
        self.sip.sendto(("\r\n".join(out) + "\r\n\r\n" + body).encode(), src)

    def send_bye(self, call):
        h = call.msg["hdrs"]
        contact = re.search(r"<([^>]+)>", h["contact"][0]).group(1)
        to_hdr = h["to"][0] + ";tag=" + call.tag
        req = ["BYE %s SIP/2.0" % contact,
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%08x;rport" % (self.port, random.getrandbits(32)),
               "Max-Forwards: 70", "From: " + to_hdr, "To: " + h["from"][0],
               "Call-ID: " + h["call-id"][0], "CSeq: 1 BYE", "Content-Length: 0"]
        self.sip.sendto(("\r\n".join(req) + "\r\n\r\n").encode(), call.src)
        self.end(call)

    def end(self, call):
        if call.done:
            return
        call.done = True
        with open(self.report, "a") as f:
            f.write(json.dumps(call.report()) + "\n")

    def on_sip(self, data, src):
        msg = self.parse(data)
        start = msg["start"]
        if start.startswith("SIP/2.0"):
            return  # a response to our BYE
        method = start.split(" ")[0]
        cid = msg["hdrs"].get("call-id", [""])[0]
        if method == "INVITE":
            if cid in self.calls:
                return  # a retransmission: our 200 is on its way
            call = Call(self, msg, src)
            self.calls[cid] = call
            if call.kind == "206":
                self.reply(msg, src, 486, "Busy Here", call.tag)
                call.done = True
                return
            self.reply(msg, src, 200, "OK", call.tag, call.sdp())
            call.answered()
        elif method == "BYE":
            self.reply(msg, src, 200, "OK")
            if cid in self.calls:
                self.end(self.calls[cid])
        elif method == "REFER":
            call = self.calls.get(cid)
            if call and call.kind == "209":
                self.reply(msg, src, 202, "Accepted")
                call.bye_at = time.monotonic() - call.answer_at + 0.1
                call.referred_to = msg["hdrs"].get("refer-to", [""])[0]
            else:
                self.reply(msg, src, 501, "Not Implemented")
        elif method == "CANCEL":
            self.reply(msg, src, 200, "OK")
        elif method != "ACK":
            self.reply(msg, src, 200, "OK")

    def serve(self):
        sys.stdout.write("%d\n" % self.port)  # one write: the reader may close then
        sys.stdout.flush()
        while True:
            live = [c for c in self.calls.values() if not c.done]
            socks = [self.sip] + [c.rtp for c in live]
            ready, _, _ = select.select(socks, [], [], 0.005)
            for s in ready:
                data, src = s.recvfrom(4096)
                if s is self.sip:
                    self.on_sip(data, src)
                else:
                    for c in live:
                        if c.rtp is s:
                            c.on_rtp(data, src)
            now = time.monotonic()
            for c in live:
                c.tick(now)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    random.seed(os.getpid())
    MACHINE = machine_greeting()
    Callee(sys.argv[1]).serve()
