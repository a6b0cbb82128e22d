/*
 * Batches through real HTTP: a JSON array or NDJSON of calls, good ones
 * queued even when others are bad, each element answered with its call_id
 * or its errors; a broken stream stops where it breaks; Idempotency-Key
 * replays the first answer.
 */
#include "harness_client.h"

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

Test(batch, good_elements_queue_and_bad_ones_are_answered, .timeout = 120, .fini = teardown)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    h_resp_t r = h_deployment_request(
        &c, "POST", "/calls:batch", "application/json", NULL,
        "[{\"phone_number\": \"+12125550100\", \"message_reference\": \"a\"},\n"
        " {\"phone_number\": \"12\"},\n"
        " 42,\n"
        " {\"phone_number\": \"+12125550101\", \"max_attempts\": 3}]");
    cr_assert_eq(r.status, 202, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "accepted"), "2");
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "2");
    cr_expect_not_null(h_json_path(r.body, "results.0.call_id"));
    cr_expect_str_eq(h_json_path(r.body, "results.1.row"), "2");
    cr_expect_str_eq(h_json_path(r.body, "results.1.errors.0.field"), "phone_number");
    cr_expect_str_eq(h_json_path(r.body, "results.2.errors.0.code"), "invalid_json");
    cr_expect_not_null(h_json_path(r.body, "results.3.call_id"));
    h_resp_free(&r);

    r = h_deployment_request(
        &c, "POST", "/calls:batch", "application/x-ndjson", NULL,
        "{\"phone_number\": \"+12125550102\"}\r\n\r\n{\"phone_number\": \"+12125550103\"}\n");
    cr_expect_eq(r.status, 202, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "accepted"), "2");
    h_resp_free(&r);

    /* A stream that breaks stops there; what came before it is queued. */
    r = h_deployment_request(&c, "POST", "/calls:batch", "application/json", NULL,
                             "[{\"phone_number\": \"+12125550104\"} {}]");
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "accepted"), "1");
    cr_expect(strstr(r.body, "missing"), "%s", r.body);
    h_resp_free(&r);

    /* Query options apply to every call; bad ones are refused up front. */
    r = h_deployment_api(&c, "POST", "/calls:batch?max_attempts=99",
                         "[{\"phone_number\": \"+12125550100\"}]");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"max_attempts\""), "%s", r.body);
    h_resp_free(&r);

    r = h_deployment_request(&c, "POST", "/calls:batch", "text/csv", NULL, "phone\n");
    cr_expect_eq(r.status, 415, "%s", r.body);
    h_resp_free(&r);

    /* Replayed with the same key: same answer, nothing queued again. */
    const char *body =
        "[{\"phone_number\": \"+12125550105\"}, {\"phone_number\": \"+12125550106\"}]";
    h_resp_t first =
        h_deployment_request(&c, "POST", "/calls:batch", "application/json", "batch-1", body);
    h_resp_t again =
        h_deployment_request(&c, "POST", "/calls:batch", "application/json", "batch-1", body);
    cr_expect_eq(first.status, 202, "%s", first.body);
    cr_expect_str_eq(again.body, first.body);
    h_resp_free(&first);
    h_resp_free(&again);

    /* 2 + 2 + 1 + 2 request messages. */
    cr_expect_eq(h_capture_topic(&s, "call-requests", "call-request"), 7);
    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
    PQfinish(pg);
}
