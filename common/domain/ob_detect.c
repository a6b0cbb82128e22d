/*
 * Callee-type detection (see ob_detect.h). Audio is cut into 20 ms frames.
 * Each frame goes to SpanDSP's fax tone detectors and to Goertzel filters
 * at the information tone frequencies; after the answer its energy against
 * the learnt noise floor and the callee's level drives the speech rules;
 * after words a bank of Goertzel filters from 400 to 2000 Hz listens for
 * the beep, and after a machine verdict follows it to its end (or the
 * greeting's silence ends it).
 */
#include "ob_detect.h"
#include "ob_common.h"

#include <math.h>
#include <spandsp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RATE        8000
#define FRAME       160 /* 20 ms */
#define FRAME_MS    20
#define TONE_FREQS  10 /* the information tones' eight, then fax CNG and CED */
#define BEEP_LOW    400
#define BEEP_STEP   25
#define BEEP_FREQS  65 /* 400..2000 Hz */
#define BEEP_FRAMES 6  /* 120 ms of one pure tone */
/* A tone that starts inside a word (a held vowel of a monotone voice can be
 * as pure and steady for 100 ms) must be held this long to be a beep. */
#define VOWEL_FRAMES 10
#define ZCR_BINS     4 /* beep filters searched either side of the zero-crossing frequency */
/* A double beep's tones may each be shorter than a beep must be held: two
 * of PAIR_FRAMES at one pitch, at most PAIR_GAP_MS apart, are a beep. */
#define PAIR_FRAMES 4
#define PAIR_GAP_MS 300

/* A frame is a pure tone at a filter's frequency when that filter holds at
 * least this share of the frame's energy. */
#define PURE_TONE 0.6
/* A beep is purer: a synthetic or sung vowel can hold 60% in one harmonic. */
#define PURE_BEEP 0.8
/* A beep's share of 40 ms (see one_tone); two tones hold half each. */
#define ONE_TONE 0.7
/* and steadier: its power moves by less than this ratio (2 dB) a frame. */
#define BEEP_STEADY 1.6
/* Speech is this many times (6 dB) above the noise floor, and never below
 * ABS_MIN (about -50 dBFS) of mean square amplitude. */
#define SPEECH_OVER_FLOOR 4.0
/* Once a word has started it goes on down to 3 dB over the floor: in loud
 * line noise a word's quieter sounds would otherwise cut it into pieces too
 * short to count. */
#define WORD_OVER_FLOOR 2.0
#define ABS_MIN         10000.0
/* The noise floor is the quietest frame of the latest 1.5 s: speech dips
 * between syllables and words often enough, noise does not. */
#define FLOOR_FRAMES 75
/* One talker's syllables make the energy of any 300 ms vary by 12 dB or
 * more; several voices together (a room, a TV crowd) fill each other's
 * gaps. Once the callee has spoken, a word starts only where it varies so
 * or within 3 dB of their level (it goes on without): background talk
 * below them is not the callee, and talk as loud as them is theirs (on a
 * line that carries only crosstalk, the crosstalk is the "callee" until a
 * fax tone comes). */
#define MOD_FRAMES 15
#define MOD_RATIO  16.0
#define OWN_LEVEL  0.5 /* -3 dB */
/* Babble (a TV, a second person) is not the callee: the callee is the
 * loudest talker. Their level follows their louder frames up (weight
 * LEVEL_WEIGHT a frame) and falls slowly (LEVEL_DECAY a frame, about
 * 0.4 dB/s) otherwise; once they have spoken, a word starts only within
 * ONSET_BELOW of it (a power ratio), and goes on down to WORD_BELOW as long
 * as a frame within ONSET_BELOW comes every SYLLABLE_MS: syllables do,
 * babble far enough below the callee does not. */
#define ONSET_BELOW  0.32 /* -5 dB */
#define WORD_BELOW   0.01 /* -20 dB */
#define SYLLABLE_MS  300
#define LEVEL_WEIGHT 0.1
#define LEVEL_DECAY  0.998
/* Silence between words: a pause at least this long ends a word. */
#define WORD_GAP_MS 60
/* People's first words rarely run longer than this: a machine verdict on a
 * greeting length near it is unsure, one far past it sure; a person's as
 * short as it or shorter is sure. */
#define PERSON_TALK_MS 2000
/* Talk longer than this is a sentence, not a "Hello?": after it the wait for
 * a beep is longer, since a short greeting's beep can follow it (the
 * bias's late_beep_ms). */
