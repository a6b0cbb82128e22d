/*
 * Retries by the call's rules, and leases: per-result retry rules (the
 * call's, then the deployment's, then retry_interval_s), Plum DEV's
 * max_retries, and an attempt whose dialer was killed mid-call concluded by
 * the scheduler once its lease ran out, then retried by the rules.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* The seconds between an attempt's end and the call's next attempt. */
static const char NEXT_WAIT_SQL[] =
    "SELECT round(extract(epoch FROM c.next_attempt_at - a.ended_at))::int"
    " FROM calls c JOIN attempts a ON a.call_id = c.call_id AND a.attempt = c.attempts_made"
    " WHERE c.call_id = $1 AND c.state = 'queued' AND a.state = 'ended'";

Test(retries, invalid_rules_and_max_retries_are_named, .timeout = 120, .fini = teardown)
{
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    static const struct {
        const char *body, *field, *code;
    } bad[] = {
        {"{\"phone_number\":\"+12125550100\",\"retry_rules\":[1]}", "retry_rules", "invalid_type"},
        {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"voice\":600}}", "retry_rules.voice",
         "unknown_result"},
        {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"busy\":30}}", "retry_rules.busy",
         "out_of_range"},
        {"{\"phone_number\":\"+12125550100\",\"retry_rules\":{\"noanswer\":\"sometimes\"}}",
         "retry_rules.noanswer", "out_of_range"},
        {"{\"phone_number\":\"+12125550100\",\"max_retries\":11}", "max_retries", "out_of_range"},
        {"{\"phone_number\":\"+12125550100\",\"max_retries\":2,\"max_attempts\":3}", "max_retries",
         "conflict"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h_resp_t r = h_deployment_api(&c, "POST", "/calls", bad[i].body);
        char field[96], code[96];
        snprintf(field, sizeof(field), "\"field\":\"%s\"", bad[i].field);
        snprintf(code, sizeof(code), "\"code\":\"%s\"", bad[i].code);
        cr_expect_eq(r.status, 422, "%s: %s", bad[i].body, r.body);
        cr_expect(strstr(r.body, field) && strstr(r.body, code), "%s: %s lacks %s %s", bad[i].body,
                  r.body, field, code);
        h_resp_free(&r);
    }

    /* Plum DEV's max_retries counts the attempts after the first: 10 is 11. */
    h_resp_t r = h_deployment_api(&c, "POST", "/calls",
                                  "{\"phone_number\":\"+12125550100\",\"max_retries\":10,"
                                  "\"retry_rules\":{\"busy\":600,\"informationtone\":\"never\"}}");
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);

    /* A deployment's default rules are checked the same way. */
    r = h_deployment_api(&c, "PATCH", "", "{\"retry_rules\":{\"fax\":60}}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"retry_rules.fax\""), "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "PATCH", "", "{\"retry_rules\":{\"noanswer\":\"never\"}}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "retry_rules.noanswer"), "never");
    h_resp_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0, "ingest did not drain cleanly");
    PQfinish(pg);
}

Test(retries, each_result_waits_by_its_rule, .timeout = 180, .fini = teardown)
{
    /* 100x: a busy or line failure ends in a fraction of a second, and a
     * noanswer after 0.3 s of ringing. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    const char *p[] = {t.deployment_id};
    free(h_pg_value(pg,
                    "UPDATE deployments SET retry_rules = '{\"noanswer\": \"never\"}'"
                    " WHERE deployment_id = $1 RETURNING 1",
                    1, p));
    cr_assert(h_stack_up(&s, 1, dialer_env));

    /* busy: the call's own rule (900 s); linefailure: no rule, so
     * retry_interval_s (120 s); noanswer: the deployment's rule, never;
     * informationtone: the call's "never" wins over everything. */
    char *busy = h_queue_json(&c, "{\"phone_number\":\"+12125550130\",\"max_attempts\":3,"
                                  "\"retry_interval_s\":120,\"retry_rules\":{\"busy\":900}}");
    char *line = h_queue_json(&c, "{\"phone_number\":\"+12125550160\",\"max_attempts\":3,"
                                  "\"retry_interval_s\":120,\"retry_rules\":{\"busy\":900}}");
    char *noanswer = h_queue_json(&c, "{\"phone_number\":\"+12125550140\",\"max_attempts\":3}");
    char *tone = h_queue_json(&c, "{\"phone_number\":\"+12125550150\",\"max_retries\":4,"
                                  "\"retry_rules\":{\"informationtone\":\"never\"}}");

    char *wait = h_wait_value(&c, NEXT_WAIT_SQL, busy, 60000);
    cr_expect_str_eq(wait, "900", "busy waits by the call's rule");
    free(wait);
    wait = h_wait_value(&c, NEXT_WAIT_SQL, line, 60000);
    cr_expect_str_eq(wait, "120", "a result without a rule waits retry_interval_s");
    free(wait);

    char *body = h_wait_completed(&c, noanswer, 60000);
    cr_assert_not_null(body);
    cr_expect_str_eq(h_json_path(body, "status"), "failed");
    cr_expect_str_eq(h_json_path(body, "result"), "noanswer");
    cr_expect_str_eq(h_json_path(body, "reason"), "retry_rule", "%s", body);
    cr_expect_str_eq(h_json_path(body, "attempts_made"), "1", "%s", body);
    free(body);

    body = h_wait_completed(&c, tone, 60000);
    cr_assert_not_null(body);
    cr_expect_str_eq(h_json_path(body, "status"), "failed");
    cr_expect_str_eq(h_json_path(body, "result"), "informationtone");
    cr_expect_str_eq(h_json_path(body, "reason"), "retry_rule", "%s", body);
    cr_expect_str_eq(h_json_path(body, "max_attempts"), "5", "%s", body);
    free(body);

    /* The scheduled retry is an event, with the attempt's result. */
    char *types = h_event_types(&s, busy, 3, 30000);
    cr_expect(types && strstr(types, "outbound.call.retry_scheduled"), "%s", types);
    free(types);

    cr_expect(h_stack_down(&s));
    free(busy);
    free(line);
    free(noanswer);
    free(tone);
    PQfinish(pg);
}

