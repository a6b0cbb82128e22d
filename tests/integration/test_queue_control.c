/*
 * Cancelling, pausing and listing through the real services: a cancelled
 * call that has not started dialing is never dialed and ends uncalled with
 * reason cancelled; a paused queue releases nothing until resumed; lists
 * filter and paginate; the summary counts what the lists show; a pause,
 * resume or cancel retried under its Idempotency-Key is not applied again.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;
static h_tenant_t t;
static PGconn *pg;
static h_client_t c;

static void teardown(void)
{
    h_stack_kill(&s);
    if (pg)
        PQfinish(pg);
}

/* Starts a stack whose calls run at the given speed. */
static void up(const char *scale)
{
    char env[64];
    snprintf(env, sizeof(env), "OB_SIM_TIME_SCALE=%s", scale);
    const char *const dialer_env[] = {env, NULL};
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));
}

Test(queue_control, cancelled_call_is_never_dialed, .timeout = 180, .fini = teardown)
{
    up("200");
    h_resp_t r = h_deployment_api(&c, "POST", ":pause", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "true");
    h_resp_free(&r);

    char *id = h_queue(&c, "+12125550100");
    h_wait_row(&c, id, "state = 'queued'", 60000);
    char url[128];
    snprintf(url, sizeof(url), "/api/v1/calls/%s:cancel", id);
    r = h_api(&c, "POST", url, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "status"), "uncalled");
    cr_expect_str_eq(h_json_path(r.body, "reason"), "cancelled");
    cr_expect_str_eq(h_json_path(r.body, "result"), "noattempt");
    h_resp_free(&r);

    /* Cancelling again is harmless; resuming does not bring it back. */
    r = h_api(&c, "POST", url, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "POST", ":resume", NULL);
    cr_expect_eq(r.status, 200);
    h_resp_free(&r);
    char *other = h_queue(&c, "+12125550100");
    h_wait_row(&c, other, "state = 'completed'", 60000);
    cr_expect_str_eq(h_call_field(&c, id, "attempts"), "[]");
    cr_expect_str_eq(h_call_field(&c, id, "status"), "uncalled");

    /* Written by two services a moment apart, the two events may arrive in
     * either order; both arrive. */
    char *types = h_event_types(&s, id, 2, 30000);
    cr_expect(strcmp(types, "outbound.call.queued,outbound.call.completed") == 0 ||
                  strcmp(types, "outbound.call.completed,outbound.call.queued") == 0,
              "%s", types);
    cr_expect(h_stack_down(&s));
}

/* A cancel answered while a call rings (a single-call cancel, or its queue's)
 * does not hang it up, but no retry follows: it is dialed once. Found by the
 * soak at 40 requests/s: a call ringing when its queue was cancelled was
 * retried and dialed 74 s later. */
