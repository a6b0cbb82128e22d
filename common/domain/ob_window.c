/*
 * Campaign windows: parsing and validation of the JSON form, and the open /
 * next-open / next-close queries, computed with ICU calendars so that DST
 * and historical zone changes come out right without touching TZ.
 */
#include "ob_window.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>

#define ZONE_MAX    64 /* longest zone ID accepted, with its NUL */
#define MINUTES_DAY (24 * 60)
#define MS_MINUTE   60000LL

typedef struct {
    int16_t start; /* minutes after local midnight, 0..1439 */
    int16_t end;   /* minutes after local midnight, start+1..1440 */
} span_t;

struct ob_window {
    bool callee;                              /* evaluate in the callee's zones */
    char zone[ZONE_MAX];                      /* named zone, or the callee fallback */
    uint8_t nspans[7];                        /* intervals per day, Monday first */
    span_t spans[7][OB_WINDOW_MAX_INTERVALS]; /* ascending, not overlapping */
    size_t nholidays;                         /* entries in holidays */
    int32_t holidays[OB_WINDOW_MAX_HOLIDAYS]; /* YYYYMMDD, ascending */
};

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- Zones ---- */

/* Zone IDs are invariant ASCII, so they widen to UTF-16 byte by byte. */
static bool zone_to_uchar(const char *zone, UChar out[ZONE_MAX])
{
    size_t i = 0;
    for (; zone[i]; i++) {
        if (i + 1 >= ZONE_MAX || (unsigned char)zone[i] > 0x7e || zone[i] < 0x20)
            return false;
        out[i] = (UChar)zone[i];
    }
    out[i] = 0;
    return i > 0;
}

bool ob_window_zone_valid(const char *zone)
{
    UChar id[ZONE_MAX], canonical[ZONE_MAX];
    UBool system = 0;
    UErrorCode status = U_ZERO_ERROR;
    if (!zone || !zone_to_uchar(zone, id))
        return false;
    ucal_getCanonicalTimeZoneID(id, -1, canonical, ZONE_MAX, &system, &status);
    return U_SUCCESS(status) && system;
}

/* A Gregorian calendar in zone (valid, see ob_window_zone_valid). Nonexistent
 * wall times resolve to the instant the clock jumps past them. */
static UCalendar *calendar_open(const char *zone)
{
    UChar id[ZONE_MAX];
    UErrorCode status = U_ZERO_ERROR;
    OB_ASSERT(zone_to_uchar(zone, id));
    UCalendar *cal = ucal_open(id, -1, NULL, UCAL_GREGORIAN, &status);
    OB_ASSERT(U_SUCCESS(status) && cal);
    ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
    return cal;
}

/* The calendars for the zones a query applies: the window's own zone, or
 * each distinct known callee zone, or the fallback zone. */
typedef struct {
    UCalendar **cals; /* one per zone */
    size_t n;         /* entries in cals */
} zone_set_t;

static void zones_open(const ob_window_t *w, const char *const *zones, size_t nzones,
                       zone_set_t *set)
{
    size_t want = w->callee && nzones > 0 ? nzones : 1;
    set->cals = ob_xcalloc(want, sizeof(*set->cals));
    set->n = 0;
    if (!w->callee || nzones == 0) {
        set->cals[set->n++] = calendar_open(w->zone);
        return;
    }
    bool fallback = false;
    for (size_t i = 0; i < nzones; i++) {
        const char *z = zones[i];
        if (!ob_window_zone_valid(z)) {
            if (fallback)
                continue;
            fallback = true;
            z = w->zone;
        }
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = zones[j] && strcmp(zones[j], z) == 0;
        if (!seen)
            set->cals[set->n++] = calendar_open(z);
    }
}

static void zones_close(zone_set_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        ucal_close(set->cals[i]);
    free(set->cals);
    set->cals = NULL;
    set->n = 0;
}

/* ---- Local time ---- */

typedef struct {
    int year, month, day; /* local date; month 0-based as ICU has it */
    int weekday;          /* 0 = Monday .. 6 = Sunday */
    int64_t ms_of_day;    /* local wall-clock ms since midnight */
} local_t;

