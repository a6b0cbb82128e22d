"""The strata of the callee-type corpus (tools/detect_corpus.py): what each
kind of answer sounds like and how it is labelled. Each stratum makes one
recording from a random draw: its audio before the answer (early media) and
after it, the label, where a person's first words end and where a machine's
beep starts. Phrases and recorded prompts are split: the test split speaks
phrases and prompts the development split never does (and voices and
speakers of its own, detect_corpus_speech.py)."""

import numpy as np

import detect_corpus_audio as au
from detect_corpus_audio import RATE, silence
from detect_corpus_speech import SPEAKERS, VOICES, voice_name

# Engine phrases per stratum and split; a tuple is words, a pause, words.
TEXT = {
    "person_short": {
        "dev": ["Hello?", "Yes?", "Hi, Sam speaking.", "Hello, this is Dana.", "Yeah, hello?",
                "Speaking."],
        "test": ["Hello, who's this?", "Hi there.", "Yes, hello?", "Tom here."],
    },
    "person_long": {
        "dev": ["Hi, this is Dana, who's calling please?",
                "Yes, this is the Miller residence, Tom speaking, can I help you?",
                "Hello, you've got Rachel, what can I do for you?",
                ("Yes,", 0.4, "this is Sam speaking, who is this?")],
        "test": ["Hello, this is Mark Davis speaking, how can I help you today?",
                 "Hi, yes, this is she, who's calling please?",
                 ("Hello?", 0.5, "Yes, this is Jane, sorry, I was just in the other room.")],
    },
    "receptionist": {
        "dev": ["Good afternoon, law offices of Baker and Price, how may I direct your call?",
                "Thank you for calling Riverside Dental, this is Amy, how can I help you?",
                "Good morning, Acme Plumbing and Heating, Joe speaking, how can I help?"],
        "test": ["Good afternoon, Hartley and Sons Insurance, this is Linda, how may I help you?",
                 "Northside Veterinary Clinic, this is Kevin speaking, what can I do for you?"],
    },
    "hello": {"dev": ["Hello?", "Hello?", "Hi?"], "test": ["Hello?", "Hallo?"]},
    "greeting_long": {
        "dev": ["Hi, you've reached the voicemail of John Smith. I can't take your call right "
                "now. Please leave your name and number after the tone.",
                "Thank you for calling Acme Dental. Our office is currently closed. Our hours "
                "are Monday to Friday, nine to five.",
                "The person you are trying to reach is not available. At the tone, please "
                "record your message. When you have finished recording, you may hang up."],
        "test": ["Hello, you have reached the Johnsons. We're not home right now, but if you "
                 "leave a message we will call you back as soon as we can.",
                 "You have reached the desk of Doctor Patel. I am either on the other line or "
                 "away from my desk. Please leave a detailed message."],
    },
    "greeting_short": {
        "dev": ["Hey, it's Maria, leave a message.", "This is Sam. Leave a message.",
                "You've reached Dave. Talk soon."],
        "test": ["Hi, Jen here, leave one.", "It's Alex, leave a message."],
    },
    "personlike": {
        "dev": [("Hello?", None, "Ha, gotcha! I'm not here, leave a message."),
                ("Hi, this is Sam!", None, "Just kidding, I'm away. Leave your number.")],
        "test": [("Hello?", None, "Sorry, I can't get to the phone, leave a message."),
                 ("Yeah?", None, "Ha, fooled you, this is a machine. You know what to do.")],
    },
    "carrier": {
        "dev": ["The number you have dialed is not in service. Please check the number and "
                "try again.",
                "The wireless customer you are calling is not available. Please try your call "
                "again later."],
        "test": ["We're sorry, your call cannot be completed as dialed.",
                 "The subscriber you have called is not available at the moment."],
    },
    "mailbox_full": {
        "dev": ["The mailbox is full and cannot accept any new messages. Goodbye."],
        "test": ["Sorry, the mailbox of the person you are calling is full."],
    },
    "early": {
        "dev": ["Please hold while we connect your call."],
        "test": ["Please wait, your call is being connected."],
    },
}


def _digits(rng, n):
    return [f"digits/{rng.randint(0, 9)}" for _ in range(n)]


