/*
 * Releasing dial jobs. For each deployment of an owned partition with due
 * calls and free capacity, its first due calls are read; a campaign window
 * sends those outside it to their next opening (or ends them, when it opens
 * too late for them), and up to the free capacity of the rest, and no more
 * than the live dialers' free channels, are released in one transaction:
 * SKIP LOCKED, the attempt marked active, the attempt row inserted naming its
 * job_id and the dial-jobs partition of the dialer it is routed to. Only
 * after the commit are the jobs produced (the attempt row is the job's
 * outbox): a job is never seen by a dialer before its attempt exists, and a
 * job lost to a crash or a broker error is produced again by the relay
 * pass. Duplicates are harmless, since a dialer starts an attempt only while
 * it is still 'released'. The same pass expires calls and concludes attempts
 * whose lease ran out.
 */
#include "ob_calls.h"
#include "ob_phone_tz.h"
#include "ob_window.h"
#include "scheduler_fair.h"
#include "scheduler_route.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_signal.h"
#include "ob_proto.h"
#include "scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deployments with due calls in the owned partitions ($1) at the
 * scheduler's time ($2, Unix ms): free capacity, campaign window, capacity
 * (the weight of its fair share), account, the account's free capacity
 * (NULL: no account-wide limit) and how many more its calls_per_second
 * allows now (NULL: not paced). */
static const char DUE_SQL[] =
    "SELECT d.deployment_id, d.capacity - (SELECT count(*) FROM calls f"
    "   WHERE f.deployment_id = d.deployment_id AND f.active_attempt IS NOT NULL),"
    " d.campaign_window::text, d.capacity, d.account_id,"
    " CASE WHEN a.capacity IS NOT NULL THEN a.capacity - (SELECT count(*) FROM calls f"
    "   WHERE f.account_id = d.account_id AND f.active_attempt IS NOT NULL) END,"
    " CASE WHEN d.calls_per_second IS NOT NULL THEN"
    "   floor(d.calls_per_second * greatest(1, 1 / d.calls_per_second))::int"
    "   - (SELECT count(*) FROM attempts r WHERE r.deployment_id = d.deployment_id"
    "   AND r.released_at > to_timestamp($2::bigint / 1000.0)"
    "    - make_interval(secs => greatest(1, 1 / d.calls_per_second)::float8)) END"
    " FROM deployments d JOIN accounts a ON a.account_id = d.account_id"
    " WHERE NOT d.paused AND EXISTS ("
    "   SELECT 1 FROM calls c WHERE c.deployment_id = d.deployment_id"
    "   AND c.state = 'queued' AND c.active_attempt IS NULL"
    "   AND c.next_attempt_at <= to_timestamp($2::bigint / 1000.0)"
    "   AND c.request_partition = ANY($1::int[]))"
    " ORDER BY d.account_id, d.deployment_id";

/* A deployment's due calls, first to be dialed first: $1 deployment, $2
 * now (Unix ms), $3 how many. */
static const char CANDIDATES_SQL[] =
    "SELECT call_id, phone_number,"
    " coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0)"
    " FROM calls WHERE deployment_id = $1 AND state = 'queued' AND active_attempt IS NULL"
    " AND next_attempt_at <= to_timestamp($2::bigint / 1000.0)"
    " AND accepted_at > coalesce((SELECT cancel_before FROM deployments"
    "  WHERE deployment_id = $1), '-infinity')"
    " AND (expires_at IS NULL OR expires_at > to_timestamp($2::bigint / 1000.0))"
    " AND attempts_made < max_attempts"
    " ORDER BY priority DESC, next_attempt_at, call_id LIMIT $3::int";

/* Releases the calls $1 (still due at $3, Unix ms; those that changed
 * meanwhile are skipped, and all of a deployment paused since the pass read
 * it): marks their attempt active and inserts the
 * attempt rows, leased for $2 seconds but no later than the real Unix ms at
 * the same place in $5 (0: no limit), each routed to the dial-jobs
 * partition at the same place in $4. A dialer does not start an attempt
 * whose lease ran out, so a job that reaches it after its campaign window
 * closed is never dialed: the lease pass withdraws it, uncounted, and the
 * call waits for the next opening. Returns the dial jobs, as the JOBS_*
 * queries do. One statement, so one transaction; its commit does not wait
 * for the WAL flush: if Postgres loses it, the jobs already sent are refused
 * by the dialers (their attempts do not exist) and the calls, still queued,
 * are released again. The calls are found by primary key whatever the
 * statistics say: the guards are wrapped in IS TRUE so that the planner
 * cannot take calls_pending for the lookup, which it did once the due
 * backlog was analyzed and then read every due call of the backlog for
 * each batch (make bench end to end: 270 us of Postgres time per released
 * call instead of 67; see DIALING_SQL in dialer_worker.c). */
