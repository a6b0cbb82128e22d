/*
 * Times as clients write them. The native API takes unix seconds, RFC 3339,
 * "now" and "+N unit"; the Plum routes also take the English expressions
 * Plum DEV documents for scheduled_time and expiration_time ("now",
 * "oct 14th, 2011 11:05PM EST", "+3 days"), which PHP's strtotime() reads:
 * this is the part of strtotime's grammar such clients use (docs/plum.md
 * lists it), evaluated as strtotime evaluates it, in UTC unless a zone is
 * written.
 */
#include "ingest_time.h"
#include "ob_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TIME_S   32503680000.0 /* 3000-01-01: a later time is a typo */
#define MAX_RELATIVE 1000000       /* largest N of "+N unit" */

/* Relative units, in the order of when_t.rel. */
enum { U_YEAR, U_MONTH, U_DAY, U_HOUR, U_MINUTE, U_SECOND, U_COUNT };

static const struct {
    const char *name; /* as written (singular; a trailing "s" is allowed) */
    int unit;         /* U_* */
    int times;        /* how many of the unit */
} units[] = {
    {"sec", U_SECOND, 1},  {"second", U_SECOND, 1}, {"min", U_MINUTE, 1}, {"minute", U_MINUTE, 1},
    {"hour", U_HOUR, 1},   {"day", U_DAY, 1},       {"week", U_DAY, 7},   {"fortnight", U_DAY, 14},
    {"month", U_MONTH, 1}, {"year", U_YEAR, 1},
};

static const char *const weekdays[] = {"sunday",   "monday", "tuesday", "wednesday",
                                       "thursday", "friday", "saturday"};
static const char *const months[] = {"january",   "february", "march",    "april",
                                     "may",       "june",     "july",     "august",
                                     "september", "october",  "november", "december"};

/* Zone abbreviations strtotime knows that North American and European
 * clients write, as seconds east of UTC. */
static const struct {
    const char *name;
    int offset_s;
} zones[] = {
    {"utc", 0},          {"gmt", 0},          {"z", 0},           {"est", -5 * 3600},
    {"edt", -4 * 3600},  {"cst", -6 * 3600},  {"cdt", -5 * 3600}, {"mst", -7 * 3600},
    {"mdt", -6 * 3600},  {"pst", -8 * 3600},  {"pdt", -7 * 3600}, {"akst", -9 * 3600},
    {"akdt", -8 * 3600}, {"hst", -10 * 3600}, {"bst", 3600},      {"cet", 3600},
    {"cest", 2 * 3600},  {"eet", 2 * 3600},   {"eest", 3 * 3600},
};

/* What an expression says, before it is applied to the present. */
typedef struct {
    bool date;            /* a calendar date was written */
    int year, mon, day;   /* it (mon 1-12); year 0: this year */
    bool clock;           /* a time of day was written */
    int hour, min, sec;   /* it */
    bool midnight;        /* a day word: the time of day is 00:00 unless written */
    int64_t rel[U_COUNT]; /* relative amounts */
    int wday;             /* a weekday (0 Sunday), or -1 */
    int wday_dir;         /* 0 this or plain (today counts), 1 next, -1 last */
    bool zone;            /* a zone was written */
    int zone_s;           /* its offset east of UTC */
    bool at;              /* "@<unix seconds>" */
    int64_t at_s;         /* those seconds */
} when_t;

/* Lower-case letters (and dots, for "a.m.") of s into word; returns their
 * count (0 when s does not start with a letter). */
static size_t read_word(const char *s, char *word, size_t cap)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]) || (n > 0 && s[n] == '.')) {
        if (n + 1 < cap)
            word[n] = (char)tolower((unsigned char)s[n]);
        n++;
    }
    word[n < cap ? n : cap - 1] = '\0';
    return n;
}