# Recorded prompts cut together per stratum and split (a list of file names
# in a speaker's directory; a float is a pause in seconds; "P" a pause drawn
# by the stratum); lambdas draw digits.
REC = {
    "person_short": {"dev": [["hello"], ["one-moment-please"]],
                     "test": [["hello"], ["im-sorry"]]},
    "person_long": {"dev": [["hello", "one-moment-please"],
                            lambda r: ["hello", 0.2] + _digits(r, 5)],
                    "test": [["hello", "pls-hold-while-try"], ["im-sorry", "one-moment-please"]]},
    "receptionist": {"dev": [["hello", "one-moment-please", 0.25, "pls-hold-while-try"]],
                     "test": [["one-moment-please", 0.2, "pls-hold-while-try"]]},
    "hello": {"dev": [["hello"]], "test": [["hello"]]},
    "greeting_long": {
        "dev": [["vm-nobodyavail", 0.3, "vm-intro"], ["vm-intro"]],
        "test": [lambda r: ["vm-theperson", "vm-extension"] + _digits(r, 4) +
                 ["vm-isunavail", 0.3, "vm-intro"],
                 lambda r: ["vm-theperson", "vm-extension"] + _digits(r, 3) +
                 ["vm-isonphone", 0.25, "vm-intro"]]},
    "greeting_short": {"dev": [["vm-nobodyavail"], ["vm-leavemsg"]],
                       "test": [lambda r: ["vm-extension"] + _digits(r, 3) + ["vm-isunavail"],
                                ["vm-isonphone", 0.2, "vm-leavemsg"]]},
    "personlike": {"dev": [["hello", "P", "vm-nobodyavail"]],
                   "test": [["hello", "P", "vm-leavemsg"]]},
    "carrier": {"dev": [["ss-noservice"], ["all-circuits-busy-now"], ["number-not-answering"]],
                "test": [["cannot-complete-as-dialed"], ["check-number-dial-again"]]},
    "mailbox_full": {"dev": [["vm-mailboxfull", "vm-goodbye"]],
                     "test": [["im-sorry", 0.2, "vm-mailboxfull"]]},
    "early": {"dev": [["pls-hold-while-try"]], "test": [["one-moment-please"]]},
}


_BABBLE = {}  # split: clips, per process


class Ctx:
    """One recording's draw: its split, random sources and speech."""

    def __init__(self, split, rng, nrng, speech):
        self.split, self.rng, self.nrng, self.speech = split, rng, nrng, speech
        self.source = None
        self.who = None  # ("rec", speaker) or ("tts", voice): who spoke last

    def _phrase(self, phrase, voice, pause):
        if isinstance(phrase, str):
            s = self.speech.say(phrase, voice)
            return s, len(s)
        gap = pause if phrase[1] is None else phrase[1]
        first = self.speech.say(phrase[0], voice)
        return np.concatenate([first, silence(gap), self.speech.say(phrase[2], voice)]), len(first)

    def words(self, kind, pause=0.0, recorded=0.4):
        """Speech of a stratum kind, by an engine voice or (with probability
        recorded) a person's recorded prompts; and where its first part ends
        (the whole, unless the phrase has a drawn pause "P"/None)."""
        rng = self.rng
        if recorded and kind in REC and rng.random() < recorded:
            speakers = SPEAKERS[self.split][:]
            rng.shuffle(speakers)
            for spk in speakers:
                tpl = rng.choice(REC[kind][self.split])
                names = tpl(rng) if callable(tpl) else tpl
                first = None
                if "P" in names:
                    cut = names.index("P")
                    head = self.speech.prompts(spk, names[:cut])
                    if head is None:
                        continue
                    first = len(head)
                    names = names[:cut] + [float(pause)] + names[cut + 1:]
                x = self.speech.prompts(spk, names)
                if x is not None:
                    self.source, self.who = f"rec:{spk}", ("rec", spk)
                    return x, len(x) if first is None else first
        voice = rng.choice(VOICES[self.split])
        self.source, self.who = voice_name(voice), ("tts", voice)
        return self._phrase(rng.choice(TEXT[kind][self.split]), voice, pause)

    def babble_clips(self):
        """Speech of the split's voices and speakers to make background talk of."""
        if self.split not in _BABBLE:
            clips = []
            for v in VOICES[self.split]:
                for text in TEXT["greeting_long"][self.split] + TEXT["receptionist"][self.split]:
                    clips.append(self.speech.say(text, v))
            for spk in SPEAKERS[self.split]:
                for n in ("vm-intro", "vm-nobodyavail", "vm-mailboxfull", "ss-noservice"):
                    p = self.speech.prompt(spk, n)
                    if p is not None:
                        clips.append(p)
            _BABBLE[self.split] = clips
        return _BABBLE[self.split]

    def hello_again(self):
        """"Hello?" by whoever spoke last."""
        if self.who[0] == "rec":
            x = self.speech.prompt(self.who[1], "hello")
            if x is not None:
                return x
            return self.speech.say("Hello?", VOICES[self.split][0])
        return self.speech.say("Hello?", self.who[1])


