/*
 * Plum-compatible routes, called as a client written for Plum's
 * documentation would: HTTP Basic with the account email and key, form
 * fields with Plum's names and ranges, answers as Plum documents them (200
 * for a queued call, 400 with {"error": ...} naming the field, 409 for a
 * deleted deployment, 202 without a body for a cancellation), call_details
 * with numbers as numbers. tests/plum/plum_client.py speaks to them as a
 * Plum client does end to end (Link header, result_url).
 */
#include "harness_client.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
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

static h_resp_t plum(const char *method, const char *path, const char *ct, const char *body)
{
    char ctype[128];
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", ct ? ct : "");
    const char *headers[] = {basic, ct ? ctype : NULL, NULL};
    return h_http(s.ingest_port, method, path, headers, body);
}

/* Expects Plum's error: status, application/json, {"error": text} and
 * nothing else, the text holding each of want (NULL-terminated). */
static void expect_error(h_resp_t *r, long status, const char *const *want)
{
    cr_expect_eq(r->status, status, "%s", r->body);
    cr_expect(r->content_type && strncmp(r->content_type, "application/json", 16) == 0, "%s",
              r->content_type ? r->content_type : "(none)");
    cJSON *j = cJSON_Parse(r->body);
    cr_expect(cJSON_IsObject(j) && cJSON_GetArraySize(j) == 1 &&
                  cJSON_IsString(cJSON_GetObjectItem(j, "error")),
              "%s", r->body);
    for (int i = 0; want && want[i]; i++)
        cr_expect(strstr(r->body, want[i]), "'%s' not in %s", want[i], r->body);
    cJSON_Delete(j);
}

/* GET /api/outbound/{id} until it answers 200 (the scheduler records the
 * call meanwhile); returns the body (malloc'd). */
static char *plum_call(const char *call_id)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/outbound/%s", call_id);
    h_resp_t r = {0};
    for (int i = 0; i < 100; i++) {
        r = plum("GET", path, NULL, NULL);
        if (r.status == 200 && !strstr(r.body, "\"recorded\":false"))
            break;
        h_resp_free(&r);
        h_sleep_ms(100);
    }
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(r.content_type);
    return r.body;
}

