/*
 * Limit bookkeeping in two fixed-size open-addressing tables (keys and
 * deployments) under one mutex each. Entries are found by a 64-bit hash of
 * their name with the full name compared, and the least recently used slot
 * of a probe window is reused when the table is full, so memory is fixed
 * whatever the number of keys.
 */
#include "ingest_limits.h"
#include "ob_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define SLOTS  8192 /* per table; a power of two */
#define WINDOW 16   /* probe window */

typedef struct {
    char name[65];    /* key hash or deployment id; "" = free */
    double tokens;    /* keys: token bucket */
    int in_flight;    /* keys: requests in progress */
    long pending;     /* deployments: pending calls */
    int64_t stamp_ms; /* keys: last refill; deployments: when counted */
    int64_t used_ms;  /* last use, for reuse when full */
} slot_t;

typedef struct {
    pthread_mutex_t mu; /* guards slots */
    slot_t *slots;      /* SLOTS entries */
} table_t;

struct ingest_limits {
    double rate;      /* requests per second per key */
    int concurrency;  /* requests in progress per key */
    long max_pending; /* pending calls per deployment */
    table_t keys;     /* per API key */
    table_t deps;     /* per deployment */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* Finds or makes the slot of name; called with the table locked. */
static slot_t *lookup(table_t *t, const char *name, int64_t now, bool *fresh)
{
    uint64_t h = fnv1a(name);
    slot_t *victim = NULL;
    for (int i = 0; i < WINDOW; i++) {
        slot_t *s = &t->slots[(h + (uint64_t)i) & (SLOTS - 1)];
        if (strcmp(s->name, name) == 0) {
            s->used_ms = now;
            *fresh = false;
            return s;
        }
        if (!victim || !s->name[0] || (victim->name[0] && s->used_ms < victim->used_ms))
            victim = s;
    }
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->name, sizeof(victim->name), "%s", name);
    victim->used_ms = now;
    *fresh = true;
    return victim;
}

static void table_init(table_t *t)
{
    pthread_mutex_init(&t->mu, NULL);
    t->slots = ob_xcalloc(SLOTS, sizeof(slot_t));
}

ingest_limits_t *ingest_limits_new(double rate, int concurrency, long max_pending)
{
    ingest_limits_t *l = ob_xcalloc(1, sizeof(*l));
    l->rate = rate;
    l->concurrency = concurrency;
    l->max_pending = max_pending;
    table_init(&l->keys);
    table_init(&l->deps);
    return l;
}

void ingest_limits_free(ingest_limits_t *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->keys.mu);
    pthread_mutex_destroy(&l->deps.mu);
    free(l->keys.slots);
    free(l->deps.slots);
    free(l);
}

ingest_limit_t ingest_limits_admit(ingest_limits_t *l, const char *key_hash, int *retry_after_s)
{
    int64_t now = ob_mono_ms();
    bool fresh;
    ingest_limit_t out = INGEST_LIMIT_OK;
    pthread_mutex_lock(&l->keys.mu);
    slot_t *s = lookup(&l->keys, key_hash, now, &fresh);
    if (fresh) {
        s->tokens = l->rate; /* a full second's burst */
        s->stamp_ms = now;
    }
    s->tokens += (double)(now - s->stamp_ms) * l->rate / 1000.0;
    if (s->tokens > l->rate)
        s->tokens = l->rate;
    s->stamp_ms = now;
    if (s->in_flight >= l->concurrency) {
        out = INGEST_LIMIT_CONCURRENCY;
        *retry_after_s = 1;
    } else if (s->tokens < 1.0) {
        out = INGEST_LIMIT_RATE;
        double wait = (1.0 - s->tokens) / l->rate;
        *retry_after_s = wait < 1.0 ? 1 : (int)wait + 1;
    } else {
        s->tokens -= 1.0;
        s->in_flight++;
    }
    pthread_mutex_unlock(&l->keys.mu);
    return out;
}

void ingest_limits_release(ingest_limits_t *l, const char *key_hash)
{
    bool fresh;
    pthread_mutex_lock(&l->keys.mu);
    slot_t *s = lookup(&l->keys, key_hash, ob_mono_ms(), &fresh);
    if (s->in_flight > 0)
        s->in_flight--;
    pthread_mutex_unlock(&l->keys.mu);
}

long ingest_limits_pending(ingest_limits_t *l, const char *deployment_id, int refresh_ms)
{
    int64_t now = ob_mono_ms();
    bool fresh;
    pthread_mutex_lock(&l->deps.mu);
    slot_t *s = lookup(&l->deps, deployment_id, now, &fresh);
    long n = fresh || now - s->stamp_ms > refresh_ms ? -1 : s->pending;
    pthread_mutex_unlock(&l->deps.mu);
    return n;
}

void ingest_limits_set_pending(ingest_limits_t *l, const char *deployment_id, long count)
{
    int64_t now = ob_mono_ms();
    bool fresh;
    pthread_mutex_lock(&l->deps.mu);
    slot_t *s = lookup(&l->deps, deployment_id, now, &fresh);
    s->pending = count;
    s->stamp_ms = now;
    pthread_mutex_unlock(&l->deps.mu);
}

void ingest_limits_add_pending(ingest_limits_t *l, const char *deployment_id, long n)
{
    bool fresh;
    pthread_mutex_lock(&l->deps.mu);
    slot_t *s = lookup(&l->deps, deployment_id, ob_mono_ms(), &fresh);
    if (!fresh)
        s->pending += n;
    pthread_mutex_unlock(&l->deps.mu);
}

long ingest_limits_max_pending(const ingest_limits_t *l)
{
    return l->max_pending;
}
