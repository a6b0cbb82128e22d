/*
 * The native JSON API under /api/v1: the route table, authentication and the
 * helpers every handler shares. Handlers live in ingest_calls.c (one call)
 * and ingest_queue.c (a deployment's queue).
 */
#include "ingest.h"
#include "ingest_cache.h"
#include "ingest_limits.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ingest_add_error(cJSON *errors, const char *field, const char *code, const char *msg)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "field", field);
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(errors, e);
}

void ingest_database_problem(ob_http_req_t *req, const ob_err_t *err)
{
    OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id), "database: %s", err->msg);
    ob_http_add_header(req, "Retry-After", "1");
    ob_http_problem(req, 503, "database_unavailable", NULL,
                    "the database cannot be reached right now; retry shortly");
}

bool ingest_load_deployment(ingest_call_t *c, const char *deployment_id, bool for_queueing,
                            deployment_t *dep)
{
    ob_http_req_t *req = c->req;
    PGconn *conn = c->conn;
    const char *account_id = c->account_id;
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {deployment_id, account_id};

    if (!ob_uuid_valid(deployment_id)) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s", deployment_id);
        return false;
    }
    char cache_key[80];
    snprintf(cache_key, sizeof(cache_key), "%s|%s", deployment_id, account_id);
    if (!ingest_cache_get(c->ctx->deps, cache_key, dep)) {
        if (ob_pg_exec(conn,
                       "SELECT account_id, active, deleted_at IS NOT NULL, max_attempts,"
                       " retry_interval_s, coalesce(caller_id, ''), default_region FROM deployments"
                       " WHERE deployment_id = $1 AND account_id = $2",
                       2, params, &res, &err) != OB_OK) {
            ingest_database_problem(req, &err);
            return false;
        }
        if (PQntuples(res) != 1) {
            PQclear(res);
            ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s",
                            deployment_id);
            return false;
        }
        memset(dep, 0, sizeof(*dep));
        snprintf(dep->account_id, sizeof(dep->account_id), "%s", PQgetvalue(res, 0, 0));
        dep->active = PQgetvalue(res, 0, 1)[0] == 't';
        dep->deleted = PQgetvalue(res, 0, 2)[0] == 't';
        dep->max_attempts = atol(PQgetvalue(res, 0, 3));
        dep->retry_interval_s = atol(PQgetvalue(res, 0, 4));
        snprintf(dep->caller_id, sizeof(dep->caller_id), "%s", PQgetvalue(res, 0, 5));
        snprintf(dep->region, sizeof(dep->region), "%s", PQgetvalue(res, 0, 6));
        PQclear(res);
        ingest_cache_put(c->ctx->deps, cache_key, dep);
    }
    if (dep->deleted) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "deployment %s was deleted",
                        deployment_id);
        return false;
    }
    if (for_queueing && !dep->active) {
        ob_http_problem(req, 409, "deployment_inactive", NULL,
                        "deployment %s is not active; activate it before queueing calls",
                        deployment_id);
        return false;
    }
    return true;
}

void ingest_forget_deployment(ingest_call_t *c, const char *deployment_id)
{
    char cache_key[80];
    snprintf(cache_key, sizeof(cache_key), "%s|%s", deployment_id, c->account_id);
    ingest_cache_drop(c->ctx->deps, cache_key);
}

void ingest_reply_owned(ingest_call_t *c, const char *sql, const char *id, unsigned status,
                        const char *what, const char *hint)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {id, c->account_id};
    if (ob_uuid_valid(id) && ob_pg_exec(c->conn, sql, 2, params, &res, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    if (!res || PQntuples(res) == 0) {
        PQclear(res);
        ob_http_problem(c->req, 404, ob_pool_printf(c->req->pool, "%s_not_found", what), NULL,
                        "no %s %s%s", what, id, hint ? hint : "");
        return;
    }
    char *body = ob_pool_strdup(c->req->pool, PQgetvalue(res, 0, 0));
    PQclear(res);
    ob_http_reply(c->req, status, "application/json", body, strlen(body));
}

void ingest_page_query(ob_http_req_t *req, long default_limit, const char **cursor, char limit[16],
                       cJSON *errors)
{
    long n = default_limit;
    const char *v = ob_http_query(req, "limit");
    *cursor = ob_http_query(req, "cursor");
    if (*cursor && !ob_uuid_valid(*cursor))
        ingest_add_error(errors, "cursor", "invalid_cursor",
                         "cursor must be the next_cursor of a previous page");
    if (v && (sscanf(v, "%ld", &n) != 1 || n < 1 || n > 1000))
        ingest_add_error(errors, "limit", "out_of_range", "limit must be from 1 to 1000");
    snprintf(limit, 16, "%ld", n);
}

bool ingest_require_json(ob_http_req_t *req)
{
    const char *ct = ob_http_header(req, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16) == 0)
        return true;
    ob_http_problem(req, 415, "unsupported_media_type", NULL,
                    "send the body as application/json (got %.64s)", ct);
    return false;
}

