/*
 * SIGTERM drains: a dialer lets its calls in progress finish and exits 0; at
 * the drain deadline it hangs up what is left, records those attempts
 * honestly (reason dialer_shutdown) and exits 3. Nothing accepted is lost.
 */
#include "harness.h"

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

static char *queue_one(const h_tenant_t *t, const char *body)
{
    return h_queue(s.ingest_port, t->api_key, t->deployment_id, body);
}

/* Waits until the call's row reaches state (dialing or connected). */
static void wait_state(PGconn *pg, const char *call_id, const char *state)
{
    const char *p[] = {call_id, state};
    for (int i = 0; i < 300; i++) {
        char *v = h_pg_value(pg, "SELECT 1 FROM calls WHERE call_id = $1 AND state = $2", 2, p);
        free(v);
        if (v)
            return;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("call %s never reached %s", call_id, state);
}

Test(drain, dialer_finishes_calls_in_progress_then_exits_0, .timeout = 180, .fini = teardown)
{
    /* At 10x a voice call lasts about 1.5 to 5.5 s: long enough to be caught
     * in progress, short enough for the default drain deadline. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char *call_id = queue_one(&t, "{\"phone_number\": \"+12125550101\"}");
    wait_state(pg, call_id, "dialing");
    h_proc_t *dialer = &s.procs[1];
    cr_assert_str_eq(dialer->name, "dialer-1");
    cr_expect_eq(h_stop(dialer, 60000), 0, "dialer did not drain cleanly; see %s", dialer->log);

    const char *p[] = {call_id};
    char *row = h_pg_value(pg,
                           "SELECT state || '/' || status || '/' || result FROM calls"
                           " WHERE call_id = $1",
                           1, p);
    cr_expect_str_eq(row, "completed/completed/voice");
    cr_expect(h_stack_down(&s));
    free(call_id);
    free(row);
    PQfinish(pg);
}

Test(drain, deadline_hangs_up_and_records_why, .timeout = 180, .fini = teardown)
{
    /* Real-time calls and a 300 ms deadline: the call cannot finish. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=1", "OB_DRAIN_TIMEOUT_MS=300", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char *call_id = queue_one(&t, "{\"phone_number\": \"+12125550140\", \"max_attempts\": 1}");
    wait_state(pg, call_id, "dialing");
    h_proc_t *dialer = &s.procs[1];
    cr_expect_eq(h_stop(dialer, 60000), 3, "an undrained dialer exits 3; see %s", dialer->log);

    const char *p[] = {call_id};
    char *call = h_pg_value(pg,
                            "SELECT state || '/' || status || '/' || result FROM calls"
                            " WHERE call_id = $1",
                            1, p);
    char *attempt = h_pg_value(pg,
                               "SELECT state || '/' || result || '/' || reason FROM attempts"
                               " WHERE call_id = $1",
                               1, p);
    cr_expect_str_eq(call, "completed/failed/unknown");
    cr_expect_str_eq(attempt, "ended/unknown/dialer_shutdown");
    cr_expect(h_stack_down(&s));
    free(call_id);
    free(call);
    free(attempt);
    PQfinish(pg);
}
