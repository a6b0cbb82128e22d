/*
 * The worker's slots, one per channel: the state machine of
 * dialer_slot_state_t, the idle stack that hands out free channels and the
 * list of slots waiting for a URL check or for the next flush. No I/O: the
 * worker (dialer_worker.c) drives the carrier and Postgres and moves slots
 * through dialer_slot_enter as their effects are done.
 */
#include "dialer.h"
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
    return n;
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
