/*
 * result_url webhooks. One thread: consume completed events into
 * webhook_deliveries (ON CONFLICT on the event id, so replays are harmless),
 * claim due deliveries with a lease (FOR UPDATE SKIP LOCKED, so dialers
 * share them), run the POSTs on a libcurl multi handle that keeps
 * connections alive, and record each try in one batched statement. Postgres
 * holds all the state, so a restart loses nothing: unconsumed events are
 * still in Kafka and unfinished tries come due again when their lease ends.
 */
#include "dialer_webhooks.h"
#include "ob_kafka.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_proto.h"
#include "ob_service.h"
#include "ob_uuid.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONSUME_BATCH  500   /* events turned into deliveries per statement */
#define CLAIM_BATCH    500   /* deliveries claimed per statement */
#define IDLE_CLAIM_MS  250   /* how often to look for due deliveries when none were found */
#define LEASE_EXTRA_MS 30000 /* a claim outlives the transfer timeout by this much */

/* One transfer slot of the multi handle. */
typedef struct {
    CURL *easy;                  /* reused, so connections and DNS stay cached */
    struct curl_slist *headers;  /* this try's headers (owned) */
    bool in_use;                 /* a transfer runs */
    char delivery_id[37];        /* what it delivers */
    char call_id[37];            /* for the logs */
    char *body;                  /* the payload as sent (owned) */
    int attempt;                 /* 1-based number of this try */
    int64_t created_ms;          /* when the delivery was created (unix ms) */
    int64_t started_ms;          /* when this try started (unix ms) */
    char error[CURL_ERROR_SIZE]; /* libcurl's detail of a failure */
    ob_url_guard_t guard;        /* refuses denied addresses, says which */
} transfer_t;

/* The sender's metrics. */
enum {
    WM_CREATED,    /* outbound_webhook_deliveries_created_total */
    WM_DELIVERED,  /* outbound_webhook_deliveries_total{outcome="delivered"} */
    WM_GAVE_UP,    /* outbound_webhook_deliveries_total{outcome="failed"} */
    WM_TRY_OK,     /* outbound_webhook_tries_total{outcome="succeeded"} */
    WM_TRY_FAILED, /* outbound_webhook_tries_total{outcome="failed"} */
    WM_IN_FLIGHT,  /* outbound_webhooks_in_flight */
    WM_COUNT,
};

struct dialer_webhooks {
    dialer_webhooks_opts_t o;                /* settings (copied) */
    ob_metric_t metrics[WM_COUNT];           /* updated by the thread, rendered by any */
    pthread_t thread;                        /* the sender */
    bool joined;                             /* dialer_webhooks_drain joined the thread */
    int stop;                                /* set by dialer_webhooks_drain (atomic) */
    int64_t deadline_ms;                     /* monotonic drain deadline, set before stop */
    PGconn *pg;                              /* the sender's own connection */
    rd_kafka_t *events;                      /* consumer of outbound.call-events */
    rd_kafka_message_t *held[CONSUME_BATCH]; /* consumed events not yet recorded */
    int nheld;                               /* entries in held */
    CURLM *multi;                            /* every transfer in flight */
    transfer_t *slots;                       /* o.concurrency of them */
    int running;                             /* slots in use */
    cJSON *results;                          /* finished tries not yet recorded */
    int64_t next_claim_ms;                   /* monotonic time of the next claim */
    uint64_t rng;                            /* jitter (xorshift64) */
};

#define DELIVERIES_HELP                                                                            \
    "result_url deliveries finished: answered 2xx (delivered) or failed (given up at their "       \
    "maximum age)"
#define TRIES_HELP "result_url HTTP tries: answered 2xx (succeeded) or not (failed)"

/* The definitions, all zero: a new sender's metrics, and what /metrics
 * shows when webhooks are off. */
