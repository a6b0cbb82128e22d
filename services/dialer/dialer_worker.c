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
#include "dialer_doc.h"
#include "dialer_media.h"
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
#include <time.h>

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

/* The connected calls still running (one that also ended has its connected
 * transition written with its end, ob_calls_conclude_tx's connect), call
 * row first as everywhere; rows as DIALING_SQL (without the third column). */
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

ob_call_event_t dialer_event_for(dialer_ctx_t *ctx, const ob_dial_job_t *job, const char *type,
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

/* One slot's part in a flush: the state it was flushed in and what the
 * transaction made of it. Lives only during dialer_flush. */
typedef struct {
    dialer_slot_t *slot;     /* the slot */
    dialer_slot_state_t was; /* its state when the flush began */
    bool excluded;           /* a guard half-matched: refused, not written again */
    bool refused;            /* its dialing or connected guard did not match */
    bool concluded;          /* its conclusion was written (the ENDING states) */
    double queued_s;         /* TAKING: from due to dialing, as recorded */
} entry_t;

/* The slots a flush writes, in the order they began to wait. */
typedef struct {
    entry_t *e; /* entries (owned) */
    int n;      /* their count */
} batch_t;

static bool is_taken(dialer_slot_state_t st)
{
    return st == DIALER_SLOT_TAKING || st == DIALER_SLOT_INVALID;
}

static bool is_answered(dialer_slot_state_t st)
{
    return st == DIALER_SLOT_ANSWERED || st == DIALER_SLOT_ANSWERED_ENDING;
}

static bool is_ending(dialer_slot_state_t st)
{
    return st == DIALER_SLOT_ENDING || st == DIALER_SLOT_ANSWERED_ENDING ||
           st == DIALER_SLOT_CONNECTED_ENDING;
}

/* The job's deployment's URLs did not answer 200: its attempt ends untried
 * (conclude_attempts() lets a released attempt end as noattempt), and the
 * call's retry rules decide what comes next. */
static void fail_url_check(dialer_ctx_t *ctx, dialer_slot_t *s, const char *why)
{
    OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", s->job.call_id), "attempt %lld not dialed: %s",
           (long long)s->job.attempt, why ? why : "URL check failed");
    s->end = (ob_attempt_end_t){
        .call_id = s->job.call_id,
        .attempt = (int)s->job.attempt,
        .result = OB_RESULT_NOATTEMPT,
        .reason = OB_REASON_URL_CHECK_FAILED,
        .decision_ms = -1,
    };
    dialer_slot_enter(ctx, s, DIALER_SLOT_ENDING);
}

/* Moves a VERIFYING slot on by its deployment's URL check: to TAKING, or
 * to its noattempt conclusion; it stays while the check runs. */
static void verify_one(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    const char *why = NULL;
    switch (dialer_app_check_urls(ctx->app, &s->job, &why)) {
    case DIALER_URLS_OK:
        dialer_slot_enter(ctx, s, DIALER_SLOT_TAKING);
        break;
    case DIALER_URLS_FAILED:
        fail_url_check(ctx, s, why);
        break;
    case DIALER_URLS_WAIT:
        break;
    }
}

void dialer_take_job(dialer_ctx_t *ctx, rd_kafka_message_t *msg)
{
    ob_err_t err = {{0}};
    ob_dial_job_t job = {0};
    dialer_slot_t *s = dialer_slot_next_idle(ctx);
    OB_ASSERT(s != NULL); /* the loop only takes jobs with a free channel */
    ob_rc_t rc = ob_dial_job_decode(msg->payload, msg->len, &job, &err);
    if (rc != OB_OK) {
        OB_ERROR("worker", "invalid dial job at partition %d offset %lld: %s", msg->partition,
                 (long long)msg->offset, err.msg);
        ob_dial_job_clear(&job);
        dialer_slot_enter(ctx, s, DIALER_SLOT_INVALID);
        s->msg = msg; /* its offset is stored with the others' after the flush */
        return;
    }
    dialer_slot_enter(ctx, s, DIALER_SLOT_VERIFYING);
    s->msg = msg;
    s->job = job;
    /* The thresholds were validated by ingest; a bad one keeps the defaults. */
    if (ob_detect_config_parse(s->job.detection, &s->detect, &err) != OB_OK)
        OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", s->job.call_id), "%s", err.msg);
    verify_one(ctx, s);
}