static int get_field(UCalendar *cal, UCalendarDateFields field)
{
    UErrorCode status = U_ZERO_ERROR;
    int v = ucal_get(cal, field, &status);
    OB_ASSERT(U_SUCCESS(status));
    return v;
}

/* Moves cal to t and reads its local clock. */
static local_t local_at(UCalendar *cal, int64_t t)
{
    UErrorCode status = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)t, &status);
    OB_ASSERT(U_SUCCESS(status));
    local_t l;
    l.year = get_field(cal, UCAL_EXTENDED_YEAR);
    l.month = get_field(cal, UCAL_MONTH);
    l.day = get_field(cal, UCAL_DATE);
    l.weekday = (get_field(cal, UCAL_DAY_OF_WEEK) - UCAL_MONDAY + 7) % 7;
    l.ms_of_day = get_field(cal, UCAL_MILLISECONDS_IN_DAY);
    return l;
}

/* The instant the local clock reads minute (0..1440) of the given date: the
 * first or last such instant when the clock passes it twice, the instant it
 * jumps past it when it skips it. */
static int64_t wall_instant(UCalendar *cal, const local_t *date, int minute,
                            UCalendarWallTimeOption repeated)
{
    UErrorCode status = U_ZERO_ERROR;
    ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, repeated);
    ucal_clear(cal);
    if (minute == MINUTES_DAY) /* lenient: the day after, even across a month */
        ucal_setDateTime(cal, date->year, date->month, date->day + 1, 0, 0, 0, &status);
    else
        ucal_setDateTime(cal, date->year, date->month, date->day, minute / 60, minute % 60, 0,
                         &status);
    UDate ms = ucal_getMillis(cal, &status);
    OB_ASSERT(U_SUCCESS(status));
    return (int64_t)ms;
}