static const ob_metric_t metric_defs[WM_COUNT] = {
    [WM_CREATED] = {"outbound_webhook_deliveries_created_total", NULL,
                    "result_url deliveries created from completed events", OB_METRIC_COUNTER, 0},
    [WM_DELIVERED] = {"outbound_webhook_deliveries_total", "outcome=\"delivered\"", DELIVERIES_HELP,
                      OB_METRIC_COUNTER, 0},
    [WM_GAVE_UP] = {"outbound_webhook_deliveries_total", "outcome=\"failed\"", DELIVERIES_HELP,
                    OB_METRIC_COUNTER, 0},
    [WM_TRY_OK] = {"outbound_webhook_tries_total", "outcome=\"succeeded\"", TRIES_HELP,
                   OB_METRIC_COUNTER, 0},
    [WM_TRY_FAILED] = {"outbound_webhook_tries_total", "outcome=\"failed\"", TRIES_HELP,
                       OB_METRIC_COUNTER, 0},
    [WM_IN_FLIGHT] = {"outbound_webhooks_in_flight", NULL, "webhook transfers running now",
                      OB_METRIC_GAUGE, 0},
};

char *dialer_webhooks_metrics(const dialer_webhooks_t *ws)
{
    return ob_metrics_render(ws ? ws->metrics : metric_defs, WM_COUNT);
}

void dialer_webhook_sign(const char *secret, const char *timestamp, const char *body,
                         size_t body_len, char out[DIALER_WEBHOOK_SIG_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t tlen = strlen(timestamp);
    unsigned char *msg = ob_xmalloc(tlen + 1 + body_len);
    memcpy(msg, timestamp, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, body_len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tlen + 1 + body_len, md, &mdlen);
    free(msg);
    memcpy(out, "v1=", 3);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", md[i]);
}

/* One member of the form body: a scalar as name=value, an object's or an
 * array's members under name[key] or name[index], as PHP's
 * http_build_query() writes them and $_POST reads them back. */
static void form_member(char **buf, size_t *len, size_t *cap, const char *name, const cJSON *v)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int i = 0;
        const cJSON *child;
        cJSON_ArrayForEach(child, v)
        {
            char *sub = cJSON_IsArray(v) ? ob_xasprintf("%s[%d]", name, i++)
                                         : ob_xasprintf("%s[%s]", name, child->string);
            form_member(buf, len, cap, sub, child);
            free(sub);
        }
        return;
    }
    char num[64] = "";
    const char *text = num;
    if (cJSON_IsString(v))
        text = v->valuestring;
    else if (cJSON_IsBool(v))
        text = cJSON_IsTrue(v) ? "1" : "0";
    else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
             fabs(v->valuedouble) < 1e15)
        snprintf(num, sizeof(num), "%lld", (long long)v->valuedouble);
    else if (cJSON_IsNumber(v))
        snprintf(num, sizeof(num), "%.17g", v->valuedouble);
    /* null: sent empty, as Plum sends a time that was not given */
    ob_url_form_append(buf, len, cap, *len ? "&" : "", false);
    ob_url_form_append(buf, len, cap, name, true);
    ob_url_form_append(buf, len, cap, "=", false);
    ob_url_form_append(buf, len, cap, text, true);
}

char *dialer_webhook_form_body(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (cJSON_IsObject(o)) {
        ob_url_form_append(&buf, &len, &cap, "", false); /* "" for an empty object */
        const cJSON *m;
        cJSON_ArrayForEach(m, o)
        {
            form_member(&buf, &len, &cap, m->string, m);
        }
    }
    cJSON_Delete(o);
    return buf;
}

int64_t dialer_webhook_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double jitter)
{
    int64_t wait = base_ms;
    for (int i = 1; i < attempt && wait < max_ms; i++)
        wait *= 2;
    if (wait > max_ms)
        wait = max_ms;
    if (jitter < 0)
        jitter = 0;
    if (jitter >= 1)
        jitter = 0.999999;
    return (int64_t)((double)wait * (0.5 + jitter / 2));
}

