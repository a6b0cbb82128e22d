/*
 * Shared start-up, readiness, metrics and drain. Dependencies that are not up
 * yet are waited for (a stack starting all at once is normal) but not
 * forever: a service that cannot reach Kafka or Postgres within the start
 * timeout exits 69. The drain numbers its steps from the table, so a step
 * added to a service renumbers the log by itself.
 */
#include "ob_service.h"
#include "ob_kafka.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_signal.h"

#include <sys/resource.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

static bool spec_knows(const ob_cfg_spec_t *specs, const char *name, size_t len)
{
    for (const ob_cfg_spec_t *s = specs; s && s->env; s++)
        if (strlen(s->env) == len && strncmp(s->env, name, len) == 0)
            return true;
    return false;
}

/* A typo such as OB_HTTP_PROT would otherwise be silently ignored. Settings
 * of other services are common in a shared environment, hence a warning. */
static void warn_unknown_settings(const ob_cfg_spec_t *specs)
{
    static const char *const other_prefixes[] = {"OB_KAFKA_", "OB_LOCAL_", "OB_TEST_"};
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        bool skip = strncmp(*e, "OB_", 3) != 0 || !eq;
        for (size_t i = 0; i < OB_COUNTOF(other_prefixes) && !skip; i++)
            skip = strncmp(*e, other_prefixes[i], strlen(other_prefixes[i])) == 0;
        size_t len = skip ? 0 : (size_t)(eq - *e);
        if (!skip && !spec_knows(ob_base_config_specs, *e, len) && !spec_knows(specs, *e, len))
            OB_WARN("config", "%.*s is not a setting of this service; ignored", (int)len, *e);
    }
}

int ob_service_configure(const char *svc, const ob_cfg_spec_t *specs, void *cfg)
{
    ob_base_config_t *base = cfg;
    ob_cfg_errors_t errs = {0};
    ob_log_level_t level = OB_LOG_INFO;

    ob_log_init(svc, OB_LOG_INFO);
    ob_base_config_load(base, &errs);
    if (specs)
        ob_config_load(specs, cfg, &errs);
    if (ob_cfg_errors_report(&errs)) {
        ob_cfg_errors_free(&errs);
        return OB_EXIT_CONFIG;
    }
    ob_cfg_errors_free(&errs);
    if (ob_log_level_parse(base->log_level, &level) != OB_OK)
        level = OB_LOG_INFO; /* unreachable: the ENUM spec validated it */
    ob_log_init(svc, level);
    warn_unknown_settings(specs);
    ob_signal_install();
    return OB_EXIT_OK;
}

int ob_service_args(const char *svc, const char *about, int argc, char **argv,
                    const ob_cfg_spec_t *specs)
{
    if (argc < 2)
        return -1;
    const char *arg = argv[1];
    if (argc == 2 && strcmp(arg, "--config-reference") == 0) {
        ob_config_reference(stdout, specs);
        return OB_EXIT_OK;
    }
    if (argc == 2 && strcmp(arg, "--config-reference-common") == 0) {
        ob_config_reference(stdout, ob_base_config_specs);
        return OB_EXIT_OK;
    }
    if (argc == 2 && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
        printf("outbound-%s: %s\n\nUsage: outbound-%s [--help | --config-reference |"
               " --config-reference-common]\n\nConfigured by environment variables (exit 78"
               " names every bad one):\n",
               svc, about, svc);
        for (const ob_cfg_spec_t *t = specs;; t = ob_base_config_specs) {
            for (const ob_cfg_spec_t *s = t; s->env; s++)
                printf("  %-34s %s%s\n", s->env, s->def ? "default " : "required",
                       s->def ? (s->def[0] ? s->def : "(empty)") : "");
            if (t == ob_base_config_specs)
                break;
        }
        printf("  OB_KAFKA_*                         passed to librdkafka (OB_KAFKA_FOO_BAR:"
               " foo.bar)\n\nWhat each means: outbound-%s --config-reference, or"
               " docs/configuration.md.\n",
               svc);
        return OB_EXIT_OK;
    }
    fprintf(stderr, "outbound-%s: unknown argument %s%s (see --help)\n", svc, arg,
            argc > 2 ? " and more" : "");
    return OB_EXIT_USAGE;
}

