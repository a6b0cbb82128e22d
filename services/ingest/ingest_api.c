/*
 * The native JSON API under /api/v1: routing, request validation and the
 * handlers. A call is answered 202 only after the broker acknowledged its
 * request message, so an accepted call_id is always durably in Kafka.
 */
#include "ingest.h"
#include "ob_log.h"
#include "ob_phone.h"
#include "ob_proto.h"
#include "ob_uuid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REFERENCE_LEN  1024
#define MAX_PARAMETERS_LEN 65536
#define MAX_URL_LEN        2048

/* The deployment a call is queued to, with its defaults. */
typedef struct {
    char account_id[37];   /* owner */
    bool active;           /* accepting calls */
    bool deleted;          /* soft-deleted */
    long max_attempts;     /* default attempts */
    long retry_interval_s; /* default wait between attempts */
    char *caller_id;       /* default caller id or NULL (pool-owned) */
} deployment_t;

static void add_error(cJSON *errors, const char *field, const char *code, const char *msg)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "field", field);
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(errors, e);
}

/* Parses RFC 3339 ("2026-11-27T10:00:00Z", "...+01:00", fractions allowed). */
static bool parse_rfc3339(const char *s, int64_t *unix_ms)
{
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6)
        return false;
    const char *p = s + consumed;
    int ms = 0;
    if (*p == '.') {
        int scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
            return false;
        offset_s = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *unix_ms = ((int64_t)timegm(&tm) - offset_s) * 1000 + ms;
    return true;
}

/* A time given as unix seconds (number) or RFC 3339 (string). */
static bool parse_time(const cJSON *item, int64_t *unix_ms)
{
    if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < 32503680000.0) {
        *unix_ms = (int64_t)(item->valuedouble * 1000);
        return true;
    }
    return cJSON_IsString(item) && parse_rfc3339(item->valuestring, unix_ms);
}

static bool int_in(const cJSON *item, long lo, long hi, long *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        item->valuedouble < lo || item->valuedouble > hi)
        return false;
    *out = (long)item->valuedouble;
    return true;
}

static bool is_http_url(const char *s)
{
    return strlen(s) <= MAX_URL_LEN &&
           (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) &&
           !strpbrk(s, " \r\n");
}

/* Validates one call object into m (strings pool-owned via req). Every
 * problem is appended to errors; returns true when there were none. */
