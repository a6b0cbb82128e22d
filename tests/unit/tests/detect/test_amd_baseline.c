/*
 * The AMD() baseline (tests/detect/amd_baseline.c) decides as Asterisk's
 * rules do on timed patterns of voice and silence: which rule fires, and
 * when.
 */
#include "amd_baseline.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>

typedef struct {
    const char
        *pattern; /* 100 ms a character: '.' silence, 'v' voice, 'q' voice under the threshold */
    const char *cause; /* the rule that decides; NULL: none by the pattern's end */
    int decision_ms;   /* when */
    int max_words;     /* maximumNumberOfWords; 0: the default */
} amd_case_t;

static amd_case_t cases[] = {
    /* "Hello?", then the silence people leave: HUMAN after 800 ms of it. */
    {"....vvvv..........", "HUMAN", 1600, 0},
    /* Nobody speaks: a machine by the initial silence. */
    {"..............................", "INITIALSILENCE", 2500, 0},
    /* Voice adds up past the 1500 ms greeting. */
    {"...vvvvvvvvvvvvvvvvvvvv....", "LONGGREETING", 1800, 0},
    /* The second word is one too many (maximumNumberOfWords 2). */
    {"...vvv.vvv.vvv......", "MAXWORDS", 800, 0},
    /* AMD() starts in a word: voice from the first frame is not counted as one. */
    {"vvvv..........", "HUMAN", 1200, 0},
    /* Voice quieter than the threshold is silence. */
    {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "INITIALSILENCE", 2500, 0},
    /* A short word and a short pause are not yet anything. */
    {"...vv...", NULL, -1, 0},
    /* No decision in 5 s: NOTSURE. */
    {"...v...v...v...v...v...v...v...v...v...v...v...v...v", "TOOLONG", 5000, 100},
};

ParameterizedTestParameters(amd_baseline, rules_fire_as_in_asterisk)
{
    return cr_make_param_array(amd_case_t, cases, OB_COUNTOF(cases));
}

ParameterizedTest(amd_case_t *c, amd_baseline, rules_fire_as_in_asterisk)
{
    amd_config_t cfg;
    amd_defaults(&cfg);
    if (c->max_words)
        cfg.max_words = c->max_words;
    amd_t a;
    amd_init(&a, &cfg);
    int16_t frame[160];
    amd_status_t st = AMD_PENDING;
    for (const char *p = c->pattern; *p && st == AMD_PENDING; p++)
        for (int k = 0; k < 5 && st == AMD_PENDING; k++) {
            double amp = *p == 'v' ? 3000 : *p == 'q' ? 200 : 0;
            for (int i = 0; i < 160; i++)
                frame[i] = (int16_t)(amp * sin(i * 0.3));
            st = amd_feed(&a, frame, 160);
        }
    if (!c->cause) {
        cr_expect_eq(st, AMD_PENDING, "%s: decided %s", c->pattern, a.cause);
        return;
    }
    cr_assert_neq(st, AMD_PENDING, "%s: no decision", c->pattern);
    cr_expect_str_eq(a.cause, c->cause, "%s", c->pattern);
    cr_expect_eq(a.decision_ms, c->decision_ms, "%s: %s at %d ms", c->pattern, a.cause,
                 a.decision_ms);
}

Test(amd_baseline, defaults_are_amd_conf_samples)
{
    amd_config_t c;
    amd_defaults(&c);
    cr_expect_eq(c.initial_silence_ms, 2500);
    cr_expect_eq(c.greeting_ms, 1500);
    cr_expect_eq(c.after_greeting_silence_ms, 800);
    cr_expect_eq(c.total_analysis_ms, 5000);
    cr_expect_eq(c.min_word_ms, 100);
    cr_expect_eq(c.between_words_silence_ms, 50);
    cr_expect_eq(c.max_words, 2);
    cr_expect_eq(c.silence_threshold, 256);
    cr_expect_eq(c.max_word_ms, 5000);
}
