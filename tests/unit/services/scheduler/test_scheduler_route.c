/* Dial-job routing by the dialers' announcements
 * (services/scheduler/scheduler_route.c): which partition each job goes to. */
#include "scheduler_route.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#define STALE_MS 5000
#define END      -2 /* ends a list of expected picks */

/* A dialer as announced; partitions end at the first negative entry. */
typedef struct {
    const char *id;    /* instance_id */
    long channels;     /* announced channels */
    long busy;         /* dialing plus waiting jobs */
    int partitions[4]; /* assigned dial-jobs partitions */
    long long age_ms;  /* since its last heartbeat */
} dialer_case_t;

typedef struct {
    const char *name;         /* what the case shows */
    dialer_case_t dialers[4]; /* announced dialers (id NULL ends) */
    long free;                /* expected free channels before any pick */
    int picks[16];            /* expected partitions, the last -1, then END */
} route_case_t;

static route_case_t cases[] = {
    {"no dialer: nothing is routed", {{0}}, 0, {-1, END}},
    {"one dialer, one partition", {{"a", 2, 0, {3, -1}, 0}}, 2, {3, 3, -1, END}},
    {"the dialer with the most free channels first, evenly after",
     {{"a", 10, 8, {0, -1}, 0}, {"b", 10, 5, {1, -1}, 0}},
     7,
     {1, 1, 1, 0, 1, 0, 1, -1, END}},
    {"round-robin over the dialer's partitions",
     {{"a", 4, 0, {2, 5, 7, -1}, 0}},
     4,
     {2, 5, 7, 2, -1, END}},
    {"a full dialer gets nothing, an idle one everything",
     {{"busy", 3, 3, {0, 1, -1}, 0}, {"idle", 2, 0, {2, 3, -1}, 0}},
     2,
     {2, 3, -1, END}},
    {"jobs waiting beyond the channels count as none free",
     {{"a", 2, 5, {0, -1}, 0}, {"b", 1, 0, {1, -1}, 0}},
     1,
     {1, -1, END}},
    {"a stale dialer is ignored",
     {{"dead", 50, 0, {0, -1}, STALE_MS + 1}, {"live", 1, 0, {1, -1}, STALE_MS}},
     1,
     {1, -1, END}},
    {"a dialer without partitions is ignored",
     {{"unassigned", 50, 0, {-1}, 0}, {"assigned", 1, 0, {4, -1}, 0}},
     1,
     {4, -1, END}},
    {"a duplicate instance id counts once",
     {{"a", 1, 0, {0, -1}, 0}, {"a", 1, 0, {0, -1}, 0}},
     1,
     {0, -1, END}},
};

/* Copies a case's dialers into the route's input; returns how many. */
static size_t to_list(const route_case_t *c, scheduler_dialer_t *list, int parts[][4])
{
    size_t n = 0;
    for (; n < 4 && c->dialers[n].id; n++) {
        const dialer_case_t *d = &c->dialers[n];
        int k = 0;
        while (k < 4 && d->partitions[k] >= 0) {
            parts[n][k] = d->partitions[k];
            k++;
        }
        list[n] = (scheduler_dialer_t){d->id, d->channels, d->busy, parts[n], k, d->age_ms, 0};
    }
    return n;
}

