/*
 * The call-control document: what happens on an answered call, as an
 * ordered list of verbs (say, play, gather, pause, hangup, connect) and an
 * optional machine branch run instead when an answering machine answered,
 * once its greeting is over. It comes from a deployment's or a call's
 * `app`, from start_url's answer, or from a verb's action_url. This module
 * parses and bounds it and renders its templates; the dialer runs it.
 *
 * JSON form (proto/schemas/app.schema.json is normative):
 *   {"verbs": [VERB, ...], "machine": [VERB, ...]}   or just  [VERB, ...]
 *   VERB = {"verb": "say", "text": "...", "voice": "en-us", "rate": 160, "loop": 1}
 *        | {"verb": "play", "url": "https://...", "loop": 1}
 *        | {"verb": "gather", "num_digits": 4, "finish_on_key": "#", "timeout_s": 5,
 *           "action_url": "https://...", "prompt": [say | play | pause, ...]}
 *        | {"verb": "pause", "length_s": 1.5}
 *        | {"verb": "hangup"}
 *        | {"verb": "connect", "to": "+15551234567" | "sip:agent@pbx", "caller_id": "+1...",
 *           "timeout_s": 30, "headers": true, "refer": false, "action_url": "https://..."}
 *
 * Text fields (say text, every URL, connect's to) are templates over the
 * call's call_parameters: {{name}} is replaced by the parameter's value
 * (a string as is, a number or boolean as its JSON text, null or a missing
 * key as "", an object or array as its JSON text); in URL fields the value
 * is percent-encoded (RFC 3986 unreserved characters kept). A "{{" not
 * followed by a name ([A-Za-z0-9_.-], 1-64 chars) and "}}" is literal text.
 */
#ifndef OB_APPDOC_H
#define OB_APPDOC_H

#include "ob_common.h"

#include <stdbool.h>
#include <stddef.h>

#define OB_APPDOC_MAX_BYTES    65536 /* a document's JSON text */
#define OB_APPDOC_MAX_VERBS    64    /* verbs in one list (verbs, machine, a gather's prompt) */
#define OB_APPDOC_MAX_TEXT     4000  /* bytes of a say's text, before and after rendering */
#define OB_APPDOC_MAX_URL      2048  /* bytes of a URL, before and after rendering */
#define OB_APPDOC_MAX_LOOP     10    /* a say's or play's repetitions */
#define OB_APPDOC_MAX_DIGITS   32    /* a gather's num_digits */
#define OB_APPDOC_MAX_PAUSE_MS 60000
#define OB_APPDOC_MAX_WAIT_MS  60000  /* a gather's timeout */
#define OB_APPDOC_MAX_RING_MS  120000 /* a connect's timeout */

typedef enum {
    OB_VERB_SAY,
    OB_VERB_PLAY,
    OB_VERB_GATHER,
    OB_VERB_PAUSE,
    OB_VERB_HANGUP,
    OB_VERB_CONNECT,
    OB_VERB_COUNT,
} ob_verb_kind_t;

/* "say", "play", ...; NULL out of range. */
const char *ob_verb_name(ob_verb_kind_t k);

typedef struct ob_verb ob_verb_t;
struct ob_verb {
    ob_verb_kind_t kind; /* which verb */
    char *text;          /* say: the text (a template) */
    char *voice;         /* say: espeak-ng voice or language, "en-us" when absent */
    int rate;            /* say: words per minute, 80-450, 160 when absent */
    char *url;           /* play: the audio's URL (a template) */
    int loop;            /* say, play: times over, 1-OB_APPDOC_MAX_LOOP, 1 when absent */
    int num_digits;      /* gather: digits wanted, 1-32; 0: until finish_on_key or timeout */
    char finish_on_key;  /* gather: ends input ('#' when absent; '\0': none), not kept */
    int timeout_ms;      /* gather: wait after the prompt and between digits (5000);
                            pause: its length; connect: ring time (30000) */
    char *action_url;    /* gather, connect: POSTed the outcome, answers the next
                            document (a template); NULL: the call goes on */
    ob_verb_t *prompt;   /* gather: say/play/pause played meanwhile, cut by a digit */
    int nprompt;         /* their count */
    char *to;            /* connect: E.164 number or sip:/sips: URI (a template) */
    char *caller_id;     /* connect: E.164 shown to the second leg, NULL: the call's */
    bool headers;        /* connect: call_parameters go along as X-Outbound-<name> headers */
    bool refer;          /* connect: hand over by REFER (else bridged through the dialer) */
};

typedef struct {
    ob_verb_t *verbs;   /* what runs on an answer */
    int nverbs;         /* their count (1 or more) */
    ob_verb_t *machine; /* run instead for an answering machine after its greeting; NULL: none */
    int nmachine;       /* their count (0 when none) */
} ob_appdoc_t;

/* Parses and bounds a document of len bytes into *out (zeroed first).
 * OB_EINVAL with err naming the place and the rule, in the form
 * "verbs[2] (gather): num_digits must be an integer from 1 to 32",
 * "machine[0] (play): url is required", "verbs: at most 64 verbs",
 * "app: not JSON (at byte 17)"; *out then holds nothing. Templates are
 * checked for form only (values come at render time). Pure. */
ob_rc_t ob_appdoc_parse(const char *json, size_t len, ob_appdoc_t *out, ob_err_t *err) OB_MUSTCHECK;

/* Frees what doc holds and zeroes it; NULL-safe. */
void ob_appdoc_clear(ob_appdoc_t *doc);

/* Renders template tmpl over params_json (call_parameters: a JSON object's
 * text, or NULL/"" for none), percent-encoding the values when url is set.
 * Returns a malloc'd string (caller frees), or NULL with err set when the
 * result would be longer than max bytes. Pure. */
char *ob_appdoc_render(const char *tmpl, const char *params_json, bool url, size_t max,
                       ob_err_t *err);

/* True if to is what a connect may dial: an E.164 number ("+" and 2-15
 * digits, the first not 0) or a sip:/sips: URI without spaces, quotes or
 * angle brackets. ob_appdoc_parse checks a `to` without placeholders; a
 * rendered one is checked with this. Pure. */
bool ob_appdoc_to_valid(const char *to);

#endif
