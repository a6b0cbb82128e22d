/* Callee-type detection (common/domain/ob_detect.c) on synthesized audio: tones
 * as the network sends them, speech-like sound (a 120 Hz voice with its
 * harmonics, in syllables) for the greeting rules, and speech rendered by
 * espeak-ng (ob_tts) for the ways people and machines answer that fooled
 * earlier detectors. The generated corpus is evaluated by
 * tests/detect/eval_detect.c. */
#include "ob_detect.h"
#include "ob_tts.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE 8000

typedef struct {
    int16_t *s;
    size_t n, cap;
} audio_t;

static void push(audio_t *a, double v)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 8000;
        a->s = realloc(a->s, a->cap * sizeof(int16_t));
    }
    a->s[a->n++] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

/* Low noise, so that silence is a line's, not digital zero. */
static double hiss(void)
{
    return (rand() % 61) - 30;
}

static void silence(audio_t *a, int ms)
{
    for (int i = 0; i < ms * RATE / 1000; i++)
        push(a, hiss());
}

static void tone(audio_t *a, double f, int ms, double amp)
{
    for (int i = 0; i < ms * RATE / 1000; i++)
        push(a, amp * sin(2 * M_PI * f * i / RATE) + hiss());
}

/* Speech-like: a 120 Hz voice with 20 harmonics, in 200 ms syllables
 * separated by 40 ms dips, for ms. */
static void talk(audio_t *a, int ms)
{
    for (int i = 0; i < ms * RATE / 1000; i++) {
        int in_syllable = (i % (RATE * 240 / 1000)) < RATE * 200 / 1000;
        double v = 0;
        for (int h = 1; h <= 20; h++)
            v += sin(2 * M_PI * 120 * h * i / RATE + h) / h;
        push(a, (in_syllable ? 3000 : 150) * v + hiss());
    }
}

/* Runs audio through a detector: the first early_ms as early media, then
 * the answer; returns the final (or last) result. */
static ob_detect_result_t run(const audio_t *a, int early_ms)
{
    ob_detect_t *d = ob_detect_new(NULL);
    size_t early = (size_t)early_ms * RATE / 1000, i = 0;
    bool done = false;
    for (; i < early && i < a->n && !done; i += 160)
        done = ob_detect_feed(d, a->s + i, early - i < 160 ? early - i : 160);
    if (!done && early_ms >= 0)
        ob_detect_answered(d);
    for (i = early; i < a->n && !done; i += 160)
        done = ob_detect_feed(d, a->s + i, a->n - i < 160 ? a->n - i : 160);
    ob_detect_result_t r = *ob_detect_result(d);
    ob_detect_free(d);
    return r;
}

Test(detect, a_short_hello_then_silence_is_a_person)
{
    audio_t a = {0};
    silence(&a, 400);
    talk(&a, 600);
    silence(&a, 3000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_VOICE, "%s by %s", ob_detect_name(r.verdict), r.why);
    /* 800 ms of silence after the greeting's end (1000 ms). */
    cr_expect(r.decision_ms >= 1700 && r.decision_ms <= 1900, "decided at %d ms", r.decision_ms);
    cr_expect_gt(r.confidence, 0.5);
    free(a.s);
}

Test(detect, a_long_greeting_is_a_machine_before_its_beep_which_is_heard)
{
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, 6500);
    silence(&a, 300);
    tone(&a, 1000, 500, 8000);
    silence(&a, 1000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_str_eq(r.why, "long_greeting");
    cr_expect(r.decision_ms < 7100, "decided at %d ms, the beep is at 7100", r.decision_ms);
    cr_expect(r.beep, "the beep was not heard");
    cr_expect(abs(r.beep_ms - 7100) <= 60, "beep at %d ms", r.beep_ms);
    free(a.s);
}

