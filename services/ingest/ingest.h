/*
 * The ingest service's context and the entry points its modules share:
 * routing and handlers (ingest_api.c) and authentication (ingest_auth.c).
 */
#ifndef INGEST_H
#define INGEST_H

#include "ob_config.h"
#include "ob_http.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_pg.h"

typedef struct {
    ob_base_config_t base;    /* shared settings (must be first) */
    long long threads;        /* OB_INGEST_THREADS */
    long long max_body;       /* OB_INGEST_MAX_BODY_BYTES */
    long long conn_limit;     /* OB_INGEST_MAX_CONNECTIONS */
    long long ack_timeout_ms; /* OB_INGEST_ACK_TIMEOUT_MS */
    long long pg_pool;        /* OB_INGEST_PG_POOL */
} ingest_config_t;

enum {
    M_CALLS_QUEUED,   /* outbound_calls_queued_total */
    M_HTTP_2XX,       /* outbound_http_requests_total{code="2xx"} */
    M_HTTP_4XX,       /* ... 4xx */
    M_HTTP_5XX,       /* ... 5xx */
    M_KAFKA_FAILURES, /* outbound_kafka_produce_failures_total */
    M_READY,          /* outbound_ready */
    M_COUNT,
};

typedef struct {
    const ingest_config_t *cfg;   /* read-only configuration */
    ob_producer_t *producer;      /* call-requests producer */
    ob_pg_pool_t *pg;             /* connections for auth and queries */
    char *topic_requests;         /* full name of outbound.call-requests */
    int kafka_up;                 /* last metadata check answered (atomic) */
    int pg_up;                    /* last Postgres check answered (atomic) */
    ob_metric_t metrics[M_COUNT]; /* Prometheus registry */
} ingest_ctx_t;

/* The HTTP handler for every /api route. */
void ingest_api_handle(void *ctx, ob_http_req_t *req);

/* Resolves the request's bearer key to its account (account_id, 37 bytes).
 * On failure the problem response is already set and false is returned. */
bool ingest_auth(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, char *account_id);

/* Lower-case hex SHA-256 of key into out (65 bytes). */
void ingest_key_hash(const char *key, char out[65]);

#endif
