"""The fixed recordings that tests/integration/test_sip.c (and the sim
carrier) play by name from the small corpus, made as corpus v1 made them:
espeak-ng en-us at 175 words/min, band-limited by sox, white noise, mu-law.
They are in the manifest with split "fixture", which eval_detect leaves out
of its tables."""

import os
import subprocess
import tempfile

import numpy as np

import detect_corpus_audio as au
from detect_corpus_audio import RATE, silence


def _speak(text):
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-w", wav, text], check=True)
        raw = subprocess.run(["sox", "-R", "-D", wav, "-r", str(RATE), "-c", "1", "-b", "16",
                              "-e", "signed", "-t", "raw", "-", "sinc", "300-3400", "gain", "-n",
                              "-6", "silence", "1", "0.02", "0.5%", "reverse", "silence", "1",
                              "0.02", "0.5%", "reverse"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def _v1_tone(freqs, s, peak_dbfs):
    t = np.arange(int(s * RATE)) / RATE
    amp = 32767 * 10 ** (peak_dbfs / 20) / len(freqs)
    return sum(amp * np.sin(2 * np.pi * f * t) for f in freqs)


def _finish(x, noise_db):
    if noise_db is not None:
        x = x + np.random.default_rng(7).normal(0, 32767 * 10 ** (noise_db / 20), len(x))
    return au.codec(x, "ulaw")


def make():
    """[(name, label, samples int16, early, greeting_end, beep)] in samples."""
    out = []
    lead = silence(0.45)
    yes, sam = _speak("Yes,"), _speak("this is Sam speaking.")
    voice = np.concatenate([lead, yes, silence(0.9), sam, silence(4)])
    out.append(("voice4-en-us-175-clean", "voice", _finish(voice, None), 0, len(lead) + len(yes),
                -1))
    greeting = _speak("Thank you for calling Acme Dental. Our office is currently closed. Our "
                      "hours are Monday to Friday, nine to five.")
    clip = np.concatenate([silence(0.3), greeting, silence(0.3)])
    machine = np.concatenate([clip, _v1_tone([1000], 0.5, -12), silence(2)])
    for name, noise in (("machine1-en-us-175-clean", None), ("machine1-en-us-175-n40", -40)):
        out.append((name, "answeringmachine", _finish(machine, noise), 0, -1, len(clip)))
    cng = [silence(0.5)]
    for _ in range(2):
        cng += [_v1_tone([1100], 0.5, -10), silence(3)]
    out.append(("fax-cng10-clean", "fax", _finish(np.concatenate(cng), None), 0, -1, -1))
    sit = [silence(0.1)] + [_v1_tone([f], s, -15) for f, s in au.SIT_NA[0]]
    sit.append(_speak("We're sorry, the number you have dialed is not in service. Please check "
                      "the number and dial again."))
    sit = np.concatenate(sit)
    out.append(("sit0-early-clean", "informationtone", _finish(sit, None), len(sit), -1, -1))
    return out
