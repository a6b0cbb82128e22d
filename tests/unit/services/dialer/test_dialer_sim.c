/* The sim carrier's documented test numbers and its timing
 * (services/dialer/dialer_sim.c). */
#include "dialer_carrier.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *phone;  /* test number */
    const char *result; /* documented outcome */
    bool answers;       /* connects before ending */
} sim_case_t;

static sim_case_t numbers[] = {
    {"+12125550100", "voice", true},
    {"+12125550109", "voice", true},
    {"+12125550110", "answeringmachine", true},
    {"+442075550110", "answeringmachine", true},
    {"+12125550120", "fax", true},
    {"+12125550130", "busy", false},
    {"+12125550140", "noanswer", false},
    {"+12125550150", "informationtone", false},
    {"+12125550160", "linefailure", false},
    {"+12125550170", "unknown", true},
    {"+12125550212", "voice", true}, /* 55502DX: a person who presses keys */
    {"+12125550299", "voice", true},
};

ParameterizedTestParameters(sim, test_numbers_have_fixed_outcomes)
{
    return cr_make_param_array(sim_case_t, numbers, sizeof(numbers) / sizeof(numbers[0]));
}

ParameterizedTest(sim_case_t *c, sim, test_numbers_have_fixed_outcomes)
{
    for (int attempt = 1; attempt <= 3; attempt++) {
        const char *result;
        bool answers;
        int ring, talk;
        carrier_sim_outcome(c->phone, "0190a6f2-0b7e-7c3a-9f1e-2d3c4b5a6978", attempt, 7, &result,
                            &answers, &ring, &talk);
        cr_expect_str_eq(result, c->result, "%s attempt %d", c->phone, attempt);
        cr_expect_eq(answers, c->answers, "%s", c->phone);
        cr_expect(ring > 0 && ring <= 30000, "%s ring %d", c->phone, ring);
        cr_expect(answers ? talk > 0 : talk == 0, "%s talk %d", c->phone, talk);
    }
}

Test(sim, other_numbers_follow_a_realistic_seeded_mix)
{
    int counts[8] = {0};
    const char *names[] = {"voice",    "answeringmachine", "fax",         "busy",
                           "noanswer", "informationtone",  "linefailure", "unknown"};
    char call_id[40];
    for (int i = 0; i < 10000; i++) {
        const char *result, *again;
        bool answers;
        int ring, talk;
        snprintf(call_id, sizeof(call_id), "call-%d", i);
        carrier_sim_outcome("+4930123456", call_id, 1, 42, &result, &answers, &ring, &talk);
        carrier_sim_outcome("+4930123456", call_id, 1, 42, &again, &answers, &ring, &talk);
        cr_assert_str_eq(result, again, "same seed, same outcome");
        for (int k = 0; k < 8; k++)
            counts[k] += strcmp(result, names[k]) == 0;
    }
    /* Voice dominates and every type occurs. */
    cr_expect(counts[0] > 5500 && counts[0] < 6500, "voice %d of 10000", counts[0]);
    for (int k = 0; k < 8; k++)
        cr_expect(counts[k] > 0, "%s never occurred", names[k]);
}

typedef struct {
    int answered, ended;      /* callback counts */
    const char *last_result;  /* result of the last end */
    bool last_was_answered;   /* whether it had connected */
    const char *decided_as;   /* callee type decided */
    int decision_ms;          /* and when */
    ob_detect_result_t heard; /* what the detector said, if it listened */
} recorder_t;

static void rec_answered(void *w, void *call, const char *type)
{
    (void)call;
    (void)type;
    ((recorder_t *)w)->answered++;
}

static void rec_ended(void *w, void *call, bool was_answered, const char *result, int ring,
                      int talk)
{
    recorder_t *r = w;
    (void)call;
    (void)ring;
    (void)talk;
    r->ended++;
    r->last_result = result;
    r->last_was_answered = was_answered;
}

static void rec_decided(void *w, void *call, const char *type, int decision_ms)
{
    recorder_t *r = w;
    (void)call;
    r->decided_as = type;
    r->decision_ms = decision_ms;
}

static void rec_detected(void *w, void *call, const ob_detect_result_t *res)
{
    (void)call;
    ((recorder_t *)w)->heard = *res;
}

static const carrier_events_t rec_events = {
    .answered = rec_answered,
    .ended = rec_ended,
    .decided = rec_decided,
    .detected = rec_detected,
};

