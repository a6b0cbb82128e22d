/*
 * Dialer state transitions, written in batches: the carrier's callbacks and
 * the dial jobs read only queue a transition on the call's slot, and once
 * per turn of the loop dialer_flush writes them all in one transaction
 * (guarded UPDATE ... WHERE state = expected, with the event rows), then
 * publishes the events. A crash between the two leaves unpublished rows that
 * the relay sends later. Also the worker's announcement (its dialers row),
 * which the scheduler routes jobs by.
 */
#include "dialer.h"
#include "dialer_app.h"
#include "ob_calls.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A flush's events on their way to the broker. */
struct dialer_unacked {
    ob_produce_batch_t *batch;   /* their delivery reports */
    char *ids;                   /* their ids (Postgres array literal) */
    struct dialer_unacked *next; /* the next flush's */
};

/* The dialing of the taken jobs. The call row is changed first (locked as
 * cancel_pending() locks it, so the two cannot deadlock; whichever commits
 * first wins and the other's guard does not match), then the job's attempt,
 * which must still be released to this very job, its lease not run out (the
 * scheduler caps it at the campaign window's close, so a job that arrives
 * late is refused, never dialed outside the window); the job came through
 * Kafka, so it is marked published too (the scheduler skips attempts a
 * dialer holds rather than wait for them). Returns (i, false) for
 * each call row changed and (i, true) for each attempt changed, i being the
 * job's index in the batch (a join of the two would be quadratic: the
 * planner sees one row in each).
 *
 * The guards are wrapped in IS TRUE so that the rows are found by primary
 * key whatever the statistics say: a guard such as active_attempt = ...
 * lets the planner use a partial index of the calls in flight
 * (calls_in_flight, attempts_worker_busy, ...), which it takes for empty
 * when it was analyzed with nothing in flight, and then reads whole for
 * every batch (0.5 ms a call in make bench-dialer). */
static const char DIALING_SQL[] =
    "WITH j AS (SELECT * FROM json_to_recordset($1::json)"
    "  AS j(i int, call_id uuid, attempt int, job_id uuid)),"
    " c AS (UPDATE calls SET state = 'dialing', updated_at = now() FROM j"
    "  WHERE calls.call_id = j.call_id AND (calls.active_attempt = j.attempt"
    "  AND calls.state = 'queued' AND (calls.expires_at IS NULL OR calls.expires_at > now()))"
    "  IS TRUE"
    "  RETURNING j.i, calls.call_id, j.attempt, j.job_id,"
    "  extract(epoch FROM now() - greatest(calls.accepted_at, calls.next_attempt_at)) AS waited),"
    " a AS (UPDATE attempts SET state = 'dialing', dialing_at = now(), worker = $2,"
    "  lease_until = now() + make_interval(secs => $3::int),"
    "  job_published_at = coalesce(attempts.job_published_at, now()) FROM c"
    "  WHERE attempts.call_id = c.call_id AND attempts.attempt = c.attempt"
    "  AND (attempts.job_id = c.job_id AND attempts.state = 'released'"
    "  AND attempts.lease_until > now()) IS TRUE"
    "  RETURNING c.i, c.waited)"
    " SELECT i, false, NULL::float8 FROM c UNION ALL SELECT i, true, waited FROM a";

/* The connected calls, call row first as everywhere; rows as DIALING_SQL
 * (without the third column). */
static const char CONNECTED_SQL[] =
    "WITH j AS (SELECT * FROM json_to_recordset($1::json) AS j(i int, call_id uuid, attempt int)),"
    " c AS (UPDATE calls SET state = 'connected', updated_at = now() FROM j"
    "  WHERE calls.call_id = j.call_id"
    "  AND (calls.active_attempt = j.attempt AND calls.state = 'dialing') IS TRUE"
    "  RETURNING j.i, calls.call_id, j.attempt),"
    " a AS (UPDATE attempts SET state = 'connected', connected_at = now() FROM c"
    "  WHERE attempts.call_id = c.call_id AND attempts.attempt = c.attempt"
    "  AND (attempts.state = 'dialing') IS TRUE"
    "  RETURNING c.i)"
    " SELECT i, false FROM c UNION ALL SELECT i, true FROM a";

