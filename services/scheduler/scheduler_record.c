/*
 * Recording accepted calls. Messages are inserted idempotently (ON CONFLICT
 * on call_id), so a redelivered batch changes nothing; offsets are stored
 * only after the transaction committed, so a crash before that replays the
 * batch instead of losing it. A batch that Postgres refuses is retried, not
 * skipped, for as long as the service runs.
 */
#include "ob_calls.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_proto.h"
#include "ob_service.h"
#include "ob_signal.h"
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 2000

static const char INSERT_CALL_SQL[] =
    "INSERT INTO calls (call_id, deployment_id, account_id, request_partition, phone_number,"
    " caller_id, post_dial, message_reference, call_parameters, result_url, priority,"
    " max_attempts, retry_interval_s, not_before, expires_at, next_attempt_at, accepted_at,"
    " upload_id)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{}'), $10, $11, $12, $13,"
    " to_timestamp($14::bigint / 1000.0), to_timestamp($15::bigint / 1000.0),"
    " to_timestamp($14::bigint / 1000.0), to_timestamp($16::bigint / 1000.0), $17::uuid"
    " FROM deployments d WHERE d.deployment_id = $2 AND d.account_id = $3"
    " ON CONFLICT (call_id) DO NOTHING RETURNING call_id";

void scheduler_on_rebalance(void *opaque, bool assigned,
                            const rd_kafka_topic_partition_list_t *parts)
{
    scheduler_ctx_t *ctx = opaque;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (p < 0 || p >= SCHEDULER_MAX_PARTITIONS)
            continue;
        if (ctx->owned[p] != assigned)
            ctx->owned_count += assigned ? 1 : -1;
        ctx->owned[p] = assigned;
    }
    ob_metric_set(&ctx->metrics[M_OWNED], ctx->owned_count);
    OB_INFO("record", "%s %d partition(s); owning %d", assigned ? "assigned" : "revoked",
            parts->cnt, ctx->owned_count);
}

