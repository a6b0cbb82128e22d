/*
 * start_url requests on libcurl's multi interface, on the worker's thread.
 * A request holds copies of what it needs (call id, attempt), not the call:
 * the call may end while its request is queued or in flight, and its slot be
 * reused; the answer acts on the slot only while it still holds that attempt.
 * The same multi handle runs the URL checks of deployments with verify_urls,
 * and a per-deployment cache holds what the requests and checks need.
 * Outcomes and answers go back to the worker (dialer_app_events_t): no
 * Postgres, no carrier here.
 */
#include "dialer_app.h"
#include "ob_log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buckets of the deployment cache (chained: a collision never evicts). */
#define DEP_BUCKETS 1024
/* After a failed read of a deployment's settings, the next waits this long,
 * so a Postgres outage is not asked about on every job. */
#define DEP_REREAD_MS 1000
/* Deployments not asked about this long leave the cache. */
#define DEP_IDLE_MS 600000
/* Loop wake-up while transfers are in flight: libcurl is polled, not waited on. */
#define APP_TICK_MS 2

/* What a transfer's CURLOPT_PRIVATE points at: its first member says which. */
typedef enum { XFER_REQUEST, XFER_CHECK } xfer_kind_t;

typedef struct app_req {
    xfer_kind_t kind;            /* XFER_REQUEST (must be first) */
    struct app_req *prev, *next; /* in flight list, or queue (next only) */
    void *call;                  /* the worker's handle of the call it is about */
    char *call_id;               /* the call it is about (owned) */
    int64_t attempt;             /* and its attempt */
    bool connected;              /* the connected request: its outcome is recorded */
    bool action;                 /* an action_url request: its answer continues the document */
    bool form;                   /* body is form-encoded, not JSON */
    char *url;                   /* start_url (owned) */
    char *body;                  /* request body (owned) */
    CURL *easy;                  /* transfer, once started */
    char *answer;                /* answer body so far (owned) */
    size_t answer_len;           /* bytes in answer */
    bool too_big;                /* answer beyond DIALER_APP_MAX_ANSWER */
    int64_t started_ms;          /* monotonic start of the transfer */
    char error[CURL_ERROR_SIZE]; /* libcurl's detail */
    ob_url_guard_t guard;        /* refuses denied addresses, says which */
} app_req_t;

/* One deployment as the dialer knows it. Entries with GETs in flight are
 * never freed: the GETs point at them. */
typedef struct dep {
    struct dep *next;         /* in its bucket */
    char *deployment_id;      /* key (owned) */
    dialer_deployment_t set;  /* its settings (owned), once known */
    bool known;               /* set was read at least once */
    int64_t next_read_ms;     /* monotonic: read set again from then */
    int64_t used_ms;          /* monotonic: last asked about */
    dialer_url_check_t check; /* its URL check */
    int gets;                 /* GETs of the running check in flight */
    unsigned gen;             /* bumped when its URLs change: older checks are void */
    char *failing;            /* first failure of the running check (owned) */
    char *why;                /* failure of the latest failed check (owned) */
} dep_t;

/* One GET of a URL check. */
typedef struct url_get {
    xfer_kind_t kind;            /* XFER_CHECK (must be first) */
    struct url_get *prev, *next; /* in app->gets */
    dep_t *dep;                  /* the deployment checked */
    unsigned gen;                /* dep->gen when started */
    const char *which;           /* "start_url" or "result_url" */
    char *url;                   /* owned */
    CURL *easy;                  /* transfer */
    size_t got;                  /* body bytes read (and dropped) */
    char error[CURL_ERROR_SIZE]; /* libcurl's detail */
    ob_url_guard_t guard;        /* refuses denied addresses, says which */
} url_get_t;