int64_t dialer_webhook_next_ms(int64_t created_ms, int64_t now_ms, int attempt,
                               const dialer_webhooks_opts_t *o, double jitter)
{
    int64_t next =
        now_ms + dialer_webhook_backoff_ms(attempt, o->retry_base_ms, o->retry_max_ms, jitter);
    return next > created_ms + o->max_age_ms ? -1 : next;
}

static double next_jitter(dialer_webhooks_t *ws)
{
    ws->rng ^= ws->rng << 13;
    ws->rng ^= ws->rng >> 7;
    ws->rng ^= ws->rng << 17;
    return (double)(ws->rng >> 11) / 9007199254740992.0;
}

static bool stopping(dialer_webhooks_t *ws)
{
    return __atomic_load_n(&ws->stop, __ATOMIC_ACQUIRE) != 0;
}

/* Sleeps up to ms, waking early when the sender is told to stop (not on
 * the process's stop flag: the sender keeps working while calls drain). */
static void pause_ms(dialer_webhooks_t *ws, int ms)
{
    for (int slept = 0; slept < ms && !stopping(ws); slept += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Makes sure the connection is up; false (after a pause) when Postgres is
 * still unreachable. */
static bool pg_ready(dialer_webhooks_t *ws)
{
    ob_err_t err = {{0}};
    if (ob_pg_ensure(&ws->pg, ws->o.base->pg_dsn, &err) == OB_OK)
        return true;
    OB_WARN("webhooks", "waiting for Postgres: %s", err.msg);
    pause_ms(ws, 1000);
    return false;
}

/* Turns the held completed events into deliveries in one statement, then
 * lets their offsets be committed. Held events stay held while Postgres
 * fails, so none is skipped. */
static void record_held(dialer_webhooks_t *ws)
{
    /* The body is the call's details (as GET /api/v1/calls/{id} shows them)
     * with the event id first, built once so that every try sends it
     * unchanged; a call queued through the Plum routes gets Plum's
     * call_details instead (as GET /api/outbound/{id} shows them, from the
     * same plum_call_details()), form-encoded when its deployment says so
     * (plum_result_format, migration 026). A call that completed longer ago
     * than the maximum age gets none: a new consumer group replaying old
     * events sends nothing stale. */
    static const char SQL[] =
        "INSERT INTO webhook_deliveries (delivery_id, event_id, call_id, deployment_id,"
        " account_id, url, body, content_type)"
        " SELECT r.delivery_id, r.event_id, c.call_id, c.deployment_id, c.account_id,"
        " coalesce(nullif(c.result_url, ''), nullif(d.result_url, '')),"
        " CASE WHEN c.queued_via = 'plum' THEN plum_call_details(c.call_id)::text"
        "  ELSE '{\"event_id\":' || to_json(r.event_id::text)::text || ','"
        "  || substr(call_view(c.call_id)::text, 2) END,"
        " CASE WHEN c.queued_via = 'plum' AND d.plum_result_format = 'form'"
        "  THEN 'application/x-www-form-urlencoded' ELSE 'application/json' END"
        " FROM json_to_recordset($1::json) AS r(delivery_id uuid, event_id uuid, call_id uuid)"
        " JOIN calls c ON c.call_id = r.call_id"
        " JOIN deployments d ON d.deployment_id = c.deployment_id"
        " WHERE coalesce(nullif(c.result_url, ''), nullif(d.result_url, '')) IS NOT NULL"
        " AND c.state = 'completed'"
        " AND c.completed_at > now() - make_interval(secs => $2::bigint / 1000.0)"
        " ON CONFLICT (event_id) DO NOTHING";
    cJSON *rows = cJSON_CreateArray();
    ob_err_t err = {{0}};
    PGresult *res = NULL;
    char age[32];

    for (int i = 0; i < ws->nheld; i++) {
        const rd_kafka_message_t *m = ws->held[i];
        ob_call_event_t ev = {0};
        ob_err_t derr = {{0}};
        if (ob_call_event_decode(m->payload, m->len, &ev, &derr) != OB_OK) {
            OB_WARN("webhooks", "undecodable event at %d/%lld skipped: %s", m->partition,
                    (long long)m->offset, derr.msg);
            continue;
        }
        if (ev.type && strcmp(ev.type, "outbound.call.completed") == 0 && ev.id && ev.call_id &&
            ob_uuid_valid(ev.id) && ob_uuid_valid(ev.call_id)) {
            char delivery_id[OB_UUID_STRLEN + 1];
            ob_uuid_v7(delivery_id);
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "delivery_id", delivery_id);
            cJSON_AddStringToObject(row, "event_id", ev.id);
            cJSON_AddStringToObject(row, "call_id", ev.call_id);
            cJSON_AddItemToArray(rows, row);
        }
        ob_call_event_clear(&ev);
    }
    if (cJSON_GetArraySize(rows) > 0) {
        char *text = cJSON_PrintUnformatted(rows);
        snprintf(age, sizeof(age), "%lld", (long long)ws->o.max_age_ms);
        const char *params[] = {text, age};
        ob_rc_t rc = ob_pg_exec(ws->pg, SQL, 2, params, &res, &err);
        cJSON_free(text);
        if (rc != OB_OK) {
            OB_WARN("webhooks", "deliveries not recorded, retrying: %s", err.msg);
            cJSON_Delete(rows);
            pause_ms(ws, 500);
            return;
        }
        int created = atoi(PQcmdTuples(res));
        ob_metric_add(&ws->metrics[WM_CREATED], created);
        if (created > 0)
            ws->next_claim_ms = 0; /* new work: claim it at once */
        PQclear(res);
    }
    cJSON_Delete(rows);
    for (int i = 0; i < ws->nheld; i++) {
        ob_consumer_store(ws->events, ws->held[i]);
        rd_kafka_message_destroy(ws->held[i]);
    }
    ws->nheld = 0;
}

/* Takes up to a batch of events (waiting up to wait_ms for the first). */
static void consume(dialer_webhooks_t *ws, int wait_ms)
{
    while (ws->nheld < CONSUME_BATCH) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ws->events, ws->nheld ? 0 : wait_ms);
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                OB_WARN("webhooks", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            break;
        }
        ws->held[ws->nheld++] = m;
    }
    if (ws->nheld > 0)
        record_held(ws);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    return curl_slist_append(list, line);
}

