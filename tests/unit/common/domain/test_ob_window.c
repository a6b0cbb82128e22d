/* Table-driven tests of campaign windows (common/domain/ob_window.c): parsing, and
 * open / next open / next close across DST changes, holidays and callees in
 * several zones. Expected instants are UTC, worked out from the zone rules. */
#include "ob_phone_tz.h"
#include "ob_window.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* "2026-03-08T06:30:00Z" -> Unix ms; NULL -> -1 (never). */
static int64_t ms(const char *rfc3339)
{
    struct tm tm = {0};
    if (!rfc3339)
        return -1;
    cr_assert_eq(sscanf(rfc3339, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                 6, "bad time in the table: %s", rfc3339);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static const char *show(int64_t t, char buf[32])
{
    if (t < 0)
        return "never";
    ob_time_format_rfc3339(t, buf, 32);
    return buf;
}

/* ---- Parsing ---- */

typedef struct {
    const char *json;      /* the window as a client sent it */
    const char *error_has; /* substring of the error, NULL if accepted */
} parse_case_t;

#define MON_17                                                                                     \
    "[[\"00:00\",\"00:10\"],[\"01:00\",\"01:10\"],[\"02:00\",\"02:10\"],[\"03:00\",\"03:10\"],"    \
    "[\"04:00\",\"04:10\"],[\"05:00\",\"05:10\"],[\"06:00\",\"06:10\"],[\"07:00\",\"07:10\"],"     \
    "[\"08:00\",\"08:10\"],[\"09:00\",\"09:10\"],[\"10:00\",\"10:10\"],[\"11:00\",\"11:10\"],"     \
    "[\"12:00\",\"12:10\"],[\"13:00\",\"13:10\"],[\"14:00\",\"14:10\"],[\"15:00\",\"15:10\"],"     \
    "[\"16:00\",\"16:10\"]]"

static parse_case_t parse_cases[] = {
    /* Accepted. */
    {"{\"time_zone\":\"America/New_York\",\"hours\":{\"mon\":[[\"09:00\",\"12:00\"],[\"12:00\","
     "\"17:00\"]],\"sun\":[]},\"holidays\":[\"2026-12-25\",\"2024-02-29\"]}",
     NULL},
    {"{\"time_zone\":\"callee\",\"fallback_time_zone\":\"Asia/Kolkata\",\"hours\":{\"fri\":[["
     "\"00:00\",\"24:00\"]]}}",
     NULL},
    {"{\"time_zone\":\"Asia/Calcutta\"}", NULL},
    {"{\"time_zone\":\"UTC\",\"holidays\":[]}", NULL},
    /* The document. */
    {"{", "window: not valid JSON"},
    {"{} x", "window: not valid JSON"},
    {"[1]", "window: must be an object"},
    {"\"callee\"", "window: must be an object"},
    {"{\"timezone\":\"UTC\"}", "window.timezone: unknown field"},
    {"{\"time_zone\":\"UTC\",\"time_zone\":\"UTC\"}", "window.time_zone: given twice"},
    /* Zones. */
    {"{\"hours\":{\"mon\":[[\"09:00\",\"17:00\"]]}}", "window.time_zone: required"},
    {"{\"time_zone\":5}", "window.time_zone: must be a string"},
    {"{\"time_zone\":\"Mars/Base\"}", "window.time_zone: \"Mars/Base\" is not an IANA time zone"},
    {"{\"time_zone\":\"GMT+5\"}", "window.time_zone: \"GMT+5\" is not an IANA time zone"},
    {"{\"time_zone\":\"america/new_york\"}", "window.time_zone: \"america/new_york\" is not"},
    {"{\"time_zone\":\"\"}", "window.time_zone: \"\" is not an IANA time zone"},
    {"{\"time_zone\":\"UTC\",\"fallback_time_zone\":\"UTC\"}",
     "window.fallback_time_zone: applies only with time_zone \"callee\""},
    {"{\"time_zone\":\"callee\",\"fallback_time_zone\":\"callee\"}",
     "window.fallback_time_zone: \"callee\" is not an IANA time zone"},
    {"{\"time_zone\":\"callee\",\"fallback_time_zone\":null}",
     "window.fallback_time_zone: must be a string"},
    /* Hours. */
    {"{\"time_zone\":\"UTC\",\"hours\":[]}", "window.hours: must be an object"},
    {"{\"time_zone\":\"UTC\",\"hours\":{}}", "window.hours: no day has any hours"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"mon\":[],\"sat\":[]}}",
     "window.hours: no day has any hours"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"monday\":[]}}", "window.hours.monday: unknown day"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"mon\":[],\"mon\":[]}}", "window.hours.mon: given twice"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"mon\":\"09:00-17:00\"}}",
     "window.hours.mon: must be an array"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"tue\":[[\"09:00\"]]}}",
     "window.hours.tue[0]: must be a pair"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"tue\":[[\"09:00\",\"10:00\",\"11:00\"]]}}",
     "window.hours.tue[0]: must be a pair"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"wed\":[[900,1700]]}}",
     "window.hours.wed[0]: must be a pair"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"mon\":[[\"07:00\",\"08:00\"],[\"09:00\",\"08:00\"]]}}",
     "window.hours.mon[1]: end 08:00 is not after start 09:00"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"mon\":[[\"09:00\",\"09:00\"]]}}",
     "window.hours.mon[0]: end 09:00 is not after start 09:00"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"thu\":[[\"9:00\",\"17:00\"]]}}",
     "window.hours.thu[0]: start \"9:00\" is not a time from 00:00 to 24:00"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"thu\":[[\"09:00\",\"24:01\"]]}}",
     "window.hours.thu[0]: end \"24:01\" is not a time"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"thu\":[[\"09:00\",\"12:60\"]]}}",
     "window.hours.thu[0]: end \"12:60\" is not a time"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"thu\":[[\"25:00\",\"26:00\"]]}}",
     "window.hours.thu[0]: start \"25:00\" is not a time"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"fri\":[[\"09:00\",\"12:00\"],[\"11:00\",\"13:00\"]]}}",
     "window.hours.fri[1]: 11:00-13:00 overlaps window.hours.fri[0] 09:00-12:00"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"fri\":[[\"11:00\",\"13:00\"],[\"15:00\",\"16:00\"],["
     "\"09:00\",\"12:00\"]]}}",
     "window.hours.fri[2]: 09:00-12:00 overlaps window.hours.fri[0] 11:00-13:00"},
    {"{\"time_zone\":\"UTC\",\"hours\":{\"sun\":" MON_17 "}}",
     "window.hours.sun: 17 intervals, at most 16"},
    /* Holidays. */
    {"{\"time_zone\":\"UTC\",\"holidays\":{}}", "window.holidays: must be an array"},
    {"{\"time_zone\":\"UTC\",\"holidays\":[20261225]}",
     "window.holidays[0]: must be a date string"},
    {"{\"time_zone\":\"UTC\",\"holidays\":[\"2026-12-25\",\"2026-02-29\"]}",
     "window.holidays[1]: \"2026-02-29\" is not a date YYYY-MM-DD"},
    {"{\"time_zone\":\"UTC\",\"holidays\":[\"2026-13-01\"]}",
     "window.holidays[0]: \"2026-13-01\" is not a date"},
    {"{\"time_zone\":\"UTC\",\"holidays\":[\"2026-4-01\"]}",
     "window.holidays[0]: \"2026-4-01\" is not a date"},
    {"{\"time_zone\":\"UTC\",\"holidays\":[\"2026-12-25T00:00\"]}",
     "window.holidays[0]: \"2026-12-25T00:00\" is not a date"},
};

ParameterizedTestParameters(window, parse)
{
    return cr_make_param_array(parse_case_t, parse_cases,
                               sizeof(parse_cases) / sizeof(parse_cases[0]));
}

ParameterizedTest(parse_case_t *c, window, parse)
{
    ob_window_t *w = (ob_window_t *)1;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_window_parse(c->json, &w, &err);
    if (!c->error_has) {
        cr_assert_eq(rc, OB_OK, "%s: %s", c->json, err.msg);
        cr_expect_not_null(w, "%s", c->json);
    } else {
        cr_assert_eq(rc, OB_EINVAL, "%s was accepted", c->json);
        cr_expect_null(w, "%s: a rejected window leaves no result", c->json);
        cr_expect(strstr(err.msg, c->error_has) != NULL, "%s: error \"%s\" lacks \"%s\"", c->json,
                  err.msg, c->error_has);
    }
    ob_window_free(w);
}

Test(window, no_window_text_is_no_window_and_always_open)
{
    const char *texts[] = {NULL, "", " \n\t", "null"};
    for (size_t i = 0; i < OB_COUNTOF(texts); i++) {
        ob_window_t *w = (ob_window_t *)1;
        ob_err_t err = {{0}};
        cr_assert_eq(ob_window_parse(texts[i], &w, &err), OB_OK, "%zu: %s", i, err.msg);
        cr_expect_null(w, "%zu", i);
    }
    int64_t t = ms("2026-03-09T00:00:00Z");
    cr_expect(ob_window_open_at(NULL, NULL, 0, t));
    cr_expect_eq(ob_window_next_open(NULL, NULL, 0, t), t);
    cr_expect_eq(ob_window_next_close(NULL, NULL, 0, t), -1);
    cr_expect_not(ob_window_uses_callee_zone(NULL));
}

Test(window, from_cjson_reads_a_member_of_a_larger_document)
{
    cJSON *doc = cJSON_Parse("{\"window\":{\"time_zone\":\"callee\"},\"other\":{\"time_zone\":1},"
                             "\"none\":null}");
    ob_window_t *w = NULL;
    ob_err_t err = {{0}};
    cr_assert_not_null(doc);
    cr_assert_eq(ob_window_from_cjson(cJSON_GetObjectItem(doc, "window"), &w, &err), OB_OK, "%s",
                 err.msg);
    cr_expect(ob_window_uses_callee_zone(w));
    ob_window_free(w);
    cr_expect_eq(ob_window_from_cjson(cJSON_GetObjectItem(doc, "other"), &w, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "window.time_zone: must be a string, an IANA time zone such as "
                              "\"Europe/London\"");
    cr_expect_eq(ob_window_from_cjson(cJSON_GetObjectItem(doc, "none"), &w, &err), OB_OK);
    cr_expect_null(w);
    cJSON_Delete(doc);
}

typedef struct {
    const char *zone; /* a configured zone */
    bool valid;       /* whether ICU knows it as a system zone */
} zone_case_t;

static zone_case_t zone_cases[] = {
    {"Europe/London", true},
    {"UTC", true},
    {"Asia/Calcutta", true},
    {"Asia/Kolkata", true},
    {"Pacific/Apia", true},
    {"callee", false},
    {"", false},
    {NULL, false},
    {"Mars/Base", false},
    {"GMT+5", false},
    {"Etc/Unknown", false},
    {"europe/london", false},
    {"Europe/London ", false},
    {"Europe/Lon\xc3\xb6", false},
};

ParameterizedTestParameters(window, zone_valid)
{
    return cr_make_param_array(zone_case_t, zone_cases, sizeof(zone_cases) / sizeof(zone_cases[0]));
}

ParameterizedTest(zone_case_t *c, window, zone_valid)
{
    cr_expect_eq(ob_window_zone_valid(c->zone), c->valid, "%s", c->zone ? c->zone : "(null)");
}

/* ---- Open, next open, next close ---- */

typedef struct {
    const char *window;     /* JSON, NULL for no window */
    const char *callee;     /* E.164 number whose zones are passed, NULL for none */
    const char *at;         /* the instant asked about */
    bool open;              /* expected ob_window_open_at */
    const char *next_open;  /* expected ob_window_next_open, NULL for never */
    const char *next_close; /* expected ob_window_next_close, NULL for never */
} window_case_t;

/* 2026-03-08, 02:00 EST (07:00Z) -> 03:00 EDT; 2026-11-01, 02:00 EDT (06:00Z) -> 01:00 EST. */
#define NY_SUN_0130_0300                                                                           \
    "{\"time_zone\":\"America/New_York\",\"hours\":{\"sun\":[[\"01:30\",\"03:00\"]]}}"
#define NY_SUN_0200_0230_MON_9_17                                                                  \
    "{\"time_zone\":\"America/New_York\",\"hours\":{\"sun\":[[\"02:00\",\"02:30\"]],"              \
    "\"mon\":[[\"09:00\",\"17:00\"]]}}"
#define NY_SUN_0130_0230                                                                           \
    "{\"time_zone\":\"America/New_York\",\"hours\":{\"sun\":[[\"01:30\",\"02:30\"]]}}"
#define NY_SUN_0100_0200                                                                           \
    "{\"time_zone\":\"America/New_York\",\"hours\":{\"sun\":[[\"01:00\",\"02:00\"]]}}"
/* 2026-03-29, 01:00 GMT -> 02:00 BST; 2026-10-25, 02:00 BST (01:00Z) -> 01:00 GMT. */
#define LONDON_SUN_0030_0130                                                                       \
    "{\"time_zone\":\"Europe/London\",\"hours\":{\"sun\":[[\"00:30\",\"01:30\"]]}}"
/* Half-hour shifts. 2026-10-04, 02:00 +10:30 (15:30Z) -> 02:30 +11;
 * 2026-04-05, 02:00 +11 (15:00Z) -> 01:30 +10:30. */
#define LORD_HOWE_SUN_0145_0215                                                                    \
    "{\"time_zone\":\"Australia/Lord_Howe\",\"hours\":{\"sun\":[[\"01:45\",\"02:15\"]]}}"
#define LORD_HOWE_SUN_0200_0230                                                                    \
    "{\"time_zone\":\"Australia/Lord_Howe\",\"hours\":{\"sun\":[[\"02:00\",\"02:30\"]]}}"
/* +05:30 all year. */
#define KOLKATA_MON_9_17                                                                           \
    "{\"time_zone\":\"Asia/Kolkata\",\"hours\":{\"mon\":[[\"09:00\",\"17:00\"]]}}"
/* Samoa skipped Friday 2011-12-30: 23:59:59 -10 on the 29th (09:59:59Z on
 * the 30th) was followed by 00:00 +14 on the 31st. */
#define APIA_FRI_9_17 "{\"time_zone\":\"Pacific/Apia\",\"hours\":{\"fri\":[[\"09:00\",\"17:00\"]]}}"
#define APIA_THU_EVENING_SAT_MORNING                                                               \
    "{\"time_zone\":\"Pacific/Apia\",\"hours\":{\"thu\":[[\"20:00\",\"24:00\"]],"                  \
    "\"sat\":[[\"00:00\",\"08:00\"]]}}"
/* Holidays; 2026-01-26 is a Monday. */
#define CALLEE_HOLIDAY "{\"time_zone\":\"callee\",\"holidays\":[\"2026-01-26\"]}"
#define CALLEE_HOLIDAY_FALLBACK_KOLKATA                                                            \
    "{\"time_zone\":\"callee\",\"fallback_time_zone\":\"Asia/Kolkata\",\"holidays\":[\"2026-01-"   \
    "26\"]}"
#define LONDON_MON_TUE_HOLIDAY                                                                     \
    "{\"time_zone\":\"Europe/London\",\"hours\":{\"mon\":[[\"09:00\",\"17:00\"]],"                 \
    "\"tue\":[[\"09:00\",\"17:00\"]]},\"holidays\":[\"2026-12-28\"]}"
/* Callees: +1208200 is Boise (-6 in March) and Los Angeles (-7); +1208201 is Denver. */
#define CALLEE_MON_9_17 "{\"time_zone\":\"callee\",\"hours\":{\"mon\":[[\"09:00\",\"17:00\"]]}}"
#define CALLEE_MON_TUE_9_17_HOLIDAY                                                                \
    "{\"time_zone\":\"callee\",\"hours\":{\"mon\":[[\"09:00\",\"17:00\"]],\"tue\":[[\"09:00\","    \
    "\"17:00\"]]},\"holidays\":[\"2026-03-10\"]}"
#define CALLEE_WEEKDAYS(from, to)                                                                  \
    "{\"time_zone\":\"callee\",\"hours\":{\"mon\":[[\"" from "\",\"" to "\"]],\"tue\":[[\"" from   \
    "\",\"" to "\"]],\"wed\":[[\"" from "\",\"" to "\"]],\"thu\":[[\"" from "\",\"" to             \
    "\"]],\"fri\":[[\"" from "\",\"" to "\"]]}}"
#define UTC_MON_SPLIT                                                                              \
    "{\"time_zone\":\"UTC\",\"hours\":{\"mon\":[[\"09:00\",\"12:00\"],[\"12:00\",\"17:00\"],"      \
    "[\"22:00\",\"24:00\"]],\"tue\":[[\"00:00\",\"02:00\"]]}}"

static window_case_t window_cases[] = {
    /* New York, spring forward: 01:30-03:00 lasts 30 minutes. */
    {NY_SUN_0130_0300, NULL, "2026-03-08T06:00:00Z", false, "2026-03-08T06:30:00Z",
     "2026-03-08T06:00:00Z"},
    {NY_SUN_0130_0300, NULL, "2026-03-08T06:30:00Z", true, "2026-03-08T06:30:00Z",
     "2026-03-08T07:00:00Z"},
    {NY_SUN_0130_0300, NULL, "2026-03-08T06:59:59Z", true, "2026-03-08T06:59:59Z",
     "2026-03-08T07:00:00Z"},
    {NY_SUN_0130_0300, NULL, "2026-03-08T07:00:00Z", false, "2026-03-15T05:30:00Z",
     "2026-03-08T07:00:00Z"},
    /* An interval inside the skipped hour never opens that day. */
    {NY_SUN_0200_0230_MON_9_17, NULL, "2026-03-08T06:00:00Z", false, "2026-03-09T13:00:00Z",
     "2026-03-08T06:00:00Z"},
    /* New York, fall back: the clock reads 01:00-02:00 twice. */
    {NY_SUN_0130_0230, NULL, "2026-11-01T05:00:00Z", false, "2026-11-01T05:30:00Z",
     "2026-11-01T05:00:00Z"},
    {NY_SUN_0130_0230, NULL, "2026-11-01T05:30:00Z", true, "2026-11-01T05:30:00Z",
     "2026-11-01T06:00:00Z"},
    {NY_SUN_0130_0230, NULL, "2026-11-01T06:00:00Z", false, "2026-11-01T06:30:00Z",
     "2026-11-01T06:00:00Z"},
    {NY_SUN_0130_0230, NULL, "2026-11-01T06:30:00Z", true, "2026-11-01T06:30:00Z",
     "2026-11-01T07:30:00Z"},
    {NY_SUN_0100_0200, NULL, "2026-11-01T05:15:00Z", true, "2026-11-01T05:15:00Z",
     "2026-11-01T07:00:00Z"},
    /* London, spring forward and fall back. */
    {LONDON_SUN_0030_0130, NULL, "2026-03-29T00:00:00Z", false, "2026-03-29T00:30:00Z",
     "2026-03-29T00:00:00Z"},
    {LONDON_SUN_0030_0130, NULL, "2026-03-29T00:30:00Z", true, "2026-03-29T00:30:00Z",
     "2026-03-29T01:00:00Z"},
    {LONDON_SUN_0030_0130, NULL, "2026-10-24T23:00:00Z", false, "2026-10-24T23:30:00Z",
     "2026-10-24T23:00:00Z"},
    {LONDON_SUN_0030_0130, NULL, "2026-10-24T23:30:00Z", true, "2026-10-24T23:30:00Z",
     "2026-10-25T00:30:00Z"},
    {LONDON_SUN_0030_0130, NULL, "2026-10-25T00:30:00Z", false, "2026-10-25T01:00:00Z",
     "2026-10-25T00:30:00Z"},
    {LONDON_SUN_0030_0130, NULL, "2026-10-25T01:00:00Z", true, "2026-10-25T01:00:00Z",
     "2026-10-25T01:30:00Z"},
    /* Lord Howe's 30-minute shifts. */
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-10-03T15:00:00Z", false, "2026-10-03T15:15:00Z",
     "2026-10-03T15:00:00Z"},
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-10-03T15:15:00Z", true, "2026-10-03T15:15:00Z",
     "2026-10-03T15:30:00Z"},
    {LORD_HOWE_SUN_0200_0230, NULL, "2026-10-03T15:00:00Z", false, "2026-10-10T15:00:00Z",
     "2026-10-03T15:00:00Z"},
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-04-04T14:00:00Z", false, "2026-04-04T14:45:00Z",
     "2026-04-04T14:00:00Z"},
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-04-04T14:45:00Z", true, "2026-04-04T14:45:00Z",
     "2026-04-04T15:00:00Z"},
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-04-04T15:00:00Z", false, "2026-04-04T15:15:00Z",
     "2026-04-04T15:00:00Z"},
    {LORD_HOWE_SUN_0145_0215, NULL, "2026-04-04T15:15:00Z", true, "2026-04-04T15:15:00Z",
     "2026-04-04T15:45:00Z"},
    /* Kolkata, +05:30 without DST. */
    {KOLKATA_MON_9_17, NULL, "2026-03-09T03:00:00Z", false, "2026-03-09T03:30:00Z",
     "2026-03-09T03:00:00Z"},
    {KOLKATA_MON_9_17, NULL, "2026-03-09T11:29:00Z", true, "2026-03-09T11:29:00Z",
     "2026-03-09T11:30:00Z"},
    {KOLKATA_MON_9_17, NULL, "2026-03-09T11:30:00Z", false, "2026-03-16T03:30:00Z",
     "2026-03-09T11:30:00Z"},
    /* Apia: the skipped Friday never opens; Thursday night runs into Saturday. */
    {APIA_FRI_9_17, NULL, "2011-12-29T10:00:00Z", false, "2012-01-05T19:00:00Z",
     "2011-12-29T10:00:00Z"},
    {APIA_THU_EVENING_SAT_MORNING, NULL, "2011-12-30T06:00:00Z", true, "2011-12-30T06:00:00Z",
     "2011-12-30T18:00:00Z"},
    /* A holiday is the callee's local date, not the UTC one. */
    {CALLEE_HOLIDAY, "+919876543210", "2026-01-25T18:29:00Z", true, "2026-01-25T18:29:00Z",
     "2026-01-25T18:30:00Z"},
    {CALLEE_HOLIDAY, "+919876543210", "2026-01-25T18:30:00Z", false, "2026-01-26T18:30:00Z",
     "2026-01-25T18:30:00Z"},
    /* A callee without a known zone: UTC, or the window's fallback. */
    {CALLEE_HOLIDAY, "+80012345678", "2026-01-25T18:30:00Z", true, "2026-01-25T18:30:00Z",
     "2026-01-26T00:00:00Z"},
    {CALLEE_HOLIDAY, NULL, "2026-01-26T23:59:00Z", false, "2026-01-27T00:00:00Z",
     "2026-01-26T23:59:00Z"},
    {CALLEE_HOLIDAY_FALLBACK_KOLKATA, "+80012345678", "2026-01-25T18:30:00Z", false,
     "2026-01-26T18:30:00Z", "2026-01-25T18:30:00Z"},
    /* A named zone ignores the callee's. */
    {LONDON_MON_TUE_HOLIDAY, "+12125550100", "2026-12-28T10:00:00Z", false, "2026-12-29T09:00:00Z",
     "2026-12-28T10:00:00Z"},
    /* Boise and Los Angeles: open only while both are, 16:00Z (LA 09:00) to
     * 23:00Z (Boise 17:00); Denver alone from 15:00Z. */
    {CALLEE_MON_9_17, "+12082000100", "2026-03-09T15:30:00Z", false, "2026-03-09T16:00:00Z",
     "2026-03-09T15:30:00Z"},
    {CALLEE_MON_9_17, "+12082000100", "2026-03-09T16:00:00Z", true, "2026-03-09T16:00:00Z",
     "2026-03-09T23:00:00Z"},
    {CALLEE_MON_9_17, "+12082010000", "2026-03-09T15:30:00Z", true, "2026-03-09T15:30:00Z",
     "2026-03-09T23:00:00Z"},
    {CALLEE_MON_TUE_9_17_HOLIDAY, "+12082000100", "2026-03-09T23:00:00Z", false,
     "2026-03-16T16:00:00Z", "2026-03-09T23:00:00Z"},
    /* +1 known only by its country code: 42 zones from Guam (+10) to St
     * Johns (-2:30); 09:00-17:00 never coincides, 08:00-21:00 does briefly. */
    {CALLEE_WEEKDAYS("09:00", "17:00"), "+15555550100", "2026-03-09T16:00:00Z", false, NULL,
     "2026-03-09T16:00:00Z"},
    {CALLEE_WEEKDAYS("08:00", "21:00"), "+15555550100", "2026-03-16T12:00:00Z", false,
     "2026-03-16T22:00:00Z", "2026-03-16T12:00:00Z"},
    {CALLEE_WEEKDAYS("08:00", "21:00"), "+15555550100", "2026-03-16T22:00:00Z", true,
     "2026-03-16T22:00:00Z", "2026-03-16T23:30:00Z"},
    /* Adjacent intervals and midnight join up. */
    {UTC_MON_SPLIT, NULL, "2026-03-09T10:00:00Z", true, "2026-03-09T10:00:00Z",
     "2026-03-09T17:00:00Z"},
    {UTC_MON_SPLIT, NULL, "2026-03-09T23:00:00Z", true, "2026-03-09T23:00:00Z",
     "2026-03-10T02:00:00Z"},
    /* Open around the clock: no close within the horizon. */
    {"{\"time_zone\":\"UTC\"}", NULL, "2026-03-09T00:00:00Z", true, "2026-03-09T00:00:00Z", NULL},
    {NULL, "+12125550100", "2026-03-09T00:00:00Z", true, "2026-03-09T00:00:00Z", NULL},
};

