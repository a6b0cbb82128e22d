/* UTF-8 validation (common/ob_common.c): what Postgres and JSON readers
 * accept as text, so that nothing accepted is later refused downstream. */
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *bytes; /* the text */
    size_t len;        /* its length (NUL bytes included) */
    bool valid;        /* what ob_utf8_valid must say */
} utf8_case_t;

#define CASE(s, v)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, v                                                                        \
    }

ParameterizedTestParameters(utf8, valid)
{
    static utf8_case_t cases[] = {
        CASE("", true),
        CASE("plain ASCII '; DROP TABLE calls; --", true),
        CASE("\xc3\xbc \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82", true), /* ü 日本 🙂 */
        CASE("\xe2\x80\xae", true),                                       /* U+202E */
        CASE("\xf4\x8f\xbf\xbf", true),                                   /* U+10FFFF */
        CASE("a\0b", false),                                              /* NUL */
        CASE("\xff", false),                                              /* never in UTF-8 */
        CASE("\x80", false),                                              /* lone continuation */
        CASE("\xc3", false),                                              /* cut short */
        CASE("\xe6\x97", false),                                          /* cut short */
        CASE("\xc0\xaf", false),                                          /* overlong '/' */
        CASE("\xe0\x80\xaf", false),                                      /* overlong '/' */
        CASE("\xed\xa0\x80", false),                                      /* surrogate U+D800 */
        CASE("\xf4\x90\x80\x80", false),                                  /* above U+10FFFF */
        CASE("\xc3\x28", false),                                          /* bad continuation */
    };
    return cr_make_param_array(utf8_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(utf8_case_t *c, utf8, valid)
{
    cr_expect_eq(ob_utf8_valid(c->bytes, c->len), c->valid, "case of %zu bytes", c->len);
}
