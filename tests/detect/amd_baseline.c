/*
 * Asterisk AMD()'s rules (see amd_baseline.h): a frame is silent when the
 * mean magnitude of its samples is under the threshold; runs of silent and
 * voiced frames make words, a greeting and the silences around it, and the
 * first rule that fires decides. The order of the checks is AMD()'s, since
 * it decides which rule wins on the same frame.
 */
#include "amd_baseline.h"

#include <stdlib.h>

void amd_defaults(amd_config_t *cfg)
{
    *cfg = (amd_config_t){
        .initial_silence_ms = 2500,
        .greeting_ms = 1500,
        .after_greeting_silence_ms = 800,
        .total_analysis_ms = 5000,
        .min_word_ms = 100,
        .between_words_silence_ms = 50,
        .max_words = 2,
        .silence_threshold = 256,
        .max_word_ms = 5000,
    };
}

void amd_init(amd_t *a, const amd_config_t *cfg)
{
    *a = (amd_t){.status = AMD_PENDING, .decision_ms = -1, .in_word = true};
    if (cfg)
        a->cfg = *cfg;
    else
        amd_defaults(&a->cfg);
}

static amd_status_t decide(amd_t *a, amd_status_t status, const char *cause)
{
    a->status = status;
    a->cause = cause;
    a->decision_ms = a->total_ms;
    return status;
}

static bool silent(const amd_t *a, const int16_t *s, size_t n)
{
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += labs((long)s[i]);
    return n == 0 || sum / (long)n < a->cfg.silence_threshold;
}

amd_status_t amd_feed(amd_t *a, const int16_t *samples, size_t n)
{
    if (a->status != AMD_PENDING)
        return a->status;
    const amd_config_t *c = &a->cfg;
    int ms = (int)(n / 8);
    a->total_ms += ms;
    if (a->total_ms >= c->total_analysis_ms)
        return decide(a, AMD_NOTSURE, "TOOLONG");
    if (silent(a, samples, n)) {
        a->silence_ms += ms;
        if (a->silence_ms >= c->between_words_silence_ms) {
            a->in_word = false;
            a->word_ms = 0;
        }
        if (!a->in_greeting && a->silence_ms >= c->initial_silence_ms)
            return decide(a, AMD_MACHINE, "INITIALSILENCE");
        if (a->in_greeting && a->silence_ms >= c->after_greeting_silence_ms)
            return decide(a, AMD_HUMAN, "HUMAN");
        return AMD_PENDING;
    }
    a->silence_ms = 0; /* the silence detector counts from the latest voiced frame */
    a->word_ms += ms;
    a->voice_ms += ms;
    if (a->word_ms >= c->min_word_ms && !a->in_word) {
        a->words++;
        a->in_word = true;
    }
    if (a->word_ms >= c->max_word_ms)
        return decide(a, AMD_MACHINE, "MAXWORDLENGTH");
    if (a->words >= c->max_words)
        return decide(a, AMD_MACHINE, "MAXWORDS");
    if (a->in_greeting && a->voice_ms >= c->greeting_ms)
        return decide(a, AMD_MACHINE, "LONGGREETING");
    if (a->word_ms >= c->min_word_ms)
        a->in_greeting = true;
    return AMD_PENDING;
}
