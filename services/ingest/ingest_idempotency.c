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
 */
#include "ingest.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_LEN 255

void ingest_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void in_progress(ob_http_req_t *req)
{
    ob_http_add_header(req, "Retry-After", "1");
    ob_http_problem(req, 409, "idempotency_key_in_progress", NULL,
                    "the first request with this Idempotency-Key is still being handled;"
                    " retry shortly");
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
    const char *params[] = {c->account_id, key, route, body_hash};
    if (ob_pg_exec(
            c->conn,
            "WITH ins AS (INSERT INTO idempotency_keys (account_id, key, route, request_hash)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, key) DO UPDATE"
            " SET status_code = NULL WHERE idempotency_keys.status_code = 0"
            " AND idempotency_keys.route = EXCLUDED.route"
            " AND idempotency_keys.request_hash IS NOT DISTINCT FROM EXCLUDED.request_hash"
            " RETURNING true AS claimed, route, request_hash, status_code, response,"
            " created_at)"
            " SELECT claimed, route, request_hash, status_code, response,"
            " (extract(epoch FROM created_at) * 1000)::bigint FROM ins"
            " UNION ALL SELECT false, route, request_hash, status_code, response,"
            " (extract(epoch FROM created_at) * 1000)::bigint FROM idempotency_keys"
            " WHERE account_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)",
            4, params, &res, &err) != OB_OK ||
        PQntuples(res) != 1) {
        if (err.msg[0])
            ingest_database_problem(req, &err);
        else
            in_progress(req);
        PQclear(res);
        return INGEST_IDEM_DONE;
    }
    bool claimed = PQgetvalue(res, 0, 0)[0] == 't';
    if (created_ms)
        *created_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    ingest_idem_t out = INGEST_IDEM_DONE;
    if (claimed) {
        out = INGEST_IDEM_CLAIMED;
    } else if (strcmp(PQgetvalue(res, 0, 1), route) != 0 ||
               (body_hash && !PQgetisnull(res, 0, 2) &&
                strcmp(PQgetvalue(res, 0, 2), body_hash) != 0)) {
        ob_http_problem(req, 409, "idempotency_key_reused", NULL,
                        "this Idempotency-Key was used for a different request (%s); use a new key"
                        " for a new request",
                        PQgetvalue(res, 0, 1));
    } else if (PQgetisnull(res, 0, 3)) {
        in_progress(req);
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

void ingest_idem_store(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    const char *key = ob_http_header(req, "Idempotency-Key");
    ob_err_t err = {{0}};
    char status[8];
    if (!key)
        return;
    if (!c->conn && ob_pg_pool_get(c->ctx->pg, 5000, &c->conn, &err) != OB_OK) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id),
               "the answer to an idempotent request was not kept: %s", err.msg);
        return;
    }
    snprintf(status, sizeof(status), "%u", req->status);
    char *body = ob_pool_strndup(req->pool, req->resp_body, req->resp_len);
    const char *params[] = {c->account_id, key, status, body};
    /* A 5xx or 429 leaves the key claimable again (status 0) with its first time,
     * so a retry derives the same call ids and the scheduler, which records
     * calls idempotently, never sees a call twice. */
    bool retryable = req->status >= 500 || req->status == 429;
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