static ob_call_event_t event_for(dialer_ctx_t *ctx, const ob_dial_job_t *job, const char *type,
                                 const char *state, const char *result)
{
    ob_call_event_t ev = {0};
    ev.source = ob_xstrdup(ctx->source);
    ev.type = ob_xasprintf("outbound.call.%s", type);
    ev.call_id = ob_xstrdup(job->call_id);
    ev.deployment_id = ob_xstrdup(job->deployment_id);
    ev.account_id = ob_xstrdup(job->account_id);
    ev.state = ob_xstrdup(state);
    ev.result = result ? ob_xstrdup(result) : NULL;
    ev.phone_number = ob_xstrdup(job->phone_number);
    ev.message_reference = job->message_reference ? ob_xstrdup(job->message_reference) : NULL;
    ev.attempt = job->attempt;
    ev.max_attempts = job->max_attempts;
    return ev;
}

void dialer_slots_init(dialer_ctx_t *ctx)
{
    size_t n = (size_t)ctx->cfg->channels;
    ctx->calls = ob_xcalloc(n, sizeof(dialer_call_t));
    ctx->free_slots = ob_xcalloc(n, sizeof(int));
    ctx->verifying = ob_xcalloc(n, sizeof(int));
    ctx->taking = ob_xcalloc(n, sizeof(int));
    ctx->connecting = ob_xcalloc(n, sizeof(int));
    ctx->ending = ob_xcalloc(n, sizeof(int));
    /* Popped from the top: slot 0 first. */
    for (int i = 0; i < (int)n; i++)
        ctx->free_slots[i] = (int)n - 1 - i;
    ctx->nfree = (int)n;
}

void dialer_slots_drop_messages(dialer_ctx_t *ctx)
{
    for (int i = 0; ctx->calls && i < (int)ctx->cfg->channels; i++) {
        if (ctx->calls[i].msg)
            rd_kafka_message_destroy(ctx->calls[i].msg);
        ctx->calls[i].msg = NULL;
    }
}

void dialer_slots_free(dialer_ctx_t *ctx)
{
    for (int i = 0; ctx->calls && i < (int)ctx->cfg->channels; i++) {
        ob_dial_job_clear(&ctx->calls[i].job);
        free(ctx->calls[i].sip_reason);
    }
    while (ctx->unacked) {
        struct dialer_unacked *u = ctx->unacked;
        ob_err_t err = {{0}};
        if (ob_produce_batch_wait(u->batch, 0, &err) != OB_OK) /* frees it */
            OB_WARN("worker", "events left for the relay: %s", err.msg);
        ctx->unacked = u->next;
        free(u->ids);
        free(u);
    }
    free(ctx->to_mark);
    free(ctx->calls);
    free(ctx->free_slots);
    free(ctx->verifying);
    free(ctx->taking);
    free(ctx->connecting);
    free(ctx->ending);
}

int dialer_pending(const dialer_ctx_t *ctx)
{
    return ctx->ntaking + ctx->nconnecting + ctx->nending;
}

static int slot_index(const dialer_ctx_t *ctx, const dialer_call_t *c)
{
    return (int)(c - ctx->calls);
}

static void release_slot(dialer_ctx_t *ctx, dialer_call_t *c)
{
    ob_dial_job_clear(&c->job);
    free(c->sip_reason);
    memset(c, 0, sizeof(*c));
    ctx->free_slots[ctx->nfree++] = slot_index(ctx, c);
    ctx->active--;
    ob_metric_set(&ctx->metrics[M_IN_FLIGHT], ctx->active);
}

/* The job's deployment's URLs did not answer 200: its attempt ends untried
 * (conclude_attempts() lets a released attempt end as noattempt), and the
 * call's retry rules decide what comes next. */
