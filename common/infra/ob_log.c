/*
 * JSON line logger. The service name and level live in file-static storage
 * that is written once by ob_log_init before threads start and only read
 * afterwards, so no locking is needed; each line goes out in a single write.
 */
#include "ob_log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct {
    char svc[32];         /* service name, fixed at start-up */
    ob_log_level_t level; /* minimum level emitted */
} log_settings = {"outbound", OB_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ob_log_init(const char *svc, ob_log_level_t min_level)
{
    snprintf(log_settings.svc, sizeof(log_settings.svc), "%s", svc);
    log_settings.level = min_level;
}

ob_rc_t ob_log_level_parse(const char *s, ob_log_level_t *out)
{
    for (size_t i = 0; i < OB_COUNTOF(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (ob_log_level_t)i;
            return OB_OK;
        }
    }
    return OB_EINVAL;
}

int ob_log_enabled(ob_log_level_t level)
{
    return level >= log_settings.level;
}

size_t ob_json_escape(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    if (len == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < len; p++) {
        switch (*p) {
        case '"':
            buf[o++] = '\\';
            buf[o++] = '"';
            break;
        case '\\':
            buf[o++] = '\\';
            buf[o++] = '\\';
            break;
        case '\n':
            buf[o++] = '\\';
            buf[o++] = 'n';
            break;
        case '\r':
            buf[o++] = '\\';
            buf[o++] = 'r';
            break;
        case '\t':
            buf[o++] = '\\';
            buf[o++] = 't';
            break;
        default:
            if (*p < 0x20)
                o += (size_t)snprintf(buf + o, len - o, "\\u%04x", *p);
            else
                buf[o++] = (char)*p;
        }
    }
    buf[o] = '\0';
    return o;
}

void ob_log_emit(ob_log_level_t level, const char *mod, const char *const *kv, const char *fmt, ...)
{
    char msg[2048], line[4096], ts[32];
    size_t o;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_time_format_rfc3339(ob_now_ms(), ts, sizeof(ts));

    o = (size_t)snprintf(line, sizeof(line),
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"svc\":\"%s\",\"mod\":\"", ts,
                         level_names[level], log_settings.svc);
    o += ob_json_escape(line + o, sizeof(line) - o, mod);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"msg\":\"");
    o += ob_json_escape(line + o, sizeof(line) - o, msg);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
    for (; kv && kv[0] && o + 8 < sizeof(line); kv += 2) {
        if (!kv[1])
            continue;
        o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"");
        o += ob_json_escape(line + o, sizeof(line) - o, kv[0]);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\":\"");
        o += ob_json_escape(line + o, sizeof(line) - o, kv[1]);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
    }
    if (o > sizeof(line) - 3)
        o = sizeof(line) - 3;
    line[o++] = '}';
    line[o++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, o);
    (void)unused;
}