Test(sim, calls_progress_through_answer_to_end_and_free_channels)
{
    recorder_t rec = {0};
    carrier_t *c = carrier_sim_new(1, 1000.0, 1, &rec_events, &rec);
    int handle;
    cr_assert(c->ops->start(
        c, &handle, &(carrier_dial_t){.call_id = "call-a", .attempt = 1, .phone = "+12125550100"}));
    cr_expect_not(c->ops->start(c, &handle,
                                &(carrier_dial_t){
                                    .call_id = "call-b", .attempt = 1, .phone = "+12125550100"}),
                  "only one channel");
    int64_t deadline = ob_mono_ms() + 5000;
    while (rec.ended == 0 && ob_mono_ms() < deadline)
        c->ops->run(c, ob_mono_ms());
    cr_expect_eq(rec.answered, 1);
    cr_expect_eq(rec.ended, 1);
    cr_expect_str_eq(rec.last_result, "voice");
    cr_expect(rec.last_was_answered);
    cr_expect_eq(c->ops->active(c), 0);
    cr_expect(c->ops->start(
                  c, &handle,
                  &(carrier_dial_t){.call_id = "call-b", .attempt = 1, .phone = "+12125550130"}),
              "channel freed");
    c->ops->hangup(c, &handle);
    cr_expect_eq(rec.ended, 2);
    cr_expect_str_eq(rec.last_result, "noanswer", "hung up while ringing");
    c->ops->destroy(c);
}

/* Writes a corpus of one recording: a short "hello" (a 120 Hz voice with
 * its harmonics for 600 ms) between silences, labelled voice. */
static void write_corpus(const char *dir)
{
    char path[256];
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/hello.raw", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 8000 * 4; i++) {
        double v = 0;
        if (i >= 3200 && i < 8000)
            for (int h = 1; h <= 20; h++)
                v += 3000 * sin(2 * M_PI * 120 * h * i / 8000 + h) / h;
        int16_t sample = (int16_t)(v + (rand() % 61) - 30);
        fwrite(&sample, 2, 1, f);
    }
    fclose(f);
    snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
    f = fopen(path, "w");
    fputs("hello\tvoice\t0\t1000\t-1\nsit\tinformationtone\t900\t-1\t-1\n", f);
    fclose(f);
}

Test(sim, a_recording_played_to_the_detector_decides_the_callee_type)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/ob-sim-corpus-%d", (int)getpid());
    write_corpus(dir);
    recorder_t rec = {0};
    ob_err_t err = {{0}};
    carrier_t *c = carrier_sim_new(1, 1000.0, 1, &rec_events, &rec);
    /* Early-media recordings are skipped: the sim never plays before an answer. */
    cr_assert_eq(carrier_sim_play(c, dir, &err), 1, "%s", err.msg);
    int handle;
    ob_detect_config_t cfg;
    ob_detect_defaults(&cfg);
    cr_assert(c->ops->start(
        c, &handle,
        &(carrier_dial_t){
            .call_id = "call-a", .attempt = 1, .phone = "+12125550100", .detect = &cfg}));
    int64_t deadline = ob_mono_ms() + 5000;
    while (rec.ended == 0 && ob_mono_ms() < deadline)
        c->ops->run(c, ob_mono_ms());
    cr_expect_str_eq(rec.last_result, "voice");
    cr_expect_str_eq(rec.decided_as, "voice");
    /* The "hello" ends at 1000 ms; 800 ms of silence later it is a person. */
    cr_expect(rec.decision_ms >= 1700 && rec.decision_ms <= 1900, "decided at %d", rec.decision_ms);
    cr_expect_str_eq(rec.heard.why, "short_greeting");
    cr_expect_eq(rec.heard.decision_ms, rec.decision_ms);
    c->ops->destroy(c);
    c = carrier_sim_new(1, 1, 1, &rec_events, &rec);
    cr_expect_eq(carrier_sim_play(c, "/nonexistent", &err), -1);
    cr_expect(strstr(err.msg, "/nonexistent/manifest.tsv"), "%s", err.msg);
    c->ops->destroy(c);
    char path[128];
    snprintf(path, sizeof(path), "%s/hello.raw", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
    unlink(path);
    rmdir(dir);
}