static void fail_url_check(dialer_ctx_t *ctx, dialer_call_t *c, const char *why)
{
    OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", c->job.call_id), "attempt %lld not dialed: %s",
           (long long)c->job.attempt, why ? why : "URL check failed");
    c->state = DIALER_SLOT_ENDING;
    c->end = (ob_attempt_end_t){
        .call_id = c->job.call_id,
        .attempt = (int)c->job.attempt,
        .result = OB_RESULT_NOATTEMPT,
        .reason = OB_REASON_URL_CHECK_FAILED,
        .decision_ms = -1,
    };
    ctx->ending[ctx->nending++] = slot_index(ctx, c);
}

/* Moves slot i on by its deployment's URL check: to dialing, or to its
 * noattempt conclusion. Returns true while the check is still running. */
static bool verify_one(dialer_ctx_t *ctx, int i)
{
    dialer_call_t *c = &ctx->calls[i];
    const char *why = NULL;
    switch (dialer_app_check_urls(ctx->app, &c->job, &why)) {
    case DIALER_URLS_OK:
        c->state = DIALER_SLOT_TAKING;
        ctx->taking[ctx->ntaking++] = i;
        return false;
    case DIALER_URLS_FAILED:
        fail_url_check(ctx, c, why);
        return false;
    case DIALER_URLS_WAIT:
        break;
    }
    return true;
}

void dialer_take_job(dialer_ctx_t *ctx, rd_kafka_message_t *msg)
{
    ob_err_t err = {{0}};
    OB_ASSERT(ctx->nfree > 0); /* the loop only takes jobs with a free channel */
    dialer_call_t *c = &ctx->calls[ctx->free_slots[--ctx->nfree]];
    memset(c, 0, sizeof(*c));
    c->in_use = true;
    c->state = DIALER_SLOT_TAKING;
    c->decision_ms = -1;
    c->msg = msg;
    ctx->active++;
    ob_rc_t rc = ob_dial_job_decode(msg->payload, msg->len, &c->job, &err);
    /* The thresholds were validated by ingest; a bad one keeps the defaults. */
    if (rc == OB_OK && ob_detect_config_parse(c->job.detection, &c->detect, &err) != OB_OK)
        OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", c->job.call_id), "%s", err.msg);
    if (rc != OB_OK) {
        OB_ERROR("worker", "invalid dial job at partition %d offset %lld: %s", msg->partition,
                 (long long)msg->offset, err.msg);
        c->invalid = true; /* its offset is stored with the others' after the flush */
        ctx->taking[ctx->ntaking++] = slot_index(ctx, c);
        return;
    }
    c->state = DIALER_SLOT_VERIFYING;
    if (verify_one(ctx, slot_index(ctx, c)))
        ctx->verifying[ctx->nverifying++] = slot_index(ctx, c);
}

void dialer_verify(dialer_ctx_t *ctx)
{
    int kept = 0;
    for (int k = 0; k < ctx->nverifying; k++)
        if (verify_one(ctx, ctx->verifying[k]))
            ctx->verifying[kept++] = ctx->verifying[k];
    ctx->nverifying = kept;
}

void dialer_drop_unverified(dialer_ctx_t *ctx)
{
    if (ctx->nverifying > 0)
        OB_WARN("worker", "%d job(s) waiting for a URL check not started (drain)", ctx->nverifying);
    for (int k = 0; k < ctx->nverifying; k++) {
        dialer_call_t *c = &ctx->calls[ctx->verifying[k]];
        rd_kafka_message_destroy(c->msg);
        c->msg = NULL;
        release_slot(ctx, c);
    }
    ctx->nverifying = 0;
}

static void on_answered(void *worker, void *call, const char *callee_type)
{
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    c->connecting = true;
    c->answered_as = callee_type;
    ctx->connecting[ctx->nconnecting++] = slot_index(ctx, c);
}

/* The callee type is known: the application hears it too (the attempt
 * records it with the result at the end), at once or right after the
 * connected transition it waits for. */
static void on_decided(void *worker, void *call, const char *callee_type, int decision_ms)
{
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    c->decided_as = callee_type;
    c->decision_ms = decision_ms;
    if (c->answered)
        dialer_app_notify(ctx->app, c, "callee_type", callee_type);
}