static const char RELEASE_SQL[] =
    "WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),"
    " routes AS (SELECT * FROM unnest($1::uuid[], $4::int[], $5::bigint[])"
    "  AS r(call_id, part, dial_by)),"
    " picked AS ("
    "  SELECT call_id FROM calls, async"
    "  WHERE call_id = ANY($1::uuid[]) AND (state = 'queued' AND active_attempt IS NULL"
    "  AND (SELECT NOT d.paused AND calls.accepted_at > coalesce(d.cancel_before, '-infinity')"
    "   FROM deployments d WHERE d.deployment_id = calls.deployment_id)"
    "  AND next_attempt_at <= to_timestamp($3::bigint / 1000.0)"
    "  AND (expires_at IS NULL OR expires_at > to_timestamp($3::bigint / 1000.0))"
    "  AND attempts_made < max_attempts) IS TRUE AND async.v = 'off'"
    "  ORDER BY call_id FOR UPDATE OF calls SKIP LOCKED),"
    " upd AS ("
    "  UPDATE calls c SET active_attempt = c.attempts_made + 1,"
    "   attempts_made = c.attempts_made + 1, waiting_for = NULL, updated_at = now()"
    "  FROM picked WHERE c.call_id = picked.call_id"
    "  RETURNING c.call_id, c.deployment_id, c.active_attempt),"
    " ins AS ("
    "  INSERT INTO attempts (call_id, attempt, deployment_id, job_id, released_at, lease_until,"
    "   job_partition)"
    "  SELECT upd.call_id, upd.active_attempt, upd.deployment_id, gen_random_uuid(),"
    "   to_timestamp($3::bigint / 1000.0), least(now() + make_interval(secs => $2::int),"
    "   to_timestamp(nullif(routes.dial_by, 0) / 1000.0)), routes.part"
    "  FROM upd JOIN routes USING (call_id)"
    "  RETURNING call_id, attempt, job_id, lease_until, job_partition)"
    " SELECT c.call_id, c.deployment_id, c.account_id, ins.attempt, c.phone_number, c.caller_id,"
    " c.post_dial, c.message_reference, c.call_parameters::text, c.max_attempts,"
    " c.retry_interval_s, ins.job_id, (extract(epoch FROM ins.lease_until) * 1000)::bigint,"
    " coalesce(d.start_url, ap.start_url), ins.job_partition, d.detection::text,"
    " coalesce(c.app, d.app)::text"
    " FROM ins JOIN calls c USING (call_id)"
    " JOIN deployments d ON d.deployment_id = c.deployment_id"
    " JOIN applications ap ON ap.application_id = d.application_id";

/* Scheduled calls of the owned partitions ($1) not due yet at $2 (Unix ms)
 * whose next attempt time was not checked against their window (calls
 * without one are marked checked too, so they are read once). */
static const char UNCHECKED_SQL[] =
    "SELECT c.call_id, c.phone_number,"
    " coalesce((extract(epoch FROM c.expires_at) * 1000)::bigint, 0),"
    " (extract(epoch FROM c.next_attempt_at) * 1000)::bigint, d.campaign_window::text"
    " FROM calls c JOIN deployments d USING (deployment_id)"
    " WHERE c.request_partition = ANY($1::int[]) AND c.state = 'queued'"
    " AND c.active_attempt IS NULL AND c.window_checked IS DISTINCT FROM c.next_attempt_at"
    " AND c.next_attempt_at > to_timestamp($2::bigint / 1000.0) LIMIT 2000";

/* Records that the calls $1 were checked at their next attempt time $2. */
static const char CHECKED_SQL[] = "UPDATE calls c SET window_checked = c.next_attempt_at"
                                  " FROM unnest($1::uuid[], $2::bigint[]) AS d(call_id, at)"
                                  " WHERE c.call_id = d.call_id"
                                  " AND c.next_attempt_at = to_timestamp(d.at / 1000.0)";

/* Moves the calls $1 to the next opening of their window, $2 (Unix ms). */
static const char DEFER_SQL[] =
    "UPDATE calls c SET next_attempt_at = to_timestamp(d.at / 1000.0), waiting_for = 'window',"
    " window_checked = to_timestamp(d.at / 1000.0), updated_at = now()"
    " FROM unnest($1::uuid[], $2::bigint[]) AS d(call_id, at)"
    " WHERE c.call_id = d.call_id AND c.state = 'queued' AND c.active_attempt IS NULL";

/* A dialer that has not announced itself for this long is taken for dead. */
#define ROUTE_STALE_MS 5000

