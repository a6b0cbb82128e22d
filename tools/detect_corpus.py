#!/usr/bin/python3
"""Generates the labelled callee-type corpus for ob_detect (make eval-detect,
make test), offline: speech from three engines (espeak-ng, flite, festival)
and from people's recorded prompts (Debian's asterisk sound packages), cut
into strata (short and long first words, receptionists, repeated hellos,
people over background talk; greetings short and long, with and without a
beep, double beeps, greetings that open like a person, carrier and
mailbox-full messages; fax CNG, CED early and late, ANSam; North American and
ITU information tones; ringback and early media before the answer; silence),
each through a drawn telephone channel (G.711 mu-law or A-law, GSM, packet
loss with concealment, comfort noise, level, white/pink/brown noise or
babble at 10-40 dB SNR). See docs/detection.md.

Two splits: "dev", to tune on, and "test", frozen: its own seed, and phrases,
prompts, engine voices and recorded speakers the dev split never has.

Usage: detect_corpus.py OUTDIR [--small] [--per-stratum N] [--jobs N]
                               [--cache DIR]
  full (default): both splits, 40 recordings per stratum each;
  --small: the dev split's first 3 per stratum (the same recordings as the
  full corpus's), and the fixed recordings test_sip plays by name.
Writes OUTDIR/NAME.raw (8 kHz signed 16-bit little-endian mono),
OUTDIR/manifest.tsv, one recording a line: name, label, early_ms (audio
before the answer), greeting_end_ms (end of a person's first words after the
answer, else -1), beep_ms (start of a machine's beep after the answer, else
-1), stratum, split, onset_ms (when the callee's own sound starts after the
answer, else -1: ringback heard after the answer comes before it), channel,
source; and OUTDIR/test-split.sha256, the
SHA-256 of the test split's manifest lines (eval_detect checks it against
tests/detect/test-split.sha256). Engine renders are cached in --cache
(default OUTDIR/../cache)."""

import argparse
import hashlib
import multiprocessing
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detect_corpus_audio as au  # noqa: E402
import detect_corpus_fixtures  # noqa: E402
from detect_corpus_audio import RATE  # noqa: E402
from detect_corpus_speech import Speech  # noqa: E402
from detect_corpus_strata import STRATA, Ctx, onset  # noqa: E402

SEEDS = {"dev": "dev-2026-1", "test": "test-2026-2"}
_speech = None  # per worker process


def _init(cache):
    global _speech
    _speech = Speech(cache)


def ms(n):
    return -1 if n < 0 else int(n) * 1000 // RATE


def make_one(job):
    """Makes one recording (split, stratum index, number); writes its .raw
    file and returns its manifest row."""
    out, split, k, i = job
    stratum, label, maker = STRATA[k]
    rng = random.Random(f"{SEEDS[split]}/{stratum}/{i}")
    crng = random.Random(f"{SEEDS[split]}/{stratum}/{i}/channel")
    nrng = np.random.default_rng(rng.getrandbits(63))
    c = Ctx(split, rng, nrng, _speech)
    rec = maker(c)
    early = rec["early"]
    pad = (-len(early)) % (RATE // 1000)  # the answer on a whole ms
    if len(early):
        early = np.concatenate([np.zeros(pad), early])
    x = np.concatenate([early, rec["after"]])
    spec = au.draw_channel(crng)
    pcm = au.channel(x, rec["ref"], spec, crng, nrng, c.babble_clips() if spec["noise"] ==
                     "babble" else None)
    name = f"{split}-{stratum}-{i:03d}"
    with open(os.path.join(out, name + ".raw"), "wb") as f:
        f.write(pcm.tobytes())
    start = rec["onset"] if "onset" in rec else onset(rec["after"])
    return (name, rec["label"] if label == "*" else label, ms(len(early)), ms(rec["greeting_end"]),
            ms(rec["beep"]), stratum, split, ms(start), au.channel_name(spec), c.source)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--per-stratum", type=int)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--cache")
    a = ap.parse_args()
    out = a.outdir
    os.makedirs(out, exist_ok=True)
    cache = a.cache or os.path.join(os.path.dirname(os.path.abspath(out.rstrip("/"))), "cache")
    splits = ["dev"] if a.small else ["dev", "test"]
    per = a.per_stratum or (3 if a.small else 40)
    jobs = [(out, s, k, i) for s in splits for k in range(len(STRATA)) for i in range(per)]
    start = time.monotonic()
    with multiprocessing.Pool(max(1, a.jobs), initializer=_init, initargs=(cache,)) as pool:
        rows = pool.map(make_one, jobs, chunksize=4)
    if a.small:
        for name, label, pcm, early, gend, beep in detect_corpus_fixtures.make():
            with open(os.path.join(out, name + ".raw"), "wb") as f:
                f.write(pcm.tobytes())
            rows.append((name, label, ms(early), ms(gend), ms(beep), "fixture", "fixture",
                         ms(onset(pcm[early:])), "ulaw", "espeak:en-us"))
    lines = ["\t".join(map(str, r)) + "\n" for r in rows]
    with open(os.path.join(out, "manifest.tsv.tmp"), "w") as f:
        f.writelines(lines)
    os.replace(os.path.join(out, "manifest.tsv.tmp"), os.path.join(out, "manifest.tsv"))
    digest = hashlib.sha256("".join(ln for ln in lines
                                    if ln.split("\t")[6] == "test").encode()).hexdigest()
    with open(os.path.join(out, "test-split.sha256"), "w") as f:
        f.write(digest + "\n")
    keep = {r[0] + ".raw" for r in rows}
    for f in os.listdir(out):  # recordings of an older corpus
        if f.endswith(".raw") and f not in keep:
            os.remove(os.path.join(out, f))
    print(f"detect corpus: {len(rows)} recordings in {out} "
          f"({len(STRATA)} strata, {'+'.join(splits)}), {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
