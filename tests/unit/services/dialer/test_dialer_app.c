/* The application on answer's pure parts (services/dialer/dialer_app.c): the
 * body POSTed to start_url and the reading of the application's answer; and
 * the sim's callee-type decision and extension that the answers act on. */
#include "dialer_app.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *body;      /* the application's 2xx answer */
    bool ok;               /* accepted */
    bool hangup;           /* asks to hang up */
    long long stay_ms;     /* asks to stay this long, -1: no */
    const char *error_has; /* part of the error when refused */
} answer_case_t;

static answer_case_t answers[] = {
    {"", true, false, -1, NULL},
    {" \r\n", true, false, -1, NULL},
    {"{}", true, false, -1, NULL},
    {"{\"hangup\": true}", true, true, -1, NULL},
    {"{\"hangup\": false}", true, false, -1, NULL},
    {"{\"stay_connected_s\": 30}", true, false, 30000, NULL},
    {"{\"stay_connected_s\": 1.5, \"other\": [1]}", true, false, 1500, NULL},
    {"{\"stay_connected_s\": 0}", true, false, 0, NULL},
    {"{\"stay_connected_s\": null}", true, false, -1, NULL},
    {"{\"hangup\": true, \"stay_connected_s\": 10}", true, true, 10000, NULL},
    {"{\"hangup\": \"yes\"}", false, false, -1, "hangup"},
    {"{\"stay_connected_s\": -1}", false, false, -1, "stay_connected_s"},
    {"{\"stay_connected_s\": 86401}", false, false, -1, "stay_connected_s"},
    {"{\"stay_connected_s\": \"10\"}", false, false, -1, "stay_connected_s"},
    {"[1, 2]", false, false, -1, "not a JSON object"},
    {"\"ok\"", false, false, -1, "not a JSON object"},
    {"<html>OK</html>", false, false, -1, "bad JSON"},
    {"{\"hangup\": tru", false, false, -1, "bad JSON"},
};

ParameterizedTestParameters(app, answer_is_read_or_refused)
{
    return cr_make_param_array(answer_case_t, answers, sizeof(answers) / sizeof(answers[0]));
}

ParameterizedTest(answer_case_t *c, app, answer_is_read_or_refused)
{
    dialer_app_answer_t a;
    ob_err_t err = {{0}};
    ob_rc_t rc = dialer_app_parse_answer(c->body, strlen(c->body), &a, &err);
    cr_expect_eq(rc == OB_OK, c->ok, "%s: rc %d (%s)", c->body, rc, err.msg);
    if (rc == OB_OK) {
        cr_expect_eq(a.hangup, c->hangup, "%s", c->body);
        cr_expect_eq(a.stay_connected_ms, c->stay_ms, "%s", c->body);
    } else {
        cr_expect(strstr(err.msg, c->error_has), "%s: %s lacks %s", c->body, err.msg, c->error_has);
        cr_expect_not(a.hangup, "a refused answer asks for nothing");
        cr_expect_eq(a.stay_connected_ms, -1);
    }
}

Test(app, answer_is_read_within_its_length)
{
    dialer_app_answer_t a;
    ob_err_t err = {{0}};
    const char *body = "{\"hangup\": true}garbage";
    cr_expect_eq(dialer_app_parse_answer(body, 16, &a, &err), OB_OK, "%s", err.msg);
    cr_expect(a.hangup);
}

typedef struct {
    const char *message_reference; /* NULL: none */
    const char *call_parameters;   /* as the job carries it */
    const char *application_id;    /* NULL: unknown */
    const char *event, *callee_type;
    const char *params_sent; /* call_parameters as sent */
} body_case_t;

static body_case_t bodies[] = {
    {"ref-1", "{\"name\":\"Ann\",\"n\":2}", "0190a0b0-0000-7000-8000-00000000a001", "connected",
     "processing", "{\"name\":\"Ann\",\"n\":2}"},
    {NULL, NULL, NULL, "callee_type", "voice", "{}"},
    {"r\"2", "[1,2]", "app", "callee_type", "answeringmachine", "{}"},
    {"", "not json", "app", "connected", "processing", "{}"},
};

ParameterizedTestParameters(app, body_carries_the_call_context)
{
    return cr_make_param_array(body_case_t, bodies, sizeof(bodies) / sizeof(bodies[0]));
}