Test(detect, fax_calling_and_answer_tones)
{
    audio_t cng = {0}, ced = {0};
    for (int k = 0; k < 2; k++) {
        tone(&cng, 1100, 500, 6000);
        silence(&cng, 3000);
    }
    tone(&ced, 2100, 3300, 6000);
    silence(&ced, 500);
    ob_detect_result_t r = run(&cng, 0);
    cr_expect_eq(r.verdict, OB_DETECT_FAX, "CNG: %s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_lt(r.decision_ms, 1000);
    r = run(&ced, 0);
    cr_expect_eq(r.verdict, OB_DETECT_FAX, "CED: %s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_gt(r.confidence, 0.8);
    free(cng.s);
    free(ced.s);
}

Test(detect, the_special_information_tone_in_early_media)
{
    audio_t a = {0};
    tone(&a, 913.8, 274, 6000);
    tone(&a, 1370.6, 274, 6000);
    tone(&a, 1776.7, 380, 6000);
    talk(&a, 3000);
    /* Never answered: the whole recording is early media. */
    ob_detect_result_t r = run(&a, 10000);
    cr_expect_eq(r.verdict, OB_DETECT_INFOTONE, "%s by %s", ob_detect_name(r.verdict), r.why);
    free(a.s);
}

Test(detect, silence_and_tones_out_of_order_are_unknown)
{
    audio_t quiet = {0}, wrong = {0};
    silence(&quiet, 6000);
    ob_detect_result_t r = run(&quiet, 0);
    cr_expect_eq(r.verdict, OB_DETECT_UNKNOWN, "%s by %s", ob_detect_name(r.verdict), r.why);
    /* not before a fax's delayed answer tone could have been heard */
    cr_expect_eq(r.decision_ms, 3600, "initial silence decided at %d", r.decision_ms);
    /* The tone's segments in the wrong order are no information tone. */
    tone(&wrong, 1776.7, 380, 6000);
    tone(&wrong, 1370.6, 274, 6000);
    tone(&wrong, 913.8, 274, 6000);
    silence(&wrong, 5000);
    r = run(&wrong, 5000);
    cr_expect_neq(r.verdict, OB_DETECT_INFOTONE);
    free(quiet.s);
    free(wrong.s);
}

/* Words, a pause, one tone: what the tone makes of the words. */
typedef struct {
    const char *name; /* the case */
    int talk_ms;      /* words after 300 ms of line */
    int gap_ms;       /* then line for this long */
    int hz, tone_ms;  /* then this tone, then 3 s of line */
    const char *why;  /* expected: a machine by this rule */
} tone_after_case_t;

static tone_after_case_t tone_after_cases[] = {
    /* a short greeting ended by its beep */
    {"beep_after_a_short_greeting", 1200, 200, 1400, 400, "beep"},
    /* after a person's verdict no fax calling tone can come: a beep at its
     * pitch, shorter than a CNG burst, is a late beep */
    {"late_beep_at_the_fax_tone_pitch", 1000, 2500, 1100, 250, "late_beep"},
};

ParameterizedTestParameters(detect, a_tone_after_words_is_a_beep)
{
    return cr_make_param_array(tone_after_case_t, tone_after_cases, OB_COUNTOF(tone_after_cases));
}

ParameterizedTest(tone_after_case_t *c, detect, a_tone_after_words_is_a_beep)
{
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, c->talk_ms);
    silence(&a, c->gap_ms);
    int at = 300 + c->talk_ms + c->gap_ms;
    tone(&a, c->hz, c->tone_ms, 8000);
    silence(&a, 3000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s: %s by %s", c->name, ob_detect_name(r.verdict),
                 r.why);
    cr_expect_str_eq(r.why, c->why, "%s", c->name);
    cr_expect(r.beep && abs(r.beep_ms - at) <= 40, "%s: beep at %d ms, the tone at %d", c->name,
              r.beep_ms, at);
    free(a.s);
}

/* A short greeting whose beep comes after a pause longer than the wait
 * for a person: a person first, then a machine at its beep, followed to
 * its end; with late_beep_ms 0 the person verdict stands. */
Test(detect, a_beep_after_a_person_verdict_revises_it_to_a_machine)
{
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, 1200); /* shorter than a sentence: the wait for a person is 800 ms */
    silence(&a, 2500);
    tone(&a, 1000, 400, 8000); /* at 4000 ms */
    silence(&a, 3000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_str_eq(r.why, "late_beep");
    cr_expect(r.revised_from_ms >= 2200 && r.revised_from_ms <= 2400, "the voice verdict at %d ms",
              r.revised_from_ms);
    cr_expect(r.beep && abs(r.beep_ms - 4000) <= 60, "beep at %d ms", r.beep_ms);
    cr_expect(r.decision_ms >= 4000 && r.decision_ms <= 4300, "revised at %d ms", r.decision_ms);
    cr_expect(r.greeting_over && abs(r.greeting_over_ms - 4400) <= 40, "over at %d ms",
              r.greeting_over_ms);
    cr_expect(abs(r.greeting_end_ms - 1500) <= 60, "the greeting ended at %d ms",
              r.greeting_end_ms);

    ob_detect_config_t cfg;
    ob_detect_defaults(&cfg);
    cfg.late_beep_ms = 0;
    ob_detect_t *d = ob_detect_new(&cfg);
    ob_detect_answered(d);
    cr_expect(ob_detect_feed(d, a.s, 2600 * RATE / 1000), "final at the voice verdict");
    cr_expect_eq(ob_detect_result(d)->verdict, OB_DETECT_VOICE);
    ob_detect_free(d);
    free(a.s);
}

/* A person who talks on after the verdict, and a tone that is not held
 * like a beep, do not revise it; the verdict is final late_beep_ms after. */
Test(detect, talk_after_a_person_verdict_leaves_it_a_person)
{
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, 600);
    silence(&a, 1500);
    talk(&a, 2000);
    tone(&a, 1000, 60, 8000); /* three frames: a click, not a beep */
    silence(&a, 7000);
    ob_detect_t *d = ob_detect_new(NULL);
    ob_detect_answered(d);
    bool final = false;
    size_t i = 0;
    for (; i < a.n && !final; i += 160)
        final = ob_detect_feed(d, a.s + i, a.n - i < 160 ? a.n - i : 160);
    const ob_detect_result_t *r = ob_detect_result(d);
    cr_expect_eq(r->verdict, OB_DETECT_VOICE, "%s by %s", ob_detect_name(r->verdict), r->why);
    cr_expect_eq(r->revised_from_ms, -1);
    cr_expect(final, "not final after %zu ms", i * 1000 / RATE);
    /* the verdict at about 1700 ms, final 6000 ms after it */
    cr_expect(abs((int)(i * 1000 / RATE) - 7700) <= 40, "final at %zu ms", i * 1000 / RATE);
    ob_detect_free(d);
    free(a.s);
}

