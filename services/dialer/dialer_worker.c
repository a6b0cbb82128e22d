/*
 * Dialer state transitions. For each transition the order is: write
 * Postgres (guarded UPDATE ... WHERE state = expected, with the event row in
 * the same transaction), then publish the event. A crash between the two
 * leaves an unpublished row that the relay sends later. Also the worker's
 * announcement (its dialers row), which the scheduler routes jobs by.
 */
#include "dialer.h"
#include "dialer_app.h"
#include "ob_calls.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One guarded statement; it uses the first nparams of the transition's
 * parameters ($1..$n). */
typedef struct {
    const char *sql; /* must touch exactly one row */
    int nparams;     /* parameters it uses */
} stmt_t;

/* A transition: guarded statements plus the event they produce. */
typedef struct {
    const char *type;   /* event type suffix: "dialing", "connected", ... */
    const char *state;  /* call state after it */
    const char *status; /* final status, or NULL */
    const char *result; /* attempt result, or NULL */
    const char *reason; /* why, or NULL */
} transition_t;

static ob_call_event_t event_for(dialer_ctx_t *ctx, const ob_dial_job_t *job, const transition_t *t)
{
    ob_call_event_t ev = {0};
    ev.source = ob_xstrdup(ctx->source);
    ev.type = ob_xasprintf("outbound.call.%s", t->type);
    ev.call_id = ob_xstrdup(job->call_id);
    ev.deployment_id = ob_xstrdup(job->deployment_id);
    ev.account_id = ob_xstrdup(job->account_id);
    ev.state = ob_xstrdup(t->state);
    ev.status = t->status ? ob_xstrdup(t->status) : NULL;
    ev.result = t->result ? ob_xstrdup(t->result) : NULL;
    ev.reason = t->reason ? ob_xstrdup(t->reason) : NULL;
    ev.phone_number = ob_xstrdup(job->phone_number);
    ev.message_reference = job->message_reference ? ob_xstrdup(job->message_reference) : NULL;
    ev.attempt = job->attempt;
    ev.max_attempts = job->max_attempts;
    return ev;
}

/* Runs stmts (each must touch one row, else the transition is stale), records
 * the event and commits; then publishes. Returns OB_ECONFLICT when a guard did
 * not match, OB_EDEPENDENCY/OB_ERR when Postgres failed. */
static ob_rc_t apply(dialer_ctx_t *ctx, const ob_dial_job_t *job, const transition_t *t,
                     const stmt_t *stmts, const char *const *params)
{
    ob_err_t err = {{0}};
    ob_call_event_t ev = event_for(ctx, job, t);
    ob_rc_t rc = ob_pg_begin(ctx->pg, &err);
    for (const stmt_t *s = stmts; s->sql && rc == OB_OK; s++) {
        PGresult *res = NULL;
        rc = ob_pg_exec(ctx->pg, s->sql, s->nparams, params, &res, &err);
        if (rc == OB_OK && atoi(PQcmdTuples(res)) != 1) {
            rc = OB_ECONFLICT;
            ob_err_set(&err, "guard did not match (stale or duplicate transition)");
        }
        PQclear(res);
    }
    if (rc == OB_OK)
        rc = ob_events_record(ctx->pg, &ev, &err);
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, &err);
    if (rc != OB_OK) {
        ob_pg_rollback(ctx->pg);
        if (rc != OB_ECONFLICT) {
            __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
            OB_LOG(OB_LOG_ERROR, "worker", OB_KV("call_id", job->call_id), "%s not recorded: %s",
                   t->type, err.msg);
        }
        ob_call_event_clear(&ev);
        return rc;
    }
    __atomic_store_n(&ctx->pg_up, 1, __ATOMIC_RELAXED);
    if (ob_events_publish(ctx->producer, ctx->topic_events, ctx->pg, &ev, 1, &err) != OB_OK)
        OB_WARN("worker", "event left for the relay: %s", err.msg);
    ob_call_event_clear(&ev);
    return OB_OK;
}

/* Retries a transition until Postgres takes it (or a guard says it is moot);
 * losing a result is never an option. */
