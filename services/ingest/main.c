/*
 * outbound-ingest: the HTTP front door. Validates requests, assigns call ids
 * and produces each accepted call to outbound.call-requests keyed by its
 * deployment, answering only after the broker acknowledged it.
 */
#include "ingest.h"
#include "ingest_accepted.h"
#include "ingest_cache.h"
#include "ingest_limits.h"
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

static bool ingest_ready(void *arg, const char **why)
{
    ingest_ctx_t *ctx = arg;
    if (!__atomic_load_n(&ctx->kafka_up, __ATOMIC_RELAXED))
        *why = "kafka unreachable";
    else if (!__atomic_load_n(&ctx->pg_up, __ATOMIC_RELAXED))
        *why = "postgres unreachable";
    else if (!ingest_accepted_ready(ctx->accepted))
        *why = "not reading accepted calls yet";
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
    /* A stopped broker refuses at once; a slow answer under load is not an
     * outage (calls are refused while Kafka is down, so it must be one). */
    bool kafka = ob_kafka_reachable(ob_producer_handle(ctx->producer), 3000);
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
    int code = ob_service_configure("ingest", ingest_config_specs, &cfg);

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
    char *scheduler_group = ob_xasprintf("%sscheduler", cfg.base.topic_prefix);
    ctx.accepted = ingest_accepted_start(
        &cfg.base, ctx.topic_requests, scheduler_group, (size_t)cfg.accepted_max_bytes,
        &ctx.metrics[M_RECORDING_LAG], &ctx.metrics[M_UNRECORDED], &err);
    free(scheduler_group);
    if (!ctx.accepted) {
        OB_ERROR("main", "%s", err.msg);
        goto out;
    }
    ctx.pg = ob_pg_pool_new(cfg.base.pg_dsn, (size_t)cfg.pg_pool);
    /* A revoked key or changed deployment is seen by other ingest
     * instances within these times (at once by this one). */
    ctx.keys = ingest_cache_new(sizeof(ingest_key_entry_t), 5000);
    ctx.deps = ingest_cache_new(sizeof(deployment_t), 2000);
    ctx.limits = ingest_limits_new(cfg.key_rate, (int)cfg.key_concurrency, (long)cfg.max_pending);
    ctx.claims = ingest_claims_new(cfg.idem_lease_ms);
    /* A client waits for each acknowledgement: send at once rather than
     * linger (messages that queue meanwhile still go out in batches). A
     * message not acknowledged within the ack timeout is given up by
     * librdkafka, so a 503 never turns into a queued call later. */
    char message_timeout[24];
    snprintf(message_timeout, sizeof(message_timeout), "%lld", cfg.ack_timeout_ms);
    const char *const tuning[] = {"linger.ms", "0", "message.timeout.ms", message_timeout, NULL};
    if (ob_producer_new(&cfg.base, tuning, ctx.kafka_metrics, &ctx.producer, &err) != OB_OK ||
        ob_producer_new(&cfg.base, ob_kafka_tuning_bulk, ctx.kafka_metrics, &ctx.bulk, &err) !=
            OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        goto out;
    }
    check_dependencies(&ctx);
    /* Every connection is a descriptor; Postgres, Kafka and files need more. */
    ob_service_want_files(cfg.conn_limit + cfg.pg_pool + 256);

    ob_http_opts_t opts = ingest_http_opts(&cfg);
    opts.handler = ingest_api_handle;
    opts.stream = ingest_stream;
    opts.ready = ingest_ready;
    opts.metrics = ingest_metrics;
    opts.ctx = &ctx;
    if (ob_http_start(&opts, &http, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        code = OB_EXIT_CONFIG;
        goto out;
    }
    OB_INFO("main", "listening on http://%s:%lld", cfg.base.http_addr, cfg.base.http_port);

    while (!ob_stop_requested && !ob_producer_fatal(ctx.producer) && !ob_producer_fatal(ctx.bulk)) {
        check_dependencies(&ctx);
        ingest_idem_renew(&ctx);
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
    ingest_accepted_stop(ctx.accepted);
    ctx.accepted = NULL;
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
    ingest_claims_free(ctx.claims);
    ingest_accepted_stop(ctx.accepted);
    ingest_cache_free(ctx.keys);
    ingest_cache_free(ctx.deps);
    PQfinish(boot);
    free(ctx.topic_requests);
    free(ctx.topic_events);
    free(ctx.source);
    ob_config_free(ingest_config_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