/* Dial jobs a crash or a broker error left unpublished ($1: owned partitions). */
static const char JOBS_UNPUBLISHED_SQL[] =
    "SELECT call_id, deployment_id, account_id, attempt, phone_number, caller_id, post_dial,"
    " message_reference, call_parameters, max_attempts, retry_interval_s, job_id,"
    " lease_until_ms, start_url, job_partition, detection, app FROM dial_jobs"
    " WHERE state = 'released' AND job_published_at IS NULL"
    " AND released_at < now() - interval '5 seconds' AND request_partition = ANY($1::int[])"
    " ORDER BY released_at LIMIT 1000";

/* Calls whose expiry came before they could be dialed end now. */
static const char EXPIRE_SQL[] =
    "SELECT * FROM expire_pending($1::int[], to_timestamp($2::bigint / 1000.0))";

static void expire_calls(scheduler_ctx_t *ctx, const char *owned, const char *now)
{
    ob_err_t err = {{0}};
    const char *params[] = {owned, now};
    int n = 0;
    if (ob_calls_end(ctx->pg, ctx->producer, ctx->topic_events, ctx->source, OB_REASON_EXPIRED,
                     EXPIRE_SQL, 2, params, &n, &err) != OB_OK)
        OB_WARN("release", "expiry pass: %s", err.msg);
    if (n > 0) {
        ob_metric_add(&ctx->metrics[M_EXPIRED], n);
        OB_INFO("release", "%d call(s) expired before they could be dialed", n);
    }
}

/* Attempts of the owned partitions whose lease ran out. */
static const char EXPIRED_LEASES_SQL[] =
    "SELECT a.call_id, a.attempt, a.state FROM attempts a JOIN calls c USING (call_id)"
    " WHERE a.state IN ('released', 'dialing', 'connected') AND a.lease_until < now()"
    " AND c.request_partition = ANY($1::int[]) ORDER BY a.lease_until LIMIT 500";

/* A job no dialer took in time: the attempt never happened, so its row goes
 * (a late dialer's guard on it then matches nothing) and the call waits for
 * the next release as if it had not been released. The call row is locked
 * first, as everywhere else, so this cannot deadlock with a dialer. */
static const char UNRELEASE_SQL[] =
    "WITH locked AS (SELECT call_id FROM calls WHERE call_id = $1 AND active_attempt = $2::int"
    "  AND state = 'queued' FOR UPDATE),"
    " gone AS (DELETE FROM attempts a USING locked WHERE a.call_id = locked.call_id"
    "  AND a.attempt = $2::int AND a.state = 'released' RETURNING a.call_id, a.attempt)"
    " UPDATE calls c SET active_attempt = NULL, attempts_made = c.attempts_made - 1,"
    "  updated_at = now() FROM gone"
    " WHERE c.call_id = gone.call_id AND c.active_attempt = gone.attempt AND c.state = 'queued'";

/*
 * Concludes the attempts whose lease expired, from what Postgres says of
 * them: never taken (released) -> not counted, released again; dialing (the
 * dialer died before an answer) -> linefailure, an attempt, then the call's
 * retry rules; connected (it died mid-call) -> answered, result unknown.
 */
static void conclude_expired_leases(scheduler_ctx_t *ctx, const char *owned)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {owned};
    if (ob_pg_exec(ctx->pg, EXPIRED_LEASES_SQL, 1, params, &res, &err) != OB_OK) {
        OB_WARN("release", "expired leases: %s", err.msg);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *call_id = PQgetvalue(res, i, 0), *attempt = PQgetvalue(res, i, 1);
        const char *state = PQgetvalue(res, i, 2);
        bool connected = strcmp(state, "connected") == 0;
        ob_rc_t rc;
        if (strcmp(state, "released") == 0) {
            const char *p[] = {call_id, attempt};
            rc = ob_pg_exec(ctx->pg, UNRELEASE_SQL, 2, p, NULL, &err);
        } else {
            ob_attempt_end_t end = {
                .call_id = call_id,
                .attempt = atoi(attempt),
                .result = connected ? OB_RESULT_UNKNOWN : OB_RESULT_LINEFAILURE,
                .reason = OB_REASON_LEASE_EXPIRED,
                .answered = connected,
                .decision_ms = -1,
            };
            rc = ob_calls_conclude(ctx->pg, ctx->producer, ctx->topic_events, ctx->source, &end,
                                   &err);
        }
        if (rc == OB_OK) {
            ob_metric_add(&ctx->metrics[M_LEASES], 1);
            OB_LOG(OB_LOG_WARN, "release", OB_KV("call_id", call_id),
                   "lease of attempt %s (%s) expired: concluded by the scheduler", attempt, state);
        } else if (rc != OB_ECONFLICT) {
            OB_LOG(OB_LOG_WARN, "release", OB_KV("call_id", call_id),
                   "expired lease of attempt %s not concluded, will retry: %s", attempt, err.msg);
        }
    }
    PQclear(res);
}