void dialer_verify(dialer_ctx_t *ctx)
{
    if (ctx->nstate[DIALER_SLOT_VERIFYING] == 0)
        return;
    for (int k = 0; k < ctx->nwaiting; k++) {
        dialer_slot_t *s = &ctx->slots[ctx->waiting[k]];
        if (s->state == DIALER_SLOT_VERIFYING)
            verify_one(ctx, s); /* stays on the list: every move is to a waiting state */
    }
}

int64_t dialer_run(dialer_ctx_t *ctx)
{
    int64_t due = ctx->carrier->ops->run(ctx->carrier, ob_mono_ms());
    int64_t app_due = dialer_app_run(ctx->app, ob_mono_ms());
    int64_t media_due = ctx->media ? dialer_media_run(ctx->media, ob_mono_ms()) : INT64_MAX;
    int64_t doc_due = dialer_doc_run(ctx, ob_mono_ms());
    due = app_due < due ? app_due : due;
    due = media_due < due ? media_due : due;
    return doc_due < due ? doc_due : due;
}

void dialer_relay(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    int64_t now = ob_mono_ms();
    if (now < ctx->next_relay_ms)
        return;
    if (ctx->next_relay_ms > 0 &&
        ob_events_relay(ctx->producer, ctx->topic_events, ctx->pg, 10000, 1000, &err) < 0)
        OB_WARN("worker", "event relay: %s", err.msg);
    ctx->next_relay_ms = ob_mono_ms() + 5000;
}

void dialer_finish_app(dialer_ctx_t *ctx, int64_t deadline_ms)
{
    dialer_app_finish(ctx->app, deadline_ms);
    dialer_app_abort(ctx->app);
    if (ctx->noutcomes > 0 && !dialer_flush(ctx))
        OB_WARN("worker", "start_url outcomes not recorded");
}

void dialer_worker_free(dialer_ctx_t *ctx)
{
    dialer_app_free(ctx->app);
    ctx->app = NULL;
    dialer_media_free(ctx->media);
    ctx->media = NULL;
    if (ctx->carrier)
        ctx->carrier->ops->destroy(ctx->carrier);
    ctx->carrier = NULL;
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
    ctx->to_mark = NULL;
    dialer_outcomes_clear(ctx);
    free(ctx->outcomes);
    dialer_notes_clear(ctx);
    free(ctx->notes);
    dialer_slots_free(ctx);
    PQfinish(ctx->pg);
    ctx->pg = NULL;
}

/* Runs a DIALING_SQL (dialing: the TAKING entries) or CONNECTED_SQL batch
 * (the answered entries) over the entries not excluded: sets each one's
 * refused (and, for dialing, queued_s). A call row changed whose attempt
 * did not match (the two disagree: a race with the scheduler) excludes that
 * entry and returns OB_EAGAIN, so the transaction runs again without it. */
