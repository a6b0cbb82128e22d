/* Table-driven tests of the call validation every queueing route shares
 * (ingest_validate_call in services/ingest/ingest_calls.c) and of the Plum
 * form handling in front of it (ingest_plum.c). Cases marked "fuzz" came
 * from tests/fuzz (their inputs are in tests/fuzz/corpus). */
#include "ingest_calls.h"
#include "ingest_plum.h"
#include "ingest_reply.h"
#include "ob_pool.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#define ACCEPTED_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

typedef struct {
    const char *body;  /* the call as JSON */
    const char *field; /* NULL: valid; else the one field named in errors */
    const char *code;  /* and its code */
    const char *text;  /* and a part of its message */
} call_case_t;

static call_case_t call_cases[] = {
    {"{\"phone_number\":\"+12125550100\"}", NULL, NULL, NULL},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-01-02T10:00:00+01:00\"}", NULL, NULL,
     NULL},
    {"{\"phone_number\":\"+12125550100\",\"expires_at\":\"2999-12-31T23:59:59Z\"}", NULL, NULL,
     NULL},
    /* fuzz: a year before 1970 gave a negative time that the call-requests
     * message cannot carry, so the scheduler would drop an accepted call. */
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"0026-01-02T10:00:00+01:00\"}",
     "not_before", "invalid_time", "unix seconds or an RFC 3339 time"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"1969-12-31T23:59:59Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"1970-01-01T00:30:00+01:00\"}",
     "not_before", "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"expires_at\":\"3000-01-01T00:00:00Z\"}", "expires_at",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"expires_at\":\"9999-12-31T23:59:59Z\"}", "expires_at",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2028-02-29T23:59:59.999-23:59\"}", NULL,
     NULL, NULL},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-02-29T10:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-04-31T10:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-01-01T24:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-01-01T10:60:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-1-01T10:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-01-01T-1:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\" 2026-01-01T10:00:00Z\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"2026-01-01T10:00:00+24:00\"}",
     "not_before", "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"+1000000 weeks\"}", "not_before",
     "invalid_time", "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"nan\"}", "not_before", "invalid_time",
     "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"not_before\":\"-1\"}", "not_before", "invalid_time",
     "RFC 3339"},
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"https://example.com/r?a=1\"}", NULL, NULL,
     NULL},
    /* Header injection and other schemes (issue 9). */
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"https://example.com/r\\r\\nX-A: 1\"}",
     "result_url", "invalid_url", "result_url must not contain a carriage return"},
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"https://example.com/r\\nX-A: 1\"}",
     "result_url", "invalid_url", "result_url must not contain a line feed"},
    /* fuzz: a control character other than CR and LF went through. */
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"https://example.com/r?\\u0001\"}",
     "result_url", "invalid_url", "must not contain a control character"},
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"gopher://10.0.0.1:70/\"}", "result_url",
     "invalid_url", "must be an http:// or https:// URL"},
    {"{\"phone_number\":\"+12125550100\",\"result_url\":\"https:///x\"}", "result_url",
     "invalid_url", "must name a host"},
    {"{\"phone_number\":\"+12125550100\",\"result_url\":42}", "result_url", "invalid_url",
     "http or https URL"},
    /* Text Postgres would refuse, from forms and CSV cells (JSON bodies are
     * refused whole). fuzz: a member name of call_parameters that is not
     * UTF-8 was accepted, and its message could not be read back. */
    {"{\"phone_number\":\"+12125550100\",\"message_reference\":\"a\xff\"}", "message_reference",
     "invalid_text", "not UTF-8 text"},
    {"{\"phone_number\":\"+12125550100\",\"call_parameters\":{\"\xce\":1}}",
     "call_parameters.(a member name)", "invalid_text", "not UTF-8 text"},
    /* Retry rules name the results that are retried, listed in the message
     * from the vocabulary (common/domain/ob_vocab.h). */
    {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"busy\":60,\"unknown\":\"never\"}}",
     NULL, NULL, NULL},
    {"{\"phone_number\":\"+12125550100\",\"retry_rules\":[1]}", "retry_rules", "invalid_type",
     "retry_rules must be an object mapping a result (busy, noanswer, informationtone, linefailure,"
     " unknown) to seconds or \"never\""},
    {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"voice\":600}}", "retry_rules.voice",
     "unknown_result",
     "'voice' is not a result that is retried (busy, noanswer, informationtone, linefailure,"
     " unknown); answered calls are never retried"},
    {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"noattempt\":600}}",
     "retry_rules.noattempt", "unknown_result", "is not a result that is retried"},
    {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"Busy\":600}}", "retry_rules.Busy",
     "unknown_result", "is not a result that is retried"},
    /* The call's own call-control document (common/domain/ob_appdoc.h). */
    {"{\"phone_number\":\"+12125550100\",\"app\":[{\"verb\":\"say\",\"text\":\"Hi\"}]}", NULL, NULL,
     NULL},
    {"{\"phone_number\":\"+12125550100\",\"app\":{\"verbs\":[{\"verb\":\"hangup\"}]}}", NULL, NULL,
     NULL},
    {"{\"phone_number\":\"+12125550100\",\"app\":null}", NULL, NULL, NULL},
    {"{\"phone_number\":\"+12125550100\",\"app\":[{\"verb\":\"hangup\"},{\"verb\":\"say\"}]}",
     "app", "invalid_app", "app: verbs[1] (say): text is required"},
    {"{\"phone_number\":\"+12125550100\",\"app\":{\"verbs\":[]}}", "app", "invalid_app",
     "app: verbs: must hold at least one verb"},
    {"{\"phone_number\":\"+12125550100\",\"app\":\"say hi\"}", "app", "invalid_app",
     "app: must be an object with verbs, or an array of verbs"},
};

