/* Message codecs (proto/ob_proto.c): round trips, the example messages of
 * the JSON Schemas, and decode errors that name the field. */
#include "ob_proto.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL "0190a6f2-0b7e-7c3a-9f1e-2d3c4b5a6978"
#define DEP  "0190a6f2-0b7e-7c3a-9f1e-000000000001"
#define ACC  "0190a6f2-0b7e-7c3a-9f1e-000000000002"

static char *read_example(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "proto/examples/%s", name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run from the repository root)", path);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(proto, call_request_round_trip)
{
    ob_call_request_t in = {
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .phone_number = "+12125550100",
        .caller_id = "+12125550199",
        .post_dial = "12#",
        .message_reference = "order \"42\"",
        .call_parameters = "{\"name\":\"Sam\"}",
        .queued_via = "plum",
        .max_attempts = 3,
        .retry_interval_s = 600,
        .priority = 5,
        .not_before_ms = 1764200000123,
        .expires_at_ms = 1764300000000,
        .accepted_at_ms = 1764200000000,
    };
    char *json = ob_call_request_encode(&in);
    ob_call_request_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_request_decode(json, strlen(json), &out, &err), OB_OK, "%s", err.msg);
    cr_expect_str_eq(out.call_id, CALL);
    cr_expect_str_eq(out.phone_number, "+12125550100");
    cr_expect_str_eq(out.caller_id, "+12125550199");
    cr_expect_str_eq(out.post_dial, "12#");
    cr_expect_str_eq(out.message_reference, "order \"42\"");
    cr_expect_str_eq(out.call_parameters, "{\"name\":\"Sam\"}");
    cr_expect_null(out.result_url);
    cr_expect_str_eq(out.queued_via, "plum");
    cr_expect_eq(out.max_attempts, 3);
    cr_expect_eq(out.priority, 5);
    cr_expect_eq(out.not_before_ms, 1764200000123);
    cr_expect_eq(out.expires_at_ms, 1764300000000);
    ob_call_request_clear(&out);
    free(json);
}

/* Every byte a client may put in a string survives encoding (as JSON text
 * another parser reads back) and decoding. */
Test(proto, strings_with_control_characters_and_utf8_round_trip)
{
    const char *reference =
        "tab\t nl\n cr\r bell\x07 quote\" backslash\\ slash/ \xc3\xa9\xe2\x82\xac\x7f";
    ob_call_request_t in = {
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .phone_number = "+12125550100",
        .message_reference = (char *)reference,
        .call_parameters = "{\"nested\":{\"a\":[1,2,\"\\u0001\"]}}",
        .max_attempts = 1,
        .not_before_ms = 1,
        .accepted_at_ms = 1,
    };
    char *json = ob_call_request_encode(&in);
    cr_expect(strstr(json, "bell\\u0007") != NULL, "%s", json);
    ob_call_request_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_request_decode(json, strlen(json), &out, &err), OB_OK, "%s: %s", json,
                 err.msg);
    cr_expect_str_eq(out.message_reference, reference);
    cr_expect_str_eq(out.call_parameters, "{\"nested\":{\"a\":[1,2,\"\\u0001\"]}}");
    ob_call_request_clear(&out);
    free(json);
}

/* call_parameters that are not one JSON object are left out, never sent broken. */
Test(proto, call_parameters_that_are_not_an_object_are_dropped)
{
    ob_call_request_t in = {
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .phone_number = "+12125550100",
        .call_parameters = "{\"a\":1} trailing",
        .max_attempts = 1,
        .not_before_ms = 1,
        .accepted_at_ms = 1,
    };
    char *json = ob_call_request_encode(&in);
    ob_call_request_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_request_decode(json, strlen(json), &out, &err), OB_OK, "%s: %s", json,
                 err.msg);
    cr_expect_null(out.call_parameters, "%s", json);
    ob_call_request_clear(&out);
    free(json);
}