/* True if text[0..len) holds a \u0000 escape inside a string. */
static bool has_nul_escape(const char *text, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') {
            in_string = !in_string;
        } else if (in_string && text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character */
        }
    }
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True if an object in item (at any depth) names a member twice. */
static bool has_duplicate_member(const cJSON *item)
{
    const cJSON *child;
    int n = cJSON_GetArraySize(item);
    const char **names =
        cJSON_IsObject(item) && n > 1 ? ob_xmalloc((size_t)n * sizeof(*names)) : NULL;
    bool dup = false;
    int k = 0;
    cJSON_ArrayForEach(child, item)
    {
        if (names)
            names[k++] = child->string;
        dup = dup || has_duplicate_member(child);
    }
    if (names && !dup) {
        qsort(names, (size_t)k, sizeof(*names), by_name);
        for (int i = 1; i < k && !dup; i++)
            dup = strcmp(names[i - 1], names[i]) == 0;
    }
    free(names);
    return dup;
}

cJSON *ingest_json_parse(const char *text, size_t len, const char **end, const char **why)
{
    const char *stop = NULL;
    cJSON *v =
        end ? cJSON_ParseWithLengthOpts(text, len, &stop, 0) : cJSON_ParseWithLength(text, len);
    size_t used = v && end ? (size_t)(stop - text) : len;
    if (end)
        *end = stop;
    if (!v)
        *why = "the body is not valid JSON";
    else if (!ob_utf8_valid(text, used))
        *why = "the body is not UTF-8 text (JSON must be UTF-8)";
    else if (has_nul_escape(text, used))
        *why = "a JSON string holds \\u0000, which no field accepts";
    else if (has_duplicate_member(v))
        *why = "a JSON object names the same member twice";
    else
        return v;
    cJSON_Delete(v);
    return NULL;
}

const char *ingest_bad_text_field(ob_pool_t *pool, const cJSON *object)
{
    const cJSON *child;
    cJSON_ArrayForEach(child, object)
    {
        const char *name = child->string ? child->string : "";
        if (!ob_utf8_valid(name, strlen(name)))
            return ob_pool_strdup(pool, "(a member name)");
        if (cJSON_IsString(child) && !ob_utf8_valid(child->valuestring, strlen(child->valuestring)))
            return name;
        if (cJSON_IsObject(child) || cJSON_IsArray(child)) {
            const char *inner = ingest_bad_text_field(pool, child);
            if (inner)
                return ob_pool_printf(pool, "%s.%s", name, inner);
        }
    }
    return NULL;
}

/* Who may call a route. */
enum { ACCOUNT, ADMIN, PUBLIC };

typedef struct {
    const char *method;    /* HTTP method */
    const char *pattern;   /* "/api/v1/calls/{}:cancel"; {} captures a segment */
    ingest_route_fn fn;    /* handler */
    int auth;              /* ACCOUNT key, ADMIN key, or PUBLIC (no key) */
    ingest_route_fn begin; /* streaming routes: runs when the headers arrive */
    int keyed;             /* KEYED: the router honours an Idempotency-Key around fn */
} route_t;

/* A route whose handler does not claim an Idempotency-Key itself (as the
 * queueing routes do) but changes something: the router claims the key with
 * the body's hash, and the handler runs once per key. */
enum { UNKEYED, KEYED };