static size_t read_digits(const char *s, long *value)
{
    size_t n = 0;
    long v = 0;
    while (isdigit((unsigned char)s[n]) && n < 10)
        v = v * 10 + (s[n++] - '0');
    if (isdigit((unsigned char)s[n]))
        return 0; /* too long to be anything here */
    *value = v;
    return n;
}

static const char *skip_blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    return s;
}

/* The index of word in names (full, or its first three letters, or
 * "sept"/"tues"/"thur"/"thurs"), or -1. */
static int name_index(const char *word, const char *const *names, int n)
{
    size_t len = strlen(word);
    for (int i = 0; i < n; i++) {
        if (strcmp(word, names[i]) == 0 ||
            (len >= 3 && strncmp(word, names[i], len) == 0 &&
             (len == 3 || strcmp(word, "sept") == 0 || strcmp(word, "tues") == 0 ||
              strcmp(word, "thur") == 0 || strcmp(word, "thurs") == 0)))
            return i;
    }
    return -1;
}

/* A unit word ("day", "days", "secs"): its index in units[], or -1. */
static int unit_index(const char *word)
{
    char w[24];
    snprintf(w, sizeof(w), "%s", word);
    size_t len = strlen(w);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < OB_COUNTOF(units); i++)
            if (strcmp(w, units[i].name) == 0)
                return (int)i;
        if (len < 2 || w[len - 1] != 's')
            return -1;
        w[len - 1] = '\0'; /* plural */
    }
    return -1;
}

static bool add_rel(when_t *w, int unit, int64_t n)
{
    if (n < -MAX_RELATIVE || n > MAX_RELATIVE)
        return false;
    w->rel[units[unit].unit] += n * units[unit].times;
    return true;
}

/* "am"/"pm" after an hour: the 24-hour hour, or -1. */
static int meridian(const char *word, long hour)
{
    bool am = strcmp(word, "am") == 0 || strcmp(word, "a.m.") == 0;
    bool pm = strcmp(word, "pm") == 0 || strcmp(word, "p.m.") == 0;
    if ((!am && !pm) || hour < 1 || hour > 12)
        return -1;
    return (int)(hour % 12 + (pm ? 12 : 0));
}

/* A time of day at s ("9am", "9 pm", "11:05PM", "14:00", "14:00:30"), or 0
 * characters when there is none. */
static size_t read_clock(const char *s, when_t *w)
{
    long h = 0, m = 0, sec = 0;
    size_t n = read_digits(s, &h), k;
    if (n == 0 || n > 2)
        return 0;
    bool colon = s[n] == ':';
    if (colon) {
        if ((k = read_digits(s + n + 1, &m)) != 2)
            return 0;
        n += 1 + k;
        if (s[n] == ':') {
            if ((k = read_digits(s + n + 1, &sec)) != 2)
                return 0;
            n += 1 + k;
        }
    }
    const char *after = s + n;
    while (*after == ' ')
        after++;
    char word[8];
    size_t wl = read_word(after, word, sizeof(word));
    int hour = wl ? meridian(word, h) : -1;
    if (hour >= 0)
        n = (size_t)(after - s) + wl;
    else if (!colon || h > 23)
        return 0; /* a bare number is not a time */
    else
        hour = (int)h;
    if (m > 59 || sec > 59 || w->clock)
        return 0;
    w->clock = true;
    w->hour = hour;
    w->min = (int)m;
    w->sec = (int)sec;
    return n;
}

/* A zone offset at s after a sign ("+0100", "-05:00", "+01"): seconds, or
 * false. */
static size_t read_offset(const char *s, int *offset_s)
{
    int sign = s[0] == '-' ? -1 : 1;
    long h = 0, m = 0;
    size_t n = read_digits(s + 1, &h);
    if (n == 4) {
        m = h % 100;
        h /= 100;
    } else if (n == 2 && s[3] == ':') {
        if (read_digits(s + 4, &m) != 2)
            return 0;
        n = 5;
    } else if (n != 2 && n != 1) {
        return 0;
    }
    if (h > 14 || m > 59)
        return 0;
    *offset_s = sign * (int)(h * 3600 + m * 60);
    return 1 + n;
}