static int compare_date(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static bool open_local(const ob_window_t *w, const local_t *l)
{
    int32_t ymd = l->year * 10000 + (l->month + 1) * 100 + l->day;
    if (bsearch(&ymd, w->holidays, w->nholidays, sizeof(ymd), compare_date))
        return false;
    for (unsigned i = 0; i < w->nspans[l->weekday]; i++) {
        const span_t *s = &w->spans[l->weekday][i];
        if (l->ms_of_day >= s->start * MS_MINUTE && l->ms_of_day < s->end * MS_MINUTE)
            return true;
    }
    return false;
}

/*
 * The next instant after t at which the window's state in this zone may
 * change. Between zone transitions the local clock runs continuously, so the
 * state can only change where it reaches the first interval boundary (or
 * midnight) after its reading at t, or at the next transition. The boundary
 * is taken at both readings of a repeated wall time, as t may lie between
 * them. Every real change is at or after the result; the result may be no
 * change at all, which costs the caller one more step.
 */
static int64_t next_change(const ob_window_t *w, UCalendar *cal, int64_t t, const local_t *l)
{
    int64_t best = INT64_MAX;
    UDate transition;
    UErrorCode status = U_ZERO_ERROR;
    if (ucal_getTimeZoneTransitionDate(cal, UCAL_TZ_TRANSITION_NEXT, &transition, &status) &&
        U_SUCCESS(status) && (int64_t)transition > t)
        best = (int64_t)transition;

    int boundary = MINUTES_DAY;
    for (unsigned i = 0; i < w->nspans[l->weekday]; i++) {
        const span_t *s = &w->spans[l->weekday][i];
        if (s->start * MS_MINUTE > l->ms_of_day && s->start < boundary)
            boundary = s->start;
        if (s->end * MS_MINUTE > l->ms_of_day && s->end < boundary)
            boundary = s->end;
    }
    int64_t first = wall_instant(cal, l, boundary, UCAL_WALLTIME_FIRST);
    int64_t last = wall_instant(cal, l, boundary, UCAL_WALLTIME_LAST);
    if (first > t && first < best)
        best = first;
    if (last > t && last < best)
        best = last;
    OB_ASSERT(best != INT64_MAX);
    return best;
}

/* The earliest instant in [t, limit] at which this zone's state is `open`,
 * or -1. */
static int64_t zone_next(const ob_window_t *w, UCalendar *cal, int64_t t, int64_t limit, bool open)
{
    while (t <= limit) {
        local_t l = local_at(cal, t);
        if (open_local(w, &l) == open)
            return t;
        t = next_change(w, cal, t, &l);
    }
    return -1;
}

static int64_t horizon(int64_t t)
{
    return t > INT64_MAX - OB_WINDOW_HORIZON_MS ? INT64_MAX : t + OB_WINDOW_HORIZON_MS;
}

bool ob_window_uses_callee_zone(const ob_window_t *w)
{
    return w && w->callee;
}

bool ob_window_open_at(const ob_window_t *w, const char *const *zones, size_t nzones, int64_t t_ms)
{
    if (!w)
        return true;
    zone_set_t set;
    zones_open(w, zones, nzones, &set);
    bool open = true;
    for (size_t i = 0; i < set.n && open; i++) {
        local_t l = local_at(set.cals[i], t_ms);
        open = open_local(w, &l);
    }
    zones_close(&set);
    return open;
}

/* Leapfrogs: an instant at which one zone is closed cannot be open in all,
 * so move to that zone's next opening and check the others again there. */
int64_t ob_window_next_open(const ob_window_t *w, const char *const *zones, size_t nzones,
                            int64_t t_ms)
{
    if (!w)
        return t_ms;
    zone_set_t set;
    zones_open(w, zones, nzones, &set);
    int64_t limit = horizon(t_ms), at = t_ms;
    bool moved = true;
    while (moved && at >= 0) {
        moved = false;
        for (size_t i = 0; i < set.n && at >= 0; i++) {
            int64_t next = zone_next(w, set.cals[i], at, limit, true);
            moved |= next > at;
            at = next;
        }
    }
    zones_close(&set);
    return at;
}

int64_t ob_window_next_close(const ob_window_t *w, const char *const *zones, size_t nzones,
                             int64_t t_ms)
{
    if (!w)
        return -1;
    zone_set_t set;
    zones_open(w, zones, nzones, &set);
    int64_t limit = horizon(t_ms), at = -1;
    for (size_t i = 0; i < set.n; i++) {
        int64_t next = zone_next(w, set.cals[i], t_ms, limit, false);
        if (next >= 0) {
            at = next;
            limit = next; /* the other zones matter only if they close sooner */
        }
    }
    zones_close(&set);
    return at;
}

/* ---- Parsing ---- */

/* "HH:MM", 00:00..24:00, into minutes after midnight. */
static bool parse_hhmm(const char *s, int *minutes)
{
    if (strlen(s) != 5 || s[2] != ':' || !isdigit((unsigned char)s[0]) ||
        !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[3]) ||
        !isdigit((unsigned char)s[4]))
        return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return false;
    *minutes = h * 60 + m;
    return true;
}

/* "YYYY-MM-DD", a real Gregorian date, into YYYYMMDD. */
static bool parse_date(const char *s, int32_t *ymd)
{
    static const int days_in[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in[m - 1] || (m == 2 && d == 29 && !leap))
        return false;
    *ymd = y * 10000 + m * 100 + d;
    return true;
}

static ob_rc_t parse_zone(const cJSON *item, const char *field, char out[ZONE_MAX], bool *callee,
                          ob_err_t *err)
{
    if (!cJSON_IsString(item)) {
        ob_err_set(err, "window.%s: must be a string, an IANA time zone such as \"Europe/London\"",
                   field);
        return OB_EINVAL;
    }
    const char *zone = item->valuestring;
    if (callee && strcmp(zone, "callee") == 0) {
        *callee = true;
        return OB_OK;
    }
    if (!ob_window_zone_valid(zone)) {
        ob_err_set(err, "window.%s: \"%.64s\" is not an IANA time zone%s", field, zone,
                   callee ? " (or \"callee\")" : "");
        return OB_EINVAL;
    }
    snprintf(out, ZONE_MAX, "%s", zone);
    return OB_OK;
}

typedef struct {
    int start, end;      /* minutes after midnight */
    int index;           /* position in the client's list */
    const char *text[2]; /* start and end as the client wrote them */
} given_span_t;

