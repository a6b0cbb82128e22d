/*
 * The API under hostile use: every authenticated route refuses a missing, a
 * wrong and a revoked key, and answers another account's key exactly as it
 * answers an id that does not exist (nothing leaks, nothing changes); the
 * table of routes here must cover every operation of the served OpenAPI
 * document. Hostile strings in every text field come back byte for byte;
 * keys never reach the logs; oversized, deep, duplicated, non-UTF-8 and
 * slow requests are refused while other clients are still served.
 */
#include "harness_client.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define NO_SUCH "01a21cab-0000-7000-8000-000000000000"

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* An account made through the admin API. */
typedef struct {
    char email[128]; /* its email */
    char *key;       /* its first key (malloc'd) */
    h_client_t api;  /* the key's client */
} account_t;

/* Sends body with the Authorization header auth (NULL: none). */
static h_resp_t send_as(const char *auth, const char *method, const char *path, const char *ctype,
                        const char *body)
{
    char ct[96];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
    const char *headers[] = {ct, auth, NULL};
    return h_http(s.ingest_port, method, path, headers, body);
}

static char *bearer(const char *key)
{
    char *h = malloc(strlen(key) + 32);
    sprintf(h, "Authorization: Bearer %s", key);
    return h;
}

static char *basic(const char *email, const char *key)
{
    char *h = malloc(512);
    h_basic_auth(h, 512, email, key);
    return h;
}

static void new_account(account_t *a, const char *tag)
{
    snprintf(a->email, sizeof(a->email), "%s@%s.test", s.prefix, tag);
    a->key = h_admin_account(&s, a->email, tag);
    a->api = h_client_key(&s, a->key);
}

/* Starts ingest (with the admin key) and a scheduler, so calls get recorded
 * (no dialer: they stay queued). */
static void start(void)
{
    h_stack_init(&s);
    PQfinish(h_pg(&s)); /* migrate the stack's schema */
    const char *const env[] = {"OB_INGEST_ADMIN_KEY=" H_ADMIN_KEY, NULL};
    h_start(&s, "scheduler", "scheduler", NULL);
    h_start(&s, "ingest", "ingest", env);
    for (int i = 0; i < s.nprocs; i++)
        cr_assert(h_wait_ready(&s.procs[i], 60000), "%s not ready", s.procs[i].name);
}

/* Waits until the call is recorded (GET answers 200). */
static void wait_recorded(const h_client_t *c, const char *call_id)
{
    for (int i = 0; i < 300; i++) {
        h_resp_t r = h_get_call(c, call_id);
        long st = r.status;
        h_resp_free(&r);
        if (st == 200)
            return;
        h_sleep_ms(100);
    }
    cr_assert_fail("call %s never recorded", call_id);
}

/* One operation: how to call it on account A's resources. */
typedef struct {
    const char *method;
    const char *spec;  /* the OpenAPI path it covers */
    const char *path;  /* with {app}, {dep}, {call}, {upload}, {key} */
    const char *ctype; /* NULL: application/json */
    const char *body;
    bool plum; /* HTTP Basic (email and key) rather than Bearer */
} op_t;