/* Encodes row i of a JOBS_*_SQL answer as a dial job. */
static char *job_from_row(PGresult *res, int i)
{
    ob_dial_job_t job = {
        .call_id = PQgetvalue(res, i, 0),
        .deployment_id = PQgetvalue(res, i, 1),
        .account_id = PQgetvalue(res, i, 2),
        .attempt = atoi(PQgetvalue(res, i, 3)),
        .phone_number = PQgetvalue(res, i, 4),
        .caller_id = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
        .post_dial = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
        .message_reference = PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7),
        .call_parameters = PQgetvalue(res, i, 8),
        .max_attempts = atoi(PQgetvalue(res, i, 9)),
        .retry_interval_s = atoi(PQgetvalue(res, i, 10)),
        .job_id = PQgetvalue(res, i, 11),
        .lease_until_ms = strtoll(PQgetvalue(res, i, 12), NULL, 10),
        .start_url = PQgetisnull(res, i, 13) ? NULL : PQgetvalue(res, i, 13),
        .detection = PQgetisnull(res, i, 15) ? NULL : PQgetvalue(res, i, 15),
        .app = PQgetisnull(res, i, 16) ? NULL : PQgetvalue(res, i, 16),
    };
    return ob_dial_job_encode(&job);
}

/* Postgres array literal of ids: "{a,b,c}" (caller frees). */
static char *id_array(char *const *ids, int n)
{
    size_t cap = 3, o = 0;
    for (int i = 0; i < n; i++)
        cap += strlen(ids[i]) + 1;
    char *s = ob_xmalloc(cap);
    s[o++] = '{';
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? "," : "", ids[i]);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* Postgres array literal of column c of every row: "{a,b,c}" (caller frees). */
static char *column_array(PGresult *res, int c)
{
    int n = PQntuples(res);
    char **values = ob_xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++)
        values[i] = PQgetvalue(res, i, c);
    char *s = id_array(values, n);
    free(values);
    return s;
}

/* Produces the dial jobs of res (rows as JOBS_UNPUBLISHED_SQL returns them),
 * waits for the broker and marks them published. Returns how many were
 * acknowledged. */
static int publish_rows(scheduler_ctx_t *ctx, PGconn *conn, PGresult *res)
{
    ob_err_t err = {{0}};
    ob_rc_t rc = OB_OK;
    int n = PQntuples(res);
    if (n == 0)
        return 0;
    ob_produce_batch_t *batch = ob_produce_batch_new();
    for (int i = 0; i < n && rc == OB_OK; i++) {
        char *text = job_from_row(res, i);
        /* To the partition of the dialer it was routed to (keyed by call if
         * it was released before routing). */
        int32_t partition =
            PQgetisnull(res, i, 14) ? RD_KAFKA_PARTITION_UA : atoi(PQgetvalue(res, i, 14));
        rc = ob_produce_batch_add_to(ctx->producer, batch, ctx->topic_jobs, partition,
                                     PQgetvalue(res, i, 0), text, strlen(text), 5000, &err);
        free(text);
    }
    ob_err_t wait_err = {{0}};
    ob_rc_t wrc = ob_produce_batch_wait(batch, 30000, &wait_err);
    if (rc == OB_OK && wrc != OB_OK) {
        rc = wrc;
        ob_err_set(&err, "%s", wait_err.msg);
    }
    if (rc == OB_OK) {
        char *ids = column_array(res, 11);
        const char *mark[] = {ids};
        /* Not waiting for the flush: a mark lost to a crash only makes the
         * relay send the job again, which its dialer then refuses. Attempts
         * a dialer holds are skipped, not waited for: it already took the
         * job and marks it itself (dialer_worker.c), and waiting for its
         * batch held this pass up for the length of that transaction. */
        rc = ob_pg_exec(conn,
                        "WITH s AS (SELECT set_config('synchronous_commit', 'off', true)),"
                        " t AS (SELECT a.call_id, a.attempt FROM attempts a"
                        "  WHERE a.job_id = ANY($1::uuid[]) AND a.job_published_at IS NULL"
                        "  FOR UPDATE SKIP LOCKED)"
                        " UPDATE attempts SET job_published_at = now() FROM s, t"
                        " WHERE attempts.call_id = t.call_id AND attempts.attempt = t.attempt",
                        1, mark, NULL, &err);
        free(ids);
    }
    if (rc != OB_OK) {
        OB_WARN("release", "dial jobs left for the relay: %s", err.msg);
        n = 0;
    }
    return n;
}

/* Produces the jobs that sql (with one parameter) selects; see publish_rows. */
static int publish_jobs(scheduler_ctx_t *ctx, const char *sql, const char *param)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {param};
    int n = 0;
    if (ob_pg_exec(ctx->pg, sql, 1, params, &res, &err) == OB_OK)
        n = publish_rows(ctx, ctx->pg, res);
    else
        OB_WARN("release", "dial jobs to relay not read: %s", err.msg);
    PQclear(res);
    return n;
}