static ob_rc_t apply_until_durable(dialer_ctx_t *ctx, const ob_dial_job_t *job,
                                   const transition_t *t, const stmt_t *stmts,
                                   const char *const *params)
{
    ob_err_t err = {{0}};
    for (;;) {
        ob_rc_t rc = apply(ctx, job, t, stmts, params);
        if (rc == OB_OK || rc == OB_ECONFLICT)
            return rc;
        ob_service_sleep(1000);
        if (ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err) != OB_OK)
            OB_WARN("worker", "waiting for Postgres: %s", err.msg);
    }
}

static dialer_call_t *free_slot(dialer_ctx_t *ctx)
{
    for (int i = 0; i < (int)ctx->cfg->channels; i++)
        if (!ctx->calls[i].in_use)
            return &ctx->calls[i];
    return NULL;
}

bool dialer_take_job(dialer_ctx_t *ctx, const rd_kafka_message_t *msg)
{
    /* The call row is locked first, as cancel_pending() does, so the two
     * cannot deadlock; whichever commits first wins and the other's guard
     * does not match. */
    static const stmt_t stmts[] = {
        {"UPDATE calls SET state = 'dialing', updated_at = now()"
         " WHERE call_id = $1 AND active_attempt = $2 AND state = 'queued'"
         " AND (expires_at IS NULL OR expires_at > now())",
         2},
        {"UPDATE attempts SET state = 'dialing', dialing_at = now(), worker = $4,"
         " lease_until = now() + make_interval(secs => $5::int)"
         " WHERE call_id = $1 AND attempt = $2 AND job_id = $3 AND state = 'released'",
         5},
        {NULL, 0},
    };
    static const transition_t dialing = {"dialing", "dialing", NULL, NULL, NULL};
    ob_err_t err = {{0}};
    dialer_call_t *slot = free_slot(ctx);
    char attempt[16];

    OB_ASSERT(slot != NULL); /* the loop only takes jobs with a free channel */
    if (ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err) != OB_OK) {
        __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
        return false;
    }
    if (ob_dial_job_decode(msg->payload, msg->len, &slot->job, &err) != OB_OK) {
        ob_metric_add(&ctx->metrics[M_STALE_JOBS], 1);
        OB_ERROR("worker", "invalid dial job at partition %d offset %lld: %s", msg->partition,
                 (long long)msg->offset, err.msg);
        return true;
    }
    char lease[16];
    snprintf(attempt, sizeof(attempt), "%lld", (long long)slot->job.attempt);
    snprintf(lease, sizeof(lease), "%lld", ctx->cfg->lease_s);
    const char *params[] = {slot->job.call_id, attempt, slot->job.job_id,
                            ctx->cfg->base.instance_id, lease};
    ob_rc_t rc = apply(ctx, &slot->job, &dialing, stmts, params);
    if (rc == OB_ECONFLICT) {
        ob_metric_add(&ctx->metrics[M_STALE_JOBS], 1);
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", slot->job.call_id),
               "refused dial job %s: its attempt is not waiting for it", slot->job.job_id);
    }
    if (rc != OB_OK) {
        ob_dial_job_clear(&slot->job);
        return rc == OB_ECONFLICT;
    }
    slot->in_use = true;
    slot->answered = false;
    slot->cut_by = NULL;
    ctx->active++;
    ob_metric_add(&ctx->metrics[M_JOBS], 1);
    ob_metric_set(&ctx->metrics[M_IN_FLIGHT], ctx->active);
    OB_LOG(OB_LOG_DEBUG, "worker", OB_KV("call_id", slot->job.call_id), "dialing %s",
           slot->job.phone_number);
    bool started = ctx->carrier->ops->start(ctx->carrier, slot, slot->job.call_id,
                                            (int)slot->job.attempt, slot->job.phone_number);
    OB_ASSERT(started); /* channels and carrier slots are the same count */
    return true;
}

static void on_answered(void *worker, void *call, const char *callee_type)
{
    /* The call row first, as everywhere. */
    static const stmt_t stmts[] = {
        {"UPDATE calls SET state = 'connected', updated_at = now()"
         " WHERE call_id = $1 AND active_attempt = $2 AND state = 'dialing'",
         2},
        {"UPDATE attempts SET state = 'connected', connected_at = now()"
         " WHERE call_id = $1 AND attempt = $2 AND state = 'dialing'",
         2},
        {NULL, 0},
    };
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    /* "processing" is no result: the event carries none until the end. */
    bool known = strcmp(callee_type, "processing") != 0;
    transition_t t = {"connected", "connected", NULL, known ? callee_type : NULL, NULL};
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%lld", (long long)c->job.attempt);
    const char *params[] = {c->job.call_id, attempt};
    c->answered = apply_until_durable(ctx, &c->job, &t, stmts, params) == OB_OK;
    if (c->answered)
        dialer_app_notify(ctx->app, c, "connected", callee_type);
}

