/*
 * The first call end to end through the three real binaries on the real
 * broker and database: POST a call, watch it complete through the API, and
 * check the row in Postgres and the events on the topic. Every test ends with
 * SIGTERM and asserts a clean drain (exit 0).
 */
#include "harness_client.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test's stack; whatever a failing test leaves running is killed. */
static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* Calls run 200 times faster than real time on the sim carrier. */
static const char *const fast_sim[] = {"OB_SIM_TIME_SCALE=200", NULL};

/* A tenant, its client and the stack (instances of each service, env):
 * the connection to the test's database. */
static PGconn *stack_up(h_tenant_t *t, h_client_t *c, int instances, const char *const *env)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, t, 5);
    *c = h_client(&s, t, pg);
    cr_assert(h_stack_up(&s, instances, env), "stack did not become ready");
    return pg;
}

Test(first_call, queued_call_completes_everywhere, .timeout = 180, .fini = teardown)
{
    h_tenant_t t;
    h_client_t c;
    PGconn *pg = stack_up(&t, &c, 2, fast_sim);

    /* +1 212 555 0100 is the sim carrier's "answers, voice" test number. */
    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+1 (212) 555-0100\","
                                     " \"message_reference\": \"order-42\"}");
    cr_assert_not_null(call_id);

    char *body = h_wait_completed(&c, call_id, 60000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
    char *status = h_json_str(body, "status");
    char *result = h_json_str(body, "result");
    char *phone = h_json_str(body, "phone_number");
    cr_expect_str_eq(status, "completed");
    cr_expect_str_eq(result, "voice");
    cr_expect_str_eq(phone, "+12125550100");
    char *connected_at = h_json_path(body, "attempts.0.connected_at");
    char *talk_ms = h_json_path(body, "attempts.0.talk_ms");
    char *n_attempts = h_json_path(body, "attempts_made");
    cr_expect(connected_at && connected_at[0] == '2', "attempt has no connected_at: %s", body);
    cr_expect(talk_ms && atoi(talk_ms) > 0, "attempt has no talk time: %s", body);
    cr_expect_str_eq(n_attempts, "1");
    /* HTTP metrics name the matched route, never the raw path (ingest is
     * started last); Kafka metrics are per topic. */
    const h_proc_t *ingest = &s.procs[s.nprocs - 1];
    char name[256];
    snprintf(name, sizeof(name),
             "outbound_kafka_messages_produced_total{topic=\"%s.call-requests\"}", s.prefix);
    cr_expect_eq(h_metric(ingest, name), 1, "%s", name);
    snprintf(name, sizeof(name),
             "outbound_kafka_messages_consumed_total{topic=\"%s.call-requests\"}", s.prefix);
    cr_expect_geq(h_metric(&s.procs[0], name), 1, "scheduler: %s", name);
    /* The lag (librdkafka's statistics, every 5 s) is exported per topic and
     * is 0 once the scheduler has consumed the call. */
    snprintf(name, sizeof(name), "outbound_kafka_consumer_lag{topic=\"%s.call-requests\"}",
             s.prefix);
    long lag = -1;
    for (int64_t until = ob_mono_ms() + 12000; lag != 0 && ob_mono_ms() < until; h_sleep_ms(200))
        lag = h_metric(&s.procs[0], name);
    cr_expect_eq(lag, 0, "scheduler: %s", name);
    cr_expect_geq(h_metric(ingest, "outbound_http_requests_total{route=\"/api/v1/deployments/"
                                   "{}/calls\",code=\"202\"}"),
                  1);
    cr_expect_geq(h_metric(ingest, "outbound_http_request_duration_seconds_count{route=\"/api/"
                                   "v1/deployments/{}/calls\"}"),
                  1);
    cr_expect_geq(h_metric(ingest, "outbound_http_requests_total{route=\"/readyz\",code=\"200\"}"),
                  1);
    free(connected_at);
    free(talk_ms);
    free(n_attempts);

    /* The truth in Postgres. */
    const char *p[] = {call_id};
    char *row =
        h_pg_value(pg,
                   "SELECT state || '/' || status || '/' || result || '/' || attempts_made"
                   " || '/' || coalesce(message_reference, '') FROM calls WHERE call_id = $1",
                   1, p);
    cr_expect_str_eq(row, "completed/completed/voice/1/order-42");
    char *attempt = h_pg_value(pg,
                               "SELECT state || '/' || result || '/' || (talk_ms > 0)::text"
                               " FROM attempts WHERE call_id = $1 AND attempt = 1",
                               1, p);
    cr_expect_str_eq(attempt, "ended/voice/true");

    /* The events topic carries every transition, in order. */
    char *types = h_event_types(&s, call_id, 4, 30000);
    cr_expect_str_eq(types, "outbound.call.queued,outbound.call.dialing,outbound.call.connected,"
                            "outbound.call.completed");
    /* Each leaves the outbox once the broker acknowledged it (the dialer
     * marks them a turn later). */
    char *unpublished = NULL;
    int64_t until = ob_mono_ms() + 5000;
    for (;; h_sleep_ms(50)) {
        free(unpublished);
        unpublished = h_pg_value(pg,
                                 "SELECT count(*) FROM call_events_outbox o JOIN call_events e"
                                 " USING (event_id) WHERE e.call_id = $1",
                                 1, p);
        if (strcmp(unpublished, "0") == 0 || ob_mono_ms() > until)
            break;
    }
    cr_expect_str_eq(unpublished, "0");

    /* What went over the wire, for tools/check_schemas.py. */
    cr_expect_eq(h_capture_topic(&s, "call-requests", "call-request"), 1);
    cr_expect_eq(h_capture_topic(&s, "dial-jobs", "dial-job"), 1);
    cr_expect_eq(h_capture_topic(&s, "call-events", "call-event"), 4);

    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(call_id);
    free(body);
    free(status);
    free(result);
    free(phone);
    free(row);
    free(attempt);
    free(types);
    free(unpublished);
    PQfinish(pg);
}