Test(plum, a_plum_client_works_unchanged, .timeout = 180, .fini = teardown)
{
    char path[256], qpath[256], bpath[256];
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    cr_assert(h_stack_up(&s, 0, NULL));
    h_basic_auth(basic, sizeof(basic), t.email, t.api_key);
    snprintf(qpath, sizeof(qpath), "/api/apps/%s/%s/queue", t.application_id, t.deployment_id);
    snprintf(bpath, sizeof(bpath), "/api/apps/%s/%s/bulk_queue", t.application_id, t.deployment_id);

    /* Queued: 200 and the call_id (the Link header is the Python client's). */
    h_resp_t r = plum("POST", qpath, "application/x-www-form-urlencoded",
                      "phone_number=%2B12125550100%3Bani%3D%2B12125550199&max_attempts=2"
                      "&reattempt_wait=120&message_reference=ref-1&is_pci=0"
                      "&call_parameters=%7B%22name%22%3A%22Sam%22%7D&start_timestamp=1700000000");
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *call_id = h_json_str(r.body, "call_id");
    cr_assert_not_null(call_id, "%s", r.body);
    h_resp_free(&r);

    char *body = plum_call(call_id);
    cJSON *j = cJSON_Parse(body);
    cJSON *d = cJSON_GetObjectItem(j, "call_details");
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(d, "max_attempts")), "%s", body);
    cr_expect_eq(cJSON_GetObjectItem(d, "max_attempts")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(d, "reattempt_wait")->valueint, 120);
    cr_expect_eq(cJSON_GetObjectItem(d, "start_timestamp")->valuedouble, 1700000000.0);
    cr_expect_str_eq(cJSON_GetObjectItem(d, "status")->valuestring, "queued");
    cr_expect_str_eq(cJSON_GetObjectItem(d, "message_reference")->valuestring, "ref-1");
    cr_expect_str_eq(h_json_path(body, "call_details.call_parameters.name"), "Sam");
    cr_expect_str_eq(h_json_path(body, "call_details.events.0.event"), "queued", "%s", body);
    cJSON_Delete(j);
    free(body);
    /* Recorded as queued through Plum, so its result_url gets call_details. */
    const char *idp[] = {call_id};
    char *via = h_pg_value(pg, "SELECT queued_via FROM calls WHERE call_id = $1", 1, idp);
    cr_expect_str_eq(via, "plum");
    free(via);

    /* Plum DEV's English times. */
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550101&scheduled_time=tomorrow+9am&expiration_time=%2B3+days");
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *later = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    body = plum_call(later);
    long start = h_json_long(body, "call_details.start_timestamp");
    long end = h_json_long(body, "call_details.end_timestamp");
    long now = (long)time(NULL);
    cr_expect(start % 86400 == 9 * 3600 && start > now && start <= now + 86400 + 9 * 3600, "%s",
              body);
    cr_expect(end > now + 3 * 86400 - 120 && end <= now + 3 * 86400 + 5, "%s", body);
    free(body);
    free(later);

    /* Plum's ranges and names in errors: 400, {"error"} naming each field. */
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&reattempt_wait=100000");
    expect_error(&r, 400, (const char *const[]){"reattempt_wait", "86400", NULL});
    h_resp_free(&r);
    r = plum("POST", qpath, "application/x-www-form-urlencoded", "phone_number=12&max_attempts=99");
    expect_error(&r, 400, (const char *const[]){"max_attempts", "phone_number", NULL});
    h_resp_free(&r);
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&retry_interval=5");
    expect_error(&r, 400, (const char *const[]){"retry_interval must", NULL});
    h_resp_free(&r);
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&scheduled_time=whenever");
    expect_error(&r, 400, (const char *const[]){"scheduled_time", "tomorrow 9am", NULL});
    h_resp_free(&r);
    /* is_pci=1 only where the deployment allows it. */
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&is_pci=1");
    expect_error(&r, 400, (const char *const[]){"is_pci", "plum_pci_allowed", NULL});
    h_resp_free(&r);
    const char *dp[] = {t.deployment_id};
    free(h_pg_value(pg, "UPDATE deployments SET plum_pci_allowed = true WHERE deployment_id = $1",
                    1, dp));
    r = plum("POST", qpath, "application/x-www-form-urlencoded",
             "phone_number=%2B12125550100&is_pci=1");
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    /* bulk_queue: the fields beside the file are every row's defaults, sent
     * here after the file (as PHP's curl does with the file first in its
     * array); the answer lists the calls queued. */
    r = plum("POST", bpath, "multipart/form-data; boundary=B0",
             "--B0\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"calls.csv\"\r\n"
             "Content-Type: text/csv\r\n\r\nphone_number,max_attempts,first_name\n"
             "+12125550100,,Ann\n+12125550101,3,Bob\nnot a number,,Cy\n\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"max_attempts\"\r\n\r\n4\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"reattempt_wait\"\r\n\r\n600\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"end_timestamp\"\r\n\r\n+2 days\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"is_pci\"\r\n\r\n0\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"result_url\"\r\n\r\n"
             "https://example.com/results\r\n--B0--\r\n");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "queued"), "2");
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "1");
    cr_expect_str_eq(h_json_path(r.body, "errors.0.row"), "3", "%s", r.body);
    cr_expect(strstr(r.body, "\"calls_url\""), "%s", r.body);
    char *first = h_json_path(r.body, "call_ids.0"), *second = h_json_path(r.body, "call_ids.1");
    cr_assert(first && second && !h_json_path(r.body, "call_ids.2"), "%s", r.body);
    h_resp_free(&r);
    body = plum_call(first);
    cr_expect_eq(h_json_long(body, "call_details.max_attempts"), 4, "%s", body);
    cr_expect_eq(h_json_long(body, "call_details.reattempt_wait"), 600, "%s", body);
    cr_expect(h_json_long(body, "call_details.end_timestamp") > (long)time(NULL) + 86400, "%s",
              body);
    free(body);
    body = plum_call(second);
    cr_expect_eq(h_json_long(body, "call_details.max_attempts"), 3, "the row's own: %s", body);
    free(body);
    const char *fp[] = {first};
    char *url = h_pg_value(pg, "SELECT result_url FROM calls WHERE call_id = $1", 1, fp);
    cr_expect_str_eq(url, "https://example.com/results");
    free(url);
    free(first);
    free(second);

    /* A bad field beside the file queues nothing; so does no file. */
    r = plum("POST", bpath, "multipart/form-data; boundary=B0",
             "--B0\r\nContent-Disposition: form-data; name=\"reattempt_wait\"\r\n\r\n30\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"c.csv\"\r\n\r\n"
             "phone_number\n+12125550100\n\r\n--B0--\r\n");
    expect_error(&r, 400, (const char *const[]){"reattempt_wait", NULL});
    h_resp_free(&r);
    r = plum(
        "POST", bpath, "multipart/form-data; boundary=B0",
        "--B0\r\nContent-Disposition: form-data; name=\"max_attempts\"\r\n\r\n2\r\n--B0--\r\n");
    expect_error(&r, 400, (const char *const[]){"csv", NULL});
    h_resp_free(&r);

    /* The wrong application, the wrong email, and cancelling the queue:
     * 202 and no body. */
    snprintf(path, sizeof(path), "/api/apps/%s/%s/cancel", t.deployment_id, t.deployment_id);
    r = plum("DELETE", path, NULL, NULL);
    expect_error(&r, 404, NULL);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/apps/%s/%s/cancel", t.application_id, t.deployment_id);
    r = plum("DELETE", path, NULL, NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    cr_expect_str_eq(r.body, "");
    h_resp_free(&r);
    r = plum("GET", path, NULL, NULL);
    expect_error(&r, 405, NULL);
    h_resp_free(&r);
    h_basic_auth(basic, sizeof(basic), "someone@else.invalid", t.api_key);
    r = plum("DELETE", path, NULL, NULL);
    expect_error(&r, 401, NULL);
    h_resp_free(&r);
    h_basic_auth(basic, sizeof(basic), t.email, t.api_key);

    /* A deleted deployment: 409 on every Plum route that names it. */
    free(h_pg_value(pg, "UPDATE deployments SET deleted_at = now() WHERE deployment_id = $1", 1,
                    dp));
    r = plum("POST", qpath, "application/x-www-form-urlencoded", "phone_number=%2B12125550100");
    expect_error(&r, 409, (const char *const[]){"deleted", NULL});
    h_resp_free(&r);
    r = plum("DELETE", path, NULL, NULL);
    expect_error(&r, 409, (const char *const[]){"deleted", NULL});
    h_resp_free(&r);
    r = plum("POST", bpath, "multipart/form-data; boundary=B0",
             "--B0\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"c.csv\"\r\n\r\n"
             "phone_number\n+12125550100\n\r\n--B0--\r\n");
    expect_error(&r, 409, (const char *const[]){"deleted", NULL});
    h_resp_free(&r);
    /* Its calls still answer. */
    free(plum_call(call_id));

    cr_expect(h_stack_down(&s));
    free(call_id);
    PQfinish(pg);
}
