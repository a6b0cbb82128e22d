/* The sim carrier's documented test numbers and its timing
 * (services/dialer/dialer_sim.c). */
#include "dialer_carrier.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

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
    int answered, ended;     /* callback counts */
    const char *last_result; /* result of the last end */
    bool last_was_answered;  /* whether it had connected */
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

static const carrier_events_t rec_events = {rec_answered, rec_ended, NULL, NULL, NULL};

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