#define SENTENCE_MS 1300
/* A fax answer tone (CED) may start 1.8-2.5 s after the answer (the V.25
 * billing delay) and takes up to 800 ms to recognise: a silent line is not
 * given up on before this. */
#define CED_WAIT_MS 3600

/* What each bias changes: the talk that makes a greeting (per cent of
 * greeting_ms), the wait after a short answer and after a sentence (ms
 * added to after_greeting_silence_ms). */
static const struct {
    int greeting_pct;  /* greeting_ms scaled */
    int short_wait_ms; /* added to the wait after a short answer */
    int late_beep_ms;  /* added to the wait after a sentence */
    double onset;      /* ONSET_BELOW for this bias: how near the callee a word starts */
} biases[] = {
    [OB_DETECT_BALANCED] = {100, 0, 700, ONSET_BELOW},
    [OB_DETECT_FAVOUR_PERSON] = {130, 0, 300, 0.5 /* -3 dB: babble is not talk */},
    [OB_DETECT_FAVOUR_MACHINE] = {85, 200, 1100, ONSET_BELOW},
};

/* A segment of the information tone lasts 274 to 400 ms; 200 ms of it
 * counts, with gaps of up to 60 ms between segments. */
#define SIT_SEGMENT_MS 200
#define SIT_GAP_MS     60

/* North American (913.8 or 985.2, 1370.6 or 1428.5, 1776.7 Hz) and ITU
 * (950, 1400, 1800 Hz, ITU-T E.180) information tones, then fax. */
static const float tone_freqs[TONE_FREQS] = {913.8f,  985.2f,  950.0f,  1370.6f, 1428.5f,
                                             1400.0f, 1776.7f, 1800.0f, 1100.0f, 2100.0f};
/* The information tone segment (0, 1, 2) of each frequency; -1 for fax. */
static const int sit_segment[TONE_FREQS] = {0, 0, 0, 1, 1, 1, 2, 2, -1, -1};
#define TONE_CNG 8
#define TONE_CED 9
/* A fax tone held this long: CNG bursts last 500 ms, CED at least 2.6 s.
 * (SpanDSP's own detectors decide first on clean lines; these filters
 * catch a quiet tone on a noisy line.) */
#define CNG_MS 400
#define CED_MS 800
/* The share of a frame that keeps an answer tone's run going once started. */
#define FAX_GOES_ON 0.3
/* A beep at an information tone's first frequencies or at the fax calling
 * tone's must outlast their segment (at most 400 ms) or burst (500 ms). */
#define SIT_BEEP_FRAMES 21
#define CNG_BEEP_FRAMES 30
/* Ringback after the answer (400+450, 425, 440+480 Hz): its frames hold
 * this share in one of these filters, and are not speech. */
static const float ring_freqs[] = {400.0f, 425.0f, 440.0f, 460.0f, 480.0f};
#define RING_FREQS OB_COUNTOF(ring_freqs)
#define RING_SHARE 0.75
/* After the answer, a pure tone held this long stops counting as speech. */
#define TONE_NOT_SPEECH_MS 80

struct ob_detect {
    ob_detect_config_t cfg;
    ob_detect_result_t res;
    bool answered;  /* the speech rules run */
    bool final;     /* nothing more to decide */
    int64_t fed_ms; /* audio fed since the answer */
    int16_t frame[FRAME];
    int16_t prev[FRAME]; /* the frame before it */
    int nframe;          /* samples in frame */

    modem_connect_tones_rx_state_t *cng, *ced; /* SpanDSP fax tones */
    int fax_tone;                              /* set by their callback */
    goertzel_descriptor_t tone_desc[TONE_FREQS];
    int tone_run_ms; /* frames of one pure fax tone in a row */
    int tone_last;   /* which, or -1 */
    bool tone_gap;   /* the latest frame was not it (one such frame is forgiven) */
    goertzel_descriptor_t ring_desc[RING_FREQS];
    int ring_run_ms; /* frames of ringback in a row */
    goertzel_descriptor_t beep_desc[BEEP_FREQS];

    double recent[FLOOR_FRAMES]; /* mean square of the latest frames (a ring) */
    int nrecent;                 /* frames in it so far (up to FLOOR_FRAMES) */
    double floor;                /* noise floor: the quietest of them */
    double level;                /* the callee's voice: the power of their louder frames */
    int weak_ms;                 /* since the latest frame near that level */

