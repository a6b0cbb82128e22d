/*
 * Shared start-up sequence. Dependencies that are not up yet are waited for
 * (a stack starting all at once is normal) but not forever: a service that
 * cannot reach Kafka or Postgres within the start timeout exits 69.
 */
#include "ob_service.h"
#include "ob_kafka.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_signal.h"

#include <sys/resource.h>
#include <stdbool.h>
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