/* The callee type is known: the application hears it too (the attempt
 * records it with the result at the end). */
static void on_decided(void *worker, void *call, const char *callee_type)
{
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    if (c->answered)
        dialer_app_notify(ctx->app, c, "callee_type", callee_type);
}

static void count_result(dialer_ctx_t *ctx, const char *result)
{
    static const char *const names[] = {"voice",    "answeringmachine", "fax",         "busy",
                                        "noanswer", "informationtone",  "linefailure", "unknown"};
    for (size_t i = 0; i < OB_COUNTOF(names); i++)
        if (strcmp(result, names[i]) == 0)
            ob_metric_add(&ctx->metrics[M_R_VOICE + (int)i], 1);
}

/* Ends the attempt through ob_calls_conclude (answered calls complete;
 * unanswered ones get their next attempt by the call's retry rules, or
 * fail), retrying until Postgres takes it: losing a result is never an option. */
static void on_ended(void *worker, void *call, bool was_answered, const char *result, int ring_ms,
                     int talk_ms)
{
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    ob_err_t err = {{0}};
    if (c->cut_by && !was_answered)
        result = "unknown"; /* we do not know how it would have ended */
    const char *reason = c->cut_by ? c->cut_by : was_answered ? "answered" : result;

    count_result(ctx, result);
    for (;;) {
        ob_rc_t rc = ob_calls_conclude(ctx->pg, ctx->producer, ctx->topic_events, ctx->source,
                                       c->job.call_id, (int)c->job.attempt, result, reason,
                                       was_answered, ring_ms, talk_ms, &err);
        if (rc == OB_OK)
            break;
        if (rc == OB_ECONFLICT) {
            OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", c->job.call_id), "%s", err.msg);
            break;
        }
        __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
        OB_LOG(OB_LOG_ERROR, "worker", OB_KV("call_id", c->job.call_id),
               "result not recorded, retrying: %s", err.msg);
        ob_service_sleep(1000);
        if (ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err) != OB_OK)
            OB_WARN("worker", "waiting for Postgres: %s", err.msg);
    }
    __atomic_store_n(&ctx->pg_up, 1, __ATOMIC_RELAXED);
    ob_dial_job_clear(&c->job);
    c->in_use = false;
    ctx->active--;
    ob_metric_set(&ctx->metrics[M_IN_FLIGHT], ctx->active);
}

void dialer_renew_leases(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    int64_t now = ob_mono_ms();
    if (now < ctx->next_renew_ms)
        return;
    ctx->next_renew_ms = now + ctx->cfg->lease_s * 1000 / 3;
    if (ctx->active == 0)
        return;
    char lease[16];
    snprintf(lease, sizeof(lease), "%lld", ctx->cfg->lease_s);
    const char *params[] = {ctx->cfg->base.instance_id, lease};
    if (ob_pg_exec(ctx->pg,
                   "UPDATE attempts SET lease_until = now() + make_interval(secs => $2::int)"
                   " WHERE worker = $1 AND state IN ('dialing', 'connected')",
                   2, params, NULL, &err) != OB_OK) {
        /* Retried at the next renewal; the lease has two more thirds to go. */
        OB_WARN("worker", "leases not renewed: %s", err.msg);
        ctx->next_renew_ms = now + 1000;
    }
}

void dialer_hangup_all(dialer_ctx_t *ctx)
{
    for (int i = 0; i < (int)ctx->cfg->channels; i++) {
        if (ctx->calls[i].in_use) {
            ctx->calls[i].cut_by = "dialer_shutdown";
            ctx->carrier->ops->hangup(ctx->carrier, &ctx->calls[i]);
        }
    }
}

/* The row's started_at is this process's start: reset by its first upsert
 * (an instance id can come back after a restart), kept by the next ones. */