/* Background talk taken for words, the answer tone (2100 Hz, its phase
 * reversed every 450 ms) starting under it: once the talk stops, the tone
 * is not the silence that makes a person. */
Test(detect, an_answer_tone_under_talk_is_a_fax)
{
    audio_t a = {0}, t = {0};
    silence(&a, 300);
    talk(&t, 700);
    for (int i = 0; i < 3500 * RATE / 1000; i++) {
        double phase = (i / (RATE * 450 / 1000)) % 2 ? M_PI : 0;
        double talking = i < (int)t.n ? t.s[i] : 0;
        push(&a, 3000 * sin(2 * M_PI * 2100 * i / RATE + phase) + talking);
    }
    silence(&a, 1000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_FAX, "%s by %s at %d ms", ob_detect_name(r.verdict), r.why,
                 r.decision_ms);
    free(a.s);
    free(t.s);
}

/* Line noise loud enough to count (about -40 dBFS), for ms. */
static void noise(audio_t *a, int ms)
{
    for (int i = 0; i < ms * RATE / 1000; i++)
        push(a, (rand() % 1201) - 600);
}

/* A greeting, then two tones of 100 ms at hz, 150 ms of line noise
 * between them: each is shorter than a beep is held. */
static ob_detect_result_t double_beep(int hz)
{
    audio_t a = {0};
    noise(&a, 300);
    talk(&a, 1200);
    noise(&a, 400);
    tone(&a, hz, 100, 8000); /* at 1900 ms */
    noise(&a, 150);
    tone(&a, hz, 100, 8000);
    noise(&a, 3000);
    ob_detect_result_t r = run(&a, 0);
    free(a.s);
    return r;
}

/* Together the two tones are a (double) beep, from the first one's start;
 * at the fax calling tone's pitch they are not. */
Test(detect, a_double_beep_of_short_tones_is_a_beep)
{
    ob_detect_result_t r = double_beep(1500);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_str_eq(r.why, "beep");
    cr_expect(r.beep && abs(r.beep_ms - 1900) <= 40, "beep at %d ms", r.beep_ms);
    r = double_beep(1100);
    cr_expect_eq(r.verdict, OB_DETECT_VOICE, "%s by %s", ob_detect_name(r.verdict), r.why);
}

Test(detect, thresholds_come_from_the_configuration)
{
    ob_detect_config_t cfg;
    ob_detect_defaults(&cfg);
    cfg.after_greeting_silence_ms = 1500;
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, 600);
    silence(&a, 3000);
    ob_detect_t *d = ob_detect_new(&cfg);
    ob_detect_answered(d);
    ob_detect_feed(d, a.s, a.n);
    const ob_detect_result_t *r = ob_detect_result(d);
    cr_expect_eq(r->verdict, OB_DETECT_VOICE);
    cr_expect(r->decision_ms >= 2300 && r->decision_ms <= 2500, "decided at %d ms", r->decision_ms);
    ob_detect_free(d);
    free(a.s);
}

/* A machine's greeting and what follows it, and when the detector says the
 * greeting is over (ob_detect.h): at the beep's end, or after
 * greeting_silence_ms of silence when no beep comes. */
typedef struct {
    const char *name;     /* the case */
    int greeting_ms;      /* speech after 300 ms of silence */
    int gap_ms;           /* silence after it */
    int beep_ms;          /* a 1000 Hz beep this long after the gap, 0 for none */
    int silence_after_ms; /* silence after the beep */
    int greeting_silence; /* greeting_silence_ms, 0 for the default */
    bool beep;            /* expected: over by a beep */
    int over_ms;          /* expected greeting_over_ms (within 40 ms) */
} over_case_t;

static over_case_t over_cases[] = {
    /* the beep 7100-7600: over at its end */
    {"beep_after_a_long_greeting", 6500, 300, 500, 1000, 0, true, 7600},
    {"long_beep", 6500, 300, 2500, 1000, 0, true, 9600},
    /* a short greeting ended by its beep (the "beep" verdict) */
    {"beep_decides", 1200, 200, 400, 1000, 0, true, 2100},
    /* no beep: greeting until 6800, then 3000 ms (or 1000) of silence */
    {"silence_after_a_long_greeting", 6500, 5000, 0, 0, 0, false, 9800},
    {"silence_of_the_configured_length", 6500, 5000, 0, 0, 1000, false, 7800},
};

