/*
 * The application on answer end to end: the test is the application behind
 * start_url. It records every POST (a form-encoded one decoded into the
 * same JSON shape) and answers by the call's message_reference: "fields"
 * 200 {}, "hangup" {"hangup": true}, "stay" {"stay_connected_s": 5}, "slow"
 * after the dialer's timeout, "fail" 500. The calls must carry their
 * context, in the deployment's start_url_format, get their callee-type
 * update, be cut or kept by the answers, and end with their result whatever
 * the application did, its failures recorded on the attempt. A deployment
 * with verify_urls has its calls dialed only while its URLs answer the
 * app's GETs with 200; one without is never checked.
 */
#include "harness_client.h"
#include "ob_common.h"

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
#define MAX_GETS  64
#define SLOW_MS   2500 /* the slow answer; the dialer gives up after 1000 */
/* Requests to paths starting so are answered a->checked_status. */
#define CHECKED_RESULT "/checked-result"

/* The test's application: one thread per connection (keep-alive). */
typedef struct {
    h_server_t *srv;           /* serves it */
    int port;                  /* where it listens */
    pthread_mutex_t mu;        /* guards what follows */
    char *posts[MAX_POSTS];    /* bodies received, in order, as JSON (malloc'd) */
    char paths[MAX_POSTS][64]; /* their request paths */
    char types[MAX_POSTS][80]; /* their Content-Type */
    int nposts;                /* entries in posts */
    char gets[MAX_GETS][64];   /* paths of the GETs received, in order */
    int get_status[MAX_GETS];  /* what each was answered */
    int64_t get_ms[MAX_GETS];  /* when each was answered (monotonic ms) */
    int ngets;                 /* entries in gets */
    int checked_status;        /* answer to CHECKED_RESULT requests (200 unless set) */
} app_t;

static app_t app;
/* The test's tenant's client, set by stack_up_env. */
static h_client_t api;

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

/* Records a GET (a URL check) and returns the status to answer. */
static int on_get(app_t *a, const char *path)
{
    pthread_mutex_lock(&a->mu);
    bool checked = strncmp(path, CHECKED_RESULT, strlen(CHECKED_RESULT)) == 0;
    int status = checked && a->checked_status ? a->checked_status : 200;
    if (a->ngets < MAX_GETS) {
        snprintf(a->gets[a->ngets], sizeof(a->gets[0]), "%s", path);
        a->get_status[a->ngets] = status;
        a->get_ms[a->ngets] = ob_mono_ms();
        a->ngets++;
    }
    pthread_mutex_unlock(&a->mu);
    return status;
}

/* Records one request; returns the status and sets *answer. */
static int on_request(void *arg, const char *head, const char *body, size_t len,
                      const char **answer)
{
    app_t *a = arg;
    char method[8] = "", path[64] = "", type[80] = "";
    sscanf(head, "%7s %63s", method, path);
    *answer = "";
    if (strcmp(method, "GET") == 0)
        return on_get(a, path);
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
    pthread_mutex_lock(&a->mu);
    if (strncmp(path, CHECKED_RESULT, strlen(CHECKED_RESULT)) == 0 && a->checked_status)
        status = a->checked_status; /* webhooks to it, like its GETs */
    pthread_mutex_unlock(&a->mu);
    return status;
}

static void app_up(app_t *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->srv = h_server_start(on_request, a);
    a->port = h_server_port(a->srv);
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

static char *queue_to(const char *deployment_id, const char *phone, const char *ref)
{
    h_client_t to = h_client_on(&api, deployment_id);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"%s\",\"message_reference\":\"%s\","
             "\"call_parameters\":{\"name\":\"Ann Lee & co\",\"n\":2}}",
             phone, ref);
    return h_queue_json(&to, body);
}

static char *queue_call(const char *phone, const char *ref)
{
    return queue_to(api.deployment_id, phone, ref);
}

/* The completed call once its attempt's application outcome is recorded. */
static char *wait_outcome(const char *call_id)
{
    char *body = h_wait_completed(&api, call_id, 30000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
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
        h_resp_t r = h_get_call(&api, call_id);
        body = r.body;
        r.body = NULL;
        h_resp_free(&r);
    }
    cr_assert_fail("no application outcome recorded for %s: %s", call_id, body);
    return NULL;
}

/* The test's application, a tenant and the services with one dialer at 10x
 * (a voice call rings 0.3-0.9 s and talks 1-4.5 s; its type is decided
 * 0.2-0.5 s after the answer). checked_status, when not 0, is what the
 * application's /checked-result* paths answer at first. */