def speech_level(rng):
    return rng.uniform(-30, -10)


def tone_level(rng):
    return rng.uniform(-30, -6)


def onset(x):
    """Where the callee's own sound starts: the first sample that is not
    silence (scenes are made of exact zeros and sound), or -1."""
    nz = np.flatnonzero(np.abs(x) > 1e-6)
    return int(nz[0]) if len(nz) else -1


def _rec(label, after, ref, early=None, greeting_end=-1, beep=-1):
    return {"label": label, "early": early if early is not None else np.zeros(0),
            "after": after, "ref": ref, "greeting_end": greeting_end, "beep": beep}


def person(c, kind, babble=False):
    rng = c.rng
    level = speech_level(rng)
    lead = silence(rng.uniform(0.25, 1.0))
    if kind == "hello":
        one, _ = c.words("hello")
        parts = [one, silence(rng.uniform(0.8, 1.6)), one]
        if rng.random() < 0.4:
            parts += [silence(rng.uniform(0.8, 1.4)), one]
        speech, first = np.concatenate(parts), len(one)
    else:
        speech, _ = c.words(kind)
        first = len(speech)  # the pause inside a sentence is part of it
    tail = [silence(rng.uniform(2.5, 3.5))]
    if rng.random() < 0.5:  # no one answered: "Hello?" again
        tail += [c.hello_again(), silence(1.0)]
    else:
        tail.append(silence(1.5))
    x = np.concatenate([lead, speech] + tail)
    x = au.at_level(x, level)
    ref = au.dbfs(level)
    if babble:
        clips = c.babble_clips()
        x = x + au.babble(len(x), clips, rng) * ref * 10 ** (-rng.uniform(5, 20) / 20)
        c.source += "+babble"
    rec = _rec("voice", x, ref, greeting_end=len(lead) + first)
    rec["onset"] = len(lead)  # the person's, not the background talk's
    return rec


def machine(c, kind, beep="maybe", double=False, pause=(0.2, 1.5)):
    rng = c.rng
    level = speech_level(rng)
    lead = silence(rng.uniform(0.1, 0.8))
    speech, _ = c.words(kind, pause=rng.uniform(1.0, 1.8))
    speech = au.at_level(speech, level)
    if beep == "maybe":
        beep = rng.random() < 0.7
    parts, at = [lead, speech], -1
    if beep:
        parts.append(silence(rng.uniform(*pause)))
        at = sum(map(len, parts))
        freq = round(rng.uniform(400, 2000), -1)
        blevel = level + rng.uniform(-6, 6)
        if double or rng.random() < 0.15:
            parts.append(au.double_beep(freq, blevel, rng))
        else:
            parts.append(au.beep(freq, rng.uniform(0.2, 1.0), blevel))
        parts.append(silence(2.0))
    else:
        parts.append(silence(3.0))
    return _rec("answeringmachine", np.concatenate(parts), au.dbfs(level), beep=at)


def carrier(c, kind):
    rng = c.rng
    level = speech_level(rng)
    speech, _ = c.words(kind, recorded=0.5)
    x = np.concatenate([silence(rng.uniform(0.1, 0.5)), au.at_level(speech, level),
                        silence(2.0)])
    return _rec("answeringmachine", x, au.dbfs(level))


def mailbox_full(c):
    rng = c.rng
    level = speech_level(rng)
    parts = [silence(rng.uniform(0.1, 0.6))]
    if rng.random() < 0.5:  # the owner's greeting first
        g, _ = c.words("greeting_short")
        parts += [g, silence(rng.uniform(0.3, 0.8))]
    m, _ = c.words("mailbox_full", recorded=0.5)
    parts += [m, silence(2.0)]
    return _rec("answeringmachine", au.at_level(np.concatenate(parts), level), au.dbfs(level))


def fax(c, kind):
    rng = c.rng
    level = tone_level(rng)
    c.source = "tone"
    if kind == "cng":
        x = np.concatenate([silence(rng.uniform(0.2, 1.5)), au.cng(8, level)])
    else:
        delay = rng.uniform(0.15, 0.3) if kind == "ced" else rng.uniform(1.8, 2.5)
        if kind == "ansam":
            delay = rng.uniform(0.2, 2.5)
            answer = au.ansam(rng.uniform(2.6, 3.6), level)
        else:
            answer = au.ced(rng.uniform(2.6, 3.6), level)
        x = np.concatenate([silence(delay), answer, silence(0.075),
                            au.v21_flags(1.5, level), silence(1.5)])
    return _rec("fax", x, au.dbfs(level))