ParameterizedTestParameters(window, open_next_open_next_close)
{
    return cr_make_param_array(window_case_t, window_cases,
                               sizeof(window_cases) / sizeof(window_cases[0]));
}

ParameterizedTest(window_case_t *c, window, open_next_open_next_close)
{
    ob_window_t *w = NULL;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_window_parse(c->window, &w, &err), OB_OK, "%s", err.msg);
    const char *zones[OB_PHONE_TZ_MAX];
    size_t n = c->callee ? ob_phone_tz_lookup(c->callee, zones, OB_PHONE_TZ_MAX) : 0;
    int64_t t = ms(c->at);
    char got[32], want[32];

    cr_expect_eq(ob_window_open_at(w, zones, n, t), c->open, "%s at %s", c->window, c->at);
    int64_t next_open = ob_window_next_open(w, zones, n, t);
    cr_expect_eq(next_open, ms(c->next_open), "%s at %s: opens %s, expected %s", c->window, c->at,
                 show(next_open, got), show(ms(c->next_open), want));
    int64_t next_close = ob_window_next_close(w, zones, n, t);
    cr_expect_eq(next_close, ms(c->next_close), "%s at %s: closes %s, expected %s", c->window,
                 c->at, show(next_close, got), show(ms(c->next_close), want));
    /* The answers agree with each other at the instants they name. */
    if (next_open >= 0)
        cr_expect(ob_window_open_at(w, zones, n, next_open), "%s: closed when it opens", c->window);
    if (next_close >= 0)
        cr_expect_not(ob_window_open_at(w, zones, n, next_close), "%s: open when it closes",
                      c->window);
    ob_window_free(w);
}

