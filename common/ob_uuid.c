/*
 * UUIDv7 generation from the real-time clock and getrandom(2).
 */
#include "ob_uuid.h"
#include "ob_common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void ob_uuid_v7_from(int64_t unix_ms, const uint8_t rnd[10], char out[OB_UUID_STRLEN + 1])
{
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)unix_ms >> (40 - 8 * i));
    memcpy(b + 6, rnd, 10);
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* RFC 9562 variant */
    snprintf(out, OB_UUID_STRLEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* Milliseconds << 12 | sequence of the last id this process made: ids made
 * in the same millisecond count up in the 12 bits after the timestamp
 * (RFC 9562 section 6.2, method 1), so a process's ids sort in the order it
 * made them. The generator's only state; updated with compare-and-swap. */
static uint64_t last_stamp;

void ob_uuid_v7(char out[OB_UUID_STRLEN + 1])
{
    uint8_t rnd[10];
    ob_random_bytes(rnd, sizeof(rnd));
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