char *scheduler_owned_array(const scheduler_ctx_t *ctx)
{
    size_t cap = 2 + (size_t)ctx->owned_count * 6, o = 0;
    char *s = ob_xmalloc(cap);
    s[o++] = '{';
    for (int p = 0; p < SCHEDULER_MAX_PARTITIONS; p++)
        if (ctx->owned[p])
            o += (size_t)snprintf(s + o, cap - o, "%s%d", o > 1 ? "," : "", p);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* A call that was not inserted is either a replay (fine) or names a
 * deployment of another account, which ingest never produces: say so. */
static ob_rc_t check_duplicate(scheduler_ctx_t *ctx, const rd_kafka_message_t *msg,
                               const ob_call_request_t *m, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {m->call_id};
    ob_rc_t rc =
        ob_pg_exec(ctx->pg, "SELECT 1 FROM calls WHERE call_id = $1", 1, params, &res, err);
    if (rc != OB_OK)
        return rc;
    if (PQntuples(res) == 0) {
        ob_metric_add(&ctx->metrics[M_POISON], 1);
        OB_LOG(OB_LOG_ERROR, "record",
               OB_KV("call_id", m->call_id, "deployment_id", m->deployment_id),
               "call names a deployment that does not exist for its account (partition %d offset "
               "%lld)",
               msg->partition, (long long)msg->offset);
    }
    PQclear(res);
    return OB_OK;
}

/* Inserts one call and, if it is new, records its queued event into ev. */
static ob_rc_t record_one(scheduler_ctx_t *ctx, const rd_kafka_message_t *msg,
                          const ob_call_request_t *m, ob_call_event_t *ev, bool *inserted,
                          ob_err_t *err)
{
    char part[16], prio[16], attempts[16], interval[16], nb[32], exp[32], acc[32];
    PGresult *res = NULL;
    snprintf(part, sizeof(part), "%d", msg->partition);
    snprintf(prio, sizeof(prio), "%lld", (long long)m->priority);
    snprintf(attempts, sizeof(attempts), "%lld", (long long)m->max_attempts);
    snprintf(interval, sizeof(interval), "%lld", (long long)m->retry_interval_s);
    snprintf(nb, sizeof(nb), "%lld", (long long)m->not_before_ms);
    snprintf(exp, sizeof(exp), "%lld", (long long)m->expires_at_ms);
    snprintf(acc, sizeof(acc), "%lld", (long long)m->accepted_at_ms);
    const char *params[] = {
        m->call_id,
        m->deployment_id,
        m->account_id,
        part,
        m->phone_number,
        m->caller_id,
        m->post_dial,
        m->message_reference,
        m->call_parameters,
        m->result_url,
        prio,
        attempts,
        interval,
        nb,
        m->expires_at_ms ? exp : NULL,
        acc,
        m->upload_id,
    };
    ob_rc_t rc = ob_pg_exec(ctx->pg, INSERT_CALL_SQL, 17, params, &res, err);
    if (rc != OB_OK)
        return rc;
    *inserted = PQntuples(res) == 1;
    PQclear(res);
    if (!*inserted)
        return check_duplicate(ctx, msg, m, err);
    ev->source = ob_xstrdup(ctx->source);
    ev->type = ob_xstrdup("outbound.call.queued");
    ev->call_id = ob_xstrdup(m->call_id);
    ev->deployment_id = ob_xstrdup(m->deployment_id);
    ev->account_id = ob_xstrdup(m->account_id);
    ev->state = ob_xstrdup("queued");
    ev->phone_number = ob_xstrdup(m->phone_number);
    ev->message_reference = m->message_reference ? ob_xstrdup(m->message_reference) : NULL;
    ev->max_attempts = m->max_attempts;
    return ob_events_record(ctx->pg, ev, err);
}

/* One consumed message and what it decoded to. */
typedef struct {
    rd_kafka_message_t *msg; /* owned until the batch ends */
    enum { QUEUE, CANCEL, INVALID } kind;
    ob_call_request_t req;         /* kind QUEUE */
    ob_cancel_deployment_t cancel; /* kind CANCEL */
} item_t;

/* Records the calls of items[from, to) in one transaction, then publishes
 * their queued events. Recording is idempotent, so a retry changes nothing. */
static ob_rc_t record_run(scheduler_ctx_t *ctx, item_t *items, int from, int to, ob_err_t *err)
{
    ob_call_event_t *evs = ob_xcalloc((size_t)(to - from) + 1, sizeof(*evs));
    int nevs = 0;
    ob_rc_t rc = ob_pg_begin(ctx->pg, err);
    for (int i = from; i < to && rc == OB_OK; i++) {
        bool inserted = false;
        if (items[i].kind != QUEUE)
            continue;
        rc = record_one(ctx, items[i].msg, &items[i].req, &evs[nevs], &inserted, err);
        if (inserted)
            nevs++;
    }
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, err);
    if (rc != OB_OK) {
        ob_pg_rollback(ctx->pg);
    } else {
        ob_metric_add(&ctx->metrics[M_RECORDED], nevs);
        ob_err_t perr = {{0}};
        if (ob_events_publish(ctx->producer, ctx->topic_events, ctx->pg, evs, (size_t)nevs,
                              &perr) != OB_OK)
            OB_WARN("record", "queued events left for the relay: %s", perr.msg);
    }
    for (int i = 0; i <= nevs; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    return rc;
}

/* Applies the batch in order: runs of calls recorded together, each command
 * after the calls that preceded it on the partition. */
static ob_rc_t apply_batch(scheduler_ctx_t *ctx, item_t *items, int n, ob_err_t *err)
{
    int from = 0;
    for (int i = 0; i <= n; i++) {
        if (i < n && items[i].kind != CANCEL)
            continue;
        ob_rc_t rc = record_run(ctx, items, from, i, err);
        if (rc != OB_OK || i == n)
            return rc;
        const ob_cancel_deployment_t *c = &items[i].cancel;
        int cancelled = 0;
        rc = ob_calls_cancel(ctx->pg, ctx->producer, ctx->topic_events, ctx->source,
                             c->deployment_id, NULL, c->requested_at_ms, &cancelled, err);
        if (rc != OB_OK)
            return rc;
        OB_LOG(OB_LOG_INFO, "record",
               OB_KV("deployment_id", c->deployment_id, "req_id", c->request_id),
               "queue cancelled: %d pending call(s) ended", cancelled);
        from = i + 1;
    }
    return OB_OK;
}

static void decode_item(scheduler_ctx_t *ctx, item_t *it)
{
    char kind[32];
    ob_err_t err = {{0}};
    const rd_kafka_message_t *msg = it->msg;
    ob_request_kind(msg->payload, msg->len, kind);
    if (strcmp(kind, "cancel_deployment") == 0)
        it->kind = ob_cancel_deployment_decode(msg->payload, msg->len, &it->cancel, &err) == OB_OK
                       ? CANCEL
                       : INVALID;
    else
        it->kind = ob_call_request_decode(msg->payload, msg->len, &it->req, &err) == OB_OK
                       ? QUEUE
                       : INVALID;
    if (it->kind == INVALID) {
        /* Ingest never produces such a message; keep a trace and move on. */
        ob_metric_add(&ctx->metrics[M_POISON], 1);
        OB_ERROR("record", "skipping invalid request message at partition %d offset %lld: %s",
                 msg->partition, (long long)msg->offset, err.msg);
    }
}

int scheduler_record_poll(scheduler_ctx_t *ctx, int wait_ms)
{
    int max = (int)(ctx->cfg->batch < MAX_BATCH ? ctx->cfg->batch : MAX_BATCH), n = 0;
    item_t *items = ob_xcalloc((size_t)max, sizeof(item_t));
    ob_err_t err = {{0}};

    while (n < max) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(ctx->requests, n == 0 ? wait_ms : 0);
        if (!msg)
            break;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                OB_WARN("record", "consumer: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        items[n].msg = msg;
        decode_item(ctx, &items[n++]);
    }

    /* The batch is held until Postgres takes it: never skip accepted calls. */
    while (n > 0 && apply_batch(ctx, items, n, &err) != OB_OK) {
        __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
        OB_ERROR("record", "recording %d message(s) failed, retrying: %s", n, err.msg);
        ob_service_sleep(1000);
        if (ob_stop_requested)
            goto out; /* offsets stay unstored: the next owner replays these */
        if (ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err) != OB_OK)
            continue;
    }
    if (n > 0)
        __atomic_store_n(&ctx->pg_up, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++)
        ob_consumer_store(ctx->requests, items[i].msg);
out:
    for (int i = 0; i < n; i++) {
        if (items[i].kind == QUEUE)
            ob_call_request_clear(&items[i].req);
        else if (items[i].kind == CANCEL)
            ob_cancel_deployment_clear(&items[i].cancel);
        rd_kafka_message_destroy(items[i].msg);
    }
    free(items);
    return n;
}