ParameterizedTestParameters(validate, call)
{
    return cr_make_param_array(call_case_t, call_cases, OB_COUNTOF(call_cases));
}

/* Validates body; returns the errors array (caller deletes). */
static cJSON *validate(const char *body, ob_call_request_t *m, ob_pool_t *pool)
{
    deployment_t dep = {.active = true, .max_attempts = 3, .retry_interval_s = 600};
    cJSON *call = cJSON_Parse(body);
    cr_assert_not_null(call, "bad test JSON %s", body);
    cJSON *errors = cJSON_CreateArray();
    memset(m, 0, sizeof(*m));
    m->accepted_at_ms = ACCEPTED_MS;
    bool ok = ingest_validate_call(pool, call, &dep, m, errors);
    cr_assert_eq(ok, cJSON_GetArraySize(errors) == 0);
    cJSON_Delete(call);
    return errors;
}

ParameterizedTest(call_case_t *c, validate, call)
{
    ob_pool_t *pool = ob_pool_new();
    ob_call_request_t m;
    cJSON *errors = validate(c->body, &m, pool);
    char *text = cJSON_PrintUnformatted(errors);
    if (!c->field) {
        cr_expect_eq(cJSON_GetArraySize(errors), 0, "%s: %s", c->body, text);
        cr_expect(m.not_before_ms >= 0 && m.expires_at_ms >= 0);
    } else {
        cr_assert_eq(cJSON_GetArraySize(errors), 1, "%s: %s", c->body, text);
        const cJSON *e = cJSON_GetArrayItem(errors, 0);
        cr_expect_str_eq(cJSON_GetObjectItem(e, "field")->valuestring, c->field);
        cr_expect_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, c->code);
        cr_expect(strstr(cJSON_GetObjectItem(e, "message")->valuestring, c->text) != NULL,
                  "%s lacks '%s'", text, c->text);
    }
    cJSON_free(text);
    cJSON_Delete(errors);
    ob_pool_free(pool);
}

