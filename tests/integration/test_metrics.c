/*
 * What an operator's Prometheus scrapes: the scheduler's queue gauges by
 * deployment (bounded by OB_SCHEDULER_METRICS_DEPLOYMENTS), its campaign
 * window states, and the dialer's queue-to-dialing histogram and Postgres
 * write timings, read from the services' /metrics while calls wait and run.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* The value of series name{deployment="id"} on p, -1 when absent. */
static long by_deployment(const h_proc_t *p, const char *name, const char *id)
{
    char series[160];
    snprintf(series, sizeof(series), "%s{deployment=\"%s\"}", name, id);
    return h_metric(p, series);
}

/* A campaign window open all day, but only on the weekday three days from
 * now (UTC): closed for the whole test. */
static void close_window(PGconn *pg, const char *deployment_id)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char window[160];
    snprintf(window, sizeof(window),
             "{\"time_zone\":\"UTC\",\"hours\":{\"%s\":[[\"00:00\",\"24:00\"]]}}",
             days[(tm.tm_wday + 3) % 7]);
    const char *p[] = {deployment_id, window};
    free(h_pg_value(pg,
                    "UPDATE deployments SET campaign_window = $2::jsonb WHERE deployment_id = $1"
                    " RETURNING 1",
                    2, p));
}

/* Queues n calls to phone; their ids go to ids (NULL: not kept). */
static void queue_n(const h_client_t *c, const char *phone, int n, char **ids)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"phone_number\":\"%s\"}", phone);
    for (int i = 0; i < n; i++) {
        char *id = h_queue_json(c, body);
        if (ids)
            ids[i] = id;
        else
            free(id);
    }
}

Test(metrics, queue_gauges_follow_the_calls_of_each_deployment, .timeout = 120, .fini = teardown)
{
    /* Only the busiest deployment gets its own label; the scheduler counts
     * every 200 ms; a sim no-answer rings 3 s. */
    const char *const sched_env[] = {"OB_SCHEDULER_METRICS_DEPLOYMENTS=1",
                                     "OB_SCHEDULER_STATS_MS=200", NULL};
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10", NULL};
    h_tenant_t busy, closed;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &busy, 1);
    h_tenant(pg, &closed, 3);
    close_window(pg, closed.deployment_id);
    h_client_t busy_api = h_client(&s, &busy, pg), closed_api = h_client(&s, &closed, pg);
    h_proc_t *sched = h_start(&s, "scheduler", "scheduler", sched_env);
    h_proc_t *dialer = h_start(&s, "dialer", "dialer-1", dialer_env);
    h_start(&s, "ingest", "ingest", NULL);
    for (int i = 0; i < s.nprocs; i++)
        cr_assert(h_wait_ready(&s.procs[i], 60000), "%s not ready", s.procs[i].name);

    /* Nothing queued yet: after the first count the families are declared
     * and no deployment is shown. */
    long closed_windows = -1;
    for (int i = 0; i < 50 && closed_windows < 0; i++) {
        closed_windows = h_metric(sched, "outbound_campaign_windows{state=\"closed\"}");
        h_sleep_ms(100);
    }
    cr_expect_eq(closed_windows, 0);
    cr_expect_eq(by_deployment(sched, "outbound_queue_depth", closed.deployment_id), -1);

    char *busy_ids[3];
    queue_n(&closed_api, "+12125550100", 4, NULL);   /* wait for their window */
    queue_n(&busy_api, "+12125550140", 3, busy_ids); /* one at a time: capacity 1 */

    /* While busy's first call rings: one in flight, the rest waiting for
     * capacity and getting older. busy (3 calls) is summed under _other
     * because closed (4) is busier. */
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        seen = by_deployment(sched, "outbound_calls_in_flight", "_other") == 1 &&
               by_deployment(sched, "outbound_queue_depth", "_other") >= 1 &&
               by_deployment(sched, "outbound_queue_oldest_due_seconds", "_other") >= 1 &&
               by_deployment(sched, "outbound_queue_depth", closed.deployment_id) == 4;
        if (!seen)
            h_sleep_ms(100);
    }
    cr_assert(seen, "busy's waiting and ringing calls never showed under _other");
    cr_expect_eq(by_deployment(sched, "outbound_capacity", closed.deployment_id), 3);
    cr_expect_eq(by_deployment(sched, "outbound_capacity", "_other"), 1);
    cr_expect_eq(by_deployment(sched, "outbound_calls_in_flight", closed.deployment_id), 0);
    cr_expect_eq(by_deployment(sched, "outbound_queue_oldest_due_seconds", closed.deployment_id), 0,
                 "calls waiting for their window are not waiting for capacity");
    cr_expect_eq(by_deployment(sched, "outbound_queue_depth", busy.deployment_id), -1,
                 "more deployments labelled than OB_SCHEDULER_METRICS_DEPLOYMENTS allows");
    cr_expect_eq(h_metric(sched, "outbound_campaign_windows{state=\"closed\"}"), 1);
    cr_expect_eq(h_metric(sched, "outbound_campaign_windows{state=\"none\"}"), 1);
    cr_expect_eq(h_metric(sched, "outbound_calls_pending{waiting_for=\"window\"}"), 4);

    /* busy done: its series are gone, closed's stay. */
    for (int i = 0; i < 3; i++) {
        char *done = h_wait_completed(&busy_api, busy_ids[i], 30000);
        cr_assert(done, "call %s not completed", busy_ids[i]);
        free(done);
        free(busy_ids[i]);
    }
    bool gone = false;
    for (int i = 0; i < 300 && !gone; i++) {
        gone = by_deployment(sched, "outbound_queue_depth", "_other") == -1 &&
               h_metric(sched, "outbound_campaign_windows{state=\"none\"}") == 0;
        if (!gone)
            h_sleep_ms(100);
    }
    cr_expect(gone, "busy's calls ended but _other or its window state stayed");
    cr_expect_eq(by_deployment(sched, "outbound_queue_depth", closed.deployment_id), 4);

    /* The dialer dialed busy's three calls: the first at once, the others
     * after waiting for capacity through one and two rings (3 s each). */
    cr_expect_eq(h_metric(dialer, "outbound_queue_to_dialing_seconds_count"), 3);
    cr_expect_eq(h_metric(dialer, "outbound_queue_to_dialing_seconds_bucket{le=\"+Inf\"}"), 3);
    cr_expect_leq(h_metric(dialer, "outbound_queue_to_dialing_seconds_bucket{le=\"2.5\"}"), 1,
                  "the calls that waited for capacity were measured from when they were due");
    long waited = h_metric(dialer, "outbound_queue_to_dialing_seconds_sum");
    cr_expect(waited >= 8 && waited <= 60, "waited %ld s in all, expected about 9", waited);
    cr_expect_geq(
        h_metric(dialer, "outbound_postgres_write_duration_seconds_count{op=\"transitions\"}"), 3);
    cr_expect_geq(
        h_metric(sched, "outbound_postgres_write_duration_seconds_count{op=\"record_calls\"}"), 1);
    cr_expect_geq(
        h_metric(sched, "outbound_postgres_write_duration_seconds_count{op=\"release_jobs\"}"), 3);

    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}