/* Counts a dialed attempt's result (outbound_results_total); noattempt has
 * no series. */
static void count_result(dialer_ctx_t *ctx, ob_result_t r)
{
    if (r < OB_RESULT_DIALED_COUNT)
        ob_metric_add(&ctx->metrics[M_RESULT + r], 1);
}

/* Queues the attempt's conclusion (ob_calls_conclude_tx: answered calls
 * complete; unanswered ones get their next attempt by the call's retry
 * rules, or fail); the slot is freed once Postgres took it. */
static void on_ended(void *worker, void *call, bool was_answered, const char *result, int ring_ms,
                     int talk_ms)
{
    dialer_ctx_t *ctx = worker;
    dialer_call_t *c = call;
    ob_result_t r = OB_RESULT_UNKNOWN;
    ob_reason_t why = OB_REASON_UNKNOWN;
    if (c->cut && !was_answered)
        r = OB_RESULT_UNKNOWN; /* we do not know how it would have ended */
    else if (!ob_result_parse(result, &r))
        OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", c->job.call_id),
               "the carrier's result '%s' is no result: recorded as unknown", result);
    if (c->cut)
        why = c->cut_by;
    else if (was_answered)
        why = OB_REASON_ANSWERED;
    else if (!ob_reason_of_result(r, &why)) /* a callee type, yet unanswered */
        why = OB_REASON_UNKNOWN;
    count_result(ctx, r);
    c->state = DIALER_SLOT_ENDING;
    c->end = (ob_attempt_end_t){
        .call_id = c->job.call_id,
        .attempt = (int)c->job.attempt,
        .result = r,
        .reason = why,
        .answered = was_answered,
        .ring_ms = ring_ms,
        .talk_ms = talk_ms,
        .decision_ms = was_answered ? c->decision_ms : -1,
        .sip_code = c->sip_code,
        .sip_reason = c->sip_reason,
        .decided_by = c->detected.why,
        .confidence = c->detected.confidence,
        .beep = c->detected.beep,
        .beep_ms = c->detected.beep_ms,
    };
    ctx->ending[ctx->nending++] = slot_index(ctx, c);
}

/* The audio detector's verdict, kept for the conclusion that follows. */
static void on_detected(void *worker, void *call, const ob_detect_result_t *r)
{
    dialer_call_t *c = call;
    (void)worker;
    c->detected = *r;
}

/* The SIP outcome, kept for the conclusion that follows at once. */
static void on_outcome(void *worker, void *call, int code, const char *reason)
{
    dialer_call_t *c = call;
    (void)worker;
    c->sip_code = code;
    free(c->sip_reason);
    c->sip_reason = reason && reason[0] ? ob_xstrdup(reason) : NULL;
    if (code != 200)
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", c->job.call_id), "SIP: %d %s", code,
               reason ? reason : "");
}

/* Runs a DIALING_SQL or CONNECTED_SQL batch over the slots idx[0..n) not
 * excluded: sets each slot's refused flag (and, for dialing, queued_s). A call row changed whose
 * attempt did not match (the two disagree: a race with the scheduler) excludes that slot and
 * returns OB_EAGAIN, so the transaction runs again without it. */
