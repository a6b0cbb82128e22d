/*
 * The console's Preview (ingest_preview.c): one say verb of a call-control
 * document rendered to the audio the callee would hear, for the browser to
 * play. A play verb is not previewed here: its file is fetched by the
 * dialer, through the dialer's URL policy, when the call runs; the console
 * plays its URL directly.
 */
#ifndef INGEST_PREVIEW_H
#define INGEST_PREVIEW_H

#include "ingest.h"

/* Longest a preview's render may take (as OB_DIALER_TTS_TIMEOUT_MS's default). */
#define INGEST_PREVIEW_RENDER_MS 3000
/* Longest speech a preview answers (as OB_DIALER_MAX_AUDIO_S's default). */
#define INGEST_PREVIEW_MAX_S 300

/* POST /api/v1/app:preview: the body is one verb, {"verb": "say", "text":
 * ..., "voice": "en-us", "rate": 160} ("loop" allowed and ignored: the
 * preview says it once). Answers 200 audio/wav (8 kHz 16-bit mono, as sent
 * on the call); 422 validation_failed naming each bad field (an unknown
 * voice, empty text, text over OB_APPDOC_MAX_TEXT bytes, a rate outside
 * 80-450, a play verb, a render over INGEST_PREVIEW_RENDER_MS); 503
 * tts_unavailable when espeak-ng cannot start. Blocks for the render (tens
 * of ms a sentence; renders are serialised process-wide by ob_tts). */
void ingest_preview(ingest_call_t *c);

#endif
