/*
 * The C side of phone number parsing: the tel: scheme, the Plum ;ani= and
 * ;postd= parameters and the characters a number may contain. Deciding what
 * a number means (country, national format, validity) is left to
 * libphonenumber behind ob_phonenumber_normalise (common/ob_phonenumber.cc).
 */
#include "ob_phone.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define SEPARATORS ".-()/"
#define POST_DIAL  "*#wWpP,ABCD"

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
    const char *semi;

    memset(out, 0, sizeof(*out));
    if ((rc = resolve_region(default_region, region, err)) != OB_OK)
        goto out;
    while (isspace((unsigned char)*s))
        s++;
    if (strncasecmp(s, "tel:", 4) == 0)
        s += 4;
    semi = strchr(s, ';');
    rc = parse_number(s, semi ? (size_t)(semi - s) : strlen(s), region, "phone_number", out->e164,
                      out->region, err);
    while (rc == OB_OK && semi) {
        const char *p = semi + 1;
        semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len >= 4 && strncasecmp(p, "ani=", 4) == 0) {
            rc = parse_number(p + 4, len - 4, region, "ani (caller id)", out->caller_id, NULL, err);
        } else if (len >= 6 && strncasecmp(p, "postd=", 6) == 0) {
            rc = copy_post_dial(p + 6, len - 6, out->post_dial, err);
        } else if (len > 0) {
            size_t name = strcspn(p, "=;");
            ob_err_set(err, "unknown phone_number parameter \"%.*s\" (expected ;ani= or ;postd=)",
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