static int compare_given(const void *a, const void *b)
{
    const given_span_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static ob_rc_t parse_day(const cJSON *list, int day, ob_window_t *w, ob_err_t *err)
{
    const char *name = day_names[day];
    if (!cJSON_IsArray(list)) {
        ob_err_set(err, "window.hours.%s: must be an array of [\"HH:MM\", \"HH:MM\"] intervals",
                   name);
        return OB_EINVAL;
    }
    int n = cJSON_GetArraySize(list);
    if (n > OB_WINDOW_MAX_INTERVALS) {
        ob_err_set(err, "window.hours.%s: %d intervals, at most %d are allowed", name, n,
                   OB_WINDOW_MAX_INTERVALS);
        return OB_EINVAL;
    }
    given_span_t given[OB_WINDOW_MAX_INTERVALS];
    int i = 0;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, list)
    {
        const cJSON *start = cJSON_GetArrayItem(pair, 0), *end = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(start) ||
            !cJSON_IsString(end)) {
            ob_err_set(err, "window.hours.%s[%d]: must be a pair [\"HH:MM\", \"HH:MM\"]", name, i);
            return OB_EINVAL;
        }
        given[i].index = i;
        given[i].text[0] = start->valuestring;
        given[i].text[1] = end->valuestring;
        if (!parse_hhmm(start->valuestring, &given[i].start)) {
            ob_err_set(err,
                       "window.hours.%s[%d]: start \"%.16s\" is not a time from 00:00 to 24:00",
                       name, i, start->valuestring);
            return OB_EINVAL;
        }
        if (!parse_hhmm(end->valuestring, &given[i].end)) {
            ob_err_set(err, "window.hours.%s[%d]: end \"%.16s\" is not a time from 00:00 to 24:00",
                       name, i, end->valuestring);
            return OB_EINVAL;
        }
        if (given[i].end <= given[i].start) {
            ob_err_set(err, "window.hours.%s[%d]: end %s is not after start %s", name, i,
                       end->valuestring, start->valuestring);
            return OB_EINVAL;
        }
        i++;
    }
    qsort(given, (size_t)n, sizeof(given[0]), compare_given);
    for (i = 0; i < n; i++) {
        if (i > 0 && given[i].start < given[i - 1].end) {
            const given_span_t *a = &given[i - 1], *b = &given[i];
            const given_span_t *later = a->index > b->index ? a : b, *other = later == a ? b : a;
            ob_err_set(err, "window.hours.%s[%d]: %s-%s overlaps window.hours.%s[%d] %s-%s", name,
                       later->index, later->text[0], later->text[1], name, other->index,
                       other->text[0], other->text[1]);
            return OB_EINVAL;
        }
        w->spans[day][i] = (span_t){(int16_t)given[i].start, (int16_t)given[i].end};
    }
    w->nspans[day] = (uint8_t)n;
    return OB_OK;
}

static ob_rc_t parse_hours(const cJSON *hours, ob_window_t *w, ob_err_t *err)
{
    if (!cJSON_IsObject(hours)) {
        ob_err_set(err, "window.hours: must be an object of days (\"mon\" .. \"sun\")");
        return OB_EINVAL;
    }
    bool seen[7] = {false};
    bool any = false;
    const cJSON *list;
    cJSON_ArrayForEach(list, hours)
    {
        int day = 0;
        while (day < 7 && strcmp(list->string, day_names[day]) != 0)
            day++;
        if (day == 7) {
            ob_err_set(err,
                       "window.hours.%.32s: unknown day (expected mon, tue, wed, thu, fri, sat "
                       "or sun)",
                       list->string);
            return OB_EINVAL;
        }
        if (seen[day]) {
            ob_err_set(err, "window.hours.%s: given twice", day_names[day]);
            return OB_EINVAL;
        }
        seen[day] = true;
        ob_rc_t rc = parse_day(list, day, w, err);
        if (rc != OB_OK)
            return rc;
        any |= w->nspans[day] > 0;
    }
    if (!any) {
        ob_err_set(err, "window.hours: no day has any hours, so the window would never open");
        return OB_EINVAL;
    }
    return OB_OK;
}