#define CSV "text/csv"
static const op_t ops[] = {
    {"POST", "/api/v1/api-keys", "/api/v1/api-keys", NULL, "{\"label\": \"x\"}", false},
    {"GET", "/api/v1/api-keys", "/api/v1/api-keys", NULL, NULL, false},
    {"DELETE", "/api/v1/api-keys/{key_id}", "/api/v1/api-keys/{key}", NULL, NULL, false},
    {"POST", "/api/v1/applications", "/api/v1/applications", NULL, "{\"name\": \"x\"}", false},
    {"GET", "/api/v1/applications", "/api/v1/applications", NULL, NULL, false},
    {"GET", "/api/v1/applications/{application_id}", "/api/v1/applications/{app}", NULL, NULL,
     false},
    {"PATCH", "/api/v1/applications/{application_id}", "/api/v1/applications/{app}", NULL,
     "{\"name\": \"taken\"}", false},
    {"DELETE", "/api/v1/applications/{application_id}", "/api/v1/applications/{app}", NULL, NULL,
     false},
    {"POST", "/api/v1/applications/{application_id}/deployments",
     "/api/v1/applications/{app}/deployments", NULL, "{\"name\": \"x\", \"capacity\": 1}", false},
    {"GET", "/api/v1/applications/{application_id}/deployments",
     "/api/v1/applications/{app}/deployments", NULL, NULL, false},
    {"GET", "/api/v1/deployments", "/api/v1/deployments", NULL, NULL, false},
    {"GET", "/api/v1/deployments/{deployment_id}", "/api/v1/deployments/{dep}", NULL, NULL, false},
    {"PATCH", "/api/v1/deployments/{deployment_id}", "/api/v1/deployments/{dep}", NULL,
     "{\"capacity\": 9}", false},
    {"DELETE", "/api/v1/deployments/{deployment_id}", "/api/v1/deployments/{dep}", NULL, NULL,
     false},
    {"POST", "/api/v1/deployments/{deployment_id}/calls", "/api/v1/deployments/{dep}/calls", NULL,
     "{\"phone_number\": \"+12125550100\"}", false},
    {"GET", "/api/v1/deployments/{deployment_id}/calls", "/api/v1/deployments/{dep}/calls", NULL,
     NULL, false},
    {"GET", "/api/v1/deployments/{deployment_id}/summary", "/api/v1/deployments/{dep}/summary",
     NULL, NULL, false},
    {"GET", "/api/v1/deployments/{deployment_id}/deliveries",
     "/api/v1/deployments/{dep}/deliveries", NULL, NULL, false},
    {"POST", "/api/v1/deployments/{deployment_id}:cancel", "/api/v1/deployments/{dep}:cancel", NULL,
     NULL, false},
    {"POST", "/api/v1/deployments/{deployment_id}:pause", "/api/v1/deployments/{dep}:pause", NULL,
     NULL, false},
    {"POST", "/api/v1/deployments/{deployment_id}:resume", "/api/v1/deployments/{dep}:resume", NULL,
     NULL, false},
    {"POST", "/api/v1/deployments/{deployment_id}/uploads", "/api/v1/deployments/{dep}/uploads",
     CSV, "phone_number\n+12125550100\n", false},
    {"POST", "/api/v1/deployments/{deployment_id}/calls:batch",
     "/api/v1/deployments/{dep}/calls:batch", NULL, "[{\"phone_number\": \"+12125550100\"}]",
     false},
    {"GET", "/api/v1/uploads/{upload_id}", "/api/v1/uploads/{upload}", NULL, NULL, false},
    {"GET", "/api/v1/uploads/{upload_id}/report.csv", "/api/v1/uploads/{upload}/report.csv", NULL,
     NULL, false},
    {"GET", "/api/v1/calls/{call_id}", "/api/v1/calls/{call}", NULL, NULL, false},
    {"GET", "/api/v1/calls/{call_id}/deliveries", "/api/v1/calls/{call}/deliveries", NULL, NULL,
     false},
    {"POST", "/api/v1/calls/{call_id}:cancel", "/api/v1/calls/{call}:cancel", NULL, NULL, false},
    {"POST", "/api/v1/app:preview", "/api/v1/app:preview", NULL,
     "{\"verb\": \"say\", \"text\": \"Hello.\"}", false},
    {"POST", "/api/apps/{app}/{dep}/queue", "/api/apps/{app}/{dep}/queue",
     "application/x-www-form-urlencoded", "phone_number=%2B12125550100", true},
    {"POST", "/api/apps/{app}/{dep}/bulk_queue", "/api/apps/{app}/{dep}/bulk_queue",
     "multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"c.csv\"\r\n\r\n"
     "phone_number\n+12125550100\n\r\n--b--\r\n",
     true},
    {"DELETE", "/api/apps/{app}/{dep}/cancel", "/api/apps/{app}/{dep}/cancel", NULL, NULL, true},
    {"GET", "/api/outbound/{call_id}", "/api/outbound/{call}", NULL, NULL, true},
};

/* The ids a path's placeholders stand for. */
typedef struct {
    const char *app, *dep, *call, *upload, *key;
} ids_t;

/* path with its placeholders replaced by ids (malloc'd). */
static char *fill(const char *path, const ids_t *ids)
{
    static const char *const names[] = {"{app}", "{dep}", "{call}", "{upload}", "{key}"};
    const char *vals[] = {ids->app, ids->dep, ids->call, ids->upload, ids->key};
    char *out = calloc(1, 512);
    for (const char *p = path; *p;) {
        size_t k = 0;
        while (k < 5 && strncmp(p, names[k], strlen(names[k])) != 0)
            k++;
        if (k < 5) {
            strcat(out, vals[k]);
            p += strlen(names[k]);
        } else {
            strncat(out, p++, 1);
        }
    }
    return out;
}

