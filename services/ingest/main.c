/*
 * outbound-ingest: the HTTP front door. Validates requests, assigns call ids
 * and produces each accepted call to outbound.call-requests keyed by its
 * deployment, answering only after the broker acknowledged it.
 */
#include "ingest.h"
#include "ingest_accepted.h"
#include "ingest_api.h"
#include "ingest_idempotency.h"
#include "ingest_cache.h"
#include "ingest_limits.h"
#include "ingest_store.h"
#include "ob_log.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const ob_metric_t metric_defs[M_COUNT] = {
    [M_CALLS_QUEUED] = {"outbound_calls_queued_total", NULL,
                        "calls accepted (acknowledged by Kafka)", OB_METRIC_COUNTER, 0},
    /* HTTP requests and per-topic Kafka counters come from ob_http and
     * ob_kafka; this one is the API's view: calls answered 503 because
     * Kafka did not acknowledge them (failure, full queue or timeout). */
    [M_KAFKA_FAILURES] = {"outbound_call_requests_unacknowledged_total", NULL,
                          "call requests Kafka did not acknowledge", OB_METRIC_COUNTER, 0},
    [M_READY] = {"outbound_ready", NULL, "1 when the service can take work", OB_METRIC_GAUGE, 0},
    [M_RECORDING_LAG] = {"outbound_call_recording_lag_seconds", NULL,
                         "age of the oldest accepted call the scheduler has not recorded"
                         " (0 when none; about 1-2 s at rest: the scheduler commits every second)",
                         OB_METRIC_GAUGE, 0},
    [M_UNRECORDED] = {"outbound_calls_unrecorded", NULL,
                      "accepted calls not recorded yet, held to answer GET", OB_METRIC_GAUGE, 0},
};

static bool kafka_up(const void *arg)
{
    const ingest_ctx_t *ctx = arg;
    return __atomic_load_n(&ctx->kafka_up, __ATOMIC_RELAXED);
}

static bool pg_up(const void *arg)
{
    const ingest_ctx_t *ctx = arg;
    return __atomic_load_n(&ctx->pg_up, __ATOMIC_RELAXED);
}

/* A GET of a call accepted but not recorded yet is answered from the reader. */
static bool reading_accepted(const void *arg)
{
    const ingest_ctx_t *ctx = arg;
    return ingest_accepted_ready(ctx->accepted);
}

/* /readyz answers the first that fails; outbound_ready is Kafka and Postgres. */
static const ob_service_check_t checks[] = {
    {"kafka unreachable", kafka_up, true},
    {"postgres unreachable", pg_up, true},
    {"not reading accepted calls yet", reading_accepted, false},
    {"draining", ob_service_not_draining, false},
    {NULL, NULL, false},
};

/* Refreshes the readiness flags; runs once a second on the main thread. */
static void check_dependencies(ingest_ctx_t *ctx)
{
    PGconn *conn = NULL;
    ob_err_t err = {{0}};
    /* A stopped broker refuses at once; a slow answer under load is not an
     * outage (calls are refused while Kafka is down, so it must be one). */
    bool kafka = ob_producer_reachable(ctx->producer, 3000);
    bool pg = ob_pg_pool_get(ctx->pg, 1000, &conn, &err) == OB_OK &&
              ingest_store_ping(conn, &err) == OB_OK;
    if (conn)
        ob_pg_pool_put(ctx->pg, conn);
    if (kafka != (bool)ctx->kafka_up || pg != (bool)ctx->pg_up)
        OB_INFO("main", "dependencies: kafka %s, postgres %s%s%s", kafka ? "up" : "down",
                pg ? "up" : "down", pg ? "" : ": ", pg ? "" : err.msg);
    __atomic_store_n(&ctx->kafka_up, kafka, __ATOMIC_RELAXED);
    __atomic_store_n(&ctx->pg_up, pg, __ATOMIC_RELAXED);
}

static int check_config(const ingest_config_t *cfg)
{
    if (cfg->admin_key[0] && strlen(cfg->admin_key) < 32) {
        OB_ERROR("config", "bad configuration: OB_INGEST_ADMIN_KEY must be at least 32 characters");
        return OB_EXIT_CONFIG;
    }
    return OB_EXIT_OK;
}

/* What needs no dependency: the registry, topic names, caches and limits. */
static void init(ingest_ctx_t *ctx, const ingest_config_t *cfg)
{
    ctx->cfg = cfg;
    memcpy(ctx->metrics, metric_defs, sizeof(metric_defs));
    ctx->kafka_metrics = ob_kafka_metrics_new();
    ctx->svc = (ob_service_t){
        .checks = checks,
        .metrics = ctx->metrics,
        .nmetrics = M_COUNT,
        .ready = &ctx->metrics[M_READY],
        .kafka = ctx->kafka_metrics,
    };
    ctx->topic_requests = ob_config_topic(&cfg->base, OB_TOPIC_CALL_REQUESTS);
    ctx->topic_events = ob_config_topic(&cfg->base, OB_TOPIC_CALL_EVENTS);
    ctx->source = ob_xasprintf("/outbound/ingest/%s", cfg->base.instance_id);
    ctx->pg = ob_pg_pool_new(cfg->base.pg_dsn, (size_t)cfg->pg_pool);
    /* A revoked key or changed deployment is seen by other ingest
     * instances within these times (at once by this one). */
    ctx->keys = ingest_cache_new(sizeof(ingest_key_entry_t), 5000);
    ctx->deps = ingest_cache_new(sizeof(deployment_t), 2000);
    ctx->limits =
        ingest_limits_new(cfg->key_rate, (int)cfg->key_concurrency, (long)cfg->max_pending);
    ctx->claims = ingest_claims_new(cfg->idem_lease_ms);
}

