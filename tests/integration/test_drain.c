/*
 * SIGTERM drains: a dialer lets its calls in progress finish and exits 0; at
 * the drain deadline it hangs up what is left, records those attempts
 * honestly (reason dialer_shutdown) and exits 3. Ingest stopped under full
 * load answers what it holds and exits 0. Nothing accepted is lost.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
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
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+12125550101\"}");
    h_wait_row(&c, call_id, "state = 'dialing'", 30000);
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
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    char *call_id = h_queue_json(&c, "{\"phone_number\": \"+12125550140\", \"max_attempts\": 1}");
    h_wait_row(&c, call_id, "state = 'dialing'", 30000);
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

/* One client of the load below: queues calls back to back until told to
 * stop or ingest stops answering; keeps the ids answered 202. */
typedef struct {
    const h_client_t *api; /* whose deployment */
    const int *stop;       /* set by the test (atomic) */
    char **ids;            /* call ids answered 202 */
    int n, cap;            /* entries used and allocated in ids */
    int refused;           /* answers other than 202 */
} client_t;

static void *client(void *arg)
{
    client_t *c = arg;
    while (!__atomic_load_n(c->stop, __ATOMIC_RELAXED)) {
        h_resp_t r =
            h_deployment_api(c->api, "POST", "/calls", "{\"phone_number\": \"+12125550100\"}");
        bool gone = r.status == 0;
        if (r.status == 202) {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 256;
                c->ids = realloc(c->ids, (size_t)c->cap * sizeof(char *));
                cr_assert(c->ids);
            }
            c->ids[c->n++] = h_json_str(r.body, "call_id");
        } else if (!gone) {
            c->refused++;
        }
        h_resp_free(&r);
        if (gone)
            break;
    }
    return NULL;
}

#define CLIENTS 16

Test(drain, ingest_under_full_load_exits_0_and_every_call_it_accepted_is_recorded, .timeout = 180,
     .fini = teardown)
{
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 1);
    h_client_t api = h_client(&s, &t, pg);
    /* No dialer: the calls are only recorded, which is what is counted. */
    h_proc_t *ingest = h_start(&s, "ingest", "ingest", NULL);
    h_start(&s, "scheduler", "scheduler", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000) && h_wait_ready(&s.procs[1], 60000));

    int stop = 0;
    client_t clients[CLIENTS] = {0};
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client_t){.api = &api, .stop = &stop};
        cr_assert_eq(pthread_create(&threads[i], NULL, client, &clients[i]), 0);
    }
    h_sleep_ms(3000);
    cr_expect_eq(h_stop(ingest, 60000), 0, "ingest did not drain cleanly; see %s", ingest->log);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    int accepted = 0, refused = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        accepted += clients[i].n;
        refused += clients[i].refused;
    }
    cr_assert_gt(accepted, 100, "only %d calls accepted in 3 s: no load", accepted);

    /* "{id,id,...}" of every accepted call, then how many the scheduler recorded. */
    char *list = calloc((size_t)accepted, 40), *at = list;
    cr_assert(list);
    *at++ = '{';
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < clients[i].n; k++)
            at += sprintf(at, "%s%s", at == list + 1 ? "" : ",", clients[i].ids[k]);
    *at++ = '}';
    *at = '\0';
    const char *p[] = {list};
    long recorded = 0;
    for (int i = 0; i < 300 && recorded < accepted; i++) {
        char *v =
            h_pg_value(pg, "SELECT count(*) FROM calls WHERE call_id = ANY($1::uuid[])", 1, p);
        recorded = v ? atol(v) : 0;
        free(v);
        if (recorded < accepted)
            h_sleep_ms(100);
    }
    cr_expect_eq(recorded, accepted, "%d calls answered 202 (and %d refused), %ld recorded",
                 accepted, refused, recorded);
    cr_expect(h_stack_down(&s));
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < clients[i].n; k++)
            free(clients[i].ids[k]);
        free(clients[i].ids);
    }
    free(list);
    PQfinish(pg);
}
