/*
 * A small time-limited cache for the lookups every request makes (API key ->
 * account, deployment -> its settings), so the hot path does not query
 * Postgres each time. Entries live at most ttl_ms; a change made through
 * this ingest invalidates its entry at once, and other instances see it
 * within the TTL.
 */
#ifndef INGEST_CACHE_H
#define INGEST_CACHE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ingest_cache ingest_cache_t;

/* A cache of values up to value_size bytes. Never NULL. */
ingest_cache_t *ingest_cache_new(size_t value_size, int ttl_ms);
void ingest_cache_free(ingest_cache_t *c);

/* Copies the fresh value of name into out; false when absent or stale. */
bool ingest_cache_get(ingest_cache_t *c, const char *name, void *out);
void ingest_cache_put(ingest_cache_t *c, const char *name, const void *value);
void ingest_cache_drop(ingest_cache_t *c, const char *name);

#endif