/* Starts one try of a claimed delivery in a free slot. */
static void start_transfer(dialer_webhooks_t *ws, transfer_t *t, PGresult *res, int row)
{
    const char *url = PQgetvalue(res, row, 2);
    const char *secret = PQgetvalue(res, row, 6);
    bool form = strcmp(PQgetvalue(res, row, 8), "application/x-www-form-urlencoded") == 0;
    char ts[32], sig[DIALER_WEBHOOK_SIG_LEN], attempt[16];

    snprintf(t->delivery_id, sizeof(t->delivery_id), "%s", PQgetvalue(res, row, 0));
    snprintf(t->call_id, sizeof(t->call_id), "%s", PQgetvalue(res, row, 7));
    /* Stored as JSON; the form encoding of it is the same bytes every try. */
    t->body = form ? dialer_webhook_form_body(PQgetvalue(res, row, 3)) : NULL;
    if (!t->body) {
        form = false;
        t->body = ob_xstrdup(PQgetvalue(res, row, 3));
    }
    t->attempt = atoi(PQgetvalue(res, row, 4));
    t->created_ms = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    t->started_ms = ob_now_ms();
    t->error[0] = '\0';
    snprintf(ts, sizeof(ts), "%lld", (long long)(t->started_ms / 1000));
    snprintf(attempt, sizeof(attempt), "%d", t->attempt);
    dialer_webhook_sign(secret, ts, t->body, strlen(t->body), sig);

    t->headers = curl_slist_append(NULL, form ? "Content-Type: application/x-www-form-urlencoded"
                                              : "Content-Type: application/json");
    t->headers = curl_slist_append(t->headers, "Expect:"); /* no 100-continue round trip */
    t->headers = add_header(t->headers, "X-Outbound-Event-Id", PQgetvalue(res, row, 1));
    t->headers = add_header(t->headers, "X-Outbound-Delivery-Id", t->delivery_id);
    t->headers = add_header(t->headers, "X-Outbound-Attempt", attempt);
    t->headers = add_header(t->headers, "X-Outbound-Timestamp", ts);
    t->headers = add_header(t->headers, "X-Outbound-Signature", sig);

    CURL *e = t->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(t->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "outbound-webhooks/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ws->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(ws->o.timeout_ms < 5000 ? ws->o.timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    t->guard.policy = ws->o.urls;
    ob_url_guard_curl(e, &t->guard);
    t->in_use = true;
    ws->running++;
    ob_metric_set(&ws->metrics[WM_IN_FLIGHT], ws->running);
    curl_multi_add_handle(ws->multi, e);
}

/* Claims due deliveries for the free slots and starts them. */
static void claim(dialer_webhooks_t *ws)
{
    static const char SQL[] =
        "WITH due AS (SELECT delivery_id FROM webhook_deliveries"
        "  WHERE state = 'pending' AND next_attempt_at <= now()"
        "  ORDER BY next_attempt_at LIMIT $1::int FOR UPDATE SKIP LOCKED)"
        " UPDATE webhook_deliveries w"
        " SET next_attempt_at = now() + make_interval(secs => $2::int / 1000.0)"
        " FROM due, deployments d"
        " WHERE w.delivery_id = due.delivery_id AND d.deployment_id = w.deployment_id"
        " RETURNING w.delivery_id, w.event_id, w.url, w.body, w.attempts + 1,"
        " (extract(epoch FROM w.created_at) * 1000)::bigint, d.webhook_secret, w.call_id,"
        " w.content_type";
    int free_slots = ws->o.concurrency - ws->running;
    int want = free_slots < CLAIM_BATCH ? free_slots : CLAIM_BATCH;
    char limit[16], lease[16];
    PGresult *res = NULL;
    ob_err_t err = {{0}};

    if (want <= 0 || ob_mono_ms() < ws->next_claim_ms)
        return;
    snprintf(limit, sizeof(limit), "%d", want);
    snprintf(lease, sizeof(lease), "%d", ws->o.timeout_ms + LEASE_EXTRA_MS);
    const char *params[] = {limit, lease};
    if (ob_pg_exec(ws->pg, SQL, 2, params, &res, &err) != OB_OK) {
        OB_WARN("webhooks", "cannot claim deliveries: %s", err.msg);
        ws->next_claim_ms = ob_mono_ms() + 1000;
        return;
    }
    int n = PQntuples(res), row = 0;
    for (int i = 0; i < ws->o.concurrency && row < n; i++)
        if (!ws->slots[i].in_use)
            start_transfer(ws, &ws->slots[i], res, row++);
    PQclear(res);
    /* A full batch means more may be due: look again on the next turn. */
    ws->next_claim_ms = n == want ? 0 : ob_mono_ms() + IDLE_CLAIM_MS;
}

static void release_slot(dialer_webhooks_t *ws, transfer_t *t)
{
    curl_multi_remove_handle(ws->multi, t->easy);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    free(t->body);
    t->body = NULL;
    t->in_use = false;
    ws->running--;
    ob_metric_set(&ws->metrics[WM_IN_FLIGHT], ws->running);
}

/* Records how a finished try went and frees its slot. */
static void finish_transfer(dialer_webhooks_t *ws, transfer_t *t, CURLcode code)
{
    long status = 0;
    char error[CURL_ERROR_SIZE + 32] = "";
    int64_t now = ob_now_ms();

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    bool ok = code == CURLE_OK && status >= 200 && status < 300;
    /* A refused address is not retried: the deny-list will refuse it again. */
    bool refused = !ok && ob_url_guard_error(&t->guard, error, sizeof(error));
    if (!refused && code != CURLE_OK)
        snprintf(error, sizeof(error), "%s", t->error[0] ? t->error : curl_easy_strerror(code));
    else if (!refused && !ok)
        snprintf(error, sizeof(error), "HTTP %ld", status);
    int64_t next = ok || refused ? 0
                                 : dialer_webhook_next_ms(t->created_ms, now, t->attempt, &ws->o,
                                                          next_jitter(ws));
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "delivery_id", t->delivery_id);
    cJSON_AddNumberToObject(row, "attempt", t->attempt);
    cJSON_AddNumberToObject(row, "started_ms", (double)t->started_ms);
    cJSON_AddNumberToObject(row, "duration_ms", (double)(now - t->started_ms));
    if (status > 0)
        cJSON_AddNumberToObject(row, "http_status", (double)status);
    if (!ok)
        cJSON_AddStringToObject(row, "error", error);
    cJSON_AddBoolToObject(row, "ok", ok);
    if (next > 0)
        cJSON_AddNumberToObject(row, "next_ms", (double)next);
    cJSON_AddItemToArray(ws->results, row);
    ob_metric_add(&ws->metrics[ok ? WM_TRY_OK : WM_TRY_FAILED], 1);
    if (ok)
        ob_metric_add(&ws->metrics[WM_DELIVERED], 1);
    if (!ok && next <= 0)
        ob_metric_add(&ws->metrics[WM_GAVE_UP], 1);
    if (ok)
        OB_LOG(OB_LOG_DEBUG, "webhooks",
               OB_KV("call_id", t->call_id, "delivery_id", t->delivery_id),
               "delivered on try %d (HTTP %ld)", t->attempt, status);
    else
        OB_LOG(OB_LOG_INFO, "webhooks", OB_KV("call_id", t->call_id, "delivery_id", t->delivery_id),
               "try %d failed (%s); %s", t->attempt, error,
               next > 0  ? "will retry"
               : refused ? "giving up: the URL's address is denied"
                         : "giving up: maximum age reached");
    release_slot(ws, t);
}