Test(proto, dial_job_round_trip)
{
    ob_dial_job_t in = {
        .job_id = CALL,
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .phone_number = "+12125550100",
        .attempt = 2,
        .max_attempts = 3,
        .retry_interval_s = 60,
        .lease_until_ms = 1764200900000,
        .start_url = "https://app.example/start",
        .app = "[{\"verb\":\"say\",\"text\":\"Hi {{name}}\"}]",
    };
    char *json = ob_dial_job_encode(&in);
    cr_expect(strstr(json, ",\"app\":[{\"verb\":\"say\"") != NULL, "%s", json);
    ob_dial_job_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_dial_job_decode(json, strlen(json), &out, &err), OB_OK, "%s", err.msg);
    cr_expect_eq(out.attempt, 2);
    cr_expect_eq(out.lease_until_ms, 1764200900000);
    cr_expect_str_eq(out.start_url, "https://app.example/start");
    cr_expect_str_eq(out.app, "[{\"verb\":\"say\",\"text\":\"Hi {{name}}\"}]");
    cr_expect_null(out.caller_id);
    ob_dial_job_clear(&out);
    free(json);
}

Test(proto, call_event_is_a_cloudevent_and_round_trips)
{
    ob_call_event_t in = {
        .id = CALL,
        .source = "/outbound/dialer/d1",
        .type = "outbound.call.completed",
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .state = "completed",
        .status = "completed",
        .result = "voice",
        .reason = "answered",
        .phone_number = "+12125550100",
        .attempt = 1,
        .max_attempts = 1,
        .time_ms = 1764200000123,
    };
    char *json = ob_call_event_encode(&in);
    cr_expect(strstr(json, "\"specversion\":\"1.0\"") != NULL, "%s", json);
    cr_expect(strstr(json, "\"subject\":\"" CALL "\"") != NULL, "%s", json);
    cr_expect(strstr(json, "\"time\":\"2025-11-26T23:33:20.123Z\"") != NULL, "%s", json);
    ob_call_event_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_event_decode(json, strlen(json), &out, &err), OB_OK, "%s", err.msg);
    cr_expect_str_eq(out.type, "outbound.call.completed");
    cr_expect_str_eq(out.result, "voice");
    cr_expect_eq(out.time_ms, 1764200000123);
    ob_call_event_clear(&out);
    free(json);
}

/* A call's app travels as JSON, object or array; text that is neither is left out. */
typedef struct {
    const char *app;  /* the call request's app text */
    const char *want; /* what decodes back; NULL: left out */
} app_case_t;

static app_case_t apps[] = {
    {"{\"verbs\":[{\"verb\":\"hangup\"}]}", "{\"verbs\":[{\"verb\":\"hangup\"}]}"},
    {"[{\"verb\":\"hangup\"}]", "[{\"verb\":\"hangup\"}]"},
    {"\"say hi\"", NULL},
    {"[1] trailing", NULL},
    {NULL, NULL},
};

ParameterizedTestParameters(proto, call_request_app)
{
    return cr_make_param_array(app_case_t, apps, OB_COUNTOF(apps));
}

ParameterizedTest(app_case_t *c, proto, call_request_app)
{
    ob_call_request_t in = {
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .phone_number = "+12125550100",
        .app = (char *)c->app,
        .max_attempts = 1,
        .not_before_ms = 1,
        .accepted_at_ms = 1,
    };
    char *json = ob_call_request_encode(&in);
    ob_call_request_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_request_decode(json, strlen(json), &out, &err), OB_OK, "%s: %s", json,
                 err.msg);
    if (c->want)
        cr_expect_str_eq(out.app, c->want, "%s", json);
    else
        cr_expect_null(out.app, "%s", json);
    ob_call_request_clear(&out);
    free(json);
}

