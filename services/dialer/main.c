/*
 * outbound-dialer: a worker that consumes dial jobs, places the calls
 * through its carrier on one event loop, and records and publishes every
 * state change. Several workers share the jobs as one consumer group.
 */
#include "dialer.h"
#include "dialer_media.h"
#include "dialer_webhooks.h"
#include "ob_http.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CFG(field) offsetof(dialer_config_t, field)
static const ob_cfg_spec_t dialer_specs[] = {
    {"OB_DIALER_CHANNELS", OB_CFG_INT, "100", 1, 100000, NULL, CFG(channels),
     "concurrent calls of this worker (with the sip carrier: the trunk's channel count)"},
    {"OB_DIALER_LEASE_S", OB_CFG_INT, "60", 3, 3600, NULL, CFG(lease_s),
     "lease held on each call being dialed, renewed every third of it; if the worker "
     "dies, the scheduler concludes the call when the lease runs out"},
    {"OB_DIALER_CARRIER", OB_CFG_ENUM, "sim", 0, 0, "sim|sip", CFG(carrier),
     "the carrier that places the calls: `sim` (simulated, docs/sim.md) or `sip` (a SIP "
     "trunk, the OB_SIP_* settings, docs/sip.md)"},
    {"OB_SIM_TIME_SCALE", OB_CFG_DOUBLE, "1", 0.001, 1000000, NULL, CFG(sim_time_scale),
     "sim carrier: calls run this many times faster than real time"},
    {"OB_SIM_SEED", OB_CFG_INT, "1", 0, 9007199254740991.0, NULL, CFG(sim_seed),
     "sim carrier: seed of the outcomes of non-test numbers"},
    {"OB_SIM_AUDIO_DIR", OB_CFG_STRING, "", 0, 0, NULL, CFG(sim_audio_dir),
     "sim carrier: a corpus made by tools/detect_corpus.py; each answered sim call plays "
     "one of its recordings labelled with the drawn outcome to the callee-type detector, "
     "whose verdict, time, confidence and rule become the call's (make run sets it to "
     "build/detect/small); empty: drawn outcomes only"},
    {"OB_SIP_TRUNK", OB_CFG_STRING, "", 0, 0, NULL, CFG(sip_trunk),
     "the trunk's host or `host:port` (a name is resolved with the system's DNS servers); "
     "calls go to sip:<number>@<trunk>; required with OB_DIALER_CARRIER=sip"},
    {"OB_SIP_LOCAL_ADDR", OB_CFG_STRING, "127.0.0.1", 0, 0, NULL, CFG(sip_local_addr),
     "the IPv4 address SIP and RTP bind and advertise (Contact, Via, SDP); one the trunk "
     "can reach"},
    {"OB_SIP_PORT", OB_CFG_INT, "5060", 1, 65535, NULL, CFG(sip_port), "the local SIP port (UDP)"},
    {"OB_SIP_RTP_PORT_MIN", OB_CFG_INT, "16384", 1024, 65534, NULL, CFG(sip_rtp_port_min),
     "lowest RTP port; calls take even ones, and the range must hold one per channel"},
    {"OB_SIP_RTP_PORT_MAX", OB_CFG_INT, "32767", 1025, 65535, NULL, CFG(sip_rtp_port_max),
     "highest RTP port; the range must hold one even port per channel"},
    {"OB_SIP_CPS", OB_CFG_DOUBLE, "0", 0, 100000, NULL, CFG(sip_cps),
     "the trunk's calls-per-second limit (fractions allowed: 0.5 is one call every 2 s); "
     "the scheduler routes no more than that to the dialer per second, and the dialer "
     "paces its INVITEs to it; 0: none"},
    {"OB_SIP_USERNAME", OB_CFG_STRING, "", 0, 0, NULL, CFG(sip_username),
     "digest credentials for the trunk's 401/407: the user name; empty: none"},
    {"OB_SIP_PASSWORD", OB_CFG_STRING, "", 0, 0, NULL, CFG(sip_password),
     "digest credentials for the trunk's 401/407: the password"},
    {"OB_SIP_FROM_DOMAIN", OB_CFG_STRING, "", 0, 0, NULL, CFG(sip_from_domain),
     "host of the From URI sip:<caller id>@<domain>; empty: the trunk's host"},
    {"OB_SIP_ANONYMOUS_ID", OB_CFG_STRING, "anonymous", 0, 0, NULL, CFG(sip_anonymous_id),
     "From user of calls without a caller id"},
    {"OB_SIP_RING_TIMEOUT_S", OB_CFG_INT, "30", 1, 600, NULL, CFG(sip_ring_timeout_s),
     "unanswered this long after the INVITE: CANCEL, result `noanswer`"},
    {"OB_SIP_RESPONSE_TIMEOUT_MS", OB_CFG_INT, "5000", 100, 64000, NULL,
     CFG(sip_response_timeout_ms),
     "no response at all (not even 100 Trying) this long after the INVITE: result "
     "`linefailure`"},
    {"OB_SIP_TALK_LIMIT_S", OB_CFG_INT, "3600", 1, 86400, NULL, CFG(sip_talk_limit_s),
     "an answered call is hung up (BYE) after this long"},
    {"OB_DIALER_APP_TIMEOUT_MS", OB_CFG_INT, "5000", 100, 120000, NULL, CFG(app_timeout_ms),
     "time a `start_url` request may take, connecting included, before it is recorded as "
     "failed; also bounds each `GET` of a `verify_urls` check"},
    {"OB_DIALER_APP_CONCURRENCY", OB_CFG_INT, "500", 1, 100000, NULL, CFG(app_concurrency),
     "`start_url` requests in flight at once; more wait in a queue"},
    {"OB_WEBHOOK_ENABLED", OB_CFG_BOOL, "true", 0, 0, NULL, CFG(webhook_enabled),
     "send `result_url` webhooks from this worker (the workers share the deliveries)"},
    {"OB_WEBHOOK_CONCURRENCY", OB_CFG_INT, "256", 1, 10000, NULL, CFG(webhook_concurrency),
     "webhook transfers in flight at once"},
    {"OB_WEBHOOK_TIMEOUT_MS", OB_CFG_INT, "10000", 100, 120000, NULL, CFG(webhook_timeout_ms),
     "time one webhook try may take, connecting included"},
    {"OB_WEBHOOK_RETRY_BASE_MS", OB_CFG_INT, "5000", 10, 3600000, NULL, CFG(webhook_retry_base_ms),
     "wait after a webhook's first failed try; doubles each time"},
    {"OB_WEBHOOK_RETRY_MAX_MS", OB_CFG_INT, "3600000", 10, 86400000, NULL,
     CFG(webhook_retry_max_ms), "longest wait between two tries of a webhook"},
    {"OB_WEBHOOK_MAX_AGE_S", OB_CFG_INT, "86400", 1, 2592000, NULL, CFG(webhook_max_age_s),
     "a webhook not delivered this long after its call completed is given up (`failed`)"},
    {"OB_DIALER_MEDIA_CACHE_MB", OB_CFG_INT, "64", 1, 65536, NULL, CFG(media_cache_mb),
     "rendered `say` and fetched `play` audio kept, together; the least recently used goes"},
    {"OB_DIALER_PLAY_MAX_BYTES", OB_CFG_INT, "5000000", 1000, 1000000000, NULL, CFG(play_max_bytes),
     "largest audio file a `play` fetches; a larger one fails the verb"},
    {"OB_DIALER_PLAY_TIMEOUT_MS", OB_CFG_INT, "5000", 100, 120000, NULL, CFG(play_timeout_ms),
     "time the fetch of a `play` file may take, connecting and redirects included"},
    {"OB_DIALER_TTS_TIMEOUT_MS", OB_CFG_INT, "3000", 100, 60000, NULL, CFG(tts_timeout_ms),
     "time the rendering of one `say` may take"},
    {"OB_DIALER_MAX_AUDIO_S", OB_CFG_INT, "300", 1, 3600, NULL, CFG(max_audio_s),
     "longest audio a `say` or `play` may last"},
    {"OB_DIALER_URL_DENY", OB_CFG_RANGES, OB_URL_DENY_DEFAULT, 0, 0, NULL, CFG(url_deny),
     "address ranges that `result_url` webhooks, `start_url` and `action_url` requests, "
     "`play` fetches and `verify_urls` "
     "checks may not connect to, checked on the address connected to, after DNS "
     "resolution; the default holds the loopback, private, CGNAT, link-local (cloud "
     "metadata), multicast and reserved ranges; an empty value turns the check off"},
    {"OB_DIALER_URL_ALLOW", OB_CFG_RANGES, "", 0, 0, NULL, CFG(url_allow),
     "ranges allowed even though OB_DIALER_URL_DENY holds them, e.g. `127.0.0.0/8,::1` "
     "for receivers on loopback (make run and the integration tests set exactly that) or "
     "`10.1.2.3` for one internal receiver"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

#define RESULT_METRIC(r)                                                                           \
    {                                                                                              \
        "outbound_results_total", "result=\"" r "\"", "attempt results by callee type or failure", \
            OB_METRIC_COUNTER, 0                                                                   \
    }
static const ob_metric_t metric_defs[M_COUNT] = {
    [M_JOBS] = {"outbound_dial_jobs_taken_total", NULL, "dial jobs started by this worker",
                OB_METRIC_COUNTER, 0},
    [M_STALE_JOBS] = {"outbound_dial_jobs_refused_total", NULL,
                      "dial jobs refused as stale, duplicate or invalid", OB_METRIC_COUNTER, 0},
    [M_IN_FLIGHT] = {"outbound_calls_in_flight", NULL, "calls this worker holds now",
                     OB_METRIC_GAUGE, 0},
    [M_CHANNELS] = {"outbound_dialer_channels", NULL, "channels of this worker", OB_METRIC_GAUGE,
                    0},
    [M_READY] = {"outbound_ready", NULL, "1 when the service can take work", OB_METRIC_GAUGE, 0},
/* outbound_results_total: one series per dialed result, in the vocabulary's order */
#define X(e, s) [M_RESULT + e] = RESULT_METRIC(s),
    OB_RESULT_DIALED_LIST(X)
#undef X
};

#define SIP_METRIC(n, h, k)                                                                        \
    {                                                                                              \
        n, NULL, h, k, 0                                                                           \
    }
static const ob_metric_t sip_metric_defs[SIP_M_COUNT] = {
    [SIP_M_INVITES] =
        SIP_METRIC("outbound_sip_invites_total", "INVITEs sent to the trunk", OB_METRIC_COUNTER),
    [SIP_M_PACED] =
        SIP_METRIC("outbound_sip_calls_waiting_cps",
                   "calls waiting for the trunk's calls-per-second limit", OB_METRIC_GAUGE),
    [SIP_M_RTP_PORTS] =
        SIP_METRIC("outbound_sip_rtp_ports_in_use", "RTP ports held by calls", OB_METRIC_GAUGE),
    [SIP_M_RTP_PACKETS] =
        SIP_METRIC("outbound_sip_rtp_packets_received_total",
                   "RTP audio packets received (early media included)", OB_METRIC_COUNTER),
    [SIP_M_DTMF] =
        SIP_METRIC("outbound_sip_dtmf_digits_sent_total",
                   "post-dial digits sent as RFC 4733 telephone events", OB_METRIC_COUNTER),
    [SIP_M_FAILURES] = SIP_METRIC("outbound_sip_failures_total",
                                  "calls that ended unanswered (a SIP failure, a timeout or our "
                                  "CANCEL)",
                                  OB_METRIC_COUNTER),
    [SIP_M_DIGITS_IN] =
        SIP_METRIC("outbound_sip_dtmf_digits_received_total",
                   "keys callees pressed (RFC 4733 events and in-band DTMF)", OB_METRIC_COUNTER),
};

/* Settings that depend on each other, checked once the table is read. */
static bool sip_config_ok(const dialer_config_t *cfg)
{
    bool ok = true;
    if (strcmp(cfg->carrier, "sip") != 0)
        return true;
    if (!cfg->sip_trunk[0]) {
        OB_ERROR("main", "OB_SIP_TRUNK is required with OB_DIALER_CARRIER=sip");
        ok = false;
    }
    long long ports = (cfg->sip_rtp_port_max - cfg->sip_rtp_port_min) / 2 + 1;
    if (cfg->sip_rtp_port_max <= cfg->sip_rtp_port_min || ports < cfg->channels) {
        OB_ERROR("main",
                 "OB_SIP_RTP_PORT_MIN=%lld..OB_SIP_RTP_PORT_MAX=%lld holds %lld even port(s), "
                 "fewer than OB_DIALER_CHANNELS=%lld",
                 cfg->sip_rtp_port_min, cfg->sip_rtp_port_max, ports < 0 ? 0 : ports,
                 cfg->channels);
        ok = false;
    }
    if (cfg->sip_rtp_port_min % 2 != 0) {
        OB_ERROR("main", "OB_SIP_RTP_PORT_MIN=%lld is odd; RTP ports are even",
                 cfg->sip_rtp_port_min);
        ok = false;
    }
    return ok;
}

/* The carrier OB_DIALER_CARRIER names. */
static ob_rc_t carrier_new(dialer_ctx_t *ctx, ob_err_t *err)
{
    const dialer_config_t *cfg = ctx->cfg;
    if (strcmp(cfg->carrier, "sip") != 0) {
        ctx->carrier = carrier_sim_new((int)cfg->channels, cfg->sim_time_scale,
                                       (uint64_t)cfg->sim_seed, &dialer_carrier_events, ctx);
        if (!cfg->sim_audio_dir[0])
            return OB_OK;
        int n = carrier_sim_play(ctx->carrier, cfg->sim_audio_dir, err);
        if (n < 0)
            return OB_EINVAL;
        OB_INFO("main", "the sim carrier plays %d recording(s) of %s to the detector", n,
                cfg->sim_audio_dir);
        return OB_OK;
    }
    carrier_sip_opts_t o = {
        .channels = (int)cfg->channels,
        .cps = cfg->sip_cps,
        .trunk = cfg->sip_trunk,
        .local_addr = cfg->sip_local_addr,
        .local_port = (int)cfg->sip_port,
        .rtp_port_min = (int)cfg->sip_rtp_port_min,
        .rtp_port_max = (int)cfg->sip_rtp_port_max,
        .username = cfg->sip_username,
        .password = cfg->sip_password,
        .from_domain = cfg->sip_from_domain,
        .anonymous_id = cfg->sip_anonymous_id,
        .ring_timeout_ms = (int)cfg->sip_ring_timeout_s * 1000,
        .response_timeout_ms = (int)cfg->sip_response_timeout_ms,
        .talk_limit_ms = (int)cfg->sip_talk_limit_s * 1000,
        .metrics = ctx->sip_metrics,
    };
    return carrier_sip_new(&o, &dialer_carrier_events, ctx, &ctx->carrier, err);
}

/* The webhook sender's, the sip carrier's and the queue-to-dialing
 * histogram, after the registry. */
static char *render_more(void *arg)
{
    dialer_ctx_t *ctx = arg;
    char *webhooks = dialer_webhooks_metrics(ctx->webhooks);
    char *sip = ob_metrics_render(ctx->sip_metrics, SIP_M_COUNT);
    char *wait = ob_histograms_render(&ctx->queue_to_dialing, 1);
    char *gap = ob_histograms_render(&ctx->first_audio_gap, 1);
    char *text = ob_xasprintf("%s%s%s%s", webhooks, sip, wait, gap);
    free(webhooks);
    free(sip);
    free(wait);
    free(gap);
    return text;
}

/* Pauses or resumes fetching of the whole assignment, so that jobs wait in
 * Kafka, where an idle worker can take them, rather than in a busy worker's
 * memory. */
static void set_fetching(dialer_ctx_t *ctx, bool on)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(ctx->jobs, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (on)
        rd_kafka_resume_partitions(ctx->jobs, parts);
    else
        rd_kafka_pause_partitions(ctx->jobs, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Puts a job back: the partition is rewound to it, so it is fetched again
 * (by this worker or, after a rebalance, by another). */
static void give_back(rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t e = rd_kafka_seek(m->rkt, m->partition, m->offset, 1000);
    if (e)
        OB_WARN("main", "cannot rewind partition %d: %s", m->partition, rd_kafka_err2str(e));
}

/* Reads up to DIALER_TAKE_BATCH dial jobs, waiting wait_ms for the first,
 * into free slots; the next flush records them. A job that arrives when no
 * slot is free (a partition assigned while full) is given back. */
static void take_jobs(dialer_ctx_t *ctx, int wait_ms)
{
    for (int n = 0; n < DIALER_TAKE_BATCH; n++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ctx->jobs, n == 0 ? wait_ms : 0);
        if (!m)
            return;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                OB_WARN("main", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return;
        }
        if (!dialer_slot_next_idle(ctx) || ob_mono_ms() < ctx->flush_after_ms) {
            give_back(m);
            rd_kafka_message_destroy(m);
            return;
        }
        dialer_take_job(ctx, m);
    }
}

/* Runs the carrier and takes jobs while channels are free, until stopped;
 * every turn ends with one flush of the transitions it gathered. */
static void serve(dialer_ctx_t *ctx)
{
    bool fetching = true;

    while (!ob_stop_requested && !ob_producer_fatal(ctx->producer)) {
        dialer_renew_leases(ctx);
        dialer_announce(ctx, false);
        int64_t due = dialer_run(ctx);
        /* Jobs wait in Kafka, where an idle worker can take them, rather
         * than in a busy worker's memory (or while Postgres is away). */
        bool take = dialer_slot_next_idle(ctx) && ob_mono_ms() >= ctx->flush_after_ms;
        if (take != fetching) {
            set_fetching(ctx, take);
            fetching = take;
        }
        int64_t wait = due == INT64_MAX ? 100 : due - ob_mono_ms();
        if (dialer_pending(ctx) > 0 && ob_mono_ms() >= ctx->flush_after_ms)
            wait = 0;
        take_jobs(ctx, (int)(wait < 0 ? 0 : wait > 100 ? 100 : wait));
        dialer_verify(ctx);
        dialer_flush(ctx);
        dialer_relay(ctx);
    }
}

/* The URL policy from the ranges the configuration checked. */
static void load_url_policy(const dialer_config_t *cfg, ob_url_ranges_t **deny,
                            ob_url_ranges_t **allow, ob_url_policy_t *policy)
{
    ob_err_t err = {{0}};
    OB_ASSERT(ob_url_ranges_parse(cfg->url_deny, deny, &err) == OB_OK);
    OB_ASSERT(ob_url_ranges_parse(cfg->url_allow, allow, &err) == OB_OK);
    *policy = (ob_url_policy_t){*deny, *allow, "OB_DIALER_URL_DENY"};
}

/* What needs no dependency: the registries, topic name and call slots. */
static void init(dialer_ctx_t *ctx, const dialer_config_t *cfg)
{
    ctx->cfg = cfg;
    memcpy(ctx->metrics, metric_defs, sizeof(metric_defs));
    ctx->kafka_metrics = ob_kafka_metrics_new();
    ctx->pg_writes = ob_pg_write_metrics_new();
    static const double wait_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,   5,    10,    30,   60,  300,  900, 3600};
    ctx->queue_to_dialing = (ob_histogram_t){
        .name = "outbound_queue_to_dialing_seconds",
        .help = "From when a call was due (accepted, its scheduled start or its retry time) to "
                "its dialing",
        .bounds = wait_bounds,
        .nbounds = OB_COUNTOF(wait_bounds),
    };
    static const double gap_bounds[] = {0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5};
    ctx->first_audio_gap = (ob_histogram_t){
        .name = "outbound_first_audio_gap_seconds",
        .help = "From the end of the callee's first words (the detector's greeting end) to our "
                "first audio on the call; over 2 s counts as abandoned under US rules",
        .bounds = gap_bounds,
        .nbounds = OB_COUNTOF(gap_bounds),
    };
    ctx->time_scale = strcmp(cfg->carrier, "sip") == 0 ? 1.0 : cfg->sim_time_scale;
    memcpy(ctx->sip_metrics, sip_metric_defs, sizeof(sip_metric_defs));
    ob_metric_set(&ctx->metrics[M_CHANNELS], cfg->channels);
    ctx->svc = (ob_service_t){
        .checks = ob_service_pg_checks,
        .metrics = ctx->metrics,
        .nmetrics = M_COUNT,
        .ready = &ctx->metrics[M_READY],
        .render = render_more,
        .pg_writes = ctx->pg_writes,
        .kafka = ctx->kafka_metrics,
    };
    ctx->topic_events = ob_config_topic(&cfg->base, OB_TOPIC_CALL_EVENTS);
    ctx->source = ob_xasprintf("/outbound/dialer/%s", cfg->base.instance_id);
    dialer_slots_init(ctx);
}

/* The carrier (a bad one is configuration) and the start_url client. */
static int start_carrier(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    if (carrier_new(ctx, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_CONFIG;
    }
    if (dialer_app_start(ctx, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    const dialer_config_t *cfg = ctx->cfg;
    dialer_media_opts_t mo = {
        .cache_bytes = cfg->media_cache_mb << 20,
        .fetch_max_bytes = cfg->play_max_bytes,
        .fetch_timeout_ms = (int)cfg->play_timeout_ms,
        .render_timeout_ms = (int)cfg->tts_timeout_ms,
        .max_audio_ms = (int)cfg->max_audio_s * 1000,
        .urls = &ctx->url_policy,
    };
    if (dialer_media_new(&mo, &ctx->media, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    return OB_EXIT_OK;
}

/* The dialers row, the dial-jobs consumer, the producer, the HTTP server and
 * the webhook sender. */
static int start(dialer_ctx_t *ctx)
{
    const dialer_config_t *cfg = ctx->cfg;
    ob_err_t err = {{0}};
    ob_service_set_pg_up(&ctx->svc, true);
    ctx->announcing = true; /* the row exists before any partition is assigned */
    dialer_announce(ctx, true);
    char *group = ob_xasprintf("%sdialers", cfg->base.topic_prefix);
    char *topic_jobs = ob_config_topic(&cfg->base, OB_TOPIC_DIAL_JOBS);
    const char *topics[] = {topic_jobs, NULL};
    ob_rc_t rc = ob_consumer_new(&cfg->base, group, topics, "earliest", dialer_on_rebalance, ctx,
                                 ctx->kafka_metrics, &ctx->jobs, &err);
    free(group);
    free(topic_jobs);
    /* A flush's events are produced together and their acknowledgements
     * collected by a later turn, so a short linger (bulk) costs no turn any
     * time and lets the flushes of a busy worker share requests. */
    if (rc != OB_OK || ob_producer_new(&cfg->base, ob_kafka_tuning_bulk, ctx->kafka_metrics,
                                       &ctx->producer, &err) != OB_OK) {
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
    int code = ob_service_http_start(&ctx->svc, &opts);
    if (code != OB_EXIT_OK)
        return code;
    dialer_webhooks_opts_t wopts = {
        .base = &cfg->base,
        .kafka_metrics = ctx->kafka_metrics,
        .pg_writes = ctx->pg_writes,
        .concurrency = (int)cfg->webhook_concurrency,
        .timeout_ms = (int)cfg->webhook_timeout_ms,
        .retry_base_ms = cfg->webhook_retry_base_ms,
        .retry_max_ms = cfg->webhook_retry_max_ms,
        .max_age_ms = cfg->webhook_max_age_s * 1000,
        .urls = &ctx->url_policy,
    };
    if (cfg->webhook_enabled && dialer_webhooks_start(&wopts, &ctx->webhooks, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_DEPENDENCY;
    }
    return OB_EXIT_OK;
}

static bool stop_taking(void *arg, int64_t deadline_ms)
{
    dialer_ctx_t *ctx = arg;
    (void)deadline_ms;
    OB_INFO("main", "%d call(s) in progress", dialer_active(ctx));
    dialer_withdraw(ctx);
    set_fetching(ctx, false);
    dialer_drop_unverified(ctx);
    return true;
}

/* Lets calls in progress finish until the deadline, then hangs up the rest.
 * Returns true when every call ended by itself. */
static bool finish_calls(dialer_ctx_t *ctx, int64_t deadline)
{
    while (dialer_active(ctx) > 0 && ob_mono_ms() < deadline) {
        dialer_renew_leases(ctx);
        int64_t due = dialer_run(ctx);
        dialer_flush(ctx);
        int64_t wait = due == INT64_MAX ? 50 : due - ob_mono_ms();
        struct timespec ts = {0, (long)((wait < 0 ? 0 : wait > 50 ? 50 : wait) * 1000000L)};
        nanosleep(&ts, NULL);
    }
    if (dialer_active(ctx) == 0)
        return true;
    OB_WARN("main", "drain deadline: hanging up %d call(s) in progress", dialer_active(ctx));
    dialer_hangup_all(ctx);
    /* Their results are recorded before exiting; while Postgres is away for
     * longer, the scheduler concludes them when their leases run out. */
    int64_t last = ob_mono_ms() + 10000;
    while (!dialer_flush(ctx) && ob_mono_ms() < last)
        ob_service_sleep(200);
    if (dialer_pending(ctx) > 0)
        OB_ERROR("main", "%d transition(s) left to the scheduler's lease expiry",
                 dialer_pending(ctx));
    return false;
}

static bool let_calls_finish(void *arg, int64_t deadline_ms)
{
    dialer_ctx_t *ctx = arg;
    bool drained = finish_calls(ctx, deadline_ms);
    dialer_settle(ctx);                  /* the last events' acknowledgements */
    dialer_finish_app(ctx, deadline_ms); /* start_url requests still in flight */
    return drained;
}

static bool stop_webhooks(void *arg, int64_t deadline_ms)
{
    dialer_ctx_t *ctx = arg;
    dialer_webhooks_drain(ctx->webhooks, deadline_ms); /* its metrics stay until cleanup */
    return true;
}

static bool leave_group(void *arg, int64_t deadline_ms)
{
    (void)deadline_ms;
    return ob_service_leave_group(&((dialer_ctx_t *)arg)->jobs);
}

static bool flush_kafka(void *arg, int64_t deadline_ms)
{
    return ob_service_flush_producer(&((dialer_ctx_t *)arg)->producer, deadline_ms);
}

/* Take no new jobs, let calls finish, record them, commit. The calls get
 * most of the deadline; what they leave goes to the steps after. */
static const ob_drain_step_t drain_steps[] = {
    {"no new jobs, withdrawn from routing", stop_taking, 2},
    {"letting calls in progress finish", let_calls_finish, 83},
    {"stopping the webhook sender (unfinished deliveries stay pending)", stop_webhooks, 5},
    {"committing job offsets and leaving the group", leave_group, 5},
    {"flushing Kafka", flush_kafka, 5},
    {NULL, NULL, 0},
};

static void cleanup(dialer_ctx_t *ctx)
{
    dialer_withdraw(ctx); /* before the consumer's revocation could announce again */
    ob_http_free(ctx->svc.http);
    dialer_webhooks_stop(ctx->webhooks); /* after the server: /metrics renders it */
    dialer_slots_drop_messages(ctx);     /* they belong to the consumer */
    ob_consumer_close(ctx->jobs);
    ob_producer_free(ctx->producer, 1000);
    ob_kafka_metrics_free(ctx->kafka_metrics);
    ob_metric_family_free(ctx->pg_writes);
    dialer_worker_free(ctx); /* the start_url client, the carrier, Postgres */
    free(ctx->topic_events);
    free(ctx->source);
}

int main(int argc, char **argv)
{
    dialer_config_t cfg = {0};
    dialer_ctx_t ctx = {0};
    ob_url_ranges_t *url_deny = NULL, *url_allow = NULL;
    int code = ob_service_args("dialer",
                               "places the calls of the dial jobs, runs their application and"
                               " records what happened",
                               argc, argv, dialer_specs);
    if (code >= 0)
        return code;
    code = ob_service_configure("dialer", dialer_specs, &cfg);

    if (code == OB_EXIT_OK && !sip_config_ok(&cfg))
        code = OB_EXIT_CONFIG;
    if (code != OB_EXIT_OK)
        goto out;
    load_url_policy(&cfg, &url_deny, &url_allow, &ctx.url_policy);
    init(&ctx, &cfg);
    if ((code = start_carrier(&ctx)) != OB_EXIT_OK ||
        (code = ob_service_connect(&cfg.base, &ctx.pg)) != OB_EXIT_OK ||
        (code = start(&ctx)) != OB_EXIT_OK)
        goto out;
    OB_INFO("main", "dialing with the %s carrier on %lld channel(s); health on http://%s:%lld",
            cfg.carrier, cfg.channels, cfg.base.http_addr, cfg.base.http_port);

    serve(&ctx);

    code = ob_service_drain(drain_steps, &ctx, cfg.base.drain_ms);
out:
    cleanup(&ctx);
    ob_url_ranges_free(url_deny);
    ob_url_ranges_free(url_allow);
    ob_config_free(dialer_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