/*
 * Parsed campaign windows, by their JSON text (a deployment's window is
 * parsed once, not on every pass). Bounded: emptied when full.
 */
#define WINDOW_BUCKETS 1024
#define WINDOW_MAX     4096

typedef struct window_entry {
    struct window_entry *next;
    char *text;
    ob_window_t *window; /* NULL: the text did not parse (logged once) */
} window_entry_t;

struct window_cache {
    window_entry_t *buckets[WINDOW_BUCKETS];
    int count;
};

void scheduler_windows_free(scheduler_ctx_t *ctx)
{
    struct window_cache *c = ctx->windows;
    if (!c)
        return;
    for (int i = 0; i < WINDOW_BUCKETS; i++) {
        for (window_entry_t *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            ob_window_free(e->window);
            free(e->text);
            free(e);
        }
    }
    free(c);
    ctx->windows = NULL;
}

const ob_window_t *scheduler_window_for(scheduler_ctx_t *ctx, const char *text, bool *bad)
{
    uint32_t h = 2166136261u;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    if (!ctx->windows || ctx->windows->count >= WINDOW_MAX) {
        scheduler_windows_free(ctx);
        ctx->windows = ob_xcalloc(1, sizeof(*ctx->windows));
    }
    window_entry_t **bucket = &ctx->windows->buckets[h % WINDOW_BUCKETS];
    for (window_entry_t *e = *bucket; e; e = e->next) {
        if (strcmp(e->text, text) == 0) {
            *bad = e->window == NULL;
            return e->window;
        }
    }
    window_entry_t *e = ob_xcalloc(1, sizeof(*e));
    ob_err_t err = {{0}};
    e->text = ob_xstrdup(text);
    if (ob_window_parse(text, &e->window, &err) != OB_OK)
        OB_ERROR("release", "a deployment's campaign_window does not parse; its calls wait: %s",
                 err.msg);
    e->next = *bucket;
    *bucket = e;
    ctx->windows->count++;
    *bad = e->window == NULL;
    return e->window;
}

/* What to do with each candidate call of a deployment. */
typedef struct {
    char **release;      /* call ids to release now */
    int64_t *release_by; /* and when their window closes (scheduler ms; 0: never) */
    int nrelease;        /* entries in release */
    char **defer;        /* call ids whose window is closed now */
    char **defer_at;     /* and the Unix ms it opens, as text */
    int ndefer;          /* entries in defer */
    char **closed;       /* call ids no window opens for before expiry */
    int nclosed;         /* entries in closed */
} plan_t;

/* Decides, for each candidate row of CANDIDATES_SQL, release, defer or end. */
static void plan_calls(const ob_window_t *w, PGresult *res, long free_slots, int64_t now,
                       plan_t *plan)
{
    int n = PQntuples(res);
    bool callee = ob_window_uses_callee_zone(w);
    plan->release = ob_xcalloc((size_t)n + 1, sizeof(char *));
    plan->release_by = ob_xcalloc((size_t)n + 1, sizeof(int64_t));
    plan->defer = ob_xcalloc((size_t)n + 1, sizeof(char *));
    plan->defer_at = ob_xcalloc((size_t)n + 1, sizeof(char *));
    plan->closed = ob_xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n && plan->nrelease < free_slots; i++) {
        char *call_id = PQgetvalue(res, i, 0);
        const char *zones[OB_PHONE_TZ_MAX];
        size_t nzones =
            callee ? ob_phone_tz_lookup(PQgetvalue(res, i, 1), zones, OB_PHONE_TZ_MAX) : 0;
        if (nzones > OB_PHONE_TZ_MAX)
            nzones = OB_PHONE_TZ_MAX;
        int64_t expires = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        int64_t opens = ob_window_next_open(w, zones, nzones, now);
        if (opens == now) {
            int64_t closes = w ? ob_window_next_close(w, zones, nzones, now) : -1;
            plan->release_by[plan->nrelease] = closes > 0 ? closes : 0;
            plan->release[plan->nrelease++] = call_id;
        } else if (opens < 0 || (expires && opens >= expires)) {
            plan->closed[plan->nclosed++] = call_id;
        } else {
            plan->defer[plan->ndefer] = call_id;
            plan->defer_at[plan->ndefer++] = ob_xasprintf("%lld", (long long)opens);
        }
    }
}

static void plan_free(plan_t *plan)
{
    for (int i = 0; i < plan->ndefer; i++)
        free(plan->defer_at[i]);
    free(plan->release);
    free(plan->release_by);
    free(plan->defer);
    free(plan->defer_at);
    free(plan->closed);
}

