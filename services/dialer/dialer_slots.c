/*
 * The worker's slots, one per channel: the state machine of
 * dialer_slot_state_t, the idle stack that hands out free channels, the
 * list of slots waiting for a URL check or for the next flush, and the
 * carrier's callbacks, which only record what happened on the slot. No
 * effects of its own: the worker (dialer_worker.c) drives the carrier and
 * Postgres and moves slots on as their effects are done.
 */
#include "dialer.h"
#include "dialer_app.h"
#include "dialer_doc.h"
#include "ob_log.h"

#include <stdlib.h>
#include <string.h>

#define BIT(st) (1u << (st))

/* The moves of the table in dialer.h, by the state they leave. */
static const unsigned moves[DIALER_SLOT_STATE_COUNT] = {
    [DIALER_SLOT_IDLE] = BIT(DIALER_SLOT_VERIFYING) | BIT(DIALER_SLOT_INVALID),
    [DIALER_SLOT_VERIFYING] =
        BIT(DIALER_SLOT_TAKING) | BIT(DIALER_SLOT_ENDING) | BIT(DIALER_SLOT_IDLE),
    [DIALER_SLOT_TAKING] = BIT(DIALER_SLOT_DIALING) | BIT(DIALER_SLOT_IDLE),
    [DIALER_SLOT_INVALID] = BIT(DIALER_SLOT_IDLE),
    [DIALER_SLOT_DIALING] = BIT(DIALER_SLOT_ANSWERED) | BIT(DIALER_SLOT_ENDING),
    [DIALER_SLOT_ANSWERED] =
        BIT(DIALER_SLOT_CONNECTED) | BIT(DIALER_SLOT_DIALING) | BIT(DIALER_SLOT_ANSWERED_ENDING),
    [DIALER_SLOT_CONNECTED] = BIT(DIALER_SLOT_CONNECTED_ENDING),
    [DIALER_SLOT_ENDING] = BIT(DIALER_SLOT_IDLE),
    [DIALER_SLOT_ANSWERED_ENDING] = BIT(DIALER_SLOT_IDLE),
    [DIALER_SLOT_CONNECTED_ENDING] = BIT(DIALER_SLOT_IDLE),
};

bool dialer_slot_waits(dialer_slot_state_t st)
{
    return st == DIALER_SLOT_VERIFYING || dialer_slot_flushes(st);
}

bool dialer_slot_flushes(dialer_slot_state_t st)
{
    switch (st) {
    case DIALER_SLOT_TAKING:
    case DIALER_SLOT_INVALID:
    case DIALER_SLOT_ANSWERED:
    case DIALER_SLOT_ENDING:
    case DIALER_SLOT_ANSWERED_ENDING:
    case DIALER_SLOT_CONNECTED_ENDING:
        return true;
    default:
        return false;
    }
}

void dialer_slots_init(dialer_ctx_t *ctx)
{
    int n = (int)ctx->cfg->channels;
    ctx->slots = ob_xcalloc((size_t)n, sizeof(dialer_slot_t));
    ctx->idle = ob_xcalloc((size_t)n, sizeof(int));
    ctx->waiting = ob_xcalloc((size_t)n, sizeof(int));
    /* Popped from the top: slot 0 first. */
    for (int i = 0; i < n; i++)
        ctx->idle[i] = n - 1 - i;
    ctx->nstate[DIALER_SLOT_IDLE] = n;
}

void dialer_slots_drop_messages(dialer_ctx_t *ctx)
{
    for (int i = 0; ctx->slots && i < (int)ctx->cfg->channels; i++) {
        if (ctx->slots[i].msg)
            rd_kafka_message_destroy(ctx->slots[i].msg);
        ctx->slots[i].msg = NULL;
    }
}

void dialer_slots_free(dialer_ctx_t *ctx)
{
    for (int i = 0; ctx->slots && i < (int)ctx->cfg->channels; i++) {
        ob_dial_job_clear(&ctx->slots[i].job);
        free(ctx->slots[i].sip_reason);
        dialer_doc_free(&ctx->slots[i]);
    }
    free(ctx->slots);
    free(ctx->idle);
    free(ctx->waiting);
    ctx->slots = NULL;
}

