/*
 * Phone number normalisation to E.164, backed by libphonenumber. Accepts the
 * forms clients send (tel: URIs, spaces, dots, dashes, slashes, parentheses,
 * the "(0)" trunk prefix, national numbers given a default region, the
 * region's international prefixes), the Plum parameters ;ani= (caller id)
 * and ;postd= (post-dial digits), and extensions ("ext. 12", "x12", "#12",
 * RFC 3966 ";ext=12"), which become the post-dial digits. Every function
 * here is thread-safe, does not block and leaves nothing for the caller to
 * free.
 */
#ifndef OB_PHONE_H
#define OB_PHONE_H

#include "ob_common.h"

#include <stdbool.h>

#define OB_PHONE_MAX 64

typedef struct {
    char e164[OB_PHONE_MAX];      /* "+12125550100" */
    char caller_id[OB_PHONE_MAX]; /* E.164 from ;ani=, "" if absent */
    char post_dial[OB_PHONE_MAX]; /* from ;postd= or the extension, separators removed, "" if
                                     absent */
    char region[3];               /* ISO 3166 alpha-2 of e164 ("US"), "" if none (+800) */
} ob_phone_t;

/*
 * Parses input into out. default_region is an ISO 3166 alpha-2 code ("US",
 * "GB", case-insensitive) that gives national numbers ("020 7946 0958") their
 * country and decides which international prefixes ("00", "011") are
 * understood; NULL, "" or "ZZ" mean none, and then numbers must start with +
 * or 00. The caller id in ;ani= is read the same way and must also be valid.
 * An extension after the number ("ext", "ext.", "extn", "extension", "x" or
 * "#", then 1-20 digits, ending the number; or ";ext=") goes to post_dial:
 * the dialer sends it as DTMF once the call is answered, like ;postd=, so a
 * number may not have both.
 * Returns OB_OK with out filled; OB_EINVAL with err naming the problem in a
 * client's words (bad character or parameter, invalid country code, too short
 * or too long for the country, not a valid number, national number without a
 * default region, a number a spreadsheet wrote in scientific notation such as
 * "1.61755E+10", whose last digits are lost) or saying default_region is
 * unsupported; OB_ERR if libphonenumber failed unexpectedly. out is all empty
 * strings on failure.
 */
ob_rc_t ob_phone_parse_region(const char *input, const char *default_region, ob_phone_t *out,
                              ob_err_t *err) OB_MUSTCHECK;

/* ob_phone_parse_region with no default region: numbers must be international. */
ob_rc_t ob_phone_parse(const char *input, ob_phone_t *out, ob_err_t *err) OB_MUSTCHECK;

/*
 * True if region is an ISO 3166 alpha-2 code (case-insensitive) that
 * libphonenumber has metadata for; false for NULL, "", "ZZ" and anything
 * else. For validating a deployment's default region before using it.
 */
bool ob_phone_region_valid(const char *region);

/*
 * Internal: the libphonenumber boundary (common/domain/ob_phonenumber.cc) under
 * ob_phone_parse_region; call that instead. Reads the len bytes at number as
 * one phone number in region (an uppercase supported code, or "ZZ" for
 * none), writes its E.164 form to e164 and, if region_out is not NULL, its
 * region code or "". Names the number `what` in err. Returns as
 * ob_phone_parse_region; never lets a C++ exception out.
 */
ob_rc_t ob_phonenumber_normalise(const char *number, size_t len, const char *region,
                                 const char *what, char e164[OB_PHONE_MAX], char *region_out,
                                 ob_err_t *err) OB_MUSTCHECK;

#endif
