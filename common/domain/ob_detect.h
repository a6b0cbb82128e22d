/*
 * Callee-type detection from call audio: 8 kHz 16-bit linear samples,
 * streamed from early media and after the answer, classified as soon as the
 * detector is sure:
 *
 *   fax              CNG (1100 Hz) or CED/ANSam (2100 Hz), SpanDSP's
 *                    modem connect tone detectors; a silent line is waited
 *                    on for 3.6 s at least, for a CED after the V.25
 *                    billing delay
 *   informationtone  the special information tone triplet, North American
 *                    (913.8 or 985.2, 1370.6 or 1428.5, then 1776.7 Hz) or
 *                    ITU (950, 1400, 1800 Hz), SpanDSP Goertzel filters,
 *                    before or after the answer
 *   answeringmachine talk that runs on (pauses shorter than the wait for a
 *                    person included) past greeting_ms, or a beep (one
 *                    steady tone of 400-2000 Hz held 120 ms, 200 ms when it
 *                    starts inside a word) after words, however late in
 *                    the wait; the beep that ends a long
 *                    greeting is reported later, on its own
 *   voice            talk, then silence: after_greeting_silence_ms after a
 *                    short answer, longer after a sentence (the bias's wait
 *                    for a short greeting's late beep)
 *   unknown          nothing certain within the analysis time
 *
 * A verdict once given changes once at most: a voice verdict becomes a
 * machine's when a beep follows within late_beep_ms (below). A greeting
 * that opens like a person ("Hello?", a pause longer than the wait, then
 * the rest) with no beep stays a person. Speech is told from silence
 * by frame energy against a floor learnt from the quietest frames, so line
 * noise does not count as talking, and, once the callee has spoken,
 * against their level, so that babble behind them does not either. The
 * confidence is how far the evidence went past what decided it (0.5: a
 * knife edge; 0.95: clear). All times are in ms of audio fed, counted from
 * the answer (early media before it counts for tones only). One detector
 * per call; not thread-safe.
 */
#ifndef OB_DETECT_H
#define OB_DETECT_H

#include "ob_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which error a deployment would rather make when the audio is unclear
 * (ob_detect.c scales the timing rules by it): a person taken for a machine
 * is a dropped live call; a machine taken for a person is a message spoken
 * over a greeting. */
typedef enum {
    OB_DETECT_BALANCED,       /* the default */
    OB_DETECT_FAVOUR_PERSON,  /* "person": longer talk before "machine", a shorter wait */
    OB_DETECT_FAVOUR_MACHINE, /* "machine": shorter talk is a greeting, a longer wait for a beep */
} ob_detect_bias_t;

/* The bias's name ("balanced", "person", "machine"). */
const char *ob_detect_bias_name(ob_detect_bias_t b);

/* Thresholds, named like Asterisk's AMD and Twilio's machine detection
 * parameters; ob_detect_defaults fills them. */
typedef struct {
    int initial_silence_ms;        /* silence after the answer this long: machine */
    int greeting_ms;               /* one stretch of speech this long: machine */
    int after_greeting_silence_ms; /* silence after a greeting this long: voice */
    int total_analysis_ms;         /* no verdict by then: unknown */
    int min_word_ms;               /* speech shorter than this is noise, not a word */
    int max_words;                 /* more words than this before a pause: machine */
    int beep_wait_ms;              /* after a machine verdict, listen this long for a beep */
    int greeting_silence_ms;       /* no beep, but the greeting silent this long: it is over */
    int late_beep_ms;              /* after a voice verdict, a beep this long after it: machine */
    ob_detect_bias_t bias;         /* which error to prefer when unsure */
} ob_detect_config_t;

/* The defaults: 2500, 6000, 800, 7000, 100, 0, 20000, 3000, 6000, balanced. */
void ob_detect_defaults(ob_detect_config_t *cfg);