/* A valid app is carried in the request as compact JSON; the Plum routes
 * know no app (Plum's fields only). */
Test(validate, app_carried_native_only)
{
    ob_pool_t *pool = ob_pool_new();
    deployment_t dep = {.active = true, .max_attempts = 3, .retry_interval_s = 600};
    cJSON *call = cJSON_Parse("{\"phone_number\":\"+12125550100\","
                              "\"app\": [ {\"verb\": \"say\", \"text\": \"Hi {{name}}\"} ]}");
    cJSON *errors = cJSON_CreateArray();
    ob_call_request_t m = {.accepted_at_ms = ACCEPTED_MS};
    cr_assert(ingest_validate_call(pool, call, &dep, &m, errors));
    cr_expect_str_eq(m.app, "[{\"verb\":\"say\",\"text\":\"Hi {{name}}\"}]");
    ob_call_request_t p = {.accepted_at_ms = ACCEPTED_MS, .queued_via = "plum"};
    cr_expect_not(ingest_validate_call(pool, call, &dep, &p, errors));
    cr_expect_null(p.app);
    const cJSON *e = cJSON_GetArrayItem(errors, 0);
    cr_expect_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, "unknown_field");
    cJSON_Delete(errors);
    cJSON_Delete(call);
    ob_pool_free(pool);
}

/* Single calls, batch elements and CSV rows read phone numbers alike: an
 * extension is dialed after the answer, a number a spreadsheet wrote in
 * scientific notation is refused. */
typedef struct {
    const char *phone;     /* phone_number as sent */
    const char *e164;      /* the call's number, or NULL when refused */
    const char *post_dial; /* its post-dial digits (NULL: none) */
    const char *text;      /* when refused, a part of the message */
} phone_case_t;

static phone_case_t phone_cases[] = {
    {"+1 617 555 0106 ext. 12", "+16175550106", "12", NULL},
    {"+16175550106#4021", "+16175550106", "4021", NULL},
    {"+16175550106;postd=ww9", "+16175550106", "ww9", NULL},
    {"+16175550106", "+16175550106", NULL, NULL},
    {"1.61755E+10", NULL, NULL, "is in scientific notation"},
    {"+16175550106 x12;postd=3", NULL, NULL, "has an extension and ;postd="},
};

ParameterizedTestParameters(validate, phone)
{
    return cr_make_param_array(phone_case_t, phone_cases, OB_COUNTOF(phone_cases));
}

ParameterizedTest(phone_case_t *c, validate, phone)
{
    ob_pool_t *pool = ob_pool_new();
    ob_call_request_t m;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "phone_number", c->phone);
    char *json = cJSON_PrintUnformatted(body);
    cJSON *errors = validate(json, &m, pool);
    char *text = cJSON_PrintUnformatted(errors);
    if (c->e164) {
        cr_assert_eq(cJSON_GetArraySize(errors), 0, "%s: %s", c->phone, text);
        cr_expect_str_eq(m.phone_number, c->e164);
        if (c->post_dial)
            cr_expect_str_eq(m.post_dial, c->post_dial, "%s", c->phone);
        else
            cr_expect_null(m.post_dial, "%s", c->phone);
    } else {
        cr_assert_eq(cJSON_GetArraySize(errors), 1, "%s: %s", c->phone, text);
        const cJSON *e = cJSON_GetArrayItem(errors, 0);
        cr_expect_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, "invalid_phone_number");
        cr_expect(strstr(cJSON_GetObjectItem(e, "message")->valuestring, c->text) != NULL,
                  "%s lacks '%s'", text, c->text);
    }
    cJSON_free(text);
    cJSON_free(json);
    cJSON_Delete(body);
    cJSON_Delete(errors);
    ob_pool_free(pool);
}

/* ---- Plum forms ---- */

typedef struct {
    const char *pieces[4]; /* one field's value as the post processor hands it over */
    const char *want;      /* the value recorded */
} piece_case_t;

