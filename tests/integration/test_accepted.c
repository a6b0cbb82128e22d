/*
 * Accepted means visible: a call answers GET from the moment of its 202, on
 * any ingest instance, before the scheduler has recorded it (here the
 * scheduler is not even running): queued, as its request said, flagged
 * "recorded": false; once recorded, the stored view without the flag. An id
 * nobody accepted, or another account's, stays 404.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;
static h_tenant_t t, other;

static void teardown(void)
{
    h_stack_kill(&s);
}

Test(accepted, visible_at_once_on_every_ingest_before_it_is_recorded, .timeout = 180,
     .fini = teardown)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_tenant(pg, &other, 5);
    h_proc_t *a = h_start(&s, "ingest", "ingest-a", NULL);
    h_proc_t *b = h_start(&s, "ingest", "ingest-b", NULL);
    cr_assert(h_wait_ready(a, 60000));
    cr_assert(h_wait_ready(b, 60000));
    /* The same tenant through A and through B; the other one through B. */
    h_client_t via_a = h_client(&s, &t, pg), via_b = h_client(&s, &t, pg);
    h_client_t other_b = h_client(&s, &other, pg);
    via_a.port = a->port;
    via_b.port = other_b.port = b->port;

    /* One call through A, read at once through A and through B. */
    char *id = h_queue_json(&via_a,
                            "{\"phone_number\": \"+12125550100\", \"message_reference\": \"ref-1\","
                            " \"call_parameters\": {\"name\": \"Ada\"}, \"max_attempts\": 3}");
    h_resp_t r;
    for (int i = 0; i < 2; i++) {
        r = h_get_call(i ? &via_b : &via_a, id);
        cr_assert_eq(r.status, 200, "ingest %c: %s", i ? 'b' : 'a', r.body);
        h_expect_path(r.body, "call_id", id);
        h_expect_path(r.body, "state", "queued");
        h_expect_path(r.body, "recorded", "false");
        h_expect_path(r.body, "waiting_for", "recording");
        h_expect_path(r.body, "phone_number", "+12125550100");
        h_expect_path(r.body, "message_reference", "ref-1");
        h_expect_path(r.body, "call_parameters.name", "Ada");
        h_expect_path(r.body, "max_attempts", "3");
        h_expect_path(r.body, "deployment_id", t.deployment_id);
        h_resp_free(&r);
    }

    /* Plum's status route too, with HTTP Basic (email and key). */
    char basic[400], path_plum[128];
    h_basic_auth(basic, sizeof(basic), t.email, t.api_key);
    snprintf(path_plum, sizeof(path_plum), "/api/outbound/%s", id);
    const char *plum_headers[] = {basic, NULL};
    r = h_http(b->port, "GET", path_plum, plum_headers, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "call_details.status", "queued");
    h_expect_path(r.body, "call_details.phone_number", "+12125550100");
    h_expect_path(r.body, "recorded", "false");
    h_resp_free(&r);

    /* Not another account's, and nothing for an id nobody accepted. */
    r = h_get_call(&other_b, id);
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);
    r = h_get_call(&via_b, "01890a5d-ac96-774b-bcce-b302099a8057");
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);

    /* A cancel must wait for the record it guards, and says so. */
    char cancel[256];
    snprintf(cancel, sizeof(cancel), "/api/v1/calls/%s:cancel", id);
    r = h_request(&via_b, "POST", cancel, NULL, NULL, NULL);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect(strstr(r.body, "call_not_recorded"), "%s", r.body);
    h_resp_free(&r);

    /* A batch through B, each call read right after through A. */
    size_t n = 500;
    char *body = malloc(n * 48 + 8);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(body + len, "{\"phone_number\": \"+1212555%04zu\"}\n", 1000 + i);
    r = h_deployment_request(&via_b, "POST", "/calls:batch", "application/x-ndjson", NULL, body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char elem[64];
    for (size_t i = 0; i < n; i += 25) {
        snprintf(elem, sizeof(elem), "results.%zu.call_id", i);
        char *call = h_json_path(r.body, elem);
        h_resp_t g = h_get_call(&via_a, call);
        cr_expect_eq(g.status, 200, "%s: %s", call, g.body);
        h_expect_path(g.body, "recorded", "false");
        h_resp_free(&g);
        free(call);
    }
    h_resp_free(&r);
    free(body);

    /* The backlog is visible to operators: calls held, and their age. */
    h_sleep_ms(2500);
    cr_expect_geq(h_metric(a, "outbound_calls_unrecorded"), (long)n + 1);
    cr_expect_geq(h_metric(a, "outbound_call_recording_lag_seconds"), 2);

    /* Once the scheduler has recorded it, the stored view, without the flag,
     * and the ingests forget it. */
    h_proc_t *sched = h_start(&s, "scheduler", "scheduler", NULL);
    cr_assert(h_wait_ready(sched, 60000));
    char *recorded = h_wait_value(&via_b, "SELECT 1 FROM calls WHERE call_id = $1", id, 30000);
    r = h_get_call(&via_b, id);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "recorded", NULL);
    h_expect_path(r.body, "state", "queued");
    h_resp_free(&r);
    long held = -1;
    for (int i = 0; i < 100 && held != 0; i++) {
        held = h_metric(b, "outbound_calls_unrecorded");
        if (held != 0)
            h_sleep_ms(100);
    }
    cr_expect_eq(held, 0, "calls still held after they were recorded");
    cr_expect_eq(h_metric(b, "outbound_call_recording_lag_seconds"), 0);

    /* A cancel sent right after the 202 waits for the record it guards,
     * then cancels: the call ends uncalled, never dialed. */
    r = h_deployment_api(&via_a, "POST", "/calls", "{\"phone_number\": \"+12125550101\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *quick = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    snprintf(cancel, sizeof(cancel), "/api/v1/calls/%s:cancel", quick);
    r = h_request(&via_b, "POST", cancel, NULL, NULL, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "status", "uncalled");
    h_expect_path(r.body, "reason", "cancelled");
    h_resp_free(&r);
    free(quick);

    cr_expect_eq(h_stop(sched, 30000), 0);
    cr_expect_eq(h_stop(b, 30000), 0);
    cr_expect_eq(h_stop(a, 30000), 0);
    free(recorded);
    free(id);
    PQfinish(pg);
}
