/*
 * Idempotency-Key handling (ingest_idempotency.c): the first request with a
 * key is handled and its answer kept; a retry gets that answer again. A
 * claim is a lease this ingest renews while the request is in progress.
 * Every function is thread-safe; those taking a request run on its thread.
 */
#ifndef INGEST_IDEMPOTENCY_H
#define INGEST_IDEMPOTENCY_H

#include "ingest.h"

typedef enum {
    INGEST_IDEM_NONE,    /* no key: handle the request normally */
    INGEST_IDEM_CLAIMED, /* first use: handle it, then ingest_idem_store */
    INGEST_IDEM_DONE,    /* answered: the stored answer (or a problem) is set */
} ingest_idem_t;

/* Claims the request's Idempotency-Key for this route. body_hash may be NULL
 * when the body is not known yet (streamed uploads). On a replay the first
 * answer is set on the request; on misuse a 409/422 problem is, and a 503
 * when Postgres fails. *created_ms (may be NULL) gets when the key was
 * first used. Borrows c->conn. */
ingest_idem_t ingest_idem_claim(ingest_call_t *c, const char *body_hash, int64_t *created_ms);

/* Stores the request's answer under its claimed key, or releases the key when
 * the answer was a 5xx, a 429 or carries Retry-After (so that a retry is
 * handled afresh); stops renewing the claim. Does nothing when the request
 * holds no claim. Takes a pooled connection into c->conn if it has none
 * (the caller puts it back); failures are logged. */
void ingest_idem_store(ingest_call_t *c);

/* The claims this ingest holds, renewed while their requests are in
 * progress; lease_ms is how long one lasts unrenewed. Never NULL; the
 * caller frees with ingest_claims_free. */
typedef struct ingest_claims ingest_claims_t;
ingest_claims_t *ingest_claims_new(long long lease_ms);
void ingest_claims_free(ingest_claims_t *cl); /* NULL-safe */

/* Extends the lease of every claim held (one UPDATE); the main loop calls
 * it once a second. Failures are logged: a lease that runs out only lets a
 * retry go ahead, which derives the same call ids. */
void ingest_idem_renew(ingest_ctx_t *ctx);

/* When a request is over: a claim it still holds (it ended without an
 * answer kept, e.g. its client went away mid-upload) is released so that a
 * retry goes ahead at once. Borrows a Postgres connection. */
void ingest_idem_finish(ingest_ctx_t *ctx, ob_http_req_t *req);

/* The call id for item row (0 for a single call) of a request under a
 * claimed key: a UUIDv7 at the key's first use whose random bits come from
 * the account, the key and the row, so every retry names the same calls.
 * A pure function: safe from any thread. */
void ingest_idem_call_id(const char *account_id, const char *key, int64_t created_ms, size_t row,
                         char out[37]);

/* Lower-case hex SHA-256 of len bytes into out (65 bytes): a request body's
 * identity under its key. Pure. */
void ingest_sha256_hex(const void *data, size_t len, char out[65]);

#endif