/* Moves the deferred calls to their window's next opening. */
static void defer_calls(scheduler_ctx_t *ctx, const char *deployment_id, const plan_t *plan)
{
    ob_err_t err = {{0}};
    char *ids = id_array(plan->defer, plan->ndefer);
    char *ats = id_array(plan->defer_at, plan->ndefer);
    const char *params[] = {ids, ats};
    if (ob_pg_exec(ctx->pg, DEFER_SQL, 2, params, NULL, &err) == OB_OK)
        ob_metric_add(&ctx->metrics[M_DEFERRED], plan->ndefer);
    else
        OB_LOG(OB_LOG_WARN, "release", OB_KV("deployment_id", deployment_id),
               "calls outside their window not deferred, will retry: %s", err.msg);
    free(ids);
    free(ats);
}

/* Ends the calls no window opens for before their expiry. */
static void end_closed_calls(scheduler_ctx_t *ctx, const char *deployment_id, const plan_t *plan)
{
    ob_err_t err = {{0}};
    int n = 0;
    char *ids = id_array(plan->closed, plan->nclosed);
    const char *params[] = {ids};
    if (ob_calls_end(ctx->pg, ctx->producer, ctx->topic_events, ctx->source,
                     OB_REASON_WINDOW_CLOSED, "SELECT * FROM end_window_closed($1::uuid[])", 1,
                     params, &n, &err) == OB_OK)
        ob_metric_add(&ctx->metrics[M_WINDOW_CLOSED], n);
    else
        OB_LOG(OB_LOG_WARN, "release", OB_KV("deployment_id", deployment_id),
               "calls without a window before expiry not ended, will retry: %s", err.msg);
    free(ids);
}

/*
 * The calls a pass decided to release, across deployments: released in one
 * transaction per RELEASE_BATCH calls rather than one per deployment.
 */
#define RELEASE_BATCH 2000

typedef struct {
    char **ids;   /* call ids (copies) */
    char **parts; /* their dial-jobs partitions, as text */
    char **by;    /* real Unix ms by which they must be dialed, as text ("0": any time) */
    int n, cap;
} release_buf_t;

/* Part of a buffer, released and published on its own connection. */
typedef struct {
    scheduler_ctx_t *ctx;
    PGconn *conn;
    char *ids, *routes, *by; /* array literals */
    const char *lease, *now;
    int n;         /* calls in this part */
    PGresult *res; /* the dial jobs */
    ob_rc_t rc;
    ob_err_t err;
} release_part_t;

static void *release_part(void *arg)
{
    release_part_t *p = arg;
    const char *params[] = {p->ids, p->lease, p->now, p->routes, p->by};
    int64_t started_us = ob_mono_us();
    p->rc = ob_pg_exec(p->conn, RELEASE_SQL, 5, params, &p->res, &p->err);
    if (p->rc == OB_OK) {
        ob_pg_write_observe(p->ctx->pg_writes, "release_jobs", started_us);
        ob_metric_add(&p->ctx->metrics[M_RELEASED], PQntuples(p->res));
        publish_rows(p->ctx, p->conn, p->res);
    }
    return NULL;
}

/*
 * Releases the buffered calls and publishes their jobs. A large buffer is
 * released and published in two halves at once, on the scheduler's two
 * connections: Postgres does the work of a release, so that uses both cores.
 * The attempts' released_at is the scheduler's time now, not the pass's
 * start: a pass that began while the queue was paused and released after
 * its resume (the expiry and lease passes before took 1.2 s under the hour's
 * soak) stamped its releases inside the pause.
 */
static void release_flush(scheduler_ctx_t *ctx, release_buf_t *buf)
{
    char lease[16], now[24];
    release_part_t parts[2];
    pthread_t helper;
    ob_err_t err = {{0}};
    if (buf->n == 0)
        return;
    snprintf(lease, sizeof(lease), "%lld", ctx->cfg->lease_s);
    snprintf(now, sizeof(now), "%lld", (long long)scheduler_now_ms(ctx));
    int nparts = 1;
    if (buf->n >= 200 && ob_pg_ensure(&ctx->pg2, ctx->cfg->base.pg_dsn, &err) == OB_OK)
        nparts = 2;
    int from = 0;
    for (int k = 0; k < nparts; k++) {
        release_part_t *p = &parts[k];
        int to = k == nparts - 1 ? buf->n : buf->n / 2;
        *p = (release_part_t){
            .ctx = ctx, .conn = k ? ctx->pg2 : ctx->pg, .lease = lease, .now = now};
        p->n = to - from;
        p->ids = id_array(buf->ids + from, p->n);
        p->routes = id_array(buf->parts + from, p->n);
        p->by = id_array(buf->by + from, p->n);
        from = to;
    }
    bool threaded = nparts == 2 && pthread_create(&helper, NULL, release_part, &parts[1]) == 0;
    release_part(&parts[0]);
    if (threaded)
        pthread_join(helper, NULL);
    else if (nparts == 2)
        release_part(&parts[1]);
    for (int k = 0; k < nparts; k++) {
        release_part_t *p = &parts[k];
        if (p->rc != OB_OK)
            OB_WARN("release", "releasing %d call(s) failed, will retry: %s", p->n, p->err.msg);
        PQclear(p->res);
        free(p->ids);
        free(p->routes);
        free(p->by);
    }
    for (int i = 0; i < buf->n; i++) {
        free(buf->ids[i]);
        free(buf->parts[i]);
        free(buf->by[i]);
    }
    buf->n = 0;
}