static ob_rc_t parse_holidays(const cJSON *holidays, ob_window_t *w, ob_err_t *err)
{
    if (!cJSON_IsArray(holidays)) {
        ob_err_set(err, "window.holidays: must be an array of dates \"YYYY-MM-DD\"");
        return OB_EINVAL;
    }
    int n = cJSON_GetArraySize(holidays);
    if (n > OB_WINDOW_MAX_HOLIDAYS) {
        ob_err_set(err, "window.holidays: %d dates, at most %d are allowed", n,
                   OB_WINDOW_MAX_HOLIDAYS);
        return OB_EINVAL;
    }
    int i = 0;
    const cJSON *date;
    cJSON_ArrayForEach(date, holidays)
    {
        if (!cJSON_IsString(date)) {
            ob_err_set(err, "window.holidays[%d]: must be a date string \"YYYY-MM-DD\"", i);
            return OB_EINVAL;
        }
        if (!parse_date(date->valuestring, &w->holidays[i])) {
            ob_err_set(err, "window.holidays[%d]: \"%.32s\" is not a date YYYY-MM-DD", i,
                       date->valuestring);
            return OB_EINVAL;
        }
        i++;
    }
    w->nholidays = (size_t)n;
    qsort(w->holidays, w->nholidays, sizeof(w->holidays[0]), compare_date);
    return OB_OK;
}

ob_rc_t ob_window_from_cjson(const cJSON *item, ob_window_t **out, ob_err_t *err)
{
    static const char *const fields[] = {"time_zone", "fallback_time_zone", "hours", "holidays"};
    const cJSON *found[4] = {NULL};
    ob_window_t *w = NULL;
    ob_rc_t rc = OB_EINVAL;
    *out = NULL;
    if (!item || cJSON_IsNull(item))
        return OB_OK;
    if (!cJSON_IsObject(item)) {
        ob_err_set(err, "window: must be an object with time_zone and hours");
        goto out;
    }
    const cJSON *member;
    cJSON_ArrayForEach(member, item)
    {
        size_t f = 0;
        while (f < OB_COUNTOF(fields) && strcmp(member->string, fields[f]) != 0)
            f++;
        if (f == OB_COUNTOF(fields)) {
            ob_err_set(err,
                       "window.%.32s: unknown field (expected time_zone, fallback_time_zone, "
                       "hours or holidays)",
                       member->string);
            goto out;
        }
        if (found[f]) {
            ob_err_set(err, "window.%s: given twice", fields[f]);
            goto out;
        }
        found[f] = member;
    }

    w = ob_xcalloc(1, sizeof(*w));
    if (!found[0]) {
        ob_err_set(err, "window.time_zone: required, an IANA time zone such as "
                        "\"Europe/London\" or \"callee\"");
        goto out;
    }
    if (parse_zone(found[0], "time_zone", w->zone, &w->callee, err) != OB_OK)
        goto out;
    if (found[1] && !w->callee) {
        ob_err_set(err, "window.fallback_time_zone: applies only with time_zone \"callee\"");
        goto out;
    }
    if (w->callee)
        snprintf(w->zone, sizeof(w->zone), "UTC");
    if (found[1] && parse_zone(found[1], "fallback_time_zone", w->zone, NULL, err) != OB_OK)
        goto out;
    if (found[2]) {
        if (parse_hours(found[2], w, err) != OB_OK)
            goto out;
    } else {
        for (int day = 0; day < 7; day++) {
            w->spans[day][0] = (span_t){0, MINUTES_DAY};
            w->nspans[day] = 1;
        }
    }
    if (found[3] && parse_holidays(found[3], w, err) != OB_OK)
        goto out;
    *out = w;
    w = NULL;
    rc = OB_OK;
out:
    ob_window_free(w);
    return rc;
}

ob_rc_t ob_window_parse(const char *json, ob_window_t **out, ob_err_t *err)
{
    *out = NULL;
    if (!json || json[strspn(json, " \t\r\n")] == '\0')
        return OB_OK;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(json, &end, 1);
    if (!doc) {
        ob_err_set(err, "window: not valid JSON (at byte %td)", end ? end - json : (ptrdiff_t)0);
        return OB_EINVAL;
    }
    ob_rc_t rc = ob_window_from_cjson(doc, out, err);
    cJSON_Delete(doc);
    return rc;
}

void ob_window_free(ob_window_t *w)
{
    free(w);
}
