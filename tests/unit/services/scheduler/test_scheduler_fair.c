/* Fair shares of scarce dialer channels between deployments (scheduler_fair.c). */
#include "scheduler_fair.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#define MAXN 6

typedef struct {
    const char *name;
    int n;
    long demand[MAXN], weight[MAXN];
    long total;
    int start;
    long want[MAXN];
} fair_case_t;

static fair_case_t cases[] = {
    /* Plenty: everyone gets what it can use. */
    {"plenty", 3, {5, 10, 1}, {5, 10, 1}, 100, 0, {5, 10, 1}},
    /* Scarce, equal weights: equal shares. */
    {"equal split", 2, {100, 100}, {10, 10}, 10, 0, {5, 5}},
    /* A huge deployment and a small one: by capacity, and the small one is not starved. */
    {"huge and small", 2, {10000, 10}, {10000, 10}, 2002, 0, {2000, 2}},
    {"huge and small, leftover to the small", 2, {10000, 10}, {10000, 10}, 101, 1, {100, 1}},
    {"small keeps its share", 2, {1000, 50}, {100, 100}, 60, 0, {30, 30}},
    /* What one cannot use goes to the others. */
    {"unused share moves on", 3, {1, 100, 100}, {1, 1, 1}, 31, 0, {1, 15, 15}},
    /* Rounding leftovers go in turn from start. */
    {"leftover from start 0", 3, {10, 10, 10}, {1, 1, 1}, 4, 0, {2, 1, 1}},
    {"leftover from start 2", 3, {10, 10, 10}, {1, 1, 1}, 4, 2, {1, 1, 2}},
    /* Nothing to give, or nobody wanting. */
    {"no channels", 2, {5, 5}, {1, 1}, 0, 0, {0, 0}},
    {"no demand", 2, {0, 0}, {1, 1}, 10, 0, {0, 0}},
    /* A zero weight counts as one. */
    {"zero weight", 2, {10, 10}, {0, 1}, 2, 0, {1, 1}},
};

ParameterizedTestParameters(fair, share)
{
    return cr_make_param_array(fair_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(fair_case_t *c, fair, share)
{
    long share[MAXN] = {0}, sum = 0, demand = 0;
    scheduler_fair_share(c->demand, c->weight, c->n, c->total, c->start, share);
    for (int i = 0; i < c->n; i++) {
        cr_expect_eq(share[i], c->want[i], "%s: deployment %d got %ld, want %ld", c->name, i,
                     share[i], c->want[i]);
        cr_expect_leq(share[i], c->demand[i], "%s: more than it can take", c->name);
        sum += share[i];
        demand += c->demand[i];
    }
    cr_expect_eq(sum, c->total < demand ? c->total : demand, "%s: %ld given", c->name, sum);
}

/* Many deployments, scarce channels: proportional within one unit. */
Test(fair, proportional_within_a_unit)
{
    enum { N = 50 };
    long demand[N], weight[N], share[N];
    for (int i = 0; i < N; i++) {
        demand[i] = 1000;
        weight[i] = i + 1; /* 1..50, sum 1275 */
    }
    scheduler_fair_share(demand, weight, N, 1275 * 2, 7, share);
    for (int i = 0; i < N; i++)
        cr_expect(share[i] >= 2 * (i + 1) - 1 && share[i] <= 2 * (i + 1) + 1,
                  "deployment %d (weight %d) got %ld", i, i + 1, share[i]);
}

/* A deployment whose share rounds to nothing still gets its turn: over
 * passes with the start rotating, it is never starved. */
Test(fair, a_tiny_share_is_not_starved_over_passes)
{
    long demand[3] = {100000, 100000, 5}, weight[3] = {10000, 10000, 1}, share[3], tiny = 0;
    for (int pass = 0; pass < 30; pass++) {
        scheduler_fair_share(demand, weight, 3, 101, pass, share);
        tiny += share[2];
    }
    cr_expect_geq(tiny, 10, "the small deployment got %ld line(s) in 30 passes", tiny);
}