ParameterizedTestParameters(detect, a_machine_greeting_is_over_at_its_beep_end_or_silence)
{
    return cr_make_param_array(over_case_t, over_cases, sizeof(over_cases) / sizeof(over_cases[0]));
}

ParameterizedTest(over_case_t *c, detect, a_machine_greeting_is_over_at_its_beep_end_or_silence)
{
    ob_detect_config_t cfg;
    ob_detect_defaults(&cfg);
    if (c->greeting_silence)
        cfg.greeting_silence_ms = c->greeting_silence;
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, c->greeting_ms);
    silence(&a, c->gap_ms);
    if (c->beep_ms) {
        tone(&a, 1000, c->beep_ms, 8000);
        silence(&a, c->silence_after_ms);
    }
    ob_detect_t *d = ob_detect_new(&cfg);
    ob_detect_answered(d);
    bool final = false;
    for (size_t i = 0; i < a.n && !final; i += 160)
        final = ob_detect_feed(d, a.s + i, a.n - i < 160 ? a.n - i : 160);
    const ob_detect_result_t *r = ob_detect_result(d);
    cr_expect(final, "%s: not final", c->name);
    cr_expect_eq(r->verdict, OB_DETECT_MACHINE, "%s: %s", c->name, ob_detect_name(r->verdict));
    cr_expect(r->greeting_over, "%s: the greeting is not over", c->name);
    cr_expect_eq(r->beep, c->beep, "%s: beep %d", c->name, r->beep);
    cr_expect(abs(r->greeting_over_ms - c->over_ms) <= 40, "%s: over at %d ms, expected %d",
              c->name, r->greeting_over_ms, c->over_ms);
    if (c->beep)
        cr_expect_eq(r->beep_end_ms, r->greeting_over_ms, "%s: beep end %d", c->name,
                     r->beep_end_ms);
    else
        cr_expect_eq(r->beep_end_ms, -1, "%s: beep end %d", c->name, r->beep_end_ms);
    /* The greeting was still going at the verdict, or had just ended. */
    cr_expect(r->greeting_end_ms > 300 && r->greeting_end_ms <= 300 + c->greeting_ms + 20,
              "%s: greeting end %d", c->name, r->greeting_end_ms);
    ob_detect_free(d);
    free(a.s);
}

Test(detect, the_greeting_end_is_the_end_of_the_last_words_and_none_without_words)
{
    audio_t a = {0};
    silence(&a, 400);
    talk(&a, 600);
    silence(&a, 3000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_VOICE);
    cr_expect(abs(r.greeting_end_ms - 1000) <= 60, "greeting end at %d ms", r.greeting_end_ms);
    cr_expect(!r.greeting_over, "a person's greeting is never 'over'");
    free(a.s);

    audio_t quiet = {0};
    silence(&quiet, 6000);
    r = run(&quiet, 0);
    cr_expect_eq(r.verdict, OB_DETECT_UNKNOWN);
    cr_expect_eq(r.greeting_end_ms, -1, "greeting end %d", r.greeting_end_ms);
    free(quiet.s);
}

typedef struct {
    const char *json; /* a deployment's detection */
    ob_rc_t rc;       /* expected */
    int silence_ms;   /* greeting_silence_ms then */
    const char *err;  /* in the error */
} silence_cfg_case_t;

static silence_cfg_case_t silence_cfgs[] = {
    {"", OB_OK, 3000, ""},
    {"{\"greeting_silence_ms\": 1500}", OB_OK, 1500, ""},
    {"{\"greeting_silence_ms\": 400}", OB_EINVAL, 3000,
     "greeting_silence_ms must be an integer from 500 to 10000"},
    {"{\"greeting_silence_ms\": 10001}", OB_EINVAL, 3000, "greeting_silence_ms"},
};

ParameterizedTestParameters(detect, greeting_silence_ms_is_a_threshold_in_its_range)
{
    return cr_make_param_array(silence_cfg_case_t, silence_cfgs,
                               sizeof(silence_cfgs) / sizeof(silence_cfgs[0]));
}

ParameterizedTest(silence_cfg_case_t *c, detect, greeting_silence_ms_is_a_threshold_in_its_range)
{
    ob_detect_config_t cfg;
    ob_err_t err = {{0}};
    cr_expect_eq(ob_detect_config_parse(c->json, &cfg, &err), c->rc, "%s: %s", c->json, err.msg);
    cr_expect_eq(cfg.greeting_silence_ms, c->silence_ms, "%s", c->json);
    cr_expect(strstr(err.msg, c->err) != NULL, "%s: %s", c->json, err.msg);
}

/* ---- speech, as people and machines say it ------------------------------- */

/* Mean square of a's samples from i to j. */
static double power(const int16_t *x, size_t i, size_t j)
{
    double sum = 0;
    for (size_t k = i; k < j; k++)
        sum += (double)x[k] * x[k];
    return j > i ? sum / (double)(j - i) : 0;
}

