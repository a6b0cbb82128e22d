/*
 * The baseline that eval_detect sets beside ob_detect: the rule set of
 * Asterisk's AMD() application (apps/app_amd.c) with its published defaults,
 * written again from its documentation and its rules, for 8 kHz 16-bit
 * linear frames after the answer. It knows people and machines only (no
 * fax, information tone or beep), as AMD() does.
 */
#ifndef AMD_BASELINE_H
#define AMD_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* AMD()'s parameters, in ms except the two counts and the threshold. */
typedef struct {
    int initial_silence_ms;        /* silence before any word this long: MACHINE */
    int greeting_ms;               /* voice in the greeting this long: MACHINE */
    int after_greeting_silence_ms; /* silence after the greeting this long: HUMAN */
    int total_analysis_ms;         /* no decision by then: NOTSURE */
    int min_word_ms;               /* voice this long is a word */
    int between_words_silence_ms;  /* silence this long ends a word */
    int max_words;                 /* this many words: MACHINE */
    int silence_threshold;         /* mean |sample| below this: a silent frame */
    int max_word_ms;               /* one word this long: MACHINE */
} amd_config_t;

/* The defaults of Asterisk's configs/samples/amd.conf.sample (and the AMD()
 * documentation): 2500, 1500, 800, 5000, 100, 50, 2, 256, 5000. */
void amd_defaults(amd_config_t *cfg);

typedef enum {
    AMD_PENDING, /* no decision yet */
    AMD_HUMAN,
    AMD_MACHINE,
    AMD_NOTSURE,
} amd_status_t;

/* One call's state; zero it with amd_init. Not shared between threads. */
typedef struct {
    amd_config_t cfg;    /* the parameters */
    amd_status_t status; /* AMD_PENDING until decided */
    const char *cause;   /* AMDCAUSE's keyword once decided ("LONGGREETING", ...) */
    int total_ms;        /* audio analysed */
    int decision_ms;     /* total_ms at the decision; -1 before */
    int silence_ms;      /* the current run of silent frames */
    int voice_ms;        /* all voice since the answer */
    int word_ms;         /* the current run of voice frames */
    int words;           /* words counted */
    bool in_word;     /* in a word (AMD starts in one, so a first word needs silence before it) */
    bool in_greeting; /* a word was heard: the greeting has started */
} amd_t;

/* Starts a call with cfg (NULL: the defaults). */
void amd_init(amd_t *a, const amd_config_t *cfg);

/* Feeds one frame of n samples (AMD() reads 20 ms frames); returns the
 * status, final once it is not AMD_PENDING (feeding more then is a no-op). */
amd_status_t amd_feed(amd_t *a, const int16_t *samples, size_t n);

#endif