/* outbound.call.gathered carries the digits; "" (none came) is kept, not left out. */
Test(proto, gathered_event_carries_digits)
{
    static const char *const digits[] = {"1234#", ""};
    for (size_t i = 0; i < OB_COUNTOF(digits); i++) {
        ob_call_event_t in = {
            .id = CALL,
            .source = "/outbound/dialer/d1",
            .type = "outbound.call.gathered",
            .call_id = CALL,
            .deployment_id = DEP,
            .account_id = ACC,
            .state = "connected",
            .phone_number = "+12125550100",
            .attempt = 2,
            .max_attempts = 3,
            .time_ms = 1764200000123,
            .digits = (char *)digits[i],
        };
        char *json = ob_call_event_encode(&in);
        ob_call_event_t out;
        ob_err_t err = {{0}};
        cr_assert_eq(ob_call_event_decode(json, strlen(json), &out, &err), OB_OK, "%s", err.msg);
        cr_expect_str_eq(out.type, "outbound.call.gathered");
        cr_expect_str_eq(out.digits, digits[i], "%s", json);
        cr_expect_eq(out.attempt, 2);
        ob_call_event_clear(&out);
        cr_expect_null(out.digits);
        free(json);
    }
}

/* Any producer may write the events topic: its time is read as written.
 * Found by tests/fuzz/fuzz_proto (corpus regress-event-time-year-overflow):
 * a huge year overflowed the milliseconds (undefined behaviour), and an
 * offset or a fraction of another precision was misread. */
typedef struct {
    const char *time; /* the CloudEvent's time */
    long long ms;     /* what it decodes to; -1: refused */
} event_time_t;

static event_time_t event_times[] = {
    {"5202552025-11-26T23:34:05.120Z", -1},
    {"1969-12-31T23:59:59Z", -1},
    {"2025-11-26T23:33:20Z junk", -1},
    {"2025-11-26T23:33:20.123Z", 1764200000123},
    {"2025-11-26T23:33:20.5Z", 1764200000500},
    {"2025-11-26T23:33:20.123456Z", 1764200000123},
    {"2025-11-27T00:33:20.123+01:00", 1764200000123},
};

ParameterizedTestParameters(proto, event_time_is_read_as_written)
{
    return cr_make_param_array(event_time_t, event_times, OB_COUNTOF(event_times));
}

ParameterizedTest(event_time_t *c, proto, event_time_is_read_as_written)
{
    ob_call_event_t in = {
        .id = CALL,
        .source = "/outbound/dialer/d1",
        .type = "outbound.call.completed",
        .call_id = CALL,
        .deployment_id = DEP,
        .account_id = ACC,
        .state = "completed",
        .phone_number = "+12125550100",
        .attempt = 1,
        .max_attempts = 1,
        .time_ms = 1764200000123,
    };
    char json[2048];
    char *encoded = ob_call_event_encode(&in);
    const char *at = strstr(encoded, "2025-11-26T23:33:20.123Z");
    cr_assert_not_null(at, "%s", encoded);
    snprintf(json, sizeof(json), "%.*s%s%s", (int)(at - encoded), encoded, c->time,
             at + strlen("2025-11-26T23:33:20.123Z"));
    free(encoded);
    ob_call_event_t out;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_call_event_decode(json, strlen(json), &out, &err);
    if (c->ms < 0) {
        cr_expect_eq(rc, OB_EINVAL, "%s accepted", c->time);
        cr_expect(strstr(err.msg, "time must be an RFC 3339 time") != NULL, "%s", err.msg);
        return;
    }
    cr_assert_eq(rc, OB_OK, "%s: %s", c->time, err.msg);
    cr_expect_eq(out.time_ms, c->ms, "%s", c->time);
    ob_call_event_clear(&out);
}

