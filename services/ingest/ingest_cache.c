/*
 * Fixed-size open-addressing table (name hash, probe window, least recently
 * used slot reused), one mutex; values are copied in and out, so callers
 * never hold pointers into the table.
 */
#include "ingest_cache.h"
#include "ob_common.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS  4096 /* a power of two */
#define WINDOW 8    /* probe window */

typedef struct {
    char name[96];        /* key; "" = free */
    int64_t stored;       /* when the value was put (monotonic ms) */
    int64_t used;         /* last use, for reuse */
    unsigned char *value; /* value_size bytes */
} slot_t;

struct ingest_cache {
    pthread_mutex_t mu; /* guards slots */
    slot_t *slots;      /* SLOTS entries */
    unsigned char *mem; /* SLOTS * value_size bytes */
    size_t value_size;  /* bytes per value */
    int ttl_ms;         /* freshness */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

ingest_cache_t *ingest_cache_new(size_t value_size, int ttl_ms)
{
    ingest_cache_t *c = ob_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->slots = ob_xcalloc(SLOTS, sizeof(slot_t));
    c->mem = ob_xcalloc(SLOTS, value_size);
    for (size_t i = 0; i < SLOTS; i++)
        c->slots[i].value = c->mem + i * value_size;
    c->value_size = value_size;
    c->ttl_ms = ttl_ms;
    return c;
}

void ingest_cache_free(ingest_cache_t *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->mem);
    free(c);
}

/* The slot holding name, or NULL; called locked. */
static slot_t *find(ingest_cache_t *c, const char *name)
{
    uint64_t h = fnv1a(name);
    for (int i = 0; i < WINDOW; i++) {
        slot_t *s = &c->slots[(h + (uint64_t)i) & (SLOTS - 1)];
        if (s->name[0] && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

bool ingest_cache_get(ingest_cache_t *c, const char *name, void *out)
{
    int64_t now = ob_mono_ms();
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    slot_t *s = find(c, name);
    if (s && now - s->stored <= c->ttl_ms) {
        memcpy(out, s->value, c->value_size);
        s->used = now;
        hit = true;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void ingest_cache_put(ingest_cache_t *c, const char *name, const void *value)
{
    int64_t now = ob_mono_ms();
    if (strlen(name) >= sizeof(c->slots[0].name))
        return;
    pthread_mutex_lock(&c->mu);
    slot_t *s = find(c, name);
    if (!s) {
        uint64_t h = fnv1a(name);
        for (int i = 0; i < WINDOW; i++) {
            slot_t *t = &c->slots[(h + (uint64_t)i) & (SLOTS - 1)];
            if (!s || !t->name[0] || (s->name[0] && t->used < s->used))
                s = t;
        }
        memcpy(s->name, name, strlen(name) + 1);
    }
    memcpy(s->value, value, c->value_size);
    s->stored = s->used = now;
    pthread_mutex_unlock(&c->mu);
}

void ingest_cache_drop(ingest_cache_t *c, const char *name)
{
    pthread_mutex_lock(&c->mu);
    slot_t *s = find(c, name);
    if (s)
        s->name[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}
