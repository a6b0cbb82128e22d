/*
 * Idempotency keys (the Idempotency-Key header, as in Stripe's API and the
 * IETF draft): the first request with a key is handled and its answer kept;
 * a retry with the same key and body gets that answer again, flagged with
 * Idempotent-Replayed: true, and queues nothing. The same key on another
 * route or with another body is a client error (409), and a retry that
 * arrives while the first is still in progress is told to wait (409 with
 * Retry-After). Answers of 5xx are not kept: the key may be used again, and
 * because call ids under a key are derived from it, a call that Kafka did
 * take despite the 5xx is not queued twice.
 *
 * A claim is a lease (OB_INGEST_IDEMPOTENCY_LEASE_MS): this ingest renews
 * the claims of its requests in progress once a second (ingest_idem_renew),
 * so a request that takes minutes keeps its key, while the key of a request
 * whose ingest died is taken over by the first retry once the lease ran
 * out. The retry derives the same call ids, so the rows the dead request
 * had queued are not queued again (the scheduler records by call id).
 */
#include "ingest_idempotency.h"
#include "ingest_reply.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_KEY_LEN 255

void ingest_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A claim this ingest holds for a request in progress. */
typedef struct claim {
    struct claim *next;        /* list link */
    const ob_http_req_t *req;  /* the request holding it (identity only) */
    char account_id[37];       /* the key's account */
    char key[MAX_KEY_LEN + 1]; /* the Idempotency-Key */
} claim_t;

struct ingest_claims {
    pthread_mutex_t mu; /* guards head */
    claim_t *head;      /* claims held, newest first */
    long long lease_ms; /* how long a claim lasts unrenewed */
};

ingest_claims_t *ingest_claims_new(long long lease_ms)
{
    ingest_claims_t *cl = ob_xcalloc(1, sizeof(*cl));
    pthread_mutex_init(&cl->mu, NULL);
    cl->lease_ms = lease_ms;
    return cl;
}

