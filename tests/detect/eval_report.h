/*
 * eval_detect's tallies and report: each recording's row of the manifest and
 * what each detector made of it go in; per-stratum and overall tables, the
 * targets, and optionally JSON and a per-recording TSV come out.
 */
#ifndef EVAL_REPORT_H
#define EVAL_REPORT_H

#include <stdbool.h>

#define EVAL_CLASSES 5
enum { EVAL_VOICE, EVAL_MACHINE, EVAL_FAX, EVAL_INFOTONE, EVAL_UNKNOWN };
/* The callee-type names, in the order above. */
extern const char *const eval_classes[EVAL_CLASSES];

/* One manifest line (see tools/detect_corpus.py). */
typedef struct {
    char name[128];      /* the recording, NAME.raw */
    char label[32];      /* the expected callee type */
    int early_ms;        /* audio before the answer */
    int greeting_end_ms; /* a person's first words end, after the answer; -1: none */
    int beep_ms;         /* a machine's beep starts, after the answer; -1: none */
    char stratum[64];    /* what kind of answer it is */
    char split[16];      /* "dev", "test", "fixture"; "-" in a first-corpus manifest */
    int onset_ms;        /* the callee's own sound starts, after the answer; -1: none or unknown */
    char channel[64];    /* codec and impairments, for the per-recording results */
    int want;            /* label as an EVAL_ class */
} eval_row_t;

/* What one detector made of a recording. */
typedef struct {
    int verdict;     /* EVAL_ class; EVAL_UNKNOWN when the recording ended first */
    int decision_ms; /* when, after the answer */
    bool beep;       /* a beep was reported */
    int beep_ms;     /* where, after the answer */
    char why[32];    /* the rule that decided */
    double cpu_s;    /* CPU time the detector took on the recording */
    double audio_s;  /* audio it was fed */
} eval_outcome_t;

typedef struct eval eval_t;

/* An empty tally for a split's name (printed); eval_free frees it. */
eval_t *eval_new(const char *split);
void eval_free(eval_t *ev);

/* Adds a recording with ob_detect's and the baseline's outcomes (copied). */
void eval_add(eval_t *ev, const eval_row_t *row, const eval_outcome_t *ob,
              const eval_outcome_t *amd);

/* Per-recording results as TSV to path: name, stratum, label, both verdicts,
 * their times and rules. 0, or -1 when it cannot be written. */
int eval_write_results(const eval_t *ev, const char *path);

/* Prints the tables and the targets (sanity: make test's few instead of
 * the issue's); writes JSON to json_path when not NULL. Returns how many
 * targets were missed, or -1 when the JSON cannot be written or nothing
 * was evaluated. */
int eval_report(eval_t *ev, bool sanity, const char *json_path);

#endif
