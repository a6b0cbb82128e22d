/*
 * Shared basics for every outbound module: the return-code enum, the
 * caller-owned error buffer, always-on assertions, aborting allocators and
 * the documented process exit codes.
 */
#ifndef OB_COMMON_H
#define OB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_MUSTCHECK      __attribute__((warn_unused_result))
#define OB_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))
#define OB_NORETURN       __attribute__((noreturn))
#define OB_COUNTOF(a)     (sizeof(a) / sizeof((a)[0]))

/* Small result codes; the human detail goes into an ob_err_t. */
typedef enum {
    OB_OK = 0,
    OB_ERR,         /* generic failure, see ob_err_t */
    OB_EINVAL,      /* bad input from a client or a message */
    OB_ENOTFOUND,   /* the thing asked for does not exist */
    OB_ECONFLICT,   /* a guarded transition or uniqueness check failed */
    OB_EAGAIN,      /* back-pressure: try again later */
    OB_ETIMEOUT,    /* a deadline passed */
    OB_EDEPENDENCY, /* Kafka or Postgres unavailable */
} ob_rc_t;

/* Caller-owned error detail, filled at the library boundary. */
typedef struct {
    char msg[512]; /* NUL-terminated human-readable detail */
} ob_err_t;

/* Process exit codes (documented in the README). */
enum {
    OB_EXIT_OK = 0,          /* clean drain */
    OB_EXIT_UNDRAINED = 3,   /* drain deadline passed or second signal */
    OB_EXIT_USAGE = 64,      /* an unknown command-line argument */
    OB_EXIT_DEPENDENCY = 69, /* Kafka or Postgres unusable at start */
    OB_EXIT_CONFIG = 78,     /* bad configuration */
};

/* Fills err (if not NULL) with a formatted message. */
void ob_err_set(ob_err_t *err, const char *fmt, ...) OB_PRINTF(2, 3);

/* Always-on assertion for programmer errors: logs and aborts. */
#define OB_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ob_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
OB_NORETURN void ob_assert_fail(const char *expr, const char *file, int line);

/* Allocators that abort on out-of-memory; free with free(). */
void *ob_xmalloc(size_t n);
void *ob_xcalloc(size_t n, size_t size);
void *ob_xrealloc(void *p, size_t n);
char *ob_xstrdup(const char *s);
char *ob_xstrndup(const char *s, size_t n);
char *ob_xasprintf(const char *fmt, ...) OB_PRINTF(1, 2);

/* True if s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF) and holds no NUL byte: text Postgres and JSON
 * consumers accept as it is. */
bool ob_utf8_valid(const char *s, size_t len);

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom); aborts if it
 * cannot, as there is no safe fallback for key and id material. */
void ob_random_bytes(void *buf, size_t n);

/* Wall-clock time in milliseconds since the epoch, and monotonic ms and us. */
/* Gives every UDP socket of this process bound to port (IPv4) send and
 * receive buffers of bytes (capped by net.core.rmem_max and wmem_max): for
 * a library's socket we are not handed, such as libre's SIP socket, which a
 * thousand answers at once overflow at the default size. Best effort. */
void ob_udp_buffers(int port, int bytes);

int64_t ob_now_ms(void);
int64_t ob_mono_ms(void);
int64_t ob_mono_us(void);

/* Formats unix ms as RFC 3339 UTC with milliseconds into buf (>= 25 bytes). */
void ob_time_format_rfc3339(int64_t unix_ms, char *buf, size_t len);

/* Parses an RFC 3339 time ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00.5+01:00")
 * into unix ms; digits of a fraction beyond milliseconds are dropped. False,
 * leaving *unix_ms alone, for anything else: another shape, a field out of
 * range, a day that does not exist (February 31), a time before 1970. Pure. */
bool ob_time_parse_rfc3339(const char *s, int64_t *unix_ms);

#endif