ParameterizedTest(body_case_t *c, app, body_carries_the_call_context)
{
    ob_dial_job_t job = {
        .job_id = "job",
        .call_id = "0190a0b0-0000-7000-8000-0000000c0001",
        .deployment_id = "0190a0b0-0000-7000-8000-0000000d0001",
        .account_id = "0190a0b0-0000-7000-8000-0000000ac001",
        .phone_number = "+12125550100",
        .message_reference = (char *)c->message_reference,
        .call_parameters = (char *)c->call_parameters,
        .start_url = "http://127.0.0.1:1/start",
        .attempt = 2,
        .max_attempts = 3,
    };
    char *text = dialer_app_body(&job, c->application_id, c->event, c->callee_type);
    cJSON *o = cJSON_Parse(text);
    cr_assert(cJSON_IsObject(o), "%s", text);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "event")->valuestring, c->event);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "call_id")->valuestring, job.call_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "phone_number")->valuestring, job.phone_number);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "deployment_id")->valuestring, job.deployment_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "account_id")->valuestring, job.account_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "callee_type")->valuestring, c->callee_type);
    cr_expect_eq(cJSON_GetObjectItem(o, "attempt")->valuedouble, 2);
    cr_expect_eq(cJSON_GetObjectItem(o, "max_attempts")->valuedouble, 3);
    const cJSON *ref = cJSON_GetObjectItem(o, "message_reference");
    if (c->message_reference)
        cr_expect_str_eq(ref->valuestring, c->message_reference);
    else
        cr_expect(cJSON_IsNull(ref), "%s", text);
    const cJSON *app = cJSON_GetObjectItem(o, "application_id");
    if (c->application_id)
        cr_expect_str_eq(app->valuestring, c->application_id);
    else
        cr_expect(cJSON_IsNull(app), "%s", text);
    char *params = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "call_parameters"));
    cr_expect_str_eq(params, c->params_sent, "sent as an object: %s", text);
    cJSON_free(params);
    cJSON_Delete(o);
    free(text);
}

typedef struct {
    int answered, decided, ended; /* callback counts */
    const char *answered_as;      /* callee type at answer */
    const char *decided_as;       /* callee type decided */
    int ended_talk_ms;            /* talk time reported */
    int decision_ms;              /* decision time reported */
    bool decided_before_end;      /* order of the callbacks */
} recorder_t;

static void rec_answered(void *w, void *call, const char *type)
{
    (void)call;
    ((recorder_t *)w)->answered++;
    ((recorder_t *)w)->answered_as = type;
}

static void rec_decided(void *w, void *call, const char *type, int decision_ms)
{
    recorder_t *r = w;
    (void)call;
    r->decided++;
    r->decided_as = type;
    r->decision_ms = decision_ms;
    r->decided_before_end = r->ended == 0;
}

static void rec_ended(void *w, void *call, bool was_answered, const char *result, int ring,
                      int talk)
{
    recorder_t *r = w;
    (void)call;
    (void)was_answered;
    (void)result;
    (void)ring;
    r->ended++;
    r->ended_talk_ms = talk;
}

static const carrier_events_t rec_events = {rec_answered, rec_ended, rec_decided};

static void run_until(carrier_t *c, const int *count, int64_t timeout_ms)
{
    int64_t deadline = ob_mono_ms() + timeout_ms;
    while (*count == 0 && ob_mono_ms() < deadline)
        c->ops->run(c, ob_mono_ms());
}

Test(app, sim_answers_processing_then_decides_before_the_end)
{
    recorder_t rec = {0};
    carrier_t *c = carrier_sim_new(1, 1000.0, 1, &rec_events, &rec);
    int handle;
    cr_assert(c->ops->start(c, &handle, "call-a", 1, "+12125550110"));
    run_until(c, &rec.ended, 5000);
    cr_expect_eq(rec.answered, 1);
    cr_expect_str_eq(rec.answered_as, "processing");
    cr_expect_eq(rec.decided, 1);
    cr_expect_str_eq(rec.decided_as, "answeringmachine");
    /* Nominal: 2-5 s after the answer, as a real detector listens first. */
    cr_expect(rec.decision_ms >= 2000 && rec.decision_ms <= 5000, "%d ms", rec.decision_ms);
    cr_expect(rec.decided_before_end);
    c->ops->destroy(c);
}

Test(app, sim_extend_overrides_the_talk_time)
{
    recorder_t rec = {0};
    /* 100x: voice talks 10-45 s nominal, 0.1-0.45 s here; a stay of 100 s
     * nominal is 1 s here. */
    carrier_t *c = carrier_sim_new(1, 100.0, 1, &rec_events, &rec);
    int handle;
    cr_assert(c->ops->start(c, &handle, "call-b", 1, "+12125550100"));
    run_until(c, &rec.answered, 5000);
    cr_assert_eq(rec.answered, 1);
    c->ops->extend(c, &handle, 100000);
    int64_t from = ob_mono_ms();
    run_until(c, &rec.ended, 5000);
    cr_expect_eq(rec.ended, 1);
    cr_expect_geq(ob_mono_ms() - from, 950, "stayed the time asked");
    cr_expect(rec.ended_talk_ms >= 99000 && rec.ended_talk_ms <= 102000, "talk %d ms",
              rec.ended_talk_ms);
    c->ops->destroy(c);
}