static bool has_ids(const op_t *op)
{
    return strchr(op->path, '{') != NULL;
}

/* status and problem code of op with credentials auth on ids. */
/* What an answer says went wrong: the problem's code, or on the Plum routes
 * (whose errors are Plum's {"error": text}) the text with the ids put back
 * as placeholders, so that answers about different ids compare (malloc'd). */
static char *what_went_wrong(const char *body, const ids_t *ids)
{
    char *code = body ? h_json_path(body, "code") : NULL;
    char *text = code || !body ? NULL : h_json_path(body, "error");
    if (code || !text)
        return code;
    const char *vals[] = {ids->app, ids->dep, ids->call, ids->upload, ids->key};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char *at;
        while (vals[i] && vals[i][0] && (at = strstr(text, vals[i]))) {
            size_t n = strlen(vals[i]);
            memcpy(at, "{id}", 4);
            memmove(at + 4, at + n, strlen(at + n) + 1);
        }
    }
    return text;
}

static long try_op(const op_t *op, const char *auth, const ids_t *ids, char **code)
{
    char *path = fill(op->path, ids);
    h_resp_t r = send_as(auth, op->method, path, op->ctype, op->body);
    long st = r.status;
    if (code)
        *code = what_went_wrong(r.body, ids);
    h_resp_free(&r);
    free(path);
    return st;
}

/* Every operation of the served document that needs an account's key. */
static void expect_every_operation_covered(void)
{
    h_resp_t r = h_http(s.ingest_port, "GET", "/api/v1/openapi.json", NULL, NULL);
    cJSON *doc = cJSON_Parse(r.body);
    h_resp_free(&r);
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths"), *path, *op;
    int checked = 0;
    cJSON_ArrayForEach(path, paths)
    {
        cJSON_ArrayForEach(op, path)
        {
            const cJSON *sec = cJSON_GetObjectItemCaseSensitive(op, "security");
            char method[16];
            size_t i = 0;
            for (; op->string[i] && i < sizeof(method) - 1; i++)
                method[i] = (char)(op->string[i] - 'a' + 'A');
            method[i] = '\0';
            if (!cJSON_IsObject(op) || (cJSON_IsArray(sec) && cJSON_GetArraySize(sec) == 0))
                continue; /* public */
            if (strcmp(path->string, "/api/v1/accounts") == 0)
                continue; /* the admin key's; test_resources */
            bool found = false;
            for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]) && !found; k++)
                found =
                    strcmp(ops[k].method, method) == 0 && strcmp(ops[k].spec, path->string) == 0;
            cr_expect(found, "%s %s is not in this test's table of operations", method,
                      path->string);
            checked++;
        }
    }
    cr_expect_geq(checked, (int)(sizeof(ops) / sizeof(ops[0])));
    cJSON_Delete(doc);
}

