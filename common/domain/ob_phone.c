/*
 * The C side of phone number parsing: the tel: scheme, the Plum ;ani= and
 * ;postd= parameters, extensions (kept as post-dial digits), numbers a
 * spreadsheet wrote in scientific notation, and the characters a number may
 * contain. Deciding what a number means (country, national format, validity)
 * is left to libphonenumber behind ob_phonenumber_normalise
 * (common/domain/ob_phonenumber.cc).
 */
#include "ob_phone.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define SEPARATORS ".-()/"
#define POST_DIAL  "*#wWpP,ABCD"
#define EXT_MAX    20 /* digits in an extension (libphonenumber's limit) */
#define SHOWN_MAX  32 /* characters of a client's value quoted in a message */
#define TWO_POST_DIALS                                                                             \
    "phone_number has an extension and ;postd= (or two extensions): both would be dialed after "   \
    "the answer; give the digits once"

/* How an extension is written after the number, as libphonenumber reads
 * them; "ext." and "ext:" are "ext" with a separator after it. */
static const char *const ext_markers[] = {"extension", "extn", "ext", "x", "#"};

static bool is_separator(unsigned char c)
{
    return isspace(c) || strchr(SEPARATORS, c);
}

static void bad_char(ob_err_t *err, const char *what, unsigned char c)
{
    /* The message goes back to clients in JSON; keep raw bytes out of it. */
    if (isprint(c))
        ob_err_set(err, "%s contains '%c', which is not a digit or separator", what, c);
    else
        ob_err_set(err, "%s contains the byte 0x%02X, which is not a digit or separator", what, c);
}

/*
 * Only digits, separators and one + before the first digit get as far as
 * libphonenumber, which would otherwise read letters as a vanity number
 * ("1-800-FLOWERS") or an extension ("x12") and drop what it cannot use.
 */
static ob_rc_t check_number(const char *s, size_t len, const char *what, ob_err_t *err)
{
    size_t digits = 0;
    bool plus = false, blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        blank = blank && isspace(c);
        if (isdigit(c)) {
            digits++;
        } else if (c == '+' && !plus && digits == 0) {
            plus = true;
        } else if (c == '+') {
            ob_err_set(err, "%s may contain '+' only once, before the country code", what);
            return OB_EINVAL;
        } else if (!is_separator(c)) {
            bad_char(err, what, c);
            return OB_EINVAL;
        }
    }
    if (digits == 0) {
        ob_err_set(err, blank ? "%s is empty" : "%s has no digits", what);
        return OB_EINVAL;
    }
    return OB_OK;
}

/*
 * "1.61755E+10" (or "1,61755E+10" where the decimal mark is a comma): a
 * spreadsheet read the column as numbers and wrote this one rounded to six
 * significant digits. The digits after them are gone, so no reading of it
 * can be right; only the client can fix the file.
 */
static bool scientific(const char *s, size_t len)
{
    size_t i = 0, mantissa = 0, exponent = 0;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    if (i < len && s[i] == '+')
        i++;
    for (; i < len && isdigit((unsigned char)s[i]); i++)
        mantissa++;
    if (i < len && (s[i] == '.' || s[i] == ','))
        for (i++; i < len && isdigit((unsigned char)s[i]); i++)
            mantissa++;
    if (!mantissa || i == len || (s[i] != 'E' && s[i] != 'e'))
        return false;
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < len && isdigit((unsigned char)s[i]); i++)
        exponent++;
    return exponent && i == len;
}

/*
 * Finds an extension written after the number ("617 555 0106 ext. 12",
 * "x12", "#12", "extension 12"): a marker where the number's characters
 * end, then separators, then only digits up to the end. On a match,
 * *number_len is cut to the number and *ext, *ext_len name the digits;
 * otherwise nothing changes, and check_number names the character at fault.
 */
static void find_extension(const char *s, size_t *number_len, const char **ext, size_t *ext_len)
{
    size_t len = *number_len, at = 0;
    while (at < len &&
           (isdigit((unsigned char)s[at]) || s[at] == '+' || is_separator((unsigned char)s[at])))
        at++;
    for (size_t m = 0; at < len && m < OB_COUNTOF(ext_markers); m++) {
        size_t mlen = strlen(ext_markers[m]);
        if (len - at < mlen || strncasecmp(s + at, ext_markers[m], mlen) != 0)
            continue;
        size_t i = at + mlen, first;
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '.' || s[i] == ':'))
            i++;
        for (first = i; i < len && isdigit((unsigned char)s[i]); i++)
            ;
        size_t digits = i - first;
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if (digits && i == len) {
            *number_len = at;
            *ext = s + first;
            *ext_len = digits;
            return;
        }
    }
}

/* The extension's digits become the post-dial digits: the dialer sends them
 * as DTMF once the call is answered, as it does ;postd=. RFC 3966's ;ext=
 * may hold visual separators, which are dropped. */
