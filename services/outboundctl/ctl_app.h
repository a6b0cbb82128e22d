/*
 * outboundctl and the call-control document (common/domain/ob_appdoc.h):
 * the `app` a command sends, made from --say/--voice/--rate or read from
 * --app FILE, and what `call show` prints of the verbs each attempt ran.
 * Kept free of the network so the unit tests can drive it.
 */
#ifndef CTL_APP_H
#define CTL_APP_H

#include "ctl_args.h"
#include "ob_common.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#define CTL_APP_MIN_RATE 80  /* --rate, words per minute (the document's bounds) */
#define CTL_APP_MAX_RATE 450 /* --rate, words per minute */

/* Reads a document from path ("-": the stream in) and checks that it is
 * JSON and an object or an array; the API checks the rest (422 naming the
 * verb and the field). OB_OK with *out (caller frees with cJSON_Delete);
 * OB_EINVAL with err saying what is wrong ("cannot open ...", "... is not
 * JSON (line 3, column 7)", "... is empty", too large, wrong shape).
 * Blocks on the file or stream. */
ob_rc_t ctl_app_read(const char *path, FILE *in, cJSON **out, ob_err_t *err) OB_MUSTCHECK;

/* The `app` asked for by a command's options: --say TEXT (with --voice V
 * and --rate N) makes {"verbs": [{"verb": "say", "text": TEXT, ...}]};
 * --app FILE is read by ctl_app_read (in: what "-" reads). OB_OK with *out
 * (caller frees with cJSON_Delete); OB_ENOTFOUND when neither was given
 * (*out NULL); OB_EINVAL with err naming the option (both given, --voice
 * or --rate without --say, empty text, a bad rate, an unreadable file). */
ob_rc_t ctl_app_from_args(const ctl_args_t *a, FILE *in, cJSON **out, ob_err_t *err) OB_MUSTCHECK;

/* "2 verbs, 1 machine verb" for a document (object or array) into buf
 * (len bytes); "none" for NULL or JSON null. Returns buf. */
const char *ctl_app_describe(const cJSON *doc, char *buf, size_t len);

/* Prints, for each attempt of call (GET /api/v1/calls/{id}) whose
 * application ran, a line of its facts (digits gathered, first-audio gap,
 * application error) and a table of its verbs in order (verb, start and
 * duration in ms after the answer, outcome, digits, error or detail).
 * Prints nothing when no attempt ran one. */
void ctl_app_print_attempts(const cJSON *call, FILE *out);

#endif