Test(security, every_route_refuses_other_keys_and_leaks_nothing, .timeout = 240, .fini = teardown)
{
    account_t a, b;
    start();
    expect_every_operation_covered();
    new_account(&a, "a");
    new_account(&b, "b");

    char *app =
        h_create(&a.api, "/api/v1/applications", "{\"name\": \"A's app\"}", "application_id");
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", app);
    char *dep =
        h_create(&a.api, path, "{\"name\": \"A's queue\", \"capacity\": 2}", "deployment_id");
    h_client_t to_dep = h_client_on(&a.api, dep);
    char *call = h_queue_json(&to_dep, "{\"phone_number\": \"+12125550100\"}");
    wait_recorded(&a.api, call);
    h_resp_t up = h_deployment_request(&to_dep, "POST", "/uploads", CSV, NULL,
                                       "phone_number\n+12125550101\n");
    cr_assert_eq(up.status, 201, "%s", up.body);
    char *upload = h_json_path(up.body, "upload_id");
    h_resp_free(&up);
    char *victim = h_create(&a.api, "/api/v1/api-keys", "{\"label\": \"kept\"}", "key_id");
    h_resp_t rk = h_api(&a.api, "POST", "/api/v1/api-keys", "{\"label\": \"revoked\"}");
    char *revoked = h_json_path(rk.body, "key"), *revoked_id = h_json_path(rk.body, "key_id");
    h_resp_free(&rk);
    snprintf(path, sizeof(path), "/api/v1/api-keys/%s", revoked_id);
    h_resp_t del = h_api(&a.api, "DELETE", path, NULL);
    cr_assert_eq(del.status, 204);
    h_resp_free(&del);

    ids_t mine = {app, dep, call, upload, victim};
    ids_t none = {NO_SUCH, NO_SUCH, NO_SUCH, NO_SUCH, NO_SUCH};
    const char *wrong = "obk_0000000000000000000000000000000000000000";
    char *no_key[] = {NULL,
                      bearer(wrong),
                      bearer(revoked),
                      basic(a.email, wrong),
                      basic(a.email, revoked),
                      basic(b.email, a.key)};
    char *b_bearer = bearer(b.key), *b_basic = basic(b.email, b.key);
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        const op_t *op = &ops[k];
        /* No key, a wrong one, a revoked one, or A's key under B's email. */
        for (size_t c = 0; c < sizeof(no_key) / sizeof(no_key[0]); c++)
            cr_expect_eq(try_op(op, no_key[c], &mine, NULL), 401, "%s %s with credentials %zu",
                         op->method, op->path, c);
        if (!has_ids(op))
            continue;
        /* B's key on A's ids answers as on ids that do not exist. */
        const char *other = op->plum ? b_basic : b_bearer;
        char *code_mine = NULL, *code_none = NULL;
        long st_mine = try_op(op, other, &mine, &code_mine);
        long st_none = try_op(op, other, &none, &code_none);
        cr_expect_eq(st_mine, 404, "%s %s with another account's key: %ld %s", op->method, op->path,
                     st_mine, code_mine);
        cr_expect_eq(st_mine, st_none, "%s %s: %ld for A's id, %ld for none", op->method, op->path,
                     st_mine, st_none);
        cr_expect(code_mine && code_none && strcmp(code_mine, code_none) == 0,
                  "%s %s: code %s for A's id, %s for none", op->method, op->path, code_mine,
                  code_none);
        free(code_mine);
        free(code_none);
    }

    /* Nothing of A's changed. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep);
    h_resp_t r = h_api(&a.api, "GET", path, NULL);
    cr_expect_eq(r.status, 200);
    h_expect_path(r.body, "capacity", "2");
    h_expect_path(r.body, "paused", "false");
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/applications/%s", app);
    r = h_api(&a.api, "GET", path, NULL);
    h_expect_path(r.body, "name", "A's app");
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/calls/%s", call);
    r = h_api(&a.api, "GET", path, NULL);
    h_expect_path(r.body, "state", "queued");
    h_resp_free(&r);
    r = h_api(&a.api, "GET", "/api/v1/api-keys", NULL);
    cr_expect(strstr(r.body, victim), "A's key was revoked by B: %s", r.body);
    h_resp_free(&r);

    /* No key, not even a wrong or revoked one, reached a log. */
    cr_expect(h_stack_down(&s));
    const char *secrets[] = {a.key, b.key, revoked, wrong, H_ADMIN_KEY};
    for (int i = 0; i < s.nprocs; i++) {
        for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]); k++)
            cr_expect(!h_log_has(&s.procs[i], secrets[k]), "%s logged a key (%zu)", s.procs[i].name,
                      k);
        cr_expect(h_log_has(&s.procs[i], "\"svc\""), "%s's log is empty", s.procs[i].name);
    }
    for (size_t c = 0; c < sizeof(no_key) / sizeof(no_key[0]); c++)
        free(no_key[c]);
    free(b_bearer);
    free(b_basic);
    free(app);
    free(dep);
    free(call);
    free(upload);
    free(victim);
    free(revoked);
    free(revoked_id);
}

/* Strings that have broken systems: SQL, format strings, markup, escapes,
 * bidirectional and line-separator characters, emoji. */
static const char *const hostile[] = {
    "'; DROP TABLE calls; --",
    "Robert'); DELETE FROM accounts; --",
    "\" OR \"1\"=\"1",
    "%s%s%s%n%x%p",
    "<script>alert(1)</script>",
    "\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x99\x82\xe2\x80\xae reversed",
    "$1::text $$ dollar $$ \\x41",
    "back\\slash \\\\ and \\u0041",
    "line\nbreak\ttab\rreturn\xe2\x80\xa8\xe2\x80\xa9",
    "{\"json\": [1, {\"x\": null}]}",
};