static bool validate_call(ob_http_req_t *req, const cJSON *body, const deployment_t *dep,
                          ob_call_request_t *m, cJSON *errors)
{
    static const char *const known[] = {
        "phone_number", "message_reference", "call_parameters", "max_attempts", "retry_interval_s",
        "priority",     "not_before",        "expires_at",      "result_url",
    };
    int before = cJSON_GetArraySize(errors);
    const cJSON *item;
    ob_phone_t phone;
    ob_err_t err = {{0}};
    long v = 0;

    cJSON_ArrayForEach(item, body)
    {
        bool ok = false;
        for (size_t i = 0; i < OB_COUNTOF(known) && !ok; i++)
            ok = strcmp(item->string, known[i]) == 0;
        if (!ok)
            add_error(errors, item->string, "unknown_field",
                      ob_pool_printf(req->pool, "'%s' is not a call field", item->string));
    }

    item = cJSON_GetObjectItemCaseSensitive(body, "phone_number");
    if (!item)
        add_error(errors, "phone_number", "required", "phone_number is required");
    else if (!cJSON_IsString(item))
        add_error(errors, "phone_number", "invalid_type", "phone_number must be a string");
    else if (ob_phone_parse(item->valuestring, &phone, &err) != OB_OK)
        add_error(errors, "phone_number", "invalid_phone_number", err.msg);
    else {
        m->phone_number = ob_pool_strdup(req->pool, phone.e164);
        m->caller_id =
            phone.caller_id[0] ? ob_pool_strdup(req->pool, phone.caller_id) : dep->caller_id;
        m->post_dial = phone.post_dial[0] ? ob_pool_strdup(req->pool, phone.post_dial) : NULL;
    }

    item = cJSON_GetObjectItemCaseSensitive(body, "message_reference");
    if (item && (!cJSON_IsString(item) || strlen(item->valuestring) > MAX_REFERENCE_LEN))
        add_error(errors, "message_reference", "invalid_value",
                  "message_reference must be a string of at most 1024 bytes");
    else if (item)
        m->message_reference = ob_pool_strdup(req->pool, item->valuestring);

    item = cJSON_GetObjectItemCaseSensitive(body, "call_parameters");
    if (item && !cJSON_IsObject(item)) {
        add_error(errors, "call_parameters", "invalid_type", "call_parameters must be an object");
    } else if (item) {
        char *text = cJSON_PrintUnformatted(item);
        if (strlen(text) > MAX_PARAMETERS_LEN)
            add_error(errors, "call_parameters", "too_large",
                      "call_parameters must be at most 65536 bytes of JSON");
        else
            m->call_parameters = ob_pool_strdup(req->pool, text);
        cJSON_free(text);
    }

    m->max_attempts = dep->max_attempts;
    item = cJSON_GetObjectItemCaseSensitive(body, "max_attempts");
    if (item && !int_in(item, 1, 10, &v))
        add_error(errors, "max_attempts", "out_of_range",
                  "max_attempts must be an integer from 1 to 10");
    else if (item)
        m->max_attempts = v;

    m->retry_interval_s = dep->retry_interval_s;
    item = cJSON_GetObjectItemCaseSensitive(body, "retry_interval_s");
    if (item && !int_in(item, 60, 172800, &v))
        add_error(errors, "retry_interval_s", "out_of_range",
                  "retry_interval_s must be an integer from 60 to 172800 (seconds)");
    else if (item)
        m->retry_interval_s = v;

    item = cJSON_GetObjectItemCaseSensitive(body, "priority");
    if (item && !int_in(item, -1000, 1000, &v))
        add_error(errors, "priority", "out_of_range",
                  "priority must be an integer from -1000 to 1000");
    else if (item)
        m->priority = v;

    m->not_before_ms = m->accepted_at_ms;
    item = cJSON_GetObjectItemCaseSensitive(body, "not_before");
    if (item && !parse_time(item, &m->not_before_ms))
        add_error(errors, "not_before", "invalid_time",
                  "not_before must be unix seconds or an RFC 3339 time with offset");
    item = cJSON_GetObjectItemCaseSensitive(body, "expires_at");
    if (item && !parse_time(item, &m->expires_at_ms))
        add_error(errors, "expires_at", "invalid_time",
                  "expires_at must be unix seconds or an RFC 3339 time with offset");
    else if (item && m->expires_at_ms <= (m->not_before_ms > m->accepted_at_ms ? m->not_before_ms
                                                                               : m->accepted_at_ms))
        add_error(errors, "expires_at", "already_expired",
                  "expires_at must be later than now and than not_before");

    item = cJSON_GetObjectItemCaseSensitive(body, "result_url");
    if (item && (!cJSON_IsString(item) || !is_http_url(item->valuestring)))
        add_error(errors, "result_url", "invalid_url", "result_url must be an http or https URL");
    else if (item)
        m->result_url = ob_pool_strdup(req->pool, item->valuestring);

    return cJSON_GetArraySize(errors) == before;
}

/* Loads the deployment and checks it belongs to the account; on failure the
 * problem is set (unknown and foreign deployments look the same). */
static bool load_deployment(ob_http_req_t *req, PGconn *conn, const char *deployment_id,
                            const char *account_id, deployment_t *dep)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {deployment_id, account_id};

    if (!ob_uuid_valid(deployment_id)) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s", deployment_id);
        return false;
    }
    if (ob_pg_exec(conn,
                   "SELECT account_id, active, deleted_at IS NOT NULL, max_attempts,"
                   " retry_interval_s, caller_id FROM deployments"
                   " WHERE deployment_id = $1 AND account_id = $2",
                   2, params, &res, &err) != OB_OK) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id), "deployment lookup: %s", err.msg);
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "cannot read the deployment now");
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s", deployment_id);
        return false;
    }
    snprintf(dep->account_id, sizeof(dep->account_id), "%s", PQgetvalue(res, 0, 0));
    dep->active = PQgetvalue(res, 0, 1)[0] == 't';
    dep->deleted = PQgetvalue(res, 0, 2)[0] == 't';
    dep->max_attempts = atol(PQgetvalue(res, 0, 3));
    dep->retry_interval_s = atol(PQgetvalue(res, 0, 4));
    dep->caller_id =
        PQgetisnull(res, 0, 5) ? NULL : ob_pool_strdup(req->pool, PQgetvalue(res, 0, 5));
    PQclear(res);
    if (dep->deleted) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "deployment %s was deleted",
                        deployment_id);
        return false;
    }
    if (!dep->active) {
        ob_http_problem(req, 409, "deployment_inactive", NULL,
                        "deployment %s is not active; activate it before queueing calls",
                        deployment_id);
        return false;
    }
    return true;
}

