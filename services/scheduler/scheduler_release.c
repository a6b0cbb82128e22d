/*
 * Releasing dial jobs. For each deployment of an owned partition with due
 * calls and free capacity, one transaction picks the calls (SKIP LOCKED),
 * marks their attempt active and inserts the attempt rows; the jobs are
 * produced and acknowledged before that transaction commits. A crash between
 * the two leaves jobs whose job_id matches no attempt row, which dialers
 * refuse, so a call is never dialed twice and never lost.
 */
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_proto.h"
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deployments with due calls in the owned partitions and their free capacity. */
static const char DUE_SQL[] =
    "SELECT d.deployment_id, d.capacity - (SELECT count(*) FROM calls f"
    "   WHERE f.deployment_id = d.deployment_id AND f.active_attempt IS NOT NULL)"
    " FROM deployments d WHERE d.deployment_id IN ("
    "   SELECT DISTINCT deployment_id FROM calls"
    "   WHERE state = 'queued' AND active_attempt IS NULL AND next_attempt_at <= now()"
    "   AND request_partition = ANY($1::int[]))"
    " AND d.active";

static const char RELEASE_SQL[] =
    "WITH picked AS ("
    "  SELECT call_id FROM calls"
    "  WHERE deployment_id = $1 AND state = 'queued' AND active_attempt IS NULL"
    "  AND next_attempt_at <= now() AND (expires_at IS NULL OR expires_at > now())"
    "  AND attempts_made < max_attempts"
    "  ORDER BY priority DESC, next_attempt_at, call_id LIMIT $2 FOR UPDATE SKIP LOCKED),"
    " upd AS ("
    "  UPDATE calls c SET active_attempt = c.attempts_made + 1,"
    "   attempts_made = c.attempts_made + 1, updated_at = now()"
    "  FROM picked WHERE c.call_id = picked.call_id"
    "  RETURNING c.call_id, c.deployment_id, c.account_id, c.active_attempt, c.phone_number,"
    "   c.caller_id, c.post_dial, c.message_reference, c.call_parameters::text,"
    "   c.max_attempts, c.retry_interval_s),"
    " ins AS ("
    "  INSERT INTO attempts (call_id, attempt, deployment_id, job_id, lease_until)"
    "  SELECT call_id, active_attempt, deployment_id, gen_random_uuid(),"
    "   now() + make_interval(secs => $3::int) FROM upd"
    "  RETURNING call_id, job_id, (extract(epoch FROM lease_until) * 1000)::bigint AS lease_ms)"
    " SELECT upd.*, ins.job_id, ins.lease_ms,"
    "  (SELECT coalesce(d.start_url, a.start_url) FROM deployments d"
    "   JOIN applications a USING (application_id) WHERE d.deployment_id = upd.deployment_id)"
    " FROM upd JOIN ins USING (call_id)";

/* Calls that can no longer be dialed before their expiry end now. */
static const char EXPIRE_SQL[] =
    "UPDATE calls SET state = 'completed',"
    "  status = CASE WHEN attempts_made = 0 THEN 'uncalled' ELSE 'failed' END,"
    "  result = CASE WHEN attempts_made = 0 THEN 'noattempt' ELSE result END,"
    "  reason = 'expired', completed_at = now(), updated_at = now()"
    " WHERE state = 'queued' AND active_attempt IS NULL AND expires_at <= now()"
    " AND request_partition = ANY($1::int[])"
    " RETURNING call_id, deployment_id, account_id, status, result, phone_number,"
    "  message_reference, attempts_made, max_attempts";

static char *col(PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? NULL : ob_xstrdup(PQgetvalue(res, row, c));
}

