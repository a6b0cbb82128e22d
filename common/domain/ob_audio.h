/*
 * Audio files to and from the 8 kHz 16-bit linear mono the dialer sends:
 * WAV (RIFF: PCM 8/16/24/32-bit, IEEE float, G.711 mu-law and A-law; any
 * rate, mono or more channels, mixed down), raw G.711 (audio/basic,
 * audio/x-alaw-basic, audio/PCMU, audio/PCMA), Sun .au files and raw
 * 16-bit PCM in network byte order (big-endian, RFC 2586) at a given rate
 * (audio/L16;rate=N). Rates other than 8 kHz are converted with libsamplerate
 * (SRC_SINC_MEDIUM_QUALITY). Also writes WAV, for the console's preview.
 */
#ifndef OB_AUDIO_H
#define OB_AUDIO_H

#include "ob_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_AUDIO_RATE 8000 /* what the dialer sends */

/* Decodes len bytes of a file whose type is content_type (a MIME type,
 * parameters allowed, e.g. "audio/L16;rate=16000"; NULL or unknown:
 * sniffed, a RIFF header means WAV) into *out (malloc'd, caller frees)
 * and *n samples at 8 kHz. OB_EINVAL with err saying what is wrong ("WAV:
 * format 85 (MP3) is not supported: use PCM or G.711", "audio/L16: no
 * rate"). At most max_samples are produced (longer: OB_EINVAL "longer
 * than N s"). Pure. */
ob_rc_t ob_audio_decode(const uint8_t *data, size_t len, const char *content_type,
                        size_t max_samples, int16_t **out, size_t *n, ob_err_t *err) OB_MUSTCHECK;

/* Converts n samples of mono 16-bit audio at rate Hz to 8 kHz (malloc'd,
 * caller frees; *out_n set). rate 8000 copies. OB_EINVAL when rate is not
 * in 4000..192000. Pure. */
ob_rc_t ob_audio_resample(const int16_t *in, size_t n, int rate, int16_t **out, size_t *out_n,
                          ob_err_t *err) OB_MUSTCHECK;

/* A WAV file (PCM 16-bit mono 8 kHz) of the n samples; malloc'd, its
 * length in *len; caller frees. Pure. */
uint8_t *ob_audio_wav(const int16_t *samples, size_t n, size_t *len);

/* G.711 of one sample and back. */
uint8_t ob_audio_ulaw(int16_t s);
uint8_t ob_audio_alaw(int16_t s);
int16_t ob_audio_from_ulaw(uint8_t u);
int16_t ob_audio_from_alaw(uint8_t a);

#endif
