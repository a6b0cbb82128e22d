/*
 * Chunked arena. Large requests get a chunk of their own so that a big body
 * does not waste a standard chunk's tail.
 */
#include "ob_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE 4096

typedef struct chunk {
    struct chunk *next; /* older chunk */
    size_t used, cap;   /* bytes used and available in data */
    void *adopted;      /* malloc'd pointer freed with this chunk (adopt) */
    max_align_t data[]; /* the memory handed out */
} chunk_t;

struct ob_pool {
    chunk_t *head; /* newest chunk */
};

ob_pool_t *ob_pool_new(void)
{
    return ob_xcalloc(1, sizeof(ob_pool_t));
}

void ob_pool_free(ob_pool_t *pool)
{
    if (!pool)
        return;
    for (chunk_t *c = pool->head, *next; c; c = next) {
        next = c->next;
        free(c->adopted);
        free(c);
    }
    free(pool);
}

static chunk_t *push_chunk(ob_pool_t *pool, size_t cap)
{
    chunk_t *c = ob_xcalloc(1, sizeof(chunk_t) + cap);
    c->cap = cap;
    c->next = pool->head;
    pool->head = c;
    return c;
}

void *ob_pool_alloc(ob_pool_t *pool, size_t n)
{
    size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    chunk_t *c = pool->head;
    if (need > CHUNK_SIZE / 4) {
        /* Big allocations go behind the current chunk so it keeps filling. */
        chunk_t *big = ob_xcalloc(1, sizeof(chunk_t) + need);
        big->cap = big->used = need;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            pool->head = big;
        }
        return big->data;
    }
    if (!c || c->cap - c->used < need)
        c = push_chunk(pool, CHUNK_SIZE);
    void *p = (char *)c->data + c->used;
    c->used += need;
    return p;
}

char *ob_pool_strndup(ob_pool_t *pool, const char *s, size_t n)
{
    char *p = ob_pool_alloc(pool, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ob_pool_strdup(ob_pool_t *pool, const char *s)
{
    return ob_pool_strndup(pool, s, strlen(s));
}

char *ob_pool_printf(ob_pool_t *pool, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    OB_ASSERT(n >= 0);
    char *p = ob_pool_alloc(pool, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void *ob_pool_adopt(ob_pool_t *pool, void *p)
{
    chunk_t *c = ob_xcalloc(1, sizeof(chunk_t));
    c->adopted = p;
    if (pool->head) {
        c->next = pool->head->next;
        pool->head->next = c;
    } else {
        pool->head = c;
    }
    return p;
}