/* The schema examples are what external consumers code against. */
Test(proto, schema_examples_decode)
{
    ob_err_t err = {{0}};
    char *req = read_example("call-request.json");
    char *job = read_example("dial-job.json");
    char *ev = read_example("call-event.json");
    char *gathered = read_example("call-event-gathered.json");
    char *handed = read_example("call-event-handed_over.json");
    ob_call_request_t r;
    ob_dial_job_t j;
    ob_call_event_t e, g, h;
    cr_expect_eq(ob_call_request_decode(req, strlen(req), &r, &err), OB_OK, "request: %s", err.msg);
    cr_expect_str_eq(r.queued_via, "plum");
    cr_expect(r.app && r.app[0] == '[', "request app: %s", r.app);
    cr_expect_eq(ob_dial_job_decode(job, strlen(job), &j, &err), OB_OK, "job: %s", err.msg);
    cr_expect(j.app && strstr(j.app, "\"verbs\""), "job app: %s", j.app);
    cr_expect_eq(ob_call_event_decode(ev, strlen(ev), &e, &err), OB_OK, "event: %s", err.msg);
    cr_expect_eq(ob_call_event_decode(gathered, strlen(gathered), &g, &err), OB_OK, "gathered: %s",
                 err.msg);
    cr_expect_str_eq(g.digits, "1");
    cr_expect_eq(ob_call_event_decode(handed, strlen(handed), &h, &err), OB_OK, "handed_over: %s",
                 err.msg);
    cr_expect_str_eq(h.result, "voice");
    cr_expect_null(h.digits);
    ob_call_request_clear(&r);
    ob_dial_job_clear(&j);
    ob_call_event_clear(&e);
    ob_call_event_clear(&g);
    ob_call_event_clear(&h);
    free(req);
    free(job);
    free(ev);
    free(gathered);
    free(handed);
}

typedef struct {
    const char *json;  /* a broken call request */
    const char *error; /* substring the error must contain */
} bad_request_t;

static bad_request_t bad[] = {
    {"[]", "not a JSON object"},
    {"{\"v\":2,\"kind\":\"queue\"}", "v must be 1"},
    {"{\"v\":1,\"kind\":\"dial\"}", "kind must be \"queue\""},
    {"{\"v\":1,\"kind\":\"queue\"}", "call_id is required"},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"nope\"}", "call_id must be a UUID"},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" CALL "\",\"deployment_id\":\"" DEP "\","
     "\"account_id\":\"" ACC "\",\"phone_number\":\"+1\",\"max_attempts\":12}",
     "max_attempts must be an integer from 1 to 11"},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" CALL "\",\"deployment_id\":\"" DEP "\","
     "\"account_id\":\"" ACC "\",\"phone_number\":\"+1\",\"max_attempts\":1,"
     "\"retry_interval_s\":60,\"not_before\":1,\"accepted_at\":1,\"call_parameters\":[1]}",
     "call_parameters must be an object"},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" CALL "\",\"deployment_id\":\"" DEP "\","
     "\"account_id\":\"" ACC "\",\"phone_number\":\"+1\",\"max_attempts\":1,"
     "\"retry_interval_s\":60,\"not_before\":1,\"accepted_at\":1,\"app\":\"say hi\"}",
     "app must be an object or an array"},
    /* Postgres would refuse the text: skipped, never retried forever. */
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" CALL "\",\"deployment_id\":\"" DEP "\","
     "\"account_id\":\"" ACC "\",\"phone_number\":\"+1\",\"message_reference\":\"\xff\"}",
     "not UTF-8 text"},
};

ParameterizedTestParameters(proto, bad_requests_name_the_problem)
{
    return cr_make_param_array(bad_request_t, bad, sizeof(bad) / sizeof(bad[0]));
}

ParameterizedTest(bad_request_t *c, proto, bad_requests_name_the_problem)
{
    ob_call_request_t out;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_call_request_decode(c->json, strlen(c->json), &out, &err), OB_EINVAL);
    cr_expect(strstr(err.msg, c->error) != NULL, "\"%s\" lacks \"%s\"", err.msg, c->error);
}
