/*
 * The scheduler's context and modules: recording accepted calls from
 * outbound.call-requests (scheduler_record.c) and releasing dial jobs within
 * capacity, schedule and expiry (scheduler_release.c).
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_service.h"
#include "ob_vocab.h"
#include "ob_window.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#define SCHEDULER_MAX_PARTITIONS 1024

typedef struct {
    ob_base_config_t base;         /* shared settings (must be first) */
    long long tick_ms;             /* OB_SCHEDULER_TICK_MS: release pass interval */
    long long lease_s;             /* OB_SCHEDULER_LEASE_S: dial job lease */
    long long batch;               /* OB_SCHEDULER_BATCH: requests recorded per transaction */
    long long release_max;         /* OB_SCHEDULER_RELEASE_MAX: jobs per deployment per pass */
    long long clock_start_ms;      /* OB_SCHEDULER_CLOCK_START_MS: 0 = the real clock */
    double clock_scale;            /* OB_SCHEDULER_CLOCK_SCALE: its speed */
    long long metrics_deployments; /* OB_SCHEDULER_METRICS_DEPLOYMENTS: labelled ones */
    long long stats_ms;            /* OB_SCHEDULER_STATS_MS: queue gauge refresh interval */
} scheduler_config_t;

enum {
    M_RECORDED,      /* outbound_calls_recorded_total */
    M_RELEASED,      /* outbound_dial_jobs_released_total */
    M_EXPIRED,       /* outbound_calls_expired_total */
    M_LEASES,        /* outbound_leases_expired_total */
    M_DEFERRED,      /* outbound_calls_deferred_window_total */
    M_WINDOW_CLOSED, /* outbound_calls_window_closed_total */
    M_WAIT,          /* outbound_calls_pending{waiting_for=...}, owned partitions: M_WAIT + each
                        ob_wait_t */
    M_POISON = M_WAIT + OB_WAIT_COUNT, /* outbound_request_messages_invalid_total */
    M_OWNED,                           /* outbound_scheduler_partitions_owned */
    M_READY,                           /* outbound_ready */
    M_COUNT,
};

typedef struct {
    ob_service_t svc;              /* readiness, metrics, HTTP server (first member) */
    const scheduler_config_t *cfg; /* read-only configuration */
    PGconn *pg;                    /* the scheduler's connection (main thread only) */
    PGconn *pg2;                   /* a second one, for releases in parallel (or NULL) */
    rd_kafka_t *requests;          /* consumer of outbound.call-requests */
    ob_producer_t *producer;       /* dial jobs and events */
    char *topic_requests;          /* full topic names */
    char *topic_jobs;
    char *topic_events;
    char *source;                         /* CloudEvents source of this instance */
    bool owned[SCHEDULER_MAX_PARTITIONS]; /* call-requests partitions assigned to us */
    int owned_count;                      /* number of true entries in owned */
    int64_t clock_real0_ms;               /* real time the scheduler clock started */
    struct window_cache *windows;         /* parsed campaign windows by text */
    struct scheduler_route *route;        /* live dialers and their free channels */
    unsigned long passes;                 /* release passes so far (rotates fair shares) */
    ob_metric_t metrics[M_COUNT];         /* Prometheus registry */
    ob_kafka_metrics_t *kafka_metrics;    /* per-topic Kafka counts and lag */
    ob_metric_family_t *pg_writes;        /* outbound_postgres_write_duration_seconds{op} */
    pthread_mutex_t stats_mu;             /* guards stats_text */
    char *stats_text;                     /* per-deployment gauges of the last count */
} scheduler_ctx_t;

/*
 * The scheduler's clock in Unix ms: the real clock, or for tests (campaign
 * windows across a weekend or a DST change without waiting for one)
 * OB_SCHEDULER_CLOCK_START_MS at start-up, running OB_SCHEDULER_CLOCK_SCALE
 * times faster. Start times, expiry, windows and releases follow it; leases
 * and the dialers keep real time.
 */
int64_t scheduler_now_ms(const scheduler_ctx_t *ctx);

/* The real Unix ms at which the scheduler's clock reads at_ms. */
int64_t scheduler_real_ms(const scheduler_ctx_t *ctx, int64_t at_ms);

/* Consumer rebalance notification: tracks owned partitions. */
void scheduler_on_rebalance(void *opaque, bool assigned,
                            const rd_kafka_topic_partition_list_t *parts);

/* Checks scheduled calls (a retry waiting, a later start) against their
 * campaign window as soon as they are scheduled: one whose window does not
 * open before its expiry ends now (window_closed), one due while the window
 * is closed is moved to its opening. Up to 2,000 calls per call. */
void scheduler_precheck_windows(scheduler_ctx_t *ctx);

/* Counts the calls of the owned partitions by deployment and what they wait
 * for, and refreshes the queue gauges from it (scheduler_stats.c); a few
 * hundred ms at a million pending calls, so called every few seconds. */
void scheduler_count_pending(scheduler_ctx_t *ctx);

/* The per-deployment gauges of the last count as Prometheus text (caller
 * frees); thread-safe (scheduler_stats.c). */
char *scheduler_stats_render(scheduler_ctx_t *ctx);

/* The parsed campaign window of text, from a cache; *bad is set when it does
 * not parse (ingest validated it, so only a hand-edited row gets here)
 * (scheduler_release.c). */
const ob_window_t *scheduler_window_for(scheduler_ctx_t *ctx, const char *text, bool *bad);

/* Frees the parsed campaign windows (scheduler_release.c). */
void scheduler_windows_free(scheduler_ctx_t *ctx);

/* Polls up to cfg->batch request messages (waiting at most wait_ms for the
 * first), records them in Postgres in one transaction, publishes their
 * queued events and only then stores their offsets. Returns messages handled. */
int scheduler_record_poll(scheduler_ctx_t *ctx, int wait_ms);

/* One release pass over the owned partitions: ends calls that expired and
 * releases dial jobs up to each deployment's free capacity. */
void scheduler_release_pass(scheduler_ctx_t *ctx);

/* Text "{1,4,7}" of the owned partitions (caller frees). */
char *scheduler_owned_array(const scheduler_ctx_t *ctx);

#endif