Test(retries, killed_dialer_lease_expires_and_the_rules_decide, .timeout = 180, .fini = teardown)
{
    /* Real time: a noanswer rings for 30 s, time enough to kill the dialer
     * while it rings. The lease is 3 s, renewed every second. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=1", "OB_DIALER_LEASE_S=3", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char *again = h_queue_json(&c, "{\"phone_number\":\"+12125550141\",\"max_attempts\":2,"
                                   "\"retry_rules\":{\"linefailure\":300}}");
    char *last = h_queue_json(&c, "{\"phone_number\":\"+12125550142\",\"max_attempts\":1}");
    h_wait_row(&c, again, "state = 'dialing'", 60000);
    h_wait_row(&c, last, "state = 'dialing'", 60000);

    /* Renewal keeps a live dialer's lease from running out. */
    h_sleep_ms(4500);
    const char *p[] = {again};
    char *state = h_pg_value(pg, "SELECT state FROM calls WHERE call_id = $1", 1, p);
    cr_expect_str_eq(state, "dialing", "a live dialer's lease was renewed");
    free(state);

    h_proc_t *dialer = NULL;
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0)
            dialer = &s.procs[i];
    cr_assert_not_null(dialer);
    kill(dialer->pid, SIGKILL);
    waitpid(dialer->pid, NULL, 0);
    dialer->pid = 0;

    char *attempt = h_wait_value(&c,
                                 "SELECT result || '/' || reason FROM attempts"
                                 " WHERE call_id = $1 AND attempt = 1 AND state = 'ended'",
                                 again, 30000);
    cr_expect_str_eq(attempt, "linefailure/lease_expired");
    free(attempt);
    char *wait = h_wait_value(&c, NEXT_WAIT_SQL, again, 10000);
    cr_expect_str_eq(wait, "300", "the retry waits by the linefailure rule");
    free(wait);

    char *call =
        h_wait_value(&c,
                     "SELECT status || '/' || result || '/' || reason || '/' || attempts_made"
                     " FROM calls WHERE call_id = $1 AND state = 'completed'",
                     last, 30000);
    cr_expect_str_eq(call, "failed/linefailure/max_attempts/1");
    free(call);

    cr_expect(h_stack_down(&s));
    free(again);
    free(last);
    PQfinish(pg);
}

/* The wait after each result, by rule source: the call's rule, else the
 * deployment's, else the interval; "never" is NULL (no retry). Run by
 * Postgres's retry_wait_s(), which conclude_attempt() uses. */
typedef struct {
    const char *call_rules, *deployment_rules, *interval, *result;
    const char *wait; /* NULL: never */
} wait_case_t;

static const wait_case_t waits[] = {
    {"{}", "{}", "600", "busy", "600"},
    {"{\"busy\": 60}", "{}", "600", "busy", "60"},
    {"{\"busy\": 60}", "{\"busy\": 900}", "600", "busy", "60"},
    {"{}", "{\"busy\": 900}", "600", "busy", "900"},
    {"{\"noanswer\": 3600}", "{\"busy\": 900}", "600", "busy", "900"},
    {"{\"noanswer\": 3600}", "{}", "600", "noanswer", "3600"},
    {"{\"informationtone\": \"never\"}", "{\"informationtone\": 60}", "600", "informationtone",
     NULL},
    {"{}", "{\"fax\": \"never\", \"linefailure\": \"never\"}", "600", "linefailure", NULL},
    {"{\"busy\": \"never\"}", "{}", "600", "unknown", "600"},
};

Test(retries, wait_by_rule_source_table)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        const wait_case_t *w = &waits[i];
        const char *p[] = {w->call_rules, w->deployment_rules, w->interval, w->result};
        char *got = h_pg_value(pg,
                               "SELECT coalesce(retry_wait_s($1::jsonb, $2::jsonb, $3::int, $4)"
                               "::text, 'never')",
                               4, p);
        cr_expect_str_eq(got, w->wait ? w->wait : "never", "case %zu: %s / %s / %s after %s", i,
                         w->call_rules, w->deployment_rules, w->interval, w->result);
        free(got);
    }
    PQfinish(pg);
}