struct dialer_app {
    dialer_app_opts_t o;             /* settings and the worker's callbacks (copied) */
    CURLM *multi;                    /* transfers */
    struct curl_slist *headers;      /* JSON request headers, shared */
    struct curl_slist *form_headers; /* form request headers, shared */
    app_req_t *running;              /* requests in flight */
    int nrunning;                    /* their count */
    app_req_t *queue, *queue_tail;   /* waiting for a transfer slot */
    int nqueued;                     /* their count */
    url_get_t *gets;                 /* URL check GETs in flight */
    int ngets;                       /* their count */
    dep_t *deps[DEP_BUCKETS];        /* deployment cache */
    int64_t next_sweep_ms;           /* monotonic: next idle sweep of deps */
};

/* One member of a start_url request, as both encodings send it. */
typedef struct {
    const char *name; /* member or field name */
    const char *text; /* value as text; NULL: null */
    bool raw;         /* in JSON, text is a number or object, not a string */
} member_t;

#define MEMBERS 12

/* The members of a request, in their order: the one list both bodies are
 * built from, so the two formats cannot drift apart. nums receives the
 * attempt numbers' text and *params the call_parameters object text
 * (malloc'd, {} when the job has none or it is not an object). */
static int members(const ob_dial_job_t *job, const char *application_id, const char *event,
                   const char *callee_type, char nums[2][24], char **params, member_t *out)
{
    cJSON *o = job->call_parameters ? cJSON_Parse(job->call_parameters) : NULL;
    char *text = cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
    *params = ob_xstrdup(text ? text : "{}");
    cJSON_free(text);
    cJSON_Delete(o);
    snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)job->attempt);
    snprintf(nums[1], sizeof(nums[1]), "%lld", (long long)job->max_attempts);
    int n = 0;
    out[n++] = (member_t){"event", event, false};
    out[n++] = (member_t){"call_id", job->call_id, false};
    out[n++] = (member_t){"phone_number", job->phone_number, false};
    out[n++] = (member_t){"message_reference", job->message_reference, false};
    out[n++] = (member_t){"call_parameters", *params, true};
    out[n++] = (member_t){"callee_type", callee_type, false};
    out[n++] = (member_t){"attempt", nums[0], true};
    out[n++] = (member_t){"max_attempts", nums[1], true};
    out[n++] = (member_t){"deployment_id", job->deployment_id, false};
    out[n++] = (member_t){"application_id", application_id, false};
    out[n++] = (member_t){"account_id", job->account_id, false};
    OB_ASSERT(n <= MEMBERS);
    return n;
}

/* The n members as a request body: a JSON object, or with form
 * application/x-www-form-urlencoded fields. Caller frees with free. */
static char *encode(const member_t *m, int n, bool form)
{
    if (form) {
        size_t len = 0, cap = 0;
        char *buf = NULL;
        ob_url_form_append(&buf, &len, &cap, "", false); /* allocates buf, "" so far */
        for (int i = 0; i < n; i++) {
            ob_url_form_append(&buf, &len, &cap, i > 0 ? "&" : "", false);
            ob_url_form_append(&buf, &len, &cap, m[i].name, true);
            ob_url_form_append(&buf, &len, &cap, "=", false);
            ob_url_form_append(&buf, &len, &cap, m[i].text ? m[i].text : "", true);
        }
        return buf;
    }
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < n; i++) {
        if (!m[i].text)
            cJSON_AddNullToObject(o, m[i].name);
        else if (m[i].raw)
            cJSON_AddRawToObject(o, m[i].name, m[i].text);
        else
            cJSON_AddStringToObject(o, m[i].name, m[i].text);
    }
    char *text = cJSON_PrintUnformatted(o);
    OB_ASSERT(text != NULL);
    char *copy = ob_xstrdup(text); /* one owner, freed with free */
    cJSON_free(text);
    cJSON_Delete(o);
    return copy;
}

/* The request's body: the job's members, and one more (name = value)
 * when name is set (an action_url's digits or connect outcome). */
