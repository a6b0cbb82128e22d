/*
 * Implementation of the shared basics: error formatting, aborting allocators
 * and clocks. Out of memory is not a recoverable condition for a service that
 * must never half-accept a call, so the allocators abort (as Redis and jq do).
 */
#include "ob_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void ob_err_set(ob_err_t *err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void ob_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s at %s:%d\"}\n", expr, file,
            line);
    abort();
}

static void *oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *ob_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *ob_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *ob_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *ob_xstrdup(const char *s)
{
    return ob_xstrndup(s, strlen(s));
}

char *ob_xstrndup(const char *s, size_t n)
{
    char *p = ob_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ob_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

void ob_random_bytes(void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        OB_ASSERT(r > 0);
        got += (size_t)r;
    }
}

int64_t ob_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ob_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ob_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ob_time_format_rfc3339(int64_t unix_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

bool ob_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* a continuation byte first, or 0xF8 and above */
        }
        if (end - p <= n)
            return false;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

/* The n-digit number at s, or -1 when s does not start with n digits. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool ob_time_parse_rfc3339(const char *s, int64_t *unix_ms)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, ms = 0;
    long offset_s = 0;
    /* Each test runs only when the ones before matched, so s is never read
     * past its end. */
    if ((year = digits(s, 4)) < 1970 || s[4] != '-' || (mon = digits(s + 5, 2)) < 1 || mon > 12 ||
        s[7] != '-' || (day = digits(s + 8, 2)) < 1 || (s[10] != 'T' && s[10] != 't') ||
        (hour = digits(s + 11, 2)) < 0 || hour > 23 || s[13] != ':' ||
        (min = digits(s + 14, 2)) < 0 || min > 59 || s[16] != ':' ||
        (sec = digits(s + 17, 2)) < 0 || sec > 59)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        if (!(p[1] >= '0' && p[1] <= '9'))
            return false;
        int scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = digits(p + 1, 2), mm = hh < 0 ? -1 : p[3] == ':' ? digits(p + 4, 2) : -1;
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
            return false;
        offset_s = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm moves a day that does not exist into the next month. */
    if (tm.tm_mon != mon - 1 || tm.tm_mday != day)
        return false;
    int64_t v = ((int64_t)t - offset_s) * 1000 + ms;
    if (v < 0)
        return false;
    *unix_ms = v;
    return true;
}

void ob_udp_buffers(int port, int bytes)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name), type = 0;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss), tlen = sizeof(type);
        if (fd <= 2 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
            ss.ss_family != AF_INET || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
            type != SOCK_DGRAM || ntohs(((struct sockaddr_in *)&ss)->sin_port) != port)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    }
    if (dir)
        closedir(dir);
}
