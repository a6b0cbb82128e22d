/*
 * The call-control document ("app", docs/application.md) from the API to
 * the dial job and back into the store: a call's own app is shown from the
 * moment the call is accepted; a bad one is refused with a 422 naming the
 * verb and the field, alone or as one row of a batch; a deployment's app is
 * set, read back and cleared, and the dial job of a call carries the call's
 * app, else its deployment's. What a dialer reports of a document's run
 * (verbs, digits, the 2-second rule's times) reaches the call's view.
 */
#include "harness_client.h"
#include "ob_calls.h"
#include "ob_common.h"
#include "ob_pg.h"
#include "ob_proto.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;
static h_tenant_t t;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* Calls run 200 times faster than real time on the sim carrier. */
static const char *const fast_sim[] = {"OB_SIM_TIME_SCALE=200", NULL};

#define CALL_APP "[{\"verb\": \"say\", \"text\": \"Hello {{name}}\"}, {\"verb\": \"hangup\"}]"
#define DEP_APP                                                                                    \
    "{\"verbs\": [{\"verb\": \"say\", \"text\": \"Your parcel arrives today\"}],"                  \
    " \"machine\": [{\"verb\": \"say\", \"text\": \"Sorry we missed you\"}]}"

/* The dial jobs seen on the topic: each call's app, by call_id. */
typedef struct {
    char call_id[8][37]; /* the calls looked for */
    char *app[8];        /* their job's app (malloc'd), NULL: none seen or none */
    int seen[8];         /* jobs seen for each */
    int n;               /* calls looked for */
} jobs_t;

static void on_job(void *arg, const void *payload, size_t len)
{
    jobs_t *j = arg;
    ob_dial_job_t job;
    ob_err_t err = {{0}};
    if (ob_dial_job_decode(payload, len, &job, &err) != OB_OK)
        return;
    for (int i = 0; i < j->n; i++) {
        if (strcmp(job.call_id, j->call_id[i]) != 0)
            continue;
        j->seen[i]++;
        free(j->app[i]);
        j->app[i] = job.app ? strdup(job.app) : NULL;
    }
    ob_dial_job_clear(&job);
}

/* True if json has member with a null value (Postgres writes " : ", cJSON ":"). */
static bool has_null(const char *json, const char *member)
{
    char a[96], b[96];
    snprintf(a, sizeof(a), "\"%s\" : null", member);
    snprintf(b, sizeof(b), "\"%s\":null", member);
    return strstr(json, a) || strstr(json, b);
}

/* An app's members compared by Postgres (jsonb equality), whatever the spacing. */
static bool same_json(PGconn *pg, const char *a, const char *b)
{
    const char *p[] = {a, b};
    char *v = h_pg_value(pg, "SELECT ($1::jsonb = $2::jsonb)::text", 2, p);
    bool same = v && strcmp(v, "true") == 0;
    free(v);
    return same;
}

