/*
 * Lanes: a bounded ring of rows per thread.
 */
#include "ingest_lanes.h"
#include "ob_common.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define LANE_DEPTH 256 /* rows waiting per lane: bounds memory */

typedef struct {
    ingest_lanes_t *all; /* owner */
    pthread_t thread;    /* the lane's worker */
    pthread_mutex_t mu;  /* guards the ring */
    pthread_cond_t cv;   /* signalled on push, pop and close */
    void *q[LANE_DEPTH]; /* ring of waiting rows */
    size_t head, count;  /* ring position and fill */
    bool closed;         /* no more rows will come */
} lane_t;

struct ingest_lanes {
    ingest_lane_fn fn; /* the work */
    void *owner;       /* its first argument */
    lane_t *lane;      /* the lanes */
    int n;             /* how many */
};

static void *lane_main(void *arg)
{
    lane_t *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (l->count == 0 && !l->closed)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->count == 0) {
            pthread_mutex_unlock(&l->mu);
            return NULL;
        }
        void *item = l->q[l->head];
        l->head = (l->head + 1) % LANE_DEPTH;
        l->count--;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        l->all->fn(l->all->owner, item);
    }
}

ingest_lanes_t *ingest_lanes_start(int n, ingest_lane_fn fn, void *owner)
{
    ingest_lanes_t *all = ob_xcalloc(1, sizeof(*all));
    all->fn = fn;
    all->owner = owner;
    all->lane = ob_xcalloc((size_t)n, sizeof(lane_t));
    for (int i = 0; i < n; i++) {
        lane_t *l = &all->lane[i];
        l->all = all;
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        OB_ASSERT(pthread_create(&l->thread, NULL, lane_main, l) == 0);
        all->n++;
    }
    return all;
}

void ingest_lanes_push(ingest_lanes_t *all, size_t key, void *item)
{
    lane_t *l = &all->lane[key % (size_t)all->n];
    pthread_mutex_lock(&l->mu);
    while (l->count == LANE_DEPTH)
        pthread_cond_wait(&l->cv, &l->mu);
    l->q[(l->head + l->count) % LANE_DEPTH] = item;
    l->count++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void ingest_lanes_stop(ingest_lanes_t *all)
{
    if (!all)
        return;
    for (int i = 0; i < all->n; i++) {
        lane_t *l = &all->lane[i];
        pthread_mutex_lock(&l->mu);
        l->closed = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; i < all->n; i++) {
        pthread_join(all->lane[i].thread, NULL);
        pthread_mutex_destroy(&all->lane[i].mu);
        pthread_cond_destroy(&all->lane[i].cv);
    }
    free(all->lane);
    free(all);
}

void ingest_failure_init(ingest_failure_t *f)
{
    pthread_mutex_init(&f->mu, NULL);
}

void ingest_failure_destroy(ingest_failure_t *f)
{
    pthread_mutex_destroy(&f->mu);
}

void ingest_failure_note(ingest_failure_t *f, ob_rc_t rc, const ob_err_t *err)
{
    pthread_mutex_lock(&f->mu);
    if (f->rc == OB_OK) {
        f->rc = rc;
        f->err = *err;
    }
    __atomic_store_n(&f->failed, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&f->mu);
}

void ingest_failure_drop(ingest_failure_t *f)
{
    __atomic_store_n(&f->failed, 1, __ATOMIC_RELAXED);
}

bool ingest_failure_seen(ingest_failure_t *f)
{
    return __atomic_load_n(&f->failed, __ATOMIC_RELAXED) != 0;
}

ob_rc_t ingest_failure_get(ingest_failure_t *f, ob_err_t *err)
{
    if (!ingest_failure_seen(f))
        return OB_OK;
    pthread_mutex_lock(&f->mu);
    ob_rc_t rc = f->rc;
    if (rc != OB_OK)
        *err = f->err;
    pthread_mutex_unlock(&f->mu);
    return rc;
}
