/*
 * Text to speech, offline, with libespeak-ng: text rendered to 8 kHz 16-bit
 * linear mono (espeak-ng speaks at 22,050 Hz; ob_audio_resample converts).
 * espeak-ng keeps one global synthesiser, so renders are serialised by a
 * lock and block their caller for the render's time (tens of ms a
 * sentence): the dialer calls it from a thread of its own.
 */
#ifndef OB_TTS_H
#define OB_TTS_H

#include "ob_common.h"

#include <stddef.h>
#include <stdint.h>

/* Renders text (UTF-8, plain: no SSML) in voice (an espeak-ng voice or
 * language name, e.g. "en-us", "fr", "es"; NULL: "en-us") at rate words per
 * minute (80-450) into *out (malloc'd, caller frees), *n samples at 8 kHz.
 * Gives up with OB_ETIMEOUT once the render has taken timeout_ms of wall
 * time (0: no limit). OB_EINVAL with err when the voice is unknown ("voice
 * xx: no such espeak-ng voice") or the text is empty; OB_ERR when
 * espeak-ng cannot start (its data missing). Thread-safe (serialised);
 * blocking. */
ob_rc_t ob_tts_render(const char *text, const char *voice, int rate, int timeout_ms, int16_t **out,
                      size_t *n, ob_err_t *err) OB_MUSTCHECK;

#endif
