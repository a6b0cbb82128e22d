/*
 * outbound-scheduler: owns deployments by their call-requests partition,
 * records accepted calls in Postgres and releases dial jobs when a
 * deployment has free capacity and a call is due.
 */
#include "ob_events.h"
#include "ob_http.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_service.h"
#include "ob_signal.h"
#include "scheduler.h"
#include "scheduler_route.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_METRIC(reason)                                                                        \
    {                                                                                              \
        "outbound_calls_pending", "waiting_for=\"" reason "\"",                                    \
            "pending calls of the owned partitions by what they wait for", OB_METRIC_GAUGE, 0      \
    }

/* How often scheduled calls are checked against their campaign window. */
#define PRECHECK_MS 1000

/* The soonest a pass follows the previous one when new calls were recorded. */
#define RECORD_PASS_MS 10

#define CFG(field) offsetof(scheduler_config_t, field)
static const ob_cfg_spec_t scheduler_specs[] = {
    {"OB_SCHEDULER_TICK_MS", OB_CFG_INT, "100", 5, 60000, NULL, CFG(tick_ms),
     "interval between release passes"},
    {"OB_SCHEDULER_LEASE_S", OB_CFG_INT, "900", 10, 86400, NULL, CFG(lease_s),
     "how long a released dial job may wait for a dialer; after it the attempt is "
     "withdrawn (not counted) and the call released again"},
    {"OB_SCHEDULER_BATCH", OB_CFG_INT, "500", 1, 2000, NULL, CFG(batch),
     "call requests recorded per Postgres transaction"},
    {"OB_SCHEDULER_RELEASE_MAX", OB_CFG_INT, "500", 1, 10000, NULL, CFG(release_max),
     "dial jobs released per deployment per pass"},
    {"OB_SCHEDULER_CLOCK_START_MS", OB_CFG_INT, "0", 0, 9007199254740991.0, NULL,
     CFG(clock_start_ms),
     "for tests only: the Unix ms the scheduler's clock reads when it starts (0: the real "
     "clock); start times, expiry, campaign windows and release times follow this clock, "
     "leases and the dialers keep real time"},
    {"OB_SCHEDULER_CLOCK_SCALE", OB_CFG_DOUBLE, "1", 0.001, 1000000, NULL, CFG(clock_scale),
     "for tests only: how many times faster than real time the scheduler's clock runs"},
    {"OB_SCHEDULER_METRICS_DEPLOYMENTS", OB_CFG_INT, "100", 0, 10000, NULL,
     CFG(metrics_deployments),
     "deployments with their own `deployment` label in the queue gauges: the busiest "
     "(most calls waiting or in flight); the rest are summed under "
     "`deployment=\"_other\"`"},
    {"OB_SCHEDULER_STATS_MS", OB_CFG_INT, "5000", 100, 600000, NULL, CFG(stats_ms),
     "interval between counts of the queue gauges (one query over the unfinished calls of "
     "the owned partitions; a few hundred ms at a million)"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const ob_metric_t metric_defs[M_COUNT] = {
    [M_RECORDED] = {"outbound_calls_recorded_total", NULL, "accepted calls recorded in Postgres",
                    OB_METRIC_COUNTER, 0},
    [M_RELEASED] = {"outbound_dial_jobs_released_total", NULL, "dial jobs released to dialers",
                    OB_METRIC_COUNTER, 0},
    [M_EXPIRED] = {"outbound_calls_expired_total", NULL,
                   "calls ended because they expired before dialing", OB_METRIC_COUNTER, 0},
    [M_LEASES] = {"outbound_leases_expired_total", NULL,
                  "attempts concluded by the scheduler because their lease ran out",
                  OB_METRIC_COUNTER, 0},
    [M_DEFERRED] = {"outbound_calls_deferred_window_total", NULL,
                    "due calls moved to their campaign window's next opening", OB_METRIC_COUNTER,
                    0},
    [M_WINDOW_CLOSED] = {"outbound_calls_window_closed_total", NULL,
                         "calls ended because no campaign window opens before their expiry",
                         OB_METRIC_COUNTER, 0},
    [M_POISON] = {"outbound_request_messages_invalid_total", NULL,
                  "call-request messages that could not be recorded", OB_METRIC_COUNTER, 0},
    [M_OWNED] = {"outbound_scheduler_partitions_owned", NULL,
                 "call-requests partitions owned by this instance", OB_METRIC_GAUGE, 0},
    [M_READY] = {"outbound_ready", NULL, "1 when the service can take work", OB_METRIC_GAUGE, 0},
/* outbound_calls_pending: one series per wait reason, in the vocabulary's order */
#define X(e, s) [M_WAIT + e] = WAIT_METRIC(s),
    OB_WAIT_LIST(X)
#undef X
};

/* The per-deployment queue gauges, after the registry. */
static char *render_stats(void *arg)
{
    return scheduler_stats_render(arg);
}

static void relay_events(scheduler_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    int n = ob_events_relay(ctx->producer, ctx->topic_events, ctx->pg, 10000, 1000, &err);
    if (n > 0)
        OB_INFO("main", "relayed %d unpublished event(s)", n);
    else if (n < 0)
        OB_WARN("main", "event relay: %s", err.msg);
}

/* What needs no dependency: the registry, topic names, the clock. */
static void init(scheduler_ctx_t *ctx, const scheduler_config_t *cfg)
{
    ctx->cfg = cfg;
    memcpy(ctx->metrics, metric_defs, sizeof(metric_defs));
    ctx->kafka_metrics = ob_kafka_metrics_new();
    ctx->pg_writes = ob_pg_write_metrics_new();
    ctx->svc = (ob_service_t){
        .checks = ob_service_pg_checks,
        .metrics = ctx->metrics,
        .nmetrics = M_COUNT,
        .ready = &ctx->metrics[M_READY],
        .render = render_stats,
        .pg_writes = ctx->pg_writes,
        .kafka = ctx->kafka_metrics,
    };
    pthread_mutex_init(&ctx->stats_mu, NULL);
    ctx->topic_requests = ob_config_topic(&cfg->base, OB_TOPIC_CALL_REQUESTS);
    ctx->topic_jobs = ob_config_topic(&cfg->base, OB_TOPIC_DIAL_JOBS);
    ctx->topic_events = ob_config_topic(&cfg->base, OB_TOPIC_CALL_EVENTS);
    ctx->source = ob_xasprintf("/outbound/scheduler/%s", cfg->base.instance_id);
    ctx->clock_real0_ms = ob_now_ms();
    ctx->route = scheduler_route_new();
    if (cfg->clock_start_ms || cfg->clock_scale != 1)
        OB_WARN("main", "test clock: starts at %lld ms and runs %gx real time", cfg->clock_start_ms,
                cfg->clock_scale);
}

/* The call-requests consumer, the producer and the HTTP server. */
static int start(scheduler_ctx_t *ctx)
{
    const scheduler_config_t *cfg = ctx->cfg;
    ob_err_t err = {{0}};
    ob_service_set_pg_up(&ctx->svc, true);
    char *group = ob_xasprintf("%sscheduler", cfg->base.topic_prefix);
    const char *topics[] = {ctx->topic_requests, NULL};
    ob_rc_t rc = ob_consumer_new(&cfg->base, group, topics, "earliest", scheduler_on_rebalance, ctx,
                                 ctx->kafka_metrics, &ctx->requests, &err);
    free(group);
    if (rc != OB_OK ||
        ob_producer_new(&cfg->base, NULL, ctx->kafka_metrics, &ctx->producer, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    ob_http_opts_t opts = {
        .addr = cfg->base.http_addr,
        .port = (int)cfg->base.http_port,
        .threads = 1,
        .max_body = 4096,
        .ctx = ctx,
    };
    return ob_service_http_start(&ctx->svc, &opts);
}

/* Records accepted calls and releases due ones until stopped. */
static void serve(scheduler_ctx_t *ctx)
{
    int64_t next_release = 0, last_release = 0, next_relay = ob_mono_ms() + 5000;
    int64_t next_count = ob_mono_ms() + 1000, next_precheck = 0;
    while (!ob_stop_requested && !ob_producer_fatal(ctx->producer)) {
        int64_t now = ob_mono_ms();
        int wait = next_release > now ? (int)(next_release - now) : 0;
        /* New calls may be due now: a pass soon, not at the next tick. */
        if (scheduler_record_poll(ctx, wait) > 0 && next_release > last_release + RECORD_PASS_MS)
            next_release = last_release + RECORD_PASS_MS;
        now = ob_mono_ms();
        if (now >= next_release) {
            scheduler_release_pass(ctx);
            last_release = now;
            next_release = now + ctx->cfg->tick_ms;
        }
        if (now >= next_relay) {
            relay_events(ctx);
            next_relay = now + 5000;
        }
        if (now >= next_precheck) {
            scheduler_precheck_windows(ctx);
            next_precheck = ob_mono_ms() + PRECHECK_MS;
        }
        if (now >= next_count) {
            scheduler_count_pending(ctx);
            next_count = ob_mono_ms() + ctx->cfg->stats_ms;
        }
    }
}

static bool leave_group(void *arg, int64_t deadline_ms)
{
    (void)deadline_ms;
    return ob_service_leave_group(&((scheduler_ctx_t *)arg)->requests);
}

static bool flush_kafka(void *arg, int64_t deadline_ms)
{
    return ob_service_flush_producer(&((scheduler_ctx_t *)arg)->producer, deadline_ms);
}

static bool close_pg_and_http(void *arg, int64_t deadline_ms)
{
    scheduler_ctx_t *ctx = arg;
    ob_service_http_close(ctx, deadline_ms);
    PQfinish(ctx->pg);
    PQfinish(ctx->pg2);
    ctx->pg = ctx->pg2 = NULL;
    return true;
}

/* Nothing is held in memory between passes, so stopping means committing
 * what was recorded and flushing what was produced. */
static const ob_drain_step_t drain_steps[] = {
    {"leaving the consumer group (commits recorded offsets)", leave_group, 40},
    {"flushing Kafka", flush_kafka, 55},
    {"closing Postgres and HTTP", close_pg_and_http, 5},
    {NULL, NULL, 0},
};

static void cleanup(scheduler_ctx_t *ctx)
{
    ob_http_free(ctx->svc.http);
    ob_consumer_close(ctx->requests);
    ob_producer_free(ctx->producer, 1000);
    ob_kafka_metrics_free(ctx->kafka_metrics);
    free(ctx->stats_text);
    ob_metric_family_free(ctx->pg_writes);
    PQfinish(ctx->pg);
    PQfinish(ctx->pg2);
    free(ctx->topic_requests);
    free(ctx->topic_jobs);
    free(ctx->topic_events);
    free(ctx->source);
    scheduler_windows_free(ctx);
    scheduler_route_free(ctx->route);
}

int main(int argc, char **argv)
{
    scheduler_config_t cfg = {0};
    scheduler_ctx_t ctx = {0};
    int code = ob_service_args("scheduler",
                               "records accepted calls and releases dial jobs within capacity"
                               " and campaign windows",
                               argc, argv, scheduler_specs);
    if (code >= 0)
        return code;
    code = ob_service_configure("scheduler", scheduler_specs, &cfg);

    if (code != OB_EXIT_OK)
        goto out;
    init(&ctx, &cfg);
    if ((code = ob_service_connect(&cfg.base, &ctx.pg)) != OB_EXIT_OK ||
        (code = start(&ctx)) != OB_EXIT_OK)
        goto out;
    OB_INFO("main", "scheduling; health on http://%s:%lld", cfg.base.http_addr, cfg.base.http_port);

    serve(&ctx);

    code = ob_service_drain(drain_steps, &ctx, cfg.base.drain_ms);
out:
    cleanup(&ctx);
    ob_config_free(scheduler_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
