/*
 * Routing dial jobs to dialers with free channels. Each dialer announces its
 * channels and the outbound.dial-jobs partitions it consumes in the dialers
 * table; before releasing, the scheduler reads them and sends every job to an
 * explicit partition of the live dialer with the most free channels, so a job
 * never waits in a busy dialer's paused partition while another dialer idles.
 */
#ifndef SCHEDULER_ROUTE_H
#define SCHEDULER_ROUTE_H

#include "ob_common.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* One dialer as announced, the input of scheduler_route_set. */
typedef struct {
    const char *instance_id; /* the dialer's OB_INSTANCE_ID */
    long channels;           /* channels it announced */
    long busy;               /* channels held: calls it dials plus jobs waiting for it */
    const int *partitions;   /* dial-jobs partitions assigned to it */
    int npartitions;         /* entries in partitions */
    long long age_ms;        /* time since it last announced itself */
    double cps;              /* its calls-per-second limit (a sip trunk's), 0 for none */
} scheduler_dialer_t;

typedef struct scheduler_route scheduler_route_t;

/* An empty route (every pick is -1). Caller frees with scheduler_route_free. */
scheduler_route_t *scheduler_route_new(void);

/* NULL-safe. */
void scheduler_route_free(scheduler_route_t *r);

/* Replaces the route's dialers with copies of list[0..n) (nothing of list is
 * kept). A dialer is live when age_ms <= stale_after_ms; dead ones and ones
 * without partitions are dropped, as are duplicate instance ids after the
 * first. The round-robin position of a dialer already in the route (same
 * instance_id) is kept, so successive refreshes keep spreading its jobs.
 * A dialer with a cps limit also gets no more jobs than its token bucket
 * holds: one second's worth (at least one) when it is first seen, refilled
 * at cps per second of now_ms (monotonic) since the previous set, one taken
 * per pick; so jobs wait in Postgres rather than in the dialer's pacing
 * queue. The bucket is this scheduler's: several schedulers routing to one
 * dialer may together exceed its cps, which its carrier then enforces. */
void scheduler_route_set(scheduler_route_t *r, const scheduler_dialer_t *list, size_t n,
                         int stale_after_ms, int64_t now_ms);

/* Reads the dialers seen within stale_after_ms (Postgres's clock) and sets
 * the route from them. busy counts the attempts each dialer is dialing
 * (state dialing/connected, worker = it) plus the released attempts whose job
 * was routed to one of its partitions (attempts.job_partition) and not taken
 * yet: both are exact at the time of the query, unlike the announced active
 * count, which is up to a second old. One query on pg, which may be inside
 * the caller's transaction. On failure the route is emptied (every pick is
 * -1, so nothing is released on stale knowledge) and err says why:
 * OB_EDEPENDENCY when the connection is lost, OB_ERR otherwise. */
ob_rc_t scheduler_route_refresh(scheduler_route_t *r, PGconn *pg, int stale_after_ms,
                                ob_err_t *err) OB_MUSTCHECK;

/* Free channels of the live dialers left to pick from (channels - busy,
 * never below zero, per dialer), less one per pick since the last set: the
 * carrier's bound on how many jobs may be released now. */
long scheduler_route_free_channels(const scheduler_route_t *r);

/* Live dialers in the route. */
int scheduler_route_dialers(const scheduler_route_t *r);

/* The dial-jobs partition for the next job: one of the partitions of the
 * live dialer with the most free channels left (the first in the list on a
 * tie), taken round-robin, and that dialer's count goes down by one. Returns
 * -1 when no live dialer has a free channel. */
int scheduler_route_pick(scheduler_route_t *r);

#endif