static ob_rc_t set_extension(const char *s, size_t len, ob_phone_t *out, ob_err_t *err)
{
    size_t o = 0;
    if (out->post_dial[0]) {
        ob_err_set(err, "%s", TWO_POST_DIALS);
        return OB_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isdigit(c) && o < EXT_MAX) {
            out->post_dial[o++] = (char)c;
        } else if (isdigit(c)) {
            ob_err_set(err, "phone_number's extension is longer than %d digits", EXT_MAX);
            return OB_EINVAL;
        } else if (!is_separator(c)) {
            ob_err_set(err, "phone_number's extension (;ext=) may contain only digits");
            return OB_EINVAL;
        }
    }
    if (!o) {
        ob_err_set(err, "phone_number's extension (;ext=) is empty");
        return OB_EINVAL;
    }
    out->post_dial[o] = '\0';
    return OB_OK;
}

static ob_rc_t copy_post_dial(const char *s, size_t len, char out[OB_PHONE_MAX], ob_err_t *err)
{
    const char *what = "postd (post-dial digits)";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isdigit(c) || strchr(POST_DIAL, c)) {
            if (o + 1 >= OB_PHONE_MAX) {
                ob_err_set(err, "%s is too long (at most %d characters)", what, OB_PHONE_MAX - 1);
                return OB_EINVAL;
            }
            out[o++] = (char)c;
        } else if (!is_separator(c)) {
            ob_err_set(err, "%s may contain only 0-9 * # w W p P , A-D", what);
            return OB_EINVAL;
        }
    }
    out[o] = '\0';
    return OB_OK;
}

/* Maps "no region" spellings to libphonenumber's "ZZ" and upper-cases the rest. */
static ob_rc_t resolve_region(const char *given, char region[3], ob_err_t *err)
{
    if (!given || !*given || strcasecmp(given, "ZZ") == 0) {
        memcpy(region, "ZZ", 3);
        return OB_OK;
    }
    if (!ob_phone_region_valid(given)) {
        ob_err_set(err,
                   "the deployment's default region \"%.8s\" is not an ISO 3166 alpha-2 code "
                   "libphonenumber supports",
                   given);
        return OB_EINVAL;
    }
    region[0] = (char)toupper((unsigned char)given[0]);
    region[1] = (char)toupper((unsigned char)given[1]);
    region[2] = '\0';
    return OB_OK;
}

static ob_rc_t parse_number(const char *s, size_t len, const char *region, const char *what,
                            char e164[OB_PHONE_MAX], char *region_out, ob_err_t *err)
{
    if (scientific(s, len)) {
        ob_err_set(err,
                   "%s \"%.*s\" is in scientific notation: the spreadsheet stored the number as a "
                   "value and lost its last digits; format the column as text and export the file "
                   "again",
                   what, (int)(len > SHOWN_MAX ? SHOWN_MAX : len), s);
        return OB_EINVAL;
    }
    if (check_number(s, len, what, err) != OB_OK)
        return OB_EINVAL;
    return ob_phonenumber_normalise(s, len, region, what, e164, region_out, err);
}

ob_rc_t ob_phone_parse_region(const char *input, const char *default_region, ob_phone_t *out,
                              ob_err_t *err)
{
    ob_rc_t rc = OB_EINVAL;
    char region[3];
    const char *s = input;
    const char *semi, *ext = NULL;
    size_t nlen, ext_len = 0;
    bool has_ext_param = false;

    memset(out, 0, sizeof(*out));
    if ((rc = resolve_region(default_region, region, err)) != OB_OK)
        goto out;
    while (isspace((unsigned char)*s))
        s++;
    if (strncasecmp(s, "tel:", 4) == 0)
        s += 4;
    semi = strchr(s, ';');
    nlen = semi ? (size_t)(semi - s) : strlen(s);
    find_extension(s, &nlen, &ext, &ext_len);
    rc = parse_number(s, nlen, region, "phone_number", out->e164, out->region, err);
    if (rc == OB_OK && ext)
        rc = set_extension(ext, ext_len, out, err);
    while (rc == OB_OK && semi) {
        const char *p = semi + 1;
        semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len >= 4 && strncasecmp(p, "ani=", 4) == 0) {
            rc = parse_number(p + 4, len - 4, region, "ani (caller id)", out->caller_id, NULL, err);
        } else if (len >= 6 && strncasecmp(p, "postd=", 6) == 0) {
            if (out->post_dial[0] && (ext || has_ext_param)) {
                ob_err_set(err, "%s", TWO_POST_DIALS);
                rc = OB_EINVAL;
            } else {
                rc = copy_post_dial(p + 6, len - 6, out->post_dial, err);
            }
        } else if (len >= 4 && strncasecmp(p, "ext=", 4) == 0) {
            rc = set_extension(p + 4, len - 4, out, err);
            has_ext_param = true;
        } else if (len > 0) {
            size_t name = strcspn(p, "=;");
            ob_err_set(err,
                       "unknown phone_number parameter \"%.*s\" (expected ;ani=, ;postd= or ;ext=)",
                       (int)(name > 32 ? 32 : name), p);
            rc = OB_EINVAL;
        }
    }
out:
    if (rc != OB_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

ob_rc_t ob_phone_parse(const char *input, ob_phone_t *out, ob_err_t *err)
{
    return ob_phone_parse_region(input, NULL, out, err);
}