Test(window, a_zone_icu_does_not_know_is_evaluated_in_the_fallback_zone)
{
    ob_window_t *w = NULL;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_window_parse(CALLEE_HOLIDAY_FALLBACK_KOLKATA, &w, &err), OB_OK, "%s", err.msg);
    const char *bad[] = {"Mars/Base"};
    const char *utc[] = {"UTC"};
    int64_t t = ms("2026-01-25T18:30:00Z"); /* the 26th in Kolkata, the 25th in UTC */
    cr_expect_not(ob_window_open_at(w, bad, 1, t));
    cr_expect_eq(ob_window_next_open(w, bad, 1, t), ms("2026-01-26T18:30:00Z"));
    cr_expect(ob_window_open_at(w, utc, 1, t));
    ob_window_free(w);
}

/* The scheduler asks many times per call; a year's search must stay cheap. */
Test(window, a_window_that_never_opens_is_found_out_quickly)
{
    ob_window_t *w = NULL;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_window_parse(CALLEE_WEEKDAYS("09:00", "10:00"), &w, &err), OB_OK, "%s",
                 err.msg);
    const char *zones[OB_PHONE_TZ_MAX];
    size_t n = ob_phone_tz_lookup("+15555550100", zones, OB_PHONE_TZ_MAX);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_expect_eq(ob_window_next_open(w, zones, n, ms("2026-01-01T00:00:00Z")), -1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_expect_lt(seconds, 1.0, "a year over 42 zones took %.3f s", seconds);
    ob_window_free(w);
}