Test(first_call, unanswered_call_fails_after_its_attempts, .timeout = 180, .fini = teardown)
{
    h_tenant_t t;
    h_client_t c;
    PGconn *pg = stack_up(&t, &c, 1, fast_sim);

    /* ...555 0130 is the "busy" test number. */
    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+12125550130\", \"max_attempts\": 1}");
    char *body = h_wait_completed(&c, call_id, 60000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
    char *status = h_json_str(body, "status");
    char *result = h_json_str(body, "result");
    char *reason = h_json_str(body, "reason");
    cr_expect_str_eq(status, "failed");
    cr_expect_str_eq(result, "busy");
    cr_expect_str_eq(reason, "max_attempts");

    char *types = h_event_types(&s, call_id, 3, 30000);
    cr_expect_str_eq(types, "outbound.call.queued,outbound.call.dialing,outbound.call.completed");

    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(call_id);
    free(body);
    free(status);
    free(result);
    free(reason);
    free(types);
    PQfinish(pg);
}

Test(first_call, api_refuses_what_it_cannot_accept, .timeout = 180, .fini = teardown)
{
    h_tenant_t t, other;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_tenant(pg, &other, 5);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    /* Theirs: the other account's key on this account's deployment. */
    h_client_t mine = h_client(&s, &t, pg), them = h_client(&s, &other, pg);
    h_client_t theirs = h_client_on(&them, t.deployment_id);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", t.deployment_id);
    const char *no_key[] = {"Content-Type: application/json", NULL};
    const char *bad_key[] = {"Authorization: Bearer obk_nope", NULL};
    const char *good = "{\"phone_number\": \"+12125550100\"}";

    h_resp_t r = h_http(s.ingest_port, "POST", path, no_key, good);
    cr_expect_eq(r.status, 401);
    cr_expect(r.content_type && strstr(r.content_type, "application/problem+json"));
    h_resp_free(&r);

    r = h_http(s.ingest_port, "POST", path, bad_key, good);
    cr_expect_eq(r.status, 401);
    cr_expect(strstr(r.body, "\"code\":\"invalid_api_key\""), "%s", r.body);
    h_resp_free(&r);

    /* Another account's deployment looks exactly like a missing one. */
    r = h_deployment_request(&theirs, "POST", "/calls", NULL, NULL, good);
    cr_expect_eq(r.status, 404);
    cr_expect(strstr(r.body, "\"code\":\"deployment_not_found\""), "%s", r.body);
    h_resp_free(&r);

    r = h_deployment_api(&mine, "POST", "/calls",
                         "{\"phone_number\": \"555-0100\", \"max_attempts\": 0,"
                         " \"colour\": \"blue\"}");
    cr_expect_eq(r.status, 422);
    cr_expect(strstr(r.body, "\"field\":\"phone_number\""), "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"max_attempts\""), "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"colour\""), "%s", r.body);
    h_resp_free(&r);

    r = h_deployment_request(&mine, "POST", "/calls", "application/x-www-form-urlencoded", NULL,
                             good);
    cr_expect_eq(r.status, 415);
    cr_expect(strstr(r.body, "application/json"), "%s", r.body);
    h_resp_free(&r);

    r = h_deployment_api(&mine, "POST", "/calls", "[1, 2");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(r.body, "\"code\":\"invalid_json\""), "%s", r.body);
    h_resp_free(&r);

    /* A call queued by one account is invisible to another. */
    char *call_id = h_queue_json(&mine, good);
    r = h_get_call(&them, call_id);
    cr_expect_eq(r.status, 404);
    h_resp_free(&r);

    r = h_deployment_api(&mine, "DELETE", "/calls", NULL);
    cr_expect_eq(r.status, 405);
    h_resp_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0, "ingest did not drain cleanly");
    free(call_id);
    PQfinish(pg);
}