/* Day (with an optional ordinal suffix) at s, after or before a month. */
static size_t read_day(const char *s, long *day)
{
    size_t n = read_digits(s, day);
    if (n == 0 || n > 2 || *day < 1 || *day > 31)
        return 0;
    char word[8];
    size_t wl = read_word(s + n, word, sizeof(word));
    if (wl && (strcmp(word, "st") == 0 || strcmp(word, "nd") == 0 || strcmp(word, "rd") == 0 ||
               strcmp(word, "th") == 0))
        n += wl;
    else if (wl)
        return 0;
    return n;
}

static bool set_date(when_t *w, long year, long mon, long day)
{
    if (w->date || mon < 1 || mon > 12 || day < 1 || day > 31 || year < 0 || year > 2999)
        return false;
    w->date = true;
    w->year = (int)year;
    w->mon = (int)mon;
    w->day = (int)day;
    return true;
}

/* "oct 14th, 2011", "october 14", "oct 2011" is not a date here. The month
 * name was read; s is what follows it. */
static size_t read_month_date(const char *s, int mon, when_t *w)
{
    const char *p = skip_blank(s);
    long day = 0, year = 0;
    size_t n = read_day(p, &day);
    if (n == 0)
        return 0;
    p += n;
    const char *q = skip_blank(p);
    size_t yn = read_digits(q, &year);
    if (yn == 4 && q[4] != ':') {
        p = q + 4;
    } else {
        year = 0;
    }
    return set_date(w, year, mon + 1, day) ? (size_t)(p - s) : 0;
}

/* A word at s (already lower-cased into word, wl characters long). */
static size_t read_named(const char *s, const char *word, size_t wl, when_t *w)
{
    int i;
    if (strcmp(word, "now") == 0 || strcmp(word, "at") == 0 || strcmp(word, "on") == 0)
        return wl;
    if (strcmp(word, "today") == 0 || strcmp(word, "midnight") == 0) {
        w->midnight = true;
        return wl;
    }
    if (strcmp(word, "noon") == 0) {
        if (w->clock)
            return 0;
        w->clock = true;
        w->hour = 12;
        w->min = w->sec = 0;
        return wl;
    }
    if (strcmp(word, "tomorrow") == 0 || strcmp(word, "yesterday") == 0) {
        w->midnight = true;
        w->rel[U_DAY] += word[0] == 't' ? 1 : -1;
        return wl;
    }
    if (strcmp(word, "ago") == 0) {
        /* strtotime: "ago" turns every relative amount before it around. */
        for (int u = 0; u < U_COUNT; u++)
            w->rel[u] = -w->rel[u];
        return wl;
    }
    if (strcmp(word, "next") == 0 || strcmp(word, "last") == 0 || strcmp(word, "this") == 0) {
        int dir = word[0] == 'n' ? 1 : word[0] == 'l' ? -1 : 0;
        const char *p = skip_blank(s + wl);
        char next[24];
        size_t nl = read_word(p, next, sizeof(next));
        int u = nl ? unit_index(next) : -1;
        int d = nl ? name_index(next, weekdays, 7) : -1;
        if (u >= 0 && add_rel(w, u, dir)) {
            return (size_t)(p - s) + nl;
        }
        if (d >= 0 && w->wday < 0) {
            w->wday = d;
            w->wday_dir = dir;
            w->midnight = true;
            return (size_t)(p - s) + nl;
        }
        return 0;
    }
    if ((i = name_index(word, weekdays, 7)) >= 0) {
        if (w->wday >= 0)
            return 0;
        w->wday = i;
        w->wday_dir = 0;
        w->midnight = true;
        return wl;
    }
    if ((i = name_index(word, months, 12)) >= 0) {
        size_t n = read_month_date(s + wl, i, w);
        return n ? wl + n : 0;
    }
    for (size_t z = 0; z < OB_COUNTOF(zones); z++) {
        if (strcmp(word, zones[z].name) == 0 && !w->zone) {
            w->zone = true;
            w->zone_s = zones[z].offset_s;
            return wl;
        }
    }
    return 0;
}

