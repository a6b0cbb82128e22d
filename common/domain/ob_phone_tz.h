/*
 * The IANA time zones of a phone number, for campaign windows kept in the
 * callee's local time. libphonenumber's C++ port has no time-zone mapper, so
 * the prefix table is generated at build time by tools/gen_phone_tz.py from
 * Debian's python3-phonenumbers (build/gen/ob_phone_tz.c).
 */
#ifndef OB_PHONE_TZ_H
#define OB_PHONE_TZ_H

#include <stddef.h>
#include <stdint.h>

/* The most zones one number maps to (the generator refuses data with more). */
#define OB_PHONE_TZ_MAX 64

/*
 * Finds the zones of an E.164 number by the longest prefix of its digits that
 * the table knows (libphonenumber's PhoneNumberToTimeZonesMapper, without its
 * number-type check): "+12125550100" matches "1212" -> America/New_York, and
 * "+12082010000" matches "1208201" -> America/Denver before "12082" ->
 * America/Boise, America/Los_Angeles. A number the table knows only by its
 * country code gets all that code's zones ("+1" alone is 42 zones).
 *
 * e164: "+" then digits, as in ob_phone_t.e164; NULL, anything else or a
 * number with no known prefix matches nothing.
 * zones: receives up to max pointers to static zone names ("Europe/London"),
 * in the table's (alphabetical) order; never freed. May be NULL if max is 0.
 * Returns the number of zones the number maps to, 0 if none. If that is more
 * than max only the first max are written; a buffer of OB_PHONE_TZ_MAX always
 * holds them all. Thread-safe, does not block.
 */
size_t ob_phone_tz_lookup(const char *e164, const char **zones, size_t max);

/*
 * Internal: the generated table under ob_phone_tz_lookup (also read by the
 * tests). Each prefix names one list; a list is a run of indexes into
 * ob_phone_tz_names.
 */
typedef struct {
    char prefix[16]; /* digits after the +, "1212"; at most 15 */
    uint16_t list;   /* index into ob_phone_tz_lists */
} ob_phone_tz_prefix_t;

typedef struct {
    uint16_t start; /* first index into ob_phone_tz_list_items */
    uint16_t len;   /* how many zones, 1..OB_PHONE_TZ_MAX */
} ob_phone_tz_list_t;

/* The python3-phonenumbers release the table comes from ("8.12.57"). */
extern const char ob_phone_tz_version[];
/* Length of the longest prefix in the table (TIMEZONE_LONGEST_PREFIX). */
extern const size_t ob_phone_tz_longest_prefix;
/* Distinct IANA zone names, alphabetical. */
extern const char *const ob_phone_tz_names[];
extern const size_t ob_phone_tz_names_len;
extern const uint16_t ob_phone_tz_list_items[];
/* Distinct zone lists. */
extern const ob_phone_tz_list_t ob_phone_tz_lists[];
extern const size_t ob_phone_tz_lists_len;
/* Every prefix, ascending in strcmp order. */
extern const ob_phone_tz_prefix_t ob_phone_tz_prefixes[];
extern const size_t ob_phone_tz_prefixes_len;

#endif
