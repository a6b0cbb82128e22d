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