static void expire_calls(scheduler_ctx_t *ctx, const char *owned)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {owned};
    if (ob_pg_begin(ctx->pg, &err) != OB_OK ||
        ob_pg_exec(ctx->pg, EXPIRE_SQL, 1, params, &res, &err) != OB_OK) {
        ob_pg_rollback(ctx->pg);
        OB_WARN("release", "expiry pass: %s", err.msg);
        return;
    }
    int n = PQntuples(res);
    ob_call_event_t *evs = ob_xcalloc((size_t)n + 1, sizeof(*evs));
    ob_rc_t rc = OB_OK;
    for (int i = 0; i < n && rc == OB_OK; i++) {
        ob_call_event_t *ev = &evs[i];
        ev->source = ob_xstrdup(ctx->source);
        ev->type = ob_xstrdup("outbound.call.completed");
        ev->call_id = col(res, i, 0);
        ev->deployment_id = col(res, i, 1);
        ev->account_id = col(res, i, 2);
        ev->state = ob_xstrdup("completed");
        ev->status = col(res, i, 3);
        ev->result = col(res, i, 4);
        ev->reason = ob_xstrdup("expired");
        ev->phone_number = col(res, i, 5);
        ev->message_reference = col(res, i, 6);
        ev->attempt = atoi(PQgetvalue(res, i, 7));
        ev->max_attempts = atoi(PQgetvalue(res, i, 8));
        rc = ob_events_record(ctx->pg, ev, &err);
    }
    PQclear(res);
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, &err);
    if (rc != OB_OK) {
        ob_pg_rollback(ctx->pg);
        OB_WARN("release", "expiry pass: %s", err.msg);
    } else if (n > 0) {
        ob_metric_add(&ctx->metrics[M_EXPIRED], n);
        OB_INFO("release", "%d call(s) expired before they could be dialed", n);
        if (ob_events_publish(ctx->producer, ctx->topic_events, ctx->pg, evs, (size_t)n, &err) != OB_OK)
            OB_WARN("release", "expiry events left for the relay: %s", err.msg);
    }
    for (int i = 0; i <= n; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
}

/* Encodes row i of RELEASE_SQL's answer as a dial job. */
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
    };
    return ob_dial_job_encode(&job);
}

/* Releases up to free jobs of one deployment; returns how many. */
static int release_deployment(scheduler_ctx_t *ctx, const char *deployment_id, long free_slots)
{
    char limit[16], lease[16];
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    ob_produce_batch_t *batch = NULL;
    int n = 0;
    ob_rc_t rc;

    snprintf(limit, sizeof(limit), "%ld",
             free_slots < ctx->cfg->release_max ? free_slots : (long)ctx->cfg->release_max);
    snprintf(lease, sizeof(lease), "%lld", ctx->cfg->lease_s);
    const char *params[] = {deployment_id, limit, lease};
    if ((rc = ob_pg_begin(ctx->pg, &err)) != OB_OK ||
        (rc = ob_pg_exec(ctx->pg, RELEASE_SQL, 3, params, &res, &err)) != OB_OK)
        goto out;
    n = PQntuples(res);
    if (n == 0)
        goto out;
    batch = ob_produce_batch_new();
    for (int i = 0; i < n && rc == OB_OK; i++) {
        char *text = job_from_row(res, i);
        /* Keyed by call: any idle dialer of the group may take it. */
        rc = ob_produce_batch_add(ctx->producer, batch, ctx->topic_jobs, PQgetvalue(res, i, 0), text,
                                  strlen(text), 5000, &err);
        free(text);
    }
    ob_err_t wait_err = {{0}};
    ob_rc_t wrc = ob_produce_batch_wait(batch, 30000, &wait_err);
    batch = NULL;
    if (rc == OB_OK && wrc != OB_OK) {
        rc = wrc;
        ob_err_set(&err, "%s", wait_err.msg);
    }
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, &err);
out:
    PQclear(res);
    if (rc != OB_OK) {
        ob_pg_rollback(ctx->pg);
        OB_LOG(OB_LOG_WARN, "release", OB_KV("deployment_id", deployment_id),
               "release rolled back, will retry: %s", err.msg);
        return 0;
    }
    if (n == 0)
        ob_pg_rollback(ctx->pg);
    ob_metric_add(&ctx->metrics[M_RELEASED], n);
    return n;
}

void scheduler_release_pass(scheduler_ctx_t *ctx)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    if (ctx->owned_count == 0)
        return;
    char *owned = scheduler_owned_array(ctx);
    const char *params[] = {owned};

    expire_calls(ctx, owned);
    if (ob_pg_exec(ctx->pg, DUE_SQL, 1, params, &res, &err) != OB_OK) {
        __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
        OB_WARN("release", "due deployments: %s", err.msg);
        ob_rc_t unused = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
        (void)unused;
        goto out;
    }
    __atomic_store_n(&ctx->pg_up, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < PQntuples(res); i++) {
        long free_slots = atol(PQgetvalue(res, i, 1));
        if (free_slots > 0)
            release_deployment(ctx, PQgetvalue(res, i, 0), free_slots);
    }
out:
    PQclear(res);
    free(owned);
}