static ob_rc_t guarded_batch(dialer_ctx_t *ctx, const char *sql, bool with_job, const int *idx,
                             int n, ob_err_t *err)
{
    cJSON *rows = cJSON_CreateArray();
    int used = 0;
    for (int k = 0; k < n; k++) {
        dialer_call_t *c = &ctx->calls[idx[k]];
        c->refused = true;
        if (c->excluded || c->invalid)
            continue;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "i", k);
        cJSON_AddStringToObject(row, "call_id", c->job.call_id);
        cJSON_AddNumberToObject(row, "attempt", (double)c->job.attempt);
        if (with_job)
            cJSON_AddStringToObject(row, "job_id", c->job.job_id);
        cJSON_AddItemToArray(rows, row);
        used++;
    }
    if (used == 0) {
        cJSON_Delete(rows);
        return OB_OK;
    }
    char *text = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);
    char lease[16];
    snprintf(lease, sizeof(lease), "%lld", ctx->cfg->lease_s);
    const char *params[] = {text, ctx->cfg->base.instance_id, lease};
    PGresult *res = NULL;
    ob_rc_t rc = ob_pg_exec(ctx->pg, sql, with_job ? 3 : 1, params, &res, err);
    cJSON_free(text);
    /* refused stays set unless both rows changed: count per slot. */
    unsigned char *changed = ob_xcalloc((size_t)n, 1);
    for (int r = 0; rc == OB_OK && r < PQntuples(res); r++) {
        int k = atoi(PQgetvalue(res, r, 0));
        if (k < 0 || k >= n)
            continue;
        changed[k] |= strcmp(PQgetvalue(res, r, 1), "t") == 0 ? 2 : 1;
        if (PQnfields(res) > 2 && !PQgetisnull(res, r, 2))
            ctx->calls[idx[k]].queued_s = atof(PQgetvalue(res, r, 2));
    }
    for (int k = 0; rc == OB_OK && k < n; k++) {
        dialer_call_t *c = &ctx->calls[idx[k]];
        if (changed[k] == 3) {
            c->refused = false;
        } else if (changed[k] == 1) {
            c->excluded = true;
            ob_err_set(err, "call %s: its call and attempt rows disagree", c->job.call_id);
        }
    }
    for (int k = 0; rc == OB_OK && k < n; k++)
        if (changed[k] == 1)
            rc = OB_EAGAIN;
    free(changed);
    PQclear(res);
    return rc;
}

/* Appends an event to evs (capacity checked by the caller). */
#define PUSH_EVENT(evs, n, ev) ((evs)[(n)++] = (ev))

/* Appends the ids of the array literal more to the array literal *ids. */
static void append_ids(char **ids, char *more)
{
    if (!*ids) {
        *ids = more;
        return;
    }
    size_t a = strlen(*ids), b = strlen(more);
    char *joined = ob_xmalloc(a + b + 1);
    memcpy(joined, *ids, a - 1); /* without its '}' */
    joined[a - 1] = ',';
    memcpy(joined + a, more + 1, b); /* without its '{' */
    joined[a + b - 1] = '\0';
    free(*ids);
    free(more);
    *ids = joined;
}

/* Takes the events the broker has acknowledged (in flush order; all of them
 * when block is set) off the list: their ids wait in ctx->to_mark for the
 * next transaction. A failure leaves those events to the relay. Not
 * blocking, a slow acknowledgement (the first produce fetches metadata)
 * never holds a turn up. */
static void collect_acks(dialer_ctx_t *ctx, bool block)
{
    while (ctx->unacked && (block || !ob_produce_batch_pending(ctx->unacked->batch))) {
        struct dialer_unacked *u = ctx->unacked;
        ob_err_t err = {{0}};
        if (ob_produce_batch_wait(u->batch, 30000, &err) == OB_OK) {
            append_ids(&ctx->to_mark, u->ids);
        } else {
            OB_WARN("worker", "events left for the relay: %s", err.msg);
            free(u->ids);
        }
        ctx->unacked = u->next;
        if (!ctx->unacked)
            ctx->unacked_tail = NULL;
        free(u);
    }
}

void dialer_settle(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    collect_acks(ctx, true);
    if (!ctx->to_mark)
        return;
    if (ob_events_mark(ctx->pg, ctx->to_mark, false, &err) != OB_OK)
        OB_WARN("worker", "events not marked published (the relay sends them again): %s", err.msg);
    free(ctx->to_mark);
    ctx->to_mark = NULL;
}

/* One transaction over everything waiting; fills evs/nevs with the events
 * recorded and done[] (per ending slot) with whether it was concluded. */
