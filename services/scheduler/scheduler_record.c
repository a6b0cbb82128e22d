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

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 2000

/* A run of calls in one statement: the rows travel as a JSON array. A call
 * whose deployment is not its account's is left out (and reported). */
static const char INSERT_CALLS_SQL[] =
    "INSERT INTO calls (call_id, deployment_id, account_id, request_partition, phone_number,"
    " caller_id, post_dial, message_reference, call_parameters, retry_rules, result_url,"
    " priority, max_attempts, retry_interval_s, not_before, expires_at, next_attempt_at,"
    " accepted_at, upload_id, queued_via, app)"
    " SELECT r.call_id, r.deployment_id, r.account_id, r.request_partition, r.phone_number,"
    " r.caller_id, r.post_dial, r.message_reference, coalesce(r.call_parameters, '{}'),"
    " coalesce(r.retry_rules, '{}'), r.result_url, r.priority, r.max_attempts,"
    " r.retry_interval_s,"
    " to_timestamp(r.not_before / 1000.0), to_timestamp(r.expires_at / 1000.0),"
    " to_timestamp(r.not_before / 1000.0), to_timestamp(r.accepted_at / 1000.0), r.upload_id,"
    " coalesce(r.queued_via, 'v1'), r.app"
    " FROM json_to_recordset($1::json) AS r(call_id uuid, deployment_id uuid, account_id uuid,"
    "  request_partition int, phone_number text, caller_id text, post_dial text,"
    "  message_reference text, call_parameters jsonb, retry_rules jsonb, result_url text,"
    "  priority int,"
    "  max_attempts int, retry_interval_s int, not_before bigint, expires_at bigint,"
    "  accepted_at bigint, upload_id uuid, queued_via text, app jsonb)"
    " JOIN deployments d ON d.deployment_id = r.deployment_id AND d.account_id = r.account_id"
    " ON CONFLICT (call_id) DO NOTHING RETURNING call_id::text";

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
    size_t cap = 3 + (size_t)ctx->owned_count * 6, o = 0; /* "{" "}" NUL, "nnnn," each */
    char *s = ob_xmalloc(cap);
    s[o++] = '{';
    for (int p = 0; p < SCHEDULER_MAX_PARTITIONS; p++)
        if (ctx->owned[p])
            o += (size_t)snprintf(s + o, cap - o, "%s%d", o > 1 ? "," : "", p);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

static cJSON *call_row(const rd_kafka_message_t *msg, const ob_call_request_t *m)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "call_id", m->call_id);
    cJSON_AddStringToObject(r, "deployment_id", m->deployment_id);
    cJSON_AddStringToObject(r, "account_id", m->account_id);
    cJSON_AddNumberToObject(r, "request_partition", msg->partition);
    cJSON_AddStringToObject(r, "phone_number", m->phone_number);
    if (m->caller_id)
        cJSON_AddStringToObject(r, "caller_id", m->caller_id);
    if (m->post_dial)
        cJSON_AddStringToObject(r, "post_dial", m->post_dial);
    if (m->message_reference)
        cJSON_AddStringToObject(r, "message_reference", m->message_reference);
    if (m->call_parameters)
        cJSON_AddItemToObject(r, "call_parameters", cJSON_Parse(m->call_parameters));
    if (m->retry_rules)
        cJSON_AddItemToObject(r, "retry_rules", cJSON_Parse(m->retry_rules));
    if (m->result_url)
        cJSON_AddStringToObject(r, "result_url", m->result_url);
    /* The decoder let through only an object or an array. */
    if (m->app)
        cJSON_AddItemToObject(r, "app", cJSON_Parse(m->app));
    if (m->upload_id)
        cJSON_AddStringToObject(r, "upload_id", m->upload_id);
    /* Only the values calls.queued_via allows: a batch Postgres refused
     * would be retried for ever. */
    if (m->queued_via && strcmp(m->queued_via, "plum") == 0)
        cJSON_AddStringToObject(r, "queued_via", "plum");
    cJSON_AddNumberToObject(r, "priority", (double)m->priority);
    cJSON_AddNumberToObject(r, "max_attempts", (double)m->max_attempts);
    cJSON_AddNumberToObject(r, "retry_interval_s", (double)m->retry_interval_s);
    cJSON_AddNumberToObject(r, "not_before", (double)m->not_before_ms);
    if (m->expires_at_ms)
        cJSON_AddNumberToObject(r, "expires_at", (double)m->expires_at_ms);
    cJSON_AddNumberToObject(r, "accepted_at", (double)m->accepted_at_ms);
    return r;
}

static void queued_event(scheduler_ctx_t *ctx, const ob_call_request_t *m, ob_call_event_t *ev)
{
    ev->source = ob_xstrdup(ctx->source);
    ev->type = ob_xstrdup("outbound.call.queued");
    ev->call_id = ob_xstrdup(m->call_id);
    ev->deployment_id = ob_xstrdup(m->deployment_id);
    ev->account_id = ob_xstrdup(m->account_id);
    ev->state = ob_xstrdup(ob_state_name(OB_STATE_QUEUED));
    ev->phone_number = ob_xstrdup(m->phone_number);
    ev->message_reference = m->message_reference ? ob_xstrdup(m->message_reference) : NULL;
    ev->max_attempts = m->max_attempts;
}

