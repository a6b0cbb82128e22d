/*
 * Accounts, API keys, applications and deployments through real HTTP: the
 * admin key creates an account, whose key manages its own resources and
 * nobody else's; validation names every bad field; revoked keys stop working;
 * deleted deployments take no calls.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* Creates an account through the admin API; returns its first key. */
static char *new_account(const char *email)
{
    char *key = h_admin_account(&s, email, "Test");
    cr_assert(key && strncmp(key, "obk_", 4) == 0, "%s", key);
    return key;
}

static long status_of(const h_client_t *c, const char *method, const char *path, const char *body)
{
    h_resp_t r = h_api(c, method, path, body);
    long st = r.status;
    h_resp_free(&r);
    return st;
}

Test(resources, accounts_own_their_resources, .timeout = 120, .fini = teardown)
{
    char path[256], email[128];
    h_stack_init(&s);
    PQfinish(h_pg(&s)); /* migrate the stack's schema */
    const char *const env[] = {"OB_INGEST_ADMIN_KEY=" H_ADMIN_KEY, NULL};
    h_start(&s, "ingest", "ingest", env);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    /* The OpenAPI document is public. */
    h_resp_t doc = h_http(s.ingest_port, "GET", "/api/v1/openapi.json", NULL, NULL);
    cr_expect_eq(doc.status, 200);
    cr_expect_str_eq(h_json_path(doc.body, "openapi"), "3.1.0");
    cr_expect_not_null(h_json_path(doc.body, "paths./api/v1/deployments/{deployment_id}/calls"));
    h_resp_free(&doc);

    /* So is the web console (tests/browser tests it in a browser). */
    h_resp_t page = h_http(s.ingest_port, "GET", "/", NULL, NULL);
    cr_expect_eq(page.status, 200);
    cr_expect(page.content_type && strncmp(page.content_type, "text/html", 9) == 0);
    cr_expect(page.body && strstr(page.body, "/console/app.js"));
    h_resp_free(&page);
    page = h_http(s.ingest_port, "GET", "/console/app.js", NULL, NULL);
    cr_expect_eq(page.status, 200);
    cr_expect(page.content_type && strncmp(page.content_type, "text/javascript", 15) == 0);
    h_resp_free(&page);
    page = h_http(s.ingest_port, "GET", "/console/nope.js", NULL, NULL);
    cr_expect_eq(page.status, 404);
    h_resp_free(&page);

    /* Only the admin key creates accounts. */
    snprintf(email, sizeof(email), "%s@a.test", s.prefix);
    h_client_t nobody = h_client_key(&s, "obk_nope"), admin = h_client_key(&s, H_ADMIN_KEY);
    cr_expect_eq(status_of(&nobody, "POST", "/api/v1/accounts", "{\"email\":\"x@y.z\"}"), 403);
    char *key = new_account(email);
    cr_expect_eq(status_of(&admin, "POST", "/api/v1/accounts", "{\"email\": \"nope\"}"), 422);
    snprintf(email, sizeof(email), "%s@b.test", s.prefix);
    char *other = new_account(email);
    h_client_t mine = h_client_key(&s, key), theirs = h_client_key(&s, other);

    char *app = h_create(&mine, "/api/v1/applications",
                         "{\"name\": \"Reminders\", \"start_url\": \"https://app.example/start\"}",
                         "application_id");
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", app);
    char *dep = h_create(&mine, path,
                         "{\"name\": \"uk\", \"capacity\": 2, \"default_region\": \"GB\","
                         " \"caller_id\": \"+44 20 7555 0199\"}",
                         "deployment_id");

    /* Read, update, list. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep);
    h_resp_t r = h_api(&mine, "PATCH", path, "{\"capacity\": 3, \"max_attempts\": 2}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "capacity"), "3");
    cr_expect_str_eq(h_json_path(r.body, "max_attempts"), "2");
    cr_expect_str_eq(h_json_path(r.body, "caller_id"), "+442075550199");
    h_resp_free(&r);
    r = h_api(
        &mine, "PATCH", path,
        "{\"capacity\": 0, \"default_region\": \"XX\", \"start_url\": \"ftp://x\", \"x\": 1}");
    cr_expect_eq(r.status, 422);
    for (const char *const *f =
             (const char *const[]){"capacity", "default_region", "start_url", "x", NULL};
         *f; f++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\"field\":\"%s\"", *f);
        cr_expect(strstr(r.body, needle), "no error for %s: %s", *f, r.body);
    }
    h_resp_free(&r);
    r = h_api(&mine, "GET", "/api/v1/deployments", NULL);
    cr_expect_str_eq(h_json_path(r.body, "deployments.0.deployment_id"), dep);
    h_resp_free(&r);

    /* The application options: JSON and unverified by default, set by PATCH,
     * and a bad value is named with what is allowed. */
    r = h_api(&mine, "GET", path, NULL);
    cr_expect_str_eq(h_json_path(r.body, "start_url_format"), "json", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "verify_urls"), "false", "%s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "PATCH", path, "{\"start_url_format\": \"form\", \"verify_urls\": true}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "GET", path, NULL);
    cr_expect_str_eq(h_json_path(r.body, "start_url_format"), "form", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "verify_urls"), "true", "%s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "PATCH", path, "{\"start_url_format\": \"xml\", \"verify_urls\": \"yes\"}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"start_url_format\""), "%s", r.body);
    cr_expect(strstr(r.body, "start_url_format must be \\\"json\\\" or \\\"form\\\""), "%s",
              r.body);
    cr_expect(strstr(r.body, "\"field\":\"verify_urls\""), "%s", r.body);
    cr_expect(strstr(r.body, "verify_urls must be true or false"), "%s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "PATCH", path, "{\"start_url_format\": null}");
    cr_expect_eq(r.status, 422, "null is no format: %s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "GET", path, NULL);
    cr_expect_str_eq(h_json_path(r.body, "start_url_format"), "form", "unchanged: %s", r.body);
    h_resp_free(&r);
    r = h_api(&mine, "PATCH", path, "{\"start_url_format\": \"json\", \"verify_urls\": false}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "start_url_format"), "json", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "verify_urls"), "false", "%s", r.body);
    h_resp_free(&r);

    /* National numbers use the deployment's region. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", dep);
    r = h_api(&mine, "POST", path, "{\"phone_number\": \"020 7555 0100\"}");
    cr_expect_eq(r.status, 202, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "phone_number"), "+442075550100");
    h_resp_free(&r);

    /* Another account sees none of it. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep);
    cr_expect_eq(status_of(&theirs, "GET", path, NULL), 404);
    cr_expect_eq(status_of(&theirs, "PATCH", path, "{\"capacity\": 9}"), 404);
    cr_expect_eq(status_of(&theirs, "DELETE", path, NULL), 404);
    snprintf(path, sizeof(path), "/api/v1/applications/%s", app);
    cr_expect_eq(status_of(&theirs, "GET", path, NULL), 404);
    r = h_api(&theirs, "GET", "/api/v1/deployments", NULL);
    cr_expect_str_eq(h_json_path(r.body, "deployments"), "[]");
    h_resp_free(&r);

    /* Keys: a second one works until it is revoked; secrets are never listed. */
    h_resp_t k = h_api(&mine, "POST", "/api/v1/api-keys", "{\"label\": \"ci\"}");
    cr_assert_eq(k.status, 201, "%s", k.body);
    char *second = h_json_path(k.body, "key");
    char *second_id = h_json_path(k.body, "key_id");
    h_resp_free(&k);
    h_client_t spare = h_client_key(&s, second);
    cr_expect_eq(status_of(&spare, "GET", "/api/v1/applications", NULL), 200);
    r = h_api(&mine, "GET", "/api/v1/api-keys", NULL);
    cr_expect(!strstr(r.body, second), "a key's secret was listed");
    cr_expect(strstr(r.body, second_id), "%s", r.body);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/api-keys/%s", second_id);
    cr_expect_eq(status_of(&theirs, "DELETE", path, NULL), 404);
    cr_expect_eq(status_of(&mine, "DELETE", path, NULL), 204);
    cr_expect_eq(status_of(&spare, "GET", "/api/v1/applications", NULL), 401);

    /* An application with deployments stays; a deleted deployment takes no calls. */
    snprintf(path, sizeof(path), "/api/v1/applications/%s", app);
    cr_expect_eq(status_of(&mine, "DELETE", path, NULL), 409);
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep);
    cr_expect_eq(status_of(&mine, "DELETE", path, NULL), 204);
    cr_expect_eq(status_of(&mine, "GET", path, NULL), 404);
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", dep);
    cr_expect_eq(status_of(&mine, "POST", path, "{\"phone_number\": \"+442075550100\"}"), 404);
    snprintf(path, sizeof(path), "/api/v1/applications/%s", app);
    cr_expect_eq(status_of(&mine, "DELETE", path, NULL), 204);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
}
