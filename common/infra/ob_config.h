/*
 * Declarative configuration from OB_* environment variables. Each service
 * describes its settings in one table (env name, type, default, bounds, help)
 * and loads it once; every bad value is collected so that a misconfigured
 * service names all of its problems in one start-up and exits 78.
 */
#ifndef OB_CONFIG_H
#define OB_CONFIG_H

#include "ob_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    OB_CFG_STRING, /* char * (owned by the config, freed by ob_config_free) */
    OB_CFG_INT,    /* long long within [min, max] */
    OB_CFG_BOOL,   /* bool: true/false/1/0/yes/no */
    OB_CFG_DOUBLE, /* double within [min, max] */
    OB_CFG_ENUM,   /* char *, one of the '|'-separated words in choices */
    OB_CFG_RANGES, /* char *, address ranges as ob_url_ranges_parse reads them */
} ob_cfg_type_t;

typedef struct {
    const char *env;     /* variable name, e.g. "OB_HTTP_PORT" */
    ob_cfg_type_t type;  /* how the value is parsed */
    const char *def;     /* default as text; NULL means required */
    double min, max;     /* bounds for INT and DOUBLE */
    const char *choices; /* for ENUM: "debug|info|warn|error" */
    size_t offset;       /* where the parsed value goes in the target struct */
    const char *help;    /* one line for the README and error messages */
} ob_cfg_spec_t;

/* Collected problems, one human-readable line each. */
typedef struct {
    char **lines; /* owned; freed by ob_cfg_errors_free */
    size_t n;     /* number of lines */
} ob_cfg_errors_t;

/* Settings every service shares; embedded at the start of each service's
 * config struct. */
typedef struct {
    char *log_level;      /* OB_LOG_LEVEL */
    char *instance_id;    /* OB_INSTANCE_ID: names this process in events and groups */
    char *http_addr;      /* OB_HTTP_ADDR: address for the HTTP listener */
    long long http_port;  /* OB_HTTP_PORT */
    char *pg_dsn;         /* OB_PG_DSN: libpq connection string */
    char *topic_prefix;   /* OB_TOPIC_PREFIX: prefix of the three topic names */
    long long partitions; /* OB_TOPIC_PARTITIONS: partitions when a topic is created */
    long long drain_ms;   /* OB_DRAIN_TIMEOUT_MS: drain deadline after SIGTERM */
    char **kafka_kv;      /* OB_KAFKA_* pass-through as key, value pairs, NULL-ended */
} ob_base_config_t;

/* The spec table for ob_base_config_t, terminated by an entry with env NULL. */
extern const ob_cfg_spec_t ob_base_config_specs[];

/* Parses every entry of specs (terminated by env == NULL) from the
 * environment into target, appending one line per bad value to errs. */
void ob_config_load(const ob_cfg_spec_t *specs, void *target, ob_cfg_errors_t *errs);

/* Loads the base table plus OB_KAFKA_* pass-through and validates the
 * pass-through keys against librdkafka. */
void ob_base_config_load(ob_base_config_t *cfg, ob_cfg_errors_t *errs);

/* Appends a formatted problem line. */
void ob_cfg_errors_add(ob_cfg_errors_t *errs, const char *fmt, ...) OB_PRINTF(2, 3);

/* Logs every problem and returns true if there were any. */
bool ob_cfg_errors_report(const ob_cfg_errors_t *errs);
void ob_cfg_errors_free(ob_cfg_errors_t *errs);

/* Frees strings owned by a config loaded with specs. */
void ob_config_free(const ob_cfg_spec_t *specs, void *target);
void ob_base_config_free(ob_base_config_t *cfg);

/* Writes the table as Markdown rows, one a setting: | `NAME` | default |
 * values | help | (the reference in docs/configuration.md is generated from
 * it by tools/config_reference.py). */
void ob_config_reference(FILE *out, const ob_cfg_spec_t *specs);

/* Full topic name for a suffix such as "call-requests"; caller frees. */
char *ob_config_topic(const ob_base_config_t *cfg, const char *suffix);

#endif