static PGconn *stack_up_env(h_tenant_t *t, int checked_status, const char *const *dialer_env)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, t, 10);
    api = h_client(&s, t, pg);
    app_up(&app);
    if (checked_status) {
        pthread_mutex_lock(&app.mu);
        app.checked_status = checked_status;
        pthread_mutex_unlock(&app.mu);
    }
    cr_assert(h_stack_up(&s, 1, dialer_env));
    return pg;
}

static PGconn *stack_up(h_tenant_t *t, int checked_status)
{
    static const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10",
                                             "OB_DIALER_APP_TIMEOUT_MS=1000", NULL};
    return stack_up_env(t, checked_status, dialer_env);
}

/* The connected request's context, as documented, of the call queued by
 * queue_call(t, "+12125550100", "fields") to deployment_id. */
static void expect_context(const char *post, const char *call_id, const char *deployment_id,
                           const h_tenant_t *t)
{
    h_expect_path(post, "call_id", call_id);
    h_expect_path(post, "phone_number", "+12125550100");
    h_expect_path(post, "message_reference", "fields");
    h_expect_path(post, "call_parameters.name", "Ann Lee & co");
    h_expect_path(post, "call_parameters.n", "2");
    h_expect_path(post, "callee_type", "processing");
    h_expect_path(post, "attempt", "1");
    h_expect_path(post, "max_attempts", "1");
    h_expect_path(post, "deployment_id", deployment_id);
    h_expect_path(post, "application_id", t->application_id);
    h_expect_path(post, "account_id", t->account_id);
}

/* Stops the services (each must drain) and the test's application. */
static void stack_down(void)
{
    cr_expect(h_stack_down(&s));
    h_server_stop(app.srv);
    app.srv = NULL;
}

Test(app, start_url_gets_the_call_and_its_answer_acts, .timeout = 60, .fini = teardown)
{
    h_tenant_t t;
    PGconn *pg = stack_up(&t, 0);

    /* The application's start_url, set as a user would. */
    char path[128], body[256];
    snprintf(path, sizeof(path), "/api/v1/applications/%s", t.application_id);
    snprintf(body, sizeof(body), "{\"start_url\":\"http://127.0.0.1:%d/start?x=1\"}", app.port);
    h_resp_t r = h_api(&api, "PATCH", path, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    char *fields = queue_call("+12125550100", "fields");
    char *hangup = queue_call("+12125550101", "hangup");
    char *stay = queue_call("+12125550102", "stay");
    char *slow = queue_call("+12125550103", "slow");
    char *fail = queue_call("+12125550104", "fail");

    /* The context, as documented, at connect; the decided type after. */
    char *call = wait_outcome(fields);
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", "200");
    h_expect_path(call, "attempts.0.app_error", NULL);
    cr_expect_geq(h_json_long(call, "attempts.0.app_ms"), 0, "%s", call);
    free(call);
    char start_path[64] = "";
    char type[80] = "";
    char *post =
        post_of(&app, fields, "connected", start_path, sizeof(start_path), type, sizeof(type));
    cr_assert_not_null(post, "no connected POST for %s", fields);
    cr_expect_str_eq(start_path, "/start?x=1");
    cr_expect_str_eq(type, "application/json");
    expect_context(post, fields, t.deployment_id, &t);
    free(post);
    post = post_of(&app, fields, "callee_type", NULL, 0, NULL, 0);
    cr_assert_not_null(post, "no callee_type update for %s", fields);
    h_expect_path(post, "callee_type", "voice");
    h_expect_path(post, "call_id", fields);
    free(post);

    /* {"hangup": true}: cut at once (voice talks 10 s or more nominal). */
    call = wait_outcome(hangup);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "reason", "answered");
    h_expect_path(call, "attempts.0.app_status", "200");
    long talk = h_json_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 0 && talk < 3000, "hung up by the application, talk %ld ms: %s", talk, call);
    free(call);

    /* {"stay_connected_s": 5}: 5 s nominal from the answer, not 10-45 s. */
    call = wait_outcome(stay);
    h_expect_path(call, "result", "voice");
    talk = h_json_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 5000 && talk < 8000, "kept 5 s by the application, talk %ld ms: %s", talk,
              call);
    free(call);

    /* Failures are recorded and change nothing else. */
    call = wait_outcome(slow);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", NULL);
    char *error = h_json_path(call, "attempts.0.app_error");
    cr_expect(error && strstr(error, "timeout after 1000 ms"), "%s", call);
    free(error);
    talk = h_json_long(call, "attempts.0.talk_ms");
    cr_expect_geq(talk, 10000, "the sim's own talk time: %s", call);
    free(call);

    call = wait_outcome(fail);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", "500");
    h_expect_path(call, "attempts.0.app_error", "HTTP 500");
    free(call);

    stack_down();
    free(fields);
    free(hangup);
    free(stay);
    free(slow);
    free(fail);
    PQfinish(pg);
}

