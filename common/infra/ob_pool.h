/*
 * A grow-only memory pool: many small allocations, one release. The HTTP
 * service hangs one on each request so early returns cannot leak (h2o's
 * req->pool).
 */
#ifndef OB_POOL_H
#define OB_POOL_H

#include "ob_common.h"

#include <stddef.h>

typedef struct ob_pool ob_pool_t;

/* Creates an empty pool; free with ob_pool_free. Aborts on out-of-memory. */
ob_pool_t *ob_pool_new(void);

/* Frees the pool and everything allocated from it; NULL-safe. */
void ob_pool_free(ob_pool_t *pool);

/* Allocations live until the pool is freed; memory is zeroed. */
void *ob_pool_alloc(ob_pool_t *pool, size_t n);
char *ob_pool_strdup(ob_pool_t *pool, const char *s);
char *ob_pool_strndup(ob_pool_t *pool, const char *s, size_t n);
char *ob_pool_printf(ob_pool_t *pool, const char *fmt, ...) OB_PRINTF(2, 3);

/* Takes ownership of a malloc'd pointer and frees it with the pool. */
void *ob_pool_adopt(ob_pool_t *pool, void *p);

#endif
