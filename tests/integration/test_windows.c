/*
 * Campaign windows with the real binaries. The scheduler runs on a test
 * clock (OB_SCHEDULER_CLOCK_START_MS, OB_SCHEDULER_CLOCK_SCALE): it starts
 * on Sunday 2027-03-14 00:30 in New York, the night the US springs forward,
 * and runs half an hour per real second, so the night passes in seconds. Every
 * release must fall inside its window: a named zone across the DST change,
 * the callee's own zone, a number whose two zones never share an open hour,
 * and a call that expires before its window opens.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* 2027-03-14T05:30:00Z: Sunday 00:30 EST in New York. */
#define CLOCK_START_MS "1805002200000"

static void set_window(const h_client_t *c, const char *window)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"campaign_window\": %s, \"capacity\": 20}", window);
    h_resp_t r = h_deployment_api(c, "PATCH", "", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
}

/* Waits for the call to complete; returns "status/result/reason". */
static char * final(const h_client_t *c, const char *call_id)
{
    return h_wait_value(c,
                        "SELECT status || '/' || result || '/' || reason FROM calls"
                        " WHERE call_id = $1 AND state = 'completed'",
                        call_id, 60000);
}

/* The attempt's release time (scheduler clock), as UTC "YYYY-MM-DDTHH:MI". */
static char *released(PGconn *pg, const char *call_id)
{
    const char *p[] = {call_id};
    return h_pg_value(pg,
                      "SELECT to_char(released_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')"
                      " FROM attempts WHERE call_id = $1 AND attempt = 1",
                      1, p);
}

/* True if the call's first release fell in [from, to) (UTC RFC 3339). */
static bool released_within(PGconn *pg, const char *call_id, const char *from, const char *to)
{
    const char *p[] = {call_id, from, to};
    char *v = h_pg_value(pg,
                         "SELECT 1 FROM attempts WHERE call_id = $1 AND attempt = 1"
                         " AND released_at >= $2::timestamptz AND released_at < $3::timestamptz",
                         3, p);
    free(v);
    return v != NULL;
}