dialer_slot_t *dialer_slot_next_idle(dialer_ctx_t *ctx)
{
    int n = ctx->nstate[DIALER_SLOT_IDLE];
    return n > 0 ? &ctx->slots[ctx->idle[n - 1]] : NULL;
}

void dialer_slot_enter(dialer_ctx_t *ctx, dialer_slot_t *s, dialer_slot_state_t to)
{
    dialer_slot_state_t from = s->state;
    int i = (int)(s - ctx->slots);
    OB_ASSERT(moves[from] & BIT(to));
    if (from == DIALER_SLOT_IDLE) {
        OB_ASSERT(dialer_slot_next_idle(ctx) == s); /* popped by the count below */
        s->decision_ms = -1;
    }
    ctx->nstate[from]--;
    ctx->nstate[to]++;
    s->state = to;
    if (dialer_slot_waits(to) && !dialer_slot_waits(from))
        ctx->waiting[ctx->nwaiting++] = i;
    if (to == DIALER_SLOT_IDLE) {
        OB_ASSERT(s->msg == NULL);
        ob_dial_job_clear(&s->job);
        free(s->sip_reason);
        dialer_doc_free(s);
        memset(s, 0, sizeof(*s));
        ctx->idle[ctx->nstate[DIALER_SLOT_IDLE] - 1] = i;
        ob_metric_set(&ctx->metrics[M_IN_FLIGHT], dialer_active(ctx));
    }
}

int dialer_active(const dialer_ctx_t *ctx)
{
    return (int)ctx->cfg->channels - ctx->nstate[DIALER_SLOT_IDLE];
}

int dialer_pending(const dialer_ctx_t *ctx)
{
    int n = 0;
    for (int st = 0; st < DIALER_SLOT_STATE_COUNT; st++)
        if (dialer_slot_flushes((dialer_slot_state_t)st))
            n += ctx->nstate[st];
    return n + ctx->noutcomes + ctx->nnotes;
}

void dialer_drop_unverified(dialer_ctx_t *ctx)
{
    int kept = 0;
    if (ctx->nstate[DIALER_SLOT_VERIFYING] > 0)
        OB_WARN("worker", "%d job(s) waiting for a URL check not started (drain)",
                ctx->nstate[DIALER_SLOT_VERIFYING]);
    for (int k = 0; k < ctx->nwaiting; k++) {
        dialer_slot_t *s = &ctx->slots[ctx->waiting[k]];
        if (s->state != DIALER_SLOT_VERIFYING) {
            ctx->waiting[kept++] = ctx->waiting[k];
            continue;
        }
        rd_kafka_message_destroy(s->msg);
        s->msg = NULL;
        dialer_slot_enter(ctx, s, DIALER_SLOT_IDLE);
    }
    ctx->nwaiting = kept;
}

static void on_answered(void *worker, void *call, const char *callee_type)
{
    dialer_slot_t *s = call;
    s->answered_as = callee_type;
    s->answered_ms = ob_mono_ms();
    dialer_slot_enter(worker, s, DIALER_SLOT_ANSWERED);
}

/* The callee type is known: the application hears it too (the attempt
 * records it with the result at the end), at once or right after the
 * connected transition it waits for. A second one is a revision (a
 * person's verdict, then a machine's beep): the application hears it, and
 * the document starts over with the machine's verbs. */
static void on_decided(void *worker, void *call, const char *callee_type, int decision_ms)
{
    dialer_ctx_t *ctx = worker;
    dialer_slot_t *s = call;
    bool revised = s->decided_as && strcmp(s->decided_as, callee_type) != 0;
    s->decided_as = callee_type;
    s->decision_ms = decision_ms;
    if (revised)
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", s->job.call_id),
               "a beep at %d ms: the callee is %s after all", decision_ms, callee_type);
    if (s->state == DIALER_SLOT_CONNECTED) {
        dialer_app_notify(ctx->app, s, &s->job, "callee_type", callee_type);
        if (revised)
            dialer_doc_revised(ctx, s, callee_type);
        else
            dialer_doc_decided(ctx, s, callee_type);
    }
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
 * rules, or fail); the slot is freed once Postgres took it. A call that
 * ends once the drain hung up on it (ctx->cutting) ends as dialer_shutdown. */