static ob_rc_t flush_tx(dialer_ctx_t *ctx, ob_call_event_t *evs, size_t *nevs, bool *done,
                        ob_err_t *err)
{
    size_t n = 0;
    memset(evs, 0, (size_t)dialer_pending(ctx) * sizeof(*evs));
    ob_rc_t rc = ob_pg_begin(ctx->pg, err);
    if (rc == OB_OK && ctx->to_mark)
        rc = ob_events_mark(ctx->pg, ctx->to_mark, true, err);
    if (rc == OB_OK)
        rc = guarded_batch(ctx, DIALING_SQL, true, ctx->taking, ctx->ntaking, err);
    if (rc == OB_OK)
        rc = guarded_batch(ctx, CONNECTED_SQL, false, ctx->connecting, ctx->nconnecting, err);
    ob_attempt_end_t *ends = ob_xcalloc((size_t)ctx->nending + 1, sizeof(*ends));
    ob_call_event_t *ended = ob_xcalloc((size_t)ctx->nending + 1, sizeof(*ended));
    for (int k = 0; k < ctx->nending; k++)
        ends[k] = ctx->calls[ctx->ending[k]].end;
    if (rc == OB_OK && ctx->nending > 0)
        rc = ob_calls_conclude_tx(ctx->pg, ctx->source, ends, (size_t)ctx->nending, ended, done,
                                  err);
    free(ends);
    if (rc == OB_OK) {
        /* In the order of the transitions, a call's connected before its
         * end (both can come in one turn): the events' ids follow it. */
        for (int k = 0; k < ctx->ntaking; k++) {
            dialer_call_t *c = &ctx->calls[ctx->taking[k]];
            if (!c->refused)
                PUSH_EVENT(
                    evs, n,
                    event_for(ctx, &c->job, "dialing", ob_state_name(OB_STATE_DIALING), NULL));
        }
        for (int k = 0; k < ctx->nconnecting; k++) {
            dialer_call_t *c = &ctx->calls[ctx->connecting[k]];
            /* "processing" is no result: the event carries none until the end. */
            bool known = strcmp(c->answered_as, "processing") != 0;
            if (!c->refused)
                PUSH_EVENT(evs, n,
                           event_for(ctx, &c->job, "connected", ob_state_name(OB_STATE_CONNECTED),
                                     known ? c->answered_as : NULL));
        }
        for (int k = 0; k < ctx->nending; k++)
            if (done[k]) {
                PUSH_EVENT(evs, n, ended[k]);
                memset(&ended[k], 0, sizeof(ended[k]));
            }
        *nevs = n;
        rc = ob_events_record_many(ctx->pg, evs, n, err);
    }
    for (int k = 0; k < ctx->nending; k++)
        ob_call_event_clear(&ended[k]); /* those not moved to evs */
    free(ended);
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, err);
    if (rc != OB_OK)
        ob_pg_rollback(ctx->pg);
    return rc;
}

/* Rewinds each partition of the taken jobs to the first of them, so they are
 * fetched again (by this worker or, after a rebalance, by another), and
 * frees their slots. */
static void give_back_taken(dialer_ctx_t *ctx)
{
    for (int k = 0; k < ctx->ntaking; k++) {
        dialer_call_t *c = &ctx->calls[ctx->taking[k]];
        bool first = true;
        for (int e = 0; e < k && first; e++) {
            const rd_kafka_message_t *m = ctx->calls[ctx->taking[e]].msg;
            first = !(m->rkt == c->msg->rkt && m->partition == c->msg->partition);
        }
        if (first) {
            rd_kafka_resp_err_t e =
                rd_kafka_seek(c->msg->rkt, c->msg->partition, c->msg->offset, 1000);
            if (e)
                OB_WARN("worker", "cannot rewind partition %d: %s", c->msg->partition,
                        rd_kafka_err2str(e));
        }
    }
    for (int k = 0; k < ctx->ntaking; k++) {
        dialer_call_t *c = &ctx->calls[ctx->taking[k]];
        rd_kafka_message_destroy(c->msg);
        c->msg = NULL;
        release_slot(ctx, c);
    }
    ctx->ntaking = 0;
}