static char *body_of(const ob_dial_job_t *job, const char *application_id, const char *event,
                     const char *callee_type, const char *name, const char *value, bool form)
{
    member_t m[MEMBERS];
    char nums[2][24], *params = NULL;
    int n = members(job, application_id, event, callee_type, nums, &params, m);
    if (name) {
        OB_ASSERT(n < MEMBERS);
        m[n++] = (member_t){name, value, false};
    }
    char *body = encode(m, n, form);
    free(params);
    return body;
}

char *dialer_app_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                      const char *callee_type)
{
    return body_of(job, application_id, event, callee_type, NULL, NULL, false);
}

char *dialer_app_form_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                           const char *callee_type)
{
    return body_of(job, application_id, event, callee_type, NULL, NULL, true);
}

void dialer_app_answer_clear(dialer_app_answer_t *a)
{
    if (!a)
        return;
    free(a->doc);
    a->doc = NULL;
}

ob_rc_t dialer_app_parse_answer(const char *body, size_t len, dialer_app_answer_t *out,
                                ob_err_t *err)
{
    out->hangup = false;
    out->stay_connected_ms = -1;
    out->doc = NULL;
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
    if (cJSON_IsArray(o) || cJSON_GetObjectItemCaseSensitive(o, "verbs")) {
        out->doc = ob_xasprintf("%.*s", (int)len, body); /* a document */
        rc = OB_OK;
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

/* The worker still holds the connected attempt the request is about. */
static bool call_current(const dialer_app_t *app, const app_req_t *r)
{
    return app->o.events->current(app->o.worker, r->call, r->call_id, r->attempt);
}

/* Hands the request's outcome (and, when it succeeded, the answer) to the
 * worker. */
static void report(dialer_app_t *app, const app_req_t *r, long status, const char *error, int ms,
                   const dialer_app_answer_t *answer)
{
    dialer_app_result_t res = {
        .call = r->call,
        .call_id = r->call_id,
        .attempt = r->attempt,
        .connected = r->connected,
        .action = r->action,
        .status = status,
        .error = error,
        .ms = ms,
        .answer = answer && !error ? *answer : (dialer_app_answer_t){false, -1, NULL},
    };
    app->o.events->done(app->o.worker, &res);
}

/* A finished transfer: its outcome and the answer, handed to the worker. */
static void finish(dialer_app_t *app, app_req_t *r, CURLcode code)
{
    long status = 0;
    char why[sizeof(((ob_err_t *)0)->msg) + 64] = "";
    dialer_app_answer_t ans = {false, -1, NULL};
    ob_err_t err = {{0}};
    int ms = (int)(ob_mono_ms() - r->started_ms);

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    bool refused = code != CURLE_OK && ob_url_guard_error(&r->guard, why, sizeof(why));
    if (refused)
        OB_ASSERT(why[0] != '\0'); /* why names the address the deny-list refused */
    else if (r->too_big)
        snprintf(why, sizeof(why), "answer larger than %d bytes", DIALER_APP_MAX_ANSWER);
    else if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf(why, sizeof(why), "timeout after %d ms", app->o.timeout_ms);
    else if (code != CURLE_OK)
        snprintf(why, sizeof(why), "%s", r->error[0] ? r->error : curl_easy_strerror(code));
    else if (status < 200 || status > 299)
        snprintf(why, sizeof(why), "HTTP %ld", status);
    else if (dialer_app_parse_answer(r->answer ? r->answer : "", r->answer_len, &ans, &err) !=
             OB_OK)
        snprintf(why, sizeof(why), "%s", err.msg);

    if (why[0])
        OB_LOG(OB_LOG_WARN, "app", OB_KV("call_id", r->call_id), "%s request to %s failed: %s",
               r->action      ? "action"
               : r->connected ? "connected"
                              : "callee_type",
               r->url, why);
    else
        OB_LOG(OB_LOG_DEBUG, "app", OB_KV("call_id", r->call_id),
               "%s request answered %ld in %d ms",
               r->action      ? "action"
               : r->connected ? "connected"
                              : "callee_type",
               status, ms);
    report(app, r, status, why[0] ? why : NULL, ms, &ans);
    dialer_app_answer_clear(&ans);
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
    while (app->queue && app->nrunning < app->o.concurrency) {
        app_req_t *r = app->queue;
        app->queue = r->next;
        if (!app->queue)
            app->queue_tail = NULL;
        app->nqueued--;
        r->next = NULL;
        if (!call_current(app, r)) {
            report(app, r, 0, "not sent: the call ended while the request waited", 0, NULL);
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
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->form ? app->form_headers : app->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "outbound-dialer/1");
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)app->o.timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* the resolver must not raise SIGALRM */
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        r->guard.policy = app->o.urls;
        ob_url_guard_curl(e, &r->guard);
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

ob_rc_t dialer_app_new(const dialer_app_opts_t *opts, dialer_app_t **out, ob_err_t *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ob_err_set(err, "libcurl: global initialisation failed");
        return OB_ERR;
    }
    dialer_app_t *app = ob_xcalloc(1, sizeof(*app));
    app->o = *opts;
    if (!(app->multi = curl_multi_init())) {
        ob_err_set(err, "libcurl: cannot create a multi handle");
        free(app);
        curl_global_cleanup();
        return OB_ERR;
    }
    /* Applications usually sit on a few hosts: keep their connections. */
    curl_multi_setopt(app->multi, CURLMOPT_MAXCONNECTS, (long)opts->concurrency);
    app->headers = curl_slist_append(NULL, "Content-Type: application/json");
    app->headers = curl_slist_append(app->headers, "Accept: application/json");
    app->headers = curl_slist_append(app->headers, "Expect:"); /* no 100-continue round trip */
    OB_ASSERT(app->headers != NULL);
    app->form_headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    app->form_headers = curl_slist_append(app->form_headers, "Accept: application/json");
    app->form_headers = curl_slist_append(app->form_headers, "Expect:");
    OB_ASSERT(app->form_headers != NULL);
    app->next_sweep_ms = ob_mono_ms() + DEP_IDLE_MS;
    *out = app;
    return OB_OK;
}

static void settings_free(dialer_deployment_t *set)
{
    free(set->application_id);
    free(set->start_url);
    free(set->result_url);
    memset(set, 0, sizeof(*set));
}

static bool same_url(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Reads d's settings again. A failed read keeps what was known (a
 * deployment's settings rarely change; its calls should not stop because
 * Postgres blinked). New URLs void the standing check: it verified others. */
static void reread(dialer_app_t *app, dep_t *d, int64_t now_ms)
{
    dialer_deployment_t set;
    ob_err_t err = {{0}};
    if (app->o.lookup(app->o.lookup_arg, d->deployment_id, &set, &err) != OB_OK) {
        OB_LOG(OB_LOG_WARN, "app", OB_KV("deployment_id", d->deployment_id),
               "deployment settings not read: %s", err.msg);
        d->next_read_ms = now_ms + DEP_REREAD_MS;
        return;
    }
    if (!d->known || !same_url(set.start_url, d->set.start_url) ||
        !same_url(set.result_url, d->set.result_url)) {
        d->gen++;
        d->check.ok_ms = d->check.failed_ms = 0;
    }
    settings_free(&d->set);
    d->set = set;
    d->known = true;
    d->next_read_ms = now_ms + DIALER_APP_SETTINGS_TTL_MS;
}

/* The deployment's cache entry (created when missing), its settings read
 * when they are due. */
static dep_t *dep_of(dialer_app_t *app, const char *deployment_id, int64_t now_ms)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = deployment_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    dep_t **bucket = &app->deps[h % DEP_BUCKETS];
    dep_t *d = *bucket;
    while (d && strcmp(d->deployment_id, deployment_id) != 0)
        d = d->next;
    if (!d) {
        d = ob_xcalloc(1, sizeof(*d));
        d->deployment_id = ob_xstrdup(deployment_id);
        d->next = *bucket;
        *bucket = d;
    }
    d->used_ms = now_ms;
    if (now_ms >= d->next_read_ms)
        reread(app, d, now_ms);
    return d;
}

static void dep_free(dep_t *d)
{
    settings_free(&d->set);
    free(d->deployment_id);
    free(d->failing);
    free(d->why);
    free(d);
}

/* Drops the entries of deployments nobody asked about for DEP_IDLE_MS,
 * but never one whose GETs are in flight. */
static void sweep(dialer_app_t *app, int64_t now_ms)
{
    if (now_ms < app->next_sweep_ms)
        return;
    app->next_sweep_ms = now_ms + DEP_IDLE_MS;
    for (int i = 0; i < DEP_BUCKETS; i++) {
        dep_t **link = &app->deps[i];
        while (*link) {
            dep_t *d = *link;
            if (d->gets == 0 && now_ms - d->used_ms >= DEP_IDLE_MS) {
                *link = d->next;
                dep_free(d);
            } else {
                link = &d->next;
            }
        }
    }
}

/* Queues a request about call to url: the job's context with event and
 * callee_type (and name = value when name is set), in the deployment's
 * format; returns it for more settings. */
static app_req_t *enqueue(dialer_app_t *app, void *call, const ob_dial_job_t *job, const char *url,
                          const char *event, const char *callee_type, const char *name,
                          const char *value)
{
    const dep_t *d = dep_of(app, job->deployment_id, ob_mono_ms());
    /* Unknown settings (Postgres down from the start): JSON, application null. */
    const char *application_id = d->known ? d->set.application_id : NULL;
    app_req_t *r = ob_xcalloc(1, sizeof(*r));
    r->kind = XFER_REQUEST;
    r->call = call;
    r->call_id = ob_xstrdup(job->call_id);
    r->attempt = job->attempt;
    r->form = d->known && d->set.form;
    r->url = ob_xstrdup(url);
    r->body = body_of(job, application_id, event, callee_type, name, value, r->form);
    if (app->queue_tail)
        app->queue_tail->next = r;
    else
        app->queue = r;
    app->queue_tail = r;
    app->nqueued++;
    return r;
}

void dialer_app_notify(dialer_app_t *app, void *call, const ob_dial_job_t *job, const char *event,
                       const char *callee_type)
{
    if (!app || !job->start_url || !job->start_url[0])
        return;
    app_req_t *r = enqueue(app, call, job, job->start_url, event, callee_type, NULL, NULL);
    r->connected = strcmp(event, "connected") == 0;
}

void dialer_app_action(dialer_app_t *app, void *call, const ob_dial_job_t *job, const char *url,
                       const char *event, const char *name, const char *value)
{
    if (!app)
        return;
    app_req_t *r = enqueue(app, call, job, url, event, NULL, name, value);
    r->action = true;
}

dialer_urls_t dialer_url_state(const dialer_url_check_t *c, int64_t now_ms, bool *start)
{
    bool ok =
        c->ok_ms > 0 && c->ok_ms >= c->failed_ms && now_ms - c->ok_ms < DIALER_URL_CHECK_TTL_MS;
    bool failed = c->failed_ms > c->ok_ms && now_ms - c->failed_ms < DIALER_URL_RETRY_MS;
    *start = false;
    if (failed)
        return DIALER_URLS_FAILED;
    if (ok) {
        *start = !c->in_flight && now_ms - c->ok_ms >= DIALER_URL_REFRESH_MS;
        return DIALER_URLS_OK;
    }
    *start = !c->in_flight;
    return DIALER_URLS_WAIT;
}

/* The body of a checked URL is not wanted: read (so the connection can be
 * kept) up to DIALER_APP_MAX_ANSWER, then the transfer is cut. */
static size_t drop(char *data, size_t size, size_t n, void *arg)
{
    url_get_t *g = arg;
    (void)data;
    g->got += size * n;
    return g->got > DIALER_APP_MAX_ANSWER ? 0 : size * n;
}

static void get_start(dialer_app_t *app, dep_t *d, const char *which, const char *url)
{
    url_get_t *g = ob_xcalloc(1, sizeof(*g));
    g->kind = XFER_CHECK;
    g->dep = d;
    g->gen = d->gen;
    g->which = which;
    g->url = ob_xstrdup(url);
    CURL *e = curl_easy_init();
    OB_ASSERT(e != NULL); /* fails only without memory */
    g->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, g->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is not a 200 */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "outbound-dialer/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)app->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, g->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, g);
    g->guard.policy = app->o.urls;
    ob_url_guard_curl(e, &g->guard);
    g->next = app->gets;
    if (app->gets)
        app->gets->prev = g;
    app->gets = g;
    app->ngets++;
    d->gets++;
    curl_multi_add_handle(app->multi, e);
}

static void check_start(dialer_app_t *app, dep_t *d)
{
    free(d->failing);
    d->failing = NULL;
    d->check.in_flight = true;
    if (d->set.start_url && d->set.start_url[0])
        get_start(app, d, "start_url", d->set.start_url);
    if (d->set.result_url && d->set.result_url[0])
        get_start(app, d, "result_url", d->set.result_url);
    OB_LOG(OB_LOG_DEBUG, "app", OB_KV("deployment_id", d->deployment_id), "checking its URLs (%d)",
           d->gets);
}

dialer_urls_t dialer_app_check_urls(dialer_app_t *app, const ob_dial_job_t *job, const char **why)
{
    if (!app)
        return DIALER_URLS_OK;
    int64_t now = ob_mono_ms();
    dep_t *d = dep_of(app, job->deployment_id, now);
    if (!d->known)
        return DIALER_URLS_WAIT; /* whether to verify is unknown: not dialed on a guess */
    bool has_start = d->set.start_url && d->set.start_url[0];
    bool has_result = d->set.result_url && d->set.result_url[0];
    if (!d->set.verify_urls || (!has_start && !has_result))
        return DIALER_URLS_OK;
    bool start = false;
    dialer_urls_t st = dialer_url_state(&d->check, now, &start);
    if (start)
        check_start(app, d);
    if (st == DIALER_URLS_FAILED && why)
        *why = d->why ? d->why : "URL check failed";
    return st;
}

/* A GET of a check ended. The check ends with its last GET: failed if any
 * failed (the first failure is its reason), unless its URLs changed since. */
static void get_finish(dialer_app_t *app, url_get_t *g, CURLcode code)
{
    dep_t *d = g->dep;
    long status = 0;
    char *failure = NULL;
    curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &status);
    bool cut = code == CURLE_WRITE_ERROR && g->got > DIALER_APP_MAX_ANSWER;
    char refused[sizeof(g->guard.address) + sizeof(g->guard.range) + 64];
    if (code != CURLE_OK && ob_url_guard_error(&g->guard, refused, sizeof(refused)))
        failure = ob_xasprintf("%s %s could not be fetched: %s", g->which, g->url, refused);
    else if (code == CURLE_OPERATION_TIMEDOUT)
        failure =
            ob_xasprintf("%s %s did not answer within %d ms", g->which, g->url, app->o.timeout_ms);
    else if (code != CURLE_OK && !cut)
        failure = ob_xasprintf("%s %s could not be fetched: %s", g->which, g->url,
                               g->error[0] ? g->error : curl_easy_strerror(code));
    else if (status != 200)
        failure = ob_xasprintf("%s %s answered %ld%s", g->which, g->url, status,
                               status >= 300 && status < 400 ? " (redirects are not followed)"
                                                             : ", not 200");
    if (failure && g->gen == d->gen && !d->failing)
        d->failing = failure;
    else
        free(failure);
    if (--d->gets > 0)
        return;
    d->check.in_flight = false;
    if (g->gen != d->gen)
        return; /* it checked URLs the deployment no longer has */
    if (d->failing) {
        OB_LOG(OB_LOG_WARN, "app", OB_KV("deployment_id", d->deployment_id),
               "URL check failed, its calls are not dialed: %s", d->failing);
        free(d->why);
        d->why = d->failing;
        d->failing = NULL;
        d->check.failed_ms = ob_mono_ms();
    } else {
        OB_LOG(OB_LOG_DEBUG, "app", OB_KV("deployment_id", d->deployment_id), "URL check passed");
        d->check.ok_ms = ob_mono_ms();
    }
}

