/*
 * Failover of the scheduler with the real binaries: two schedulers and three
 * dialers run some 300 calls of two deployments; the scheduler owning the
 * bigger one is killed (SIGKILL) mid-run and a new one started. Every accepted
 * call still ends once, within max_attempts and capacity, never dialed twice
 * at once, with one completed event in Postgres and on the events topic. And
 * a paused queue releases nothing, and its cancellation wins over a resume.
 */
#include "harness_client.h"
#include "ob_common.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static h_stack_t s;
static PGconn *pg;

static void teardown(void)
{
    h_stack_kill(&s);
    if (pg)
        PQfinish(pg);
    pg = NULL;
}

/* Polls sql until its number reaches at least want; returns the last value. */
static long wait_at_least(const char *sql, int n, const char *const *params, long want,
                          int timeout_ms)
{
    int64_t deadline = ob_mono_ms() + timeout_ms;
    long v = h_pg_long(pg, sql, n, params);
    while (v < want && ob_mono_ms() < deadline) {
        h_sleep_ms(100);
        v = h_pg_long(pg, sql, n, params);
    }
    return v;
}

static h_proc_t *find_proc(const char *name)
{
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, name) == 0)
            return &s.procs[i];
    cr_assert_fail("no process %s", name);
    return NULL;
}

/* What the sim carrier answers for +1 212 555 01DX, by D. */
static const struct {
    const char *result; /* the callee type or failure */
    bool answers;       /* ends the call as completed/answered */
} outcome[] = {
    {"voice", true},     {"answeringmachine", true}, {"fax", true},          {"busy", false},
    {"noanswer", false}, {"informationtone", false}, {"linefailure", false}, {"unknown", true},
};

/* Appends "item" to a comma-separated list of quoted items (for array literals). */
static void append(char **list, const char *item)
{
    char *next = ob_xasprintf("%s%s\"%s\"", *list ? *list : "", *list ? "," : "", item);
    free(*list);
    *list = next;
}

/*
 * Queues n calls in one batch: outcomes cycle through every result type;
 * a third of the calls have max_attempts 1, the rest 2 with rules that
 * never retry (a retry waits at least 60 s, longer than the test).
 */
static void queue_mix(const h_client_t *api, int n, char **ids, char **expected, int *count)
{
    static const int digits[] = {0, 3, 1, 6, 2, 5, 0, 4, 7, 3};
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        char phone[32];
        int d = digits[i % 10];
        snprintf(phone, sizeof(phone), "+121255501%d%d", d, i % 10);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "phone_number", phone);
        cJSON_AddNumberToObject(c, "max_attempts", i % 3 == 0 ? 1 : 2);
        if (i % 3 != 0) {
            cJSON *rules = cJSON_AddObjectToObject(c, "retry_rules");
            const char *never[] = {"busy", "noanswer", "informationtone", "linefailure", "unknown"};
            for (size_t k = 0; k < OB_COUNTOF(never); k++)
                cJSON_AddStringToObject(rules, never[k], "never");
        }
        cJSON_AddItemToArray(arr, c);
    }
    char *body = cJSON_PrintUnformatted(arr);
    h_resp_t r = h_queue_batch(api, body, n);
    cJSON_free(body);
    cJSON_Delete(arr);
    for (int i = 0; i < n; i++) {
        char path[64], want[96];
        snprintf(path, sizeof(path), "results.%d.call_id", i);
        char *id = h_json_path(r.body, path);
        cr_assert_not_null(id, "element %d not queued: %s", i, r.body);
        int d = digits[i % 10];
        snprintf(want, sizeof(want), "%s/%s/%s", outcome[d].answers ? "completed" : "failed",
                 outcome[d].result,
                 outcome[d].answers ? "answered"
                 : i % 3 == 0       ? "max_attempts"
                                    : "retry_rule");
        append(ids, id);
        append(expected, want);
        free(id);
        (*count)++;
    }
    h_resp_free(&r);
}

typedef struct {
    char **subjects, **ids; /* comma-separated lists being built */
} completed_t;

