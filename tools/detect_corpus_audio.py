"""Signals and telephone channels for the callee-type corpus
(tools/detect_corpus.py): tones (beeps, fax CNG, CED, ANSam and V.21 flags,
special information tones, ringback), noise of several colours and babble,
and the channel a call's audio goes through (band limit, level, noise,
packet loss with concealment, comfort noise, G.711 or GSM). Float samples
at 8 kHz on the int16 scale (full scale 32767)."""

import audioop  # noqa: F401  (G.711; deprecated in 3.11, present until 3.13)
import subprocess

import numpy as np

RATE = 8000
FULL = 32767.0
FRAME = 160  # 20 ms, one RTP packet


def silence(s):
    return np.zeros(int(round(s * RATE)))


def dbfs(level):
    return FULL * 10 ** (level / 20)


def tone(freqs, s, level=-12.0, ramp=0.005):
    """A sum of sines, total RMS at level dBFS, 5 ms ramps (no clicks)."""
    t = np.arange(int(round(s * RATE))) / RATE
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    x *= dbfs(level) / max(rms(x), 1e-9)
    r = min(int(ramp * RATE), len(x) // 2)
    if r:
        w = np.linspace(0, 1, r)
        x[:r] *= w
        x[-r:] *= w[::-1]
    return x


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def active_rms(x):
    """RMS over the 20 ms frames within 30 dB of the loudest: the level of
    speech without its pauses."""
    n = len(x) // FRAME
    if n == 0:
        return rms(x)
    e = np.mean(np.square(x[: n * FRAME]).reshape(n, FRAME), axis=1)
    act = e[e >= e.max() * 1e-3]
    return float(np.sqrt(np.mean(act)))


def at_level(x, level):
    """x scaled so that its active RMS is level dBFS."""
    return x * (dbfs(level) / max(active_rms(x), 1e-9))


def beep(freq, s, level):
    return tone([freq], s, level)


def double_beep(freq, level, rng):
    on, gap = rng.uniform(0.12, 0.3), rng.uniform(0.08, 0.2)
    return np.concatenate([beep(freq, on, level), silence(gap), beep(freq, on, level)])


def cng(s, level):
    """Calling fax tone: 1100 Hz, 0.5 s on, 3 s off."""
    out = []
    while sum(map(len, out)) < s * RATE:
        out += [tone([1100], 0.5, level), silence(3)]
    return np.concatenate(out)[: int(s * RATE)]


def v21_flags(s, level):
    """V.21 channel 2 HDLC flags (0x7E at 300 bit/s, 1650/1850 Hz FSK): what
    a fax sends after its answer tone."""
    bits = [int(b) for b in "01111110"] * int(s * 300 / 8 + 1)
    spb = RATE / 300
    f = np.repeat([1650.0 if b else 1850.0 for b in bits], int(spb))[: int(s * RATE)]
    phase = 2 * np.pi * np.cumsum(f) / RATE
    return np.sin(phase) * dbfs(level) * np.sqrt(2)


def ced(s, level):
    return tone([2100], s, level)


def ansam(s, level):
    """V.8 ANSam: 2100 Hz, amplitude modulated by 15 Hz (20%), its phase
    reversed every 450 ms."""
    t = np.arange(int(s * RATE)) / RATE
    flips = np.floor(t / 0.45) % 2
    x = np.sin(2 * np.pi * 2100 * t + np.pi * flips) * (1 + 0.2 * np.sin(2 * np.pi * 15 * t))
    return x * dbfs(level) * np.sqrt(2) / 1.01


SIT_NA = [((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380)),
          ((985.2, 0.380), (1428.5, 0.274), (1776.7, 0.380)),
          ((913.8, 0.380), (1370.6, 0.274), (1776.7, 0.380)),
          ((985.2, 0.274), (1370.6, 0.380), (1776.7, 0.380))]


def sit_na(variant, level):
    return np.concatenate([tone([f], s, level) for f, s in SIT_NA[variant]])


def sit_itu(level, rng):
    """ITU-T E.180 special information tone: 950, 1400, 1800 Hz (each within
    50 Hz), 330 ms each with gaps of up to 30 ms."""
    out = []
    for f in (950, 1400, 1800):
        out += [tone([f + rng.uniform(-15, 15)], 0.33, level), silence(rng.uniform(0, 0.03))]
    return np.concatenate(out)


RINGBACK = {  # (frequencies, cadence on/off seconds)
    "na": ((440, 480), (2.0, 4.0)),
    "uk": ((400, 450), (0.4, 0.2, 0.4, 2.0)),
    "eu": ((425,), (1.0, 4.0)),
    "jp": ((400, 416), (1.0, 2.0)),
}


def ringback(kind, cycles, level):
    freqs, cadence = RINGBACK[kind]
    out = []
    for _ in range(cycles):
        for i, s in enumerate(cadence):
            out.append(tone(freqs, s, level) if i % 2 == 0 else silence(s))
    return np.concatenate(out)


def melody(s, level, rng):
    """Hold music stand-in: notes of a triad with their harmonics."""
    out = []
    root = rng.uniform(220, 330)
    while sum(map(len, out)) < s * RATE:
        f = root * 2 ** (rng.choice([0, 4, 7, 12, 16]) / 12)
        out.append(tone([f, 2 * f, 3 * f], rng.uniform(0.15, 0.5), level, ramp=0.03))
    return np.concatenate(out)[: int(s * RATE)]


def coloured(kind, n, nrng):
    """White, pink (1/f power) or brown (1/f^2) noise of unit RMS."""
    w = nrng.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1] if n > 1 else 1
    spec /= np.sqrt(f) if kind == "pink" else f
    x = np.fft.irfft(spec, n)
    return x / max(rms(x), 1e-9)


