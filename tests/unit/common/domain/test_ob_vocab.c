/* Table-driven tests of the vocabulary's names (common/domain/ob_vocab.c): every
 * value's name, written out here once more on purpose, so that a renamed
 * value fails here before it reaches Postgres, the events or a dashboard.
 * tools/check_vocab.py checks the same lists against the SQL and schemas. */
#include "ob_common.h"
#include "ob_vocab.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <string.h>

typedef enum { K_STATE, K_STATUS, K_RESULT, K_REASON, K_WAIT, K_COUNT } kind_t;

static const char *const kind_names[K_COUNT] = {"state", "status", "result", "reason", "wait"};
static const int kind_counts[K_COUNT] = {OB_STATE_COUNT, OB_STATUS_COUNT, OB_RESULT_COUNT,
                                         OB_REASON_COUNT, OB_WAIT_COUNT};

/* name and parse of any kind, through int */
static const char *name_of(kind_t k, int v)
{
    switch (k) {
    case K_STATE:
        return ob_state_name((ob_state_t)v);
    case K_STATUS:
        return ob_status_name((ob_status_t)v);
    case K_RESULT:
        return ob_result_name((ob_result_t)v);
    case K_REASON:
        return ob_reason_name((ob_reason_t)v);
    default:
        return ob_wait_name((ob_wait_t)v);
    }
}

static bool parse(kind_t k, const char *text, int *out)
{
    bool ok = false;
    switch (k) {
    case K_STATE: {
        ob_state_t v = (ob_state_t)*out;
        ok = ob_state_parse(text, &v);
        *out = (int)v;
        break;
    }
    case K_STATUS: {
        ob_status_t v = (ob_status_t)*out;
        ok = ob_status_parse(text, &v);
        *out = (int)v;
        break;
    }
    case K_RESULT: {
        ob_result_t v = (ob_result_t)*out;
        ok = ob_result_parse(text, &v);
        *out = (int)v;
        break;
    }
    case K_REASON: {
        ob_reason_t v = (ob_reason_t)*out;
        ok = ob_reason_parse(text, &v);
        *out = (int)v;
        break;
    }
    default: {
        ob_wait_t v = (ob_wait_t)*out;
        ok = ob_wait_parse(text, &v);
        *out = (int)v;
        break;
    }
    }
    return ok;
}

typedef struct {
    kind_t kind;      /* which vocabulary */
    int value;        /* the enum value */
    const char *name; /* its name, as SQL, JSON and metrics spell it */
} name_case_t;

static name_case_t names[] = {
    {K_STATE, OB_STATE_QUEUED, "queued"},
    {K_STATE, OB_STATE_DIALING, "dialing"},
    {K_STATE, OB_STATE_CONNECTED, "connected"},
    {K_STATE, OB_STATE_COMPLETED, "completed"},
    {K_STATUS, OB_STATUS_COMPLETED, "completed"},
    {K_STATUS, OB_STATUS_FAILED, "failed"},
    {K_STATUS, OB_STATUS_UNCALLED, "uncalled"},
    {K_RESULT, OB_RESULT_VOICE, "voice"},
    {K_RESULT, OB_RESULT_ANSWERINGMACHINE, "answeringmachine"},
    {K_RESULT, OB_RESULT_FAX, "fax"},
    {K_RESULT, OB_RESULT_BUSY, "busy"},
    {K_RESULT, OB_RESULT_NOANSWER, "noanswer"},
    {K_RESULT, OB_RESULT_INFORMATIONTONE, "informationtone"},
    {K_RESULT, OB_RESULT_LINEFAILURE, "linefailure"},
    {K_RESULT, OB_RESULT_UNKNOWN, "unknown"},
    {K_RESULT, OB_RESULT_NOATTEMPT, "noattempt"},
    {K_REASON, OB_REASON_ANSWERED, "answered"},
    {K_REASON, OB_REASON_BUSY, "busy"},
    {K_REASON, OB_REASON_NOANSWER, "noanswer"},
    {K_REASON, OB_REASON_INFORMATIONTONE, "informationtone"},
    {K_REASON, OB_REASON_LINEFAILURE, "linefailure"},
    {K_REASON, OB_REASON_UNKNOWN, "unknown"},
    {K_REASON, OB_REASON_MAX_ATTEMPTS, "max_attempts"},
    {K_REASON, OB_REASON_RETRY_RULE, "retry_rule"},
    {K_REASON, OB_REASON_EXPIRED, "expired"},
    {K_REASON, OB_REASON_CANCELLED, "cancelled"},
    {K_REASON, OB_REASON_WINDOW_CLOSED, "window_closed"},
    {K_REASON, OB_REASON_DIALER_SHUTDOWN, "dialer_shutdown"},
    {K_REASON, OB_REASON_LEASE_EXPIRED, "lease_expired"},
    {K_REASON, OB_REASON_URL_CHECK_FAILED, "url_check_failed"},
    {K_WAIT, OB_WAIT_CAPACITY, "capacity"},
    {K_WAIT, OB_WAIT_WINDOW, "window"},
    {K_WAIT, OB_WAIT_SCHEDULED, "scheduled"},
    {K_WAIT, OB_WAIT_RETRY_WAIT, "retry_wait"},
    {K_WAIT, OB_WAIT_PAUSED, "paused"},
};