static ob_rc_t guarded_batch(dialer_ctx_t *ctx, bool dialing, batch_t *b, ob_err_t *err)
{
    cJSON *rows = cJSON_CreateArray();
    int used = 0;
    for (int k = 0; k < b->n; k++) {
        entry_t *e = &b->e[k];
        /* An answered call that also ended has its connected transition
         * written with its end (ob_calls_conclude_tx, connect). */
        if (dialing ? !is_taken(e->was) : e->was != DIALER_SLOT_ANSWERED)
            continue;
        e->refused = true;
        if (e->excluded || e->was == DIALER_SLOT_INVALID)
            continue;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "i", k);
        cJSON_AddStringToObject(row, "call_id", e->slot->job.call_id);
        cJSON_AddNumberToObject(row, "attempt", (double)e->slot->job.attempt);
        if (dialing)
            cJSON_AddStringToObject(row, "job_id", e->slot->job.job_id);
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
    ob_rc_t rc = ob_pg_exec(ctx->pg, dialing ? DIALING_SQL : CONNECTED_SQL, dialing ? 3 : 1, params,
                            &res, err);
    cJSON_free(text);
    /* refused stays set unless both rows changed: count per entry. */
    unsigned char *changed = ob_xcalloc((size_t)b->n, 1);
    for (int r = 0; rc == OB_OK && r < PQntuples(res); r++) {
        int k = atoi(PQgetvalue(res, r, 0));
        if (k < 0 || k >= b->n)
            continue;
        changed[k] |= strcmp(PQgetvalue(res, r, 1), "t") == 0 ? 2 : 1;
        if (PQnfields(res) > 2 && !PQgetisnull(res, r, 2))
            b->e[k].queued_s = atof(PQgetvalue(res, r, 2));
    }
    for (int k = 0; rc == OB_OK && k < b->n; k++) {
        if (changed[k] == 3) {
            b->e[k].refused = false;
        } else if (changed[k] == 1) {
            b->e[k].excluded = true;
            ob_err_set(err, "call %s: its call and attempt rows disagree",
                       b->e[k].slot->job.call_id);
        }
    }
    for (int k = 0; rc == OB_OK && k < b->n; k++)
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

/* One transaction over the batch; fills evs/nevs (room for 2 * b->n) with
 * the events recorded and each ending entry's concluded. */
static ob_rc_t flush_tx(dialer_ctx_t *ctx, batch_t *b, ob_call_event_t *evs, size_t *nevs,
                        ob_err_t *err)
{
    size_t n = 0, nends = 0;
    memset(evs, 0, (2 * (size_t)b->n + (size_t)ctx->nnotes) * sizeof(*evs));
    ob_rc_t rc = ob_pg_begin(ctx->pg, err);
    if (rc == OB_OK && ctx->to_mark)
        rc = ob_events_mark(ctx->pg, ctx->to_mark, true, err);
    if (rc == OB_OK)
        rc = guarded_batch(ctx, true, b, err);
    if (rc == OB_OK)
        rc = guarded_batch(ctx, false, b, err);
    ob_attempt_end_t *ends = ob_xcalloc((size_t)b->n + 1, sizeof(*ends));
    ob_call_event_t *ended = ob_xcalloc((size_t)b->n + 1, sizeof(*ended));
    entry_t **ending = ob_xcalloc((size_t)b->n + 1, sizeof(*ending));
    bool *done = ob_xcalloc((size_t)b->n + 1, sizeof(*done));
    for (int k = 0; k < b->n; k++)
        if (is_ending(b->e[k].was)) {
            ending[nends] = &b->e[k];
            ends[nends] = b->e[k].slot->end;
            ends[nends++].connect = b->e[k].was == DIALER_SLOT_ANSWERED_ENDING;
        }
    if (rc == OB_OK && nends > 0)
        rc = ob_calls_conclude_tx(ctx->pg, ctx->source, ends, nends, ended, done, err);
    for (size_t k = 0; rc == OB_OK && k < nends; k++)
        ending[k]->concluded = done[k];
    if (rc == OB_OK)
        rc = dialer_outcomes_write(ctx, err);
    free(ends);
    if (rc == OB_OK) {
        /* In the order of the transitions, a call's connected before its
         * end (both can come in one turn): the events' ids follow it. */
        for (int k = 0; k < b->n; k++) {
            const entry_t *e = &b->e[k];
            if (e->was == DIALER_SLOT_TAKING && !e->refused)
                PUSH_EVENT(evs, n,
                           dialer_event_for(ctx, &e->slot->job, "dialing",
                                            ob_state_name(OB_STATE_DIALING), NULL));
        }
        for (int k = 0; k < b->n; k++) {
            const entry_t *e = &b->e[k];
            /* connected with its end: when that end was written */
            if (!is_answered(e->was) ||
                (e->was == DIALER_SLOT_ANSWERED_ENDING ? !e->concluded : e->refused))
                continue;
            /* "processing" is no result: the event carries none until the end. */
            const char *as = e->slot->answered_as;
            PUSH_EVENT(evs, n,
                       dialer_event_for(ctx, &e->slot->job, "connected",
                                        ob_state_name(OB_STATE_CONNECTED),
                                        strcmp(as, "processing") != 0 ? as : NULL));
        }
        /* What running calls did (a gather's digits), before any end. */
        for (int k = 0; k < ctx->nnotes; k++)
            PUSH_EVENT(evs, n, dialer_note_copy(ctx, k));
        for (size_t k = 0; k < nends; k++) {
            if (done[k]) {
                PUSH_EVENT(evs, n, ended[k]);
                memset(&ended[k], 0, sizeof(ended[k]));
            }
        }
        *nevs = n;
        rc = ob_events_record_many(ctx->pg, evs, n, err);
    }
    for (size_t k = 0; k < nends; k++)
        ob_call_event_clear(&ended[k]); /* those not moved to evs */
    free(ended);
    free(ending);
    free(done);
    if (rc == OB_OK)
        rc = ob_pg_commit(ctx->pg, err);
    if (rc != OB_OK)
        ob_pg_rollback(ctx->pg);
    return rc;
}

/* Takes the slots a flush writes off the waiting list into a batch, in
 * their order; the VERIFYING ones stay on the list. */
static batch_t take_batch(dialer_ctx_t *ctx)
{
    batch_t b = {ob_xcalloc((size_t)ctx->nwaiting + 1, sizeof(entry_t)), 0};
    int kept = 0;
    for (int k = 0; k < ctx->nwaiting; k++) {
        dialer_slot_t *s = &ctx->slots[ctx->waiting[k]];
        if (dialer_slot_flushes(s->state))
            b.e[b.n++] = (entry_t){.slot = s, .was = s->state};
        else
            ctx->waiting[kept++] = ctx->waiting[k];
    }
    ctx->nwaiting = kept;
    return b;
}

/* The flush failed: rewinds each partition of the taken jobs to the first
 * of them, so they are fetched again (by this worker or, after a
 * rebalance, by another), and frees their slots; the other entries wait on
 * the list for the next flush. Frees the batch. */
static void give_back(dialer_ctx_t *ctx, batch_t *b)
{
    for (int k = 0; k < b->n; k++) {
        const rd_kafka_message_t *m = b->e[k].slot->msg;
        bool first = is_taken(b->e[k].was);
        for (int e = 0; e < k && first; e++)
            first = !(is_taken(b->e[e].was) && b->e[e].slot->msg->rkt == m->rkt &&
                      b->e[e].slot->msg->partition == m->partition);
        if (first) {
            rd_kafka_resp_err_t e = rd_kafka_seek(m->rkt, m->partition, m->offset, 1000);
            if (e)
                OB_WARN("worker", "cannot rewind partition %d: %s", m->partition,
                        rd_kafka_err2str(e));
        }
    }
    for (int k = 0; k < b->n; k++) {
        dialer_slot_t *s = b->e[k].slot;
        if (!is_taken(b->e[k].was)) {
            ctx->waiting[ctx->nwaiting++] = (int)(s - ctx->slots);
            continue;
        }
        rd_kafka_message_destroy(s->msg);
        s->msg = NULL;
        dialer_slot_enter(ctx, s, DIALER_SLOT_IDLE);
    }
    free(b->e);
}

/* After the commit: the jobs taken start their carrier calls (their offsets
 * stored); the refused and the invalid ones free their slots. */
static void start_taken(dialer_ctx_t *ctx, const batch_t *b)
{
    for (int k = 0; k < b->n; k++) {
        const entry_t *e = &b->e[k];
        dialer_slot_t *s = e->slot;
        if (!is_taken(e->was))
            continue;
        ob_consumer_store(ctx->jobs, s->msg);
        rd_kafka_message_destroy(s->msg);
        s->msg = NULL;
        if (e->refused) {
            ob_metric_add(&ctx->metrics[M_STALE_JOBS], 1);
            if (e->was != DIALER_SLOT_INVALID)
                OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", s->job.call_id),
                       "refused dial job %s: its attempt is not waiting for it", s->job.job_id);
            dialer_slot_enter(ctx, s, DIALER_SLOT_IDLE);
            continue;
        }
        OB_ASSERT(!ctx->cutting); /* nothing starts once the drain hung up */
        dialer_slot_enter(ctx, s, DIALER_SLOT_DIALING);
        ob_metric_add(&ctx->metrics[M_JOBS], 1);
        /* A clock set apart for tests can make it negative. */
        ob_histogram_observe(&ctx->queue_to_dialing, e->queued_s > 0 ? e->queued_s : 0);
        OB_LOG(OB_LOG_DEBUG, "worker", OB_KV("call_id", s->job.call_id), "dialing %s",
               s->job.phone_number);
        carrier_dial_t dial = {
            .call_id = s->job.call_id,
            .attempt = (int)s->job.attempt,
            .phone = s->job.phone_number,
            .caller_id = s->job.caller_id,
            .post_dial = s->job.post_dial,
            .detect = &s->detect,
        };
        bool started = ctx->carrier->ops->start(ctx->carrier, s, &dial);
        OB_ASSERT(started); /* channels and carrier slots are the same count */
        dialer_doc_prepare(ctx, s);
    }
    ob_metric_set(&ctx->metrics[M_IN_FLIGHT], dialer_active(ctx));
}

