/*
 * outbound-ingest: the HTTP front door. Validates requests, assigns call ids
 * and produces each accepted call to outbound.call-requests keyed by its
 * deployment, answering only after the broker acknowledged it.
 */
#include "ingest.h"
#include "ingest_cache.h"
#include "ingest_limits.h"
#include "ob_log.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CFG(field) offsetof(ingest_config_t, field)
static const ob_cfg_spec_t ingest_specs[] = {
    {"OB_INGEST_THREADS", OB_CFG_INT, "64", 1, 1024, NULL, CFG(threads),
     "HTTP worker threads (each may wait for one Kafka acknowledgement)"},
    {"OB_INGEST_MAX_BODY_BYTES", OB_CFG_INT, "1048576", 1024, 1073741824, NULL, CFG(max_body),
     "largest accepted request body"},
    {"OB_INGEST_MAX_CONNECTIONS", OB_CFG_INT, "4096", 1, 1000000, NULL, CFG(conn_limit),
     "concurrent HTTP connections"},
    {"OB_INGEST_ACK_TIMEOUT_MS", OB_CFG_INT, "10000", 100, 120000, NULL, CFG(ack_timeout_ms),
     "how long a call waits for Kafka's acknowledgement before 503 (it is then never queued)"},
    {"OB_INGEST_PG_POOL", OB_CFG_INT, "16", 1, 256, NULL, CFG(pg_pool),
     "Postgres connections for authentication and queries"},
    {"OB_INGEST_KEY_RATE", OB_CFG_DOUBLE, "5000", 1, 1000000, NULL, CFG(key_rate),
     "requests per second one API key may send (429 above)"},
    {"OB_INGEST_KEY_CONCURRENCY", OB_CFG_INT, "256", 1, 100000, NULL, CFG(key_concurrency),
     "requests one API key may have in progress (429 above)"},
    {"OB_INGEST_MAX_PENDING", OB_CFG_INT, "10000000", 1, 1000000000, NULL, CFG(max_pending),
     "pending calls one deployment may hold (429 above)"},
    {"OB_INGEST_MAX_UPLOAD_BYTES", OB_CFG_INT, "2147483648", 1024, 1099511627776.0, NULL,
     CFG(max_upload), "largest CSV upload or batch body (413 above)"},
    {"OB_INGEST_UPLOAD_LANES", OB_CFG_INT, "2", 1, 64, NULL, CFG(upload_lanes),
     "threads that validate the rows of one CSV upload (1: the request's own thread)"},
    {"OB_INGEST_ADMIN_KEY", OB_CFG_STRING, "", 0, 0, NULL, CFG(admin_key),
     "bootstrap key that may create accounts (at least 32 characters; empty: none)"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const ob_metric_t metric_defs[M_COUNT] = {
    [M_CALLS_QUEUED] = {"outbound_calls_queued_total", NULL,
                        "calls accepted (acknowledged by Kafka)", OB_METRIC_COUNTER, 0},
    /* HTTP requests and per-topic Kafka counters come from ob_http and
     * ob_kafka; this one is the API's view: calls answered 503 because
     * Kafka did not acknowledge them (failure, full queue or timeout). */
    [M_KAFKA_FAILURES] = {"outbound_call_requests_unacknowledged_total", NULL,
                          "call requests Kafka did not acknowledge", OB_METRIC_COUNTER, 0},
    [M_READY] = {"outbound_ready", NULL, "1 when the service can take work", OB_METRIC_GAUGE, 0},
};

static bool ingest_ready(void *arg, const char **why)
{
    ingest_ctx_t *ctx = arg;
    if (!__atomic_load_n(&ctx->kafka_up, __ATOMIC_RELAXED))
        *why = "kafka unreachable";
    else if (!__atomic_load_n(&ctx->pg_up, __ATOMIC_RELAXED))
        *why = "postgres unreachable";
    else if (ob_stop_requested)
        *why = "draining";
    else
        return true;
    return false;
}

static char *ingest_metrics(void *arg)
{
    ingest_ctx_t *ctx = arg;
    char *own = ob_metrics_render(ctx->metrics, M_COUNT);
    char *kafka = ob_kafka_metrics_render(ctx->kafka_metrics);
    char *text = ob_xasprintf("%s%s", own, kafka);
    free(own);
    free(kafka);
    return text;
}

/* Refreshes the readiness flags; runs once a second on the main thread. */
static void check_dependencies(ingest_ctx_t *ctx)
{
    PGconn *conn = NULL;
    ob_err_t err = {{0}};
    bool kafka = ob_kafka_reachable(ob_producer_handle(ctx->producer), 1000);
    bool pg = ob_pg_pool_get(ctx->pg, 1000, &conn, &err) == OB_OK &&
              ob_pg_exec(conn, "SELECT 1", 0, NULL, NULL, &err) == OB_OK;
    if (conn)
        ob_pg_pool_put(ctx->pg, conn);
    if (kafka != (bool)ctx->kafka_up || pg != (bool)ctx->pg_up)
        OB_INFO("main", "dependencies: kafka %s, postgres %s%s%s", kafka ? "up" : "down",
                pg ? "up" : "down", pg ? "" : ": ", pg ? "" : err.msg);
    __atomic_store_n(&ctx->kafka_up, kafka, __ATOMIC_RELAXED);
    __atomic_store_n(&ctx->pg_up, pg, __ATOMIC_RELAXED);
    ob_metric_set(&ctx->metrics[M_READY], kafka && pg);
}

int main(void)
{
    ingest_config_t cfg = {0};
    ingest_ctx_t ctx = {0};
    ob_http_server_t *http = NULL;
    PGconn *boot = NULL;
    ob_err_t err = {{0}};
    int code = ob_service_configure("ingest", ingest_specs, &cfg);

    if (code == OB_EXIT_OK && cfg.admin_key[0] && strlen(cfg.admin_key) < 32) {
        OB_ERROR("config", "bad configuration: OB_INGEST_ADMIN_KEY must be at least 32 characters");
        code = OB_EXIT_CONFIG;
    }
    if (code != OB_EXIT_OK)
        goto out;
    ctx.cfg = &cfg;
    memcpy(ctx.metrics, metric_defs, sizeof(metric_defs));
    ctx.kafka_metrics = ob_kafka_metrics_new();
    ctx.topic_requests = ob_config_topic(&cfg.base, OB_TOPIC_CALL_REQUESTS);
    ctx.topic_events = ob_config_topic(&cfg.base, OB_TOPIC_CALL_EVENTS);
    ctx.source = ob_xasprintf("/outbound/ingest/%s", cfg.base.instance_id);

    code = OB_EXIT_DEPENDENCY;
    if (ob_service_connect_pg(&cfg.base, 30000, &boot) != OB_OK ||
        ob_service_ensure_topics(&cfg.base, 30000) != OB_OK)
        goto out;
    PQfinish(boot);
    boot = NULL;
    ctx.pg = ob_pg_pool_new(cfg.base.pg_dsn, (size_t)cfg.pg_pool);
    /* A revoked key or changed deployment is seen by other ingest
     * instances within these times (at once by this one). */
    ctx.keys = ingest_cache_new(sizeof(ingest_key_entry_t), 5000);
    ctx.deps = ingest_cache_new(sizeof(deployment_t), 2000);
    ctx.limits = ingest_limits_new(cfg.key_rate, (int)cfg.key_concurrency, (long)cfg.max_pending);
    /* A client waits for each acknowledgement: send at once rather than
     * linger (messages that queue meanwhile still go out in batches). A
     * message not acknowledged within the ack timeout is given up by
     * librdkafka, so a 503 never turns into a queued call later. */
    char message_timeout[24];
    snprintf(message_timeout, sizeof(message_timeout), "%lld", cfg.ack_timeout_ms);
    const char *const tuning[] = {"linger.ms", "0", "message.timeout.ms", message_timeout, NULL};
    static const char *const bulk_tuning[] = {"linger.ms", "5", NULL};
    if (ob_producer_new(&cfg.base, tuning, ctx.kafka_metrics, &ctx.producer, &err) != OB_OK ||
        ob_producer_new(&cfg.base, bulk_tuning, ctx.kafka_metrics, &ctx.bulk, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        goto out;
    }
    check_dependencies(&ctx);

    ob_http_opts_t opts = {
        .addr = cfg.base.http_addr,
        .port = (int)cfg.base.http_port,
        .threads = (unsigned)cfg.threads,
        .connection_limit = (unsigned)cfg.conn_limit,
        .timeout_s = 30,
        .max_body = (size_t)cfg.max_body,
        .handler = ingest_api_handle,
        .stream = ingest_stream,
        .ready = ingest_ready,
        .metrics = ingest_metrics,
        .ctx = &ctx,
    };
    if (ob_http_start(&opts, &http, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        code = OB_EXIT_CONFIG;
        goto out;
    }
    OB_INFO("main", "listening on http://%s:%lld", cfg.base.http_addr, cfg.base.http_port);

    while (!ob_stop_requested && !ob_producer_fatal(ctx.producer) && !ob_producer_fatal(ctx.bulk)) {
        check_dependencies(&ctx);
        ob_service_sleep(1000);
    }

    /* Drain: stop accepting, let requests in progress get their answer,
     * then make sure nothing acknowledged is left in the producer. */
    code = OB_EXIT_OK;
    OB_INFO("main", "drain 1/3: no new connections");
    ob_http_quiesce(http);
    OB_INFO("main", "drain 2/3: finishing requests in progress");
    ob_http_free(http);
    http = NULL;
    OB_INFO("main", "drain 3/3: flushing Kafka");
    bool fatal = ob_producer_fatal(ctx.producer) || ob_producer_fatal(ctx.bulk);
    if (ob_producer_free(ctx.producer, (int)cfg.base.drain_ms) > 0 || fatal)
        code = OB_EXIT_UNDRAINED;
    if (ob_producer_free(ctx.bulk, (int)cfg.base.drain_ms) > 0)
        code = OB_EXIT_UNDRAINED;
    ctx.bulk = NULL;
    ctx.producer = NULL;
    OB_INFO("main", "drained; exit %d", code);
out:
    ob_http_free(http);
    ob_producer_free(ctx.producer, 1000);
    ob_producer_free(ctx.bulk, 1000);
    ob_kafka_metrics_free(ctx.kafka_metrics);
    ob_pg_pool_free(ctx.pg);
    ingest_limits_free(ctx.limits);
    ingest_cache_free(ctx.keys);
    ingest_cache_free(ctx.deps);
    PQfinish(boot);
    free(ctx.topic_requests);
    free(ctx.topic_events);
    free(ctx.source);
    ob_config_free(ingest_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