static piece_case_t piece_cases[] = {
    {{"+12125550100", NULL}, "+12125550100"},
    {{"+1212", "555", "0100", NULL}, "+12125550100"},
    {{"", NULL}, ""},
};

ParameterizedTestParameters(plum, pieces)
{
    return cr_make_param_array(piece_case_t, piece_cases, OB_COUNTOF(piece_cases));
}

ParameterizedTest(piece_case_t *c, plum, pieces)
{
    cJSON *form = cJSON_CreateObject();
    uint64_t off = 0;
    for (int i = 0; c->pieces[i]; i++) {
        ingest_plum_form_add(form, "phone_number", c->pieces[i], off, strlen(c->pieces[i]));
        off += strlen(c->pieces[i]);
    }
    /* A repeated field keeps its first value. */
    ingest_plum_form_add(form, "phone_number", "+44", 0, 3);
    cr_expect_str_eq(cJSON_GetObjectItem(form, "phone_number")->valuestring, c->want);
    cJSON_Delete(form);
}

typedef struct {
    const char *form;   /* the form as a JSON object of strings (or typed, as JSON bodies are) */
    bool pci;           /* the deployment allows is_pci=1 */
    const char *native; /* the call it becomes, or NULL: refused */
    const char *field;  /* when refused, the Plum field named */
} plum_case_t;

static plum_case_t plum_cases[] = {
    {"{\"phone_number\":\"2125550100\",\"max_retries\":\"2\",\"reattempt_wait\":\"600\"}", false,
     "{\"phone_number\":\"2125550100\",\"max_retries\":2,\"retry_interval_s\":600}", NULL},
    {"{\"call_parameters\":\"{\\\"a\\\":1}\",\"start_timestamp\":\"1893456000\"}", false,
     "{\"call_parameters\":{\"a\":1},\"not_before\":\"1893456000\"}", NULL},
    {"{\"call_parameters\":\"not json\",\"priority\":\"x\"}", false,
     "{\"call_parameters\":\"not json\",\"priority\":\"x\"}", NULL},
    {"{\"scheduled_timestamp\":\"1\",\"start_timestamp\":\"2\"}", false, "{\"not_before\":\"1\"}",
     NULL},
    {"{\"reattempt_wait\":\"59\"}", false, NULL, "reattempt_wait"},
    {"{\"reattempt_wait\":\"86401\"}", false, NULL, "reattempt_wait"},
    {"{\"reattempt_wait\":\"soon\"}", false, NULL, "reattempt_wait"},
    /* A JSON body's typed number is read like the form's text. */
    {"{\"reattempt_wait\":600}", false, "{\"retry_interval_s\":600}", NULL},
    {"{\"reattempt_wait\":\"\",\"message_reference\":\"\"}", false, "{}", NULL},
    {"{\"max_retry\":\"3\"}", false, "{\"max_retries\":3}", NULL},
    /* Plum DEV's English times (2026-01-01T00:00:00Z is the present). */
    {"{\"scheduled_time\":\"tomorrow 9am\"}", false, "{\"not_before\":1767344400}", NULL},
    {"{\"expiration_time\":\"+3 days\"}", false, "{\"expires_at\":\"+3 days\"}", NULL},
    {"{\"end_timestamp\":\"whenever\"}", false, NULL, "end_timestamp"},
    /* Plum DEV: 0 starts at once and never expires. */
    {"{\"scheduled_timestamp\":\"0\",\"expiration_timestamp\":\"0\"}", false, "{}", NULL},
    {"{\"end_timestamp\":0}", false, "{}", NULL},
    /* is_pci: 0 always, 1 where the deployment allows it, never sent on. */
    {"{\"is_pci\":\"0\"}", false, "{}", NULL},
    {"{\"is_pci\":0}", false, "{}", NULL},
    {"{\"is_pci\":\"1\"}", false, NULL, "is_pci"},
    {"{\"is_pci\":\"1\"}", true, "{}", NULL},
    {"{\"is_pci\":\"yes\"}", true, NULL, "is_pci"},
};