static const char ANNOUNCE_SQL[] =
    "INSERT INTO dialers (instance_id, carrier, channels, active, partitions)"
    " VALUES ($1, $2, $3::int, $4::int, $5::int[])"
    " ON CONFLICT (instance_id) DO UPDATE SET carrier = EXCLUDED.carrier,"
    "  channels = EXCLUDED.channels, active = EXCLUDED.active,"
    "  partitions = EXCLUDED.partitions, seen_at = now(),"
    "  started_at = CASE WHEN $6::boolean THEN now() ELSE dialers.started_at END";

/* Rows of dialers that died without withdrawing; long past any staleness
 * bound, removed so the table stays small. */
static const char FORGET_DEAD_SQL[] =
    "DELETE FROM dialers WHERE seen_at < now() - interval '1 hour'";

/* Postgres array literal of the assigned partitions, "{0,3}" (caller frees). */
static char *assigned_array(const dialer_ctx_t *ctx)
{
    size_t cap = 3, o = 0;
    for (int p = 0; p < DIALER_MAX_PARTITIONS; p++)
        if (ctx->assigned[p])
            cap += 6;
    char *s = ob_xmalloc(cap);
    s[o++] = '{';
    for (int p = 0; p < DIALER_MAX_PARTITIONS; p++)
        if (ctx->assigned[p])
            o += (size_t)snprintf(s + o, cap - o, "%s%d", o > 1 ? "," : "", p);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

void dialer_announce(dialer_ctx_t *ctx, bool now)
{
    ob_err_t err = {{0}};
    int64_t t = ob_mono_ms();
    if (!ctx->announcing || (!now && t < ctx->next_announce_ms))
        return;
    ctx->next_announce_ms = t + 1000;
    char channels[16], active[16];
    snprintf(channels, sizeof(channels), "%lld", ctx->cfg->channels);
    snprintf(active, sizeof(active), "%d", ctx->active);
    char *parts = assigned_array(ctx);
    const char *first = ctx->announced ? "false" : "true";
    const char *params[] = {
        ctx->cfg->base.instance_id, ctx->cfg->carrier, channels, active, parts, first};
    ob_rc_t rc = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
    if (rc == OB_OK)
        rc = ob_pg_exec(ctx->pg, ANNOUNCE_SQL, 6, params, NULL, &err);
    __atomic_store_n(&ctx->pg_up, rc == OB_OK, __ATOMIC_RELAXED);
    if (rc == OB_OK && !ctx->announced) {
        ctx->announced = true;
        if (ob_pg_exec(ctx->pg, FORGET_DEAD_SQL, 0, NULL, NULL, &err) != OB_OK)
            OB_WARN("worker", "dead dialers not forgotten: %s", err.msg);
        OB_INFO("worker", "announced %lld channel(s) on partitions %s", ctx->cfg->channels, parts);
    } else if (rc != OB_OK) {
        /* Retried at the next heartbeat; the scheduler keeps routing here
         * until the row is older than its staleness bound. */
        OB_WARN("worker", "dialer not announced: %s", err.msg);
    }
    free(parts);
}

void dialer_on_rebalance(void *opaque, bool assigned, const rd_kafka_topic_partition_list_t *parts)
{
    dialer_ctx_t *ctx = opaque;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p >= 0 && p < DIALER_MAX_PARTITIONS)
            ctx->assigned[p] = assigned;
        else
            OB_WARN("worker", "partition %d is beyond the %d the scheduler can route to", p,
                    DIALER_MAX_PARTITIONS);
    }
    OB_INFO("worker", "%s %d dial-jobs partition(s)", assigned ? "assigned" : "revoked",
            parts->cnt);
    dialer_announce(ctx, true);
}

void dialer_withdraw(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    if (!ctx->announcing)
        return; /* also before the configuration was read */
    ctx->announcing = false;
    const char *params[] = {ctx->cfg->base.instance_id};
    if (ob_pg_exec(ctx->pg, "DELETE FROM dialers WHERE instance_id = $1", 1, params, NULL, &err) !=
        OB_OK)
        OB_WARN("worker", "dialer row not deleted (it goes stale instead): %s", err.msg);
}

const carrier_events_t dialer_carrier_events = {
    .answered = on_answered,
    .ended = on_ended,
    .decided = on_decided,
};
