/*
 * start_url requests on libcurl's multi interface, on the worker's thread.
 * A request holds copies of what it needs (call id, attempt), not the call:
 * the call may end while its request is queued or in flight, and its slot be
 * reused; the answer acts on the slot only while it still holds that attempt.
 */
#include "dialer_app.h"
#include "ob_log.h"
#include "ob_pg.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deployment -> application id cache slots (direct-mapped). */
#define APP_CACHE 256
/* Loop wake-up while transfers are in flight: libcurl is polled, not waited on. */
#define APP_TICK_MS 2

typedef struct app_req {
    struct app_req *prev, *next; /* in flight list, or queue (next only) */
    dialer_call_t *call;         /* the worker's slot it is about */
    char *call_id;               /* the call it is about (owned) */
    int64_t attempt;             /* and its attempt */
    bool connected;              /* the connected request: its outcome is recorded */
    char *url;                   /* start_url (owned) */
    char *body;                  /* JSON body (owned) */
    CURL *easy;                  /* transfer, once started */
    char *answer;                /* answer body so far (owned) */
    size_t answer_len;           /* bytes in answer */
    bool too_big;                /* answer beyond DIALER_APP_MAX_ANSWER */
    int64_t started_ms;          /* monotonic start of the transfer */
    char error[CURL_ERROR_SIZE]; /* libcurl's detail */
} app_req_t;

typedef struct {
    char deployment_id[40];  /* key, "" when empty */
    char application_id[40]; /* value */
} app_cache_t;

struct dialer_app {
    dialer_ctx_t *ctx;             /* the worker */
    CURLM *multi;                  /* transfers */
    struct curl_slist *headers;    /* request headers, shared */
    int concurrency;               /* transfers at once */
    int timeout_ms;                /* per transfer */
    app_req_t *running;            /* transfers in flight */
    int nrunning;                  /* their count */
    app_req_t *queue, *queue_tail; /* waiting for a transfer slot */
    int nqueued;                   /* their count */
    app_cache_t cache[APP_CACHE];  /* application ids by deployment */
};

char *dialer_app_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                      const char *callee_type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *params = job->call_parameters ? cJSON_Parse(job->call_parameters) : NULL;
    if (!cJSON_IsObject(params)) {
        cJSON_Delete(params);
        params = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "call_id", job->call_id);
    cJSON_AddStringToObject(o, "phone_number", job->phone_number);
    if (job->message_reference)
        cJSON_AddStringToObject(o, "message_reference", job->message_reference);
    else
        cJSON_AddNullToObject(o, "message_reference");
    cJSON_AddItemToObject(o, "call_parameters", params);
    cJSON_AddStringToObject(o, "callee_type", callee_type);
    cJSON_AddNumberToObject(o, "attempt", (double)job->attempt);
    cJSON_AddNumberToObject(o, "max_attempts", (double)job->max_attempts);
    cJSON_AddStringToObject(o, "deployment_id", job->deployment_id);
    if (application_id)
        cJSON_AddStringToObject(o, "application_id", application_id);
    else
        cJSON_AddNullToObject(o, "application_id");
    cJSON_AddStringToObject(o, "account_id", job->account_id);
    char *text = cJSON_PrintUnformatted(o);
    OB_ASSERT(text != NULL);
    char *copy = ob_xstrdup(text); /* one owner, freed with free */
    cJSON_free(text);
    cJSON_Delete(o);
    return copy;
}