ParameterizedTestParameters(route, picks)
{
    return cr_make_param_array(route_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(route_case_t *c, route, picks)
{
    scheduler_dialer_t list[4];
    int parts[4][4];
    scheduler_route_t *r = scheduler_route_new();
    scheduler_route_set(r, list, to_list(c, list, parts), STALE_MS, 0);

    cr_expect_eq(scheduler_route_free_channels(r), c->free, "%s: free channels", c->name);
    for (int i = 0; c->picks[i] != END; i++) {
        long before = scheduler_route_free_channels(r);
        int got = scheduler_route_pick(r);
        cr_expect_eq(got, c->picks[i], "%s: pick %d is partition %d, expected %d", c->name, i, got,
                     c->picks[i]);
        cr_expect_eq(scheduler_route_free_channels(r), got < 0 ? before : before - 1,
                     "%s: free channels after pick %d", c->name, i);
    }
    cr_expect_eq(scheduler_route_pick(r), -1, "%s: stays exhausted", c->name);
    scheduler_route_free(r);
}

Test(route, empty_route_picks_nothing)
{
    scheduler_route_t *r = scheduler_route_new();
    cr_expect_eq(scheduler_route_pick(r), -1);
    cr_expect_eq(scheduler_route_free_channels(r), 0);
    cr_expect_eq(scheduler_route_dialers(r), 0);
    scheduler_route_free(r);
    scheduler_route_free(NULL);
}

Test(route, refresh_keeps_a_dialers_round_robin_position)
{
    const int parts[] = {0, 1, 2};
    scheduler_dialer_t a = {"a", 10, 0, parts, 3, 0, 0};
    scheduler_route_t *r = scheduler_route_new();
    scheduler_route_set(r, &a, 1, STALE_MS, 0);
    cr_expect_eq(scheduler_route_pick(r), 0);
    cr_expect_eq(scheduler_route_pick(r), 1);
    a.busy = 2; /* the next refresh sees the two jobs waiting */
    scheduler_route_set(r, &a, 1, STALE_MS, 0);
    cr_expect_eq(scheduler_route_free_channels(r), 8, "free channels come from the new list");
    cr_expect_eq(scheduler_route_pick(r), 2, "spreading goes on where it was");
    cr_expect_eq(scheduler_route_pick(r), 0);
    scheduler_route_free(r);
}

Test(route, set_copies_its_input)
{
    char id[8];
    int parts[] = {6};
    snprintf(id, sizeof(id), "a");
    scheduler_dialer_t a = {id, 2, 0, parts, 1, 0, 0};
    scheduler_route_t *r = scheduler_route_new();
    scheduler_route_set(r, &a, 1, STALE_MS, 0);
    snprintf(id, sizeof(id), "zzz");
    parts[0] = 9;
    cr_expect_eq(scheduler_route_dialers(r), 1);
    cr_expect_eq(scheduler_route_pick(r), 6);
    scheduler_route_free(r);
}

Test(route, every_live_dialer_is_reached)
{
    /* Many equal dialers: the jobs of one pass are spread over all of them. */
    enum { N = 8 };
    scheduler_dialer_t list[N];
    int parts[N];
    char ids[N][8];
    bool hit[N] = {0};
    for (int i = 0; i < N; i++) {
        parts[i] = i;
        snprintf(ids[i], sizeof(ids[i]), "d%d", i);
        list[i] = (scheduler_dialer_t){ids[i], 3, 0, &parts[i], 1, 0, 0};
    }
    scheduler_route_t *r = scheduler_route_new();
    scheduler_route_set(r, list, N, STALE_MS, 0);
    for (int i = 0; i < N; i++) {
        int p = scheduler_route_pick(r);
        cr_assert(p >= 0 && p < N);
        cr_expect_not(hit[p], "partition %d picked twice before all were picked once", p);
        hit[p] = true;
    }
    cr_expect_eq(scheduler_route_free_channels(r), N * 2);
    scheduler_route_free(r);
}

Test(route, a_dialers_cps_limit_caps_its_jobs_per_second)
{
    /* A sip dialer: 100 channels but 5 calls/s; a sim one beside it. */
    const int sip_parts[] = {0}, sim_parts[] = {1};
    scheduler_dialer_t list[] = {{"sip", 100, 0, sip_parts, 1, 0, 5},
                                 {"sim", 3, 0, sim_parts, 1, 0, 0}};
    scheduler_route_t *r = scheduler_route_new();
    scheduler_route_set(r, list, 2, STALE_MS, 1000);
    cr_expect_eq(scheduler_route_free_channels(r), 5 + 3, "one second's worth, plus the sim's");
    int sip = 0;
    for (int i = 0; i < 8; i++)
        sip += scheduler_route_pick(r) == 0;
    cr_expect_eq(sip, 5);
    cr_expect_eq(scheduler_route_pick(r), -1);
    /* 400 ms later: 2 more; a second later: full again, never more. */
    scheduler_route_set(r, list, 2, STALE_MS, 1400);
    cr_expect_eq(scheduler_route_free_channels(r), 2 + 3);
    sip = 0;
    for (int i = 0; i < 5; i++)
        sip += scheduler_route_pick(r) == 0;
    cr_expect_eq(sip, 2);
    scheduler_route_set(r, list, 2, STALE_MS, 60000);
    cr_expect_eq(scheduler_route_free_channels(r), 5 + 3);
    /* A slow trunk (0.5/s): one job at a time, then one every 2 s. */
    list[0].cps = 0.5;
    scheduler_route_t *slow = scheduler_route_new();
    scheduler_route_set(slow, list, 1, STALE_MS, 0);
    cr_expect_eq(scheduler_route_pick(slow), 0);
    cr_expect_eq(scheduler_route_pick(slow), -1);
    scheduler_route_set(slow, list, 1, STALE_MS, 1000);
    cr_expect_eq(scheduler_route_pick(slow), -1, "half a token");
    scheduler_route_set(slow, list, 1, STALE_MS, 2000);
    cr_expect_eq(scheduler_route_pick(slow), 0);
    scheduler_route_free(slow);
    scheduler_route_free(r);
}