void ingest_claims_free(ingest_claims_t *cl)
{
    if (!cl)
        return;
    while (cl->head) {
        claim_t *next = cl->head->next;
        free(cl->head);
        cl->head = next;
    }
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

static void hold(ingest_claims_t *cl, const ob_http_req_t *req, const char *account_id,
                 const char *key)
{
    claim_t *h = ob_xcalloc(1, sizeof(*h));
    h->req = req;
    snprintf(h->account_id, sizeof(h->account_id), "%s", account_id);
    snprintf(h->key, sizeof(h->key), "%s", key);
    pthread_mutex_lock(&cl->mu);
    h->next = cl->head;
    cl->head = h;
    pthread_mutex_unlock(&cl->mu);
}

/* Stops renewing req's claim; true when it held one. */
static bool let_go(ingest_claims_t *cl, const ob_http_req_t *req)
{
    bool held = false;
    pthread_mutex_lock(&cl->mu);
    for (claim_t **p = &cl->head; *p; p = &(*p)->next) {
        if ((*p)->req == req) {
            claim_t *h = *p;
            *p = h->next;
            free(h);
            held = true;
            break;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return held;
}

/* Appends s to an array literal's text, quoted for array_in. */
static void array_item(ob_pool_t *pool, char **text, const char *s)
{
    size_t n = strlen(*text), len = strlen(s);
    char *out = ob_pool_alloc(pool, n + 2 * len + 4);
    char *o = out + n;
    memcpy(out, *text, n);
    if (n > 1)
        *o++ = ',';
    *o++ = '"';
    for (const char *i = s; *i; i++) {
        if (*i == '"' || *i == '\\')
            *o++ = '\\';
        *o++ = *i;
    }
    *o++ = '"';
    *o = '\0';
    *text = out;
}

void ingest_idem_renew(ingest_ctx_t *ctx)
{
    ingest_claims_t *cl = ctx->claims;
    ob_pool_t *pool = ob_pool_new();
    char *accounts = ob_pool_strdup(pool, "{"), *keys = ob_pool_strdup(pool, "{");
    char lease[24];
    PGconn *conn = NULL;
    ob_err_t err = {{0}};
    size_t n = 0;
    pthread_mutex_lock(&cl->mu);
    for (const claim_t *h = cl->head; h; h = h->next, n++) {
        array_item(pool, &accounts, h->account_id);
        array_item(pool, &keys, h->key);
    }
    pthread_mutex_unlock(&cl->mu);
    if (n == 0)
        goto out;
    accounts = ob_pool_printf(pool, "%s}", accounts);
    keys = ob_pool_printf(pool, "%s}", keys);
    snprintf(lease, sizeof(lease), "%lld", cl->lease_ms);
    const char *params[] = {accounts, keys, lease};
    if (ob_pg_pool_get(ctx->pg, 1000, &conn, &err) != OB_OK ||
        ob_pg_exec(conn,
                   "UPDATE idempotency_keys k SET claimed_until = now() + $3 * interval '1 ms'"
                   " FROM unnest($1::uuid[], $2::text[]) AS h(account_id, key)"
                   " WHERE k.account_id = h.account_id AND k.key = h.key"
                   " AND k.status_code IS NULL",
                   3, params, NULL, &err) != OB_OK)
        OB_WARN("api", "%zu Idempotency-Key claims not renewed: %s", n, err.msg);
out:
    if (conn)
        ob_pg_pool_put(ctx->pg, conn);
    ob_pool_free(pool);
}

static void in_progress(ob_http_req_t *req, const char *left_s)
{
    long s = strtol(left_s, NULL, 10);
    ob_http_add_header(req, "Retry-After", ob_pool_printf(req->pool, "%ld", s < 1 ? 1 : s));
    ob_http_problem(req, 409, "idempotency_key_in_progress", NULL,
                    "the first request with this Idempotency-Key is still being handled;"
                    " retry after %ld s (a request whose server died is taken over by then)",
                    s < 1 ? 1 : s);
}

ingest_idem_t ingest_idem_claim(ingest_call_t *c, const char *body_hash, int64_t *created_ms)
{
    ob_http_req_t *req = c->req;
    const char *key = ob_http_header(req, "Idempotency-Key");
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    if (!key)
        return INGEST_IDEM_NONE;
    if (!key[0] || strlen(key) > MAX_KEY_LEN) {
        ob_http_problem(req, 422, "invalid_idempotency_key", NULL,
                        "Idempotency-Key must be 1 to %d characters", MAX_KEY_LEN);
        return INGEST_IDEM_DONE;
    }
    char *route = ob_pool_printf(req->pool, "%s %s", req->method, req->path);
    char *lease = ob_pool_printf(req->pool, "%lld", c->ctx->claims->lease_ms);
    const char *params[] = {c->account_id, key, route, body_hash, lease};
    /* Claimable: never used, released after a 5xx/429 (status 0), or held
     * by a request whose lease ran out (its ingest died). */
    if (ob_pg_exec(
            c->conn,
            "WITH ins AS (INSERT INTO idempotency_keys (account_id, key, route, request_hash,"
            " claimed_until) VALUES ($1, $2, $3, $4, now() + $5 * interval '1 ms')"
            " ON CONFLICT (account_id, key) DO UPDATE"
            " SET status_code = NULL, claimed_until = EXCLUDED.claimed_until"
            " WHERE (idempotency_keys.status_code = 0 OR (idempotency_keys.status_code IS NULL"
            " AND coalesce(idempotency_keys.claimed_until,"
            " idempotency_keys.created_at + interval '30 s') < now()))"
            " AND idempotency_keys.route = EXCLUDED.route"
            " AND idempotency_keys.request_hash IS NOT DISTINCT FROM EXCLUDED.request_hash"
            " RETURNING true AS claimed, route, request_hash, status_code, response,"
            " created_at, 0::float8 AS left_s)"
            " SELECT claimed, route, request_hash, status_code, response,"
            " (extract(epoch FROM created_at) * 1000)::bigint, left_s FROM ins"
            " UNION ALL SELECT false, route, request_hash, status_code, response,"
            " (extract(epoch FROM created_at) * 1000)::bigint,"
            " ceil(extract(epoch FROM coalesce(claimed_until, created_at + interval '30 s')"
            " - now()))::float8 FROM idempotency_keys"
            " WHERE account_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)",
            5, params, &res, &err) != OB_OK ||
        PQntuples(res) != 1) {
        if (err.msg[0])
            ingest_database_problem(req, &err);
        else
            in_progress(req, "1"); /* claimed by another request this very moment */
        PQclear(res);
        return INGEST_IDEM_DONE;
    }
    bool claimed = PQgetvalue(res, 0, 0)[0] == 't';
    if (created_ms)
        *created_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    ingest_idem_t out = INGEST_IDEM_DONE;
    if (claimed) {
        out = INGEST_IDEM_CLAIMED;
        hold(c->ctx->claims, req, c->account_id, key);
    } else if (strcmp(PQgetvalue(res, 0, 1), route) != 0 ||
               (body_hash && !PQgetisnull(res, 0, 2) &&
                strcmp(PQgetvalue(res, 0, 2), body_hash) != 0)) {
        ob_http_problem(req, 409, "idempotency_key_reused", NULL,
                        "this Idempotency-Key was used for a different request (%s); use a new key"
                        " for a new request",
                        PQgetvalue(res, 0, 1));
    } else if (PQgetisnull(res, 0, 3)) {
        in_progress(req, PQgetvalue(res, 0, 6));
    } else {
        char *body = ob_pool_strdup(req->pool, PQgetvalue(res, 0, 4));
        ob_http_reply(req, (unsigned)atoi(PQgetvalue(res, 0, 3)), "application/json", body,
                      strlen(body));
        if (body[0] == '{' && strstr(body, "\"type\":\"https://outbound.dev/problems/"))
            req->content_type = "application/problem+json";
        ob_http_add_header(req, "Idempotent-Replayed", "true");
    }
    PQclear(res);
    return out;
}

/* An answer that tells the client to retry (Retry-After: e.g. 409
 * call_not_recorded) is not the request's answer yet. */
static bool asks_retry(const ob_http_req_t *req)
{
    for (int i = 0; i < req->nhdr; i++)
        if (strcasecmp(req->hdr_name[i], "Retry-After") == 0)
            return true;
    return false;
}

void ingest_idem_store(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    const char *key = ob_http_header(req, "Idempotency-Key");
    ob_err_t err = {{0}};
    char status[8];
    if (!key || !let_go(c->ctx->claims, req))
        return;
    if (!c->conn && ob_pg_pool_get(c->ctx->pg, 5000, &c->conn, &err) != OB_OK) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id),
               "the answer to an idempotent request was not kept: %s", err.msg);
        return;
    }
    snprintf(status, sizeof(status), "%u", req->status);
    char *body = ob_pool_strndup(req->pool, req->resp_body, req->resp_len);
    const char *params[] = {c->account_id, key, status, body};
    /* A 5xx, 429 or any answer with Retry-After leaves the key claimable
     * again (status 0) with its first time, so a retry derives the same call
     * ids and the scheduler, which records calls idempotently, never sees a
     * call twice. */
    bool retryable = req->status >= 500 || req->status == 429 || asks_retry(req);
    ob_rc_t rc = retryable ? ob_pg_exec(c->conn,
                                        "UPDATE idempotency_keys SET status_code = 0,"
                                        " response = NULL WHERE account_id = $1 AND key = $2",
                                        2, params, NULL, &err)
                           : ob_pg_exec(c->conn,
                                        "UPDATE idempotency_keys SET status_code = $3,"
                                        " response = $4 WHERE account_id = $1 AND key = $2",
                                        4, params, NULL, &err);
    if (rc != OB_OK)
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id),
               "the answer to an idempotent request was not kept: %s", err.msg);
}