/* After the commit: the application hears of the calls connected (and of
 * a callee type decided while the transition waited); a refused connected
 * leaves the call running without it. */
static void tell_connected(dialer_ctx_t *ctx, const batch_t *b)
{
    for (int k = 0; k < b->n; k++) {
        const entry_t *e = &b->e[k];
        dialer_slot_t *s = e->slot;
        if (e->was != DIALER_SLOT_ANSWERED)
            continue; /* ANSWERED_ENDING: there is no call left to run */
        if (e->refused) {
            dialer_slot_enter(ctx, s, DIALER_SLOT_DIALING);
            continue;
        }
        dialer_slot_enter(ctx, s, DIALER_SLOT_CONNECTED);
        dialer_app_notify(ctx->app, s, &s->job, "connected", s->answered_as);
        if (s->decided_as)
            dialer_app_notify(ctx->app, s, &s->job, "callee_type", s->decided_as);
        dialer_doc_connected(ctx, s);
    }
}

/* After the commit: the slots of the calls concluded are free again. */
static void free_ended(dialer_ctx_t *ctx, const batch_t *b)
{
    for (int k = 0; k < b->n; k++) {
        const entry_t *e = &b->e[k];
        dialer_slot_t *s = e->slot;
        if (!is_ending(e->was))
            continue;
        if (!e->concluded)
            OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", s->job.call_id),
                   "attempt %lld had already been concluded", (long long)s->job.attempt);
        if (s->msg) { /* a job that failed its URL check: done with */
            ob_consumer_store(ctx->jobs, s->msg);
            rd_kafka_message_destroy(s->msg);
            s->msg = NULL;
        }
        dialer_slot_enter(ctx, s, DIALER_SLOT_IDLE);
    }
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
    batch_t b = take_batch(ctx);
    if (ob_mono_ms() < ctx->flush_after_ms) {
        give_back(ctx, &b); /* jobs wait in Kafka while Postgres is away */
        return false;
    }
    ob_call_event_t *evs = ob_xcalloc(2 * (size_t)b.n + (size_t)ctx->nnotes + 1, sizeof(*evs));
    size_t nevs = 0;
    int64_t started_us = ob_mono_us();
    ob_rc_t rc = ob_pg_ensure(&ctx->pg, ctx->cfg->base.pg_dsn, &err);
    /* A half-matched guard or a deadlock: run again (each rerun excludes
     * one more job or call at least, or lost a deadlock; both are rare). */
    for (int tries = 0; rc == OB_OK || (rc == OB_EAGAIN && tries < 5); tries++) {
        for (size_t i = 0; i < nevs; i++)
            ob_call_event_clear(&evs[i]);
        nevs = 0;
        rc = flush_tx(ctx, &b, evs, &nevs, &err);
        if (rc == OB_OK)
            break;
        if (rc == OB_EAGAIN)
            OB_WARN("worker", "transitions written again: %s", err.msg);
    }
    if (rc != OB_OK) {
        ob_service_set_pg_up(&ctx->svc, false);
        OB_ERROR("worker", "%d transition(s) not recorded, retrying in 1 s: %s",
                 b.n + ctx->noutcomes, err.msg);
        ctx->flush_after_ms = ob_mono_ms() + 1000;
        for (size_t i = 0; i < nevs; i++)
            ob_call_event_clear(&evs[i]);
        free(evs);
        give_back(ctx, &b);
        return false;
    }
    ob_service_set_pg_up(&ctx->svc, true);
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
    dialer_outcomes_clear(ctx);
    dialer_notes_clear(ctx);
    start_taken(ctx, &b);
    tell_connected(ctx, &b);
    free_ended(ctx, &b);
    free(b.e);
    return true;
}

