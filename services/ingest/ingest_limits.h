/*
 * Admission limits of the ingest: a request rate and a concurrency limit per
 * API key (token bucket and in-flight counter), and a cap on the pending
 * calls of a deployment. Each refusal is a 429 with Retry-After and a code
 * that says which limit was hit, so a client loop is throttled, never broken.
 */
#ifndef INGEST_LIMITS_H
#define INGEST_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ingest_limits ingest_limits_t;

/* rate: requests per second per key (burst one second's worth); concurrency:
 * requests in progress per key; max_pending: queued calls per deployment. */
ingest_limits_t *ingest_limits_new(double rate, int concurrency, long max_pending);
void ingest_limits_free(ingest_limits_t *l);

typedef enum {
    INGEST_LIMIT_OK,          /* admitted; call ingest_limits_release when done */
    INGEST_LIMIT_RATE,        /* over the request rate */
    INGEST_LIMIT_CONCURRENCY, /* too many requests in progress */
} ingest_limit_t;

/* Admits one request of the key (its hash); *retry_after_s says when to
 * come back when refused. Thread-safe. */
ingest_limit_t ingest_limits_admit(ingest_limits_t *l, const char *key_hash, int *retry_after_s);
/* Ends an admitted request. */
void ingest_limits_release(ingest_limits_t *l, const char *key_hash);

/* Pending calls of a deployment as last counted (within refresh_ms), plus
 * what this process accepted since; returns -1 when it should be counted
 * again (the caller counts and calls ingest_limits_set_pending). */
long ingest_limits_pending(ingest_limits_t *l, const char *deployment_id, int refresh_ms);
void ingest_limits_set_pending(ingest_limits_t *l, const char *deployment_id, long count);
/* Adds n accepted calls to the deployment's count. */
void ingest_limits_add_pending(ingest_limits_t *l, const char *deployment_id, long n);
long ingest_limits_max_pending(const ingest_limits_t *l);

#endif
