/*
 * Accepted means visible: a call answers GET from the moment of its 202, on
 * any ingest instance, before the scheduler has recorded it (here the
 * scheduler is not even running): queued, as its request said, flagged
 * "recorded": false; once recorded, the stored view without the flag. An id
 * nobody accepted, or another account's, stays 404.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;
static h_tenant_t t, other;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* GET /api/v1/calls/{id} as who. */
static h_resp_t get(int port, const h_tenant_t *who, const char *id)
{
    char auth[128], path[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", who->api_key);
    snprintf(path, sizeof(path), "/api/v1/calls/%s", id);
    const char *headers[] = {auth, NULL};
    return h_http(port, "GET", path, headers, NULL);
}

static h_resp_t post(int port, const char *path, const char *content_type, const char *body)
{
    char auth[128], ct[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.api_key);
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
    const char *headers[] = {auth, ct, NULL};
    return h_http(port, "POST", path, headers, body);
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

    /* One call through A, read at once through A and through B. */
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", t.deployment_id);
    h_resp_t r = post(a->port, path, "application/json",
                      "{\"phone_number\": \"+12125550100\", \"message_reference\": \"ref-1\","
                      " \"call_parameters\": {\"name\": \"Ada\"}, \"max_attempts\": 3}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *id = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        r = get(i ? b->port : a->port, &t, id);
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
    char creds[256], basic[400], path_plum[128];
    unsigned char b64[340];
    snprintf(creds, sizeof(creds), "%s:%s", t.email, t.api_key);
    EVP_EncodeBlock(b64, (const unsigned char *)creds, (int)strlen(creds));
    snprintf(basic, sizeof(basic), "Authorization: Basic %s", b64);
    snprintf(path_plum, sizeof(path_plum), "/api/outbound/%s", id);
    const char *plum_headers[] = {basic, NULL};
    r = h_http(b->port, "GET", path_plum, plum_headers, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "call_details.status", "queued");
    h_expect_path(r.body, "call_details.phone_number", "+12125550100");
    h_expect_path(r.body, "recorded", "false");
    h_resp_free(&r);

    /* Not another account's, and nothing for an id nobody accepted. */
    r = get(b->port, &other, id);
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);
    r = get(b->port, &t, "01890a5d-ac96-774b-bcce-b302099a8057");
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);

    /* A cancel must wait for the record it guards, and says so. */
    char auth[128], cancel[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.api_key);
    snprintf(cancel, sizeof(cancel), "/api/v1/calls/%s:cancel", id);
    const char *hdr[] = {auth, NULL};
    r = h_http(b->port, "POST", cancel, hdr, NULL);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect(strstr(r.body, "call_not_recorded"), "%s", r.body);
    h_resp_free(&r);

    /* A batch through B, each call read right after through A. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls:batch", t.deployment_id);
    size_t n = 500;
    char *body = malloc(n * 48 + 8);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(body + len, "{\"phone_number\": \"+1212555%04zu\"}\n", 1000 + i);
    r = post(b->port, path, "application/x-ndjson", body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char elem[64];
    for (size_t i = 0; i < n; i += 25) {
        snprintf(elem, sizeof(elem), "results.%zu.call_id", i);
        char *call = h_json_path(r.body, elem);
        h_resp_t g = get(a->port, &t, call);
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
    const char *p[] = {id};
    char *recorded = NULL;
    for (int i = 0; i < 300 && !recorded; i++) {
        recorded = h_pg_value(pg, "SELECT 1 FROM calls WHERE call_id = $1", 1, p);
        if (!recorded)
            h_sleep_ms(100);
    }
    cr_assert_not_null(recorded);
    r = get(b->port, &t, id);
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
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", t.deployment_id);
    r = post(a->port, path, "application/json", "{\"phone_number\": \"+12125550101\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *quick = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    snprintf(cancel, sizeof(cancel), "/api/v1/calls/%s:cancel", quick);
    r = h_http(b->port, "POST", cancel, hdr, NULL);
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