/* Each service names every bad variable at once and exits 78. */
static const char *const services[] = {"ingest", "scheduler", "dialer"};

Test(config, every_bad_variable_is_named_and_exit_is_78)
{
    const char *env[] = {"OB_HTTP_PORT=99999",
                         "OB_LOG_LEVEL=loud",
                         "OB_TOPIC_PARTITIONS=x",
                         "OB_KAFKA_NO_SUCH_SETTING=1",
                         "OB_DIALER_CHANNELS=0",
                         "OB_SCHEDULER_TICK_MS=-5",
                         "OB_INGEST_THREADS=none",
                         "OB_DIALER_URL_DENY=10.0.0.0/33",
                         NULL};
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        char *err = NULL;
        int code = h_run_env(services[i], env, &err);
        cr_expect_eq(code, 78, "%s exited %d", services[i], code);
        const char *named[] = {"OB_HTTP_PORT", "OB_LOG_LEVEL", "OB_TOPIC_PARTITIONS",
                               "OB_KAFKA_NO_SUCH_SETTING", "OB_KAFKA_BOOTSTRAP_SERVERS"};
        for (size_t j = 0; j < sizeof(named) / sizeof(named[0]); j++)
            cr_expect(strstr(err, named[j]) != NULL, "%s did not name %s:\n%s", services[i],
                      named[j], err);
        const char *own = i == 0   ? "OB_INGEST_THREADS"
                          : i == 1 ? "OB_SCHEDULER_TICK_MS"
                                   : "OB_DIALER_CHANNELS";
        cr_expect(strstr(err, own) != NULL, "%s did not name %s:\n%s", services[i], own, err);
        if (i == 2)
            cr_expect(
                strstr(err, "OB_DIALER_URL_DENY: \\\"10.0.0.0/33\\\" is not an address range"),
                "the dialer did not name OB_DIALER_URL_DENY:\n%s", err);
        free(err);
    }
}

