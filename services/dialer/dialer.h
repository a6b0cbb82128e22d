/*
 * The dialer worker's context: dial jobs in, carrier calls, state
 * transitions written to Postgres and published as events, and the row in
 * the dialers table by which the scheduler routes jobs here
 * (dialer_worker.c), driven by the loop in main.c.
 */
#ifndef DIALER_H
#define DIALER_H

#include "dialer_carrier.h"
#include "dialer_webhooks.h"
#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_proto.h"

#include <libpq-fe.h>

#define DIALER_MAX_PARTITIONS 1024 /* dial-jobs partitions tracked (OB_TOPIC_PARTITIONS bound) */

typedef struct {
    ob_base_config_t base; /* shared settings (must be first) */
    long long channels;    /* OB_DIALER_CHANNELS */
    long long lease_s;     /* OB_DIALER_LEASE_S */
    char *carrier;         /* OB_DIALER_CARRIER */
    double sim_time_scale; /* OB_SIM_TIME_SCALE */
    long long sim_seed;    /* OB_SIM_SEED */

    /* start_url requests (dialer_app.c) */
    long long app_timeout_ms;  /* OB_DIALER_APP_TIMEOUT_MS */
    long long app_concurrency; /* OB_DIALER_APP_CONCURRENCY */

    /* result_url webhooks (dialer_webhooks.c) */
    bool webhook_enabled;            /* OB_WEBHOOK_ENABLED */
    long long webhook_concurrency;   /* OB_WEBHOOK_CONCURRENCY */
    long long webhook_timeout_ms;    /* OB_WEBHOOK_TIMEOUT_MS */
    long long webhook_retry_base_ms; /* OB_WEBHOOK_RETRY_BASE_MS */
    long long webhook_retry_max_ms;  /* OB_WEBHOOK_RETRY_MAX_MS */
    long long webhook_max_age_s;     /* OB_WEBHOOK_MAX_AGE_S */
} dialer_config_t;

enum {
    M_JOBS,       /* outbound_dial_jobs_taken_total */
    M_STALE_JOBS, /* outbound_dial_jobs_refused_total */
    M_IN_FLIGHT,  /* outbound_calls_in_flight */
    M_CHANNELS,   /* outbound_dialer_channels */
    M_R_VOICE,    /* outbound_results_total{result=...} */
    M_R_MACHINE,
    M_R_FAX,
    M_R_BUSY,
    M_R_NOANSWER,
    M_R_INFOTONE,
    M_R_LINEFAILURE,
    M_R_UNKNOWN,
    M_READY, /* outbound_ready */
    M_COUNT,
};

/* One call the worker holds. */
typedef struct {
    ob_dial_job_t job;  /* the job it came from (owned) */
    bool in_use;        /* slot taken */
    bool answered;      /* connected was recorded */
    const char *cut_by; /* reason when we hung up before the call ended, else NULL */
} dialer_call_t;

typedef struct {
    const dialer_config_t *cfg;           /* read-only configuration */
    PGconn *pg;                           /* main thread only */
    rd_kafka_t *jobs;                     /* consumer of outbound.dial-jobs */
    ob_producer_t *producer;              /* events */
    carrier_t *carrier;                   /* sim or sip */
    char *topic_events;                   /* full topic name */
    char *source;                         /* CloudEvents source of this worker */
    dialer_call_t *calls;                 /* one slot per channel */
    int active;                           /* slots in use */
    int64_t next_renew_ms;                /* monotonic time of the next lease renewal */
    int64_t next_announce_ms;             /* monotonic time of the next heartbeat */
    bool announcing;                      /* the dialers row is kept up (false once draining) */
    bool announced;                       /* this process's row was written once */
    bool assigned[DIALER_MAX_PARTITIONS]; /* dial-jobs partitions assigned to us */
    int pg_up;                            /* Postgres answered last time (atomic) */
    ob_metric_t metrics[M_COUNT];         /* Prometheus registry */
    struct dialer_app *app;               /* start_url requests (dialer_app.h) */
    struct dialer_webhooks *webhooks;     /* result_url sender (dialer_webhooks.h), NULL if off */
    ob_metric_t webhook_metrics[DIALER_WM_COUNT]; /* its metrics (outlive it) */
} dialer_ctx_t;

/* Takes one dial job: records dialing (guarded on the job id, so a stale or
 * duplicate job is refused) and starts the carrier call. Returns true when
 * the message is done with (started or refused) and its offset may be
 * stored; false when it must be retried (Postgres unavailable). */
bool dialer_take_job(dialer_ctx_t *ctx, const rd_kafka_message_t *msg);

/* Every third of OB_DIALER_LEASE_S, extends the leases of the attempts this
 * worker is dialing; cheap to call on every loop turn. */
void dialer_renew_leases(dialer_ctx_t *ctx);

/* Ends every call still in progress (drain deadline): the carrier hangs up
 * and the attempts are recorded with reason "dialer_shutdown"; one that had
 * not been answered counts as an attempt with result unknown. */
void dialer_hangup_all(dialer_ctx_t *ctx);

/* Consumer rebalance notification: tracks the assigned dial-jobs partitions
 * and announces the change at once (a revocation before the partitions go),
 * so the scheduler stops routing to partitions we no longer consume. */
void dialer_on_rebalance(void *opaque, bool assigned, const rd_kafka_topic_partition_list_t *parts);

/* Upserts this worker's dialers row (carrier, channels, calls in progress,
 * assigned partitions, seen_at = now()) once a second, or at once when now
 * is true; cheap to call on every loop turn. Does nothing once
 * ctx->announcing is false. One short statement on ctx->pg (reconnecting
 * if the connection broke); a failure is logged and retried a second later. */
void dialer_announce(dialer_ctx_t *ctx, bool now);

/* Stops announcing and deletes the row, so the scheduler routes nothing more
 * here (drain). A failure is logged: the row then goes stale within the
 * scheduler's staleness bound. */
void dialer_withdraw(dialer_ctx_t *ctx);

extern const carrier_events_t dialer_carrier_events;

#endif