static bool json_content_type(ob_http_req_t *req)
{
    const char *ct = ob_http_header(req, "Content-Type");
    return !ct || strncmp(ct, "application/json", 16) == 0;
}

static void queue_call(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, const char *account_id,
                       const char *deployment_id)
{
    deployment_t dep;
    memset(&dep, 0, sizeof(dep));
    ob_call_request_t m = {0};
    char call_id[OB_UUID_STRLEN + 1];
    ob_err_t err = {{0}};
    cJSON *body = NULL, *errors = NULL;

    if (!load_deployment(req, conn, deployment_id, account_id, &dep))
        return;
    if (!json_content_type(req)) {
        ob_http_problem(req, 415, "unsupported_media_type", NULL,
                        "send the call as application/json");
        return;
    }
    body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!body || !cJSON_IsObject(body)) {
        ob_http_problem(req, 400, "invalid_json", NULL,
                        "the body must be a JSON object such as {\"phone_number\": \"+15550100\"}");
        goto out;
    }
    ob_uuid_v7(call_id);
    m.call_id = call_id;
    m.deployment_id = (char *)deployment_id;
    m.account_id = (char *)account_id;
    m.request_id = req->req_id;
    m.accepted_at_ms = ob_now_ms();
    errors = cJSON_CreateArray();
    if (!validate_call(req, body, &dep, &m, errors)) {
        ob_http_problem(req, 422, "validation_failed", errors, "the call has %d invalid field(s)",
                        cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }
    char *msg = ob_pool_adopt(req->pool, ob_call_request_encode(&m));
    ob_rc_t rc = ob_producer_send_sync(ctx->producer, ctx->topic_requests, deployment_id, msg,
                                       strlen(msg), (int)ctx->cfg->ack_timeout_ms, &err);
    if (rc != OB_OK) {
        ob_metric_add(&ctx->metrics[M_KAFKA_FAILURES], 1);
        OB_LOG(OB_LOG_WARN, "api", OB_KV("req_id", req->req_id, "deployment_id", deployment_id),
               "call not accepted: %s", err.msg);
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, rc == OB_EAGAIN ? "overloaded" : "queue_unavailable", NULL,
                        "the call was not accepted (%s); retry later", err.msg);
        goto out;
    }
    ob_metric_add(&ctx->metrics[M_CALLS_QUEUED], 1);
    cJSON *ans = cJSON_CreateObject();
    char *self = ob_pool_printf(req->pool, "/api/v1/calls/%s", call_id);
    cJSON_AddStringToObject(ans, "call_id", call_id);
    cJSON_AddStringToObject(ans, "state", "queued");
    cJSON_AddStringToObject(ans, "deployment_id", deployment_id);
    cJSON_AddStringToObject(ans, "phone_number", m.phone_number);
    cJSON_AddItemToObject(ans, "links", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(ans, "links"), "self", self);
    ob_http_add_header(req, "Location", self);
    ob_http_reply_json(req, 202, ans);
    cJSON_Delete(ans);
    OB_LOG(OB_LOG_DEBUG, "api", OB_KV("call_id", call_id, "deployment_id", deployment_id),
           "call accepted");
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* The whole call view is assembled by Postgres in one query. */
static const char CALL_VIEW_SQL[] =
    "SELECT json_build_object("
    " 'call_id', c.call_id, 'deployment_id', c.deployment_id, 'state', c.state,"
    " 'status', c.status, 'result', c.result, 'reason', c.reason,"
    " 'phone_number', c.phone_number, 'caller_id', c.caller_id, 'post_dial', c.post_dial,"
    " 'message_reference', c.message_reference, 'call_parameters', c.call_parameters,"
    " 'priority', c.priority, 'max_attempts', c.max_attempts,"
    " 'retry_interval_s', c.retry_interval_s, 'attempts_made', c.attempts_made,"
    " 'accepted_at', c.accepted_at, 'not_before', c.not_before, 'expires_at', c.expires_at,"
    " 'next_attempt_at', CASE WHEN c.state = 'completed' THEN NULL ELSE c.next_attempt_at END,"
    " 'updated_at', c.updated_at, 'completed_at', c.completed_at,"
    " 'duration_s', (SELECT round(sum(a.talk_ms) / 1000.0, 3)::float8 FROM attempts a"
    "   WHERE a.call_id = c.call_id),"
    " 'attempts', coalesce((SELECT json_agg(json_build_object("
    "   'attempt', a.attempt, 'state', a.state, 'result', a.result, 'reason', a.reason,"
    "   'released_at', a.released_at, 'dialing_at', a.dialing_at,"
    "   'connected_at', a.connected_at, 'ended_at', a.ended_at,"
    "   'ring_ms', a.ring_ms, 'talk_ms', a.talk_ms) ORDER BY a.attempt)"
    "   FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),"
    " 'events', coalesce((SELECT json_agg(json_build_object("
    "   'id', e.event_id, 'type', e.type, 'time', e.occurred_at, 'data', e.data)"
    "   ORDER BY e.occurred_at, e.event_id)"
    "   FROM call_events e WHERE e.call_id = c.call_id), '[]'::json)"
    ")::text FROM calls c WHERE c.call_id = $1 AND c.account_id = $2";