/* Adds the planned calls, each routed to a dialer, flushing when full. */
static void release_add(scheduler_ctx_t *ctx, release_buf_t *buf, const plan_t *plan)
{
    for (int i = 0; i < plan->nrelease; i++) {
        if (buf->n == buf->cap) {
            buf->cap = buf->cap ? buf->cap * 2 : 256;
            buf->ids = ob_xrealloc(buf->ids, (size_t)buf->cap * sizeof(char *));
            buf->parts = ob_xrealloc(buf->parts, (size_t)buf->cap * sizeof(char *));
            buf->by = ob_xrealloc(buf->by, (size_t)buf->cap * sizeof(char *));
        }
        /* The window's close, from the scheduler's clock to real time. A
         * test clock that runs faster than the dialers (they keep real
         * time) leaves them no time to dial: windows then hold at release
         * only. */
        int64_t by = ctx->cfg->clock_scale == 1 ? plan->release_by[i] : 0;
        if (by > 0)
            by = scheduler_real_ms(ctx, by);
        buf->by[buf->n] = ob_xasprintf("%lld", (long long)by);
        buf->ids[buf->n] = ob_xstrdup(plan->release[i]);
        buf->parts[buf->n++] = ob_xasprintf("%d", scheduler_route_pick(ctx->route));
        if (buf->n >= RELEASE_BATCH)
            release_flush(ctx, buf);
    }
}

/*
 * One deployment's turn: its first due calls are read; with a campaign
 * window, those outside it are moved to its next opening (or ended, when it
 * does not open before they expire); up to free_slots of the rest go to
 * the pass's release buffer. Returns how many.
 */
static int release_deployment(scheduler_ctx_t *ctx, release_buf_t *buf, const char *deployment_id,
                              long free_slots, const char *window_text, int64_t now_ms,
                              const char *now)
{
    char limit[16];
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    bool bad = false;
    const ob_window_t *w = window_text ? scheduler_window_for(ctx, window_text, &bad) : NULL;
    plan_t plan = {0};
    int released = 0;

    if (bad || free_slots <= 0)
        return 0;
    /* Without a window every candidate goes; with one, read further, since
     * some may have to wait. */
    long long want = w ? ctx->cfg->release_max : free_slots;
    snprintf(limit, sizeof(limit), "%lld",
             want < ctx->cfg->release_max ? want : ctx->cfg->release_max);
    const char *params[] = {deployment_id, now, limit};
    if (ob_pg_exec(ctx->pg, CANDIDATES_SQL, 3, params, &res, &err) != OB_OK) {
        OB_LOG(OB_LOG_WARN, "release", OB_KV("deployment_id", deployment_id),
               "due calls not read, will retry: %s", err.msg);
        return 0;
    }
    plan_calls(w, res, free_slots, now_ms, &plan);
    if (plan.ndefer > 0)
        defer_calls(ctx, deployment_id, &plan);
    if (plan.nclosed > 0)
        end_closed_calls(ctx, deployment_id, &plan);
    release_add(ctx, buf, &plan);
    released = plan.nrelease;
    plan_free(&plan);
    PQclear(res);
    return released;
}