/* text spoken by espeak-ng, silence trimmed, scaled to rms (linear). */
static audio_t spoken(const char *text, const char *voice, int rate, double rms)
{
    int16_t *x = NULL;
    size_t n = 0, i = 0, j;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_tts_render(text, voice, rate, 0, &x, &n, &err), OB_OK, "%s", err.msg);
    j = n;
    while (i + 160 < j && power(x, i, i + 160) < 1e4)
        i += 160;
    while (j > i + 160 && power(x, j - 160, j) < 1e4)
        j -= 160;
    double gain = rms / sqrt(power(x, i, j));
    audio_t a = {0};
    for (size_t k = i; k < j; k++)
        push(&a, gain * x[k]);
    free(x);
    return a;
}

static void append(audio_t *a, const audio_t *b)
{
    for (size_t k = 0; k < b->n; k++)
        push(a, b->s[k]);
}

/* Adds b (looped) to a from its start, at rms. */
static void mix(audio_t *a, const audio_t *b, double rms)
{
    double gain = rms / sqrt(power(b->s, 0, b->n));
    for (size_t k = 0; k < a->n; k++) {
        double v = a->s[k] + gain * b->s[k % b->n];
        a->s[k] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
}

#define RECEPTIONIST   "Good afternoon, law offices of Smith and Jones, how may I direct your call?"
#define SENTENCE       "Hello, I'm in the middle of something, can you call me back later?"
#define SHORT_GREETING "Hey, it's Maria, leave a message."
#define LONG_GREETING                                                                              \
    "Hi, you've reached the voicemail of John Smith. I can't take your call right now. Please "    \
    "leave your name and number after the tone."
#define BABBLE                                                                                     \
    "And in other news tonight, the city council met to discuss the new budget, which includes "   \
    "funding for parks, roads and the public library, while residents voiced their concerns."

/* How one callee answers: lead silence, words, a pause and more words,
 * then a beep after a pause, all over babble; and what must be decided. */
typedef struct {
    const char *name;       /* the case */
    const char *words;      /* said first */
    const char *voice;      /* espeak-ng voice */
    int rate;               /* words a minute */
    int pause_ms;           /* then a pause */
    const char *more;       /* and these words (NULL: none) */
    int beep_pause_ms;      /* then silence and */
    int beep_hz;            /* a beep at this frequency (0: none) */
    int babble_db;          /* babble this far below the words (0: none) */
    ob_detect_bias_t bias;  /* the deployment's */
    ob_detect_verdict_t is; /* expected verdict */
    const char *why;        /* and rule (NULL: any) */
    int within_ms;          /* decided within this of the first words' end (0: any) */
} callee_case_t;

static callee_case_t callee_cases[] = {
    {"hello", "Hello?", "en-us", 175, 0, NULL, 0, 0, 0, OB_DETECT_BALANCED, OB_DETECT_VOICE,
     "short_greeting", 1000},
    {"full_sentence", SENTENCE, "en-us", 175, 0, NULL, 0, 0, 0, OB_DETECT_BALANCED, OB_DETECT_VOICE,
     "short_greeting", 1600},
    {"full_sentence_slow", SENTENCE, "en-gb+f3", 150, 0, NULL, 0, 0, 0, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, "short_greeting", 1600},
    {"receptionist", RECEPTIONIST, "en-us", 175, 0, NULL, 0, 0, 0, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, "short_greeting", 1600},
    {"receptionist_favouring_people", RECEPTIONIST, "en-us", 150, 0, NULL, 0, 0, 0,
     OB_DETECT_FAVOUR_PERSON, OB_DETECT_VOICE, "short_greeting", 1200},
    {"receptionist_favouring_machines", RECEPTIONIST, "en-us", 130, 0, NULL, 0, 0, 0,
     OB_DETECT_FAVOUR_MACHINE, OB_DETECT_MACHINE, "long_greeting", 0},
    {"repeated_hello", "Hello?", "en-gb", 175, 1200, "Hello?", 0, 0, 0, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, "short_greeting", 1000},
    {"hello_over_babble_15db", "Hello?", "en-us", 175, 0, NULL, 0, 0, 15, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, NULL, 1000},
    {"hello_over_babble_25db", "Hello?", "en-us+f3", 175, 0, NULL, 0, 0, 25, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, NULL, 1000},
    {"sentence_over_babble_20db", SENTENCE, "en-us", 175, 0, NULL, 0, 0, 20, OB_DETECT_BALANCED,
     OB_DETECT_VOICE, NULL, 1600},
    {"long_greeting", LONG_GREETING, "en-us", 175, 0, NULL, 300, 1000, 0, OB_DETECT_BALANCED,
     OB_DETECT_MACHINE, "long_greeting", 0},
    {"short_greeting_beep_after_0.8s", SHORT_GREETING, "en-us", 175, 0, NULL, 800, 1000, 0,
     OB_DETECT_BALANCED, OB_DETECT_MACHINE, "beep", 0},
    {"short_greeting_400hz_beep_after_1.1s", SHORT_GREETING, "en-gb", 160, 0, NULL, 1100, 400, 0,
     OB_DETECT_BALANCED, OB_DETECT_MACHINE, "beep", 0},
    {"short_greeting_2khz_beep_after_1s", SHORT_GREETING, "en-us+f3", 190, 0, NULL, 1000, 2000, 0,
     OB_DETECT_BALANCED, OB_DETECT_MACHINE, "beep", 0},
    {"short_greeting_beep_after_1.5s_favouring_machines", SHORT_GREETING, "en-us", 175, 0, NULL,
     1500, 850, 0, OB_DETECT_FAVOUR_MACHINE, OB_DETECT_MACHINE, "beep", 0},
};

ParameterizedTestParameters(detect, callees_answer_as_people_and_machines_do)
{
    return cr_make_param_array(callee_case_t, callee_cases, OB_COUNTOF(callee_cases));
}

/* The case's audio: 400 ms of line, the words, then 4 s of line. *first_end
 * is where the first words end. */
static audio_t callee_audio(const callee_case_t *c, int *first_end)
{
    audio_t a = {0};
    silence(&a, 400);
    audio_t w = spoken(c->words, c->voice, c->rate, 3000);
    append(&a, &w);
    *first_end = (int)(a.n * 1000 / RATE);
    if (c->more) {
        audio_t m = spoken(c->more, c->voice, c->rate, 3000);
        silence(&a, c->pause_ms);
        append(&a, &m);
        free(m.s);
    }
    if (c->beep_hz) {
        silence(&a, c->beep_pause_ms);
        tone(&a, c->beep_hz, 400, 6000);
    }
    silence(&a, 4000);
    if (c->babble_db) {
        audio_t b = spoken(BABBLE, "en-gb-scotland+m3", 175, 1);
        mix(&a, &b, 3000 * pow(10, -c->babble_db / 20.0));
        free(b.s);
    }
    free(w.s);
    return a;
}

static ob_detect_result_t run_with(const audio_t *a, ob_detect_bias_t bias, int dither_seed)
{
    ob_detect_config_t cfg;
    ob_detect_defaults(&cfg);
    cfg.bias = bias;
    ob_detect_t *d = ob_detect_new(&cfg);
    ob_detect_answered(d);
    srand((unsigned)dither_seed);
    bool done = false;
    for (size_t i = 0; i < a->n && !done; i += 160) {
        int16_t frame[160];
        size_t k = a->n - i < 160 ? a->n - i : 160;
        for (size_t j = 0; j < k; j++) /* +-1 LSB of dither, none for seed 0 */
            frame[j] =
                (int16_t)(a->s[i + j] + (dither_seed && a->s[i + j] > -32768 && a->s[i + j] < 32767
                                             ? rand() % 3 - 1
                                             : 0));
        done = ob_detect_feed(d, frame, k);
    }
    ob_detect_result_t r = *ob_detect_result(d);
    ob_detect_free(d);
    return r;
}

/* "Hello?" in a room where five voices talk 10 dB below the callee: the
 * room's talk, as loud as a word's quieter sounds but filling each other's
 * gaps, is not the callee talking on: a person, decided as soon as after
 * silence. */
Test(detect, a_hello_in_a_room_of_five_voices_is_a_person)
{
    audio_t a = {0};
    silence(&a, 400);
    audio_t w = spoken("Hello?", "en-us", 175, 3000);
    append(&a, &w);
    int first_end = (int)(a.n * 1000 / RATE);
    silence(&a, 4000);
    audio_t b = spoken(BABBLE, "en-gb-scotland+m3", 175, 1);
    for (int v = 0; v < 5; v++) { /* each voice from its own point in the talk */
        audio_t shifted = {0};
        for (size_t k = 0; k < b.n; k++)
            push(&shifted, b.s[(k + (size_t)v * 2970) % b.n]);
        mix(&a, &shifted, 3000 * pow(10, -10 / 20.0) / sqrt(5));
        free(shifted.s);
    }
    ob_detect_result_t r = run_with(&a, OB_DETECT_BALANCED, 1);
    cr_expect_eq(r.verdict, OB_DETECT_VOICE, "%s by %s at %d ms", ob_detect_name(r.verdict), r.why,
                 r.decision_ms);
    cr_expect_lt(r.decision_ms - first_end, 1000, "decided %d ms after the words",
                 r.decision_ms - first_end);
    free(a.s);
    free(w.s);
    free(b.s);
}

ParameterizedTest(callee_case_t *c, detect, callees_answer_as_people_and_machines_do)
{
    int first_end = 0;
    audio_t a = callee_audio(c, &first_end);
    ob_detect_result_t r = run_with(&a, c->bias, 0);
    cr_expect_eq(r.verdict, c->is, "%s: %s by %s at %d ms", c->name, ob_detect_name(r.verdict),
                 r.why, r.decision_ms);
    if (c->why)
        cr_expect(r.why && strcmp(r.why, c->why) == 0, "%s: by %s", c->name, r.why);
    if (c->within_ms)
        cr_expect(r.decision_ms - first_end <= c->within_ms,
                  "%s: decided %d ms after the words ended", c->name, r.decision_ms - first_end);
    cr_expect(r.confidence > 0.5 && r.confidence <= 1, "%s: confidence %.2f", c->name,
              r.confidence);
    /* not on a knife edge: +-1 LSB of dither changes nothing */
    for (int seed = 1; seed <= 3; seed++) {
        ob_detect_result_t q = run_with(&a, c->bias, seed);
        cr_expect(q.verdict == r.verdict && q.why == r.why, "%s, dither %d: %s by %s", c->name,
                  seed, ob_detect_name(q.verdict), q.why);
    }
    free(a.s);
}

/* ---- tones ---------------------------------------------------------------- */

/* Fax answer tone (CED, 2100 Hz) after the V.25 billing delay, and the
 * information tones of both families, in early media or after the answer. */
typedef struct {
    const char *name;       /* the case */
    int delay_ms;           /* line silence before the tone */
    double freqs[3];        /* the tone's segments (one for fax) */
    int seg_ms[3];          /* and their lengths */
    double amp;             /* peak amplitude */
    ob_detect_verdict_t is; /* expected */
    int how;                /* TONE_EARLY, TONE_ANSAM, TONE_BABBLE or 0 */
} tone_case_t;

enum {
    TONE_EARLY = 1,  /* played before the answer (never answered) */
    TONE_ANSAM = 2,  /* the first segment as ANSam: 15 Hz AM, phase reversals */
    TONE_BABBLE = 4, /* talk 20 dB below the tone behind it all */
};

static tone_case_t tone_cases[] = {
    {"ced_after_200ms", 200, {2100}, {3300}, 6000, OB_DETECT_FAX, 0},
    {"ced_after_1.8s", 1800, {2100}, {3300}, 6000, OB_DETECT_FAX, 0},
    {"ced_after_2.2s", 2200, {2100}, {3300}, 2000, OB_DETECT_FAX, 0},
    {"ced_after_2.5s", 2500, {2100}, {3300}, 6000, OB_DETECT_FAX, 0},
    {"ansam_after_2.3s", 2300, {2100}, {3300}, 3000, OB_DETECT_FAX, TONE_ANSAM},
    {"cng_over_babble", 300, {1100, 0, 1100}, {500, 3000, 500}, 6000, OB_DETECT_FAX, TONE_BABBLE},
    {"sit_north_american",
     100,
     {913.8, 1370.6, 1776.7},
     {274, 274, 380},
     6000,
     OB_DETECT_INFOTONE,
     0},
    {"sit_itu_answered", 100, {950, 1400, 1800}, {330, 330, 330}, 6000, OB_DETECT_INFOTONE, 0},
    {"sit_itu_early", 0, {950, 1400, 1800}, {330, 330, 330}, 3000, OB_DETECT_INFOTONE, TONE_EARLY},
    {"sit_itu_quiet", 300, {950, 1400, 1800}, {330, 330, 330}, 800, OB_DETECT_INFOTONE, 0},
    {"sit_itu_over_babble",
     200,
     {950, 1400, 1800},
     {330, 330, 330},
     6000,
     OB_DETECT_INFOTONE,
     TONE_BABBLE},
};

ParameterizedTestParameters(detect, fax_and_information_tones_whenever_they_start)
{
    return cr_make_param_array(tone_case_t, tone_cases, OB_COUNTOF(tone_cases));
}

ParameterizedTest(tone_case_t *c, detect, fax_and_information_tones_whenever_they_start)
{
    audio_t a = {0};
    silence(&a, c->delay_ms);
    for (int k = 0; k < 3 && c->seg_ms[k] > 0; k++) {
        for (int i = 0; (c->how & TONE_ANSAM) && k == 0 && i < c->seg_ms[k] * RATE / 1000; i++) {
            double am = 1 + 0.2 * sin(2 * M_PI * 15 * i / RATE);
            double phase = (i / (RATE * 450 / 1000)) % 2 ? M_PI : 0;
            push(&a, c->amp * am * sin(2 * M_PI * c->freqs[k] * i / RATE + phase) + hiss());
        }
        if (!(c->how & TONE_ANSAM) || k > 0)
            tone(&a, c->freqs[k], c->seg_ms[k], c->freqs[k] > 0 ? c->amp : 0);
    }
    audio_t w =
        spoken("We're sorry, the number you have dialed is not in service.", "en-us", 175, 3000);
    append(&a, &w);
    silence(&a, 3000);
    if ((c->how & TONE_BABBLE)) {
        audio_t b = spoken(BABBLE, "en-gb-scotland+m3", 175, 1);
        mix(&a, &b, c->amp / sqrt(2) / 10);
        free(b.s);
    }
    ob_detect_result_t r = run(&a, c->how & TONE_EARLY ? 100000 : 0);
    cr_expect_eq(r.verdict, c->is, "%s: %s by %s at %d ms", c->name, ob_detect_name(r.verdict),
                 r.why, r.decision_ms);
    cr_expect(!r.beep, "%s: a beep", c->name);
    free(a.s);
    free(w.s);
}

/* Ringback (440+480 Hz, 2 s on, 4 s off) and other early media are never a
 * beep: before the answer, or after it (a carrier that answers first). */
typedef struct {
    const char *name; /* the case */
    int early_ms;     /* of the audio, this much before the answer */
    double f1, f2;    /* the ringing tone (f2 0: one frequency) */
    bool hello_first; /* the callee says "Hello?" before it */
} ring_case_t;

static ring_case_t ring_cases[] = {
    {"ringback_in_early_media", 12000, 440, 480, false},
    {"ringback_after_the_answer", 0, 440, 480, false},
    {"ringback_after_words", 0, 440, 480, true},
    {"uk_ringback_after_words", 0, 400, 450, true},
};

ParameterizedTestParameters(detect, ringback_is_never_a_beep)
{
    return cr_make_param_array(ring_case_t, ring_cases, OB_COUNTOF(ring_cases));
}

ParameterizedTest(ring_case_t *c, detect, ringback_is_never_a_beep)
{
    audio_t a = {0};
    silence(&a, 300);
    if (c->hello_first) {
        audio_t w = spoken("Hello?", "en-us", 175, 3000);
        append(&a, &w);
        free(w.s);
        silence(&a, 300);
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2 * RATE; i++)
            push(&a, 3000 * sin(2 * M_PI * c->f1 * i / RATE) +
                         (c->f2 > 0 ? 3000 * sin(2 * M_PI * c->f2 * i / RATE) : 0) + hiss());
        silence(&a, 4000);
    }
    audio_t w = spoken("Hello?", "en-us", 175, 3000);
    append(&a, &w);
    silence(&a, 3000);
    ob_detect_result_t r = run(&a, c->early_ms);
    cr_expect(!r.beep, "%s: a beep at %d ms", c->name, r.beep_ms);
    cr_expect(r.why == NULL || strcmp(r.why, "beep") != 0, "%s: decided by a beep", c->name);
    free(w.s);
    free(a.s);
}

