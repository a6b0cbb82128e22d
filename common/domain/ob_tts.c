/*
 * Text to speech with libespeak-ng (see ob_tts.h). espeak-ng is one
 * process-wide synthesiser with its settings and its sample callback held
 * in globals of its own, so this module keeps the one lock that serialises
 * it, its one-time start-up and the render in progress as statics: state
 * that exists once per process because the library does.
 */
#include "ob_tts.h"
#include "ob_audio.h"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RATE_MIN  espeakRATE_MINIMUM /* 80 words per minute */
#define RATE_MAX  espeakRATE_MAXIMUM /* 450 */
#define VOICE_MAX 64                 /* bytes of a voice name */

/* The render in progress: what the synthesis callback fills. */
typedef struct {
    int16_t *samples;    /* at espeak-ng's rate (owned) */
    size_t n, cap;       /* samples held, allocated */
    int64_t deadline_ms; /* monotonic; 0: none */
    bool timed_out;      /* the callback stopped the render at the deadline */
} render_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int started;               /* under lock: 0 not yet, 1 running, -1 failed */
static char start_error[256];     /* under lock: why it failed */
static int espeak_rate;           /* under lock: its sample rate once started */
static char voice_set[VOICE_MAX]; /* under lock: the voice it holds now, "" none */
static render_t *current;         /* under lock: the render the callback fills */

/* espeak-ng hands over each buffer it synthesised (wav NULL at the end);
 * returning 1 aborts the synthesis, which is how a render is bounded. */
static int on_samples(short *wav, int count, espeak_EVENT *events)
{
    (void)events;
    render_t *r = current;
    if (!r)
        return 1;
    if (wav && count > 0) {
        if (r->n + (size_t)count > r->cap) {
            r->cap = (r->n + (size_t)count) * 2;
            r->samples = ob_xrealloc(r->samples, r->cap * sizeof(int16_t));
        }
        memcpy(r->samples + r->n, wav, (size_t)count * sizeof(int16_t));
        r->n += (size_t)count;
    }
    if (r->deadline_ms > 0 && ob_mono_ms() >= r->deadline_ms) {
        r->timed_out = true;
        return 1;
    }
    return 0;
}

/* Starts espeak-ng once (under lock); a failure is remembered, since its
 * data files do not appear by themselves. */
static bool start(ob_err_t *err)
{
    if (started == 0) {
        espeak_ng_ERROR_CONTEXT ctx = NULL;
        espeak_ng_InitializePath(NULL); /* ESPEAK_DATA_PATH, else the packaged data */
        espeak_ng_STATUS st = espeak_ng_Initialize(&ctx);
        if (st == ENS_OK)
            st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL);
        if (st != ENS_OK) {
            char msg[200];
            espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
            snprintf(start_error, sizeof(start_error), "espeak-ng cannot start: %s", msg);
            started = -1;
        } else {
            espeak_SetSynthCallback(on_samples);
            espeak_rate = espeak_ng_GetSampleRate();
            started = 1;
        }
        espeak_ng_ClearErrorContext(&ctx);
    }
    if (started < 0)
        ob_err_set(err, "%s", start_error);
    return started > 0;
}

/* A voice name as espeak-ng's: letters, digits and - _ + only, so no name
 * reaches its voice file lookup as a path. */
static bool voice_name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= VOICE_MAX)
        return false;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '+'))
            return false;
    return true;
}

/* Sets voice (under lock): a voice's name or file ("en-us", "Klingon",
 * "gmw/en-US"), else a language some voice speaks ("en-gb", "zh", "pt"),
 * the voice that speaks it best, each with a "+variant" allowed. Language
 * codes are matched against espeak-ng's own list, not given to
 * espeak_ng_SetVoiceByProperties blind, which picks its default voice for
 * a language it does not know. */
static bool set_voice(const char *voice)
{
    if (espeak_ng_SetVoiceByName(voice) == ENS_OK)
        return true;
    size_t lang_len = strcspn(voice, "+");
    const char *variant = voice + lang_len;
    const espeak_VOICE **all = espeak_ListVoices(NULL);
    const espeak_VOICE *best = NULL;
    int best_priority = 256;
    for (size_t i = 0; all && all[i]; i++) {
        /* languages: a priority byte, a NUL-terminated language, ...; a 0
         * priority ends the list. */
        for (const char *l = all[i]->languages; l && *l; l += strlen(l + 1) + 2) {
            if (strlen(l + 1) == lang_len && strncasecmp(l + 1, voice, lang_len) == 0 &&
                *l < best_priority) {
                best = all[i];
                best_priority = *l;
            }
        }
    }
    if (!best)
        return false;
    char name[2 * VOICE_MAX];
    snprintf(name, sizeof(name), "%s%s", best->identifier, variant);
    return espeak_ng_SetVoiceByName(name) == ENS_OK;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

ob_rc_t ob_tts_render(const char *text, const char *voice, int rate, int timeout_ms, int16_t **out,
                      size_t *n, ob_err_t *err)
{
    render_t r = {0};
    ob_rc_t rc = OB_EINVAL;
    bool locked = false;
    *out = NULL;
    *n = 0;

    if (!voice)
        voice = "en-us";
    if (!text || blank(text)) {
        ob_err_set(err, "text is empty");
        goto out;
    }
    if (!ob_utf8_valid(text, strlen(text))) {
        ob_err_set(err, "text is not valid UTF-8");
        goto out;
    }
    if (rate < RATE_MIN || rate > RATE_MAX) {
        ob_err_set(err, "rate %d is outside %d-%d words per minute", rate, RATE_MIN, RATE_MAX);
        goto out;
    }
    if (!voice_name_ok(voice)) {
        ob_err_set(err, "voice %.64s: no such espeak-ng voice", voice);
        goto out;
    }
    if (strncmp(voice, "mb-", 3) == 0) {
        /* espeak-ng would start the mbrola program for them: no child
         * processes in a dialer. */
        ob_err_set(err, "voice %s: MBROLA voices are not supported", voice);
        goto out;
    }
    pthread_mutex_lock(&lock);
    locked = true;
    if (!start(err)) {
        rc = OB_ERR;
        goto out;
    }
    if (strcmp(voice_set, voice) != 0) {
        if (!set_voice(voice)) {
            voice_set[0] = '\0'; /* what it holds now is not known */
            ob_err_set(err, "voice %s: no such espeak-ng voice", voice);
            goto out;
        }
        snprintf(voice_set, sizeof(voice_set), "%s", voice);
    }
    espeak_ng_SetParameter(espeakRATE, rate, 0);
    r.deadline_ms = timeout_ms > 0 ? ob_mono_ms() + timeout_ms : 0;
    current = &r;
    espeak_ng_STATUS st = espeak_ng_Synthesize(text, strlen(text) + 1, 0, POS_CHARACTER, 0,
                                               espeakCHARS_UTF8, NULL, NULL);
    current = NULL;
    if (r.timed_out) {
        ob_err_set(err, "render took over %d ms", timeout_ms);
        rc = OB_ETIMEOUT;
        goto out;
    }
    if (st != ENS_OK) {
        char msg[200];
        espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
        ob_err_set(err, "espeak-ng: %s", msg);
        rc = OB_ERR;
        goto out;
    }
    int from = espeak_rate;
    pthread_mutex_unlock(&lock);
    locked = false;
    if (r.n == 0) {
        ob_err_set(err, "text has nothing to say");
        rc = OB_EINVAL;
        goto out;
    }
    rc = ob_audio_resample(r.samples, r.n, from, out, n, err);
out:
    if (locked)
        pthread_mutex_unlock(&lock);
    free(r.samples);
    return rc;
}