/* body with member set to the string v (JSON-escaped by cJSON); malloc'd. */
static char *with_string(const char *json, const char *member, const char *v)
{
    cJSON *o = cJSON_Parse(json);
    cJSON_AddStringToObject(o, member, v);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Expects the JSON answer's member (a dotted path) to be v exactly. */
static void expect_member(const char *body, const char *path, const char *v)
{
    char *got = h_json_path(body, path);
    cr_expect(got && strcmp(got, v) == 0, "%s: stored \"%s\" came back as \"%s\"", path, v, got);
    free(got);
}

Test(security, hostile_strings_come_back_byte_for_byte, .timeout = 180, .fini = teardown)
{
    account_t a;
    start();
    new_account(&a, "a");
    char path[256];
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const char *v = hostile[i];
        char *body = with_string("{}", "name", v);
        char *app = h_create(&a.api, "/api/v1/applications", body, "application_id");
        free(body);
        snprintf(path, sizeof(path), "/api/v1/applications/%s", app);
        h_resp_t r = h_api(&a.api, "GET", path, NULL);
        expect_member(r.body, "name", v);
        h_resp_free(&r);

        body = with_string("{\"capacity\": 1}", "name", v);
        snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", app);
        char *dep = h_create(&a.api, path, body, "deployment_id");
        free(body);
        snprintf(path, sizeof(path), "/api/v1/deployments/%s", dep);
        r = h_api(&a.api, "GET", path, NULL);
        expect_member(r.body, "name", v);
        h_resp_free(&r);

        body = with_string("{}", "label", v);
        r = h_api(&a.api, "POST", "/api/v1/api-keys", body);
        cr_expect_eq(r.status, 201, "%s", r.body);
        expect_member(r.body, "label", v);
        h_resp_free(&r);
        free(body);

        /* A call's reference and parameters, recorded through Kafka. */
        cJSON *call = cJSON_CreateObject();
        cJSON_AddStringToObject(call, "phone_number", "+12125550100");
        cJSON_AddStringToObject(call, "message_reference", v);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(call, "call_parameters"), "p", v);
        body = cJSON_PrintUnformatted(call);
        cJSON_Delete(call);
        h_client_t to_dep = h_client_on(&a.api, dep);
        char *id = h_queue_json(&to_dep, body);
        free(body);
        wait_recorded(&a.api, id);
        snprintf(path, sizeof(path), "/api/v1/calls/%s", id);
        r = h_api(&a.api, "GET", path, NULL);
        expect_member(r.body, "message_reference", v);
        expect_member(r.body, "call_parameters.p", v);
        h_resp_free(&r);
        free(id);
        free(app);
        free(dep);
    }
    /* And the tables they might have dropped still answer. */
    h_resp_t r = h_api(&a.api, "GET", "/api/v1/deployments", NULL);
    cr_expect_eq(r.status, 200);
    h_resp_free(&r);
    cr_expect(h_stack_down(&s));
}

/* Opens n TCP connections to port that send nothing; returns their fds. */
static int *idle_connections(int port, int n)
{
    int *fds = calloc((size_t)n, sizeof(int));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0);
    }
    return fds;
}