/* A deployment created through the API, as a user would; its id (malloc'd).
 * Its answer must show the start_url_format and verify_urls given. */
static char *create_deployment(const char *body, const char *format, const char *verify_urls)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/applications/%s/deployments", api.tenant->application_id);
    h_resp_t r = h_api(&api, "POST", path, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_expect_path(r.body, "start_url_format", format);
    h_expect_path(r.body, "verify_urls", verify_urls);
    char *id = h_json_str(r.body, "deployment_id");
    h_resp_free(&r);
    return id;
}

Test(app, form_deployment_gets_the_same_fields_form_encoded, .timeout = 60, .fini = teardown)
{
    h_tenant_t t;
    PGconn *pg = stack_up(&t, 0);

    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\": \"plum-style\", \"capacity\": 5, \"start_url_format\": \"form\","
             " \"start_url\": \"http://127.0.0.1:%d/plum\"}",
             app.port);
    char *dep = create_deployment(body, "form", "false");
    char *fields = queue_to(dep, "+12125550100", "fields");
    char *hangup = queue_to(dep, "+12125550101", "hangup");

    char *call = wait_outcome(fields);
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", "200");
    h_expect_path(call, "attempts.0.app_error", NULL);
    free(call);
    char start_path[64] = "", type[80] = "";
    char *post =
        post_of(&app, fields, "connected", start_path, sizeof(start_path), type, sizeof(type));
    cr_assert_not_null(post, "no connected POST for %s", fields);
    cr_expect_str_eq(start_path, "/plum");
    cr_expect_str_eq(type, "application/x-www-form-urlencoded");
    expect_context(post, fields, dep, &t); /* "+" of the number survives the encoding */
    free(post);
    post = post_of(&app, fields, "callee_type", NULL, 0, type, sizeof(type));
    cr_assert_not_null(post, "no callee_type update for %s", fields);
    cr_expect_str_eq(type, "application/x-www-form-urlencoded");
    h_expect_path(post, "callee_type", "voice");
    free(post);

    /* The answer is read as for JSON requests. */
    call = wait_outcome(hangup);
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", "200");
    long talk = h_json_long(call, "attempts.0.talk_ms");
    cr_expect(talk >= 0 && talk < 3000, "hung up by the application, talk %ld ms: %s", talk, call);
    free(call);

    stack_down();
    free(dep);
    free(fields);
    free(hangup);
    PQfinish(pg);
}

/* One call of one attempt to deployment_id; its id (malloc'd). */
static char *queue_once(const char *deployment_id, const char *ref)
{
    h_client_t to = h_client_on(&api, deployment_id);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"+12125550100\",\"message_reference\":\"%s\","
             "\"max_attempts\":1}",
             ref);
    return h_queue_json(&to, body);
}

/* GETs received on paths starting with prefix; the last one's time and
 * status when asked. */
static int gets_of(app_t *a, const char *prefix, int64_t *last_ms, int *last_status)
{
    int n = 0;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->ngets; i++) {
        if (strncmp(a->gets[i], prefix, strlen(prefix)) != 0)
            continue;
        n++;
        if (last_ms)
            *last_ms = a->get_ms[i];
        if (last_status)
            *last_status = a->get_status[i];
    }
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* Whether the file at path contains needle. */
static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