/* A number at s: a relative amount ("3 days", "+1 week"), an ISO or US
 * date, a day before a month name ("14 october 2011"), or a time of day. */
static size_t read_number(const char *s, when_t *w)
{
    const char *p = s;
    int sign = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    long n = 0, a = 0, b = 0;
    size_t dn = read_digits(p, &n);
    if (dn == 0)
        return 0;
    const char *after = p + dn;
    char word[24];
    const char *q = after;
    while (*q == ' ')
        q++;
    size_t wl = read_word(q, word, sizeof(word));
    int u = wl ? unit_index(word) : -1;
    if (u >= 0)
        return add_rel(w, u, sign < 0 ? -n : n) ? (size_t)(q - s) + wl : 0;
    if (sign != 0) {
        /* Not a relative amount: a zone offset after a date or time. */
        int off = 0;
        size_t k = (w->clock || w->date) && !w->zone ? read_offset(s, &off) : 0;
        if (k) {
            w->zone = true;
            w->zone_s = off;
        }
        return k;
    }
    if (dn == 4 && *after == '-') {
        /* ISO 8601 date, perhaps with a time: 2011-10-14, 2011-10-14T23:05. */
        if (read_digits(after + 1, &a) != 2 || after[3] != '-' || read_digits(after + 4, &b) != 2 ||
            !set_date(w, n, a, b))
            return 0;
        size_t len = (size_t)(after + 6 - s);
        if (s[len] == 't' || s[len] == 'T') {
            size_t k = read_clock(s + len + 1, w);
            return k ? len + 1 + k : 0;
        }
        return len;
    }
    if (*after == '/') {
        /* strtotime reads n/n/yyyy as month/day/year (American). */
        size_t k = read_digits(after + 1, &a);
        if (k == 0 || k > 2)
            return 0;
        const char *end = after + 1 + k;
        long year = 0;
        if (*end == '/') {
            size_t yk = read_digits(end + 1, &year);
            if (yk != 4)
                return 0;
            end += 1 + yk;
        }
        return set_date(w, year, n, a) ? (size_t)(end - s) : 0;
    }
    size_t k = read_clock(s, w);
    if (k)
        return k;
    /* "14 october 2011", "14th oct". */
    long day = 0;
    size_t dk = read_day(s, &day);
    if (dk) {
        const char *m = skip_blank(s + dk);
        size_t ml = read_word(m, word, sizeof(word));
        int mon = ml ? name_index(word, months, 12) : -1;
        if (mon >= 0) {
            const char *y = skip_blank(m + ml);
            long year = 0;
            size_t yk = read_digits(y, &year);
            const char *end = m + ml;
            if (yk == 4 && y[4] != ':')
                end = y + 4;
            else
                year = 0;
            return set_date(w, year, mon + 1, day) ? (size_t)(end - s) : 0;
        }
    }
    return 0;
}

static int days_in_month(int year, int mon)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : days[mon - 1];
}