/* Adds a completed event's subject and id to the lists. */
static void completed_one(void *arg, const void *payload, size_t len)
{
    completed_t *c = arg;
    cJSON *ev = cJSON_ParseWithLength(payload, len);
    const cJSON *type = cJSON_GetObjectItem(ev, "type");
    const cJSON *subject = cJSON_GetObjectItem(ev, "subject");
    const cJSON *id = cJSON_GetObjectItem(ev, "id");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "outbound.call.completed") == 0 &&
        cJSON_IsString(subject) && cJSON_IsString(id)) {
        append(c->subjects, subject->valuestring);
        append(c->ids, id->valuestring);
    }
    cJSON_Delete(ev);
}

/* Reads the whole call-events topic; returns the subjects and ids of its
 * completed events as two Postgres array literals (caller frees). */
static void completed_on_topic(char **subjects, char **ids)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "%s.call-events", s.prefix);
    completed_t c = {subjects, ids};
    *subjects = *ids = NULL;
    cr_expect(h_read_topic(topic, completed_one, &c), "call-events topic not read to its end");
    char *sub = ob_xasprintf("{%s}", *subjects ? *subjects : "");
    char *idl = ob_xasprintf("{%s}", *ids ? *ids : "");
    free(*subjects);
    free(*ids);
    *subjects = sub;
    *ids = idl;
}

/* The largest number of a deployment's attempts between dialing_at and
 * ended_at at one instant: +1 at each start, -1 at each end, ends first on
 * ties (a slot freed and taken in the same instant is not an overlap). */
static const char PEAK_SQL[] =
    "WITH ev AS ("
    "  SELECT dialing_at AS at, 1 AS delta FROM attempts"
    "  WHERE deployment_id = $1 AND dialing_at IS NOT NULL"
    "  UNION ALL"
    "  SELECT coalesce(ended_at, 'infinity'), -1 FROM attempts"
    "  WHERE deployment_id = $1 AND dialing_at IS NOT NULL),"
    " run AS (SELECT sum(delta) OVER (ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS n FROM ev)"
    " SELECT coalesce(max(n), 0) FROM run";

