/*
 * Lanes: a request's rows validated and produced on several threads while
 * the connection's thread reads the body. Validating and producing a row
 * costs far more than reading it (the phone number check dominates), so an
 * upload or a batch of calls is spread over lanes, one thread each, and the
 * reader blocks while a lane is full (memory stays bounded). A row goes to
 * the lane its key (its row number) picks, so the work is shared evenly.
 */
#ifndef INGEST_LANES_H
#define INGEST_LANES_H

#include "ob_common.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* Does one row's work on a lane's thread: owner is ingest_lanes_start's,
 * item the pushed row (the function owns it). */
typedef void (*ingest_lane_fn)(void *owner, void *item);

typedef struct ingest_lanes ingest_lanes_t;

/* Starts n lanes (n >= 1) running fn. */
ingest_lanes_t *ingest_lanes_start(int n, ingest_lane_fn fn, void *owner);

/* Hands item to the lane of key, waiting while that lane is full. */
void ingest_lanes_push(ingest_lanes_t *l, size_t key, void *item);

/* Waits for every row pushed to be done, stops the lanes and frees them;
 * NULL is a no-op. Once it returns, what the rows' work wrote is visible to
 * the caller. */
void ingest_lanes_stop(ingest_lanes_t *l);

/* The first failure of a request's lanes (a Kafka error): once one is
 * noted, the lanes skip the rows still waiting and the reader stops. The
 * owner zeroes it and calls ingest_failure_init. */
typedef struct {
    pthread_mutex_t mu; /* guards rc and err */
    int failed;         /* a failure was noted, or the rows are dropped (atomic) */
    ob_rc_t rc;         /* the first failure, OB_OK when only dropped */
    ob_err_t err;       /* and its detail */
} ingest_failure_t;

void ingest_failure_init(ingest_failure_t *f);
void ingest_failure_destroy(ingest_failure_t *f);
/* Notes rc (not OB_OK) with err unless a failure was noted before. */
void ingest_failure_note(ingest_failure_t *f, ob_rc_t rc, const ob_err_t *err);
/* The rows still waiting are dropped (a client that is gone). */
void ingest_failure_drop(ingest_failure_t *f);
/* Whether the lanes should skip their rows. */
bool ingest_failure_seen(ingest_failure_t *f);
/* The failure noted (err set), or OB_OK. */
ob_rc_t ingest_failure_get(ingest_failure_t *f, ob_err_t *err);

#endif