/* Writes the finished tries: the attempt log, and each delivery's new state
 * (guarded on the attempt count, so a try whose claim had expired and was
 * taken over cannot overwrite the newer one). */
static void record_results(dialer_webhooks_t *ws)
{
    static const char SQL[] =
        "WITH r AS (SELECT * FROM json_to_recordset($1::json) AS r(delivery_id uuid, attempt int,"
        "  started_ms bigint, duration_ms int, http_status int, error text, ok boolean,"
        "  next_ms bigint)),"
        " log AS (INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,"
        "  http_status, error) SELECT delivery_id, attempt, to_timestamp(started_ms / 1000.0),"
        "  duration_ms, http_status, error FROM r ON CONFLICT DO NOTHING)"
        " UPDATE webhook_deliveries w SET attempts = r.attempt, last_status = r.http_status,"
        " last_error = r.error,"
        " state = CASE WHEN r.ok THEN 'delivered' WHEN r.next_ms IS NULL THEN 'failed'"
        "  ELSE 'pending' END,"
        " delivered_at = CASE WHEN r.ok THEN now() END,"
        " next_attempt_at = CASE WHEN r.next_ms IS NOT NULL"
        "  THEN to_timestamp(r.next_ms / 1000.0) ELSE w.next_attempt_at END"
        " FROM r WHERE w.delivery_id = r.delivery_id AND w.state = 'pending'"
        " AND w.attempts = r.attempt - 1";
    ob_err_t err = {{0}};

    if (cJSON_GetArraySize(ws->results) == 0)
        return;
    char *text = cJSON_PrintUnformatted(ws->results);
    const char *params[] = {text};
    int64_t started_us = ob_mono_us();
    ob_rc_t rc = ob_pg_exec(ws->pg, SQL, 1, params, NULL, &err);
    cJSON_free(text);
    if (rc == OB_OK)
        ob_pg_write_observe(ws->o.pg_writes, "webhook_results", started_us);
    if (rc != OB_OK) {
        /* Kept for the next turn; if the process dies first, the claims
         * expire and the deliveries are tried again (receivers dedupe by
         * X-Outbound-Event-Id). */
        OB_WARN("webhooks", "%d result(s) not recorded yet: %s", cJSON_GetArraySize(ws->results),
                err.msg);
        return;
    }
    cJSON_Delete(ws->results);
    ws->results = cJSON_CreateArray();
}