Test(failover, capacity_holds_and_every_call_ends_once_while_a_scheduler_restarts, .timeout = 180,
     .fini = teardown)
{
    /* 50x: a voice call lasts 0.3 to 1.1 s, a busy one a few ms. */
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=50", "OB_DIALER_LEASE_S=3", NULL};
    h_tenant_t a, b;
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &a, 4);
    h_tenant(pg, &b, 2);
    h_client_t api_a = h_client(&s, &a, pg), api_b = h_client(&s, &b, pg);
    cr_assert(h_stack_up(&s, 3, dialer_env));
    cr_assert(h_wait_ready(h_start(&s, "scheduler", "scheduler-2", NULL), 60000));

    /* Both schedulers own call-requests partitions before any call arrives,
     * so killing one takes work away from it. */
    h_proc_t *sched[2] = {find_proc("scheduler"), find_proc("scheduler-2")};
    int64_t deadline = ob_mono_ms() + 30000;
    long owned[2] = {0, 0};
    while (ob_mono_ms() < deadline) {
        for (int i = 0; i < 2; i++)
            owned[i] = h_metric(sched[i], "outbound_scheduler_partitions_owned");
        if (owned[0] > 0 && owned[1] > 0 && owned[0] + owned[1] == 4)
            break;
        h_sleep_ms(200);
    }
    cr_assert(owned[0] > 0 && owned[1] > 0 && owned[0] + owned[1] == 4,
              "partitions not shared by the two schedulers: %ld + %ld", owned[0], owned[1]);

    char *ids = NULL, *expected = NULL;
    int n = 0;
    int64_t started = ob_mono_ms();
    queue_mix(&api_a, 200, &ids, &expected, &n);
    queue_mix(&api_b, 100, &ids, &expected, &n);
    char *id_array = ob_xasprintf("{%s}", ids);
    char *expected_array = ob_xasprintf("{%s}", expected);
    free(ids);
    free(expected);

    /* The victim is the scheduler that records (so releases) deployment a. */
    const char *dep_a[] = {a.deployment_id};
    char *source = NULL;
    for (int i = 0; i < 100 && !source; i++, h_sleep_ms(100))
        source = h_pg_value(pg,
                            "SELECT source FROM call_events WHERE deployment_id = $1"
                            " AND type = 'outbound.call.queued' LIMIT 1",
                            1, dep_a);
    cr_assert_not_null(source, "no call of deployment a was recorded");
    h_proc_t *victim = NULL;
    for (int i = 0; i < 2; i++) {
        char want[256];
        snprintf(want, sizeof(want), "/outbound/scheduler/%s-%s", s.prefix, sched[i]->name);
        if (strcmp(source, want) == 0)
            victim = sched[i];
    }
    cr_assert_not_null(victim, "queued events come from %s", source);

    /* Kill it in the middle of the run: calls done, more waiting. */
    static const char DONE_SQL[] =
        "SELECT count(*) FROM calls WHERE deployment_id = $1 AND state = 'completed'";
    long done = wait_at_least(DONE_SQL, 1, dep_a, 20, 30000);
    cr_assert_geq(done, 20, "deployment a is not dialing");
    cr_assert_leq(done, 150, "deployment a nearly finished before the kill");
    char *killed_at = h_pg_value(pg, "SELECT now()", 0, NULL);
    cr_log_info("killing %s with %ld of deployment a's 200 calls done", victim->name, done);
    kill(victim->pid, SIGKILL);
    waitpid(victim->pid, NULL, 0);
    victim->pid = 0;
    h_sleep_ms(2000);
    cr_assert(h_wait_ready(h_start(&s, "scheduler", "scheduler-3", NULL), 60000));

    /* Every accepted call ends (calls of either deployment). */
    const char *all[] = {id_array};
    long completed = wait_at_least("SELECT count(*) FROM calls WHERE call_id = ANY($1::uuid[])"
                                   " AND state = 'completed'",
                                   1, all, n, 90000);
    cr_log_info("%d calls ended %.1f s after they were queued", n,
                (double)(ob_mono_ms() - started) / 1000.0);
    cr_assert_eq(completed, n, "only %ld of %d accepted calls ended", completed, n);

    /* (a) one row per accepted call, completed with a final status, and the
     * one the number's outcome and the call's rules say. */
    cr_expect_eq(h_pg_long(pg, "SELECT count(*) FROM calls WHERE deployment_id IN ($1, $2)", 2,
                           (const char *[]){a.deployment_id, b.deployment_id}),
                 n, "calls other than the accepted ones exist");
    const char *both[] = {id_array, expected_array};
    char *wrong = h_pg_value(pg,
                             "SELECT count(*) || ' calls, e.g. ' || string_agg(e.call_id || ' "
                             "wants ' || e.want || ' got ' || coalesce(c.state || '/' || c.status "
                             "|| '/' || c.result || '/' || c.reason, 'nothing'), '; ')"
                             " FROM unnest($1::uuid[], $2::text[]) AS e(call_id, want)"
                             " LEFT JOIN calls c USING (call_id)"
                             " WHERE c.state IS DISTINCT FROM 'completed' OR c.status IS NULL"
                             " OR c.status || '/' || c.result || '/' || c.reason <> e.want"
                             " HAVING count(*) > 0",
                             2, both);
    cr_expect_null(wrong, "calls that did not end as expected: %.2000s", wrong);
    free(wrong);

    /* (b) never more dialed attempts than max_attempts (nor attempts made). */
    char *over = h_pg_value(pg,
                            "SELECT string_agg(c.call_id || ': ' || x.dialed || ' of '"
                            " || c.max_attempts, ', ') FROM calls c JOIN ("
                            "  SELECT call_id, count(*) AS dialed FROM attempts"
                            "  WHERE dialing_at IS NOT NULL GROUP BY call_id) x USING (call_id)"
                            " WHERE c.call_id = ANY($1::uuid[])"
                            " AND (x.dialed > c.max_attempts OR x.dialed > c.attempts_made)",
                            1, all);
    cr_expect_null(over, "calls dialed more than max_attempts times: %s", over);
    free(over);
    cr_expect_eq(h_pg_long(pg,
                           "SELECT count(*) FROM calls c WHERE c.call_id = ANY($1::uuid[])"
                           " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.call_id = c.call_id"
                           " AND a.dialing_at IS NOT NULL)",
                           1, all),
                 0, "calls that ended without being dialed");

    /* (c) capacity: never more attempts dialing or connected than allowed. */
    const h_tenant_t *tenants[] = {&a, &b};
    const int capacity[] = {4, 2};
    for (int i = 0; i < 2; i++) {
        const char *p[] = {tenants[i]->deployment_id};
        long peak = h_pg_long(pg, PEAK_SQL, 1, p);
        cr_log_info("deployment %c: peak of %ld calls at once (capacity %d)", 'a' + i, peak,
                    capacity[i]);
        cr_expect_leq(peak, capacity[i], "deployment %c had %ld calls at once, capacity %d",
                      'a' + i, peak, capacity[i]);
        cr_expect_geq(peak, 1);
    }

    /* (d) no call dialed twice at the same time: no two attempts overlap,
     * and every dial of an attempt is its one dialing event. */
    cr_expect_eq(h_pg_long(pg,
                           "SELECT count(*) FROM attempts x JOIN attempts y"
                           " ON x.call_id = y.call_id AND x.attempt < y.attempt"
                           " WHERE x.call_id = ANY($1::uuid[])"
                           " AND x.dialing_at IS NOT NULL AND y.dialing_at IS NOT NULL"
                           " AND y.dialing_at < coalesce(x.ended_at, 'infinity')"
                           " AND x.dialing_at < coalesce(y.ended_at, 'infinity')",
                           1, all),
                 0, "attempts of one call overlap");
    char *twice = h_pg_value(pg,
                             "SELECT string_agg(call_id || ': ' || dialings || ' dialings for '"
                             " || dialed || ' attempt(s)', ', ') FROM ("
                             "  SELECT c.call_id,"
                             "  (SELECT count(*) FROM call_events e WHERE e.call_id = c.call_id"
                             "   AND e.type = 'outbound.call.dialing') AS dialings,"
                             "  (SELECT count(*) FROM attempts a WHERE a.call_id = c.call_id"
                             "   AND a.dialing_at IS NOT NULL) AS dialed"
                             "  FROM calls c WHERE c.call_id = ANY($1::uuid[])) x"
                             " WHERE dialings <> dialed",
                             1, all);
    cr_expect_null(twice, "dialing events do not match dialed attempts: %s", twice);
    free(twice);

    /* (e) one completed event per call in Postgres... */
    char *events = h_pg_value(pg,
                              "SELECT string_agg(call_id || ': ' || n, ', ') FROM ("
                              "  SELECT c.call_id, (SELECT count(*) FROM call_events e"
                              "   WHERE e.call_id = c.call_id"
                              "   AND e.type = 'outbound.call.completed') AS n"
                              "  FROM calls c WHERE c.call_id = ANY($1::uuid[])) x WHERE n <> 1",
                              1, all);
    cr_expect_null(events, "calls without exactly one completed event: %s", events);
    free(events);

    /* ...and on the topic, once it is all published: duplicates of an event
     * carry its id, so a consumer sees one completion per call. */
    long unpublished = -1;
    deadline = ob_mono_ms() + 30000;
    while ((unpublished = h_pg_long(pg, "SELECT count(*) FROM call_events_outbox", 0, NULL)) > 0 &&
           ob_mono_ms() < deadline)
        h_sleep_ms(200);
    cr_expect_eq(unpublished, 0, "events never published");
    char *subjects = NULL, *event_ids = NULL;
    completed_on_topic(&subjects, &event_ids);
    const char *topic[] = {id_array, subjects, event_ids};
    char *on_topic =
        h_pg_value(pg,
                   "SELECT string_agg(c || ': ' || n, ', ') FROM ("
                   "  SELECT u.c, (SELECT count(DISTINCT t.id) FROM"
                   "   unnest($2::uuid[], $3::uuid[]) AS t(subject, id) WHERE t.subject = u.c)"
                   "  AS n FROM unnest($1::uuid[]) AS u(c)) x WHERE n <> 1",
                   3, topic);
    cr_expect_null(on_topic, "calls without exactly one completed event on the topic: %.2000s",
                   on_topic);
    free(on_topic);
    cr_expect_eq(
        h_pg_long(pg,
                  "SELECT count(*) FROM unnest($1::uuid[]) AS t(id)"
                  " WHERE NOT EXISTS (SELECT 1 FROM call_events e WHERE e.event_id = t.id)",
                  1, (const char *[]){event_ids}),
        0, "completed events on the topic that Postgres does not know");

    /* The killed scheduler's deployment was taken over: it released calls
     * after the kill. */
    const char *after[] = {a.deployment_id, killed_at};
    cr_expect_gt(h_pg_long(pg,
                           "SELECT count(*) FROM attempts WHERE deployment_id = $1"
                           " AND released_at > $2::timestamptz",
                           2, after),
                 0, "nothing of deployment a was released after the kill");

    cr_expect(h_stack_down(&s));
    free(subjects);
    free(event_ids);
    free(source);
    free(killed_at);
    free(id_array);
    free(expected_array);
}

