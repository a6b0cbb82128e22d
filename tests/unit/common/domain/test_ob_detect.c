/* Callee-type detection (common/domain/ob_detect.c) on synthesized audio: tones
 * as the network sends them, and speech-like sound (a 120 Hz voice with
 * its harmonics, in syllables) for the greeting rules. The generated corpus
 * of real speech is evaluated by tests/detect/eval_detect.c. */
#include "ob_detect.h"

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
    talk(&a, 5000);
    silence(&a, 300);
    tone(&a, 1000, 500, 8000);
    silence(&a, 1000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_str_eq(r.why, "long_greeting");
    cr_expect(r.decision_ms < 5600, "decided at %d ms, the beep is at 5600", r.decision_ms);
    cr_expect(r.beep, "the beep was not heard");
    cr_expect(abs(r.beep_ms - 5600) <= 60, "beep at %d ms", r.beep_ms);
    free(a.s);
}

Test(detect, a_short_greeting_ending_in_a_beep_is_a_machine)
{
    audio_t a = {0};
    silence(&a, 300);
    talk(&a, 1200);
    silence(&a, 200);
    tone(&a, 1400, 400, 8000);
    silence(&a, 2000);
    ob_detect_result_t r = run(&a, 0);
    cr_expect_eq(r.verdict, OB_DETECT_MACHINE, "%s by %s", ob_detect_name(r.verdict), r.why);
    cr_expect_str_eq(r.why, "beep");
    cr_expect(r.beep);
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
    cr_expect_eq(r.decision_ms, 2500, "initial silence decided at %d", r.decision_ms);
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
    /* the beep 5600-6100: over at its end */
    {"beep_after_a_long_greeting", 5000, 300, 500, 1000, 0, true, 6100},
    {"long_beep", 5000, 300, 2500, 1000, 0, true, 8100},
    /* a short greeting ended by its beep (the "beep" verdict) */
    {"beep_decides", 1200, 200, 400, 1000, 0, true, 2100},
    /* no beep: greeting until 5300, then 3000 ms (or 1000) of silence */
    {"silence_after_a_long_greeting", 5000, 5000, 0, 0, 0, false, 8300},
    {"silence_of_the_configured_length", 5000, 5000, 0, 0, 1000, false, 6300},
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
