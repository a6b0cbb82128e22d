#!/usr/bin/python3
"""Generates the labelled callee-type corpus for ob_detect (make eval-detect,
make test): people answering and voicemail greetings spoken by espeak-ng in
several voices and speeds, fax CNG and CED, special information tones with an
announcement, silence and ringback; band-limited to 300-3400 Hz by sox, with
line noise at several levels, mu-law encoded and decoded as a call would be.
Nothing is downloaded.

Usage: detect_corpus.py OUTDIR [--small]
Writes OUTDIR/NAME.raw (8 kHz signed 16-bit little-endian mono) and
OUTDIR/manifest.tsv: name, label, early_ms (audio before the answer),
greeting_end_ms (end of the first words after the answer, people only),
beep_ms (start of a machine's beep after the answer, or -1)."""

import array
import math
import os
import random
import subprocess
import sys
import tempfile

RATE = 8000
FULL = {
    "voices": ["en-us", "en-us+f3", "en-gb", "en-gb-scotland+m3", "en-029", "en-us+f4"],
    "speeds": [140, 175, 210],
    "noise": [None, -45, -35],
}
SMALL = {"voices": ["en-us", "en-gb+f3"], "speeds": [175], "noise": [None, -40]}

# What people say when they pick up; a tuple is words, a pause (s), words.
PEOPLE = [
    "Hello?",
    "Hello, who is this?",
    "Yes?",
    "Hi, Sam speaking.",
    ("Yes,", 0.9, "this is Sam speaking."),
    ("Hello?", 1.2, "Hello?"),
]
GREETINGS = [
    "Hi, you've reached the voicemail of John Smith. I can't take your call right now. "
    "Please leave your name and number after the tone.",
    "Thank you for calling Acme Dental. Our office is currently closed. Our hours are "
    "Monday to Friday, nine to five.",
    "The person you are trying to reach is not available. At the tone, please record your "
    "message. When you have finished recording, you may hang up.",
    "Hey, it's Maria, leave a message.",
    "You have reached five five five, zero one nine nine. Please leave a message after the beep.",
]
ANNOUNCEMENTS = [
    "We're sorry, the number you have dialed is not in service. Please check the number "
    "and dial again.",
    "The number you have reached has been disconnected.",
]
SIT = [((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380)),
       ((985.2, 0.380), (1428.5, 0.274), (1776.7, 0.380))]
BEEPS = [None, (1000, 0.5), (1400, 0.3), (850, 0.8)]


def silence(s):
    return [0] * int(s * RATE)


def tone(freqs, s, dbfs=-12):
    amp = 32767 * 10 ** (dbfs / 20) / len(freqs)
    return [int(sum(amp * math.sin(2 * math.pi * f * i / RATE) for f in freqs))
            for i in range(int(s * RATE))]


_spoken = {}


def speak(text, voice, speed, tmp):
    """text spoken by espeak-ng at 8 kHz, 300-3400 Hz, silence trimmed."""
    key = (text, voice, speed)
    if key not in _spoken:
        wav, raw = os.path.join(tmp, "s.wav"), os.path.join(tmp, "s.raw")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", wav, text], check=True)
        subprocess.run(["sox", wav, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed",
                        "-t", "raw", raw, "sinc", "300-3400", "gain", "-n", "-6",
                        "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02",
                        "0.5%", "reverse"], check=True)
        _spoken[key] = array.array("h", open(raw, "rb").read()).tolist()
    return _spoken[key]


def words(parts, voice, speed, tmp):
    """Speech for a phrase or (words, pause, words); and where the first
    words end, in samples."""
    if isinstance(parts, str):
        s = speak(parts, voice, speed, tmp)
        return s, len(s)
    first = speak(parts[0], voice, speed, tmp)
    return first + silence(parts[1]) + speak(parts[2], voice, speed, tmp), len(first)


def finish(samples, noise_db, rng, tmp):
    """Adds white noise at noise_db dBFS, then mu-law encodes and decodes."""
    if noise_db is not None:
        sigma = 32767 * 10 ** (noise_db / 20)
        samples = [s + rng.gauss(0, sigma) for s in samples]
    lin = array.array("h", (max(-32768, min(32767, int(s))) for s in samples))
    src, ul = os.path.join(tmp, "c.raw"), os.path.join(tmp, "c.ul")
    lin.tofile(open(src, "wb"))
    raw = ["-t", "raw", "-r", str(RATE), "-c", "1"]
    subprocess.run(["sox"] + raw + ["-e", "signed", "-b", "16", src] + raw + ["-e", "mu-law", ul],
                   check=True)
    subprocess.run(["sox"] + raw + ["-e", "mu-law", ul] + raw + ["-e", "signed", "-b", "16", src],
                   check=True)
    return open(src, "rb").read()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out, sizes = sys.argv[1], SMALL if "--small" in sys.argv else FULL
    os.makedirs(out, exist_ok=True)
    rng = random.Random(7)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        def emit(name, label, samples, noise, early=0, greeting_end=-1, beep=-1):
            tag = "clean" if noise is None else f"n{-noise}"
            name = f"{name}-{tag}"
            with open(os.path.join(out, name + ".raw"), "wb") as f:
                f.write(finish(samples, noise, rng, tmp))
            ms = lambda n: -1 if n < 0 else n * 1000 // RATE  # noqa: E731
            rows.append((name, label, ms(early), ms(greeting_end), ms(beep)))

        for noise in sizes["noise"]:
            for v, voice in enumerate(sizes["voices"]):
                for speed in sizes["speeds"]:
                    tag = f"{voice.replace('+', '_')}-{speed}"
                    for i, phrase in enumerate(PEOPLE):
                        lead = silence(rng.uniform(0.2, 0.7))
                        speech, first = words(phrase, voice, speed, tmp)
                        emit(f"voice{i}-{tag}", "voice", lead + speech + silence(4), noise,
                             greeting_end=len(lead) + first)
                    for i, text in enumerate(GREETINGS):
                        lead = silence(rng.uniform(0.1, 0.5))
                        speech = speak(text, voice, speed, tmp)
                        beep = BEEPS[(i + v) % len(BEEPS)]
                        clip = lead + speech + silence(0.3)
                        at = len(clip) if beep else -1
                        if beep:
                            clip += tone([beep[0]], beep[1])
                        emit(f"machine{i}-{tag}", "answeringmachine", clip + silence(2), noise,
                             beep=at)
            for level in (-10, -25):
                cng = silence(0.5)
                for _ in range(2):
                    cng += tone([1100], 0.5, level) + silence(3)
                emit(f"fax-cng{-level}", "fax", cng, noise)
                emit(f"fax-ced{-level}", "fax", silence(0.2) + tone([2100], 3.3, level) +
                     silence(1), noise)
            for i, sit in enumerate(SIT):
                for early in (False, True):
                    voice = sizes["voices"][i % len(sizes["voices"])]
                    clip = silence(0.1)
                    for f, s in sit:
                        clip += tone([f], s, -15)
                    clip += speak(ANNOUNCEMENTS[i % len(ANNOUNCEMENTS)], voice, 175, tmp)
                    emit(f"sit{i}-{'early' if early else 'answered'}", "informationtone",
                         clip, noise, early=len(clip) if early else 0)
            emit("silence", "unknown", silence(6), noise)
            ring = []
            for _ in range(2):
                ring += tone([440, 480], 2, -15) + silence(4)
            emit("ringback", "unknown", ring + silence(4), noise, early=len(ring))
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    print(f"detect corpus: {len(rows)} recordings in {out}")


if __name__ == "__main__":
    main()