Test(app_doc, from_the_api_to_the_dial_job, .timeout = 240, .fini = teardown)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, fast_sim), "stack did not become ready");

    /* A call's own app, shown by the call right after the 202. */
    char *own =
        h_queue_json(&c, "{\"phone_number\": \"+12125550100\", \"max_attempts\": 1,"
                         " \"call_parameters\": {\"name\": \"Ana\"}, \"app\": " CALL_APP "}");
    h_resp_t r = h_get_call(&c, own);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *text = h_json_path(r.body, "app.0.text");
    cr_expect_str_eq(text, "Hello {{name}}", "%s", r.body);
    free(text);
    text = h_json_path(r.body, "app.1.verb");
    cr_expect_str_eq(text, "hangup", "%s", r.body);
    free(text);
    h_resp_free(&r);

    /* A bad one: 422 naming the verb and the field, nothing queued. */
    r = h_deployment_api(&c, "POST", "/calls",
                         "{\"phone_number\": \"+12125550100\", \"app\": [{\"verb\": \"hangup\"},"
                         " {\"verb\": \"say\"}]}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    char *code = h_json_str(r.body, "code"), *detail = h_json_str(r.body, "detail");
    cr_expect_str_eq(code, "invalid_app", "%s", r.body);
    cr_expect_str_eq(detail, "app: verbs[1] (say): text is required", "%s", r.body);
    free(code);
    free(detail);
    h_resp_free(&r);
    r = h_deployment_api(&c, "POST", "/calls",
                         "{\"phone_number\": \"+12125550100\", \"app\": [{\"verb\": \"gather\","
                         " \"num_digits\": 40}]}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    detail = h_json_str(r.body, "detail");
    cr_expect_str_eq(detail, "app: verbs[0] (gather): num_digits must be an integer from 1 to 32",
                     "%s", r.body);
    free(detail);
    h_resp_free(&r);

    /* A batch: the bad row is reported, the others are queued. */
    r = h_queue_batch(
        &c,
        "[{\"phone_number\": \"+12125550100\", \"max_attempts\": 1, \"app\": " CALL_APP "},"
        " {\"phone_number\": \"+12125550100\", \"app\": {\"verbs\": [{\"verb\":"
        " \"play\", \"url\": \"ftp://x/a.wav\"}]}},"
        " {\"phone_number\": \"+12125550100\", \"max_attempts\": 1}]",
        2);
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "1", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "results.1.row"), "2", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "results.1.errors.0.field"), "app", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "results.1.errors.0.code"), "invalid_app", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "results.1.errors.0.message"),
                     "app: verbs[0] (play): url must be an http:// or https:// URL", "%s", r.body);
    char *batch_own = h_json_path(r.body, "results.0.call_id");
    char *batch_none = h_json_path(r.body, "results.2.call_id");
    cr_assert_not_null(batch_own);
    cr_assert_not_null(batch_none);
    h_resp_free(&r);

    /* The deployment's app: refused when bad, set, read back. */
    r = h_deployment_api(&c, "PATCH", "",
                         "{\"app\": {\"verbs\": [{\"verb\": \"pause\","
                         " \"length_s\": 90}]}}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    detail = h_json_str(r.body, "detail");
    cr_expect_str_eq(detail,
                     "app: verbs[0] (pause): length_s must be a number of seconds from 0.1"
                     " to 60",
                     "%s", r.body);
    free(detail);
    h_resp_free(&r);
    r = h_deployment_api(&c, "PATCH", "", "{\"app\": " DEP_APP "}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    text = h_json_path(r.body, "app");
    cr_expect(text && same_json(pg, text, DEP_APP), "deployment app: %s", r.body);
    free(text);
    h_resp_free(&r);

    /* A call without an app, queued on it, is released with the deployment's. */
    char *dep_call = h_queue(&c, "+12125550100");
    char *body = NULL;
    const char *const ids[] = {own, batch_own, batch_none, dep_call};
    for (size_t i = 0; i < OB_COUNTOF(ids); i++) {
        body = h_wait_completed(&c, ids[i], 60000);
        cr_assert_not_null(body, "call %s did not complete", ids[i]);
        if (i + 1 < OB_COUNTOF(ids))
            free(body);
    }
    /* The call's view: its own app (none here), no digits (nothing
     * gathered), and the deployment's document run on its attempt. */
    cr_expect_null(h_json_path(body, "app"), "%s", body);
    cr_expect(has_null(body, "digits"), "%s", body);
    h_expect_path(body, "attempts.0.verbs.0.verb", "say");
    h_expect_path(body, "attempts.0.verbs.0.outcome", "played");
    cr_expect_geq(h_json_long(body, "attempts.0.first_audio_gap_ms"), 0, "%s", body);
    free(body);

    char topic[128];
    snprintf(topic, sizeof(topic), "%s.dial-jobs", s.prefix);
    jobs_t jobs = {.n = (int)OB_COUNTOF(ids)};
    for (size_t i = 0; i < OB_COUNTOF(ids); i++)
        snprintf(jobs.call_id[i], sizeof(jobs.call_id[i]), "%s", ids[i]);
    cr_expect(h_read_topic(topic, on_job, &jobs), "dial-jobs not read to its end");
    for (int i = 0; i < jobs.n; i++)
        cr_expect_eq(jobs.seen[i], 1, "call %s: %d dial jobs", ids[i], jobs.seen[i]);
    /* A call's own app goes as it is; a call without one gets its
     * deployment's (the batch's call without one may have been released
     * before the deployment had one: not checked). */
    cr_expect(jobs.app[0] && same_json(pg, jobs.app[0], CALL_APP), "job app: %s", jobs.app[0]);
    cr_expect(jobs.app[1] && same_json(pg, jobs.app[1], CALL_APP), "job app: %s", jobs.app[1]);
    cr_expect(jobs.app[3] && same_json(pg, jobs.app[3], DEP_APP), "job app: %s", jobs.app[3]);
    /* The view the job relay reads says the same. */
    const char *p[] = {dep_call};
    char *viewed = h_pg_value(pg, "SELECT app FROM dial_jobs WHERE call_id = $1", 1, p);
    cr_expect(viewed && same_json(pg, viewed, DEP_APP), "dial_jobs.app: %s", viewed);
    free(viewed);
    for (int i = 0; i < jobs.n; i++)
        free(jobs.app[i]);

    /* null clears the deployment's app. */
    r = h_deployment_api(&c, "PATCH", "", "{\"app\": null}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(has_null(r.body, "app"), "%s", r.body);
    h_resp_free(&r);

    /* A deployment created with an app shows it. */
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", t.application_id);
    char *dep2 =
        h_create(&c, path, "{\"name\": \"with app\", \"app\": " CALL_APP "}", "deployment_id");
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep2);
    r = h_get(&c, path);
    text = h_json_path(r.body, "app");
    cr_expect(text && same_json(pg, text, CALL_APP), "%s", r.body);
    free(text);
    h_resp_free(&r);

    /* What went over the wire, for tools/check_schemas.py (apps included). */
    cr_expect_geq(h_capture_topic(&s, "call-requests", "call-request"), 4);
    cr_expect_geq(h_capture_topic(&s, "dial-jobs", "dial-job"), 4);

    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(own);
    free(batch_own);
    free(batch_none);
    free(dep_call);
    free(dep2);
    PQfinish(pg);
}

/* A call and its attempt 1, dialing, written as the scheduler and a dialer
 * would have (no service runs). */
static void dialing_call(PGconn *pg, const char *call_id)
{
    const char *p[] = {call_id, t.deployment_id, t.account_id};
    char *v = h_pg_value(
        pg,
        "WITH c AS (INSERT INTO calls (call_id, deployment_id, account_id, request_partition,"
        " phone_number, max_attempts, retry_interval_s, not_before, next_attempt_at, accepted_at,"
        " state, attempts_made, active_attempt)"
        " VALUES ($1, $2, $3, 0, '+12125550100', 1, 600, now(), now(), now(), 'dialing', 1, 1)"
        " RETURNING call_id)"
        " INSERT INTO attempts (call_id, attempt, deployment_id, job_id, state, lease_until,"
        " dialing_at) SELECT call_id, 1, $2, gen_random_uuid(), 'dialing',"
        " now() + interval '5 minutes', now() FROM c RETURNING 'ok'",
        3, p);
    cr_assert_str_eq(v, "ok");
    free(v);
}

/* Concludes end in a transaction as a dialer does; returns whether it was. */
static bool conclude(PGconn *pg, const ob_attempt_end_t *end)
{
    ob_call_event_t ev = {0};
    bool done = false;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_pg_exec(pg, "BEGIN", 0, NULL, NULL, &err), OB_OK, "%s", err.msg);
    cr_assert_eq(ob_calls_conclude_tx(pg, "/outbound/test", end, 1, &ev, &done, &err), OB_OK, "%s",
                 err.msg);
    cr_assert_eq(ob_pg_exec(pg, "COMMIT", 0, NULL, NULL, &err), OB_OK, "%s", err.msg);
    ob_call_event_clear(&ev);
    return done;
}