ParameterizedTestParameters(plum, to_call)
{
    return cr_make_param_array(plum_case_t, plum_cases, OB_COUNTOF(plum_cases));
}

ParameterizedTest(plum_case_t *c, plum, to_call)
{
    cJSON *form = cJSON_Parse(c->form);
    cr_assert_not_null(form, "bad test JSON %s", c->form);
    cJSON *errors = cJSON_CreateArray();
    ingest_plum_opts_t o = {.pci_allowed = c->pci, .now_ms = ACCEPTED_MS};
    cJSON *call = ingest_plum_to_call(form, &o, errors);
    if (!c->native) {
        cr_expect_null(call, "%s accepted", c->form);
        cr_assert_eq(cJSON_GetArraySize(errors), 1);
        const cJSON *e = cJSON_GetArrayItem(errors, 0);
        cr_expect_str_eq(cJSON_GetObjectItem(e, "field")->valuestring, c->field);
        /* The message names the field too: Plum's {"error"} has only text. */
        cr_expect(strstr(cJSON_GetObjectItem(e, "message")->valuestring, c->field) != NULL);
    } else {
        cr_assert_not_null(call, "%s refused", c->form);
        char *text = cJSON_PrintUnformatted(call);
        cr_expect_str_eq(text, c->native, "%s", c->form);
        cJSON_free(text);
    }
    cJSON_Delete(call);
    cJSON_Delete(errors);
    cJSON_Delete(form);
}

/* Problems on the Plum routes become Plum's {"error": "..."}: one text that
 * still names every bad field, 422 told as 400, other codes kept. */
typedef struct {
    unsigned status;   /* the problem's */
    const char *field; /* its one error's field, or NULL: none */
    const char *msg;   /* and message */
    unsigned want;     /* Plum's status */
    const char *error; /* Plum's error text */
} answer_case_t;

static answer_case_t answer_cases[] = {
    {422, "max_attempts", "max_attempts must be an integer from 1 to 10", 400,
     "the call has 1 invalid field(s): max_attempts must be an integer from 1 to 10"},
    {422, "phone_number", "too short", 400,
     "the call has 1 invalid field(s): phone_number: too short"},
    {409, NULL, NULL, 409, "the call has 1 invalid field(s)"},
    {401, NULL, NULL, 401, "the call has 1 invalid field(s)"},
};

ParameterizedTestParameters(plum, answer)
{
    return cr_make_param_array(answer_case_t, answer_cases, OB_COUNTOF(answer_cases));
}

ParameterizedTest(answer_case_t *c, plum, answer)
{
    ob_http_req_t req = {.pool = ob_pool_new()};
    cJSON *errors = NULL;
    if (c->field) {
        errors = cJSON_CreateArray();
        ingest_add_error(errors, c->field, "x", c->msg);
    }
    ob_http_problem(&req, c->status, "code", errors, "the call has 1 invalid field(s)");
    ingest_plum_answer(&req);
    cr_expect_eq(req.status, c->want);
    cr_expect_str_eq(req.content_type, "application/json");
    cJSON *body = cJSON_ParseWithLength(req.resp_body, req.resp_len);
    cr_assert_not_null(body);
    cr_expect_eq(cJSON_GetArraySize(body), 1, "%.*s", (int)req.resp_len, req.resp_body);
    cr_expect_str_eq(cJSON_GetObjectItem(body, "error")->valuestring, c->error);
    cJSON_Delete(body);
    /* An answer that is not a problem is left alone. */
    ob_http_reply(&req, 200, "application/json", "{}", 2);
    ingest_plum_answer(&req);
    cr_expect_eq(req.status, 200);
    cr_expect_eq(req.resp_len, 2);
    ob_pool_free(req.pool);
}