ob_rc_t dialer_app_parse_answer(const char *body, size_t len, dialer_app_answer_t *out,
                                ob_err_t *err)
{
    out->hangup = false;
    out->stay_connected_ms = -1;
    size_t i = 0;
    while (i < len && body[i] && strchr(" \t\r\n", body[i]))
        i++;
    if (i == len)
        return OB_OK; /* a bare 200 asks for nothing */
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, false);
    ob_rc_t rc = OB_EINVAL;
    if (!o) {
        ob_err_set(err, "bad JSON answer at byte %ld", end ? (long)(end - body) : 0L);
        goto out;
    }
    if (!cJSON_IsObject(o)) {
        ob_err_set(err, "answer is not a JSON object");
        goto out;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hangup");
    if (h && !cJSON_IsBool(h)) {
        ob_err_set(err, "answer's hangup is not a boolean");
        goto out;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stay_connected_s");
    if (st && !cJSON_IsNull(st)) {
        if (!cJSON_IsNumber(st) || !isfinite(st->valuedouble) || st->valuedouble < 0 ||
            st->valuedouble > DIALER_APP_MAX_STAY_S) {
            ob_err_set(err, "answer's stay_connected_s is not a number of seconds in 0..%d",
                       DIALER_APP_MAX_STAY_S);
            goto out;
        }
        out->stay_connected_ms = (int64_t)llround(st->valuedouble * 1000.0);
    }
    out->hangup = cJSON_IsTrue(h);
    rc = OB_OK;
out:
    if (rc != OB_OK)
        out->stay_connected_ms = -1;
    cJSON_Delete(o);
    return rc;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    app_req_t *r = arg;
    size_t len = size * n;
    if (r->answer_len + len > DIALER_APP_MAX_ANSWER) {
        r->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    r->answer = ob_xrealloc(r->answer, r->answer_len + len + 1);
    memcpy(r->answer + r->answer_len, data, len);
    r->answer_len += len;
    r->answer[r->answer_len] = '\0';
    return len;
}

static void req_free(app_req_t *r)
{
    if (!r)
        return;
    free(r->call_id);
    free(r->url);
    free(r->body);
    free(r->answer);
    free(r);
}

/* The slot still holds the answered attempt the request is about. */
static bool call_current(const app_req_t *r)
{
    const dialer_call_t *c = r->call;
    return c->in_use && c->answered && c->job.attempt == r->attempt &&
           strcmp(c->job.call_id, r->call_id) == 0;
}

/* Records the connected request's outcome on its attempt; an update's
 * failure only when the connected request had none. Diagnostic: a failure
 * to record is logged, not retried. */
static void record(dialer_app_t *app, const app_req_t *r, long status, const char *error, int ms)
{
    static const char CONNECTED_SQL[] =
        "UPDATE attempts SET app_status = $3::int, app_error = $4, app_ms = $5::int"
        " WHERE call_id = $1 AND attempt = $2::int";
    static const char UPDATE_SQL[] =
        "UPDATE attempts SET app_error = coalesce(app_error, 'callee_type update: ' || $3)"
        " WHERE call_id = $1 AND attempt = $2::int";
    ob_err_t err = {{0}};
    char attempt[24], st[24], dur[24];
    snprintf(attempt, sizeof(attempt), "%lld", (long long)r->attempt);
    snprintf(st, sizeof(st), "%ld", status);
    snprintf(dur, sizeof(dur), "%d", ms);
    if (!r->connected && !error)
        return;
    const char *cp[] = {r->call_id, attempt, status > 0 ? st : NULL, error, dur};
    const char *up[] = {r->call_id, attempt, error};
    ob_rc_t rc = r->connected ? ob_pg_exec(app->ctx->pg, CONNECTED_SQL, 5, cp, NULL, &err)
                              : ob_pg_exec(app->ctx->pg, UPDATE_SQL, 3, up, NULL, &err);
    if (rc != OB_OK)
        OB_LOG(OB_LOG_WARN, "app", OB_KV("call_id", r->call_id),
               "application outcome not recorded: %s", err.msg);
}

/* A finished transfer: outcome, record, then what the answer asks for. */
static void finish(dialer_app_t *app, app_req_t *r, CURLcode code)
{
    long status = 0;
    char why[sizeof(((ob_err_t *)0)->msg) + 64] = "";
    dialer_app_answer_t ans = {false, -1};
    ob_err_t err = {{0}};
    int ms = (int)(ob_mono_ms() - r->started_ms);

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->too_big)
        snprintf(why, sizeof(why), "answer larger than %d bytes", DIALER_APP_MAX_ANSWER);
    else if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf(why, sizeof(why), "timeout after %d ms", app->timeout_ms);
    else if (code != CURLE_OK)
        snprintf(why, sizeof(why), "%s", r->error[0] ? r->error : curl_easy_strerror(code));
    else if (status < 200 || status > 299)
        snprintf(why, sizeof(why), "HTTP %ld", status);
    else if (dialer_app_parse_answer(r->answer ? r->answer : "", r->answer_len, &ans, &err) !=
             OB_OK)
        snprintf(why, sizeof(why), "%s", err.msg);

    if (why[0])
        OB_LOG(OB_LOG_WARN, "app", OB_KV("call_id", r->call_id), "%s request to %s failed: %s",
               r->connected ? "connected" : "callee_type", r->url, why);
    else
        OB_LOG(OB_LOG_DEBUG, "app", OB_KV("call_id", r->call_id),
               "%s request answered %ld in %d ms", r->connected ? "connected" : "callee_type",
               status, ms);
    record(app, r, status, why[0] ? why : NULL, ms);

    if (!why[0] && call_current(r)) {
        carrier_t *carrier = app->ctx->carrier;
        if (ans.hangup) {
            OB_LOG(OB_LOG_INFO, "app", OB_KV("call_id", r->call_id),
                   "application asked to hang up");
            carrier->ops->hangup(carrier, r->call);
        } else if (ans.stay_connected_ms >= 0) {
            OB_LOG(OB_LOG_INFO, "app", OB_KV("call_id", r->call_id),
                   "application asked to stay connected %lld ms", (long long)ans.stay_connected_ms);
            carrier->ops->extend(carrier, r->call, (int)ans.stay_connected_ms);
        }
    }
}

static void unlink_running(dialer_app_t *app, app_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        app->running = r->next;
    if (r->next)
        r->next->prev = r->prev;
    app->nrunning--;
}

/* Starts queued requests while transfer slots are free. A request whose call
 * ended while it waited is pointless to the application: dropped, and a
 * connected one's attempt says so. */
static void start_queued(dialer_app_t *app)
{
    while (app->queue && app->nrunning < app->concurrency) {
        app_req_t *r = app->queue;
        app->queue = r->next;
        if (!app->queue)
            app->queue_tail = NULL;
        app->nqueued--;
        r->next = NULL;
        if (!call_current(r)) {
            record(app, r, 0, "not sent: the call ended while the request waited", 0);
            req_free(r);
            continue;
        }
        CURL *e = curl_easy_init();
        OB_ASSERT(e != NULL); /* fails only without memory */
        r->easy = e;
        curl_easy_setopt(e, CURLOPT_URL, r->url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, app->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "outbound-dialer/1");
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)app->timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* the resolver must not raise SIGALRM */
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        r->started_ms = ob_mono_ms();
        r->prev = NULL;
        r->next = app->running;
        if (app->running)
            app->running->prev = r;
        app->running = r;
        app->nrunning++;
        curl_multi_add_handle(app->multi, e);
    }
}

