/*
 * The router: the route table, matching, authentication, admission under
 * the per-key limits, and dispatch (a KEYED route once per Idempotency-Key).
 * It only routes: handlers live in their modules (one header each), reply
 * helpers in ingest_reply.c, SQL in ingest_store.c.
 */
#include "ingest_api.h"
#include "ingest_accounts.h"
#include "ingest_auth.h"
#include "ingest_batch.h"
#include "ingest_calls.h"
#include "ingest_console.h"
#include "ingest_deliveries.h"
#include "ingest_idempotency.h"
#include "ingest_limits.h"
#include "ingest_openapi.h"
#include "ingest_plum.h"
#include "ingest_preview.h"
#include "ingest_queue.h"
#include "ingest_resources.h"
#include "ingest_uploads.h"

#include <stdio.h>
#include <string.h>

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
    {"POST", "/api/v1/app:preview", ingest_preview, ACCOUNT, NULL, UNKEYED},
    {"POST", "/api/apps/{}/{}/queue", ingest_plum_queue, ACCOUNT, NULL, UNKEYED},
    {"POST", "/api/apps/{}/{}/bulk_queue", ingest_upload_finish, ACCOUNT, ingest_upload_plum_begin,
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
    if (r->keyed != KEYED || !ob_http_header(c->req, "Idempotency-Key")) {
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