/* A media recorder: what a call heard back from the sim callee. */
typedef struct {
    recorder_t base;   /* the call's progress (must be first) */
    char keys[8];      /* digits pressed, in order */
    int nkeys;         /* their count */
    int played;        /* plays ended */
    bool interrupted;  /* the last one was cut */
    int greeting_over; /* machine greetings reported over */
    int first_audio;   /* first_audio reports */
    int greeting_end;  /* their greeting_end_ms */
} media_rec_t;

static void rec_played(void *w, void *call, int played_ms, bool interrupted)
{
    media_rec_t *r = w;
    (void)call;
    (void)played_ms;
    r->played++;
    r->interrupted = interrupted;
}

static void rec_digit(void *w, void *call, char digit, bool inband)
{
    media_rec_t *r = w;
    (void)call;
    cr_expect_not(inband, "the sim's keys are RFC 4733 events");
    if (r->nkeys < 7)
        r->keys[r->nkeys++] = digit;
}

static void rec_greeting_over(void *w, void *call, bool beep, int at_ms)
{
    media_rec_t *r = w;
    (void)call;
    (void)at_ms;
    cr_expect(beep, "a sim machine ends its greeting with a beep");
    r->greeting_over++;
}

static void rec_first_audio(void *w, void *call, int greeting_end_ms, int first_audio_ms)
{
    media_rec_t *r = w;
    (void)call;
    r->first_audio++;
    r->greeting_end = greeting_end_ms;
    cr_expect_geq(first_audio_ms, greeting_end_ms, "the audio came after the greeting");
}

static const carrier_events_t media_events = {
    .answered = rec_answered,
    .ended = rec_ended,
    .decided = rec_decided,
    .played = rec_played,
    .digit = rec_digit,
    .greeting_over = rec_greeting_over,
    .first_audio = rec_first_audio,
};

/* Runs the carrier until cond holds (or 5 s pass). */
#define RUN_UNTIL(c, cond)                                                                         \
    for (int64_t until_ = ob_mono_ms() + 5000; !(cond) && ob_mono_ms() < until_;)                  \
        (c)->ops->run((c), ob_mono_ms());

Test(sim, a_key_pressing_callee_interrupts_a_prompt_with_its_keys)
{
    media_rec_t rec = {0};
    carrier_t *c = carrier_sim_new(1, 100.0, 1, &media_events, &rec);
    int handle;
    cr_assert(c->ops->start(
        c, &handle, &(carrier_dial_t){.call_id = "k", .attempt = 1, .phone = "+12125550234"}));
    RUN_UNTIL(c, rec.base.decided_as != NULL);
    cr_assert_str_eq(rec.base.decided_as, "voice");
    /* A 10 s prompt with barge-in: the first key (1 s in) cuts it. */
    dialer_audio_t *a = dialer_audio_new(ob_xcalloc(80000, sizeof(int16_t)), 80000);
    c->ops->play(c, &handle, a, 1, true);
    dialer_audio_unref(a);
    RUN_UNTIL(c, rec.nkeys == 3);
    cr_expect_str_eq(rec.keys, "34#");
    cr_expect_eq(rec.played, 1);
    cr_expect(rec.interrupted, "the prompt was cut by the key");
    c->ops->hangup(c, &handle);
    cr_expect_eq(rec.first_audio, 1, "the first audio's timing is reported at the end");
    c->ops->destroy(c);
}

Test(sim, a_machine_ends_its_greeting_with_a_beep_after_its_verdict)
{
    media_rec_t rec = {0};
    carrier_t *c = carrier_sim_new(1, 100.0, 1, &media_events, &rec);
    int handle;
    cr_assert(c->ops->start(
        c, &handle, &(carrier_dial_t){.call_id = "m", .attempt = 1, .phone = "+12125550110"}));
    RUN_UNTIL(c, rec.greeting_over == 1);
    cr_expect_str_eq(rec.base.decided_as, "answeringmachine");
    cr_expect_eq(rec.greeting_over, 1);
    /* Audio played after it plays whole: no keys from a machine. */
    dialer_audio_t *a = dialer_audio_new(ob_xcalloc(8000, sizeof(int16_t)), 8000);
    c->ops->play(c, &handle, a, 2, false);
    dialer_audio_unref(a);
    RUN_UNTIL(c, rec.played == 1);
    cr_expect_not(rec.interrupted);
    cr_expect_eq(rec.nkeys, 0);
    c->ops->hangup(c, &handle);
    cr_expect_gt(rec.greeting_end, 0, "%d", rec.greeting_end);
    c->ops->destroy(c);
}
