/* Tests of text to speech (common/domain/ob_tts.c), by what a listener
 * hears: speech of a plausible length with energy in it, faster at a higher
 * rate, in the voices asked for; bad voices, rates and texts refused by
 * name; a render bounded in time; renders from two threads at once. */
#include "ob_tts.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SENTENCE "Your appointment is tomorrow at nine"

/* Share of 20 ms frames louder than -35 dBFS: speech, not silence. */
static double voiced_share(const int16_t *x, size_t n)
{
    size_t frames = n / 160, loud = 0;
    for (size_t f = 0; f < frames; f++) {
        double sum = 0;
        for (size_t i = 0; i < 160; i++)
            sum += (double)x[f * 160 + i] * x[f * 160 + i];
        if (sqrt(sum / 160) / 32768.0 > pow(10, -35 / 20.0))
            loud++;
    }
    return frames ? (double)loud / frames : 0;
}

static double seconds(const char *text, const char *voice, int rate)
{
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_tts_render(text, voice, rate, 0, &x, &n, &err), OB_OK, "%s", err.msg);
    free(x);
    return n / 8000.0;
}

typedef struct {
    const char *voice; /* asked for */
    const char *text;  /* said */
} voice_case_t;

static voice_case_t voice_cases[] = {
    {"en-us", SENTENCE},
    {NULL, SENTENCE},      /* en-us */
    {"en-gb", SENTENCE},   /* a language, not a voice's name */
    {"Klingon", SENTENCE}, /* a voice's name */
    {"pt-br", "Sua consulta é amanhã às nove"},
    {"zh", "你的预约是明天九点"},
    {"en-us+f3", SENTENCE}, /* a variant */
    {"fr", "Votre rendez-vous est demain à neuf heures"},
    {"es", "Su cita es mañana a las nueve"},
    {"de", "Ihr Termin ist morgen um neun Uhr"},
};

ParameterizedTestParameters(tts, voices_speak)
{
    return cr_make_param_array(voice_case_t, voice_cases, OB_COUNTOF(voice_cases));
}

ParameterizedTest(voice_case_t *c, tts, voices_speak)
{
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_tts_render(c->text, c->voice, 175, 3000, &x, &n, &err), OB_OK, "%s: %s",
                 c->voice, err.msg);
    double s = n / 8000.0, share = voiced_share(x, n);
    cr_expect(s > 1.0 && s < 5.0, "%s: %.2f s of speech", c->voice, s);
    cr_expect(share > 0.5, "%s: only %.0f%% of it is voiced", c->voice, share * 100);
    free(x);
}

Test(tts, a_higher_rate_is_shorter)
{
    double slow = seconds(SENTENCE, "en-us", 120), fast = seconds(SENTENCE, "en-us", 300);
    cr_expect(fast < slow * 0.6, "rate 300: %.2f s, rate 120: %.2f s", fast, slow);
}

/* espeak-ng's output varies by a few samples from one render to the next. */
Test(tts, no_voice_is_en_us)
{
    cr_expect_float_eq(seconds(SENTENCE, NULL, 175), seconds(SENTENCE, "en-us", 175), 0.01);
    cr_expect(fabs(seconds(SENTENCE, NULL, 175) - seconds(SENTENCE, "fr", 175)) > 0.05);
}

typedef struct {
    const char *text;  /* said */
    const char *voice; /* in */
    int rate;          /* at */
    const char *error; /* the whole message */
} bad_case_t;

static bad_case_t bad_cases[] = {
    {SENTENCE, "xx", 175, "voice xx: no such espeak-ng voice"},
    {SENTENCE, "elvish", 175, "voice elvish: no such espeak-ng voice"},
    {SENTENCE, "en-zz", 175, "voice en-zz: no such espeak-ng voice"},
    {SENTENCE, "../../etc/passwd", 175, "voice ../../etc/passwd: no such espeak-ng voice"},
    {SENTENCE, "", 175, "voice : no such espeak-ng voice"},
    {SENTENCE, "mb-us1", 175, "voice mb-us1: MBROLA voices are not supported"},
    {"", "en-us", 175, "text is empty"},
    {" \n\t", "en-us", 175, "text is empty"},
    {"\xff\xfe", "en-us", 175, "text is not valid UTF-8"},
    {SENTENCE, "en-us", 79, "rate 79 is outside 80-450 words per minute"},
    {SENTENCE, "en-us", 451, "rate 451 is outside 80-450 words per minute"},
};

ParameterizedTestParameters(tts, bad_input_is_named)
{
    return cr_make_param_array(bad_case_t, bad_cases, OB_COUNTOF(bad_cases));
}

ParameterizedTest(bad_case_t *c, tts, bad_input_is_named)
{
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_expect_eq(ob_tts_render(c->text, c->voice, c->rate, 3000, &x, &n, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, c->error);
    cr_expect_null(x);
    /* and the synthesiser still works after it */
    cr_expect_gt(seconds(SENTENCE, "en-us", 175), 1.0);
}

Test(tts, a_render_is_bounded_in_time)
{
    char text[4001] = "";
    while (strlen(text) + sizeof(SENTENCE ". ") < sizeof(text))
        strcat(text, SENTENCE ". ");
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    int64_t t0 = ob_mono_ms();
    cr_expect_eq(ob_tts_render(text, "en-us", 175, 20, &x, &n, &err), OB_ETIMEOUT);
    cr_expect_lt(ob_mono_ms() - t0, 500, "gave up after %lld ms", (long long)(ob_mono_ms() - t0));
    cr_expect_str_eq(err.msg, "render took over 20 ms");
    cr_expect_null(x);
    /* the next render is whole */
    double s = seconds(SENTENCE, "en-us", 175);
    cr_expect(s > 1.0 && s < 5.0, "%.2f s after an aborted render", s);
}

typedef struct {
    const char *voice; /* each thread its own */
    size_t n;          /* samples it got */
} job_t;

static void *render_many(void *arg)
{
    job_t *j = arg;
    for (int i = 0; i < 5; i++) {
        int16_t *x = NULL;
        ob_err_t err = {{0}};
        if (ob_tts_render(SENTENCE, j->voice, 175, 0, &x, &j->n, &err) != OB_OK)
            j->n = 0;
        free(x);
    }
    return NULL;
}

Test(tts, renders_from_two_threads_do_not_mix)
{
    job_t a = {"en-us", 0}, b = {"fr", 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, render_many, &a);
    pthread_create(&tb, NULL, render_many, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    long want_a = lrint(seconds(SENTENCE, "en-us", 175) * 8000);
    long want_b = lrint(seconds(SENTENCE, "fr", 175) * 8000);
    cr_expect(labs((long)a.n - want_a) < 40, "en-us: %zu samples beside fr, %ld alone", a.n,
              want_a);
    cr_expect(labs((long)b.n - want_b) < 40, "fr: %zu samples beside en-us, %ld alone", b.n,
              want_b);
}