Test(windows, releases_only_inside_the_window, .timeout = 180, .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    const char *const scheduler_env[] = {"OB_SCHEDULER_CLOCK_START_MS=" CLOCK_START_MS,
                                         "OB_SCHEDULER_CLOCK_SCALE=1800", NULL};
    h_tenant_t named, callee;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &named, 20);
    h_tenant(pg, &callee, 20);
    h_client_t n = h_client(&s, &named, pg), ca = h_client(&s, &callee, pg);
    h_start(&s, "ingest", "ingest", NULL);
    h_start(&s, "dialer", "dialer-1", dialer_env);
    cr_assert(h_wait_ready(&s.procs[0], 60000) && h_wait_ready(&s.procs[1], 60000));

    /* A window is checked like any field. */
    h_resp_t r = h_deployment_api(
        &n, "PATCH", "", "{\"campaign_window\": {\"time_zone\": \"Mars/Base\", \"hours\": {}}}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "campaign_window.time_zone"), "%s", r.body);
    h_resp_free(&r);

    /* New York, Sunday 01:30-03:00 (the clock skips 02:00-03:00 that night,
     * so it is open 06:30Z-07:00Z). */
    set_window(
        &n,
        "{\"time_zone\": \"America/New_York\", \"hours\": {\"sun\": [[\"01:30\", \"03:00\"]]}}");
    /* Each callee's Sunday 05:00-06:00: New York 09:00Z, Los Angeles 12:00Z. */
    set_window(&ca, "{\"time_zone\": \"callee\", \"hours\": {\"sun\": [[\"05:00\", \"06:00\"]]}}");

    /* Queued before the scheduler starts: it finds them at its Saturday night. */
    char *sunday[3];
    for (int i = 0; i < 3; i++)
        sunday[i] = h_queue_json(&n, "{\"phone_number\": \"+12125550100\", \"max_attempts\": 1}");
    char *new_york = h_queue_json(&ca, "{\"phone_number\": \"+12125550101\", \"max_attempts\": 1}");
    char *los_angeles =
        h_queue_json(&ca, "{\"phone_number\": \"+12135550100\", \"max_attempts\": 1}");
    /* +1 208 5xx: Boise and Los Angeles; 05:00-06:00 in both never overlaps. */
    char *two_zones = h_queue_json(&ca, "{\"phone_number\": \"+12085550100\"}");
    /* Expires Sunday 04:00 EDT, before New York's window opens at 05:00. */
    char *expiring = h_queue_json(&ca, "{\"phone_number\": \"+12125550102\","
                                       " \"expires_at\": \"2027-03-14T04:00:00-04:00\"}");

    h_start(&s, "scheduler", "scheduler", scheduler_env);
    cr_assert(h_wait_ready(&s.procs[2], 60000));

    /* Until Sunday morning the callee calls wait for their window, and the
     * summary and the call say so. */
    char summary[160], call_path[128];
    snprintf(summary, sizeof(summary), "/api/v1/deployments/%s/summary", callee.deployment_id);
    snprintf(call_path, sizeof(call_path), "/api/v1/calls/%s", los_angeles);
    char *waiting = NULL, *reason = NULL;
    for (int i = 0; i < 80; i++) {
        free(waiting);
        r = h_api(&ca, "GET", summary, NULL);
        waiting = h_json_path(r.body, "pending.waiting_for.window");
        h_resp_free(&r);
        if (waiting && strcmp(waiting, "0") != 0)
            break;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    r = h_api(&ca, "GET", call_path, NULL);
    reason = h_json_path(r.body, "waiting_for");
    cr_expect_str_eq(reason, "window", "%s", r.body);
    h_resp_free(&r);
    cr_expect(waiting && strcmp(waiting, "0") != 0, "no call was ever waiting for its window");
    /* Operators see it in the scheduler's gauges (counted every 5 s). */
    long gauge = -1;
    for (int i = 0; i < 120 && gauge < 1; i++) {
        gauge = h_metric(&s.procs[2], "outbound_calls_pending{waiting_for=\"window\"}");
        if (gauge < 1) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    cr_expect_geq(gauge, 1, "the scheduler's gauge never showed calls waiting for their window");
    free(waiting);
    free(reason);
    snprintf(summary, sizeof(summary), "/api/v1/deployments/%s/summary", named.deployment_id);
    r = h_api(&n, "GET", summary, NULL);
    cr_expect_str_eq(h_json_path(r.body, "window.definition.time_zone"), "America/New_York");
    char *open = h_json_path(r.body, "window.open");
    char *next =
        h_json_path(r.body, strcmp(open, "true") == 0 ? "window.next_close" : "window.next_open");
    cr_expect(next && strlen(next) >= 20, "%s", r.body);
    free(open);
    free(next);
    h_resp_free(&r);

    for (int i = 0; i < 3; i++) {
        char *f = final(&n, sunday[i]), *at = released(pg, sunday[i]);
        cr_expect_str_eq(f, "completed/voice/answered");
        cr_expect(released_within(pg, sunday[i], "2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z"),
                  "released at %s, outside Sunday 01:30 EST-03:00 EDT", at);
        free(f);
        free(at);
    }
    char *f = final(&n, new_york), *at = released(pg, new_york);
    cr_expect_str_eq(f, "completed/voice/answered");
    cr_expect(released_within(pg, new_york, "2027-03-14T09:00:00Z", "2027-03-14T10:00:00Z"),
              "New York callee released at %s", at);
    free(f);
    free(at);
    f = final(&n, los_angeles), at = released(pg, los_angeles);
    cr_expect_str_eq(f, "completed/voice/answered");
    cr_expect(released_within(pg, los_angeles, "2027-03-14T12:00:00Z", "2027-03-14T13:00:00Z"),
              "Los Angeles callee released at %s", at);
    free(f);
    free(at);
    f = final(&n, two_zones);
    cr_expect_str_eq(f, "uncalled/noattempt/window_closed");
    free(f);
    f = final(&n, expiring);
    cr_expect_str_eq(f, "uncalled/noattempt/window_closed");
    free(f);

    /* Those never released were never dialed. */
    const char *p[] = {two_zones, expiring};
    char *none = h_pg_value(pg, "SELECT 1 FROM attempts WHERE call_id IN ($1, $2)", 2, p);
    cr_expect_null(none, "a call whose window never opens got an attempt");
    free(none);

    cr_expect(h_stack_down(&s));
    for (int i = 0; i < 3; i++)
        free(sunday[i]);
    free(new_york);
    free(los_angeles);
    free(two_zones);
    free(expiring);
    PQfinish(pg);
}

/*
 * On the real clock: a busy call whose retry (in 2 minutes) would come after
 * today's window has closed, and which expires before the window opens
 * again, ends at once as failed/window_closed, not when the retry comes due.
 */
Test(windows, a_retry_that_cannot_come_before_expiry_ends_at_once, .timeout = 120, .fini = teardown)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    /* Open today (UTC) until the start of the minute after next. */
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    int end = utc.tm_hour * 60 + utc.tm_min + 2;
    char window[256], end_text[24];
    if (end >= 24 * 60)
        snprintf(end_text, sizeof(end_text), "24:00");
    else
        snprintf(end_text, sizeof(end_text), "%02d:%02d", end / 60, end % 60);
    snprintf(window, sizeof(window),
             "{\"time_zone\": \"UTC\", \"hours\": {\"%s\": [[\"00:00\", \"%s\"]]}}",
             days[utc.tm_wday], end_text);
    set_window(&c, window);

    char *busy =
        h_queue_json(&c, "{\"phone_number\": \"+12125550130\", \"max_attempts\": 3,"
                         " \"retry_rules\": {\"busy\": 120}, \"expires_at\": \"+5 minutes\"}");
    const char *p[] = {busy};
    char *row = NULL;
    for (int i = 0; i < 300 && !row; i++) {
        row = h_pg_value(pg,
                         "SELECT status || '/' || result || '/' || reason || '/' || attempts_made"
                         " FROM calls WHERE call_id = $1 AND state = 'completed'",
                         1, p);
        if (!row) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    cr_expect_str_eq(row, "failed/busy/window_closed/1",
                     "window %s: the call did not end within 30 s of its attempt", window);
    free(row);
    free(busy);
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}

/* Found by tests/soak: a job released just before its window closed was
 * dialed after the close when it reached a dialer late (a dialer busy,
 * restarting or rebalancing). The attempt's lease now ends when the window
 * closes, and a dialer does not start an attempt whose lease ran out. Here
 * the one dialer is stopped (SIGSTOP) while the scheduler, whose clock
 * starts at Monday 16:59:30Z, releases a call into a window that closes at
 * 17:00Z; the dialer resumes after the close and must refuse the job, and
 * the call, which expires before the window opens again, ends uncalled. */
Test(windows, a_job_that_reaches_the_dialer_after_the_close_is_not_dialed, .timeout = 120,
     .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    /* 2027-03-15T16:59:30Z, a Monday. */
    const char *const scheduler_env[] = {"OB_SCHEDULER_CLOCK_START_MS=1805129970000", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    h_proc_t *dialer = h_start(&s, "dialer", "dialer-1", dialer_env);
    h_start(&s, "scheduler", "scheduler", scheduler_env);
    for (int i = 0; i < s.nprocs; i++)
        cr_assert(h_wait_ready(&s.procs[i], 60000), "%s not ready", s.procs[i].name);
    set_window(&c, "{\"time_zone\": \"UTC\", \"hours\": {\"mon\": [[\"09:00\", \"17:00\"]]}}");

    /* Once the dialer has its dial-jobs partitions, stopped: for 5 s the
     * scheduler still counts on a silent dialer. */
    char *live = NULL;
    for (int i = 0; i < 300 && !live; i++) {
        live = h_pg_value(pg, "SELECT 1 FROM dialers WHERE cardinality(partitions) > 0", 0, NULL);
        if (!live)
            h_sleep_ms(100);
    }
    cr_assert(live, "the dialer never got its dial-jobs partitions");
    free(live);
    cr_assert_eq(kill(dialer->pid, SIGSTOP), 0);
    char *id = h_queue_json(&c, "{\"phone_number\": \"+12125550100\","
                                " \"expires_at\": \"2027-03-15T17:30:00Z\"}");
    const char *p[] = {id};
    char *before = NULL; /* ms from the release (scheduler clock) to the close */
    for (int i = 0; i < 50 && !before; i++) {
        before = h_pg_value(pg,
                            "SELECT (extract(epoch FROM '2027-03-15T17:00:00Z'::timestamptz"
                            " - released_at) * 1000)::bigint FROM attempts WHERE call_id = $1",
                            1, p);
        if (!before)
            h_sleep_ms(100);
    }
    cr_assert(before, "the call was not released while the dialer counted as live");
    cr_assert_gt(atol(before), 0, "released %s ms after the close", before);
    h_sleep_ms((int)atol(before) + 1500);
    cr_assert_eq(kill(dialer->pid, SIGCONT), 0);

    char *row = final(&c, id);
    cr_expect_str_eq(row, "uncalled/noattempt/window_closed");
    char *dialed = h_pg_value(pg,
                              "SELECT count(*) FROM attempts WHERE call_id = $1"
                              " AND dialing_at IS NOT NULL",
                              1, p);
    cr_expect_str_eq(dialed, "0", "the job was dialed after its window closed");
    free(dialed);
    free(row);
    free(before);
    free(id);
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}
