/*
 * The dialer's media: the audio a call-control document's say and play
 * verbs send, prepared before it is needed and kept in bounded caches.
 * A say is rendered by espeak-ng (ob_tts) on a render thread of its own;
 * a play's file is fetched with libcurl's multi interface on the worker's
 * loop (dialer_media_run, never blocking), through the dialer's URL guard,
 * bounded in size and time, and decoded to 8 kHz (ob_audio). Each result,
 * audio or failure, is cached by its key: (text, voice, rate) for a say,
 * the URL for a play; failures for DIALER_MEDIA_FAILED_TTL_MS only. Asking
 * for a key already being prepared joins that work.
 *
 * Main (worker) thread only, but for the render thread it owns.
 */
#ifndef DIALER_MEDIA_H
#define DIALER_MEDIA_H

#include "dialer_audio.h"
#include "ob_common.h"
#include "ob_url.h"

#include <stdbool.h>
#include <stdint.h>

#define DIALER_MEDIA_FAILED_TTL_MS 10000 /* a failed render or fetch is tried again after */

typedef struct dialer_media dialer_media_t;

typedef struct {
    long long cache_bytes;       /* audio kept, both kinds together (least recently used go) */
    long long fetch_max_bytes;   /* largest audio file fetched */
    int fetch_timeout_ms;        /* bound of one fetch */
    int render_timeout_ms;       /* bound of one render */
    int max_audio_ms;            /* longest audio kept, rendered or fetched */
    const ob_url_policy_t *urls; /* where play URLs may connect (outlives the module) */
    int failed_ttl_ms;           /* a failure is kept this long; 0: DIALER_MEDIA_FAILED_TTL_MS */
} dialer_media_opts_t;

typedef enum {
    DIALER_MEDIA_READY,   /* *audio set: a reference the caller drops (dialer_audio_unref) */
    DIALER_MEDIA_PENDING, /* being prepared: ask again later */
    DIALER_MEDIA_FAILED,  /* *why set (module-owned, valid until the next dialer_media_run) */
} dialer_media_state_t;

/* Creates the module and starts its render thread. Call from the main
 * thread after curl_global_init. OB_ERR with err set when the thread or
 * libcurl cannot start; caller frees *out with dialer_media_free. */
ob_rc_t dialer_media_new(const dialer_media_opts_t *opts, dialer_media_t **out,
                         ob_err_t *err) OB_MUSTCHECK;

/* Stops the render thread (a render in progress finishes first), aborts
 * fetches, drops the caches. NULL-safe. */
void dialer_media_free(dialer_media_t *m);

/* The audio of a say: READY from the cache, else PENDING (its render is
 * queued, once per key), or FAILED with why ("say: voice xx: no such
 * espeak-ng voice", "say: render took over 2000 ms"). text is the rendered
 * text; voice NULL means "en-us". */
dialer_media_state_t dialer_media_say(dialer_media_t *m, const char *text, const char *voice,
                                      int rate, dialer_audio_t **audio, const char **why);

/* The audio of a play: READY from the cache, else PENDING (its fetch is
 * started, once per URL), or FAILED with why ("play https://x/a.wav:
 * answered 404", "play ...: 2100000 bytes, over the 2000000 limit", "play
 * ...: WAV: format 85 (MP3) is not supported: use PCM or G.711", "play
 * ...: refused by the URL policy: 10.0.0.1 is in 10.0.0.0/8"). */
dialer_media_state_t dialer_media_play(dialer_media_t *m, const char *url, dialer_audio_t **audio,
                                       const char **why);

/* Collects finished renders and advances fetches without blocking.
 * Returns when it wants to be called again (monotonic ms): soon while work
 * is in progress, INT64_MAX when idle. */
int64_t dialer_media_run(dialer_media_t *m, int64_t now_ms);

/* What the caches hold, for /metrics: entries and bytes of audio. */
void dialer_media_stats(const dialer_media_t *m, long long *entries, long long *bytes,
                        long long *hits, long long *misses);

#endif
