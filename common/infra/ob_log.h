/*
 * JSON logging: one object per line on stderr with the fixed keys ts, level,
 * svc, mod and msg, plus optional correlation keys (call_id, deployment_id,
 * req_id, ...). The OB_LOG macro checks the level before formatting anything.
 */
#ifndef OB_LOG_H
#define OB_LOG_H

#include "ob_common.h"

typedef enum {
    OB_LOG_DEBUG = 0,
    OB_LOG_INFO,
    OB_LOG_WARN,
    OB_LOG_ERROR,
} ob_log_level_t;

/* Sets the service name and minimum level; called once at start-up, before
 * any thread starts (the settings are read-only afterwards). */
void ob_log_init(const char *svc, ob_log_level_t min_level);

/* Parses "debug", "info", "warn" or "error"; returns OB_EINVAL otherwise. */
ob_rc_t ob_log_level_parse(const char *s, ob_log_level_t *out) OB_MUSTCHECK;

int ob_log_enabled(ob_log_level_t level);

/* kv is NULL or a NULL-terminated array of key, value strings (a NULL value
 * skips that key). Thread-safe: each line is written with one write(2). */
void ob_log_emit(ob_log_level_t level, const char *mod, const char *const *kv, const char *fmt, ...)
    OB_PRINTF(4, 5);

#define OB_LOG(level, mod, kv, ...)                                                                \
    do {                                                                                           \
        if (ob_log_enabled(level))                                                                 \
            ob_log_emit(level, mod, kv, __VA_ARGS__);                                              \
    } while (0)

#define OB_DEBUG(mod, ...) OB_LOG(OB_LOG_DEBUG, mod, NULL, __VA_ARGS__)
#define OB_INFO(mod, ...)  OB_LOG(OB_LOG_INFO, mod, NULL, __VA_ARGS__)
#define OB_WARN(mod, ...)  OB_LOG(OB_LOG_WARN, mod, NULL, __VA_ARGS__)
#define OB_ERROR(mod, ...) OB_LOG(OB_LOG_ERROR, mod, NULL, __VA_ARGS__)

/* Correlation keys: OB_KV("call_id", id, "deployment_id", dep). */
#define OB_KV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Appends s to buf as a JSON string body (no quotes), escaping as needed.
 * Returns the number of bytes written, truncating at len - 1. */
size_t ob_json_escape(char *buf, size_t len, const char *s);

#endif