Test(app, verify_urls_dials_only_while_the_urls_answer_200, .timeout = 90, .fini = teardown)
{
    /* The URL checks keep their real timing (a failure holds
     * DIALER_URL_RETRY_MS, 10 s). */
    h_tenant_t t;
    PGconn *pg = stack_up(&t, 503); /* the verified deployment's result_url is down */

    char body[512], result_url[128];
    snprintf(result_url, sizeof(result_url), "http://127.0.0.1:%d%s", app.port, CHECKED_RESULT);
    snprintf(body, sizeof(body),
             "{\"name\": \"verified\", \"capacity\": 5, \"verify_urls\": true,"
             " \"start_url\": \"http://127.0.0.1:%d/checked-start\", \"result_url\": \"%s\"}",
             app.port, result_url);
    char *checked = create_deployment(body, "json", "true");
    snprintf(body, sizeof(body),
             "{\"name\": \"unverified\", \"capacity\": 5, \"verify_urls\": false,"
             " \"start_url\": \"http://127.0.0.1:%d/unchecked-start\","
             " \"result_url\": \"http://127.0.0.1:%d/unchecked-result\"}",
             app.port, app.port);
    char *unchecked = create_deployment(body, "json", "false");

    /* The result_url answers 503: the call is not dialed. Its attempt ends
     * untried (result noattempt, reason url_check_failed, no ring or talk
     * time) and, its last allowed attempt used, the call ends: status
     * uncalled (no attempt was dialed), result noattempt, reason
     * max_attempts. */
    char *refused = queue_once(checked, "refused");
    char *free_call = queue_once(unchecked, "fields");
    char *call = h_wait_completed(&api, refused, 30000);
    cr_assert_not_null(call, "call %s did not complete", refused);
    h_expect_path(call, "status", "uncalled");
    h_expect_path(call, "result", "noattempt");
    h_expect_path(call, "reason", "max_attempts");
    h_expect_path(call, "attempts.0.ring_ms", NULL);
    h_expect_path(call, "attempts.0.talk_ms", NULL);
    h_expect_path(call, "attempts_made", "1");
    h_expect_path(call, "attempts.0.result", "noattempt");
    h_expect_path(call, "attempts.0.reason", "url_check_failed");
    h_expect_path(call, "attempts.0.dialing_at", NULL);
    h_expect_path(call, "attempts.0.connected_at", NULL);
    h_expect_path(call, "attempts.0.app_status", NULL);
    h_expect_path(call, "attempts.1", NULL);
    free(call);
    char *types = h_event_types(&s, refused, 2, 20000);
    cr_expect_str_eq(types, "outbound.call.queued,outbound.call.completed", "never dialing");
    free(types);
    char *post = post_of(&app, refused, "connected", NULL, 0, NULL, 0);
    cr_expect_null(post, "start_url POSTed for an undialed call: %s", post);
    free(post);

    /* Both URLs were fetched once; the dialer's log names the failing one. */
    int64_t failed_get_ms = 0;
    int failed_status = 0;
    cr_expect_eq(gets_of(&app, CHECKED_RESULT, &failed_get_ms, &failed_status), 1);
    cr_expect_eq(failed_status, 503);
    cr_expect_eq(gets_of(&app, "/checked-start", NULL, NULL), 1);
    char why[256];
    snprintf(why, sizeof(why), "result_url %s answered 503, not 200", result_url);
    const char *dialer_log = NULL;
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0)
            dialer_log = s.procs[i].log;
    cr_assert_not_null(dialer_log);
    cr_expect(log_has(dialer_log, why), "no \"%s\" in %s", why, dialer_log);

    /* The result_url answers 200 now, but the failure holds 10 s: a call
     * that reaches the dialer meanwhile is refused without a new check. */
    pthread_mutex_lock(&app.mu);
    app.checked_status = 200;
    pthread_mutex_unlock(&app.mu);
    char *cached = queue_once(checked, "cached");
    call = h_wait_completed(&api, cached, 30000);
    cr_assert_not_null(call, "call %s did not complete", cached);
    if (ob_mono_ms() - failed_get_ms < 9000) {
        h_expect_path(call, "result", "noattempt");
        h_expect_path(call, "attempts.0.reason", "url_check_failed");
        cr_expect_eq(gets_of(&app, CHECKED_RESULT, NULL, NULL), 1, "checked again within 10 s");
    } else {
        cr_log_warn("%s took %lld ms after the failed check: not checked against the cache", cached,
                    (long long)(ob_mono_ms() - failed_get_ms));
    }
    free(call);

    /* Once the failure expired, the next call checks the URLs again, is
     * dialed, connects and POSTs to start_url. */
    int64_t expires = failed_get_ms + 10000 + 500;
    while (ob_mono_ms() < expires)
        h_sleep_ms(50);
    char *dialed = queue_once(checked, "fields");
    call = wait_outcome(dialed);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "reason", "answered");
    h_expect_path(call, "attempts.0.app_status", "200");
    char *dialing_at = h_json_path(call, "attempts.0.dialing_at");
    cr_expect_not_null(dialing_at, "never dialing: %s", call);
    free(dialing_at);
    free(call);
    types = h_event_types(&s, dialed, 4, 20000);
    cr_expect_str_eq(types, "outbound.call.queued,outbound.call.dialing,outbound.call.connected,"
                            "outbound.call.completed");
    free(types);
    char start_path[64] = "";
    post = post_of(&app, dialed, "connected", start_path, sizeof(start_path), NULL, 0);
    cr_expect_not_null(post, "no connected POST for %s", dialed);
    cr_expect_str_eq(start_path, "/checked-start");
    free(post);
    int last_status = 0;
    cr_expect_eq(gets_of(&app, CHECKED_RESULT, NULL, &last_status), 2, "checked once more");
    cr_expect_eq(last_status, 200);
    cr_expect_eq(gets_of(&app, "/checked-start", NULL, NULL), 2);

    /* verify_urls false: dialed at once, its URLs never fetched. */
    call = wait_outcome(free_call);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", "200");
    free(call);
    post = post_of(&app, free_call, "connected", start_path, sizeof(start_path), NULL, 0);
    cr_expect_not_null(post, "no connected POST for %s", free_call);
    cr_expect_str_eq(start_path, "/unchecked-start");
    free(post);
    cr_expect_eq(gets_of(&app, "/unchecked", NULL, NULL), 0, "an unverified deployment checked");

    stack_down();
    free(checked);
    free(unchecked);
    free(refused);
    free(free_call);
    free(cached);
    free(dialed);
    PQfinish(pg);
}