def babble(n, clips, rng, voices=5):
    """Background talk of unit RMS: several streams of speech clips one after
    another, overlaid."""
    total = np.zeros(n)
    for _ in range(voices):
        stream, have = [], 0
        have = -int(rng.uniform(0, 2) * RATE)
        while have < n:
            c = clips[rng.randrange(len(clips))] * rng.uniform(0.5, 1.0)
            stream.append(c)
            gap = silence(rng.uniform(0.05, 0.4))
            stream.append(gap)
            have += len(c) + len(gap)
        s = np.concatenate(stream)
        off = rng.randrange(0, max(1, len(s) - n))
        total += s[off:off + n]
    return total / max(rms(total), 1e-9)


def bandpass(x, lo=300.0, hi=3400.0):
    """The telephone band, by FFT mask with 100 Hz skirts."""
    if len(x) < 2:
        return x
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    mask = np.clip((f - (lo - 100)) / 100, 0, 1) * np.clip(((hi + 100) - f) / 100, 0, 1)
    return np.fft.irfft(spec * mask, len(x))


def packet_loss(x, rate, rng):
    """Loses 20 ms packets (in bursts of 1-3) and conceals each by repeating
    the last packet played, as a jitter buffer without PLC does."""
    y = x.copy()
    i = FRAME
    while i + FRAME <= len(y):
        if rng.random() < rate:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                if i + FRAME > len(y):
                    break
                y[i:i + FRAME] = y[i - FRAME:i]
                i += FRAME
        i += FRAME
    return y


def comfort_noise(x, level, nrng):
    """Discontinuous transmission: packets quieter than -55 dBFS are replaced
    by comfort noise at level dBFS, its level refreshed per 20 ms (SID)."""
    y = x.copy()
    floor = dbfs(-55)
    for i in range(0, len(y) - FRAME + 1, FRAME):
        if rms(y[i:i + FRAME]) < floor:
            y[i:i + FRAME] = nrng.standard_normal(FRAME) * dbfs(level + nrng.uniform(-1.5, 1.5))
    return y


def to_int16(x):
    return np.clip(np.round(x), -32768, 32767).astype("<i2")


def codec(x, kind):
    """Encodes and decodes: "ulaw", "alaw" (G.711) or "gsm" (GSM 06.10 by
    sox). Returns int16 samples."""
    pcm = to_int16(x).tobytes()
    if kind == "ulaw":
        pcm = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
    elif kind == "alaw":
        pcm = audioop.alaw2lin(audioop.lin2alaw(pcm, 2), 2)
    elif kind == "gsm":
        raw = ["-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed", "-b", "16"]
        sox = ["sox", "-R", "-D"]  # repeatable, no dither: the same corpus every time
        gsm = subprocess.run(sox + raw + ["-", "-t", "gsm", "-"], input=pcm,
                             capture_output=True, check=True).stdout
        pcm = subprocess.run(sox + ["-t", "gsm", "-r", str(RATE), "-c", "1", "-"] + raw + ["-"],
                             input=gsm, capture_output=True, check=True).stdout
        pcm = pcm[: len(x) * 2].ljust(len(x) * 2, b"\0")
    else:
        raise ValueError(f"unknown codec {kind}")
    return np.frombuffer(pcm, dtype="<i2")


def channel(x, ref_rms, spec, rng, nrng, babble_clips):
    """x through the channel spec (a dict: noise, snr, loss, cn, codec);
    ref_rms is the level noise is set against (the speech's or the tone's).
    Returns int16 samples."""
    y = x.copy()
    if spec["noise"] != "none":
        if spec["noise"] == "babble":
            noise = babble(len(y), babble_clips, rng, voices=rng.randint(4, 7))
        else:
            noise = coloured(spec["noise"], len(y), nrng)
        y += bandpass(noise) * ref_rms * 10 ** (-spec["snr"] / 20)
    y = bandpass(y)
    if spec["cn"]:
        y = comfort_noise(y, spec["cn"], nrng)
    if spec["loss"]:
        y = packet_loss(y, spec["loss"], rng)
    return codec(y, spec["codec"])


def draw_channel(rng):
    """A channel: codec, noise colour and SNR, packet loss, comfort noise."""
    spec = {"codec": rng.choice(["ulaw", "ulaw", "alaw", "alaw", "gsm"]),
            "noise": rng.choice(["none", "white", "pink", "brown", "babble"]),
            "snr": rng.choice([10, 15, 20, 25, 30, 40]),
            "loss": rng.choice([0, 0, 0, 0, 0, 0, 0.01, 0.03, 0.05]),
            "cn": rng.choice([0, 0, 0, 0, 0, 0, -60, -52])}
    return spec


def channel_name(spec):
    parts = [spec["codec"]]
    if spec["noise"] != "none":
        parts.append(f"{spec['noise']}{spec['snr']}")
    if spec["loss"]:
        parts.append(f"loss{int(spec['loss'] * 100)}")
    if spec["cn"]:
        parts.append(f"cn{-spec['cn']}")
    return "+".join(parts)