void ob_service_want_files(long want)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY ||
        r.rlim_cur >= (rlim_t)want)
        return;
    rlim_t before = r.rlim_cur;
    r.rlim_cur =
        r.rlim_max == RLIM_INFINITY || r.rlim_max >= (rlim_t)want ? (rlim_t)want : r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0)
        r.rlim_cur = before;
    if (r.rlim_cur < (rlim_t)want)
        OB_WARN("main",
                "only %llu open files allowed (ulimit -n), %ld wanted: fewer connections fit",
                (unsigned long long)r.rlim_cur, want);
}

void ob_service_sleep(int ms)
{
    while (ms > 0 && !ob_stop_requested) {
        int step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

ob_rc_t ob_service_connect_pg(const ob_base_config_t *base, int timeout_ms, PGconn **out)
{
    ob_err_t err = {{0}};
    int64_t deadline = ob_mono_ms() + timeout_ms;
    int applied = 0;
    ob_rc_t rc;

    while ((rc = ob_pg_connect(base->pg_dsn, out, &err)) != OB_OK) {
        if (ob_stop_requested || ob_mono_ms() >= deadline) {
            OB_ERROR("pg", "cannot connect to Postgres: %s", err.msg);
            return rc;
        }
        OB_WARN("pg", "waiting for Postgres: %s", err.msg);
        ob_service_sleep(1000);
    }
    if ((rc = ob_pg_migrate(*out, &applied, &err)) != OB_OK) {
        OB_ERROR("pg", "migrations failed: %s", err.msg);
        PQfinish(*out);
        *out = NULL;
        return rc;
    }
    OB_INFO("pg", "connected to Postgres; %d migration(s) applied", applied);
    return OB_OK;
}

ob_rc_t ob_service_ensure_topics(const ob_base_config_t *base, int timeout_ms)
{
    char *topics[4] = {
        ob_config_topic(base, OB_TOPIC_CALL_REQUESTS),
        ob_config_topic(base, OB_TOPIC_DIAL_JOBS),
        ob_config_topic(base, OB_TOPIC_CALL_EVENTS),
        NULL,
    };
    ob_err_t err = {{0}};
    int64_t deadline = ob_mono_ms() + timeout_ms;
    ob_rc_t rc;

    while ((rc = ob_kafka_ensure_topics(base, (const char *const *)topics, &err)) != OB_OK) {
        if (ob_stop_requested || ob_mono_ms() >= deadline) {
            OB_ERROR("kafka", "cannot reach Kafka to check topics: %s", err.msg);
            break;
        }
        OB_WARN("kafka", "waiting for Kafka: %s", err.msg);
        ob_service_sleep(1000);
    }
    for (int i = 0; topics[i]; i++)
        free(topics[i]);
    return rc;
}

int ob_service_connect(const ob_base_config_t *base, PGconn **pg)
{
    PGconn *conn = NULL;
    if (ob_service_connect_pg(base, OB_SERVICE_START_MS, &conn) != OB_OK ||
        ob_service_ensure_topics(base, OB_SERVICE_START_MS) != OB_OK) {
        PQfinish(conn);
        return OB_EXIT_DEPENDENCY;
    }
    if (pg)
        *pg = conn;
    else
        PQfinish(conn);
    return OB_EXIT_OK;
}

bool ob_service_not_draining(const void *ctx)
{
    (void)ctx;
    return !ob_stop_requested;
}

void ob_service_set_pg_up(ob_service_t *svc, bool up)
{
    __atomic_store_n(&svc->pg_up, up ? 1 : 0, __ATOMIC_RELAXED);
}

static bool pg_up(const void *ctx)
{
    return __atomic_load_n(&((const ob_service_t *)ctx)->pg_up, __ATOMIC_RELAXED) != 0;
}

const ob_service_check_t ob_service_pg_checks[] = {
    {"draining", ob_service_not_draining, false},
    {"postgres unreachable", pg_up, true},
    {NULL, NULL, false},
};

bool ob_service_ready(void *ctx, const char **why)
{
    const ob_service_t *svc = ctx;
    for (const ob_service_check_t *c = svc->checks; c && c->unready; c++)
        if (!c->ok(ctx)) {
            *why = c->unready;
            return false;
        }
    return true;
}

char *ob_service_metrics(void *ctx)
{
    ob_service_t *svc = ctx;
    if (svc->ready) {
        bool up = true;
        for (const ob_service_check_t *c = svc->checks; c && c->unready && up; c++)
            up = !c->gauge || c->ok(ctx);
        ob_metric_set(svc->ready, up);
    }
    char *own = ob_metrics_render(svc->metrics, svc->nmetrics);
    char *more = svc->render ? svc->render(ctx) : ob_xstrdup("");
    char *pg = svc->pg_writes ? ob_metric_family_render(svc->pg_writes) : ob_xstrdup("");
    char *kafka = svc->kafka ? ob_kafka_metrics_render(svc->kafka) : ob_xstrdup("");
    char *text = ob_xasprintf("%s%s%s%s", own, more, pg, kafka);
    free(own);
    free(more);
    free(pg);
    free(kafka);
    return text;
}

int ob_service_http_start(ob_service_t *svc, ob_http_opts_t *opts)
{
    ob_err_t err = {{0}};
    OB_ASSERT(opts->ctx == (void *)svc);
    opts->ready = ob_service_ready;
    opts->metrics = ob_service_metrics;
    if (ob_http_start(opts, &svc->http, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        return OB_EXIT_CONFIG;
    }
    return OB_EXIT_OK;
}

int ob_service_ms_left(int64_t deadline_ms)
{
    int64_t left = deadline_ms - ob_mono_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

bool ob_service_flush_producer(ob_producer_t **producer, int64_t deadline_ms)
{
    bool drained = !*producer || !ob_producer_fatal(*producer);
    if (ob_producer_free(*producer, ob_service_ms_left(deadline_ms)) > 0)
        drained = false;
    *producer = NULL;
    return drained;
}

bool ob_service_leave_group(rd_kafka_t **consumer)
{
    ob_consumer_close(*consumer);
    *consumer = NULL;
    return true;
}

int ob_service_drain(const ob_drain_step_t *steps, void *ctx, int64_t drain_ms)
{
    int n = 0, share = 0, code = OB_EXIT_OK;
    for (const ob_drain_step_t *s = steps; s->name; s++, n++)
        share += s->share;
    OB_ASSERT(share == 100);

    int64_t start = ob_mono_ms();
    share = 0;
    for (int k = 0; k < n; k++) {
        const ob_drain_step_t *s = &steps[k];
        share += s->share;
        int64_t deadline = start + drain_ms * share / 100;
        int64_t began = ob_mono_ms();
        OB_INFO("main", "drain %d/%d: %s", k + 1, n, s->name);
        if (!s->fn(ctx, deadline)) {
            OB_WARN("main", "drain %d/%d: %s: work left undone", k + 1, n, s->name);
            code = OB_EXIT_UNDRAINED;
        }
        /* Only the step that overran is named, not those it made late. */
        int64_t late = ob_mono_ms() - deadline;
        if (late > 0 && began < deadline)
            OB_WARN("main", "drain %d/%d: %s ended %lld ms past its deadline", k + 1, n, s->name,
                    (long long)late);
    }
    if (ob_mono_ms() > start + drain_ms)
        code = OB_EXIT_UNDRAINED;
    OB_INFO("main", "drained; exit %d", code);
    return code;
}

bool ob_service_stop_accepting(void *ctx, int64_t deadline_ms)
{
    ob_service_t *svc = ctx;
    (void)deadline_ms;
    ob_http_quiesce(svc->http);
    return true;
}

bool ob_service_http_close(void *ctx, int64_t deadline_ms)
{
    ob_service_t *svc = ctx;
    (void)deadline_ms; /* requests in progress end by their own timeouts */
    ob_http_free(svc->http);
    svc->http = NULL;
    return true;
}
