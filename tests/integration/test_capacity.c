/*
 * Capacity beyond a deployment's own: an account's limit across its
 * deployments, and the carrier's channels shared fairly, so a deployment
 * with a huge backlog does not starve a small one.
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

/* Queues n voice calls to the client's deployment in one batch. */
static void queue_batch(const h_client_t *c, int n)
{
    size_t cap = (size_t)n * 64 + 8, o = 0;
    char *body = malloc(cap);
    o += (size_t)snprintf(body + o, cap - o, "[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o, "%s{\"phone_number\":\"+1212555010%d\"}",
                              i ? "," : "", i % 10);
    snprintf(body + o, cap - o, "]");
    h_resp_t r = h_queue_batch(c, body, n);
    h_resp_free(&r);
    free(body);
}

/* Waits until all `calls` calls of the account are recorded and completed. */
static void wait_all_done(PGconn *pg, const char *account_id, int calls, int timeout_s)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", calls);
    const char *p[] = {account_id, n};
    for (int i = 0; i < timeout_s * 10; i++) {
        char *row = h_pg_value(pg,
                               "SELECT 1 FROM calls WHERE account_id = $1 HAVING count(*) = $2::int"
                               " AND count(*) FILTER (WHERE state = 'completed') = $2::int",
                               2, p);
        bool done = row != NULL;
        free(row);
        if (done)
            return;
        h_sleep_ms(100);
    }
    cr_assert_fail("calls of account %s still running after %d s", account_id, timeout_s);
}

/* The most attempts of the account (or of one deployment, if given) that
 * were dialing or connected at the same moment. */
static long peak_overlap(PGconn *pg, const char *column, const char *id)
{
    char sql[768];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(max(running), 0) FROM (SELECT sum(delta) OVER (ORDER BY at, delta)"
             " AS running FROM (SELECT a.dialing_at AS at, 1 AS delta FROM attempts a"
             " JOIN calls c USING (call_id) WHERE c.%s = $1 AND a.dialing_at IS NOT NULL"
             " UNION ALL SELECT a.ended_at, -1 FROM attempts a JOIN calls c USING (call_id)"
             " WHERE c.%s = $1 AND a.dialing_at IS NOT NULL) e) x",
             column, column);
    const char *p[] = {id};
    return h_pg_long(pg, sql, 1, p);
}

Test(capacity, an_account_limit_holds_across_its_deployments, .timeout = 180, .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t c = h_client(&s, &t, pg);
    /* A second deployment of the same account, and an account limit of 3. */
    const char *p[] = {t.account_id, t.application_id, t.deployment_id};
    char *second = h_pg_value(pg,
                              "INSERT INTO deployments (deployment_id, application_id, account_id,"
                              " name, capacity) VALUES (gen_random_uuid(), $2, $1, 'second', 5)"
                              " RETURNING deployment_id",
                              2, p);
    free(
        h_pg_value(pg, "UPDATE accounts SET capacity = 3 WHERE account_id = $1 RETURNING 1", 1, p));
    cr_assert(h_stack_up(&s, 1, dialer_env));

    queue_batch(&c, 15);
    h_client_t on_second = h_client_on(&c, second);
    queue_batch(&on_second, 15);
    wait_all_done(pg, t.account_id, 30, 120);

    long account_peak = peak_overlap(pg, "account_id", t.account_id);
    cr_expect_leq(account_peak, 3, "the account had %ld calls at once, its limit is 3",
                  account_peak);
    cr_expect_geq(account_peak, 2, "the account never used its capacity (peak %ld)", account_peak);
    cr_expect(h_stack_down(&s));
    free(second);
    PQfinish(pg);
}

Test(capacity, scarce_channels_are_shared_so_a_small_deployment_is_not_starved, .timeout = 180,
     .fini = teardown)
{
    /* One dialer with 4 channels for a deployment of capacity 100 with 120
     * calls and one of capacity 20 with 12 calls queued after them. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", "OB_DIALER_CHANNELS=4", NULL};
    h_tenant_t big, small;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &big, 100);
    h_tenant(pg, &small, 20);
    h_client_t big_api = h_client(&s, &big, pg), small_api = h_client(&s, &small, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    queue_batch(&big_api, 120);
    queue_batch(&small_api, 12);
    wait_all_done(pg, small.account_id, 12, 120);

    /* The small deployment finished while the big one still had a backlog. */
    const char *p[] = {big.account_id};
    char *big_left = h_pg_value(pg,
                                "SELECT 120 - count(*) FILTER (WHERE state = 'completed')"
                                " FROM calls WHERE account_id = $1",
                                1, p);
    cr_expect(big_left && atol(big_left) > 0,
              "the big deployment had finished too (%s left): nothing was shown", big_left);
    free(big_left);
    /* And the carrier never had more than its 4 channels busy. */
    char *peak = h_pg_value(pg,
                            "SELECT coalesce(max(running), 0) FROM (SELECT sum(delta) OVER"
                            " (ORDER BY at, delta) AS running FROM (SELECT dialing_at AS at,"
                            " 1 AS delta FROM attempts WHERE dialing_at IS NOT NULL UNION ALL"
                            " SELECT ended_at, -1 FROM attempts WHERE dialing_at IS NOT NULL) e) x",
                            0, NULL);
    cr_expect_leq(atol(peak), 4, "%s calls at once on 4 channels", peak);
    free(peak);
    wait_all_done(pg, big.account_id, 120, 120);
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}

Test(capacity, calls_per_second_paces_releases, .timeout = 180, .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 50);
    h_client_t c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    h_resp_t r = h_deployment_api(&c, "PATCH", "", "{\"calls_per_second\": 0}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"calls_per_second\""), "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&c, "PATCH", "", "{\"calls_per_second\": 5}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "calls_per_second"), "5");
    h_resp_free(&r);

    queue_batch(&c, 25);
    wait_all_done(pg, t.account_id, 25, 120);

    /* No second holds more than 5 releases, so 25 take 4 s or more. */
    char *busiest = h_pg_value(pg,
                               "SELECT max((SELECT count(*) FROM attempts b"
                               " WHERE b.released_at >= a.released_at"
                               " AND b.released_at < a.released_at + interval '1 second'))"
                               " FROM attempts a",
                               0, NULL);
    char *span = h_pg_value(pg,
                            "SELECT extract(epoch FROM max(released_at) - min(released_at))"
                            " FROM attempts",
                            0, NULL);
    cr_expect_leq(atol(busiest), 5, "%s releases within one second at 5 calls/s", busiest);
    cr_expect_geq(atof(span), 3.9, "25 calls at 5/s released within %s s", span);
    free(busiest);
    free(span);
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}