static const route_t routes[] = {
    {"GET", "/api/v1/openapi.json", ingest_openapi, PUBLIC, NULL, UNKEYED},
    {"GET", "/", ingest_console_index, PUBLIC, NULL, UNKEYED},
    {"GET", "/console/{}", ingest_console_file, PUBLIC, NULL, UNKEYED},
    {"HEAD", "/", ingest_console_index, PUBLIC, NULL, UNKEYED},
    {"HEAD", "/console/{}", ingest_console_file, PUBLIC, NULL, UNKEYED},
    {"POST", "/api/v1/accounts", ingest_create_account, ADMIN, NULL, UNKEYED},
    {"POST", "/api/v1/api-keys", ingest_create_key, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/api-keys", ingest_list_keys, ACCOUNT, NULL, UNKEYED},
    {"DELETE", "/api/v1/api-keys/{}", ingest_revoke_key, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/applications", ingest_create_application, ACCOUNT, NULL, KEYED},
    {"GET", "/api/v1/applications", ingest_list_applications, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/applications/{}", ingest_get_application, ACCOUNT, NULL, UNKEYED},
    {"PATCH", "/api/v1/applications/{}", ingest_update_application, ACCOUNT, NULL, KEYED},
    {"DELETE", "/api/v1/applications/{}", ingest_delete_application, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/applications/{}/deployments", ingest_create_deployment, ACCOUNT, NULL, KEYED},
    {"GET", "/api/v1/applications/{}/deployments", ingest_list_deployments, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/deployments", ingest_list_deployments, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/deployments/{}", ingest_get_deployment, ACCOUNT, NULL, UNKEYED},
    {"PATCH", "/api/v1/deployments/{}", ingest_update_deployment, ACCOUNT, NULL, KEYED},
    {"DELETE", "/api/v1/deployments/{}", ingest_delete_deployment, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/deployments/{}/calls", ingest_queue_call, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/deployments/{}/calls", ingest_list_calls, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/deployments/{}/summary", ingest_queue_summary, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/deployments/{}/deliveries", ingest_list_deployment_deliveries, ACCOUNT, NULL,
     UNKEYED},
    {"POST", "/api/v1/deployments/{}:cancel", ingest_cancel_queue, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/deployments/{}:pause", ingest_pause_queue, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/deployments/{}:resume", ingest_resume_queue, ACCOUNT, NULL, KEYED},
    {"POST", "/api/v1/deployments/{}/uploads", ingest_upload_finish, ACCOUNT, ingest_upload_begin,
     UNKEYED},
    {"POST", "/api/v1/deployments/{}/calls:batch", ingest_batch_finish, ACCOUNT, ingest_batch_begin,
     UNKEYED},
    {"GET", "/api/v1/uploads/{}", ingest_get_upload, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/uploads/{}/report.csv", ingest_get_upload_report, ACCOUNT, NULL, UNKEYED},
    {"POST", "/api/apps/{}/{}/queue", ingest_plum_queue, ACCOUNT, NULL, UNKEYED},
    {"POST", "/api/apps/{}/{}/bulk_queue", ingest_upload_finish, ACCOUNT, ingest_plum_bulk_begin,
     UNKEYED},
    {"DELETE", "/api/apps/{}/{}/cancel", ingest_plum_cancel, ACCOUNT, NULL, KEYED},
    {"GET", "/api/outbound/{}", ingest_plum_get_call, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/calls/{}", ingest_get_call, ACCOUNT, NULL, UNKEYED},
    {"GET", "/api/v1/calls/{}/deliveries", ingest_list_call_deliveries, ACCOUNT, NULL, UNKEYED},
    {"POST", "/api/v1/calls/{}:cancel", ingest_cancel_call, ACCOUNT, NULL, KEYED},
};

/* Matches path against pattern segment by segment; a "{}" segment (or the
 * "{}" before a ":verb" suffix) captures into params (pool-owned). */
static bool match(ob_http_req_t *req, const char *pattern, const char **params)
{
    const char *p = pattern, *u = req->path;
    int np = 0;
    while (*p && *u) {
        if (p[0] == '{' && p[1] == '}') {
            const char *suffix = p + 2; /* "" or ":verb" up to the next '/' */
            size_t slen = strcspn(suffix, "/");
            size_t ulen = strcspn(u, "/");
            if (ulen <= slen || strncmp(u + ulen - slen, suffix, slen) != 0 || np == 2)
                return false;
            size_t vlen = ulen - slen;
            /* "{id}:verb" must not match a plain "{}" at the end of a path,
             * where a verb may follow; inside one ("{}/deliveries") a ':' is
             * part of an id, which the handler refuses as unknown. */
            if (slen == 0 && suffix[0] == '\0' && memchr(u, ':', vlen))
                return false;
            params[np++] = ob_pool_strndup(req->pool, u, vlen);
            p = suffix + slen;
            u += ulen;
            continue;
        }
        if (*p != *u)
            return false;
        p++;
        u++;
    }
    return *p == '\0' && (*u == '\0' || (u[0] == '/' && u[1] == '\0'));
}

/* Finds the route for the request; sets allow to the methods the path
 * accepts when only the method is wrong. */
static const route_t *find_route(ob_http_req_t *req, const char **params, char *allow, size_t len)
{
    const route_t *found = NULL;
    allow[0] = '\0';
    for (size_t i = 0; i < OB_COUNTOF(routes) && !found; i++) {
        const char *p[2] = {NULL, NULL};
        if (!match(req, routes[i].pattern, p))
            continue;
        if (strcmp(routes[i].method, req->method) == 0) {
            found = &routes[i];
            req->route = found->pattern; /* the metrics label, never the raw path */
            params[0] = p[0];
            params[1] = p[1];
        } else {
            size_t o = strlen(allow);
            snprintf(allow + o, len - o, "%s%s", o ? ", " : "", routes[i].method);
        }
    }
    return found;
}

/* The per-key limits; false with a 429 problem set when one is hit. */
static bool admit(ingest_ctx_t *ctx, ob_http_req_t *req, const char *key_hash)
{
    int retry = 1;
    char after[16];
    ingest_limit_t l = ingest_limits_admit(ctx->limits, key_hash, &retry);
    if (l == INGEST_LIMIT_OK)
        return true;
    snprintf(after, sizeof(after), "%d", retry);
    ob_http_add_header(req, "Retry-After", after);
    if (l == INGEST_LIMIT_RATE)
        ob_http_problem(req, 429, "rate_limited", NULL,
                        "this API key sent more than %.0f requests per second; slow down and"
                        " retry after %d s",
                        ctx->cfg->key_rate, retry);
    else
        ob_http_problem(req, 429, "too_many_concurrent_requests", NULL,
                        "this API key has %lld requests in progress, the most allowed; wait for"
                        " answers before sending more",
                        ctx->cfg->key_concurrency);
    return false;
}

bool ingest_check_pending(ingest_call_t *c, const char *deployment_id, long adding)
{
    ingest_limits_t *l = c->ctx->limits;
    long n = ingest_limits_pending(l, deployment_id, 1000);
    if (n < 0) {
        PGresult *res = NULL;
        ob_err_t err = {{0}};
        const char *params[] = {deployment_id};
        if (ob_pg_exec(c->conn,
                       "SELECT count(*) FROM calls WHERE deployment_id = $1"
                       " AND state <> 'completed'",
                       1, params, &res, &err) != OB_OK) {
            ingest_database_problem(c->req, &err);
            return false;
        }
        n = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        ingest_limits_set_pending(l, deployment_id, n);
    }
    if (n + adding <= ingest_limits_max_pending(l))
        return true;
    ob_http_add_header(c->req, "Retry-After", "60");
    ob_http_problem(c->req, 429, "deployment_pending_limit", NULL,
                    "deployment %s already has %ld pending calls, the most allowed (%ld); wait"
                    " for some to complete",
                    deployment_id, n, ingest_limits_max_pending(l));
    return false;
}

/* An admission slot a streamed request holds until it is over. */
typedef struct {
    ingest_ctx_t *ctx;
    char key_hash[65];
} held_slot_t;

static void release_slot(void *arg, ob_http_req_t *req)
{
    held_slot_t *h = arg;
    ingest_limits_release(h->ctx->limits, h->key_hash);
    ingest_idem_finish(h->ctx, req);
}

void ingest_stream(void *arg, ob_http_req_t *req)
{
    ingest_ctx_t *ctx = arg;
    char allow[64], account_id[37];
    ob_err_t err = {{0}};
    ingest_call_t call = {.ctx = ctx, .req = req, .account_id = account_id};
    const route_t *r = find_route(req, call.param, allow, sizeof(allow));
    if (!r || !r->begin)
        return;
    /* From here on the body is never buffered: it streams or is dropped. */
    req->on_body = ob_http_discard_body;
    if (ob_pg_pool_get(ctx->pg, 2000, &call.conn, &err) != OB_OK) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "%s", err.msg);
        return;
    }
    char key_hash[65] = "";
    if (ingest_auth(ctx, req, call.conn, account_id, key_hash) && admit(ctx, req, key_hash)) {
        /* A stream holds its key's slot until it is over: a key cannot open
         * more uploads or batches at once than OB_INGEST_KEY_CONCURRENCY. */
        held_slot_t *h = ob_pool_alloc(req->pool, sizeof(*h));
        h->ctx = ctx;
        memcpy(h->key_hash, key_hash, sizeof(h->key_hash));
        req->on_finish = release_slot;
        req->finish_arg = h;
        r->begin(&call);
    }
    ob_pg_pool_put(ctx->pg, call.conn);
}

/* Runs a route's handler; a KEYED one once per Idempotency-Key: a retry of
 * an answered request gets the first answer again (Idempotent-Replayed), a
 * retry while the first is in progress a 409 with Retry-After. So a try
 * that its client gave up on and that runs late (its ingest's threads were
 * busy) cannot undo what a later request did: pause, resume, pause again. */
static void run_keyed(const route_t *r, ingest_call_t *c)
{
    char hash[65];
    if (r->keyed != KEYED) {
        r->fn(c);
        return;
    }
    ingest_sha256_hex(c->req->body ? c->req->body : "", c->req->body_len, hash);
    ingest_idem_t idem = ingest_idem_claim(c, hash, NULL);
    if (idem == INGEST_IDEM_DONE)
        return;
    r->fn(c);
    if (idem == INGEST_IDEM_CLAIMED)
        ingest_idem_store(c);
}

void ingest_api_handle(void *arg, ob_http_req_t *req)
{
    ingest_ctx_t *ctx = arg;
    const route_t *found = NULL;
    char allow[64] = "", key_hash[65] = "";
    char account_id[37];
    ob_err_t err = {{0}};
    ingest_call_t call = {.ctx = ctx, .req = req, .account_id = account_id};

    found = find_route(req, call.param, allow, sizeof(allow));
    if (!found && allow[0]) {
        ob_http_add_header(req, "Allow", allow);
        ob_http_problem(req, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s",
                        req->method, allow);
        goto out;
    }
    if (!found) {
        ob_http_problem(req, 404, "not_found", NULL, "no route for %s %s", req->method, req->path);
        goto out;
    }
    if (req->on_body) {
        /* A streamed request: authenticated when it began; answer it. */
        if (ob_pg_pool_get(ctx->pg, 5000, &call.conn, &err) != OB_OK) {
            ob_http_add_header(req, "Retry-After", "1");
            ob_http_problem(req, 503, "database_unavailable", NULL, "%s", err.msg);
            goto out;
        }
        found->fn(&call);
        goto out;
    }
    if (found->auth == PUBLIC) {
        found->fn(&call);
        goto out;
    }
    if (ob_pg_pool_get(ctx->pg, 2000, &call.conn, &err) != OB_OK) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "%s", err.msg);
        goto out;
    }
    if (found->auth == ADMIN) {
        if (ingest_is_admin(ctx, req))
            found->fn(&call);
        else
            ob_http_problem(req, 403, "admin_key_required", NULL,
                            "this operation needs the admin key (OB_INGEST_ADMIN_KEY)");
    } else if (ingest_auth(ctx, req, call.conn, account_id, key_hash) &&
               admit(ctx, req, key_hash)) {
        run_keyed(found, &call);
        ingest_limits_release(ctx->limits, key_hash);
    }
out:
    /* Plum's routes answer errors as Plum does, whoever set them. */
    if ((found || allow[0]) && ingest_plum_path(req->path))
        ingest_plum_answer(req);
    if (call.conn)
        ob_pg_pool_put(ctx->pg, call.conn);
    if (!req->on_body)
        ingest_idem_finish(ctx, req);
}
