/*
 * outboundctl's command-line parsing, kept free of I/O so the unit tests can
 * drive it: option tables, long options anywhere on the line, positional
 * arguments, and number checks that name what is wrong.
 */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include "ob_common.h"

#include <stdbool.h>

#define CTL_MAX_POS  8  /* positional arguments of one command */
#define CTL_MAX_VALS 64 /* option occurrences on one line */

/* One long option; a table ends with an entry whose name is NULL. */
typedef struct {
    const char *name; /* without the leading "--" */
    const char *arg;  /* placeholder of its value ("N"), NULL for a flag */
    const char *help; /* one line for --help */
} ctl_opt_t;

/* One option as given. */
typedef struct {
    const ctl_opt_t *opt; /* which option */
    const char *value;    /* its value (points into argv), NULL for a flag */
} ctl_optval_t;

/* A parsed command line; every string points into the argv it came from. */
typedef struct {
    const char *pos[CTL_MAX_POS];    /* positional arguments, in order */
    int npos;                        /* entries in pos */
    ctl_optval_t vals[CTL_MAX_VALS]; /* options, in order */
    int nvals;                       /* entries in vals */
} ctl_args_t;

/* Parses argv[0..argc) against the option tables (searched in order).
 * Options may come anywhere as --name VALUE or --name=VALUE; "-h" is
 * "--help"; "--" makes every later word positional. OB_EINVAL (detail in
 * err) for an unknown option, a missing value, a value given to a flag, or
 * too many words. */
ob_rc_t ctl_args_parse(const ctl_opt_t *const *tables, int ntables, int argc, char *const *argv,
                       ctl_args_t *out, ob_err_t *err) OB_MUSTCHECK;

/* The last value of option name, or NULL if it was not given. */
const char *ctl_args_get(const ctl_args_t *a, const char *name);

/* True if option name (a flag or not) was given at least once. */
bool ctl_args_has(const ctl_args_t *a, const char *name);

/* Fills out with up to max values of a repeatable option; returns how many. */
int ctl_args_all(const ctl_args_t *a, const char *name, const char **out, int max);

/* Reads option name as an integer in [min, max]: OB_OK with *out set,
 * OB_ENOTFOUND if absent (*out untouched), OB_EINVAL (detail in err) if not
 * a whole number in range. */
ob_rc_t ctl_args_long(const ctl_args_t *a, const char *name, long min, long max, long *out,
                      ob_err_t *err) OB_MUSTCHECK;

/* Parses a whole decimal integer in [min, max]; false if s is anything else. */
bool ctl_parse_long(const char *s, long min, long max, long *out) OB_MUSTCHECK;

/* The singular form of a command noun ("calls" -> "call"), so either form
 * works; returns a pointer into a static table, or noun itself if unknown. */
const char *ctl_noun(const char *noun);

#endif