/* After the commit: the jobs taken start their carrier calls. */
static void start_taken(dialer_ctx_t *ctx)
{
    for (int k = 0; k < ctx->ntaking; k++) {
        dialer_call_t *c = &ctx->calls[ctx->taking[k]];
        ob_consumer_store(ctx->jobs, c->msg);
        rd_kafka_message_destroy(c->msg);
        c->msg = NULL;
        if (c->refused) {
            ob_metric_add(&ctx->metrics[M_STALE_JOBS], 1);
            if (!c->invalid)
                OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", c->job.call_id),
                       "refused dial job %s: its attempt is not waiting for it", c->job.job_id);
            release_slot(ctx, c);
            continue;
        }
        c->state = DIALER_SLOT_LIVE;
        ob_metric_add(&ctx->metrics[M_JOBS], 1);
        /* A clock set apart for tests can make it negative. */
        ob_histogram_observe(&ctx->queue_to_dialing, c->queued_s > 0 ? c->queued_s : 0);
        OB_LOG(OB_LOG_DEBUG, "worker", OB_KV("call_id", c->job.call_id), "dialing %s",
               c->job.phone_number);
        carrier_dial_t dial = {
            .call_id = c->job.call_id,
            .attempt = (int)c->job.attempt,
            .phone = c->job.phone_number,
            .caller_id = c->job.caller_id,
            .post_dial = c->job.post_dial,
            .detect = &c->detect,
        };
        bool started = ctx->carrier->ops->start(ctx->carrier, c, &dial);
        OB_ASSERT(started); /* channels and carrier slots are the same count */
    }
    ctx->ntaking = 0;
    ob_metric_set(&ctx->metrics[M_IN_FLIGHT], ctx->active);
}

/* After the commit: the application hears of the calls connected (and of
 * a callee type decided while the transition waited). */
static void tell_connected(dialer_ctx_t *ctx)
{
    for (int k = 0; k < ctx->nconnecting; k++) {
        dialer_call_t *c = &ctx->calls[ctx->connecting[k]];
        c->connecting = false;
        c->answered = !c->refused;
        if (!c->answered)
            continue;
        if (c->state != DIALER_SLOT_LIVE)
            continue; /* ended already: there is no call left to run */
        dialer_app_notify(ctx->app, c, "connected", c->answered_as);
        if (c->decided_as)
            dialer_app_notify(ctx->app, c, "callee_type", c->decided_as);
    }
    ctx->nconnecting = 0;
}

/* After the commit: the slots of the calls concluded are free again. */
static void free_ended(dialer_ctx_t *ctx, const bool *done)
{
    for (int k = 0; k < ctx->nending; k++) {
        dialer_call_t *c = &ctx->calls[ctx->ending[k]];
        if (!done[k])
            OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", c->job.call_id),
                   "attempt %lld had already been concluded", (long long)c->job.attempt);
        if (c->msg) { /* a job that failed its URL check: done with */
            ob_consumer_store(ctx->jobs, c->msg);
            rd_kafka_message_destroy(c->msg);
        }
        release_slot(ctx, c);
    }
    ctx->nending = 0;
}

