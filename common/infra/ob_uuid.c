/*
 * UUIDv7 generation from the real-time clock and getrandom(2).
 */
#include "ob_uuid.h"
#include "ob_common.h"

#include <ctype.h>
#include <string.h>

void ob_uuid_v7_from(int64_t unix_ms, const uint8_t rnd[10], char out[OB_UUID_STRLEN + 1])
{
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)unix_ms >> (40 - 8 * i));
    memcpy(b + 6, rnd, 10);
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* RFC 9562 variant */
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/*
 * Random bytes for ids, read from getrandom(2) a few hundred at a time per
 * thread rather than one system call per id (the ingest makes one id per
 * accepted call). Secrets such as API keys use ob_random_bytes directly.
 */
static void id_random(uint8_t *out, size_t n)
{
    static __thread uint8_t buf[320];
    static __thread size_t left;
    if (left < n) {
        ob_random_bytes(buf, sizeof(buf));
        left = sizeof(buf);
    }
    memcpy(out, buf + sizeof(buf) - left, n);
    left -= n;
}

/* Milliseconds << 12 | sequence of the last id this process made: ids made
 * in the same millisecond count up in the 12 bits after the timestamp
 * (RFC 9562 section 6.2, method 1), so a process's ids sort in the order it
 * made them. The generator's only state; updated with compare-and-swap. */
static uint64_t last_stamp;

void ob_uuid_v7(char out[OB_UUID_STRLEN + 1])
{
    uint8_t rnd[10];
    id_random(rnd, sizeof(rnd));
    uint64_t prev = __atomic_load_n(&last_stamp, __ATOMIC_RELAXED), next;
    do {
        uint64_t now = (uint64_t)ob_now_ms() << 12;
        next = now > prev ? now : prev + 1;
    } while (!__atomic_compare_exchange_n(&last_stamp, &prev, next, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    rnd[0] = (uint8_t)((next >> 8) & 0x0f); /* the version nibble replaces the top 4 bits */
    rnd[1] = (uint8_t)(next & 0xff);
    ob_uuid_v7_from((int64_t)(next >> 12), rnd, out);
}

bool ob_uuid_valid(const char *s)
{
    if (!s || strlen(s) != OB_UUID_STRLEN)
        return false;
    for (int i = 0; i < OB_UUID_STRLEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