/* Issue 9: start_url cannot be turned against the platform's own network.
 * With loopback denied (the dialers' default; the harness allows it), an
 * application reached through a name that resolves to loopback is never
 * contacted: the request is recorded as refused on the attempt, and a
 * verify_urls check of it fails, so its calls are not dialed. */
Test(app, start_url_into_a_denied_range_is_refused_and_never_contacted, .timeout = 60,
     .fini = teardown)
{
    static const char *const denying_env[] = {
        "OB_SIM_TIME_SCALE=10", "OB_DIALER_APP_TIMEOUT_MS=1000", "OB_DIALER_URL_ALLOW=", NULL};
    h_tenant_t t;
    PGconn *pg = stack_up_env(&t, 0, denying_env);
    char body[512], start_url[128], checked_url[128];
    snprintf(start_url, sizeof(start_url), "http://localhost:%d/denied-start", app.port);
    snprintf(checked_url, sizeof(checked_url), "http://localhost:%d/denied-checked", app.port);
    snprintf(body, sizeof(body), "{\"name\": \"denied\", \"capacity\": 5, \"start_url\": \"%s\"}",
             start_url);
    char *plain = create_deployment(body, "json", "false");
    snprintf(body, sizeof(body),
             "{\"name\": \"denied-verified\", \"capacity\": 5, \"verify_urls\": true,"
             " \"start_url\": \"%s\"}",
             checked_url);
    char *verified = create_deployment(body, "json", "true");

    /* Dialed and answered; the application's request is refused. */
    char *answered = queue_once(plain, "fields");
    char *call = wait_outcome(answered);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "attempts.0.app_status", NULL);
    char *error = h_json_path(call, "attempts.0.app_error");
    cr_expect(error && strstr(error, "refused by OB_DIALER_URL_DENY") &&
                  (strstr(error, "address 127.0.0.1 is in 127.0.0.0/8") ||
                   strstr(error, "address ::1 is in ::1/128")),
              "the attempt names the refused address and the deny-list: %s", call);
    free(error);
    free(call);

    /* verify_urls: the check fails, the call is not dialed. */
    char *unverified = queue_once(verified, "refused");
    call = h_wait_completed(&api, unverified, 30000);
    cr_assert_not_null(call, "call %s did not complete", unverified);
    h_expect_path(call, "status", "uncalled");
    h_expect_path(call, "attempts.0.result", "noattempt");
    h_expect_path(call, "attempts.0.reason", "url_check_failed");
    h_expect_path(call, "attempts.0.dialing_at", NULL);
    free(call);
    char why[256];
    snprintf(why, sizeof(why), "start_url %s could not be fetched: address ", checked_url);
    const char *dialer_log = NULL;
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0)
            dialer_log = s.procs[i].log;
    cr_assert_not_null(dialer_log);
    cr_expect(log_has(dialer_log, why), "no \"%s\" in %s", why, dialer_log);

    /* Nothing reached the application on loopback. */
    pthread_mutex_lock(&app.mu);
    cr_expect_eq(app.nposts, 0, "the application was POSTed to");
    cr_expect_eq(app.ngets, 0, "the application was checked");
    pthread_mutex_unlock(&app.mu);

    stack_down();
    free(plain);
    free(verified);
    free(answered);
    free(unverified);
    PQfinish(pg);
}