Test(first_call, idempotency_key_replays_the_first_answer, .timeout = 120, .fini = teardown)
{
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    h_client_t c = h_client(&s, &t, pg);
    const char *body = "{\"phone_number\": \"+12125550100\"}";
    h_resp_t first =
        h_deployment_request(&c, "POST", "/calls", "application/json", "order-42", body);
    h_resp_t again =
        h_deployment_request(&c, "POST", "/calls", "application/json", "order-42", body);
    cr_assert_eq(first.status, 202, "%s", first.body);
    cr_expect_eq(again.status, 202, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);

    h_resp_t other = h_deployment_request(&c, "POST", "/calls", "application/json", "order-42",
                                          "{\"phone_number\": \"+12125550101\"}");
    cr_expect_eq(other.status, 409, "%s", other.body);
    cr_expect(strstr(other.body, "idempotency_key_reused"), "%s", other.body);

    /* Exactly one request message went to Kafka. */
    cr_expect_eq(h_capture_topic(&s, "call-requests", "call-request"), 1);
    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
    h_resp_free(&first);
    h_resp_free(&again);
    h_resp_free(&other);
    PQfinish(pg);
}

/* At the sim's full time compression a call is answered and ends within
 * one turn of the dialer's loop: its connected transition is written with
 * its conclusion (one update of each row), and it still has its
 * connected_at, no later than its end, and its connected event before the
 * completed one. */
Test(first_call, a_call_answered_and_ended_at_once_is_connected_then_completed, .timeout = 180,
     .fini = teardown)
{
    static const char *const instant_sim[] = {"OB_SIM_TIME_SCALE=1000000", NULL};
    h_tenant_t t;
    h_client_t c;
    PGconn *pg = stack_up(&t, &c, 1, instant_sim);
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = h_queue_json(&c, "{\"phone_number\": \"+12125550100\"}");
        cr_assert_not_null(ids[i]);
    }
    for (int i = 0; i < 5; i++) {
        char *body = h_wait_completed(&c, ids[i], 60000);
        cr_assert_not_null(body, "call %s did not complete", ids[i]);
        h_expect_path(body, "result", "voice");
        const char *p[] = {ids[i]};
        char *attempt =
            h_pg_value(pg,
                       "SELECT state || '/' || (connected_at IS NOT NULL)::text || '/'"
                       " || (connected_at >= dialing_at AND connected_at <= ended_at)::text"
                       " FROM attempts WHERE call_id = $1 AND attempt = 1",
                       1, p);
        cr_expect_str_eq(attempt, "ended/true/true", "%s", ids[i]);
        char *types = h_event_types(&s, ids[i], 4, 30000);
        cr_expect_str_eq(types,
                         "outbound.call.queued,outbound.call.dialing,outbound.call.connected,"
                         "outbound.call.completed");
        free(attempt);
        free(types);
        free(body);
        free(ids[i]);
    }
    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    PQfinish(pg);
}

/* A dial job released whose message never reached the broker (a crash
 * between the release's commit and the produce): the scheduler's relay
 * finds the attempt still released and unpublished, sends its job, and the
 * call is dialed and completes. The call is scheduled two hours ahead, so
 * that only this hand-made release can start it. */
Test(first_call, a_released_job_never_sent_is_relayed_and_dialed, .timeout = 180, .fini = teardown)
{
    h_tenant_t t;
    h_client_t c;
    PGconn *pg = stack_up(&t, &c, 1, fast_sim);
    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+12125550100\","
                                     " \"not_before\": \"+2 hours\"}");
    cr_assert_not_null(call_id);
    const char *p[] = {call_id};
    char *recorded = NULL;
    for (int64_t until = ob_mono_ms() + 30000; ob_mono_ms() < until; h_sleep_ms(100)) {
        free(recorded);
        recorded = h_pg_value(pg, "SELECT count(*) FROM calls WHERE call_id = $1", 1, p);
        if (strcmp(recorded, "1") == 0)
            break;
    }
    cr_assert_str_eq(recorded, "1", "the call was not recorded");
    free(recorded);
    char *released = h_pg_value(
        pg,
        "WITH c AS (UPDATE calls SET active_attempt = 1, attempts_made = 1 WHERE call_id = $1"
        "  RETURNING call_id, deployment_id)"
        " INSERT INTO attempts (call_id, attempt, deployment_id, job_id, released_at, lease_until)"
        " SELECT call_id, 1, deployment_id, gen_random_uuid(), now() - interval '10 seconds',"
        "  now() + interval '5 minutes' FROM c RETURNING state",
        1, p);
    cr_assert_str_eq(released, "released");
    char *body = h_wait_completed(&c, call_id, 60000);
    cr_assert_not_null(body, "the relayed job's call %s did not complete", call_id);
    h_expect_path(body, "result", "voice");
    char *published = h_pg_value(pg,
                                 "SELECT (job_published_at IS NOT NULL)::text || '/' || state"
                                 " FROM attempts WHERE call_id = $1 AND attempt = 1",
                                 1, p);
    cr_expect_str_eq(published, "true/ended");
    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(published);
    free(released);
    free(body);
    free(call_id);
    PQfinish(pg);
}