Test(failover, a_paused_deployment_releases_nothing_and_cancel_wins, .timeout = 120,
     .fini = teardown)
{
    const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=50", NULL};
    h_tenant_t t;
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t api = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    h_resp_t r = h_deployment_api(&api, "POST", ":pause", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    char *ids = NULL, *expected = NULL;
    int n = 0;
    queue_mix(&api, 30, &ids, &expected, &n);
    char *id_array = ob_xasprintf("{%s}", ids);
    free(ids);
    free(expected);

    /* Recorded, due, and for two seconds (twenty release passes) not
     * released: absence needs a wait. */
    const char *all[] = {id_array};
    static const char QUEUED_SQL[] =
        "SELECT count(*) FROM calls WHERE call_id = ANY($1::uuid[]) AND state = 'queued'"
        " AND next_attempt_at <= now()";
    cr_assert_eq(wait_at_least(QUEUED_SQL, 1, all, n, 30000), n, "calls not recorded");
    static const char ATTEMPTS_SQL[] =
        "SELECT count(*) FROM attempts WHERE call_id = ANY($1::uuid[])";
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(h_pg_long(pg, ATTEMPTS_SQL, 1, all), 0, "a paused deployment released a call");
        h_sleep_ms(100);
    }

    /* Cancel, then resume at once: the cancellation covers every call
     * accepted before it, so none of them may be dialed. */
    r = h_deployment_api(&api, "POST", ":cancel", NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&api, "POST", ":resume", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    cr_assert_eq(wait_at_least("SELECT count(*) FROM calls WHERE call_id = ANY($1::uuid[])"
                               " AND state = 'completed'",
                               1, all, n, 30000),
                 n, "cancelled calls did not end");
    char *wrong = h_pg_value(pg,
                             "SELECT count(*) || ': ' || string_agg(call_id || ' ' || status || '/'"
                             " || result || '/' || reason || '/' || attempts_made, ', ')"
                             " FROM calls WHERE call_id = ANY($1::uuid[])"
                             " AND (status, result, reason) IS DISTINCT FROM"
                             " ('uncalled', 'noattempt', 'cancelled') HAVING count(*) > 0",
                             1, all);
    cr_expect_null(wrong, "cancelled calls that did not end uncalled/noattempt/cancelled: %s",
                   wrong);
    free(wrong);
    cr_expect_eq(h_pg_long(pg,
                           "SELECT count(*) FROM attempts WHERE call_id = ANY($1::uuid[])"
                           " AND dialing_at IS NOT NULL",
                           1, all),
                 0, "a cancelled call was dialed");
    cr_expect_eq(h_pg_long(pg,
                           "SELECT count(*) FROM call_events WHERE call_id = ANY($1::uuid[])"
                           " AND type = 'outbound.call.dialing'",
                           1, all),
                 0, "a cancelled call has a dialing event");

    /* The resumed queue dials what comes after the cancellation. */
    char *later = h_queue_json(&api, "{\"phone_number\": \"+12125550100\"}");
    char *body = h_wait_completed(&api, later, 30000);
    cr_assert_not_null(body, "a call queued after resume never ended");
    char *status = h_json_path(body, "status");
    cr_expect_str_eq(status, "completed", "%s", body);
    free(status);
    free(body);
    free(later);

    cr_expect(h_stack_down(&s));
    free(id_array);
}
