/*
 * The application on answer end to end: the test is the application behind
 * start_url. It records every POST (a form-encoded one decoded into the
 * same JSON shape) and answers by the call's message_reference: "fields"
 * 200 {}, "hangup" {"hangup": true}, "stay" {"stay_connected_s": 5}, "slow"
 * after the dialer's timeout, "fail" 500. The calls must carry their
 * context, in the deployment's start_url_format, get their callee-type
 * update, be cut or kept by the answers, and end with their result whatever
 * the application did, its failures recorded on the attempt.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

#define MAX_POSTS 64
#define SLOW_MS   2500 /* the slow answer; the dialer gives up after 1000 */

/* The test's application: one thread per connection (keep-alive). */
typedef struct {
    int port;                  /* where it listens */
    int fd;                    /* listening socket */
    volatile int stop;         /* ends the accept loop */
    pthread_t thread;          /* accept loop */
    pthread_mutex_t mu;        /* guards what follows */
    char *posts[MAX_POSTS];    /* bodies received, in order, as JSON (malloc'd) */
    char paths[MAX_POSTS][64]; /* their request paths */
    char types[MAX_POSTS][80]; /* their Content-Type */
    int nposts;                /* entries in posts */
} app_t;

static app_t app;

/* Decodes one form-encoded name or value (malloc'd): %XX, and "+" is a space. */
static char *form_decode(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '%' && i + 2 < len) {
            char hex[3] = {text[i + 1], text[i + 2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[n++] = text[i] == '+' ? ' ' : text[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* An application/x-www-form-urlencoded body as the JSON object a JSON
 * request would have sent (malloc'd): every field a string but
 * call_parameters, whose JSON text is parsed (a string when it is not JSON,
 * so the checks on it fail). */
static char *form_as_json(const char *body, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *name = form_decode(p, (size_t)((eq ? eq : stop) - p));
        char *value = eq ? form_decode(eq + 1, (size_t)(stop - eq - 1)) : strdup("");
        cJSON *params = strcmp(name, "call_parameters") == 0 ? cJSON_Parse(value) : NULL;
        if (params)
            cJSON_AddItemToObject(o, name, params);
        else
            cJSON_AddStringToObject(o, name, value);
        free(name);
        free(value);
        p = stop + 1;
    }
    char *text = cJSON_PrintUnformatted(o);
    char *copy = strdup(text);
    cJSON_free(text);
    cJSON_Delete(o);
    return copy;
}

/* Records one request; returns the status and sets *answer. */
static int on_request(app_t *a, const char *head, const char *body, size_t len, const char **answer)
{
    char path[64] = "", type[80] = "";
    sscanf(head, "POST %63s", path);
    h_header(head, "Content-Type", type, sizeof(type));
    char *copy = strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0
                     ? form_as_json(body, len)
                     : strndup(body, len);
    pthread_mutex_lock(&a->mu);
    if (a->nposts < MAX_POSTS) {
        snprintf(a->paths[a->nposts], sizeof(a->paths[0]), "%s", path);
        snprintf(a->types[a->nposts], sizeof(a->types[0]), "%s", type);
        a->posts[a->nposts++] = strdup(copy);
    }
    pthread_mutex_unlock(&a->mu);
    char *ref = h_json_str(copy, "message_reference");
    char *event = h_json_str(copy, "event");
    bool connected = event && strcmp(event, "connected") == 0;
    int status = 200;
    *answer = "{}";
    if (ref && strcmp(ref, "hangup") == 0 && connected)
        *answer = "{\"hangup\": true}";
    else if (ref && strcmp(ref, "stay") == 0 && connected)
        *answer = "{\"stay_connected_s\": 5}";
    else if (ref && strcmp(ref, "slow") == 0)
        h_sleep_ms(SLOW_MS);
    else if (ref && strcmp(ref, "fail") == 0)
        status = 500;
    free(ref);
    free(event);
    free(copy);
    return status;
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        char *end = NULL;
        while (!(end = (buf[used] = '\0', strstr(buf, "\r\n\r\n")))) {
            ssize_t n = used < cap ? read(fd, buf + used, cap - used) : 0;
            if (n <= 0)
                goto out;
            used += (size_t)n;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char cl[32] = "0";
        end[2] = '\0';
        h_header(buf, "Content-Length", cl, sizeof(cl));
        size_t body_len = strtoul(cl, NULL, 10);
        while (used < head_len + body_len) {
            ssize_t n = used < cap ? read(fd, buf + used, cap - used) : 0;
            if (n <= 0)
                goto out;
            used += (size_t)n;
        }
        const char *answer = "";
        int status = on_request(&app, buf, buf + head_len, body_len, &answer);
        char resp[256];
        int rl = snprintf(resp, sizeof(resp),
                          "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          status, strlen(answer), answer);
        /* The dialer may have given up on a slow answer: no SIGPIPE. */
        if (send(fd, resp, (size_t)rl, MSG_NOSIGNAL) != rl)
            goto out;
        memmove(buf, buf + head_len + body_len, used - head_len - body_len);
        used -= head_len + body_len;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    app_t *a = arg;
    while (!a->stop) {
        struct pollfd p = {.fd = a->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(a->fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static void app_up(app_t *a)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->port = h_free_port();
    sa.sin_port = htons((uint16_t)a->port);
    a->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert(bind(a->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "app port %d", a->port);
    cr_assert(listen(a->fd, 128) == 0);
    pthread_create(&a->thread, NULL, accept_loop, a);
}

/* The body of the POST about call_id for event (malloc'd), or NULL; its
 * path and Content-Type too when asked. */
static char *post_of(app_t *a, const char *call_id, const char *event, char *path, size_t plen,
                     char *type, size_t tlen)
{
    char *found = NULL;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nposts && !found; i++) {
        char *id = h_json_str(a->posts[i], "call_id");
        char *ev = h_json_str(a->posts[i], "event");
        if (id && ev && strcmp(id, call_id) == 0 && strcmp(ev, event) == 0) {
            found = strdup(a->posts[i]);
            if (path)
                snprintf(path, plen, "%s", a->paths[i]);
            if (type)
                snprintf(type, tlen, "%s", a->types[i]);
        }
        free(id);
        free(ev);
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

static char *queue_to(const h_tenant_t *t, const char *deployment_id, const char *phone,
                      const char *ref)
{
    char auth[128], path[128], body[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->api_key);
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/calls", deployment_id);
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"%s\",\"message_reference\":\"%s\","
             "\"call_parameters\":{\"name\":\"Ann Lee & co\",\"n\":2}}",
             phone, ref);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    h_resp_t r = h_http(s.ingest_port, "POST", path, headers, body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *id = h_json_str(r.body, "call_id");
    h_resp_free(&r);
    return id;
}

static char *queue_call(const h_tenant_t *t, const char *phone, const char *ref)
{
    return queue_to(t, t->deployment_id, phone, ref);
}

/* The completed call once its attempt's application outcome is recorded. */
static char *wait_outcome(const h_tenant_t *t, const char *call_id)
{
    char *body = h_wait_call_completed(s.ingest_port, t->api_key, call_id, 30000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
    char auth[128], path[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->api_key);
    snprintf(path, sizeof(path), "/api/v1/calls/%s", call_id);
    const char *headers[] = {auth, NULL};
    for (int waited = 0; waited < 10000; waited += 100) {
        char *st = h_json_path(body, "attempts.0.app_status");
        char *er = h_json_path(body, "attempts.0.app_error");
        bool done = st || er;
        free(st);
        free(er);
        if (done)
            return body;
        free(body);
        h_sleep_ms(100);
        h_resp_t r = h_http(s.ingest_port, "GET", path, headers, NULL);
        body = r.body;
        r.body = NULL;
        h_resp_free(&r);
    }
    cr_assert_fail("no application outcome recorded for %s: %s", call_id, body);
    return NULL;
}

static void expect_path(const char *json, const char *path, const char *want)
{
    char *got = h_json_path(json, path);
    if (want)
        cr_expect(got && strcmp(got, want) == 0, "%s is %s, want %s in %s", path, got, want, json);
    else
        cr_expect_null(got, "%s is %s, want null in %s", path, got, json);
    free(got);
}

static long path_long(const char *json, const char *path)
{
    char *v = h_json_path(json, path);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

Test(app, start_url_gets_the_call_and_its_answer_acts, .timeout = 60, .fini = teardown)
{
    /* 10x: a voice call rings 0.3-0.9 s and talks 1-4.5 s; its type is
     * decided 0.2-0.5 s after the answer. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10", "OB_DIALER_APP_TIMEOUT_MS=1000",
                                      NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 10);
    app_up(&app);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    /* The application's start_url, set as a user would. */
    char auth[128], path[128], body[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.api_key);
    snprintf(path, sizeof(path), "/api/v1/applications/%s", t.application_id);
    snprintf(body, sizeof(body), "{\"start_url\":\"http://127.0.0.1:%d/start?x=1\"}", app.port);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    h_resp_t r = h_http(s.ingest_port, "PATCH", path, headers, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    char *fields = queue_call(&t, "+12125550100", "fields");
    char *hangup = queue_call(&t, "+12125550101", "hangup");
    char *stay = queue_call(&t, "+12125550102", "stay");
    char *slow = queue_call(&t, "+12125550103", "slow");
    char *fail = queue_call(&t, "+12125550104", "fail");

    /* The context, as documented, at connect; the decided type after. */
    char *call = wait_outcome(&t, fields);
    expect_path(call, "result", "voice");
    expect_path(call, "attempts.0.app_status", "200");
    expect_path(call, "attempts.0.app_error", NULL);
    cr_expect_geq(path_long(call, "attempts.0.app_ms"), 0, "%s", call);
    free(call);
    char start_path[64] = "";
    char type[80] = "";
    char *post =
        post_of(&app, fields, "connected", start_path, sizeof(start_path), type, sizeof(type));
    cr_assert_not_null(post, "no connected POST for %s", fields);
    cr_expect_str_eq(start_path, "/start?x=1");
    cr_expect_str_eq(type, "application/json");
    expect_path(post, "call_id", fields);
    expect_path(post, "phone_number", "+12125550100");
    expect_path(post, "message_reference", "fields");
    expect_path(post, "call_parameters.name", "Ann Lee & co");
    expect_path(post, "call_parameters.n", "2");
    expect_path(post, "callee_type", "processing");
    expect_path(post, "attempt", "1");
    expect_path(post, "max_attempts", "1");
    expect_path(post, "deployment_id", t.deployment_id);
    expect_path(post, "application_id", t.application_id);
    expect_path(post, "account_id", t.account_id);
    free(post);
    post = post_of(&app, fields, "callee_type", NULL, 0, NULL, 0);
    cr_assert_not_null(post, "no callee_type update for %s", fields);
    expect_path(post, "callee_type", "voice");
    expect_path(post, "call_id", fields);
    free(post);

    /* {"hangup": true}: cut at once (voice talks 10 s or more nominal). */
    call = wait_outcome(&t, hangup);
    expect_path(call, "status", "completed");
    expect_path(call, "result", "voice");
    expect_path(call, "reason", "answered");
    expect_path(call, "attempts.0.app_status", "200");
    long talk = path_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 0 && talk < 3000, "hung up by the application, talk %ld ms: %s", talk, call);
    free(call);

    /* {"stay_connected_s": 5}: 5 s nominal from the answer, not 10-45 s. */
    call = wait_outcome(&t, stay);
    expect_path(call, "result", "voice");
    talk = path_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 5000 && talk < 8000, "kept 5 s by the application, talk %ld ms: %s", talk,
              call);
    free(call);

    /* Failures are recorded and change nothing else. */
    call = wait_outcome(&t, slow);
    expect_path(call, "status", "completed");
    expect_path(call, "result", "voice");
    expect_path(call, "attempts.0.app_status", NULL);
    char *error = h_json_path(call, "attempts.0.app_error");
    cr_expect(error && strstr(error, "timeout after 1000 ms"), "%s", call);
    free(error);
    talk = path_long(call, "attempts.0.talk_ms");
    cr_expect_geq(talk, 10000, "the sim's own talk time: %s", call);
    free(call);

    call = wait_outcome(&t, fail);
    expect_path(call, "status", "completed");
    expect_path(call, "result", "voice");
    expect_path(call, "attempts.0.app_status", "500");
    expect_path(call, "attempts.0.app_error", "HTTP 500");
    free(call);

    cr_expect(h_stack_down(&s));
    app.stop = 1;
    pthread_join(app.thread, NULL);
    close(app.fd);
    free(fields);
    free(hangup);
    free(stay);
    free(slow);
    free(fail);
    PQfinish(pg);
}

/* A deployment created through the API, as a user would; its id (malloc'd). */
static char *create_deployment(const h_tenant_t *t, const char *body)
{
    char auth[128], path[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->api_key);
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", t->application_id);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    h_resp_t r = h_http(s.ingest_port, "POST", path, headers, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    expect_path(r.body, "start_url_format", "form");
    expect_path(r.body, "verify_urls", "false");
    char *id = h_json_str(r.body, "deployment_id");
    h_resp_free(&r);
    return id;
}

Test(app, form_deployment_gets_the_same_fields_form_encoded, .timeout = 60, .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10", "OB_DIALER_APP_TIMEOUT_MS=1000",
                                      NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 10);
    app_up(&app);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\": \"plum-style\", \"capacity\": 5, \"start_url_format\": \"form\","
             " \"start_url\": \"http://127.0.0.1:%d/plum\"}",
             app.port);
    char *dep = create_deployment(&t, body);
    char *fields = queue_to(&t, dep, "+12125550100", "fields");
    char *hangup = queue_to(&t, dep, "+12125550101", "hangup");

    char *call = wait_outcome(&t, fields);
    expect_path(call, "result", "voice");
    expect_path(call, "attempts.0.app_status", "200");
    expect_path(call, "attempts.0.app_error", NULL);
    free(call);
    char start_path[64] = "", type[80] = "";
    char *post =
        post_of(&app, fields, "connected", start_path, sizeof(start_path), type, sizeof(type));
    cr_assert_not_null(post, "no connected POST for %s", fields);
    cr_expect_str_eq(start_path, "/plum");
    cr_expect_str_eq(type, "application/x-www-form-urlencoded");
    expect_path(post, "call_id", fields);
    expect_path(post, "phone_number", "+12125550100"); /* "+" survives the encoding */
    expect_path(post, "message_reference", "fields");
    expect_path(post, "call_parameters.name", "Ann Lee & co");
    expect_path(post, "call_parameters.n", "2");
    expect_path(post, "callee_type", "processing");
    expect_path(post, "attempt", "1");
    expect_path(post, "max_attempts", "1");
    expect_path(post, "deployment_id", dep);
    expect_path(post, "application_id", t.application_id);
    expect_path(post, "account_id", t.account_id);
    free(post);
    post = post_of(&app, fields, "callee_type", NULL, 0, type, sizeof(type));
    cr_assert_not_null(post, "no callee_type update for %s", fields);
    cr_expect_str_eq(type, "application/x-www-form-urlencoded");
    expect_path(post, "callee_type", "voice");
    free(post);

    /* The answer is read as for JSON requests. */
    call = wait_outcome(&t, hangup);
    expect_path(call, "result", "voice");
    expect_path(call, "attempts.0.app_status", "200");
    long talk = path_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 0 && talk < 3000, "hung up by the application, talk %ld ms: %s", talk, call);
    free(call);

    cr_expect(h_stack_down(&s));
    app.stop = 1;
    pthread_join(app.thread, NULL);
    close(app.fd);
    free(dep);
    free(fields);
    free(hangup);
    PQfinish(pg);
}
