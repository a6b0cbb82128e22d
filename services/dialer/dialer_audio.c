/*
 * Shared, reference-counted audio buffers (dialer_audio.h).
 */
#include "dialer_audio.h"
#include "ob_common.h"

#include <stdlib.h>

dialer_audio_t *dialer_audio_new(int16_t *samples, size_t n)
{
    dialer_audio_t *a = ob_xcalloc(1, sizeof(*a));
    a->samples = samples;
    a->n = n;
    atomic_init(&a->refs, 1);
    return a;
}

dialer_audio_t *dialer_audio_ref(dialer_audio_t *a)
{
    atomic_fetch_add(&a->refs, 1);
    return a;
}

void dialer_audio_unref(dialer_audio_t *a)
{
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    free(a->samples);
    free(a);
}

int dialer_audio_ms(const dialer_audio_t *a)
{
    return (int)(a->n / 8);
}
