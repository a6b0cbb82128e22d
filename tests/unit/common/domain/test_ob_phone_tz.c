/* Table-driven tests of the phone number to time zone lookup (common/domain/ob_phone_tz.c). */
#include "ob_phone_tz.h"
#include "ob_window.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *number;   /* what the lookup is given */
    size_t count;         /* expected number of zones */
    const char *zones[4]; /* expected first zones, in order (up to count) */
} tz_case_t;

static tz_case_t cases[] = {
    /* Longest prefix wins: 1212 over 1. */
    {"+12125550100", 1, {"America/New_York"}},
    {"+12502000000", 1, {"America/Vancouver"}},
    /* 12082 is Boise and Los Angeles; 1208201 (longer) is Denver alone. */
    {"+12082000100", 2, {"America/Boise", "America/Los_Angeles"}},
    {"+12082010000", 1, {"America/Denver"}},
    /* +44 20 is London by 442; a mobile number only by 4477, three zones. */
    {"+442079460958", 1, {"Europe/London"}},
    {"+447700900123", 3, {"Europe/Guernsey", "Europe/Isle_of_Man", "Europe/London"}},
    {"+97613623456", 2, {"Asia/Choibalsan", "Asia/Ulaanbaatar"}},
    {"+919876543210", 1, {"Asia/Calcutta"}},
    {"+61298765432", 1, {"Australia/Sydney"}},
    {"+6855550100", 1, {"Pacific/Apia"}},
    {"+4930901820", 1, {"Europe/Berlin"}},
    /* Known only by the country code: every zone of +1, Adak first. */
    {"+15555550100", 42, {"America/Adak", "America/Anchorage", "America/Anguilla"}},
    {"+18005550100", 42, {"America/Adak", "America/Anchorage", "America/Anguilla"}},
    /* A prefix shorter than the longest entry still matches. */
    {"+1", 42, {"America/Adak"}},
    /* Nothing known, or not an E.164 number. */
    {"+80012345678", 0, {NULL}},
    {"+99912345", 0, {NULL}},
    {"12125550100", 0, {NULL}},
    {"+1212555010a", 0, {NULL}},
    {"+1 212 555 0100", 0, {NULL}},
    {"+1234567890123456", 0, {NULL}},
    {"+", 0, {NULL}},
    {"", 0, {NULL}},
    {NULL, 0, {NULL}},
};

ParameterizedTestParameters(phone_tz, lookup)
{
    return cr_make_param_array(tz_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(tz_case_t *c, phone_tz, lookup)
{
    const char *zones[OB_PHONE_TZ_MAX] = {NULL};
    const char *number = c->number ? c->number : "(null)";
    size_t n = ob_phone_tz_lookup(c->number, zones, OB_PHONE_TZ_MAX);
    cr_assert_eq(n, c->count, "%s: %zu zones, expected %zu", number, n, c->count);
    for (size_t i = 0; i < n && i < 4 && c->zones[i]; i++)
        cr_expect_str_eq(zones[i], c->zones[i], "%s: zone %zu", number, i);
    if (n < OB_PHONE_TZ_MAX)
        cr_expect_null(zones[n], "%s: wrote past its count", number);
}

Test(phone_tz, a_short_buffer_gets_the_first_zones_and_the_full_count)
{
    const char *zones[3] = {NULL, NULL, "untouched"};
    cr_assert_eq(ob_phone_tz_lookup("+12082000100", zones, 1), 2);
    cr_expect_str_eq(zones[0], "America/Boise");
    cr_expect_null(zones[1]);
    cr_expect_eq(ob_phone_tz_lookup("+15555550100", NULL, 0), 42);
    cr_expect_str_eq(zones[2], "untouched");
}

Test(phone_tz, the_table_is_sorted_and_every_prefix_finds_its_own_zones)
{
    cr_assert_gt(ob_phone_tz_prefixes_len, 3000, "%zu prefixes", ob_phone_tz_prefixes_len);
    cr_expect_str_eq(ob_phone_tz_version, "8.12.57");
    for (size_t i = 0; i < ob_phone_tz_prefixes_len; i++) {
        const ob_phone_tz_prefix_t *p = &ob_phone_tz_prefixes[i];
        if (i > 0)
            cr_assert_lt(strcmp(ob_phone_tz_prefixes[i - 1].prefix, p->prefix), 0, "%s after %s",
                         p->prefix, ob_phone_tz_prefixes[i - 1].prefix);
        cr_assert_leq(strlen(p->prefix), ob_phone_tz_longest_prefix, "%s", p->prefix);
        char number[32];
        snprintf(number, sizeof(number), "+%s", p->prefix);
        const char *zones[OB_PHONE_TZ_MAX];
        const ob_phone_tz_list_t *list = &ob_phone_tz_lists[p->list];
        cr_assert_eq(ob_phone_tz_lookup(number, zones, OB_PHONE_TZ_MAX), list->len, "%s", number);
        for (size_t z = 0; z < list->len; z++)
            cr_assert_str_eq(zones[z], ob_phone_tz_names[ob_phone_tz_list_items[list->start + z]],
                             "%s", number);
    }
}

/* A zone ICU does not know would silently be evaluated as GMT (Etc/Unknown). */
Test(phone_tz, every_zone_in_the_table_is_known_to_icu)
{
    cr_assert_gt(ob_phone_tz_names_len, 200);
    for (size_t i = 0; i < ob_phone_tz_names_len; i++)
        cr_expect(ob_window_zone_valid(ob_phone_tz_names[i]), "%s is not an ICU system zone",
                  ob_phone_tz_names[i]);
}