/* One consumed message and what it decoded to. */
typedef struct {
    rd_kafka_message_t *msg; /* owned until the batch ends */
    enum { QUEUE, CANCEL, INVALID } kind;
    ob_call_request_t req;         /* kind QUEUE */
    ob_cancel_deployment_t cancel; /* kind CANCEL */
} item_t;

/* Calls of items[from, to) that were neither inserted now nor before name a
 * deployment that is not their account's: ingest never produces such a
 * message, so say so (they cannot be recorded, and are skipped). */
static ob_rc_t report_unrecorded(scheduler_ctx_t *ctx, item_t *items, int from, int to,
                                 ob_err_t *err)
{
    cJSON *ids = cJSON_CreateArray();
    for (int i = from; i < to; i++)
        if (items[i].kind == QUEUE)
            cJSON_AddItemToArray(ids, cJSON_CreateString(items[i].req.call_id));
    char *text = cJSON_PrintUnformatted(ids);
    cJSON_Delete(ids);
    PGresult *res = NULL;
    const char *params[] = {text};
    ob_rc_t rc =
        ob_pg_exec(ctx->pg,
                   "SELECT id FROM json_array_elements_text($1::json) AS j(id)"
                   " WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.call_id = j.id::uuid)",
                   1, params, &res, err);
    cJSON_free(text);
    for (int i = 0; rc == OB_OK && i < PQntuples(res); i++) {
        ob_metric_add(&ctx->metrics[M_POISON], 1);
        OB_LOG(OB_LOG_ERROR, "record", OB_KV("call_id", PQgetvalue(res, i, 0)),
               "call names a deployment that does not exist for its account; not recorded");
    }
    PQclear(res);
    return rc;
}

/* Records the calls of items[from, to) in one transaction (one statement
 * for the calls, one for their queued events), then publishes the events.
 * Recording is idempotent, so a retry changes nothing. */
static ob_rc_t record_run(scheduler_ctx_t *ctx, item_t *items, int from, int to, ob_err_t *err)
{
    cJSON *rows = cJSON_CreateArray();
    int candidates = 0, nevs = 0;
    for (int i = from; i < to; i++) {
        if (items[i].kind == QUEUE) {
            cJSON_AddItemToArray(rows, call_row(items[i].msg, &items[i].req));
            candidates++;
        }
    }
    if (candidates == 0) {
        cJSON_Delete(rows);
        return OB_OK;
    }
    char *text = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);
    ob_call_event_t *evs = ob_xcalloc((size_t)candidates, sizeof(*evs));
    PGresult *res = NULL;
    const char *params[] = {text};
    int64_t started_us = ob_mono_us();
    ob_rc_t rc = ob_pg_begin(ctx->pg, err);
    if (rc == OB_OK)
        rc = ob_pg_exec(ctx->pg, INSERT_CALLS_SQL, 1, params, &res, err);
    cJSON_free(text);
    /* Events for the calls inserted now (a replay inserts none). */
    for (int r = 0; rc == OB_OK && r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        for (int i = from; i < to; i++) {
            if (items[i].kind == QUEUE && strcmp(items[i].req.call_id, id) == 0) {
                queued_event(ctx, &items[i].req, &evs[nevs++]);
                break;
            }
        }
    }
    if (rc == OB_OK && nevs < candidates)
        rc = report_unrecorded(ctx, items, from, to, err);
    if (rc == OB_OK)
        rc = ob_events_record_many(ctx->pg, evs, (size_t)nevs, err);
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, err);
    PQclear(res);
    if (rc != OB_OK) {
        ob_pg_rollback(ctx->pg);
    } else {
        ob_pg_write_observe(ctx->pg_writes, "record_calls", started_us);
        ob_metric_add(&ctx->metrics[M_RECORDED], nevs);
        ob_err_t perr = {{0}};
        if (ob_events_publish(ctx->producer, ctx->topic_events, ctx->pg, evs, (size_t)nevs,
                              &perr) != OB_OK)
            OB_WARN("record", "queued events left for the relay: %s", perr.msg);
    }
    for (int i = 0; i < nevs; i++)
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
        /* Applied: the calls it covers are ended, so lift ingest's marker. */
        char at[24];
        snprintf(at, sizeof(at), "%lld", (long long)c->requested_at_ms);
        const char *params[] = {c->deployment_id, at};
        rc = ob_pg_exec(ctx->pg,
                        "UPDATE deployments SET cancel_before = NULL WHERE deployment_id = $1"
                        " AND cancel_before <= to_timestamp($2::bigint / 1000.0)",
                        2, params, NULL, err);
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
    /* Nearly every message is a call: decode it as one, and look at the kind
     * (a second parse) only when that fails. */
    it->kind =
        ob_call_request_decode(msg->payload, msg->len, &it->req, &err) == OB_OK ? QUEUE : INVALID;
    if (it->kind == INVALID) {
        ob_request_kind(msg->payload, msg->len, kind);
        if (strcmp(kind, "cancel_deployment") == 0 &&
            ob_cancel_deployment_decode(msg->payload, msg->len, &it->cancel, &err) == OB_OK)
            it->kind = CANCEL;
    }
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
        ob_service_set_pg_up(&ctx->svc, false);
        OB_ERROR("record", "recording %d message(s) failed, retrying: %s", n, err.msg);
        ob_service_sleep(1000);
        if (ob_stop_requested)
            goto out; /* offsets stay unstored: the next owner replays these */
        if (ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err) != OB_OK)
            continue;
    }
    if (n > 0)
        ob_service_set_pg_up(&ctx->svc, true);
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
