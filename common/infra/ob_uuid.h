/*
 * UUIDv7 identifiers (RFC 9562): 48-bit unix milliseconds, then random bits,
 * so ids sort by creation time and index well in Postgres.
 */
#ifndef OB_UUID_H
#define OB_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define OB_UUID_STRLEN 36 /* without the terminating NUL */

/* Writes a new UUIDv7 in canonical lower-case form into out (37 bytes). */
void ob_uuid_v7(char out[OB_UUID_STRLEN + 1]);

/* Same, for a given timestamp and 10 random bytes (for tests). */
void ob_uuid_v7_from(int64_t unix_ms, const uint8_t rnd[10], char out[OB_UUID_STRLEN + 1]);

/* True if s is a canonical 36-character UUID (any version), case-insensitive. */
bool ob_uuid_valid(const char *s);

#endif
