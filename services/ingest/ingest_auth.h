/*
 * Who is asking (ingest_auth.c): an account's API key (Bearer, or HTTP
 * Basic with the account's email as Plum clients send it), resolved through
 * this ingest's key cache, and the bootstrap admin key. Thread-safe.
 */
#ifndef INGEST_AUTH_H
#define INGEST_AUTH_H

#include "ingest.h"

/* Resolves the request's key to its account (account_id, 37 bytes);
 * key_hash gets the key's SHA-256 for the per-key limits. On failure the
 * problem response is set (401, or 503 when Postgres cannot be asked) and
 * false is returned. Borrows conn. */
bool ingest_auth(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, char *account_id,
                 char key_hash[65]);

/* True when the request carries the configured admin key (compared in
 * constant time; never with an empty OB_INGEST_ADMIN_KEY). */
bool ingest_is_admin(const ingest_ctx_t *ctx, ob_http_req_t *req);

/* Lower-case hex SHA-256 of key into out (65 bytes): what api_keys stores. */
void ingest_key_hash(const char *key, char out[65]);

/* Forgets what this ingest cached about a key (after its revocation). */
void ingest_forget_key(ingest_ctx_t *ctx, const char *key_hash);

#endif