    /* speech rules */
    bool heard;         /* a word has started since the answer */
    int64_t onset_ms;   /* when the greeting's first word started */
    int voiced_ms;      /* current run of speech frames */
    int silence_ms;     /* current run of silence frames */
    int words;          /* words in the greeting so far */
    int64_t last_voice; /* end of the latest speech frame */
    int64_t run_after;  /* end of the speech before the current run of it */
    int64_t voice_ms;   /* when a voice verdict was given (a late beep may follow) */

    /* information tone */
    int sit_next;   /* segment expected next (0..2; 3 done) */
    int sit_run_ms; /* frames of the expected segment so far */
    int sit_gap_ms; /* frames since the last segment ended */

    /* beep */
    int beep_bin;          /* the filter where the pure tone started; -1: none */
    int beep_run;          /* frames of it so far */
    double beep_power;     /* its latest frame's mean square */
    bool beep_after_pause; /* it started after a pause in the talk */
    int pair_bin;          /* a short pure tone that ended (a double beep's first); -1: none */
    int64_t pair_start;    /* when it started, */
    int64_t pair_end;      /* and ended (ms fed) */
    int64_t machine_ms;    /* when the machine verdict was given */

    /* the greeting's end, after a machine verdict */
    int after_voiced_ms;  /* current run of speech frames */
    int after_silence_ms; /* current run of silence (clicks shorter than a word included) */
};

static void on_fax_tone(void *user, int code, int level, int delay)
{
    ob_detect_t *d = user;
    (void)level;
    (void)delay;
    if (code != MODEM_CONNECT_TONES_NONE)
        d->fax_tone = code;
}

ob_detect_t *ob_detect_new(const ob_detect_config_t *cfg)
{
    ob_detect_t *d = ob_xcalloc(1, sizeof(*d));
    if (cfg)
        d->cfg = *cfg;
    else
        ob_detect_defaults(&d->cfg);
    d->cng = modem_connect_tones_rx_init(NULL, MODEM_CONNECT_TONES_FAX_CNG, on_fax_tone, d);
    d->ced =
        modem_connect_tones_rx_init(NULL, MODEM_CONNECT_TONES_FAX_CED_OR_PREAMBLE, on_fax_tone, d);
    for (int i = 0; i < TONE_FREQS; i++)
        make_goertzel_descriptor(&d->tone_desc[i], tone_freqs[i], FRAME);
    d->tone_last = -1;
    for (int i = 0; i < BEEP_FREQS; i++)
        make_goertzel_descriptor(&d->beep_desc[i], (float)(BEEP_LOW + i * BEEP_STEP), FRAME);
    for (size_t i = 0; i < RING_FREQS; i++)
        make_goertzel_descriptor(&d->ring_desc[i], ring_freqs[i], FRAME);
    d->beep_bin = -1;
    d->pair_bin = -1;
    d->res.beep_end_ms = -1;
    d->res.greeting_end_ms = -1;
    d->res.greeting_over_ms = -1;
    d->res.revised_from_ms = -1;
    return d;
}

void ob_detect_free(ob_detect_t *d)
{
    if (!d)
        return;
    modem_connect_tones_rx_free(d->cng);
    modem_connect_tones_rx_free(d->ced);
    free(d);
}

void ob_detect_answered(ob_detect_t *d)
{
    d->answered = true;
    d->fed_ms = 0;
    d->nrecent = 0; /* early media (ringback, music) is not the line's noise */
}

const ob_detect_result_t *ob_detect_result(const ob_detect_t *d)
{
    return &d->res;
}

static void greeting_over(ob_detect_t *d, int64_t at_ms)
{
    d->res.greeting_over = true;
    d->res.greeting_over_ms = (int)at_ms;
    d->final = true;
}

static void decide(ob_detect_t *d, ob_detect_verdict_t v, double confidence, const char *why)
{
    d->res.verdict = v;
    d->res.confidence = confidence < 0 ? 0 : confidence > 1 ? 1 : confidence;
    d->res.decision_ms = d->answered ? (int)d->fed_ms : 0;
    d->res.why = why;
    d->res.greeting_end_ms = d->answered && d->heard ? (int)d->last_voice : -1;
    if (v == OB_DETECT_MACHINE && d->cfg.beep_wait_ms > 0) {
        d->machine_ms = d->fed_ms; /* and listen on for the beep */
        d->after_silence_ms = d->silence_ms;
    } else if (v == OB_DETECT_MACHINE) {
        greeting_over(d, d->fed_ms);
    } else if (v == OB_DETECT_VOICE && d->cfg.late_beep_ms > 0) {
        d->voice_ms = d->fed_ms; /* and listen on for a late beep */
    } else {
        d->final = true;
    }
}

