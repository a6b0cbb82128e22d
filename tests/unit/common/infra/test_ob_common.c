/* Table-driven tests of the shared basics (common/infra/ob_common.c): RFC 3339
 * times, read from clients and from any producer on the events topic; and
 * UTF-8 validation, what Postgres and JSON readers accept as text, so that
 * nothing accepted is later refused downstream. */
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *text; /* given */
    bool ok;          /* accepted */
    long long ms;     /* unix ms when accepted */
} time_case_t;

static time_case_t time_cases[] = {
    {"2026-11-27T10:00:00Z", true, 1795773600000LL},
    {"2026-11-27t10:00:00z", true, 1795773600000LL},
    {"2026-11-27T10:00:00.123Z", true, 1795773600123LL},
    {"2026-11-27T10:00:00.5Z", true, 1795773600500LL},         /* was read as 5 ms */
    {"2026-11-27T10:00:00.123456789Z", true, 1795773600123LL}, /* was read as 123456789 ms */
    {"2026-11-27T11:30:00+01:30", true, 1795773600000LL},
    {"2026-11-27T05:00:00-05:00", true, 1795773600000LL}, /* the offset was ignored */
    {"1970-01-01T00:00:00Z", true, 0},
    {"2028-02-29T00:00:00Z", true, 1835395200000LL},
    {"9999-12-31T23:59:59.999Z", true, 253402300799999LL},
    /* fuzz: a year whose milliseconds overflow int64 (UB in ob_proto.c). */
    {"5202552025-11-26T23:34:05.120Z", false, 0},
    {"1969-12-31T23:59:59Z", false, 0},
    {"1970-01-01T00:30:00+01:00", false, 0},
    {"0026-01-02T10:00:00+01:00", false, 0},
    {"2026-02-29T10:00:00Z", false, 0},
    {"2026-04-31T10:00:00Z", false, 0},
    {"2026-13-01T10:00:00Z", false, 0},
    {"2026-00-01T10:00:00Z", false, 0},
    {"2026-01-00T10:00:00Z", false, 0},
    {"2026-01-01T24:00:00Z", false, 0},
    {"2026-01-01T10:60:00Z", false, 0},
    {"2026-01-01T10:00:60Z", false, 0},
    {"2026-01-01T10:00:00", false, 0},
    {"2026-01-01T10:00:00.Z", false, 0},
    {"2026-01-01T10:00:00+0100", false, 0},
    {"2026-01-01T10:00:00+24:00", false, 0},
    {"2026-01-01T10:00:00+01:60", false, 0},
    {"2026-01-01T10:00:00Zjunk", false, 0},
    {"2026-1-01T10:00:00Z", false, 0},
    {"2026-01-01T-1:00:00Z", false, 0},
    {" 2026-01-01T10:00:00Z", false, 0},
    {"+2026-01-01T10:00:00Z", false, 0},
    {"2026-01-01 10:00:00Z", false, 0},
    {"2026-01-01", false, 0},
    {"2026", false, 0},
    {"", false, 0},
};

ParameterizedTestParameters(time, parse_rfc3339)
{
    return cr_make_param_array(time_case_t, time_cases, OB_COUNTOF(time_cases));
}

ParameterizedTest(time_case_t *c, time, parse_rfc3339)
{
    int64_t ms = -42;
    bool ok = ob_time_parse_rfc3339(c->text, &ms);
    cr_expect_eq(ok, c->ok, "'%s' %s", c->text, ok ? "accepted" : "refused");
    cr_expect_eq(ms, c->ok ? c->ms : -42, "'%s' gave %lld", c->text, (long long)ms);
}

Test(time, format_and_parse_agree)
{
    static const int64_t samples[] = {0, 999, 1795773600123LL, 253402300799999LL};
    for (size_t i = 0; i < OB_COUNTOF(samples); i++) {
        char text[32];
        int64_t back = -1;
        ob_time_format_rfc3339(samples[i], text, sizeof(text));
        cr_expect(ob_time_parse_rfc3339(text, &back), "%s", text);
        cr_expect_eq(back, samples[i], "%s", text);
    }
}

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
