/*
 * The ingest service's settings (ingest_config.c) and the context every
 * module shares: the service context, what a route handler gets, and the
 * cached records of a deployment and an API key. Declares no module's
 * functions but the settings', so every module may include it: each
 * module's own header says what it offers.
 */
#ifndef INGEST_H
#define INGEST_H

#include "ob_config.h"
#include "ob_http.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_pg.h"
#include "ob_proto.h"
#include "ob_service.h"

typedef struct {
    ob_base_config_t base;        /* shared settings (must be first) */
    long long threads;            /* OB_INGEST_THREADS */
    long long max_body;           /* OB_INGEST_MAX_BODY_BYTES */
    long long conn_limit;         /* OB_INGEST_MAX_CONNECTIONS */
    long long ack_timeout_ms;     /* OB_INGEST_ACK_TIMEOUT_MS */
    long long pg_pool;            /* OB_INGEST_PG_POOL */
    char *admin_key;              /* OB_INGEST_ADMIN_KEY: bootstrap key for /accounts, "" = off */
    double key_rate;              /* OB_INGEST_KEY_RATE: requests/s per API key */
    long long key_concurrency;    /* OB_INGEST_KEY_CONCURRENCY: requests in progress per key */
    long long max_pending;        /* OB_INGEST_MAX_PENDING: queued calls per deployment */
    long long max_upload;         /* OB_INGEST_MAX_UPLOAD_BYTES: largest streamed body */
    long long upload_lanes;       /* OB_INGEST_UPLOAD_LANES: threads validating one upload */
    long long idem_lease_ms;      /* OB_INGEST_IDEMPOTENCY_LEASE_MS: an unrenewed claim's life */
    long long accepted_max_bytes; /* OB_INGEST_ACCEPTED_MAX_BYTES: unrecorded calls held for GET */
} ingest_config_t;

/* The OB_INGEST_* settings (ingest_config.c), terminated by env NULL. */
extern const ob_cfg_spec_t ingest_config_specs[];

/* The HTTP server options of cfg (address, port, threads, connection limit,
 * timeout, body limit); the caller adds the handlers. */
ob_http_opts_t ingest_http_opts(const ingest_config_t *cfg);

enum {
    M_CALLS_QUEUED,   /* outbound_calls_queued_total */
    M_KAFKA_FAILURES, /* outbound_call_requests_unacknowledged_total */
    M_READY,          /* outbound_ready */
    M_RECORDING_LAG,  /* outbound_call_recording_lag_seconds */
    M_UNRECORDED,     /* outbound_calls_unrecorded */
    M_COUNT,
};

typedef struct {
    ob_service_t svc;                  /* readiness, metrics, HTTP server (first member) */
    const ingest_config_t *cfg;        /* read-only configuration */
    ob_producer_t *producer;           /* single requests: sends at once (no linger) */
    ob_producer_t *bulk;               /* batches and uploads: lingers to fill batches */
    ob_pg_pool_t *pg;                  /* connections for auth and queries */
    struct ingest_limits *limits;      /* admission limits (ingest_limits.h) */
    struct ingest_cache *keys;         /* key hash -> account (ingest_cache.h) */
    struct ingest_cache *deps;         /* deployment|account -> deployment_t */
    char *topic_requests;              /* full name of outbound.call-requests */
    char *topic_events;                /* full name of outbound.call-events */
    char *source;                      /* CloudEvents source of this instance */
    int kafka_up;                      /* last metadata check answered (atomic) */
    int pg_up;                         /* last Postgres check answered (atomic) */
    int batches_laned;                 /* batches running on lanes now (atomic) */
    ob_metric_t metrics[M_COUNT];      /* Prometheus registry */
    ob_kafka_metrics_t *kafka_metrics; /* per-topic Kafka counts and lag */
    struct ingest_claims *claims;      /* Idempotency-Key claims held (ingest_idempotency.c) */
    struct ingest_accepted *accepted;  /* accepted calls not yet recorded (ingest_accepted.h) */
} ingest_ctx_t;

/* What a route handler gets: the authenticated account, a borrowed Postgres
 * connection and the path parameters ({} in the route pattern). */
typedef struct {
    ingest_ctx_t *ctx;      /* service context */
    ob_http_req_t *req;     /* the request; set the response here */
    PGconn *conn;           /* borrowed for the request */
    const char *account_id; /* authenticated account */
    const char *param[2];   /* path parameters in order */
    const char *queued_via; /* "plum" on the Plum routes: the calls' queued_via; else NULL */
    bool pci_allowed;       /* Plum routes: the deployment accepts is_pci=1 */
} ingest_call_t;

typedef void (*ingest_route_fn)(ingest_call_t *c);

/* The deployment a call is queued to, with its defaults. */
typedef struct {
    char account_id[37];   /* owner */
    bool active;           /* accepting calls */
    bool deleted;          /* soft-deleted */
    long max_attempts;     /* default attempts */
    long retry_interval_s; /* default wait between attempts */
    char caller_id[64];    /* default caller id, "" if none */
    char region[3];        /* default region for national numbers, "" if none */
} deployment_t;

/* What the key cache holds for an API key. */
typedef struct {
    char account_id[37]; /* the key's account */
    char email[321];     /* the account's email, for HTTP Basic */
} ingest_key_entry_t;

#endif
