/*
 * Environment-driven configuration. Parsing is table-driven so that adding a
 * setting is one line, and validation never stops at the first problem: the
 * operator sees every bad variable at once. OB_KAFKA_FOO_BAR passes through
 * to librdkafka as foo.bar, checked here against a scratch rd_kafka_conf_t.
 */
#include "ob_config.h"
#include "ob_log.h"
#include "ob_url.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

#define BASE(field) offsetof(ob_base_config_t, field)

const ob_cfg_spec_t ob_base_config_specs[] = {
    {"OB_LOG_LEVEL", OB_CFG_ENUM, "info", 0, 0, "debug|info|warn|error", BASE(log_level),
     "minimum level logged; logs are one JSON object per line on stderr"},
    {"OB_INSTANCE_ID", OB_CFG_STRING, "", 0, 0, NULL, BASE(instance_id),
     "names the process in logs, events and Kafka client ids (empty: hostname-pid)"},
    {"OB_HTTP_ADDR", OB_CFG_STRING, "127.0.0.1", 0, 0, NULL, BASE(http_addr),
     "address the HTTP listener binds"},
    {"OB_HTTP_PORT", OB_CFG_INT, "8080", 1, 65535, NULL, BASE(http_port),
     "port of the HTTP listener: /healthz, /readyz, /metrics (and the API for ingest)"},
    {"OB_PG_DSN", OB_CFG_STRING, "postgresql://outbound@127.0.0.1:5432/outbound", 0, 0, NULL,
     BASE(pg_dsn),
     "libpq connection string of the results store; migrations in common/migrations/ are "
     "applied at start-up, and an applied migration whose contents changed stops the "
     "service (docs/development.md)"},
    {"OB_TOPIC_PREFIX", OB_CFG_STRING, "outbound.", 0, 0, NULL, BASE(topic_prefix),
     "prefix of the topics `call-requests`, `dial-jobs` and `call-events`"},
    {"OB_TOPIC_PARTITIONS", OB_CFG_INT, "8", 1, 1024, NULL, BASE(partitions),
     "partitions of a topic this service creates because it is missing"},
    {"OB_DRAIN_TIMEOUT_MS", OB_CFG_INT, "20000", 100, 600000, NULL, BASE(drain_ms),
     "deadline of the SIGTERM drain; past it the service exits 3"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

void ob_cfg_errors_add(ob_cfg_errors_t *errs, const char *fmt, ...)
{
    va_list ap;
    char *line = NULL;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        line = NULL;
    va_end(ap);
    OB_ASSERT(line != NULL);
    errs->lines = ob_xrealloc(errs->lines, (errs->n + 1) * sizeof(char *));
    errs->lines[errs->n++] = line;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < OB_COUNTOF(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool enum_has(const char *choices, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wl && strncmp(p, word, len) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

static void load_one(const ob_cfg_spec_t *s, char *target, ob_cfg_errors_t *errs)
{
    const char *raw = getenv(s->env);
    bool from_env = raw != NULL;
    char *end = NULL;

    if (!raw)
        raw = s->def;
    if (!raw) {
        ob_cfg_errors_add(errs, "%s is required (%s)", s->env, s->help);
        return;
    }
    switch (s->type) {
    case OB_CFG_STRING:
        *(char **)(target + s->offset) = ob_xstrdup(raw);
        return;
    case OB_CFG_RANGES: {
        ob_url_ranges_t *ranges = NULL;
        ob_err_t err = {{0}};
        if (ob_url_ranges_parse(raw, &ranges, &err) != OB_OK) {
            ob_cfg_errors_add(errs, "%s: %s", s->env, err.msg);
            raw = s->def;
        }
        ob_url_ranges_free(ranges);
        *(char **)(target + s->offset) = ob_xstrdup(raw);
        return;
    }
    case OB_CFG_ENUM:
        if (!enum_has(s->choices, raw)) {
            ob_cfg_errors_add(errs, "%s=\"%s\" is not one of %s", s->env, raw, s->choices);
            raw = s->def;
        }
        *(char **)(target + s->offset) = ob_xstrdup(raw);
        return;
    case OB_CFG_INT: {
        errno = 0;
        long long v = strtoll(raw, &end, 10);
        if (errno || end == raw || *end || v < (long long)s->min || v > (long long)s->max) {
            ob_cfg_errors_add(errs, "%s=\"%s\" is not a whole number from %.0f to %.0f (%s)",
                              s->env, raw, s->min, s->max, s->help);
            v = from_env && s->def ? strtoll(s->def, NULL, 10) : 0;
        }
        *(long long *)(target + s->offset) = v;
        return;
    }
    case OB_CFG_DOUBLE: {
        errno = 0;
        double v = strtod(raw, &end);
        if (errno || end == raw || *end || v < s->min || v > s->max) {
            ob_cfg_errors_add(errs, "%s=\"%s\" is not a number from %g to %g (%s)", s->env, raw,
                              s->min, s->max, s->help);
            v = 0;
        }
        *(double *)(target + s->offset) = v;
        return;
    }
    case OB_CFG_BOOL: {
        bool v = false;
        if (!parse_bool(raw, &v))
            ob_cfg_errors_add(errs, "%s=\"%s\" is not a boolean (true/false)", s->env, raw);
        *(bool *)(target + s->offset) = v;
        return;
    }
    }
}

void ob_config_load(const ob_cfg_spec_t *specs, void *target, ob_cfg_errors_t *errs)
{
    for (const ob_cfg_spec_t *s = specs; s->env; s++)
        load_one(s, target, errs);
}

/* OB_KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers */
static char *kafka_key(const char *env_name)
{
    char *key = ob_xstrdup(env_name + strlen("OB_KAFKA_"));
    for (char *p = key; *p; p++)
        *p = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
    return key;
}

static void load_kafka_passthrough(ob_base_config_t *cfg, ob_cfg_errors_t *errs)
{
    size_t n = 0;
    char errstr[512];
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();

    cfg->kafka_kv = ob_xcalloc(1, sizeof(char *));
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "OB_KAFKA_", 9) != 0 || !eq)
            continue;
        char *name = ob_xstrndup(*e, (size_t)(eq - *e));
        char *key = kafka_key(name);
        if (rd_kafka_conf_set(scratch, key, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            ob_cfg_errors_add(errs, "%s (librdkafka %s): %s", name, key, errstr);
        cfg->kafka_kv = ob_xrealloc(cfg->kafka_kv, (n + 3) * sizeof(char *));
        cfg->kafka_kv[n++] = key;
        cfg->kafka_kv[n++] = ob_xstrdup(eq + 1);
        cfg->kafka_kv[n] = NULL;
        free(name);
    }
    rd_kafka_conf_destroy(scratch);
    if (n == 0)
        ob_cfg_errors_add(errs,
                          "OB_KAFKA_BOOTSTRAP_SERVERS is required (Kafka brokers, host:port)");
}

void ob_base_config_load(ob_base_config_t *cfg, ob_cfg_errors_t *errs)
{
    ob_config_load(ob_base_config_specs, cfg, errs);
    load_kafka_passthrough(cfg, errs);
    bool has_bootstrap = false;
    for (char **kv = cfg->kafka_kv; kv && kv[0]; kv += 2)
        has_bootstrap |= strcmp(kv[0], "bootstrap.servers") == 0;
    if (cfg->kafka_kv && cfg->kafka_kv[0] && !has_bootstrap)
        ob_cfg_errors_add(errs,
                          "OB_KAFKA_BOOTSTRAP_SERVERS is required (Kafka brokers, host:port)");
    if (cfg->instance_id && !cfg->instance_id[0]) {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        free(cfg->instance_id);
        cfg->instance_id = ob_xasprintf("%s-%d", host, (int)getpid());
    }
}

bool ob_cfg_errors_report(const ob_cfg_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        ob_log_emit(OB_LOG_ERROR, "config", NULL, "bad configuration: %s", errs->lines[i]);
    if (errs->n)
        ob_log_emit(OB_LOG_ERROR, "config", NULL,
                    "%zu configuration problem(s); exiting with code 78", errs->n);
    return errs->n > 0;
}

void ob_cfg_errors_free(ob_cfg_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

/* A bound as the docs write it: 1048576, 0.5, 1099511627776. */
static void write_number(FILE *out, double v)
{
    if (v == (double)(long long)v)
        fprintf(out, "%lld", (long long)v);
    else
        fprintf(out, "%g", v);
}

/* The values a setting takes, as the reference's third column. */
static void write_values(FILE *out, const ob_cfg_spec_t *s)
{
    switch (s->type) {
    case OB_CFG_INT:
    case OB_CFG_DOUBLE:
        write_number(out, s->min);
        fputs(" to ", out);
        write_number(out, s->max);
        if (s->type == OB_CFG_DOUBLE)
            fputs(" (fractions allowed)", out);
        break;
    case OB_CFG_BOOL:
        fputs("`true` or `false` (also 1/0, yes/no, on/off)", out);
        break;
    case OB_CFG_ENUM:
        for (const char *c = s->choices; *c;) {
            size_t n = strcspn(c, "|");
            bool last = c[n] == '\0';
            fprintf(out, "%s`%.*s`", c == s->choices ? "" : last ? " or " : ", ", (int)n, c);
            c += last ? n : n + 1;
        }
        break;
    case OB_CFG_RANGES:
        fputs("address ranges: CIDR or single addresses, comma-separated", out);
        break;
    case OB_CFG_STRING:
        fputs("text", out);
        break;
    }
}

void ob_config_reference(FILE *out, const ob_cfg_spec_t *specs)
{
    for (const ob_cfg_spec_t *s = specs; s->env; s++) {
        fprintf(out, "| `%s` | ", s->env);
        if (!s->def)
            fputs("required", out);
        else if (!s->def[0])
            fputs("(empty)", out);
        else
            fprintf(out, "`%s`", s->def);
        fputs(" | ", out);
        write_values(out, s);
        fputs(" | ", out);
        for (const char *h = s->help; *h; h++) { /* a '|' would end the cell */
            if (*h == '|')
                fputc('\\', out);
            fputc(*h, out);
        }
        fputs(" |\n", out);
    }
}

void ob_config_free(const ob_cfg_spec_t *specs, void *target)
{
    for (const ob_cfg_spec_t *s = specs; s->env; s++) {
        if (s->type == OB_CFG_STRING || s->type == OB_CFG_ENUM || s->type == OB_CFG_RANGES) {
            char **p = (char **)((char *)target + s->offset);
            free(*p);
            *p = NULL;
        }
    }
}

void ob_base_config_free(ob_base_config_t *cfg)
{
    ob_config_free(ob_base_config_specs, cfg);
    for (char **kv = cfg->kafka_kv; kv && *kv; kv++)
        free(*kv);
    free(cfg->kafka_kv);
    cfg->kafka_kv = NULL;
}

char *ob_config_topic(const ob_base_config_t *cfg, const char *suffix)
{
    return ob_xasprintf("%s%s", cfg->topic_prefix, suffix);
}
