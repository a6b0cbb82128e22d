/*
 * Implementation of the integration tests' API client (harness_client.h).
 * Every request goes through h_http, so each answer is also logged for
 * tools/check_openapi.py.
 */
#include "harness_client.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

h_client_t h_client(const h_stack_t *s, const h_tenant_t *t, PGconn *pg)
{
    h_client_t c = h_client_key(s, t->api_key);
    c.tenant = t;
    c.deployment_id = t->deployment_id;
    c.pg = pg;
    return c;
}

h_client_t h_client_key(const h_stack_t *s, const char *api_key)
{
    h_client_t c = {.stack = s};
    int n = snprintf(c.auth, sizeof(c.auth), "Authorization: Bearer %s", api_key);
    cr_assert(n > 0 && (size_t)n < sizeof(c.auth), "API key too long: %s", api_key);
    return c;
}

h_client_t h_client_on(const h_client_t *c, const char *deployment_id)
{
    h_client_t d = *c;
    d.deployment_id = deployment_id;
    return d;
}

h_resp_t h_request(const h_client_t *c, const char *method, const char *path,
                   const char *content_type, const char *idempotency_key, const char *body)
{
    char ct[160], idem[400];
    const char *headers[4] = {c->auth};
    int n = 1;
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers[n++] = ct;
    }
    if (idempotency_key) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idempotency_key);
        headers[n++] = idem;
    }
    return h_http(c->port ? c->port : c->stack->ingest_port, method, path, headers, body);
}

h_resp_t h_api(const h_client_t *c, const char *method, const char *path, const char *body)
{
    return h_request(c, method, path, "application/json", NULL, body);
}

h_resp_t h_get(const h_client_t *c, const char *path)
{
    return h_request(c, "GET", path, NULL, NULL, NULL);
}

h_resp_t h_deployment_request(const h_client_t *c, const char *method, const char *suffix,
                              const char *content_type, const char *idempotency_key,
                              const char *body)
{
    char path[512];
    cr_assert_not_null(c->deployment_id, "a client without a deployment");
    snprintf(path, sizeof(path), "/api/v1/deployments/%s%s", c->deployment_id, suffix);
    return h_request(c, method, path, content_type, idempotency_key, body);
}

h_resp_t h_deployment_api(const h_client_t *c, const char *method, const char *suffix,
                          const char *body)
{
    return h_deployment_request(c, method, suffix, "application/json", NULL, body);
}

char *h_queue_json(const h_client_t *c, const char *body)
{
    h_resp_t r = h_deployment_api(c, "POST", "/calls", body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *id = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    return id;
}

char *h_queue(const h_client_t *c, const char *phone)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"phone_number\": \"%s\", \"max_attempts\": 1}", phone);
    return h_queue_json(c, body);
}

h_resp_t h_queue_batch(const h_client_t *c, const char *body, long n)
{
    h_resp_t r = h_deployment_api(c, "POST", "/calls:batch", body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    cr_assert_eq(h_json_long(r.body, "accepted"), n, "%s", r.body);
    return r;
}

h_resp_t h_get_call(const h_client_t *c, const char *call_id)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/calls/%s", call_id);
    return h_get(c, path);
}

char *h_call_field(const h_client_t *c, const char *call_id, const char *json_path)
{
    h_resp_t r = h_get_call(c, call_id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *v = h_json_path(r.body, json_path);
    h_resp_free(&r);
    return v;
}

char *h_create(const h_client_t *c, const char *path, const char *body, const char *id_field)
{
    h_resp_t r = h_api(c, "POST", path, body);
    cr_assert_eq(r.status, 201, "POST %s: %s", path, r.body);
    char *id = h_json_path(r.body, id_field);
    h_resp_free(&r);
    return id;
}

char *h_wait_completed(const h_client_t *c, const char *call_id, int timeout_ms)
{
    int64_t deadline = ob_mono_ms() + timeout_ms;
    while (ob_mono_ms() < deadline) {
        h_resp_t r = h_get_call(c, call_id);
        if (r.status == 200) {
            char *state = h_json_str(r.body, "state");
            bool done = state && strcmp(state, "completed") == 0;
            free(state);
            if (done) {
                free(r.content_type);
                return r.body; /* ownership passes to the caller */
            }
        }
        h_resp_free(&r);
        h_sleep_ms(100);
    }
    return NULL;
}

char *h_wait_value(const h_client_t *c, const char *sql, const char *call_id, int timeout_ms)
{
    const char *p[] = {call_id};
    cr_assert_not_null(c->pg, "a client without Postgres");
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        char *v = h_pg_value(c->pg, sql, 1, p);
        if (v)
            return v;
        h_sleep_ms(100);
    }
    cr_assert_fail("no row for %s after %d ms: %s", call_id, timeout_ms, sql);
    return NULL;
}

void h_wait_row(const h_client_t *c, const char *call_id, const char *condition, int timeout_ms)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM calls WHERE call_id = $1 AND %s", condition);
    free(h_wait_value(c, sql, call_id, timeout_ms));
}

char *h_admin_account(const h_stack_t *s, const char *email, const char *name)
{
    char body[256];
    h_client_t admin = h_client_key(s, H_ADMIN_KEY);
    snprintf(body, sizeof(body), "{\"email\": \"%s\", \"name\": \"%s\"}", email, name);
    h_resp_t r = h_api(&admin, "POST", "/api/v1/accounts", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char *key = h_json_path(r.body, "api_key.key");
    h_resp_free(&r);
    return key;
}

void h_basic_auth(char *out, size_t len, const char *email, const char *key)
{
    char plain[256];
    unsigned char enc[400];
    snprintf(plain, sizeof(plain), "%s:%s", email, key);
    EVP_EncodeBlock(enc, (const unsigned char *)plain, (int)strlen(plain));
    snprintf(out, len, "Authorization: Basic %s", enc);
}