/* The accepted-calls reader, the producers and the HTTP server. */
static int start(ingest_ctx_t *ctx)
{
    const ingest_config_t *cfg = ctx->cfg;
    ob_err_t err = {{0}};
    char *scheduler_group = ob_xasprintf("%sscheduler", cfg->base.topic_prefix);
    ctx->accepted = ingest_accepted_start(
        &cfg->base, ctx->topic_requests, scheduler_group, (size_t)cfg->accepted_max_bytes,
        &ctx->metrics[M_RECORDING_LAG], &ctx->metrics[M_UNRECORDED], &err);
    free(scheduler_group);
    if (!ctx->accepted) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    /* A client waits for each acknowledgement: send at once rather than
     * linger (messages that queue meanwhile still go out in batches). A
     * message not acknowledged within the ack timeout is given up by
     * librdkafka, so a 503 never turns into a queued call later. */
    char message_timeout[24];
    snprintf(message_timeout, sizeof(message_timeout), "%lld", cfg->ack_timeout_ms);
    const char *const tuning[] = {"linger.ms", "0", "message.timeout.ms", message_timeout, NULL};
    if (ob_producer_new(&cfg->base, tuning, ctx->kafka_metrics, &ctx->producer, &err) != OB_OK ||
        ob_producer_new(&cfg->base, ob_kafka_tuning_bulk, ctx->kafka_metrics, &ctx->bulk, &err) !=
            OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    check_dependencies(ctx);
    /* Every connection is a descriptor; Postgres, Kafka and files need more. */
    ob_service_want_files(cfg->conn_limit + cfg->pg_pool + 256);

    ob_http_opts_t opts = ingest_http_opts(cfg);
    opts.handler = ingest_api_handle;
    opts.stream = ingest_stream;
    opts.ctx = ctx;
    return ob_service_http_start(&ctx->svc, &opts);
}

static bool kafka_fatal(const ingest_ctx_t *ctx)
{
    return ob_producer_fatal(ctx->producer) || ob_producer_fatal(ctx->bulk);
}

/* Nothing acknowledged may be left in a producer. */
static bool flush_kafka(void *arg, int64_t deadline_ms)
{
    ingest_ctx_t *ctx = arg;
    ingest_accepted_stop(ctx->accepted);
    ctx->accepted = NULL;
    bool single = ob_service_flush_producer(&ctx->producer, deadline_ms);
    return ob_service_flush_producer(&ctx->bulk, deadline_ms) && single;
}

/* Stop accepting, let requests in progress get their answer, flush. */
static const ob_drain_step_t drain_steps[] = {
    {"no new connections", ob_service_stop_accepting, 5},
    {"finishing requests in progress", ob_service_http_close, 45},
    {"flushing Kafka", flush_kafka, 50},
    {NULL, NULL, 0},
};

static void cleanup(ingest_ctx_t *ctx)
{
    ob_http_free(ctx->svc.http);
    ob_producer_free(ctx->producer, 1000);
    ob_producer_free(ctx->bulk, 1000);
    ob_kafka_metrics_free(ctx->kafka_metrics);
    ob_pg_pool_free(ctx->pg);
    ingest_limits_free(ctx->limits);
    ingest_claims_free(ctx->claims);
    ingest_accepted_stop(ctx->accepted);
    ingest_cache_free(ctx->keys);
    ingest_cache_free(ctx->deps);
    free(ctx->topic_requests);
    free(ctx->topic_events);
    free(ctx->source);
}

int main(int argc, char **argv)
{
    ingest_config_t cfg = {0};
    ingest_ctx_t ctx = {0};
    int code = ob_service_args("ingest", "the HTTP API that accepts calls and queues them to Kafka",
                               argc, argv, ingest_config_specs);
    if (code >= 0)
        return code;
    code = ob_service_configure("ingest", ingest_config_specs, &cfg);

    if (code == OB_EXIT_OK)
        code = check_config(&cfg);
    if (code != OB_EXIT_OK)
        goto out;
    init(&ctx, &cfg);
    if ((code = ob_service_connect(&cfg.base, NULL)) != OB_EXIT_OK ||
        (code = start(&ctx)) != OB_EXIT_OK)
        goto out;
    OB_INFO("main", "listening on http://%s:%lld", cfg.base.http_addr, cfg.base.http_port);

    while (!ob_stop_requested && !kafka_fatal(&ctx)) {
        check_dependencies(&ctx);
        ingest_idem_renew(&ctx);
        ob_service_sleep(1000);
    }

    code = ob_service_drain(drain_steps, &ctx, cfg.base.drain_ms);
out:
    cleanup(&ctx);
    ob_config_free(ingest_config_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