/* Events a crash left in the outbox (recorded, never acknowledged): the
 * relay sends them, oldest first, and they leave the outbox. Copies of a
 * completed call's completed and queued events, under new ids, left in
 * the outbox 20 and 19 s ago (in that order, not the order of their ids
 * or of the call's own events). */
Test(first_call, events_a_crash_left_in_the_outbox_are_relayed_in_order, .timeout = 180,
     .fini = teardown)
{
    h_tenant_t t;
    h_client_t c;
    PGconn *pg = stack_up(&t, &c, 1, fast_sim);
    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+12125550100\"}");
    cr_assert_not_null(call_id);
    char *body = h_wait_completed(&c, call_id, 60000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
    const char *p[] = {call_id};
    /* An event row stores neither its call nor its deployment in its data
     * (they are its columns); the API's events carry both. */
    cr_expect_eq(h_pg_long(pg,
                           "SELECT count(*) FROM call_events WHERE call_id = $1"
                           " AND (data ? 'call_id' OR data ? 'deployment_id')",
                           1, p),
                 0);
    h_resp_t got = h_get_call(&c, call_id);
    h_expect_path(got.body, "events.0.data.call_id", call_id);
    h_expect_path(got.body, "events.0.data.deployment_id", t.deployment_id);
    h_resp_free(&got);
    long before = h_pg_long(pg, "SELECT count(*) FROM call_events WHERE call_id = $1", 1, p);
    char *types = h_event_types(&s, call_id, (int)before, 30000);
    cr_assert_not_null(types);
    char *batch = h_pg_value(
        pg,
        "WITH src AS (SELECT gen_random_uuid() AS id, now() - CASE e.type"
        "  WHEN 'outbound.call.completed' THEN interval '20 seconds' ELSE interval '19 seconds'"
        "  END AS at, e.* FROM call_events e"
        "  WHERE call_id = $1 AND type IN ('outbound.call.queued', 'outbound.call.completed')),"
        " ins AS (INSERT INTO call_events (event_id, call_id, deployment_id, type, source,"
        "  occurred_at, data) SELECT id, call_id, deployment_id, type, 'crashed', at, data"
        "  FROM src),"
        " o AS (INSERT INTO call_events_outbox (event_id, occurred_at) SELECT id, at FROM src)"
        " SELECT '{' || string_agg(id::text, ',') || '}' FROM src",
        1, p);
    cr_assert_not_null(batch);
    const char *b[] = {batch};
    long left = 1;
    for (int64_t until = ob_mono_ms() + 30000; left > 0 && ob_mono_ms() < until; h_sleep_ms(200))
        left =
            h_pg_long(pg, "SELECT count(*) FROM call_events_outbox WHERE event_id = ANY($1)", 1, b);
    cr_expect_eq(left, 0, "the crashed events are still in the outbox");
    char *after = h_event_types(&s, call_id, (int)before + 2, 30000);
    char *want = ob_xasprintf("%s,outbound.call.completed,outbound.call.queued", types);
    cr_expect_str_eq(after, want, "the topic's events of call %s", call_id);
    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(want);
    free(after);
    free(batch);
    free(types);
    free(body);
    free(call_id);
    PQfinish(pg);
}