void dialer_renew_leases(dialer_ctx_t *ctx)
{
    ob_err_t err = {{0}};
    int64_t now = ob_mono_ms();
    if (now < ctx->next_renew_ms)
        return;
    ctx->next_renew_ms = now + ctx->cfg->lease_s * 1000 / 3;
    if (dialer_active(ctx) == 0)
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
    ctx->cutting = true; /* before the hangups: a carrier may report the ends at once */
    for (int i = 0; i < (int)ctx->cfg->channels; i++) {
        dialer_slot_state_t st = ctx->slots[i].state;
        if (st == DIALER_SLOT_DIALING || st == DIALER_SLOT_ANSWERED || st == DIALER_SLOT_CONNECTED)
            ctx->carrier->ops->hangup(ctx->carrier, &ctx->slots[i]);
    }
    int64_t settle = ob_mono_ms() + 2000;
    while (ctx->carrier->ops->active(ctx->carrier) > 0 && ob_mono_ms() < settle) {
        struct timespec ts = {0, 10 * 1000000L};
        ctx->carrier->ops->run(ctx->carrier, ob_mono_ms());
        nanosleep(&ts, NULL); /* not ob_service_sleep: a stop was asked already */
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
    snprintf(active, sizeof(active), "%d", dialer_active(ctx));
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
    ob_service_set_pg_up(&ctx->svc, rc == OB_OK);
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