void ingest_idem_finish(ingest_ctx_t *ctx, ob_http_req_t *req)
{
    char account_id[37] = "";
    ingest_call_t c = {.ctx = ctx, .req = req, .account_id = account_id};
    pthread_mutex_lock(&ctx->claims->mu);
    for (const claim_t *i = ctx->claims->head; i; i = i->next)
        if (i->req == req)
            memcpy(account_id, i->account_id, sizeof(account_id));
    pthread_mutex_unlock(&ctx->claims->mu);
    if (!account_id[0])
        return;
    /* Over without an answer kept (a stream whose client went away): the
     * key is released as after a 5xx, so a retry goes ahead at once. */
    unsigned status = req->status;
    req->status = 503;
    ingest_idem_store(&c);
    req->status = status;
    if (c.conn)
        ob_pg_pool_put(ctx->pg, c.conn);
}

void ingest_idem_call_id(const char *account_id, const char *key, int64_t created_ms, size_t row,
                         char out[OB_UUID_STRLEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char seed[MAX_KEY_LEN + 80];
    int len = snprintf(seed, sizeof(seed), "%s|%s|%zu", account_id, key, row);
    EVP_Digest(seed, (size_t)len, md, &n, EVP_sha256(), NULL);
    ob_uuid_v7_from(created_ms, md, out);
}