def sit(c, family):
    rng = c.rng
    level = tone_level(rng)
    tones = au.sit_na(rng.randrange(len(au.SIT_NA)), level) if family == "na" else \
        au.sit_itu(level, rng)
    msg, _ = c.words("carrier", recorded=0.5)
    clip = np.concatenate([silence(rng.uniform(0.05, 0.3)), tones, silence(rng.uniform(0.05, 0.3)),
                           au.at_level(msg, level - rng.uniform(0, 6)), silence(1.0)])
    c.source = f"sit-{family}+{c.source}"
    if rng.random() < 0.5:  # in early media, never answered
        return _rec("informationtone", np.zeros(0), au.dbfs(level), early=clip)
    return _rec("informationtone", clip, au.dbfs(level))


def _answered(c):
    """What picks up after early media or ringback: a person or a machine."""
    r = c.rng.random()
    if r < 0.5:
        return person(c, "person_short")
    return machine(c, "greeting_long" if r < 0.8 else "greeting_short", beep=True)


def early_media(c, kind):
    rng = c.rng
    level = tone_level(rng)
    rb = rng.choice(sorted(au.RINGBACK))
    if kind == "ringback_early":
        early = au.ringback(rb, rng.randint(1, 3), level)
    else:
        early = None
        if rng.random() < 0.5:
            msg, _ = c.words("early", recorded=0.5)
            early = np.concatenate([au.at_level(msg, level), silence(0.5)])
        if early is None or rng.random() < 0.5:
            music = au.melody(rng.uniform(2, 6), level, rng)
            early = music if early is None else np.concatenate([early, music])
    rec = _answered(c)
    c.source = f"{kind}-{rb}+{c.source}" if kind != "early_media" else f"early+{c.source}"
    if kind == "ringback_answered":  # answered during a ring: its end is heard
        freqs, cadence = au.RINGBACK[rb]
        ring = np.concatenate([au.tone(freqs, rng.uniform(0.3, cadence[0]), level),
                               silence(rng.uniform(0.3, 1.0))])
        rec["after"] = np.concatenate([ring, rec["after"]])
        shift = len(ring)
        rec["greeting_end"] = rec["greeting_end"] + shift if rec["greeting_end"] >= 0 else -1
        rec["beep"] = rec["beep"] + shift if rec["beep"] >= 0 else -1
        rec["onset"] = shift + onset(rec["after"][shift:])
        return rec
    rec["early"] = early
    return rec


def quiet(c):
    c.source = "silence"
    return _rec("unknown", silence(6), au.dbfs(-30))


# name, expected label, maker
STRATA = [
    ("person-short", "voice", lambda c: person(c, "person_short")),
    ("person-long", "voice", lambda c: person(c, "person_long")),
    ("person-receptionist", "voice", lambda c: person(c, "receptionist")),
    ("person-hello-repeated", "voice", lambda c: person(c, "hello")),
    ("person-babble", "voice", lambda c: person(c, "person_short", babble=True)),
    ("greeting-short-beep", "answeringmachine", lambda c: machine(c, "greeting_short", True)),
    ("greeting-short-nobeep", "answeringmachine", lambda c: machine(c, "greeting_short", False)),
    ("greeting-long-beep", "answeringmachine", lambda c: machine(c, "greeting_long", True)),
    ("greeting-long-nobeep", "answeringmachine", lambda c: machine(c, "greeting_long", False)),
    ("greeting-double-beep", "answeringmachine",
     lambda c: machine(c, "greeting_long" if c.rng.random() < 0.5 else "greeting_short", True,
                       double=True)),
    ("greeting-personlike", "answeringmachine", lambda c: machine(c, "personlike")),
    ("carrier-message", "answeringmachine", lambda c: carrier(c, "carrier")),
    ("mailbox-full", "answeringmachine", mailbox_full),
    ("fax-cng", "fax", lambda c: fax(c, "cng")),
    ("fax-ced", "fax", lambda c: fax(c, "ced")),
    ("fax-ced-late", "fax", lambda c: fax(c, "ced_late")),
    ("fax-ansam", "fax", lambda c: fax(c, "ansam")),
    ("sit-na", "informationtone", lambda c: sit(c, "na")),
    ("sit-itu", "informationtone", lambda c: sit(c, "itu")),
    ("ringback-early", "*", lambda c: early_media(c, "ringback_early")),
    ("early-media", "*", lambda c: early_media(c, "early_media")),
    ("ringback-answered", "*", lambda c: early_media(c, "ringback_answered")),
    ("silence", "unknown", quiet),
]