static void on_ended(void *worker, void *call, bool was_answered, const char *result, int ring_ms,
                     int talk_ms)
{
    dialer_ctx_t *ctx = worker;
    dialer_slot_t *s = call;
    ob_result_t r = OB_RESULT_UNKNOWN;
    ob_reason_t why = OB_REASON_UNKNOWN;
    if (ctx->cutting && !was_answered)
        r = OB_RESULT_UNKNOWN; /* we do not know how it would have ended */
    else if (!ob_result_parse(result, &r))
        OB_LOG(OB_LOG_WARN, "worker", OB_KV("call_id", s->job.call_id),
               "the carrier's result '%s' is no result: recorded as unknown", result);
    if (ctx->cutting)
        why = OB_REASON_DIALER_SHUTDOWN;
    else if (was_answered)
        why = OB_REASON_ANSWERED;
    else if (!ob_reason_of_result(r, &why)) /* a callee type, yet unanswered */
        why = OB_REASON_UNKNOWN;
    count_result(ctx, r);
    s->end = (ob_attempt_end_t){
        .call_id = s->job.call_id,
        .attempt = (int)s->job.attempt,
        .result = r,
        .reason = why,
        .answered = was_answered,
        .ring_ms = ring_ms,
        .talk_ms = talk_ms,
        .decision_ms = was_answered ? s->decision_ms : -1,
        .sip_code = s->sip_code,
        .sip_reason = s->sip_reason,
        .decided_by = s->detected.why,
        .confidence = s->detected.confidence,
        .beep = s->detected.beep,
        .beep_ms = s->detected.beep_ms,
        .greeting_end_ms = -1,
        .first_audio_ms = -1,
    };
    dialer_doc_ended(ctx, s); /* the verb log, digits and first-audio timing */
    dialer_slot_enter(ctx, s,
                      s->state == DIALER_SLOT_ANSWERED    ? DIALER_SLOT_ANSWERED_ENDING
                      : s->state == DIALER_SLOT_CONNECTED ? DIALER_SLOT_CONNECTED_ENDING
                                                          : DIALER_SLOT_ENDING);
}

/* The audio detector's verdict, kept for the conclusion that follows. */
static void on_detected(void *worker, void *call, const ob_detect_result_t *r)
{
    dialer_slot_t *s = call;
    (void)worker;
    s->detected = *r;
}

/* The SIP outcome, kept for the conclusion that follows at once. */
static void on_outcome(void *worker, void *call, int code, const char *reason)
{
    dialer_slot_t *s = call;
    (void)worker;
    s->sip_code = code;
    free(s->sip_reason);
    s->sip_reason = reason && reason[0] ? ob_xstrdup(reason) : NULL;
    if (code != 200)
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", s->job.call_id), "SIP: %d %s", code,
               reason ? reason : "");
}

static void on_played(void *worker, void *call, int played_ms, bool interrupted)
{
    dialer_doc_played(worker, call, played_ms, interrupted);
}

static void on_digit(void *worker, void *call, char digit, bool inband)
{
    dialer_doc_digit(worker, call, digit, inband);
}

static void on_greeting_over(void *worker, void *call, bool beep, int at_ms)
{
    dialer_doc_greeting_over(worker, call, beep, at_ms);
}

static void on_first_audio(void *worker, void *call, int greeting_end_ms, int first_audio_ms)
{
    dialer_doc_first_audio(worker, call, greeting_end_ms, first_audio_ms);
}

static void on_handed_over(void *worker, void *call, const char *outcome, int code, int talk_ms)
{
    dialer_doc_handed_over(worker, call, outcome, code, talk_ms);
}

const carrier_events_t dialer_carrier_events = {
    .answered = on_answered,
    .ended = on_ended,
    .decided = on_decided,
    .outcome = on_outcome,
    .detected = on_detected,
    .played = on_played,
    .digit = on_digit,
    .greeting_over = on_greeting_over,
    .first_audio = on_first_audio,
    .handed_over = on_handed_over,
};