static void get_call(ob_http_req_t *req, PGconn *conn, const char *account_id, const char *call_id)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {call_id, account_id};

    if (!ob_uuid_valid(call_id)) {
        ob_http_problem(req, 404, "call_not_found", NULL, "no call %s", call_id);
        return;
    }
    if (ob_pg_exec(conn, CALL_VIEW_SQL, 2, params, &res, &err) != OB_OK) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id), "call lookup: %s", err.msg);
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "cannot read the call now");
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        /* A call accepted a moment ago may still be on its way to the store. */
        ob_http_problem(req, 404, "call_not_found", NULL,
                        "no call %s (a call accepted in the last seconds may not be recorded yet)",
                        call_id);
        return;
    }
    char *json = ob_pool_strdup(req->pool, PQgetvalue(res, 0, 0));
    PQclear(res);
    ob_http_reply(req, 200, "application/json", json, strlen(json));
}

/* Splits "/a/b/c" into at most max segments (pool-owned); returns the count,
 * or -1 if there are more. */
static int split_path(ob_http_req_t *req, char **seg, int max)
{
    char *copy = ob_pool_strdup(req->pool, req->path);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        seg[n++] = tok;
    }
    return n;
}

static void count_status(ingest_ctx_t *ctx, unsigned status)
{
    int m = status < 400 ? M_HTTP_2XX : status < 500 ? M_HTTP_4XX : M_HTTP_5XX;
    ob_metric_add(&ctx->metrics[m], 1);
}

static void method_not_allowed(ob_http_req_t *req, const char *allow)
{
    ob_http_add_header(req, "Allow", allow);
    ob_http_problem(req, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s",
                    req->method, allow);
}

void ingest_api_handle(void *arg, ob_http_req_t *req)
{
    ingest_ctx_t *ctx = arg;
    char *seg[8];
    char account_id[37];
    PGconn *conn = NULL;
    ob_err_t err = {{0}};
    int n = split_path(req, seg, (int)OB_COUNTOF(seg));
    bool is_call = n == 4 && strcmp(seg[2], "calls") == 0;
    bool is_queue = n == 5 && strcmp(seg[2], "deployments") == 0 && strcmp(seg[4], "calls") == 0;

    if (n < 2 || strcmp(seg[0], "api") != 0 || strcmp(seg[1], "v1") != 0 ||
        !(is_call || is_queue)) {
        ob_http_problem(req, 404, "not_found", NULL, "no route for %s %s", req->method, req->path);
        goto out;
    }
    if (is_call && strcmp(req->method, "GET") != 0) {
        method_not_allowed(req, "GET");
        goto out;
    }
    if (is_queue && strcmp(req->method, "POST") != 0) {
        method_not_allowed(req, "POST");
        goto out;
    }
    if (ob_pg_pool_get(ctx->pg, 2000, &conn, &err) != OB_OK) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "%s", err.msg);
        goto out;
    }
    if (!ingest_auth(ctx, req, conn, account_id))
        goto out;
    if (is_call)
        get_call(req, conn, account_id, seg[3]);
    else
        queue_call(ctx, req, conn, account_id, seg[3]);
out:
    if (conn)
        ob_pg_pool_put(ctx->pg, conn);
    count_status(ctx, req->status);
}
