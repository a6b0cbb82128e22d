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

#endif