/* ---- the bias ---------------------------------------------------------------- */

typedef struct {
    const char *json;      /* a deployment's detection */
    ob_rc_t rc;            /* expected */
    ob_detect_bias_t bias; /* then */
    const char *err;       /* in the error */
} bias_case_t;

static bias_case_t bias_cases[] = {
    {"{}", OB_OK, OB_DETECT_BALANCED, ""},
    {"{\"bias\": \"person\"}", OB_OK, OB_DETECT_FAVOUR_PERSON, ""},
    {"{\"bias\": \"balanced\", \"greeting_ms\": 4000}", OB_OK, OB_DETECT_BALANCED, ""},
    {"{\"bias\": \"machine\"}", OB_OK, OB_DETECT_FAVOUR_MACHINE, ""},
    {"{\"bias\": null}", OB_OK, OB_DETECT_BALANCED, ""},
    {"{\"bias\": \"people\"}", OB_EINVAL, OB_DETECT_BALANCED,
     "detection.bias must be \"person\", \"balanced\" or \"machine\""},
    {"{\"bias\": 1}", OB_EINVAL, OB_DETECT_BALANCED, "detection.bias must be"},
    {"{\"bias\": \"Machine\"}", OB_EINVAL, OB_DETECT_BALANCED, "detection.bias must be"},
};