Test(security, abusive_requests_are_refused_and_others_still_served, .timeout = 180,
     .fini = teardown)
{
    account_t a;
    start();
    new_account(&a, "a");
    char *app = h_create(&a.api, "/api/v1/applications", "{\"name\": \"x\"}", "application_id");
    char path[256], calls[256];
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", app);
    char *dep = h_create(&a.api, path, "{\"name\": \"x\", \"capacity\": 1}", "deployment_id");
    snprintf(calls, sizeof(calls), "/api/v1/deployments/%s/calls", dep);
    const char *ok_call = "{\"phone_number\": \"+12125550100\"}";

    static const struct {
        const char *what, *body;
        long status;
        const char *says; /* in the answer */
    } bad[] = {
        {"duplicate member", "{\"phone_number\": \"+12125550100\", \"phone_number\": \"+1\"}", 400,
         "names the same member twice"},
        {"NUL escape", "{\"phone_number\": \"+12125550100\", \"message_reference\": \"a\\u0000\"}",
         400, "\\\\u0000"},
        {"not UTF-8", "{\"phone_number\": \"+12125550100\", \"message_reference\": \"\xff\xfe\"}",
         400, "not UTF-8"},
        {"huge number", "{\"phone_number\": \"+12125550100\", \"max_attempts\": 1e400}", 422,
         "max_attempts"},
        {"huge integer",
         "{\"phone_number\": \"+12125550100\", \"priority\": 123456789012345678901234567890}", 422,
         "priority"},
        {"header injection",
         "{\"phone_number\": \"+12125550100\", \"result_url\": \"https://h.example/a\\r\\n"
         "X-Injected: 1\"}",
         422, "result_url"},
        {"not JSON", "{\"phone_number\": ", 400, "invalid_json"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h_resp_t r = h_api(&a.api, "POST", calls, bad[i].body);
        cr_expect_eq(r.status, bad[i].status, "%s: %ld %s", bad[i].what, r.status, r.body);
        cr_expect(r.body && strstr(r.body, bad[i].says), "%s: %s", bad[i].what, r.body);
        h_resp_free(&r);
    }

    /* 100,000 nested arrays, and a body over OB_INGEST_MAX_BODY_BYTES. */
    size_t depth = 100000, n = 0;
    char *deep = malloc(2 * depth + 64);
    n += (size_t)sprintf(deep, "{\"phone_number\": \"+12125550100\", \"call_parameters\": ");
    memset(deep + n, '[', depth);
    memset(deep + n + depth, ']', depth);
    strcpy(deep + n + 2 * depth, "}");
    h_resp_t r = h_api(&a.api, "POST", calls, deep);
    cr_expect(r.status == 400 || r.status == 422, "deep nesting: %ld %s", r.status, r.body);
    h_resp_free(&r);
    free(deep);
    size_t big_len = 2 * 1024 * 1024;
    char *big = malloc(big_len + 64);
    n = (size_t)sprintf(big, "{\"phone_number\": \"+12125550100\", \"message_reference\": \"");
    memset(big + n, 'x', big_len);
    strcpy(big + n + big_len, "\"}");
    r = h_api(&a.api, "POST", calls, big);
    cr_expect_eq(r.status, 413, "oversized: %ld", r.status);
    h_resp_free(&r);
    free(big);

    /* A multipart body that never closes its part, on the Plum route. */
    char *auth = basic(a.email, a.key);
    snprintf(path, sizeof(path), "/api/apps/%s/%s/queue", app, dep);
    r = send_as(auth, "POST", path, "multipart/form-data; boundary=zz",
                "--zz\r\nContent-Disposition: form-data; name=\"phone_number\"\r\n\r\n+1212");
    cr_expect(r.status == 400 || r.status == 422, "malformed multipart: %ld %s", r.status, r.body);
    h_resp_free(&r);
    free(auth);

    /* 2,000 idle connections and 20 that send a header byte a second: a
     * normal client is still answered at once. */
    struct rlimit fds;
    getrlimit(RLIMIT_NOFILE, &fds);
    if (fds.rlim_cur < 4096 && fds.rlim_max >= 4096) {
        fds.rlim_cur = 4096;
        setrlimit(RLIMIT_NOFILE, &fds);
    }
    int nidle = fds.rlim_cur >= 4096 ? 2000 : 300;
    int *idle = idle_connections(s.ingest_port, nidle);
    int *slow = idle_connections(s.ingest_port, 20);
    const char *drip = "POST /api/v1/deployments/x/calls HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (int second = 0; second < 4; second++) {
        for (int i = 0; i < 20; i++)
            (void)!write(slow[i], second == 0 ? drip : "a", second == 0 ? strlen(drip) : 1);
        h_resp_t ok = h_api(&a.api, "POST", calls, ok_call);
        cr_expect_eq(ok.status, 202, "a normal client was not served: %ld %s", ok.status, ok.body);
        h_resp_free(&ok);
        h_sleep_ms(1000);
    }
    for (int i = 0; i < nidle; i++)
        close(idle[i]);
    for (int i = 0; i < 20; i++)
        close(slow[i]);
    free(idle);
    free(slow);
    cr_expect(h_stack_down(&s));
    free(app);
    free(dep);
}