/* Runs the transfers for up to wait_ms and collects those that finished. */
static void pump(dialer_webhooks_t *ws, int wait_ms)
{
    int still = 0, left = 0;
    CURLMsg *msg;
    curl_multi_perform(ws->multi, &still);
    while ((msg = curl_multi_info_read(ws->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        finish_transfer(ws, (transfer_t *)(void *)priv, msg->data.result);
    }
    if (wait_ms > 0)
        curl_multi_poll(ws->multi, NULL, 0, wait_ms, NULL);
}

/* Hands back the deliveries still in flight at the drain deadline: due
 * again at once, for this or another dialer. */
static void abandon_all(dialer_webhooks_t *ws)
{
    cJSON *ids = cJSON_CreateArray();
    for (int i = 0; i < ws->o.concurrency; i++) {
        transfer_t *t = &ws->slots[i];
        if (!t->in_use)
            continue;
        cJSON_AddItemToArray(ids, cJSON_CreateString(t->delivery_id));
        release_slot(ws, t);
    }
    int n = cJSON_GetArraySize(ids);
    if (n > 0) {
        ob_err_t err = {{0}};
        char *text = cJSON_PrintUnformatted(ids);
        const char *params[] = {text};
        if (ob_pg_exec(ws->pg,
                       "UPDATE webhook_deliveries SET next_attempt_at = now()"
                       " WHERE delivery_id IN (SELECT json_array_elements_text($1::json)::uuid)"
                       " AND state = 'pending'",
                       1, params, NULL, &err) != OB_OK)
            OB_WARN("webhooks", "%d delivery claim(s) not handed back (they expire): %s", n,
                    err.msg);
        else
            OB_INFO("webhooks", "handed back %d delivery(ies) in flight", n);
        cJSON_free(text);
    }
    cJSON_Delete(ids);
}

/* Connects the consumer; false (after a pause) while Kafka refuses. */
static bool connect_events(dialer_webhooks_t *ws)
{
    ob_err_t err = {{0}};
    char *group = ob_xasprintf("%swebhooks", ws->o.base->topic_prefix);
    char *topic = ob_config_topic(ws->o.base, OB_TOPIC_CALL_EVENTS);
    const char *topics[] = {topic, NULL};
    ob_rc_t rc = ob_consumer_new(ws->o.base, group, topics, "earliest", NULL, NULL,
                                 ws->o.kafka_metrics, &ws->events, &err);
    free(group);
    free(topic);
    if (rc == OB_OK)
        return true;
    OB_WARN("webhooks", "cannot consume call events yet: %s", err.msg);
    pause_ms(ws, 1000);
    return false;
}

static void *run(void *arg)
{
    dialer_webhooks_t *ws = arg;

    while (!stopping(ws) && (!pg_ready(ws) || (!ws->events && !connect_events(ws))))
        ;
    OB_INFO("webhooks", "sending result_url webhooks, %d at once", ws->o.concurrency);
    while (!stopping(ws)) {
        if (!pg_ready(ws))
            continue;
        if (ws->events)
            consume(ws, ws->running > 0 ? 0 : 20);
        claim(ws);
        pump(ws, ws->running > 0 ? 10 : 0);
        record_results(ws);
    }

    /* Drain: no new events or claims; let the tries in flight finish. */
    int64_t deadline = __atomic_load_n(&ws->deadline_ms, __ATOMIC_ACQUIRE);
    int64_t limit = ob_mono_ms() + ws->o.timeout_ms;
    if (limit < deadline)
        deadline = limit;
    OB_INFO("webhooks", "draining: %d webhook(s) in flight", ws->running);
    while (ws->running > 0 && ob_mono_ms() < deadline)
        pump(ws, 20);
    pump(ws, 0);
    abandon_all(ws);
    record_results(ws);
    for (int i = 0; i < ws->nheld; i++)
        rd_kafka_message_destroy(ws->held[i]); /* not stored: consumed again later */
    ws->nheld = 0;
    return NULL;
}

ob_rc_t dialer_webhooks_start(const dialer_webhooks_opts_t *opts, dialer_webhooks_t **out,
                              ob_err_t *err)
{
    dialer_webhooks_t *ws = ob_xcalloc(1, sizeof(*ws));
    *out = NULL;
    ws->o = *opts;
    memcpy(ws->metrics, metric_defs, sizeof(metric_defs));
    ws->rng = (uint64_t)ob_now_ms() * 6364136223846793005ULL ^ (uint64_t)getpid();
    ws->rng |= 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ob_err_set(err, "libcurl cannot be initialised");
        free(ws);
        return OB_ERR;
    }
    ws->results = cJSON_CreateArray();
    if (!(ws->multi = curl_multi_init())) {
        ob_err_set(err, "libcurl cannot create a multi handle");
        goto fail;
    }
    curl_multi_setopt(ws->multi, CURLMOPT_MAXCONNECTS, (long)opts->concurrency);
    ws->slots = ob_xcalloc((size_t)opts->concurrency, sizeof(transfer_t));
    for (int i = 0; i < opts->concurrency; i++) {
        if (!(ws->slots[i].easy = curl_easy_init())) {
            ob_err_set(err, "libcurl: cannot create a transfer handle");
            goto fail;
        }
    }
    if (pthread_create(&ws->thread, NULL, run, ws) != 0) {
        ob_err_set(err, "cannot start the webhook sender thread");
        goto fail;
    }
    *out = ws;
    return OB_OK;
fail:
    for (int i = 0; ws->slots && i < opts->concurrency; i++)
        if (ws->slots[i].easy)
            curl_easy_cleanup(ws->slots[i].easy);
    free(ws->slots);
    if (ws->multi)
        curl_multi_cleanup(ws->multi);
    curl_global_cleanup();
    cJSON_Delete(ws->results);
    free(ws);
    return OB_ERR;
}

void dialer_webhooks_drain(dialer_webhooks_t *ws, int64_t deadline_ms)
{
    if (!ws || ws->joined)
        return;
    __atomic_store_n(&ws->deadline_ms, deadline_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&ws->stop, 1, __ATOMIC_RELEASE);
    pthread_join(ws->thread, NULL);
    ws->joined = true;
    if (ws->events)
        ob_consumer_close(ws->events); /* commits what was recorded */
    ws->events = NULL;
}

void dialer_webhooks_stop(dialer_webhooks_t *ws)
{
    if (!ws)
        return;
    dialer_webhooks_drain(ws, ob_mono_ms());
    for (int i = 0; i < ws->o.concurrency; i++)
        curl_easy_cleanup(ws->slots[i].easy);
    free(ws->slots);
    curl_multi_cleanup(ws->multi);
    curl_global_cleanup();
    cJSON_Delete(ws->results);
    PQfinish(ws->pg);
    free(ws);
}