static void unlink_get(dialer_app_t *app, url_get_t *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        app->gets = g->next;
    if (g->next)
        g->next->prev = g->prev;
    app->ngets--;
}

static void get_free(dialer_app_t *app, url_get_t *g)
{
    curl_multi_remove_handle(app->multi, g->easy);
    curl_easy_cleanup(g->easy);
    free(g->url);
    free(g);
}

/* A finished request: recorded and acted on. */
static void request_done(dialer_app_t *app, app_req_t *r, CURLcode code)
{
    curl_multi_remove_handle(app->multi, r->easy);
    unlink_running(app, r);
    finish(app, r, code); /* the worker may end the call on the carrier */
    curl_easy_cleanup(r->easy);
    req_free(r);
}

int64_t dialer_app_run(dialer_app_t *app, int64_t now_ms)
{
    if (!app)
        return INT64_MAX;
    sweep(app, now_ms);
    if (app->nrunning == 0 && app->nqueued == 0 && app->ngets == 0)
        return INT64_MAX;
    int still = 0, left = 0;
    CURLMsg *msg;
    start_queued(app);
    curl_multi_perform(app->multi, &still);
    while ((msg = curl_multi_info_read(app->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&priv);
        CURLcode code = msg->data.result;
        if (*(xfer_kind_t *)priv == XFER_REQUEST) {
            request_done(app, priv, code);
        } else {
            url_get_t *g = priv;
            unlink_get(app, g);
            get_finish(app, g, code);
            get_free(app, g);
        }
    }
    start_queued(app);
    bool busy = app->nrunning > 0 || app->nqueued > 0 || app->ngets > 0;
    return busy ? now_ms + APP_TICK_MS : INT64_MAX;
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

void dialer_app_abort(dialer_app_t *app)
{
    if (!app)
        return;
    while (app->running) {
        app_req_t *r = app->running;
        unlink_running(app, r);
        curl_multi_remove_handle(app->multi, r->easy);
        curl_easy_cleanup(r->easy);
        report(app, r, 0, "aborted: the dialer stopped", (int)(ob_mono_ms() - r->started_ms), NULL);
        req_free(r);
    }
    while (app->queue) {
        app_req_t *r = app->queue;
        app->queue = r->next;
        report(app, r, 0, "not sent: the dialer stopped", 0, NULL);
        req_free(r);
    }
    app->queue_tail = NULL;
    app->nqueued = 0;
    while (app->gets) {
        url_get_t *g = app->gets;
        unlink_get(app, g);
        g->dep->gets--;
        g->dep->check.in_flight = g->dep->gets > 0;
        get_free(app, g);
    }
}

void dialer_app_free(dialer_app_t *app)
{
    if (!app)
        return;
    dialer_app_abort(app);
    for (int i = 0; i < DEP_BUCKETS; i++) {
        while (app->deps[i]) {
            dep_t *d = app->deps[i];
            app->deps[i] = d->next;
            dep_free(d);
        }
    }
    curl_slist_free_all(app->headers);
    curl_slist_free_all(app->form_headers);
    curl_multi_cleanup(app->multi);
    curl_global_cleanup();
    free(app);
}
