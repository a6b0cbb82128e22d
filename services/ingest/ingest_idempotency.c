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
#include "ingest_store.h"
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

void ingest_idem_renew(ingest_ctx_t *ctx)
{
    ingest_claims_t *cl = ctx->claims;
    ob_pool_t *pool = ob_pool_new();
    const char **accounts = NULL, **keys = NULL;
    PGconn *conn = NULL;
    ob_err_t err = {{0}};
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&cl->mu);
    for (const claim_t *h = cl->head; h; h = h->next) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            const char **a = ob_pool_alloc(pool, cap * sizeof(*a));
            const char **k = ob_pool_alloc(pool, cap * sizeof(*k));
            if (n) {
                memcpy(a, accounts, n * sizeof(*a));
                memcpy(k, keys, n * sizeof(*k));
            }
            accounts = a;
            keys = k;
        }
        accounts[n] = ob_pool_strdup(pool, h->account_id);
        keys[n++] = ob_pool_strdup(pool, h->key);
    }
    pthread_mutex_unlock(&cl->mu);
    if (n == 0)
        goto out;
    if (ob_pg_pool_get(ctx->pg, 1000, &conn, &err) != OB_OK ||
        ingest_store_idem_renew(conn, accounts, keys, n, cl->lease_ms, &err) != OB_OK)
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
    ob_err_t err = {{0}};
    if (!key)
        return INGEST_IDEM_NONE;
    if (!key[0] || strlen(key) > MAX_KEY_LEN) {
        ob_http_problem(req, 422, "invalid_idempotency_key", NULL,
                        "Idempotency-Key must be 1 to %d characters", MAX_KEY_LEN);
        return INGEST_IDEM_DONE;
    }
    char *route = ob_pool_printf(req->pool, "%s %s", req->method, req->path);
    ingest_store_claim_t k;
    if (ingest_store_idem_claim(c->conn, req->pool, c->account_id, key, route, body_hash,
                                c->ctx->claims->lease_ms, &k, &err) != OB_OK ||
        !k.found) {
        if (err.msg[0])
            ingest_database_problem(req, &err);
        else
            in_progress(req, "1"); /* claimed by another request this very moment */
        return INGEST_IDEM_DONE;
    }
    if (created_ms)
        *created_ms = k.created_ms;
    ingest_idem_t out = INGEST_IDEM_DONE;
    if (k.claimed) {
        out = INGEST_IDEM_CLAIMED;
        hold(c->ctx->claims, req, c->account_id, key);
    } else if (strcmp(k.route, route) != 0 ||
               (body_hash && k.request_hash && strcmp(k.request_hash, body_hash) != 0)) {
        ob_http_problem(req, 409, "idempotency_key_reused", NULL,
                        "this Idempotency-Key was used for a different request (%s); use a new key"
                        " for a new request",
                        k.route);
    } else if (!k.answered) {
        in_progress(req, k.left_s);
    } else {
        ob_http_reply(req, k.status, "application/json", k.response, strlen(k.response));
        if (k.response[0] == '{' && strstr(k.response, "\"type\":\"https://outbound.dev/problems/"))
            req->content_type = "application/problem+json";
        ob_http_add_header(req, "Idempotent-Replayed", "true");
    }
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
    if (!key || !let_go(c->ctx->claims, req))
        return;
    if (!c->conn && ob_pg_pool_get(c->ctx->pg, 5000, &c->conn, &err) != OB_OK) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id),
               "the answer to an idempotent request was not kept: %s", err.msg);
        return;
    }
    char *body = ob_pool_strndup(req->pool, req->resp_body, req->resp_len);
    /* A 5xx, 429 or any answer with Retry-After leaves the key claimable
     * again (status 0) with its first time, so a retry derives the same call
     * ids and the scheduler, which records calls idempotently, never sees a
     * call twice. */
    bool retryable = req->status >= 500 || req->status == 429 || asks_retry(req);
    ob_rc_t rc = retryable
                     ? ingest_store_idem_release(c->conn, c->account_id, key, &err)
                     : ingest_store_idem_keep(c->conn, c->account_id, key, req->status, body, &err);
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
