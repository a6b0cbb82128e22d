/*
 * The scheduler's clock (scheduler.h): the real one, or a test clock that
 * starts at a chosen instant and runs faster.
 */
#include "scheduler.h"

int64_t scheduler_now_ms(const scheduler_ctx_t *ctx)
{
    int64_t real = ob_now_ms();
    int64_t start = ctx->cfg->clock_start_ms ? ctx->cfg->clock_start_ms : ctx->clock_real0_ms;
    return start + (int64_t)((double)(real - ctx->clock_real0_ms) * ctx->cfg->clock_scale);
}

int64_t scheduler_real_ms(const scheduler_ctx_t *ctx, int64_t at_ms)
{
    int64_t start = ctx->cfg->clock_start_ms ? ctx->cfg->clock_start_ms : ctx->clock_real0_ms;
    return ctx->clock_real0_ms + (int64_t)((double)(at_ms - start) / ctx->cfg->clock_scale);
}
