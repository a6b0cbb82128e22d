/* Table-driven tests of the times the Plum routes read
 * (ingest_parse_natural_time in services/ingest/ingest_time.c): the English
 * expressions of PHP's strtotime() that Plum DEV documents, at a fixed
 * present, with the answer strtotime gives (checked against PHP's rules:
 * day words and weekdays reset the time of day, relative amounts come
 * last, a month past the end of the next month rolls over). */
#include "ingest_time.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#define NOW_S 1767799845LL /* Wednesday 2026-01-07T15:30:45Z */

typedef struct {
    const char *text; /* as a client sends it */
    long long want_s; /* unix seconds, or -1: refused */
} time_case_t;

static time_case_t time_cases[] = {
    /* The examples of Plum DEV's outbound parameter notes. */
    {"now", NOW_S},
    {"+3 days", 1768059045},
    {"oct 14th, 2011 11:05PM EST", 1318651500},
    /* Relative amounts, singly and together, before and after "ago". */
    {"+90 minutes", 1767805245},
    {"+1 week 2 days 4 hours 2 seconds", 1768591847},
    {"3 hours ago", 1767789045},
    {"2 weeks ago", 1766590245},
    {"+1 month", 1770478245},
    {"jan 31 2026 +1 month", 1772496000}, /* strtotime: February 31 is March 3 */
    {"next week", 1768404645},
    {"last year", 1736263845},
    /* Day words and weekdays: the time of day is midnight unless written. */
    {"tomorrow", 1767830400},
    {"tomorrow 9am", 1767862800},
    {"Tomorrow 9 A.M.", 1767862800},
    {"midnight", 1767744000},
    {"today 12am", 1767744000},
    {"12pm", 1767787200},
    {"yesterday noon", 1767700800},
    {"+1 day 1pm", 1767877200},
    {"wednesday", 1767744000}, /* today counts */
    {"next wednesday", 1768348800},
    {"last wednesday", 1767139200},
    {"next monday", 1768176000},
    {"friday 17:00", 1767978000},
    {"next monday 9:15am EDT", 1768223700},
    /* Dates: month names, ordinals, ISO, American slashes, zones. */
    {"14 October 2011", 1318550400},
    {"dec 25 5pm PST", 1798246800},
    {"10/14/2011 8:00 pm", 1318622400},
    {"2026-03-01 09:30 +01:00", 1772353800},
    {"2026-03-01T09:30:15", 1772357415},
    {"feb 29 2028", 1835395200},
    {"@1700000000", 1700000000},
    /* Refused: not strtotime's, or a typo strtotime would turn into a date. */
    {"", -1},
    {"soon", -1},
    {"next", -1},
    {"+3", -1},
    {"+3 parsecs", -1},
    {"13pm", -1},
    {"25:00", -1},
    {"feb 30 2026", -1},
    {"2026-13-01", -1},
    {"1969-12-31", -1},
    {"3000-01-01", -1},
    {"+10000000 days", -1},
    {"monday tuesday", -1},
    {"9am 10am", -1},
    {"oct 14th, 2011 EST EST", -1},
    {"last day of next month", -1},
};

ParameterizedTestParameters(time, natural)
{
    return cr_make_param_array(time_case_t, time_cases, OB_COUNTOF(time_cases));
}

ParameterizedTest(time_case_t *c, time, natural)
{
    int64_t ms = -42;
    bool ok = ingest_parse_natural_time(c->text, NOW_S * 1000 + 250, &ms);
    if (c->want_s < 0) {
        cr_expect(!ok, "'%s' read as %lld", c->text, (long long)ms);
    } else {
        cr_assert(ok, "'%s' refused", c->text);
        cr_expect_eq(ms, c->want_s * 1000, "'%s': %lld, want %lld", c->text, (long long)ms / 1000,
                     c->want_s);
    }
}

/* The native API's forms are unchanged: "now", "+N unit", RFC 3339, digits. */
Test(time, native_forms)
{
    int64_t ms = 0;
    cr_expect(ingest_parse_time_text("1700000000", &ms) && ms == 1700000000000LL);
    cr_expect(ingest_parse_time_text("2026-01-01T00:00:00Z", &ms) && ms == 1767225600000LL);
    cr_expect(ingest_parse_time_text("+2 hours", &ms));
    cr_expect(!ingest_parse_time_text("tomorrow 9am", &ms));
}
