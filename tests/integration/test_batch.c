/*
 * Batches through real HTTP: a JSON array or NDJSON of calls, good ones
 * queued even when others are bad, each element answered with its call_id
 * or its errors; a broken stream stops where it breaks; Idempotency-Key
 * replays the first answer.
 */
#include "harness_client.h"

#include <cjson/cJSON.h>
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

/* A tenant and an ingest on their own stack; *pg is its Postgres. */
static h_client_t ingest_up(PGconn **pg)
{
    h_stack_init(&s);
    *pg = h_pg(&s);
    h_tenant(*pg, &t, 5);
    h_client_t c = h_client(&s, &t, *pg);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));
    return c;
}

Test(batch, good_elements_queue_and_bad_ones_are_answered, .timeout = 120, .fini = teardown)
{
    PGconn *pg = NULL;
    h_client_t c = ingest_up(&pg);

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

/* Builds a JSON array of n calls, every 7th with a bad number, broken
 * (no comma before it) at element broken_at if not 0. */
static char *long_batch(int n, int broken_at)
{
    size_t cap = (size_t)n * 64 + 16, o = 0;
    char *body = malloc(cap);
    o += (size_t)snprintf(body + o, cap - o, "[");
    for (int i = 1; i <= n; i++) {
        o += (size_t)snprintf(body + o, cap - o, "%s{\"phone_number\": \"%s%07d\"}",
                              i == 1           ? ""
                              : i == broken_at ? " "
                                               : ",",
                              i % 7 == 0 ? "+1" : "+1212", i % 7 == 0 ? 0 : 5550000 + i % 10000);
    }
    snprintf(body + o, cap - o, "]");
    return body;
}

/* A batch long enough to be validated on lanes (more than 32 elements):
 * every element answered in the batch's order, good ones with a call_id
 * and bad ones with their errors, each good one produced once; replayed
 * with its key, the same answer; broken in the middle, what came before
 * the break listed and queued, nothing after it. */
Test(batch, a_long_batch_is_answered_in_order, .timeout = 180, .fini = teardown)
{
    PGconn *pg = NULL;
    h_client_t c = ingest_up(&pg);

    enum { N = 3000, BAD = N / 7 };
    char *body = long_batch(N, 0);
    h_resp_t r =
        h_deployment_request(&c, "POST", "/calls:batch", "application/json", "long-1", body);
    cr_assert_eq(r.status, 202, "%.500s", r.body);
    char want[32];
    snprintf(want, sizeof(want), "%d", N - BAD);
    cr_expect_str_eq(h_json_path(r.body, "accepted"), want);
    snprintf(want, sizeof(want), "%d", BAD);
    cr_expect_str_eq(h_json_path(r.body, "rejected"), want);
    /* Parsed once: a path lookup per row parses the whole answer each time. */
    cJSON *answer = cJSON_Parse(r.body);
    const cJSON *results = cJSON_GetObjectItem(answer, "results");
    cr_assert_eq(cJSON_GetArraySize(results), N);
    for (int i = 1; i <= N; i++) {
        const cJSON *one = cJSON_GetArrayItem(results, i - 1);
        const cJSON *row = cJSON_GetObjectItem(one, "row");
        cr_assert(cJSON_IsNumber(row) && row->valueint == i, "results[%d] is not row %d", i - 1, i);
        const cJSON *errors = cJSON_GetObjectItem(one, "errors");
        const cJSON *field = cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 0), "field");
        cr_assert(i % 7 ? cJSON_IsString(cJSON_GetObjectItem(one, "call_id"))
                        : cJSON_IsString(field) && !strcmp(field->valuestring, "phone_number"),
                  "row %d: %s", i, i % 7 ? "no call_id" : "not a phone_number error");
    }
    cJSON_Delete(answer);
    h_resp_t again =
        h_deployment_request(&c, "POST", "/calls:batch", "application/json", "long-1", body);
    cr_expect_str_eq(again.body, r.body);
    h_resp_free(&again);
    h_resp_free(&r);
    free(body);

    body = long_batch(N, 1000);
    r = h_deployment_request(&c, "POST", "/calls:batch", "application/json", NULL, body);
    cr_expect_eq(r.status, 400, "%.500s", r.body);
    snprintf(want, sizeof(want), "%d", 999 - 999 / 7);
    cr_expect_str_eq(h_json_path(r.body, "accepted"), want);
    cr_expect_str_eq(h_json_path(r.body, "results.998.row"), "999");
    cr_expect_null(h_json_path(r.body, "results.999"), "nothing listed after the break");
    h_resp_free(&r);
    free(body);

    cr_expect_eq(h_capture_topic(&s, "call-requests", "call-request"), N - BAD + 999 - 999 / 7);
    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
    PQfinish(pg);
}
