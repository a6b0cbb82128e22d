/* The webhook signature and retry schedule (services/dialer/dialer_webhooks.c).
 * Expected signatures come from Python's hmac module, as a receiver would
 * compute them. */
#include "dialer_webhooks.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *secret, *timestamp, *body; /* what is signed */
    const char *expected;                  /* the header value */
} sign_case_t;

static sign_case_t signatures[] = {
    {"s3cret", "1700000000", "{\"a\":1}",
     "v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"},
    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "1", "",
     "v1=59b62c20eecb01a47fb5150c6f29f9c8a91a294758ac490a1dffb60897208eed"},
    {"key", "1764226800", "{\"event_id\":\"x\",\"call_id\":\"y\"}",
     "v1=b5dba7a66a00562450b0d335ef35787c153eabaf3f964ce85847124749345f42"},
};

ParameterizedTestParameters(webhooks, signature_is_hmac_sha256_of_timestamp_dot_body)
{
    return cr_make_param_array(sign_case_t, signatures, sizeof(signatures) / sizeof(signatures[0]));
}

ParameterizedTest(sign_case_t *c, webhooks, signature_is_hmac_sha256_of_timestamp_dot_body)
{
    char sig[DIALER_WEBHOOK_SIG_LEN];
    dialer_webhook_sign(c->secret, c->timestamp, c->body, strlen(c->body), sig);
    cr_expect_str_eq(sig, c->expected, "secret %s, timestamp %s", c->secret, c->timestamp);
}

Test(webhooks, signature_changes_with_timestamp_body_and_secret)
{
    char a[DIALER_WEBHOOK_SIG_LEN], b[DIALER_WEBHOOK_SIG_LEN];
    dialer_webhook_sign("k", "1", "x", 1, a);
    dialer_webhook_sign("k", "2", "x", 1, b);
    cr_expect_str_neq(a, b, "a replayed body with another timestamp fails");
    dialer_webhook_sign("k", "1", "y", 1, b);
    cr_expect_str_neq(a, b);
    dialer_webhook_sign("j", "1", "x", 1, b);
    cr_expect_str_neq(a, b);
}

typedef struct {
    int attempt;       /* the try that failed */
    double jitter;     /* in [0, 1) */
    long long wait_ms; /* expected wait before the next */
} backoff_case_t;

/* base 5 s, cap 1 h: 5, 10, 20, ... s, halved at jitter 0. */
static backoff_case_t backoffs[] = {
    {1, 0.999999, 5000},       {1, 0.0, 2500},     {2, 0.999999, 10000},
    {3, 0.999999, 20000},      {4, 0.5, 30000},    {10, 0.999999, 2560000},
    {11, 0.999999, 3600000},   {11, 0.0, 1800000}, {40, 0.999999, 3600000},
    {1000, 0.999999, 3600000},
};

ParameterizedTestParameters(webhooks, backoff_doubles_to_the_cap_with_equal_jitter)
{
    return cr_make_param_array(backoff_case_t, backoffs, sizeof(backoffs) / sizeof(backoffs[0]));
}

ParameterizedTest(backoff_case_t *c, webhooks, backoff_doubles_to_the_cap_with_equal_jitter)
{
    long long got = dialer_webhook_backoff_ms(c->attempt, 5000, 3600000, c->jitter);
    /* jitter just below 1 rounds down by at most a few ms */
    cr_expect(got <= c->wait_ms && got >= c->wait_ms - 5, "try %d, jitter %f: %lld, want %lld",
              c->attempt, c->jitter, got, c->wait_ms);
}

Test(webhooks, jitter_stays_within_half_and_whole_wait)
{
    for (int attempt = 1; attempt < 20; attempt++)
        for (double j = 0; j < 1; j += 0.01) {
            long long full = dialer_webhook_backoff_ms(attempt, 200, 60000, 0.999999);
            long long got = dialer_webhook_backoff_ms(attempt, 200, 60000, j);
            cr_assert(got >= full / 2 && got <= full, "try %d jitter %f: %lld of %lld", attempt, j,
                      got, full);
        }
}

Test(webhooks, gives_up_after_the_maximum_age)
{
    dialer_webhooks_opts_t o = {
        .retry_base_ms = 5000, .retry_max_ms = 3600000, .max_age_ms = 86400000};
    int64_t created = 1000000;
    cr_expect_eq(dialer_webhook_next_ms(created, created + 100, 1, &o, 0.999999),
                 created + 100 + 4999);
    /* An hour before the end, a 1 h wait no longer fits: give up. */
    cr_expect_eq(dialer_webhook_next_ms(created, created + 86400000 - 1800000, 30, &o, 0.999999),
                 -1);
    cr_expect_gt(dialer_webhook_next_ms(created, created + 86400000 - 1800000, 30, &o, 0.0), 0);

    /* Over 24 h the schedule makes about 30 tries, not thousands. */
    int64_t now = created;
    int tries = 1;
    while ((now = dialer_webhook_next_ms(created, now, tries, &o, 0.5)) > 0)
        tries++;
    cr_expect(tries >= 25 && tries <= 45, "%d tries in 24 h", tries);
}

/* Plum-queued calls' result_url bodies, form-encoded: what PHP's $_POST
 * reads back into Plum's call_details (checked with PHP's parse_str rules:
 * brackets nest, %20 and %2B decode to a space and a plus). */
typedef struct {
    const char *json; /* call_details */
    const char *form; /* the body sent, or NULL: not an object */
} form_case_t;

static form_case_t forms[] = {
    {"{\"status\":\"completed\",\"attempts\":1,\"events\":[{\"event\":\"queued\",\"timestamp\":"
     "1475095892},{\"event\":\"dialing\",\"timestamp\":1475095893}]}",
     "status=completed&attempts=1&events%5B0%5D%5Bevent%5D=queued&events%5B0%5D%5Btimestamp%5D="
     "1475095892&events%5B1%5D%5Bevent%5D=dialing&events%5B1%5D%5Btimestamp%5D=1475095893"},
    {"{\"phone_number\":\"+12125550100\",\"end_timestamp\":null,\"call_parameters\":{\"name\":"
     "\"Sam O'Neil\",\"n\":1.5}}",
     "phone_number=%2B12125550100&end_timestamp=&call_parameters%5Bname%5D=Sam%20O%27Neil&"
     "call_parameters%5Bn%5D=1.5"},
    {"{\"call_parameters\":{},\"ok\":true,\"no\":false}", "ok=1&no=0"},
    {"{\"a b&c\":\"\xc3\xa9\"}", "a%20b%26c=%C3%A9"},
    {"{}", ""},
    {"[1]", NULL},
    {"not json", NULL},
};

ParameterizedTestParameters(webhooks, plum_form_body_reads_back_as_call_details)
{
    return cr_make_param_array(form_case_t, forms, sizeof(forms) / sizeof(forms[0]));
}

ParameterizedTest(form_case_t *c, webhooks, plum_form_body_reads_back_as_call_details)
{
    char *body = dialer_webhook_form_body(c->json);
    if (c->form)
        cr_expect_str_eq(body, c->form, "%s", c->json);
    else
        cr_expect_null(body, "%s", c->json);
    free(body);
}