bool ingest_parse_natural_time(const char *s, int64_t now_ms, int64_t *unix_ms)
{
    when_t w = {.wday = -1};
    const char *p = skip_blank(s);
    if (!*p)
        return false;
    if (*p == '@') {
        long v = 0;
        size_t n = read_digits(p + 1, &v);
        if (n == 0 || p[1 + n])
            return false;
        *unix_ms = (int64_t)v * 1000;
        return true;
    }
    while (*p) {
        char word[24];
        size_t n = read_word(p, word, sizeof(word));
        n = n ? read_named(p, word, n, &w) : read_number(p, &w);
        if (n == 0)
            return false;
        p = skip_blank(p + n);
    }

    /* strtotime's order: the date and the time of day replace the present's,
     * a weekday moves to that day, then the relative amounts are added. */
    time_t base = (time_t)(now_ms / 1000) + w.zone_s;
    struct tm tm;
    if (!gmtime_r(&base, &tm))
        return false;
    if (w.date) {
        if (w.year)
            tm.tm_year = w.year - 1900;
        if (w.day > days_in_month(tm.tm_year + 1900, w.mon))
            return false; /* "feb 30" is a typo, not March */
        tm.tm_mon = w.mon - 1;
        tm.tm_mday = w.day;
    }
    if (w.date || w.midnight)
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (w.clock) {
        tm.tm_hour = w.hour;
        tm.tm_min = w.min;
        tm.tm_sec = w.sec;
    }
    if (w.wday >= 0) {
        int delta = (w.wday - tm.tm_wday + 7) % 7;
        if (w.wday_dir > 0 && delta == 0)
            delta = 7;
        if (w.wday_dir < 0)
            delta = delta == 0 ? -7 : delta - 7;
        tm.tm_mday += delta;
    }
    tm.tm_year += (int)w.rel[U_YEAR];
    tm.tm_mon += (int)w.rel[U_MONTH];
    /* Days, hours, minutes and seconds are added as time, so that the huge
     * amounts a typo makes cannot overflow struct tm's ints. */
    int64_t extra_s =
        w.rel[U_DAY] * 86400 + w.rel[U_HOUR] * 3600 + w.rel[U_MINUTE] * 60 + w.rel[U_SECOND];
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false; /* out of time_t's range, or 1969: refused below anyway */
    int64_t secs = (int64_t)t + extra_s - w.zone_s;
    if (secs < 0 || secs >= (int64_t)MAX_TIME_S)
        return false;
    *unix_ms = secs * 1000;
    return true;
}

/* Plum DEV's relative times: "now", "+3 days", "+90 minutes", "+1 hour". */
static bool parse_relative(const char *s, int64_t *unix_ms)
{
    static const struct {
        const char *unit; /* singular */
        int64_t ms;       /* length */
    } rel_units[] = {{"second", 1000},
                     {"minute", 60000},
                     {"hour", 3600000},
                     {"day", 86400000},
                     {"week", 604800000}};
    long n = 0;
    char unit[16] = "";
    int used = 0;
    if (strcmp(s, "now") == 0) {
        *unix_ms = ob_now_ms();
        return true;
    }
    if (sscanf(s, "+%ld %15[a-z]%n", &n, unit, &used) != 2 || s[used] || n < 0 || n > 1000000)
        return false;
    size_t len = strlen(unit);
    if (len > 1 && unit[len - 1] == 's')
        unit[len - 1] = '\0'; /* plural */
    for (size_t i = 0; i < OB_COUNTOF(rel_units); i++) {
        if (strcmp(unit, rel_units[i].unit) == 0) {
            *unix_ms = ob_now_ms() + (int64_t)n * rel_units[i].ms;
            return true;
        }
    }
    return false;
}

bool ingest_parse_time_text(const char *s, int64_t *unix_ms)
{
    int64_t ms = -1;
    if (!parse_relative(s, &ms) && !ob_time_parse_rfc3339(s, &ms)) {
        char *end = NULL;
        double secs = strtod(s, &end);
        if (end == s || *end != '\0' || !(secs >= 0 && secs < MAX_TIME_S))
            return false;
        ms = (int64_t)(secs * 1000);
    }
    /* Every form is held to the numbers' range: the call-requests schema
     * (and so the scheduler) refuses a time before 1970, and a call accepted
     * with one would be lost. */
    if (ms < 0 || ms >= (int64_t)MAX_TIME_S * 1000)
        return false;
    *unix_ms = ms;
    return true;
}

bool ingest_parse_time(const cJSON *item, int64_t *unix_ms)
{
    if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < MAX_TIME_S) {
        *unix_ms = (int64_t)(item->valuedouble * 1000);
        return true;
    }
    return cJSON_IsString(item) && ingest_parse_time_text(item->valuestring, unix_ms);
}
