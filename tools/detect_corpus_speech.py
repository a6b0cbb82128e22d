"""Speech for the callee-type corpus (tools/detect_corpus.py): text spoken by
three engines (espeak-ng, flite, festival) and prompts recorded by people
(Debian's asterisk-core-sounds-* and asterisk-prompt-* packages: CC BY-SA
3.0, CC BY 3.0, BSD-style and GPL-2), at 8 kHz with their leading and
trailing silence trimmed and their active level at -20 dBFS. Engine renders
and decoded prompts are cached on disk (the cache directory), keyed by what
made them, so a rebuild speaks nothing twice."""

import hashlib
import os
import subprocess
import tempfile

import numpy as np

from detect_corpus_audio import FRAME, RATE, at_level

SOUNDS = "/usr/share/asterisk/sounds"

# Engine voices: (engine, voice, speed). espeak-ng's speed is words per
# minute; flite's and festival's a duration stretch (1.0 as recorded).
# The development and test splits hear different voices.
VOICES = {
    "dev": [("espeak", "en-us", 165), ("espeak", "en-gb+f3", 180), ("espeak", "en-029", 150),
            ("flite", "kal", 1.0), ("flite", "slt", 1.1),
            ("festival", "kal_diphone", 1.0), ("festival", "cmu_us_slt_arctic_hts", 1.0)],
    "test": [("espeak", "en-gb-scotland+m3", 170), ("espeak", "en-us+f4", 190),
             ("flite", "awb", 1.0), ("flite", "rms", 1.1),
             ("festival", "ked_diphone", 1.0)],
}
# People who recorded prompts (a directory of SOUNDS each). The English
# speaker is in both splits with different prompts (see detect_corpus.py);
# every other speaker is in one split only.
SPEAKERS = {
    "dev": ["en_US_f_Allison", "it_IT_m_Carlo", "es_MX_f_Allison", "es"],
    "test": ["en_US_f_Allison", "fr_CA_f_June", "ru_RU_f_IvrvoiceRU", "fr"],
}


def voice_name(v):
    return f"{v[0]}:{v[1]}"


class Speech:
    """Renders and caches speech; one per worker process."""

    def __init__(self, cache):
        self.cache = cache
        os.makedirs(cache, exist_ok=True)
        self.memo = {}

    def _cached(self, key, make):
        if key in self.memo:
            return self.memo[key]
        h = hashlib.sha1(repr(key).encode()).hexdigest()[:20]
        path = os.path.join(self.cache, h + ".raw")
        if not os.path.exists(path):
            x = make()
            tmp = f"{path}.{os.getpid()}"
            x.astype("<f4").tofile(tmp)
            os.replace(tmp, path)
        x = np.fromfile(path, dtype="<f4").astype(np.float64)
        self.memo[key] = x
        return x

    def say(self, text, voice):
        """text spoken by an engine voice (see VOICES)."""
        return self._cached(("tts", 2, voice, text), lambda: _render(text, voice))

    def prompt(self, speaker, name):
        """A recorded prompt (file name without extension), or None when the
        speaker did not record it."""
        base = os.path.join(SOUNDS, speaker, name)
        for ext in (".wav", ".gsm"):
            if os.path.exists(base + ext):
                return self._cached(("rec", 3, speaker, name), lambda: _decode(base + ext))
        return None

    def prompts(self, speaker, names):
        """Prompts one after another with 60-150 ms between them (a sentence
        cut together), or None when one is missing."""
        out, after_words = [], False
        for n in names:
            if isinstance(n, float):
                out.append(np.zeros(int(n * RATE)))
                after_words = False
                continue
            p = self.prompt(speaker, n)
            if p is None:
                return None
            if after_words:
                out.append(np.zeros(int(0.09 * RATE)))
            out.append(p)
            after_words = True
        return np.concatenate(out)


def trim(x, floor_db=-40):
    """x without its leading and trailing frames quieter than floor_db below
    its loudest frame; at -20 dBFS active level."""
    n = len(x) // FRAME
    if n == 0:
        return x
    e = np.mean(np.square(x[: n * FRAME]).reshape(n, FRAME), axis=1)
    loud = np.nonzero(e >= e.max() * 10 ** (floor_db / 10))[0]
    x = x[loud[0] * FRAME:(loud[-1] + 1) * FRAME]
    return at_level(x, -20)


def _to_8k(path, fmt=()):
    """8 kHz 16-bit samples of an audio file: no dither (-D) and sox's
    random numbers repeatable (-R), so that the same input gives the same
    corpus, bit for bit."""
    out = subprocess.run(["sox", "-R", "-D", *fmt, path, "-r", str(RATE), "-c", "1", "-b", "16",
                          "-e", "signed", "-t", "raw", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def _decode(path):
    fmt = ("-t", "gsm", "-r", str(RATE), "-c", "1") if path.endswith(".gsm") else ()
    x = _to_8k(path, fmt)
    return trim(x - np.mean(x))  # some prompts carry a DC offset


def _render(text, voice):
    engine, name, speed = voice
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "s.wav")
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", name, "-s", str(speed), "-w", wav, text]
        elif engine == "flite":
            cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={speed}", "-t", text,
                   "-o", wav]
        elif engine == "festival":
            txt = os.path.join(tmp, "s.txt")
            with open(txt, "w") as f:
                f.write(text)
            cmd = ["text2wave", "-eval", f"(voice_{name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {speed})", "-o", wav, txt]
        else:
            raise ValueError(f"unknown engine {engine}")
        subprocess.run(cmd, check=True, capture_output=True)
        return trim(_to_8k(wav))
