/*
 * Syntactic E.164 normalisation: strips visual separators and checks the
 * digit count and country-code rules of ITU-T E.164 (at most 15 digits, no
 * leading zero). Numbers must be international (+ or 00); national forms need
 * a region and are handled by the libphonenumber-backed parser of the ingest
 * issue.
 */
#include "ob_phone.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static ob_rc_t digits_only(const char *s, size_t len, char *out, size_t cap, const char *allowed,
                           const char *what, ob_err_t *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isdigit(c) || (allowed && strchr(allowed, c))) {
            if (o + 1 >= cap) {
                ob_err_set(err, "%s is too long", what);
                return OB_EINVAL;
            }
            out[o++] = (char)c;
        } else if (!strchr(" .-()/", c)) {
            ob_err_set(err, "%s contains '%c', which is not a digit or separator", what, c);
            return OB_EINVAL;
        }
    }
    out[o] = '\0';
    return OB_OK;
}

static ob_rc_t normalise(const char *s, size_t len, char out[OB_PHONE_MAX], const char *what,
                         ob_err_t *err)
{
    char digits[OB_PHONE_MAX];
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    bool plus = len && *s == '+';
    if (plus) {
        s++;
        len--;
    }
    if (digits_only(s, len, digits, sizeof(digits), NULL, what, err) != OB_OK)
        return OB_EINVAL;
    const char *d = digits;
    if (!plus && strncmp(d, "00", 2) == 0)
        d += 2;
    else if (!plus) {
        ob_err_set(err, "%s must be in international format (+ and country code)", what);
        return OB_EINVAL;
    }
    size_t n = strlen(d);
    if (n == 0) {
        ob_err_set(err, "%s has no digits", what);
        return OB_EINVAL;
    }
    if (d[0] == '0') {
        ob_err_set(err, "%s has no valid country code (it starts with 0)", what);
        return OB_EINVAL;
    }
    if (n < 7 || n > 15) {
        ob_err_set(err, "%s has %zu digits; E.164 numbers have 7 to 15", what, n);
        return OB_EINVAL;
    }
    snprintf(out, OB_PHONE_MAX, "+%s", d);
    return OB_OK;
}

ob_rc_t ob_phone_parse(const char *input, ob_phone_t *out, ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *s = input;
    if (strncasecmp(s, "tel:", 4) == 0)
        s += 4;
    const char *semi = strchr(s, ';');
    size_t main_len = semi ? (size_t)(semi - s) : strlen(s);
    if (normalise(s, main_len, out->e164, "phone_number", err) != OB_OK)
        return OB_EINVAL;
    while (semi) {
        const char *p = semi + 1;
        semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (strncasecmp(p, "ani=", 4) == 0) {
            if (normalise(p + 4, len - 4, out->caller_id, "ani (caller id)", err) != OB_OK)
                return OB_EINVAL;
        } else if (strncasecmp(p, "postd=", 6) == 0) {
            if (digits_only(p + 6, len - 6, out->post_dial, sizeof(out->post_dial), "*#wWpP,ABCD",
                            "postd (post-dial digits)", err) != OB_OK)
                return OB_EINVAL;
        } else if (len > 0) {
            ob_err_set(err, "unknown phone_number parameter \"%.*s\" (expected ;ani= or ;postd=)",
                       (int)(len > 32 ? 32 : len), p);
            return OB_EINVAL;
        }
    }
    return OB_OK;
}
