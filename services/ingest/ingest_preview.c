/*
 * The console's Preview of a say (see ingest_preview.h): the verb checked
 * as the document's parser checks it, rendered by ob_tts exactly as the
 * dialer renders it, and answered as a WAV file. Nothing is stored.
 */
#include "ingest_preview.h"
#include "ingest_reply.h"
#include "ob_appdoc.h"
#include "ob_audio.h"
#include "ob_log.h"
#include "ob_tts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_DEFAULT 160 /* a say's rate when absent (ob_appdoc.h) */
#define RATE_MIN     80
#define RATE_MAX     450
#define VOICE_MAX    64

/* An optional integer member in [min, max]; *v keeps its default when
 * absent. False with an error added when it is not one. */
static bool int_member(ob_pool_t *pool, const cJSON *body, const char *name, int min, int max,
                       int *v, cJSON *errors)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!m)
        return true;
    double d = cJSON_IsNumber(m) ? m->valuedouble : NAN;
    if (!(d >= min && d <= max && d == floor(d))) {
        ingest_add_error(
            errors, name, "out_of_range",
            ob_pool_printf(pool, "%s must be an integer from %d to %d", name, min, max));
        return false;
    }
    *v = (int)d;
    return true;
}

/* The say verb in body: its text, voice and rate; errors added for each
 * bad field. */
static void read_say(ob_pool_t *pool, const cJSON *body, const char **text, const char **voice,
                     int *rate, cJSON *errors)
{
    static const char *const known[] = {"verb", "text", "voice", "rate", "loop"};
    const cJSON *item;
    cJSON_ArrayForEach(item, body)
    {
        bool ok = false;
        for (size_t i = 0; i < OB_COUNTOF(known) && !ok; i++)
            ok = strcmp(item->string, known[i]) == 0;
        if (!ok)
            ingest_add_error(
                errors, item->string, "unknown_field",
                ob_pool_printf(pool, "'%s' is not a field of a say verb", item->string));
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "text");
    size_t len = cJSON_IsString(t) ? strlen(t->valuestring) : 0;
    if (!t)
        ingest_add_error(errors, "text", "required", "text is required");
    else if (!cJSON_IsString(t))
        ingest_add_error(errors, "text", "invalid_type", "text must be a string");
    else if (strspn(t->valuestring, " \t\r\n") == len)
        ingest_add_error(errors, "text", "invalid_value", "text is empty: give the words to say");
    else if (len > OB_APPDOC_MAX_TEXT)
        ingest_add_error(errors, "text", "too_large",
                         ob_pool_printf(pool, "text must be at most %d bytes (it has %zu)",
                                        OB_APPDOC_MAX_TEXT, len));
    else
        *text = t->valuestring;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "voice");
    if (v && !(cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < VOICE_MAX))
        ingest_add_error(errors, "voice", "invalid_type",
                         "voice must be an espeak-ng voice or language, such as en-us or fr");
    else if (v)
        *voice = v->valuestring;
    int_member(pool, body, "rate", RATE_MIN, RATE_MAX, rate, errors);
    int loop = 1;
    int_member(pool, body, "loop", 1, OB_APPDOC_MAX_LOOP, &loop, errors);
}

void ingest_preview(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    cJSON *body = NULL, *errors = cJSON_CreateArray();
    const char *text = NULL, *voice = "en-us";
    int rate = RATE_DEFAULT;
    int16_t *samples = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};

    if (!(body = ingest_object_body(req, false)))
        goto out;
    const cJSON *verb = cJSON_GetObjectItemCaseSensitive(body, "verb");
    if (!cJSON_IsString(verb))
        ingest_add_error(errors, "verb", verb ? "invalid_type" : "required",
                         "verb must be \"say\": the preview renders one say verb");
    else if (strcmp(verb->valuestring, "play") == 0)
        ingest_add_error(errors, "verb", "invalid_value",
                         "the preview renders say only: a play's file is fetched by the dialer "
                         "when the call runs; open its URL to hear it");
    else if (strcmp(verb->valuestring, "say") != 0)
        ingest_add_error(errors, "verb", "invalid_value",
                         ob_pool_printf(req->pool,
                                        "verb \"%.32s\" has no audio to preview: give "
                                        "a say verb",
                                        verb->valuestring));
    else
        read_say(req->pool, body, &text, &voice, &rate, errors);
    if (cJSON_GetArraySize(errors) > 0) {
        ob_http_problem(req, 422, "validation_failed", errors, "the verb has %d invalid field(s)",
                        cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }

    ob_rc_t rc = ob_tts_render(text, voice, rate, INGEST_PREVIEW_RENDER_MS, &samples, &n, &err);
    if (rc == OB_ERR) {
        OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id), "preview: %s", err.msg);
        ob_http_problem(req, 503, "tts_unavailable", NULL,
                        "text to speech is not available on this ingest: %s", err.msg);
        goto out;
    }
    if (rc == OB_OK && n > (size_t)INGEST_PREVIEW_MAX_S * OB_AUDIO_RATE)
        snprintf(err.msg, sizeof(err.msg), "%.0f s of speech, longer than the %d s a say may last",
                 n / (double)OB_AUDIO_RATE, INGEST_PREVIEW_MAX_S);
    else if (rc == OB_ETIMEOUT)
        snprintf(err.msg, sizeof(err.msg), "the render took over %d ms: shorten the text",
                 INGEST_PREVIEW_RENDER_MS);
    else if (rc == OB_OK)
        err.msg[0] = '\0';
    if (err.msg[0]) {
        const char *field = strncmp(err.msg, "voice ", 6) == 0 ? "voice" : "text";
        ingest_add_error(errors, field, "invalid_value", err.msg);
        ob_http_problem(req, 422, "validation_failed", errors, "%s", err.msg);
        errors = NULL;
        goto out;
    }
    size_t len = 0;
    uint8_t *wav = ob_audio_wav(samples, n, &len);
    char *copy = ob_pool_alloc(req->pool, len);
    memcpy(copy, wav, len);
    free(wav);
    ob_http_reply(req, 200, "audio/wav", copy, len);
out:
    free(samples);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}