ob_rc_t dialer_app_new(dialer_ctx_t *ctx, int concurrency, int timeout_ms, dialer_app_t **out,
                       ob_err_t *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ob_err_set(err, "libcurl: global initialisation failed");
        return OB_ERR;
    }
    dialer_app_t *app = ob_xcalloc(1, sizeof(*app));
    app->ctx = ctx;
    app->concurrency = concurrency;
    app->timeout_ms = timeout_ms;
    if (!(app->multi = curl_multi_init())) {
        ob_err_set(err, "libcurl: cannot create a multi handle");
        free(app);
        curl_global_cleanup();
        return OB_ERR;
    }
    /* Applications usually sit on a few hosts: keep their connections. */
    curl_multi_setopt(app->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    app->headers = curl_slist_append(NULL, "Content-Type: application/json");
    app->headers = curl_slist_append(app->headers, "Accept: application/json");
    app->headers = curl_slist_append(app->headers, "Expect:"); /* no 100-continue round trip */
    OB_ASSERT(app->headers != NULL);
    *out = app;
    return OB_OK;
}

/* The deployment's application id, from the cache or one query; NULL when
 * Postgres cannot say (the body then carries null). */
static const char *application_of(dialer_app_t *app, const char *deployment_id)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = deployment_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    app_cache_t *slot = &app->cache[h % APP_CACHE];
    if (strcmp(slot->deployment_id, deployment_id) == 0)
        return slot->application_id;
    ob_err_t err = {{0}};
    PGresult *res = NULL;
    const char *p[] = {deployment_id};
    if (ob_pg_exec(app->ctx->pg,
                   "SELECT application_id::text FROM deployments WHERE deployment_id = $1", 1, p,
                   &res, &err) != OB_OK) {
        OB_WARN("app", "application of deployment %s not found: %s", deployment_id, err.msg);
        return NULL;
    }
    const char *found = NULL;
    if (PQntuples(res) == 1 && strlen(PQgetvalue(res, 0, 0)) < sizeof(slot->application_id) &&
        strlen(deployment_id) < sizeof(slot->deployment_id)) {
        snprintf(slot->deployment_id, sizeof(slot->deployment_id), "%s", deployment_id);
        snprintf(slot->application_id, sizeof(slot->application_id), "%s", PQgetvalue(res, 0, 0));
        found = slot->application_id;
    }
    PQclear(res);
    return found;
}

