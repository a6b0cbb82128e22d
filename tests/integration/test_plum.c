/*
 * Plum-compatible routes, called as a client written for Plum's
 * documentation would: HTTP Basic with the account email and key, form
 * fields with Plum's names and ranges, call_details with numbers as numbers.
 */
#include "harness.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;
static h_tenant_t t;
static char basic[400];

static void teardown(void)
{
    h_stack_kill(&s);
}

static void set_basic(const char *email, const char *key)
{
    char creds[200];
    unsigned char b64[300];
    snprintf(creds, sizeof(creds), "%s:%s", email, key);
    EVP_EncodeBlock(b64, (const unsigned char *)creds, (int)strlen(creds));
    snprintf(basic, sizeof(basic), "Authorization: Basic %s", b64);
}

static h_resp_t plum(const char *method, const char *path, const char *ct, const char *body)
{
    char ctype[128];
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", ct ? ct : "");
    const char *headers[] = {basic, ct ? ctype : NULL, NULL};
    return h_http(s.ingest_port, method, path, headers, body);
}

Test(plum, a_plum_client_works_unchanged, .timeout = 120, .fini = teardown)
{
    char path[256];
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));
    set_basic(t.email, t.api_key);

    snprintf(path, sizeof(path), "/api/apps/%s/%s/queue", t.application_id, t.deployment_id);
    h_resp_t r = plum("POST", path, "application/x-www-form-urlencoded",
                      "phone_number=%2B12125550100%3Bani%3D%2B12125550199&max_attempts=2"
                      "&reattempt_wait=120&message_reference=ref-1"
                      "&call_parameters=%7B%22name%22%3A%22Sam%22%7D&start_timestamp=1700000000");
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *call_id = h_json_path(r.body, "call_id");
    h_resp_free(&r);

    /* The scheduler is not running: the call is accepted but not recorded
     * yet, so record it the way the scheduler would by starting one. */
    h_start(&s, "scheduler", "scheduler", NULL);
    cr_assert(h_wait_ready(&s.procs[1], 60000));
    snprintf(path, sizeof(path), "/api/outbound/%s", call_id);
    for (int i = 0; i < 100; i++) {
        r = plum("GET", path, NULL, NULL);
        if (r.status == 200)
            break;
        h_resp_free(&r);
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(r.status, 200, "%s", r.body);
    cJSON *j = cJSON_Parse(r.body);
    cJSON *d = cJSON_GetObjectItem(j, "call_details");
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(d, "max_attempts")), "%s", r.body);
    cr_expect_eq(cJSON_GetObjectItem(d, "max_attempts")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(d, "reattempt_wait")->valueint, 120);
    cr_expect_eq(cJSON_GetObjectItem(d, "start_timestamp")->valuedouble, 1700000000.0);
    cr_expect_str_eq(cJSON_GetObjectItem(d, "message_reference")->valuestring, "ref-1");
    cr_expect_str_eq(h_json_path(r.body, "call_details.call_parameters.name"), "Sam");
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(d, "events")));
    cJSON_Delete(j);
    h_resp_free(&r);

    /* Plum's ranges and names in errors. */
    snprintf(path, sizeof(path), "/api/apps/%s/%s/queue", t.application_id, t.deployment_id);
    r = plum("POST", path, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&reattempt_wait=100000");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"reattempt_wait\""), "%s", r.body);
    h_resp_free(&r);
    r = plum("POST", path, "application/x-www-form-urlencoded", "phone_number=12&max_attempts=99");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"max_attempts\"") &&
                  strstr(r.body, "\"field\":\"phone_number\""),
              "%s", r.body);
    h_resp_free(&r);

    /* Multipart CSV in the "csv" field. */
    snprintf(path, sizeof(path), "/api/apps/%s/%s/bulk_queue", t.application_id, t.deployment_id);
    r = plum("POST", path, "multipart/form-data; boundary=B0",
             "--B0\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"calls.csv\"\r\n"
             "Content-Type: text/csv\r\n\r\nphone_number,max_retries\n+12125550100,1\n"
             "+12125550101,2\n\r\n--B0--\r\n");
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "queued"), "2");
    h_resp_free(&r);

    /* The wrong application, the wrong email, and cancelling the queue. */
    snprintf(path, sizeof(path), "/api/apps/%s/%s/cancel", t.deployment_id, t.deployment_id);
    r = plum("DELETE", path, NULL, NULL);
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/apps/%s/%s/cancel", t.application_id, t.deployment_id);
    r = plum("DELETE", path, NULL, NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    set_basic("someone@else.invalid", t.api_key);
    r = plum("DELETE", path, NULL, NULL);
    cr_expect_eq(r.status, 401, "%s", r.body);
    h_resp_free(&r);

    cr_expect(h_stack_down(&s));
    free(call_id);
    PQfinish(pg);
}