void scheduler_precheck_windows(scheduler_ctx_t *ctx)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    char now[24];
    if (ctx->owned_count == 0)
        return;
    snprintf(now, sizeof(now), "%lld", (long long)scheduler_now_ms(ctx));
    char *owned = scheduler_owned_array(ctx);
    const char *params[] = {owned, now};
    if (ob_pg_exec(ctx->pg, UNCHECKED_SQL, 2, params, &res, &err) != OB_OK) {
        OB_WARN("release", "scheduled calls not checked against their window: %s", err.msg);
        free(owned);
        return;
    }
    int n = PQntuples(res);
    plan_t plan = {0};
    char **ok = ob_xcalloc((size_t)n + 1, sizeof(char *)),
         **ok_at = ob_xcalloc((size_t)n + 1, sizeof(char *));
    int nok = 0;
    plan.defer = ob_xcalloc((size_t)n + 1, sizeof(char *));
    plan.defer_at = ob_xcalloc((size_t)n + 1, sizeof(char *));
    plan.closed = ob_xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        bool bad = false;
        const ob_window_t *w =
            PQgetisnull(res, i, 4) ? NULL : scheduler_window_for(ctx, PQgetvalue(res, i, 4), &bad);
        if (bad)
            continue;
        const char *zones[OB_PHONE_TZ_MAX];
        size_t nzones = ob_window_uses_callee_zone(w)
                            ? ob_phone_tz_lookup(PQgetvalue(res, i, 1), zones, OB_PHONE_TZ_MAX)
                            : 0;
        if (nzones > OB_PHONE_TZ_MAX)
            nzones = OB_PHONE_TZ_MAX;
        int64_t expires = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        int64_t due = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        int64_t opens = ob_window_next_open(w, zones, nzones, due);
        char *call_id = PQgetvalue(res, i, 0);
        if (opens < 0 || (expires && opens >= expires)) {
            plan.closed[plan.nclosed++] = call_id;
        } else if (opens > due) {
            plan.defer[plan.ndefer] = call_id;
            plan.defer_at[plan.ndefer++] = ob_xasprintf("%lld", (long long)opens);
        } else {
            ok[nok] = call_id;
            ok_at[nok++] = PQgetvalue(res, i, 3);
        }
    }
    if (plan.ndefer > 0)
        defer_calls(ctx, "(scheduled)", &plan);
    if (plan.nclosed > 0)
        end_closed_calls(ctx, "(scheduled)", &plan);
    if (nok > 0) {
        char *ids = id_array(ok, nok), *ats = id_array(ok_at, nok);
        const char *p[] = {ids, ats};
        if (ob_pg_exec(ctx->pg, CHECKED_SQL, 2, p, NULL, &err) != OB_OK)
            OB_WARN("release", "window checks not recorded: %s", err.msg);
        free(ids);
        free(ats);
    }
    free(ok);
    free(ok_at);
    plan_free(&plan);
    PQclear(res);
    free(owned);
}

void scheduler_release_pass(scheduler_ctx_t *ctx)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    if (ctx->owned_count == 0)
        return;
    char *owned = scheduler_owned_array(ctx);
    char now[24];
    int64_t now_ms = scheduler_now_ms(ctx);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *params[] = {owned, now};

    expire_calls(ctx, owned, now);
    conclude_expired_leases(ctx, owned);
    int resent = publish_jobs(ctx, JOBS_UNPUBLISHED_SQL, owned);
    if (resent > 0)
        OB_INFO("release", "published %d dial job(s) left unpublished", resent);
    if (ob_pg_exec(ctx->pg, DUE_SQL, 2, params, &res, &err) != OB_OK) {
        ob_service_set_pg_up(&ctx->svc, false);
        OB_WARN("release", "due deployments: %s", err.msg);
        ob_rc_t unused = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
        (void)unused;
        goto out;
    }
    ob_service_set_pg_up(&ctx->svc, true);
    int n = PQntuples(res);
    if (n > 0 && scheduler_route_refresh(ctx->route, ctx->pg, ROUTE_STALE_MS, &err) != OB_OK)
        OB_WARN("release", "dialers not read, nothing released this pass: %s", err.msg);
    long *demand = ob_xcalloc((size_t)n + 1, sizeof(long));
    long *weight = ob_xcalloc((size_t)n + 1, sizeof(long));
    long *share = ob_xcalloc((size_t)n + 1, sizeof(long));
    for (int i = 0; i < n; i++) {
        demand[i] = atol(PQgetvalue(res, i, 1));
        /* Pacing: no more than its rate allows in the current window. */
        if (!PQgetisnull(res, i, 6) && atol(PQgetvalue(res, i, 6)) < demand[i])
            demand[i] = atol(PQgetvalue(res, i, 6));
        if (demand[i] < 0)
            demand[i] = 0;
        weight[i] = atol(PQgetvalue(res, i, 3));
    }
    /* The live dialers' free channels, shared fairly by capacity. */
    scheduler_fair_share(demand, weight, n, scheduler_route_free_channels(ctx->route),
                         (int)(ctx->passes++ % (n > 0 ? (unsigned)n : 1u)), share);
    release_buf_t buf = {0};
    long account_used = 0; /* released this pass for the account of row i (rows by account) */
    for (int i = 0; i < n && !ob_stop_requested; i++) {
        long slots = share[i];
        if (i > 0 && strcmp(PQgetvalue(res, i, 4), PQgetvalue(res, i - 1, 4)) != 0)
            account_used = 0;
        /* The account's own limit, spent as its deployments are served. */
        if (!PQgetisnull(res, i, 5) && slots > atol(PQgetvalue(res, i, 5)) - account_used)
            slots = atol(PQgetvalue(res, i, 5)) - account_used;
        if (slots > 0)
            account_used += release_deployment(
                ctx, &buf, PQgetvalue(res, i, 0), slots,
                PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), now_ms, now);
    }
    release_flush(ctx, &buf);
    free(buf.ids);
    free(buf.parts);
    free(buf.by);
    free(demand);
    free(weight);
    free(share);
out:
    PQclear(res);
    free(owned);
}
