/* Table-driven tests of what the accepted-calls index reads of a
 * call-request message (ingest_accepted_fields in
 * services/ingest/ingest_accepted.c): the encoder's own text read without
 * parsing, any other shape parsed, other kinds and broken text refused. */
#include "ingest_accepted.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#define ID "01a25037-21da-7000-9397-cd31c7b33844"

typedef struct {
    const char *msg;    /* the message text */
    bool call;          /* read as a call */
    long long accepted; /* its accepted_at when a call */
} fields_case_t;

static fields_case_t cases[] = {
    /* As ingest's encoder writes it. */
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" ID "\",\"deployment_id\":\"01a25037-203b-7002-"
     "bcdf-ac8bff07a889\",\"phone_number\":\"+12125550100\",\"max_attempts\":1,"
     "\"accepted_at\":1796642120154}",
     true, 1796642120154LL},
    /* A call whose parameters hold an "accepted_at" of their own, and
     * spaces: parsed, the top-level member counts. */
    {"{\"v\": 1, \"kind\": \"queue\", \"call_id\": \"" ID "\", \"accepted_at\": 5,"
     " \"call_parameters\": {\"accepted_at\": 7}}",
     true, 5},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" ID "\",\"call_parameters\":{\"accepted_at\":7}}",
     false, 0},
    /* Members in another order: parsed. */
    {"{\"accepted_at\":9,\"call_id\":\"" ID "\",\"kind\":\"queue\",\"v\":1}", true, 9},
    /* Other kinds, and what is not a call request. */
    {"{\"v\":1,\"kind\":\"cancel_deployment\",\"command_id\":\"" ID "\",\"requested_at\":1}", false,
     0},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"not-a-uuid\",\"accepted_at\":1}", false, 0},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" ID "\",\"accepted_at\":}", false, 0},
    {"{\"v\":1,\"kind\":\"queue\",\"call_id\":\"" ID "\"", false, 0},
    {"", false, 0},
    {"[]", false, 0},
};

ParameterizedTestParameters(accepted, fields)
{
    return cr_make_param_array(fields_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(fields_case_t *c, accepted, fields)
{
    char id[OB_UUID_STRLEN + 1] = "";
    int64_t at = -1;
    bool call = ingest_accepted_fields(c->msg, strlen(c->msg), id, &at);
    cr_assert_eq(call, c->call, "%s", c->msg);
    if (call) {
        cr_expect_str_eq(id, ID);
        cr_expect_eq(at, c->accepted, "%s: %lld", c->msg, (long long)at);
    }
}
