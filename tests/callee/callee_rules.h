/*
 * The test callee's rules: what the far end does with a call, chosen by the
 * dialed number (the Request-URI's user part), read from a JSON file
 * (docs/testing-callee.md), and the audio files its greetings name, loaded
 * once at start as 8 kHz 16-bit linear.
 */
#ifndef CALLEE_RULES_H
#define CALLEE_RULES_H

#include "ob_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALLEE_RATE 8000 /* samples per second of everything the callee sends and records */

/* How keys are pressed. */
typedef enum {
    CALLEE_DTMF_RFC4733, /* telephone-events on the caller's payload type */
    CALLEE_DTMF_INBAND,  /* the tone pair as audio in the RTP stream */
} callee_dtmf_mode_t;

/* An audio file, decoded. */
typedef struct {
    char *path;       /* as the rules named it, resolved against the rules' folder */
    int16_t *samples; /* 8 kHz linear */
    size_t n;         /* samples */
} callee_audio_t;

/* What the callee does with one number's calls. */
typedef struct {
    char *number;                   /* the key in "numbers" ("15550100", "1555*"); NULL: default */
    int ring_ms;                    /* 180 Ringing this long before the 200 (0: 200 at once) */
    int reject;                     /* final code instead of answering (486, 480, ...); 0: answer */
    int codec_pt;                   /* preferred audio payload type: 0 PCMU, 8 PCMA */
    const callee_audio_t *greeting; /* sent after the answer; NULL: silence; owned by the rules */
    int greeting_after_ms;          /* from the answer to the greeting's first sample */
    char *digits;                   /* keys to press (0-9 * # A-D, ',' a 500 ms pause); NULL none */
    callee_dtmf_mode_t dtmf_mode;   /* how */
    int digits_after_ms;            /* from the first audio received; -1: not this way */
    int digits_at_ms;               /* from the answer; -1: not this way */
    int hangup_after_ms;            /* BYE this long after the answer; -1: wait for the caller */
    bool accept_refer;              /* REFER: 202 and NOTIFY; else refer_reject */
    int refer_reject;               /* 405 or 603 (default 603) */
    bool refer_notify;              /* after the 202, NOTIFY "SIP/2.0 200 OK" (default true) */
    bool send_rtp;                  /* false: sends no RTP at all (default true) */
} callee_rule_t;

typedef struct {
    callee_rule_t deflt;    /* for numbers not listed */
    callee_rule_t *numbers; /* listed numbers, in file order */
    size_t nnumbers;        /* entries in numbers */
    callee_audio_t **audio; /* distinct greeting files, each malloc'd */
    size_t naudio;          /* entries in audio */
} callee_rules_t;

/* Reads the rules file at path (NULL: every call answered at once with
 * PCMU, silence, no keys) and loads every greeting it names into *out.
 * OB_EINVAL with err naming the file, the number and the field ("rules.json:
 * numbers.15550100.codec: \"G729\" is not PCMU or PCMA") or the audio file's
 * fault. Blocks on file reads. Free with callee_rules_free. */
ob_rc_t callee_rules_load(const char *path, callee_rules_t *out, ob_err_t *err) OB_MUSTCHECK;

/* The rule for number: an exact key first, then the longest key ending in
 * '*' that prefixes it, else the default. Borrowed from rules. */
const callee_rule_t *callee_rules_find(const callee_rules_t *rules, const char *number);

void callee_rules_free(callee_rules_t *rules);

/* Decodes an audio file: WAV (PCM 8/16-bit, G.711 mu-law or A-law, any
 * rate, any channels; mixed down and resampled to 8 kHz with libsamplerate)
 * or raw: .ul/.ulaw/.pcmu mu-law, .al/.alaw/.pcma A-law, anything else
 * 16-bit little-endian linear, all at 8 kHz. *out and *n set; caller frees
 * *out. OB_EINVAL with err saying what is wrong. Blocks on the read. */
ob_rc_t callee_audio_read(const char *path, int16_t **out, size_t *n, ob_err_t *err) OB_MUSTCHECK;

/* Writes n samples as a WAV file (PCM 16-bit mono 8 kHz). OB_ERR with err
 * naming the path on an I/O failure. Blocks. */
ob_rc_t callee_wav_write(const char *path, const int16_t *samples, size_t n,
                         ob_err_t *err) OB_MUSTCHECK;

#endif