Test(queue_control, cancel_while_ringing_stops_the_retries, .timeout = 180, .fini = teardown)
{
    up("10"); /* the noanswer number rings for 3 s */
    const char *body = "{\"phone_number\": \"+12125550140\", \"max_attempts\": 3,"
                       " \"retry_interval_s\": 60}";
    char *ids[2];
    for (int i = 0; i < 2; i++)
        ids[i] = h_queue_json(&c, body);
    h_wait_row(&c, ids[0], "state = 'dialing'", 60000);
    h_wait_row(&c, ids[1], "state = 'dialing'", 60000);

    char url[128];
    snprintf(url, sizeof(url), "/api/v1/calls/%s:cancel", ids[0]);
    h_resp_t r = h_api(&c, "POST", url, NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_expect_path(r.body, "state", "dialing");
    h_resp_free(&r);
    r = h_deployment_api(&c, "POST", ":cancel", NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);

    for (int i = 0; i < 2; i++) {
        h_wait_row(&c, ids[i], "state = 'completed'", 60000);
        cr_expect_str_eq(h_call_field(&c, ids[i], "status"), "failed");
        cr_expect_str_eq(h_call_field(&c, ids[i], "reason"), "cancelled");
        cr_expect_str_eq(h_call_field(&c, ids[i], "result"), "noanswer");
        cr_expect_str_eq(h_call_field(&c, ids[i], "attempts_made"), "1");
        const char *p[] = {ids[i]};
        char *n = h_pg_value(pg, "SELECT count(*) FROM attempts WHERE call_id = $1", 1, p);
        cr_expect_str_eq(n, "1", "call %d was dialed again after the cancel", i);
        free(n);
        /* queued (scheduler), dialing and completed (dialer): no retry. */
        char *types = h_event_types(&s, ids[i], 3, 30000);
        cr_expect(strstr(types, "outbound.call.completed") && !strstr(types, "retry"),
                  "call %d: %s", i, types);
        free(types);
    }
    cr_expect(h_stack_down(&s));
}

Test(queue_control, cancelling_the_queue_spares_later_calls, .timeout = 180, .fini = teardown)
{
    up("200");
    h_resp_t r = h_deployment_api(&c, "POST", ":pause", NULL);
    h_resp_free(&r);
    char *ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = h_queue(&c, "+12125550100");
    r = h_deployment_api(&c, "POST", ":cancel", NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    char *later = h_queue(&c, "+12125550100");
    for (int i = 0; i < 4; i++)
        h_wait_row(&c, ids[i], "status = 'uncalled' AND reason = 'cancelled'", 60000);

    r = h_deployment_api(&c, "POST", ":resume", NULL);
    h_resp_free(&r);
    h_wait_row(&c, later, "status = 'completed'", 60000);

    /* Lists: filters and pagination. */
    r = h_deployment_api(&c, "GET", "/calls?status=uncalled&limit=3", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *cursor = h_json_path(r.body, "next_cursor");
    cr_expect_str_eq(h_json_path(r.body, "calls.2.reason"), "cancelled");
    cr_expect_null(h_json_path(r.body, "calls.3"));
    cr_assert_not_null(cursor);
    h_resp_free(&r);
    char q[256];
    snprintf(q, sizeof(q), "/calls?status=uncalled&limit=3&cursor=%s", cursor);
    r = h_deployment_api(&c, "GET", q, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(h_json_path(r.body, "calls.0.call_id"));
    cr_expect_null(h_json_path(r.body, "calls.1"));
    cr_expect_null(h_json_path(r.body, "next_cursor"));
    h_resp_free(&r);

    r = h_deployment_api(&c, "GET", "/calls?state=pending", NULL);
    cr_expect_str_eq(h_json_path(r.body, "calls"), "[]");
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "/calls?status=completed&result=voice", NULL);
    cr_expect_str_eq(h_json_path(r.body, "calls.0.call_id"), later);
    h_resp_free(&r);
    /* A number in any form the deployment reads, matched in E.164. */
    r = h_deployment_api(&c, "GET", "/calls?phone_number=%2B1%20(212)%20555-0100", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_not_null(h_json_path(r.body, "calls.4.call_id"), "%s", r.body);
    cr_expect_null(h_json_path(r.body, "calls.5"));
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "/calls?phone_number=%2B12125550110", NULL);
    cr_expect_str_eq(h_json_path(r.body, "calls"), "[]");
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "/calls?phone_number=12", NULL);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(r.body, "\"field\":\"phone_number\""), "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "/calls?status=lost&limit=0", NULL);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(r.body, "\"field\":\"status\"") && strstr(r.body, "\"field\":\"limit\""), "%s",
              r.body);
    h_resp_free(&r);

    r = h_deployment_api(&c, "GET", "/summary", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(h_json_path(r.body, "statuses.uncalled"), "4");
    cr_expect_str_eq(h_json_path(r.body, "statuses.completed"), "1");
    cr_expect_str_eq(h_json_path(r.body, "states.queued"), "0");
    cr_expect_str_eq(h_json_path(r.body, "paused"), "false");
    h_resp_free(&r);
    cr_expect(h_stack_down(&s));
}

/* A cancellation holds at once, even against a resume that overtakes it:
 * the scheduler is down when both arrive, so the new one finds the queue
 * resumed before it has read the cancel command. */
Test(queue_control, a_resume_right_after_a_cancel_releases_nothing_it_covers, .timeout = 180,
     .fini = teardown)
{
    up("200");
    h_resp_t r = h_deployment_api(&c, "POST", ":pause", NULL);
    h_resp_free(&r);
    char *ids[10];
    for (int i = 0; i < 10; i++) {
        ids[i] = h_queue(&c, "+12125550100");
        h_wait_row(&c, ids[i], "state = 'queued'", 60000);
    }
    h_proc_t *scheduler = NULL;
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "scheduler") == 0)
            scheduler = &s.procs[i];
    cr_assert_not_null(scheduler);
    cr_assert_eq(h_stop(scheduler, 30000), 0);

    r = h_deployment_api(&c, "POST", ":cancel", NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "POST", ":resume", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    h_proc_t *next = h_start(&s, "scheduler", "scheduler-2", NULL);
    cr_assert(h_wait_ready(next, 60000));

    for (int i = 0; i < 10; i++) {
        h_wait_row(&c, ids[i], "state = 'completed'", 60000);
        char *status = h_call_field(&c, ids[i], "status"),
             *reason = h_call_field(&c, ids[i], "reason");
        cr_expect_str_eq(status, "uncalled");
        cr_expect_str_eq(reason, "cancelled");
        free(status);
        free(reason);
    }
    char *dialed = h_pg_value(pg, "SELECT count(*) FROM attempts", 0, NULL);
    cr_expect_str_eq(dialed, "0", "calls covered by the cancellation were released");
    free(dialed);
    /* The queue runs again for what comes after. */
    char *later = h_queue(&c, "+12125550100");
    h_wait_row(&c, later, "status = 'completed'", 60000);
    free(later);
    for (int i = 0; i < 10; i++)
        free(ids[i]);
    cr_expect(h_stack_down(&s));
}

/* A pause, resume or cancel retried with its Idempotency-Key does nothing
 * again: a client whose pause timed out, that then resumed, can retry the
 * pause's key (or see its first try run late) without pausing the queue a
 * second time. The same key on another route is refused. */
Test(queue_control, a_retried_pause_does_not_undo_a_later_resume, .timeout = 180, .fini = teardown)
{
    up("200");
    h_resp_t r = h_deployment_request(&c, "POST", ":pause", NULL, "pause-1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "true");
    h_resp_free(&r);
    r = h_deployment_request(&c, "POST", ":resume", NULL, "resume-1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "false");
    h_resp_free(&r);

    r = h_deployment_request(&c, "POST", ":pause", NULL, "pause-1", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "true", "the first answer, replayed");
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "", NULL);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "false", "the replay paused the queue again");
    h_resp_free(&r);
    char *id = h_queue(&c, "+12125550100");
    h_wait_row(&c, id, "status = 'completed'", 60000);
    free(id);

    r = h_deployment_request(&c, "POST", ":cancel", NULL, "pause-1", NULL);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "code"), "idempotency_key_reused");
    h_resp_free(&r);
    char too_long[300];
    memset(too_long, 'k', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    r = h_deployment_request(&c, "POST", ":pause", NULL, too_long, NULL);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "code"), "invalid_idempotency_key");
    h_resp_free(&r);
    r = h_deployment_api(&c, "GET", "", NULL);
    cr_expect_str_eq(h_json_path(r.body, "paused"), "false");
    h_resp_free(&r);
    cr_expect(h_stack_down(&s));
}
