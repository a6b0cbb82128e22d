/*
 * Audio the dialer sends to a callee: 8 kHz 16-bit linear mono samples,
 * immutable once made, shared by reference between the media caches, the
 * worker and a carrier's own thread (the count is atomic). Rendered speech
 * (say) and fetched files (play) are both this.
 */
#ifndef DIALER_AUDIO_H
#define DIALER_AUDIO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dialer_audio {
    int16_t *samples; /* 8 kHz linear PCM (owned) */
    size_t n;         /* samples */
    atomic_int refs;  /* references held; freed when the last is dropped */
} dialer_audio_t;

/* New audio holding samples (taken: freed with it) with one reference. */
dialer_audio_t *dialer_audio_new(int16_t *samples, size_t n);

/* Takes one more reference to a; returns a. Any thread. */
dialer_audio_t *dialer_audio_ref(dialer_audio_t *a);

/* Drops one reference; the last frees a. NULL-safe; any thread. */
void dialer_audio_unref(dialer_audio_t *a);

/* Its length in ms. */
int dialer_audio_ms(const dialer_audio_t *a);

#endif