ParameterizedTestParameters(vocab, round_trip)
{
    return cr_make_param_array(name_case_t, names, OB_COUNTOF(names));
}

ParameterizedTest(name_case_t *c, vocab, round_trip)
{
    int v = -1;
    cr_expect_str_eq(name_of(c->kind, c->value), c->name, "%s %d", kind_names[c->kind], c->value);
    cr_expect(parse(c->kind, c->name, &v), "%s \"%s\" refused", kind_names[c->kind], c->name);
    cr_expect_eq(v, c->value, "%s \"%s\"", kind_names[c->kind], c->name);
}

/* The table above names every value of every kind, each once. */
Test(vocab, every_value_is_named_once)
{
    for (int k = 0; k < K_COUNT; k++) {
        for (int v = 0; v < kind_counts[k]; v++) {
            int seen = 0;
            for (size_t i = 0; i < OB_COUNTOF(names); i++)
                seen += names[i].kind == (kind_t)k && names[i].value == v;
            cr_expect_eq(seen, 1, "%s %d (%s) is in the table %d times", kind_names[k], v,
                         name_of((kind_t)k, v), seen);
        }
    }
}

typedef struct {
    kind_t kind;      /* which vocabulary */
    const char *text; /* no name of it */
} unknown_case_t;

static unknown_case_t unknowns[] = {
    {K_STATE, NULL},
    {K_STATE, ""},
    {K_STATE, "pending"},
    {K_STATE, "Queued"},
    {K_STATE, "queued "},
    {K_STATE, "released"},
    {K_STATUS, "queued"},
    {K_STATUS, "canceled"},
    {K_STATUS, "processing"},
    {K_RESULT, NULL},
    {K_RESULT, "processing"},
    {K_RESULT, "VOICE"},
    {K_RESULT, "machine"},
    {K_RESULT, "answered"},
    {K_RESULT, "voic"},
    {K_RESULT, "voicemail"},
    {K_REASON, ""},
    {K_REASON, "canceled"},
    {K_REASON, "voice"},
    {K_REASON, "noattempt"},
    {K_REASON, "max-attempts"},
    {K_WAIT, "retry"},
    {K_WAIT, "windows"},
    {K_WAIT, NULL},
};

ParameterizedTestParameters(vocab, refuses_unknown)
{
    return cr_make_param_array(unknown_case_t, unknowns, OB_COUNTOF(unknowns));
}

ParameterizedTest(unknown_case_t *c, vocab, refuses_unknown)
{
    int v = 12345;
    cr_expect_not(parse(c->kind, c->text, &v), "%s \"%s\" accepted", kind_names[c->kind],
                  c->text ? c->text : "(null)");
    cr_expect_eq(v, 12345, "*out changed on refusal");
}

typedef struct {
    ob_result_t result; /* a result */
    bool retried;       /* a retry rule may name it */
    bool dialed;        /* a carrier reports it */
} result_case_t;

static result_case_t result_classes[] = {
    {OB_RESULT_VOICE, false, true},      {OB_RESULT_ANSWERINGMACHINE, false, true},
    {OB_RESULT_FAX, false, true},        {OB_RESULT_BUSY, true, true},
    {OB_RESULT_NOANSWER, true, true},    {OB_RESULT_INFORMATIONTONE, true, true},
    {OB_RESULT_LINEFAILURE, true, true}, {OB_RESULT_UNKNOWN, true, true},
    {OB_RESULT_NOATTEMPT, false, false},
};

ParameterizedTestParameters(vocab, result_classes)
{
    return cr_make_param_array(result_case_t, result_classes, OB_COUNTOF(result_classes));
}

ParameterizedTest(result_case_t *c, vocab, result_classes)
{
    const char *name = ob_result_name(c->result);
    cr_expect_eq(ob_result_retried(c->result), c->retried, "%s retried", name);
    cr_expect_eq((int)c->result < OB_RESULT_DIALED_COUNT, c->dialed, "%s dialed", name);
    /* an unanswered attempt's reason is its result's name */
    ob_reason_t r = OB_REASON_COUNT;
    cr_expect_eq(ob_reason_of_result(c->result, &r), c->retried, "%s as a reason", name);
    if (c->retried)
        cr_expect_str_eq(ob_reason_name(r), name);
    else
        cr_expect_eq(r, OB_REASON_COUNT, "*out changed on refusal");
}

/* The list macros give compile-time label sets, as the services' metric
 * tables use them. */
Test(vocab, lists_build_literals)
{
#define LABEL(e, s) [e] = "result=\"" s "\"",
    static const char *const labels[OB_RESULT_DIALED_COUNT] = {OB_RESULT_DIALED_LIST(LABEL)};
#undef LABEL
    cr_expect_str_eq(labels[OB_RESULT_VOICE], "result=\"voice\"");
    cr_expect_str_eq(labels[OB_RESULT_UNKNOWN], "result=\"unknown\"");
}