void dialer_app_notify(dialer_app_t *app, dialer_call_t *call, const char *event,
                       const char *callee_type)
{
    if (!app || !call->job.start_url || !call->job.start_url[0])
        return;
    app_req_t *r = ob_xcalloc(1, sizeof(*r));
    r->call = call;
    r->call_id = ob_xstrdup(call->job.call_id);
    r->attempt = call->job.attempt;
    r->connected = strcmp(event, "connected") == 0;
    r->url = ob_xstrdup(call->job.start_url);
    r->body = dialer_app_body(&call->job, application_of(app, call->job.deployment_id), event,
                              callee_type);
    if (app->queue_tail)
        app->queue_tail->next = r;
    else
        app->queue = r;
    app->queue_tail = r;
    app->nqueued++;
}

int64_t dialer_app_run(dialer_app_t *app, int64_t now_ms)
{
    if (!app || (app->nrunning == 0 && app->nqueued == 0))
        return INT64_MAX;
    int still = 0, left = 0;
    CURLMsg *msg;
    start_queued(app);
    curl_multi_perform(app->multi, &still);
    while ((msg = curl_multi_info_read(app->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        app_req_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode code = msg->data.result;
        curl_multi_remove_handle(app->multi, r->easy);
        unlink_running(app, r);
        finish(app, r, code); /* may end the call through the carrier */
        curl_easy_cleanup(r->easy);
        req_free(r);
    }
    start_queued(app);
    return app->nrunning > 0 || app->nqueued > 0 ? now_ms + APP_TICK_MS : INT64_MAX;
}

int dialer_app_pending(const dialer_app_t *app)
{
    return app ? app->nrunning + app->nqueued : 0;
}

void dialer_app_finish(dialer_app_t *app, int64_t deadline_ms)
{
    while (dialer_app_pending(app) > 0 && ob_mono_ms() < deadline_ms) {
        dialer_app_run(app, ob_mono_ms());
        if (app->nrunning > 0)
            curl_multi_poll(app->multi, NULL, 0, 50, NULL);
    }
}

void dialer_app_free(dialer_app_t *app)
{
    if (!app)
        return;
    while (app->running) {
        app_req_t *r = app->running;
        unlink_running(app, r);
        curl_multi_remove_handle(app->multi, r->easy);
        curl_easy_cleanup(r->easy);
        record(app, r, 0, "aborted: the dialer stopped", (int)(ob_mono_ms() - r->started_ms));
        req_free(r);
    }
    while (app->queue) {
        app_req_t *r = app->queue;
        app->queue = r->next;
        record(app, r, 0, "not sent: the dialer stopped", 0);
        req_free(r);
    }
    curl_slist_free_all(app->headers);
    curl_multi_cleanup(app->multi);
    curl_global_cleanup();
    free(app);
}