ParameterizedTestParameters(detect, bias_is_person_balanced_or_machine)
{
    return cr_make_param_array(bias_case_t, bias_cases, OB_COUNTOF(bias_cases));
}

ParameterizedTest(bias_case_t *c, detect, bias_is_person_balanced_or_machine)
{
    ob_detect_config_t cfg;
    ob_err_t err = {{0}};
    cr_expect_eq(ob_detect_config_parse(c->json, &cfg, &err), c->rc, "%s: %s", c->json, err.msg);
    cr_expect_eq(cfg.bias, c->bias, "%s: %s", c->json, ob_detect_bias_name(cfg.bias));
    cr_expect(strstr(err.msg, c->err) != NULL, "%s: %s", c->json, err.msg);
}

Test(detect, the_confidence_is_a_number_from_0_to_1_whatever_the_thresholds)
{
    for (int g = 500; g <= 10000; g += 500) {
        ob_detect_config_t cfg;
        ob_detect_defaults(&cfg);
        cfg.greeting_ms = g;
        audio_t a = {0};
        silence(&a, 300);
        talk(&a, 400);
        silence(&a, 3000);
        ob_detect_t *d = ob_detect_new(&cfg);
        ob_detect_answered(d);
        ob_detect_feed(d, a.s, a.n);
        const ob_detect_result_t *r = ob_detect_result(d);
        cr_expect(r->verdict != OB_DETECT_PENDING, "greeting_ms %d: no verdict", g);
        cr_expect(r->confidence >= 0 && r->confidence <= 1, "greeting_ms %d: confidence %f", g,
                  r->confidence);
        ob_detect_free(d);
        free(a.s);
    }
}