/* Reads a deployment's thresholds, a JSON object with any of the members
 * above (integers in their ranges: see ob_detect_config.c; "bias" one of
 * "person", "balanced", "machine"), into cfg, which holds the defaults for
 * the rest. NULL or "" text: the defaults. OB_EINVAL with err naming the
 * member ("detection.greeting_ms must be an integer from 500 to 10000",
 * "detection.bias must be \"person\", \"balanced\" or \"machine\"",
 * "detection.x is not a threshold"). */
ob_rc_t ob_detect_config_parse(const char *json, ob_detect_config_t *cfg,
                               ob_err_t *err) OB_MUSTCHECK;

typedef enum {
    OB_DETECT_PENDING, /* no verdict yet */
    OB_DETECT_VOICE,
    OB_DETECT_MACHINE,
    OB_DETECT_FAX,
    OB_DETECT_INFOTONE,
    OB_DETECT_UNKNOWN,
} ob_detect_verdict_t;

/* The callee-type name of a verdict ("voice", "answeringmachine", "fax",
 * "informationtone", "unknown"; "processing" while pending). */
const char *ob_detect_name(ob_detect_verdict_t v);

typedef struct {
    ob_detect_verdict_t verdict; /* OB_DETECT_PENDING until decided */
    double confidence;           /* 0..1: how far past its threshold the evidence went */
    int decision_ms;             /* audio after the answer when it was decided */
    const char *why;             /* the rule that decided: "long_greeting", "cng", ... */
    bool beep;                   /* a machine's beep was heard (after the verdict) */
    int beep_ms;                 /* when the beep started, after the answer */
    int beep_end_ms;             /* when its tone stopped; -1 while none did */
    int greeting_end_ms;         /* end of the latest speech before the verdict; -1: none heard */
    bool greeting_over;          /* a machine's greeting is over: speak now (see below) */
    int greeting_over_ms;        /* when it was over, after the answer; -1 before */
    int revised_from_ms;         /* a voice verdict given then became a machine's (late
                                    beep); -1 when the verdict was never revised */
} ob_detect_result_t;

/* After a machine verdict the detector listens on, and the greeting is over
 * (greeting_over) at the first of:
 *   - the end of its beep (beep true, greeting_over_ms == beep_end_ms): the
 *     beep is followed from its first 120 ms until the tone stops, to the
 *     frame (20 ms);
 *   - greeting_silence_ms of silence without a beep (beep false): at the end
 *     of that silence, i.e. when it started + greeting_silence_ms; speech
 *     shorter than min_word_ms (a click) does not break the silence;
 *   - beep_wait_ms after the verdict with neither (a line that never falls
 *     silent), or at the verdict when beep_wait_ms is 0: the application
 *     must not wait for ever.
 * The result is final then.
 *
 * After a voice verdict the detector listens on for late_beep_ms: a short
 * greeting whose beep comes after a pause longer than the wait for a person
 * is taken for one until its beep. A beep then revises the verdict to a
 * machine (why "late_beep", revised_from_ms the voice verdict's time,
 * decision_ms the beep's), followed to its end as above; the caller, which
 * may have started speaking to a person, starts over after the beep. No
 * beep within late_beep_ms: the voice verdict is final. 0 turns it off. */

typedef struct ob_detect ob_detect_t;

/* A detector with cfg (NULL: the defaults). */
ob_detect_t *ob_detect_new(const ob_detect_config_t *cfg);

/* Frees d; NULL-safe. */
void ob_detect_free(ob_detect_t *d);

/* The callee answered: speech rules and the clocks start now. Audio fed
 * before (early media) is searched for tones only. */
void ob_detect_answered(ob_detect_t *d);

/* Feeds n samples; returns true once the result is final (a verdict, and
 * for a machine the beep search over). Feeding after that is a no-op. */
bool ob_detect_feed(ob_detect_t *d, const int16_t *samples, size_t n);

/* As ob_detect_feed, for n G.711 bytes as an RTP packet carries them: mu-law
 * (PCMU) or, with alaw, A-law (PCMA). */
bool ob_detect_feed_g711(ob_detect_t *d, const uint8_t *bytes, size_t n, bool alaw);

/* The result so far. */
const ob_detect_result_t *ob_detect_result(const ob_detect_t *d);

#endif