bool dialer_flush(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    collect_acks(ctx, false);
    if (dialer_pending(ctx) == 0) {
        if (ctx->to_mark) { /* nothing else to write: mark them on their own */
            if (ob_events_mark(ctx->pg, ctx->to_mark, false, &err) != OB_OK)
                OB_WARN("worker", "events not marked published (the relay sends them again): %s",
                        err.msg);
            free(ctx->to_mark);
            ctx->to_mark = NULL;
        }
        return true;
    }
    if (ob_mono_ms() < ctx->flush_after_ms) {
        give_back_taken(ctx); /* jobs wait in Kafka while Postgres is away */
        return false;
    }
    size_t cap = (size_t)dialer_pending(ctx);
    ob_call_event_t *evs = ob_xcalloc(cap, sizeof(*evs));
    bool *done = ob_xcalloc((size_t)ctx->nending + 1, sizeof(bool));
    size_t nevs = 0;
    int64_t started_us = ob_mono_us();
    ob_rc_t rc = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
    /* A half-matched guard or a deadlock: run again (each rerun excludes
     * one more job or call at least, or lost a deadlock; both are rare). */
    for (int tries = 0; rc == OB_OK || (rc == OB_EAGAIN && tries < 5); tries++) {
        for (size_t i = 0; i < nevs; i++)
            ob_call_event_clear(&evs[i]);
        nevs = 0;
        rc = flush_tx(ctx, evs, &nevs, done, &err);
        if (rc == OB_OK)
            break;
        if (rc == OB_EAGAIN)
            OB_WARN("worker", "transitions written again: %s", err.msg);
    }
    if (rc != OB_OK) {
        __atomic_store_n(&ctx->pg_up, 0, __ATOMIC_RELAXED);
        OB_ERROR("worker", "%d transition(s) not recorded, retrying in 1 s: %s",
                 dialer_pending(ctx), err.msg);
        ctx->flush_after_ms = ob_mono_ms() + 1000;
        for (size_t i = 0; i < nevs; i++)
            ob_call_event_clear(&evs[i]);
        for (int k = 0; k < ctx->ntaking; k++)
            ctx->calls[ctx->taking[k]].excluded = false;
        for (int k = 0; k < ctx->nconnecting; k++)
            ctx->calls[ctx->connecting[k]].excluded = false;
        give_back_taken(ctx);
        free(evs);
        free(done);
        return false;
    }
    __atomic_store_n(&ctx->pg_up, 1, __ATOMIC_RELAXED);
    ob_pg_write_observe(ctx->pg_writes, "transitions", started_us);
    free(ctx->to_mark);
    ctx->to_mark = NULL;
    if (nevs > 0) {
        struct dialer_unacked *u = ob_xcalloc(1, sizeof(*u));
        if (ob_events_send(ctx->producer, ctx->topic_events, evs, nevs, &u->batch, &err) != OB_OK)
            OB_WARN("worker", "%zu event(s) may be left for the relay: %s", nevs, err.msg);
        u->ids = ob_events_ids(evs, nevs);
        if (ctx->unacked_tail)
            ctx->unacked_tail->next = u;
        else
            ctx->unacked = u;
        ctx->unacked_tail = u;
    }
    for (size_t i = 0; i < nevs; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    start_taken(ctx);
    tell_connected(ctx);
    free_ended(ctx, done);
    free(done);
    return true;
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
        if (ctx->calls[i].state == DIALER_SLOT_LIVE) {
            ctx->calls[i].cut = true;
            ctx->calls[i].cut_by = OB_REASON_DIALER_SHUTDOWN;
            ctx->carrier->ops->hangup(ctx->carrier, &ctx->calls[i]);
        }
    }
}

/* The row's started_at is this process's start: reset by its first upsert
 * (an instance id can come back after a restart), kept by the next ones. */
static const char ANNOUNCE_SQL[] =
    "INSERT INTO dialers (instance_id, carrier, channels, active, partitions, calls_per_second)"
    " VALUES ($1, $2, $3::int, $4::int, $5::int[], nullif($7::float8, 0))"
    " ON CONFLICT (instance_id) DO UPDATE SET carrier = EXCLUDED.carrier,"
    "  channels = EXCLUDED.channels, active = EXCLUDED.active,"
    "  partitions = EXCLUDED.partitions, calls_per_second = EXCLUDED.calls_per_second,"
    "  seen_at = now(),"
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
    char channels[16], active[16], cps[32];
    snprintf(channels, sizeof(channels), "%lld", ctx->cfg->channels);
    snprintf(active, sizeof(active), "%d", ctx->active);
    /* The trunk's calls-per-second limit; the sim carrier has none. */
    snprintf(cps, sizeof(cps), "%.17g",
             strcmp(ctx->cfg->carrier, "sip") == 0 ? ctx->cfg->sip_cps : 0.0);
    char *parts = assigned_array(ctx);
    const char *first = ctx->announced ? "false" : "true";
    const char *params[] = {
        ctx->cfg->base.instance_id, ctx->cfg->carrier, channels, active, parts, first, cps};
    ob_rc_t rc = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
    if (rc == OB_OK)
        rc = ob_pg_exec(ctx->pg, ANNOUNCE_SQL, 7, params, NULL, &err);
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
    .outcome = on_outcome,
    .detected = on_detected,
};