static char *view(PGconn *pg, const char *call_id)
{
    const char *p[] = {call_id};
    return h_pg_value(pg, "SELECT call_view($1)::text", 1, p);
}

Test(app_doc, the_conclusion_records_what_the_document_did, .timeout = 60)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    const char *ran = "0190a6f2-0b7e-7c3a-9f1e-00000000a001";
    const char *silent = "0190a6f2-0b7e-7c3a-9f1e-00000000a002";
    dialing_call(pg, ran);
    dialing_call(pg, silent);

    ob_attempt_end_t end = {
        .call_id = ran,
        .attempt = 1,
        .result = OB_RESULT_VOICE,
        .reason = OB_REASON_ANSWERED,
        .answered = true,
        .ring_ms = 3000,
        .talk_ms = 9000,
        .decision_ms = 1200,
        .verbs = "[{\"verb\":\"say\",\"started_ms\":1450,\"duration_ms\":2100,"
                 "\"outcome\":\"done\"},{\"verb\":\"gather\",\"started_ms\":3550,"
                 "\"duration_ms\":1800,\"outcome\":\"digits\",\"digits\":\"42\"}]",
        .digits = "42",
        .greeting_end_ms = 1100,
        .first_audio_ms = 1450,
    };
    cr_assert(conclude(pg, &end));
    char *v = view(pg, ran);
    cr_assert_not_null(v);
    char *f = h_json_path(v, "digits");
    cr_expect_str_eq(f, "42", "%s", v);
    free(f);
    cr_expect_eq(h_json_long(v, "attempts.0.greeting_end_ms"), 1100, "%s", v);
    cr_expect_eq(h_json_long(v, "attempts.0.first_audio_ms"), 1450, "%s", v);
    cr_expect_eq(h_json_long(v, "attempts.0.first_audio_gap_ms"), 350, "%s", v);
    f = h_json_path(v, "attempts.0.verbs.1.digits");
    cr_expect_str_eq(f, "42", "%s", v);
    free(f);
    f = h_json_path(v, "attempts.0.verbs.0.verb");
    cr_expect_str_eq(f, "say", "%s", v);
    free(f);
    f = h_json_path(v, "status");
    cr_expect_str_eq(f, "completed", "%s", v);
    free(f);
    free(v);

    /* Zero-initialised, as a caller that knows nothing of documents
     * leaves it: nothing recorded, and no gap. */
    ob_attempt_end_t plain = {
        .call_id = silent,
        .attempt = 1,
        .result = OB_RESULT_VOICE,
        .reason = OB_REASON_ANSWERED,
        .answered = true,
        .decision_ms = -1,
    };
    cr_assert(conclude(pg, &plain));
    v = view(pg, silent);
    cr_assert_not_null(v);
    cr_expect(has_null(v, "verbs"), "%s", v);
    cr_expect_eq(h_json_long(v, "attempts.0.greeting_end_ms"), -1, "%s", v);
    cr_expect_eq(h_json_long(v, "attempts.0.first_audio_ms"), -1, "%s", v);
    cr_expect_eq(h_json_long(v, "attempts.0.first_audio_gap_ms"), -1, "%s", v);
    cr_expect_null(h_json_path(v, "digits"), "%s", v);
    free(v);
    PQfinish(pg);
}