/* The share of the frame's energy (sum of squares) at desc's frequency: 1
 * for a pure tone at its centre, near 0 for speech or noise. */
static double purity(goertzel_descriptor_t *desc, const int16_t *frame, double energy)
{
    goertzel_state_t g;
    goertzel_init(&g, desc);
    goertzel_update(&g, frame, FRAME);
    return energy > 0 ? goertzel_result(&g) / (FRAME * energy / 2.0) : 0;
}

/* The strongest of n filters on the frame, and its share in *share. */
static int strongest(goertzel_descriptor_t *descs, int n, const int16_t *frame, double energy,
                     double *share)
{
    int best = -1;
    *share = 0;
    for (int i = 0; i < n; i++) {
        double p = purity(&descs[i], frame, energy);
        if (p > *share) {
            *share = p;
            best = i;
        }
    }
    return best;
}

/* Information tone: three segments in order, each a pure tone at one of its
 * frequencies for SIT_SEGMENT_MS. f is the frame's pure tone (or -1). */
static void sit_frame(ob_detect_t *d, int f)
{
    bool in_segment = f >= 0 && sit_segment[f] == d->sit_next;
    if (in_segment) {
        d->sit_run_ms += FRAME_MS;
        d->sit_gap_ms = 0;
        return;
    }
    if (d->sit_run_ms >= SIT_SEGMENT_MS) { /* the expected segment ended: the next one */
        d->sit_next++;
        d->sit_run_ms = 0;
        d->sit_gap_ms = 0;
        /* this frame may already be the next segment */
        if (f >= 0 && d->sit_next < 3 && sit_segment[f] == d->sit_next)
            d->sit_run_ms = FRAME_MS;
        return;
    }
    d->sit_gap_ms += FRAME_MS;
    if (d->sit_gap_ms > SIT_GAP_MS) { /* start over */
        d->sit_next = 0;
        d->sit_run_ms = 0;
    }
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* The speech rules, after the answer. A person answers soon, says a word
 * or a sentence, and waits for us; a machine reads on, sentence after
 * sentence, to its beep. So: talk that runs on (pauses shorter than the
 * wait included) past the greeting's length is a machine; silence after
 * talk is a person, after a longer wait when the talk was a sentence (in
 * which a short greeting's beep would come). A pause between sentences
 * tells nothing: people pause at commas as long as greetings do at full
 * stops. The bias moves both. The confidence grows with how far the
 * greeting's length is from what people say (PERSON_TALK_MS), and for a
 * person with how short their talk was against it. */
static void speech_frame(ob_detect_t *d, bool voiced)
{
    const ob_detect_config_t *c = &d->cfg;
    if (voiced) {
        if (d->voiced_ms == 0)
            d->run_after = d->last_voice;
        if (!d->heard && d->voiced_ms == 0)
            d->onset_ms = d->fed_ms - FRAME_MS;
        d->voiced_ms += FRAME_MS;
        if (d->voiced_ms >= c->min_word_ms && !d->heard) {
            d->heard = true;
            d->words = 1;
        } else if (d->voiced_ms == c->min_word_ms && d->silence_ms >= WORD_GAP_MS) {
            d->words++;
        }
        if (d->voiced_ms >= c->min_word_ms)
            d->silence_ms = 0;
        d->last_voice = d->fed_ms;
    } else {
        d->silence_ms += FRAME_MS;
        if (d->silence_ms >= WORD_GAP_MS)
            d->voiced_ms = 0;
    }

    int bias = c->bias >= 0 && c->bias < (int)OB_COUNTOF(biases) ? (int)c->bias : 0;
    int64_t talk = d->heard ? d->last_voice - d->onset_ms : 0;
    int need = c->greeting_ms * biases[bias].greeting_pct / 100;
    int wait = c->after_greeting_silence_ms +
               (talk >= SENTENCE_MS ? biases[bias].late_beep_ms : biases[bias].short_wait_ms);
    double margin = need - PERSON_TALK_MS > 1000 ? need - PERSON_TALK_MS : 1000;
    int silent_for = c->initial_silence_ms > CED_WAIT_MS ? c->initial_silence_ms : CED_WAIT_MS;
    if (!d->heard && d->fed_ms >= silent_for && d->voiced_ms == 0)
        decide(d, OB_DETECT_UNKNOWN, 0.5, "initial_silence");
    else if (d->heard && talk >= need)
        decide(d, OB_DETECT_MACHINE, 0.5 + 0.45 * clamp01((need - PERSON_TALK_MS) / 4000.0),
               "long_greeting");
    else if (d->heard && c->max_words > 0 && d->words > c->max_words)
        decide(d, OB_DETECT_MACHINE, 0.7, "max_words");
    else if (d->heard && d->silence_ms >= wait)
        decide(d, OB_DETECT_VOICE, 0.55 + 0.4 * clamp01((double)(need - talk) / margin),
               "short_greeting");
    else if (d->fed_ms >= c->total_analysis_ms && talk >= SENTENCE_MS && d->silence_ms == 0)
        decide(d, OB_DETECT_MACHINE, 0.55, "long_greeting"); /* still talking */
    else if (d->fed_ms >= c->total_analysis_ms + (d->heard ? wait : 0))
        decide(d, OB_DETECT_UNKNOWN, 0, "analysis_time"); /* a pause let run its wait */
}

/* The strongest beep filter on the frame, and its share in *share: only
 * those within ZCR_BINS of the frequency the frame's zero crossings give
 * (a pure tone crosses zero twice a period; speech and noise land
 * anywhere, and are not pure in the filters there either), which saves
 * the whole bank on every frame of speech. */
static int beep_strongest(ob_detect_t *d, double energy, double *share)
{
    int crossings = 0;
    for (int i = 1; i < FRAME; i++)
        crossings += (d->frame[i - 1] < 0) != (d->frame[i] < 0);
    int bin = (int)lround((crossings * (RATE / 2.0) / (FRAME - 1) - BEEP_LOW) / BEEP_STEP);
    int lo = bin - ZCR_BINS < 0 ? 0 : bin - ZCR_BINS;
    int hi = bin + ZCR_BINS >= BEEP_FREQS ? BEEP_FREQS - 1 : bin + ZCR_BINS;
    *share = 0;
    if (lo > hi)
        return -1;
    int best = strongest(&d->beep_desc[lo], hi - lo + 1, d->frame, energy, share);
    return best < 0 ? -1 : lo + best;
}

/* Whether the latest 40 ms hold one tone near f Hz rather than two close
 * ones: ringback (440+480, 400+450 Hz) looks like one tone beating in a
 * 20 ms frame, whose filters are 50 Hz wide; 40 ms tell tones 25 Hz apart.
 * Goertzel at f and 12.5 Hz either side, so that a tone between the beep
 * filters' centres is not missed. */
static bool one_tone(const ob_detect_t *d, int f)
{
    double energy = 0, best = 0;
    for (int i = 0; i < FRAME; i++)
        energy += (double)d->prev[i] * d->prev[i] + (double)d->frame[i] * d->frame[i];
    for (int k = -1; k <= 1; k++) {
        double w = 2 * cos(2 * M_PI * (f + k * 12.5) / RATE), s1 = 0, s2 = 0;
        for (int i = 0; i < 2 * FRAME; i++) {
            double s0 = (i < FRAME ? d->prev[i] : d->frame[i - FRAME]) + w * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        double p = s1 * s1 + s2 * s2 - w * s1 * s2;
        best = p > best ? p : best;
    }
    return energy > 0 && best / (FRAME * energy) >= ONE_TONE;
}

/* How many frames a beep in beep filter bin must hold: longer than an
 * information tone's first segment or a fax calling tone's burst at their
 * frequencies (before a verdict, when those are still possible). */
static int beep_hold(int bin)
{
    double hz = BEEP_LOW + bin * BEEP_STEP;
    for (int i = 0; i < TONE_CNG; i++)
        if (sit_segment[i] == 0 && fabs(hz - tone_freqs[i]) <= BEEP_STEP / 2.0)
            return SIT_BEEP_FRAMES;
    return fabs(hz - tone_freqs[TONE_CNG]) <= BEEP_STEP / 2.0 ? CNG_BEEP_FRAMES : BEEP_FRAMES;
}

/* Whether a frame of this mean square is sound, not line noise: over the
 * noise floor by factor, and over ABS_MIN. */
static bool over_floor(const ob_detect_t *d, double mean_square, double factor)
{
    double threshold = d->floor * factor;
    return mean_square > (threshold > ABS_MIN ? threshold : ABS_MIN);
}

/* How wary beep_heard is of what else a pure tone may be. */
typedef enum {
    BEEP_AFTER_MACHINE, /* the machine's beep is expected: BEEP_FRAMES */
    BEEP_AFTER_VOICE,   /* words were heard and a person decided: a tone starting
                           inside a word is held VOWEL_FRAMES (the callee may
                           talk on); no fax or information tone comes after words */
    BEEP_BEFORE,        /* before a verdict: that, and tones at an information or
                           fax tone's pitch held longer than those (beep_hold) */
} beep_wary_t;

/* A pure tone held BEEP_FRAMES frames at one frequency (within one filter
 * of where it started) and one level (within BEEP_STEADY from frame to
 * frame) is a machine's beep; true once heard. A voice's harmonic
 * can be as pure for a while, but its pitch and loudness move. */
static bool beep_heard(ob_detect_t *d, double energy, double mean_square, beep_wary_t wary)
{
    double share = 0;
    int bin = mean_square > d->floor * SPEECH_OVER_FLOOR && mean_square > ABS_MIN
                  ? beep_strongest(d, energy, &share)
                  : -1;
    bool pure = bin >= 0 && share >= PURE_BEEP && one_tone(d, BEEP_LOW + bin * BEEP_STEP);
    if (pure && d->beep_bin >= 0 && abs(bin - d->beep_bin) <= 1 &&
        mean_square < d->beep_power * BEEP_STEADY && mean_square * BEEP_STEADY > d->beep_power) {
        d->beep_power = mean_square;
        int hold = wary == BEEP_BEFORE ? beep_hold(d->beep_bin) : BEEP_FRAMES;
        if (wary != BEEP_AFTER_MACHINE && !d->beep_after_pause && hold < VOWEL_FRAMES)
            hold = VOWEL_FRAMES;
        int64_t start = d->fed_ms - (int64_t)(d->beep_run + 1) * FRAME_MS;
        /* A double beep: two short tones at one pitch, a short gap between
         * (each may be too short to be held as one beep). */
        bool pair = d->beep_run + 1 >= PAIR_FRAMES && d->pair_bin >= 0 &&
                    abs(d->beep_bin - d->pair_bin) <= 1 && start - d->pair_end <= PAIR_GAP_MS &&
                    (wary != BEEP_BEFORE || beep_hold(d->beep_bin) == BEEP_FRAMES);
        if (++d->beep_run >= hold || pair) {
            d->res.beep = true;
            d->res.beep_ms = (int)(pair ? d->pair_start : start);
            return true;
        }
    } else {
        if (d->beep_run >= PAIR_FRAMES) { /* a short pure tone ended: a double beep's first? */
            d->pair_bin = d->beep_bin;
            d->pair_end = d->fed_ms - FRAME_MS;
            d->pair_start = d->pair_end - (int64_t)d->beep_run * FRAME_MS;
        }
        d->beep_run = pure ? 1 : 0;
        d->beep_bin = pure ? bin : -1;
        d->beep_after_pause = d->silence_ms >= WORD_GAP_MS;
        d->beep_power = mean_square;
    }
    return false;
}

/* Whether the beep heard goes on in this frame: the same pure tone (the
 * noise floor is not asked: a beep longer than the floor's window would
 * become its own floor). */
static bool beep_goes_on(ob_detect_t *d, double energy, double mean_square)
{
    double share = 0;
    int bin = mean_square > ABS_MIN ? beep_strongest(d, energy, &share) : -1;
    return bin >= 0 && share >= PURE_BEEP && abs(bin - d->beep_bin) <= 1;
}

/* After a machine verdict: the beep, then its end; or, with no beep, the
 * greeting falling silent (see ob_detect.h). */
static void after_machine(ob_detect_t *d, double energy, double mean_square)
{
    const ob_detect_config_t *c = &d->cfg;
    if (d->res.beep) {
        if (!beep_goes_on(d, energy, mean_square)) {
            d->res.beep_end_ms = (int)(d->fed_ms - FRAME_MS); /* this frame is past it */
            greeting_over(d, d->res.beep_end_ms);
            return;
        }
    } else if (!beep_heard(d, energy, mean_square, BEEP_AFTER_MACHINE)) {
        bool loud = over_floor(d, mean_square, SPEECH_OVER_FLOOR);
        if (loud) {
            d->after_voiced_ms += FRAME_MS;
            if (d->after_voiced_ms >= c->min_word_ms)
                d->after_silence_ms = 0;
        } else {
            d->after_voiced_ms = 0;
            d->after_silence_ms += FRAME_MS;
            if (d->after_silence_ms >= c->greeting_silence_ms) {
                greeting_over(d, d->fed_ms);
                return;
            }
        }
    }
    if (d->fed_ms - d->machine_ms >= c->beep_wait_ms)
        greeting_over(d, d->fed_ms);
}

/* After a voice verdict: a beep within late_beep_ms makes it a machine's
 * (see ob_detect.h), followed to its end by after_machine; none, and the
 * voice verdict is final. The beep is held as long as one inside a word
 * must be unless it follows a pause: the callee may talk on, and a
 * line's echo of what we say to them may come back. */
static void after_voice(ob_detect_t *d, double energy, double mean_square)
{
    if (mean_square > ABS_MIN && beep_heard(d, energy, mean_square, BEEP_AFTER_VOICE)) {
        int voice_ms = d->res.decision_ms;
        int beep_ms = d->res.beep_ms;
        decide(d, OB_DETECT_MACHINE, 0.9, "late_beep");
        d->res.decision_ms = (int)d->fed_ms;
        d->res.revised_from_ms = voice_ms;
        /* The greeting ended before the beep's run (its first frames may
         * have counted as talk). */
        if (d->res.greeting_end_ms > beep_ms)
            d->res.greeting_end_ms =
                d->run_after > 0 && d->run_after <= beep_ms ? (int)d->run_after : beep_ms;
        return;
    }
    bool loud = over_floor(d, mean_square, SPEECH_OVER_FLOOR);
    if (loud) {
        if (d->silence_ms >= WORD_GAP_MS)
            d->run_after = d->last_voice;
        d->silence_ms = 0;
        d->last_voice = d->fed_ms;
    } else {
        d->silence_ms += FRAME_MS;
    }
    if (d->fed_ms - d->voice_ms >= d->cfg.late_beep_ms)
        d->final = true;
}

static void frame_done(ob_detect_t *d)
{
    double energy = 0;
    for (int i = 0; i < FRAME; i++)
        energy += (double)d->frame[i] * d->frame[i];
    double mean_square = energy / FRAME;
    d->fed_ms += FRAME_MS;
    d->recent[d->nrecent++ % FLOOR_FRAMES] = mean_square;
    int nr = d->nrecent < FLOOR_FRAMES ? d->nrecent : FLOOR_FRAMES;
    d->floor = mean_square;
    for (int i = 0; i < nr; i++)
        d->floor = d->recent[i] < d->floor ? d->recent[i] : d->floor;

    if (d->res.verdict == OB_DETECT_MACHINE) {
        after_machine(d, energy, mean_square);
        return;
    }
    if (d->res.verdict == OB_DETECT_VOICE) {
        after_voice(d, energy, mean_square);
        return;
    }
    modem_connect_tones_rx(d->cng, d->frame, FRAME);
    modem_connect_tones_rx(d->ced, d->frame, FRAME);
    if (d->fax_tone) {
        decide(d, OB_DETECT_FAX, 0.95,
               d->fax_tone == MODEM_CONNECT_TONES_FAX_CNG ? "cng" : "ced_or_preamble");
        return;
    }
    double share = 0;
    int f =
        mean_square > ABS_MIN ? strongest(d->tone_desc, TONE_FREQS, d->frame, energy, &share) : -1;
    if (share < PURE_TONE)
        f = -1;
    /* An answer tone once running goes on at a lower share: a codec and
     * line noise (GSM, 10 dB SNR) leave an ANSam 30-90% of a frame. (Not
     * CNG: machines beep at its pitch.) */
    if (f < 0 && d->tone_last == TONE_CED && mean_square > ABS_MIN &&
        purity(&d->tone_desc[d->tone_last], d->frame, energy) >= FAX_GOES_ON)
        f = d->tone_last;
    if (f >= 0 && f == d->tone_last) {
        d->tone_run_ms += FRAME_MS;
        d->tone_gap = false;
    } else if (d->tone_last >= TONE_CNG && !d->tone_gap) {
        d->tone_gap = true; /* one frame off: ANSam's phase reversal, a lost packet */
    } else {
        d->tone_run_ms = FRAME_MS;
        d->tone_last = f;
        d->tone_gap = false;
    }
    if ((f == TONE_CNG && d->tone_run_ms >= CNG_MS) ||
        (f == TONE_CED && d->tone_run_ms >= CED_MS)) {
        decide(d, OB_DETECT_FAX, 0.9, f == TONE_CNG ? "cng_tone" : "ced_tone");
        return;
    }
    sit_frame(d, f);
    if (d->sit_next == 3 || (d->sit_next == 2 && d->sit_run_ms >= SIT_SEGMENT_MS)) {
        decide(d, OB_DETECT_INFOTONE, 0.95, "special_information_tone");
        return;
    }
    /* Nothing is decided from speech while an information tone's segments
     * follow one another (its tones would be silence to the speech rules). */
    if (!d->answered || d->sit_next > 0)
        return;
    bool loud = over_floor(d, mean_square, d->voiced_ms > 0 ? WORD_OVER_FLOOR : SPEECH_OVER_FLOOR);
    /* A beep after words: a machine, whatever the greeting's length. */
    /* (not while an information tone's segments follow one another) */
    if (d->heard && loud && d->sit_next == 0 && beep_heard(d, energy, mean_square, BEEP_BEFORE)) {
        decide(d, OB_DETECT_MACHINE, 0.95, "beep"); /* then followed to its end */
        /* The beep's first frames counted as speech until it was sure:
         * the greeting ended before their run, or at the beep. */
        if (d->res.greeting_end_ms > d->res.beep_ms)
            d->res.greeting_end_ms = d->run_after > 0 && d->run_after <= d->res.beep_ms
                                         ? (int)d->run_after
                                         : d->res.beep_ms;
        return;
    }
    /* Nor while an answer tone runs: after noise taken for words, its
     * frames would be the silence that makes a person. */
    if (d->tone_last == TONE_CED && d->tone_run_ms >= TONE_NOT_SPEECH_MS)
        return;
    /* A tone held a few frames is not speech (a single frame can be: a
     * vowel's strong harmonic). */
    double ring = 0;
    if (loud)
        (void)strongest(d->ring_desc, (int)RING_FREQS, d->frame, energy, &ring);
    d->ring_run_ms = ring >= RING_SHARE ? d->ring_run_ms + FRAME_MS : 0;
    bool tone = (f >= 0 && d->tone_run_ms >= TONE_NOT_SPEECH_MS) ||
                d->beep_run * FRAME_MS >= TONE_NOT_SPEECH_MS ||
                d->ring_run_ms >= TONE_NOT_SPEECH_MS;
    int bias = d->cfg.bias >= 0 && d->cfg.bias < (int)OB_COUNTOF(biases) ? (int)d->cfg.bias : 0;
    bool strong = mean_square > d->level * biases[bias].onset;
    d->weak_ms = strong ? 0 : d->weak_ms + FRAME_MS;
    double lo = mean_square, hi = mean_square;
    for (int k = 1; k < MOD_FRAMES && k < d->nrecent; k++) {
        double e = d->recent[(d->nrecent - 1 - k) % FLOOR_FRAMES];
        lo = e < lo ? e : lo;
        hi = e > hi ? e : hi;
    }
    bool modulated = hi >= lo * MOD_RATIO;
    bool callee =
        loud && !tone &&
        ((strong &&
          (d->voiced_ms > 0 || !d->heard || modulated || mean_square >= d->level * OWN_LEVEL)) ||
         (d->voiced_ms > 0 && d->weak_ms <= SYLLABLE_MS && mean_square > d->level * WORD_BELOW));
    if (callee && mean_square > d->level) /* the loudest talker is the callee */
        d->level = d->level > 0 ? d->level + LEVEL_WEIGHT * (mean_square - d->level) : mean_square;
    else
        d->level *= LEVEL_DECAY;
    speech_frame(d, callee);
}

bool ob_detect_feed(ob_detect_t *d, const int16_t *samples, size_t n)
{
    for (size_t i = 0; i < n && !d->final; i++) {
        d->frame[d->nframe++] = samples[i];
        if (d->nframe == FRAME) {
            d->nframe = 0;
            frame_done(d);
            memcpy(d->prev, d->frame, sizeof(d->prev));
        }
    }
    return d->final;
}

bool ob_detect_feed_g711(ob_detect_t *d, const uint8_t *bytes, size_t n, bool alaw)
{
    int16_t linear[FRAME];
    bool done = d->final;
    for (size_t i = 0; i < n && !done; i += FRAME) {
        size_t k = n - i < FRAME ? n - i : FRAME;
        for (size_t j = 0; j < k; j++)
            linear[j] = alaw ? alaw_to_linear(bytes[i + j]) : ulaw_to_linear(bytes[i + j]);
        done = ob_detect_feed(d, linear, k);
    }
    return done;
}
