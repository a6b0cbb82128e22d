/*
 * The call-control document's interpreter (dialer_doc.h). One run per
 * connected call, hung on its slot: where in which list it is, what the
 * current verb waits for (audio being prepared, the carrier's played, a
 * digit or a timer, an action_url's answer, a connect's outcome), the
 * digits of the current gather and the verb log. Every wait ends through
 * an event of the carrier or the app client, or through dialer_doc_run's
 * clock; nothing here blocks.
 *
 * Times in the log are nominal ms after the answer: on the sim carrier a
 * second of audio takes 1/time_scale s, and the log says a second.
 */
#include "dialer_doc.h"
#include "dialer_media.h"
#include "ob_appdoc.h"
#include "ob_log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the current verb waits for. */
typedef enum {
    WAIT_NONE,    /* nothing: the next step can run now */
    WAIT_AUDIO,   /* its audio is being rendered or fetched */
    WAIT_PLAYED,  /* the carrier plays it */
    WAIT_TIMER,   /* a pause, or a gather listening for digits */
    WAIT_ACTION,  /* its action_url was asked for what comes next */
    WAIT_CONNECT, /* the carrier hands the call over */
    WAIT_HANGUP,  /* hung up: only the end comes now */
} wait_t;

/* Where the run is before its verbs start. */
typedef enum {
    START_WAITING, /* connected, verdict, start_url or greeting still to come */
    START_RUNNING, /* verbs running */
    START_OFF,     /* no document: the legacy application (or none) has the call */
} start_t;

struct dialer_doc_run {
    ob_appdoc_t doc;          /* the document (owned) */
    bool have_doc;            /* doc holds one */
    bool start_url_pending;   /* start_url was asked; its answer may replace doc */
    bool connected;           /* the connected transition is recorded */
    const char *callee_type;  /* decided type (static string), NULL until then */
    bool greeting_over;       /* a machine's greeting (and beep) is over */
    start_t start;            /* see start_t */
    const ob_verb_t *list;    /* the list running: doc.verbs or doc.machine */
    int nlist;                /* its length */
    int pc;                   /* the verb running in it */
    int prompt;               /* gather: the prompt verb running, nprompt when listening */
    const ob_verb_t *playing; /* the say/play verb whose audio is asked or played */
    wait_t wait;              /* what the verb waits for */
    int64_t due_ms;           /* WAIT_TIMER: monotonic deadline */
    int64_t verb_at_ms;       /* monotonic start of the verb running */
    char digits[OB_APPDOC_MAX_DIGITS + 1]; /* gather: digits so far */
    int ndigits;                           /* their count */
    bool heard_digit;                      /* gather: a digit came (barge-in) */
    cJSON *log;                            /* the verb log (owned) */
    cJSON *entry;                          /* the running verb's entry, in log */
    char *last_digits;                     /* the latest gather's digits (owned) */
    char *log_text;                        /* the log's text once ended (owned) */
    int greeting_end_ms;                   /* the carrier's, -1 unknown */
    int first_audio_ms;                    /* the carrier's, -1 none */
    bool app_error;                        /* an app error was recorded already */
    int64_t start_by_ms; /* START_WAITING: start anyway then (monotonic; 0: no bound) */
    bool machine_wait;   /* waiting for a machine's greeting to end (start_by_ms set for it) */
};

/* A verdict (or a machine's greeting end) that does not come this long
 * after the detector should have given it does not keep the callee
 * waiting in silence: the verbs start as for an unknown callee. */
#define VERDICT_GRACE_MS 1000
/* A say or play cut short outside a gather waits this long for the call's
 * end that cut it (dialer_doc_played). */
#define CUT_GRACE_MS 500

/* ---- small helpers ------------------------------------------------------- */

/* Nominal ms between two monotonic times. */
static int nominal(const dialer_ctx_t *ctx, int64_t from, int64_t to)
{
    return (int)((double)(to - from) * ctx->time_scale);
}

/* Monotonic ms that a nominal wait of ms takes. */
static int64_t real_ms(const dialer_ctx_t *ctx, int ms)
{
    return (int64_t)((double)ms / ctx->time_scale);
}

static struct dialer_doc_run *run_of(dialer_slot_t *s)
{
    if (!s->run) {
        s->run = ob_xcalloc(1, sizeof(*s->run));
        s->run->log = cJSON_CreateArray();
        s->run->greeting_end_ms = -1;
        s->run->first_audio_ms = -1;
    }
    return s->run;
}

/* Records an application error on the attempt (app_error), once. */
static void app_error(dialer_ctx_t *ctx, dialer_slot_t *s, const char *fmt, ...) OB_PRINTF(3, 4);
static void app_error(dialer_ctx_t *ctx, dialer_slot_t *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    OB_LOG(OB_LOG_WARN, "doc", OB_KV("call_id", s->job.call_id), "application error: %s", msg);
    if (s->run->app_error)
        return;
    s->run->app_error = true;
    dialer_outcome_add(ctx, s, DIALER_OUTCOME_DOC, 0, msg, 0);
}

/* Opens the log entry of the verb v starting now. */
static void log_open(dialer_ctx_t *ctx, dialer_slot_t *s, const ob_verb_t *v)
{
    struct dialer_doc_run *r = s->run;
    int64_t now = ob_mono_ms();
    r->verb_at_ms = now;
    r->entry = cJSON_CreateObject();
    cJSON_AddStringToObject(r->entry, "verb", ob_verb_name(v->kind));
    cJSON_AddNumberToObject(r->entry, "started_ms", nominal(ctx, s->answered_ms, now));
    if (r->list && r->list == r->doc.machine)
        cJSON_AddStringToObject(r->entry, "branch", "machine");
    cJSON_AddItemToArray(r->log, r->entry);
}

/* Closes the running verb's entry with its outcome (and error). */
static void log_close(dialer_ctx_t *ctx, dialer_slot_t *s, const char *outcome, const char *error)
{
    struct dialer_doc_run *r = s->run;
    if (!r->entry)
        return;
    cJSON_AddNumberToObject(r->entry, "duration_ms", nominal(ctx, r->verb_at_ms, ob_mono_ms()));
    cJSON_AddStringToObject(r->entry, "outcome", outcome);
    if (error)
        cJSON_AddStringToObject(r->entry, "error", error);
    r->entry = NULL;
}

/* Renders one of the verb's templates over the call's parameters; NULL
 * with why set when it cannot be (the caller decides what that means:
 * nothing while preparing, the verb's failure while it runs). */
static char *render(const dialer_slot_t *s, const char *tmpl, bool url, size_t max, char *why,
                    size_t whylen)
{
    ob_err_t err = {{0}};
    char *out = ob_appdoc_render(tmpl, s->job.call_parameters, url, max, &err);
    if (!out)
        snprintf(why, whylen, "%s", err.msg);
    return out;
}

static void hang_up(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    s->run->wait = WAIT_HANGUP;
    ctx->carrier->ops->hangup(ctx->carrier, s);
}

/* A verb failed in a way the application must hear of: logged, recorded
 * as app_error, and the call hung up (never left silent). */
static void fail(dialer_ctx_t *ctx, dialer_slot_t *s, const char *why)
{
    log_close(ctx, s, "failed", why);
    app_error(ctx, s, "%s", why);
    hang_up(ctx, s);
}

/* ---- audio ---------------------------------------------------------------- */

/* Asks the media caches for a say's or play's audio: READY with *audio
 * set, PENDING, or FAILED with *why. */
static dialer_media_state_t audio_of(dialer_ctx_t *ctx, dialer_slot_t *s, const ob_verb_t *v,
                                     dialer_audio_t **audio, char *why, size_t whylen)
{
    const char *w = NULL;
    dialer_media_state_t st = DIALER_MEDIA_FAILED;
    char *text =
        render(s, v->kind == OB_VERB_SAY ? v->text : v->url, v->kind == OB_VERB_PLAY,
               v->kind == OB_VERB_SAY ? OB_APPDOC_MAX_TEXT : OB_APPDOC_MAX_URL, why, whylen);
    if (!text)
        return DIALER_MEDIA_FAILED;
    if (!ctx->media) {
        free(text);
        snprintf(why, whylen, "%s: this dialer has no media", ob_verb_name(v->kind));
        return DIALER_MEDIA_FAILED;
    }
    if (v->kind == OB_VERB_SAY)
        st = dialer_media_say(ctx->media, text, v->voice, v->rate, audio, &w);
    else
        st = dialer_media_play(ctx->media, text, audio, &w);
    if (st == DIALER_MEDIA_FAILED)
        snprintf(why, whylen, "%s", w ? w : "audio not available");
    free(text);
    return st;
}

/* Asks ahead for the audio of every say and play of a list (prompts
 * included), so that it is ready when its verb comes. */
static void prefetch(dialer_ctx_t *ctx, dialer_slot_t *s, const ob_verb_t *list, int n)
{
    for (int i = 0; i < n; i++) {
        const ob_verb_t *v = &list[i];
        if (v->kind == OB_VERB_GATHER)
            prefetch(ctx, s, v->prompt, v->nprompt);
        if (v->kind != OB_VERB_SAY && v->kind != OB_VERB_PLAY)
            continue;
        dialer_audio_t *a = NULL;
        char why[256];
        if (audio_of(ctx, s, v, &a, why, sizeof(why)) == DIALER_MEDIA_READY)
            dialer_audio_unref(a);
    }
}

/* Starts (or retries, while its audio is pending) the say or play v. */
static void play_verb(dialer_ctx_t *ctx, dialer_slot_t *s, const ob_verb_t *v, bool barge_in)
{
    struct dialer_doc_run *r = s->run;
    dialer_audio_t *a = NULL;
    char why[512];
    r->playing = v;
    switch (audio_of(ctx, s, v, &a, why, sizeof(why))) {
    case DIALER_MEDIA_PENDING:
        r->wait = WAIT_AUDIO;
        return;
    case DIALER_MEDIA_FAILED:
        r->playing = NULL;
        fail(ctx, s, why);
        return;
    case DIALER_MEDIA_READY:
        break;
    }
    r->wait = WAIT_PLAYED;
    ctx->carrier->ops->play(ctx->carrier, s, a, v->loop > 0 ? v->loop : 1, barge_in);
    dialer_audio_unref(a);
}

/* ---- the verbs ------------------------------------------------------------ */

static void step(dialer_ctx_t *ctx, dialer_slot_t *s);

/* Moves to the next verb of the list. */
static void next_verb(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    s->run->pc++;
    s->run->wait = WAIT_NONE;
    step(ctx, s);
}

/* The gather's prompt is over (or cut by a digit): it listens. */
static void gather_listen(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    const ob_verb_t *v = &r->list[r->pc];
    r->prompt = v->nprompt;
    r->wait = WAIT_TIMER;
    r->due_ms = ob_mono_ms() + real_ms(ctx, v->timeout_ms);
}

/* Runs the gather's next prompt verb, or listens once they are done. */
static void gather_prompt(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    const ob_verb_t *v = &r->list[r->pc];
    while (r->prompt < v->nprompt && !r->heard_digit) {
        const ob_verb_t *p = &v->prompt[r->prompt];
        if (p->kind == OB_VERB_PAUSE) {
            r->wait = WAIT_TIMER;
            r->due_ms = ob_mono_ms() + real_ms(ctx, p->timeout_ms);
            return;
        }
        play_verb(ctx, s, p, true);
        return;
    }
    gather_listen(ctx, s);
}

/* Tells the application (action_url) what the verb did; its answer comes
 * to dialer_doc_answered. */
static void ask_action(dialer_ctx_t *ctx, dialer_slot_t *s, const ob_verb_t *v, const char *event,
                       const char *name, const char *value)
{
    char why[512];
    char *url = render(s, v->action_url, true, OB_APPDOC_MAX_URL, why, sizeof(why));
    if (!url) {
        app_error(ctx, s, "%s action_url: %s", ob_verb_name(v->kind), why);
        hang_up(ctx, s);
        return;
    }
    s->run->wait = WAIT_ACTION;
    dialer_app_action(ctx->app, s, &s->job, url, event, name, value);
    free(url);
}

/* The gather is over: its digits are logged, kept for the attempt and
 * published; then its action_url, or the next verb. */
static void gather_done(dialer_ctx_t *ctx, dialer_slot_t *s, const char *outcome)
{
    struct dialer_doc_run *r = s->run;
    const ob_verb_t *v = &r->list[r->pc];
    r->digits[r->ndigits] = '\0';
    if (r->entry)
        cJSON_AddStringToObject(r->entry, "digits", r->digits);
    log_close(ctx, s, outcome, NULL);
    free(r->last_digits);
    r->last_digits = ob_xstrdup(r->digits);
    dialer_note_gathered(ctx, s, r->digits);
    OB_LOG(OB_LOG_INFO, "doc", OB_KV("call_id", s->job.call_id), "gathered '%s' (%s)", r->digits,
           outcome);
    if (v->action_url)
        ask_action(ctx, s, v, "gather", "digits", r->digits);
    else
        next_verb(ctx, s);
}

/* Runs the verb at pc, or hangs up when the list is done. */
static void step(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    if (r->wait == WAIT_HANGUP)
        return;
    if (r->pc >= r->nlist) {
        OB_LOG(OB_LOG_DEBUG, "doc", OB_KV("call_id", s->job.call_id), "document done: hanging up");
        hang_up(ctx, s);
        return;
    }
    const ob_verb_t *v = &r->list[r->pc];
    log_open(ctx, s, v);
    switch (v->kind) {
    case OB_VERB_SAY:
    case OB_VERB_PLAY:
        play_verb(ctx, s, v, false);
        return;
    case OB_VERB_PAUSE:
        r->wait = WAIT_TIMER;
        r->due_ms = ob_mono_ms() + real_ms(ctx, v->timeout_ms);
        return;
    case OB_VERB_HANGUP:
        log_close(ctx, s, "hung_up", NULL);
        hang_up(ctx, s);
        return;
    case OB_VERB_GATHER:
        r->ndigits = 0;
        r->heard_digit = false;
        r->prompt = 0;
        gather_prompt(ctx, s);
        return;
    case OB_VERB_CONNECT: {
        char why[512];
        char *to = render(s, v->to, false, OB_APPDOC_MAX_URL, why, sizeof(why));
        if (to && !ob_appdoc_to_valid(to))
            snprintf(why, sizeof(why),
                     "connect: to \"%.400s\" is neither an E.164 number nor a "
                     "sip: URI once rendered",
                     to);
        if (!to || !ob_appdoc_to_valid(to)) {
            free(to);
            fail(ctx, s, why);
            return;
        }
        const char **headers = NULL;
        int nheaders = 0;
        char **owned = NULL;
        cJSON *params =
            v->headers && s->job.call_parameters ? cJSON_Parse(s->job.call_parameters) : NULL;
        if (cJSON_IsObject(params)) {
            int n = cJSON_GetArraySize(params);
            headers = ob_xcalloc((size_t)n + 1, sizeof(*headers));
            owned = ob_xcalloc((size_t)n + 1, sizeof(*owned));
            const cJSON *p = NULL;
            cJSON_ArrayForEach(p, params)
            {
                char *val = cJSON_IsString(p) ? NULL : cJSON_PrintUnformatted(p);
                owned[nheaders] =
                    ob_xasprintf("X-Outbound-%s: %s", p->string, val ? val : p->valuestring);
                cJSON_free(val);
                headers[nheaders] = owned[nheaders];
                nheaders++;
            }
        }
        cJSON_Delete(params);
        carrier_connect_t c = {
            .to = to,
            .caller_id = v->caller_id,
            .ring_timeout_ms = (int)real_ms(ctx, v->timeout_ms),
            .headers = headers,
            .nheaders = nheaders,
            .refer = v->refer,
        };
        cJSON_AddStringToObject(r->entry, "to", to);
        bool ok = ctx->carrier->ops->connect && ctx->carrier->ops->connect(ctx->carrier, s, &c);
        for (int i = 0; i < nheaders; i++)
            free(owned[i]);
        free(owned);
        free(headers);
        free(to);
        if (!ok) {
            log_close(ctx, s, "failed", "the carrier cannot connect now");
            next_verb(ctx, s);
            return;
        }
        r->wait = WAIT_CONNECT;
        return;
    }
    case OB_VERB_COUNT:
        break;
    }
    OB_ASSERT(!"unknown verb");
}

/* Starts the run's verbs when everything they wait for has come. */
static void maybe_start(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    if (!r || r->start != START_WAITING || !r->connected || !r->callee_type || r->start_url_pending)
        return;
    if (!r->have_doc) {
        r->start = START_OFF; /* the legacy application (stay, hang up) or nothing */
        return;
    }
    if (strcmp(r->callee_type, "fax") == 0) {
        OB_LOG(OB_LOG_INFO, "doc", OB_KV("call_id", s->job.call_id), "a fax answered: hanging up");
        r->start = START_RUNNING;
        hang_up(ctx, s);
        return;
    }
    bool machine = strcmp(r->callee_type, "answeringmachine") == 0;
    if (machine && !r->greeting_over) {
        if (!r->machine_wait) { /* the beep search's bound, and a grace */
            r->machine_wait = true;
            r->start_by_ms = ob_mono_ms() + real_ms(ctx, s->detect.beep_wait_ms + VERDICT_GRACE_MS);
        }
        return;
    }
    r->start = START_RUNNING;
    r->list = machine && r->doc.nmachine > 0 ? r->doc.machine : r->doc.verbs;
    r->nlist = machine && r->doc.nmachine > 0 ? r->doc.nmachine : r->doc.nverbs;
    r->pc = 0;
    step(ctx, s);
}

/* Takes a document's text as the run's, replacing the one it had; false
 * (error recorded) when it is invalid. */
static bool take_doc(dialer_ctx_t *ctx, dialer_slot_t *s, const char *text, const char *from)
{
    struct dialer_doc_run *r = run_of(s);
    ob_err_t err = {{0}};
    ob_appdoc_t doc = {0};
    if (ob_appdoc_parse(text, strlen(text), &doc, &err) != OB_OK) {
        app_error(ctx, s, "%s answered an invalid document: %s", from, err.msg);
        return false;
    }
    ob_appdoc_clear(&r->doc);
    r->doc = doc;
    r->have_doc = true;
    prefetch(ctx, s, r->doc.verbs, r->doc.nverbs);
    prefetch(ctx, s, r->doc.machine, r->doc.nmachine);
    return true;
}

/* ---- the worker's calls ---------------------------------------------------- */

void dialer_doc_prepare(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    bool start_url = s->job.start_url && s->job.start_url[0];
    if (!s->job.app && !start_url)
        return;
    struct dialer_doc_run *r = run_of(s);
    r->start_url_pending = start_url;
    if (s->job.app && !take_doc(ctx, s, s->job.app, "app"))
        r->start = START_OFF; /* refused at queue time; a deployment's changed since */
}

void dialer_doc_connected(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    if (!s->run)
        return;
    s->run->connected = true;
    s->run->start_by_ms =
        ob_mono_ms() + real_ms(ctx, s->detect.total_analysis_ms + VERDICT_GRACE_MS);
    if (s->decided_as)
        s->run->callee_type = s->decided_as;
    maybe_start(ctx, s);
}

void dialer_doc_decided(dialer_ctx_t *ctx, dialer_slot_t *s, const char *callee_type)
{
    if (!s->run)
        return;
    s->run->callee_type = callee_type;
    maybe_start(ctx, s);
}

void dialer_doc_revised(dialer_ctx_t *ctx, dialer_slot_t *s, const char *callee_type)
{
    struct dialer_doc_run *r = s->run;
    if (!r)
        return;
    if (r->start == START_RUNNING &&
        (r->wait == WAIT_CONNECT || r->wait == WAIT_ACTION || r->wait == WAIT_HANGUP)) {
        OB_LOG(OB_LOG_INFO, "doc", OB_KV("call_id", s->job.call_id),
               "revised to %s while %s: the verbs go on", callee_type,
               r->wait == WAIT_CONNECT  ? "handing over"
               : r->wait == WAIT_ACTION ? "asking action_url"
                                        : "hanging up");
        return;
    }
    if (r->start == START_RUNNING) {
        wait_t was = r->wait;
        r->wait = WAIT_NONE; /* the stopped audio's report is not this run's any more */
        r->playing = NULL;
        if (was == WAIT_PLAYED)
            ctx->carrier->ops->stop(ctx->carrier, s);
        log_close(ctx, s, "machine_beep", NULL);
        r->start = START_WAITING;
        r->ndigits = 0;
        r->heard_digit = false;
        r->prompt = 0;
    }
    r->callee_type = callee_type;
    r->greeting_over = false;
    r->machine_wait = false;
    maybe_start(ctx, s);
}

bool dialer_doc_answered(dialer_ctx_t *ctx, dialer_slot_t *s, const dialer_app_result_t *r)
{
    struct dialer_doc_run *run = s->run;
    if (!run)
        return false;
    if (r->action) {
        if (run->wait != WAIT_ACTION)
            return true;
        run->wait = WAIT_NONE;
        if (r->error) {
            app_error(ctx, s, "action_url: %s", r->error);
            hang_up(ctx, s);
        } else if (r->answer.doc) {
            if (!take_doc(ctx, s, r->answer.doc, "action_url")) {
                hang_up(ctx, s);
                return true;
            }
            run->list = run->doc.verbs;
            run->nlist = run->doc.nverbs;
            run->pc = 0;
            step(ctx, s);
        } else if (r->answer.hangup) {
            hang_up(ctx, s);
        } else {
            next_verb(ctx, s);
        }
        return true;
    }
    if (!r->connected || !run->start_url_pending)
        return false;
    run->start_url_pending = false;
    bool took = false;
    if (!r->error && r->answer.doc) {
        took = true;
        if (!take_doc(ctx, s, r->answer.doc, "start_url")) {
            run->start = START_RUNNING;
            hang_up(ctx, s);
            return true;
        }
    }
    if (!took && (r->answer.hangup || r->answer.stay_connected_ms >= 0))
        run->have_doc = false; /* the legacy answer rules the call */
    maybe_start(ctx, s);
    return took;
}

void dialer_doc_played(dialer_ctx_t *ctx, dialer_slot_t *s, int played_ms, bool interrupted)
{
    struct dialer_doc_run *r = s->run;
    (void)played_ms;
    if (!r || r->wait != WAIT_PLAYED)
        return;
    r->playing = NULL;
    const ob_verb_t *v = &r->list[r->pc];
    if (v->kind == OB_VERB_GATHER) {
        if (interrupted || r->heard_digit) {
            gather_listen(ctx, s);
            return;
        }
        r->prompt++;
        gather_prompt(ctx, s);
        return;
    }
    if (interrupted) {
        /* Nothing here stops a say or play outside a gather: a cut one is
         * the call ending (the carrier reports the play first). Its end
         * logs the verb; should it not come, the verbs go on a little
         * later. */
        r->wait = WAIT_TIMER;
        r->due_ms = ob_mono_ms() + CUT_GRACE_MS;
        return;
    }
    log_close(ctx, s, "played", NULL);
    next_verb(ctx, s);
}

void dialer_doc_digit(dialer_ctx_t *ctx, dialer_slot_t *s, char digit, bool inband)
{
    struct dialer_doc_run *r = s->run;
    OB_LOG(OB_LOG_DEBUG, "doc", OB_KV("call_id", s ? s->job.call_id : ""), "digit %c (%s)", digit,
           inband ? "in band" : "RFC 4733");
    if (!r || r->start != START_RUNNING || r->pc >= r->nlist ||
        r->list[r->pc].kind != OB_VERB_GATHER || r->wait == WAIT_ACTION || r->wait == WAIT_HANGUP)
        return; /* keys pressed outside a gather are not kept */
    const ob_verb_t *v = &r->list[r->pc];
    r->heard_digit = true;
    if (r->wait == WAIT_TIMER && r->prompt < v->nprompt)
        r->prompt = v->nprompt; /* a digit during a prompt's pause ends the prompt */
    if (v->finish_on_key && digit == v->finish_on_key) {
        gather_done(ctx, s, "finish_on_key");
        return;
    }
    if (r->ndigits < OB_APPDOC_MAX_DIGITS)
        r->digits[r->ndigits++] = digit;
    if (v->num_digits > 0 && r->ndigits >= v->num_digits) {
        gather_done(ctx, s, "num_digits");
        return;
    }
    if (r->wait == WAIT_PLAYED)
        return;            /* the carrier stops the prompt (barge-in); listening follows */
    gather_listen(ctx, s); /* the timeout counts again from this digit */
}

void dialer_doc_greeting_over(dialer_ctx_t *ctx, dialer_slot_t *s, bool beep, int at_ms)
{
    if (!s->run)
        return;
    OB_LOG(OB_LOG_DEBUG, "doc", OB_KV("call_id", s->job.call_id),
           "machine greeting over at %d ms (%s)", at_ms, beep ? "beep" : "silence");
    s->run->greeting_over = true;
    maybe_start(ctx, s);
}

void dialer_doc_first_audio(dialer_ctx_t *ctx, dialer_slot_t *s, int greeting_end_ms,
                            int first_audio_ms)
{
    struct dialer_doc_run *r = run_of(s);
    r->greeting_end_ms = greeting_end_ms;
    r->first_audio_ms = first_audio_ms;
    if (greeting_end_ms >= 0 && first_audio_ms >= greeting_end_ms)
        ob_histogram_observe(&ctx->first_audio_gap, (first_audio_ms - greeting_end_ms) / 1000.0);
}

void dialer_doc_handed_over(dialer_ctx_t *ctx, dialer_slot_t *s, const char *outcome, int code,
                            int talk_ms)
{
    struct dialer_doc_run *r = s->run;
    if (!r || r->wait != WAIT_CONNECT)
        return;
    const ob_verb_t *v = &r->list[r->pc];
    if (r->entry) {
        if (code)
            cJSON_AddNumberToObject(r->entry, "sip_code", code);
        cJSON_AddNumberToObject(r->entry, "talk_ms", talk_ms);
    }
    log_close(ctx, s, outcome, NULL);
    /* The event carries the second leg's result in the result vocabulary. */
    bool through = strcmp(outcome, "answered") == 0 || strcmp(outcome, "referred") == 0;
    const char *result = through                            ? "voice"
                         : strcmp(outcome, "busy") == 0     ? "busy"
                         : strcmp(outcome, "noanswer") == 0 ? "noanswer"
                                                            : "linefailure";
    dialer_note_event(ctx, s, "handed_over", result, NULL);
    r->wait = WAIT_NONE;
    if (v->action_url) {
        ask_action(ctx, s, v, "connect", "connect_outcome", outcome);
        return;
    }
    if (through) {
        hang_up(ctx, s); /* handed over: our part of the call is done */
        return;
    }
    next_verb(ctx, s);
}

void dialer_doc_ended(dialer_ctx_t *ctx, dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    if (!r)
        return;
    if (r->entry) {
        if (r->list && r->pc < r->nlist && r->list[r->pc].kind == OB_VERB_GATHER) {
            r->digits[r->ndigits] = '\0';
            cJSON_AddStringToObject(r->entry, "digits", r->digits);
            if (r->ndigits > 0) {
                free(r->last_digits);
                r->last_digits = ob_xstrdup(r->digits);
                dialer_note_gathered(ctx, s, r->digits); /* what was pressed before the end */
            }
        }
        log_close(ctx, s, "callee_hung_up", NULL);
    }
    r->wait = WAIT_HANGUP;
    free(r->log_text);
    r->log_text = NULL;
    if (cJSON_GetArraySize(r->log) > 0) {
        char *text = cJSON_PrintUnformatted(r->log);
        r->log_text = ob_xstrdup(text);
        cJSON_free(text);
    }
    s->end.verbs = r->log_text;
    s->end.digits = r->last_digits;
    s->end.greeting_end_ms = r->greeting_end_ms;
    s->end.first_audio_ms = r->first_audio_ms;
}

int64_t dialer_doc_run(dialer_ctx_t *ctx, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < (int)ctx->cfg->channels; i++) {
        dialer_slot_t *s = &ctx->slots[i];
        struct dialer_doc_run *r = s->run;
        if (r && r->start == START_WAITING && r->connected && r->start_by_ms &&
            s->state == DIALER_SLOT_CONNECTED && !r->start_url_pending) {
            if (now_ms >= r->start_by_ms) {
                OB_LOG(OB_LOG_INFO, "doc", OB_KV("call_id", s->job.call_id),
                       "no %s in time: the verbs start",
                       r->callee_type ? "greeting end" : "verdict");
                r->callee_type = r->callee_type ? r->callee_type : "unknown";
                r->greeting_over = true;
                maybe_start(ctx, s);
            } else {
                next = r->start_by_ms < next ? r->start_by_ms : next;
            }
            continue;
        }
        if (!r || r->start != START_RUNNING || s->state != DIALER_SLOT_CONNECTED)
            continue;
        if (r->wait == WAIT_AUDIO) {
            const ob_verb_t *v = r->playing;
            bool barge = r->list[r->pc].kind == OB_VERB_GATHER;
            play_verb(ctx, s, v, barge);
            if (r->wait == WAIT_AUDIO)
                next = now_ms + 5 < next ? now_ms + 5 : next;
            continue;
        }
        if (r->wait != WAIT_TIMER)
            continue;
        if (now_ms < r->due_ms) {
            next = r->due_ms < next ? r->due_ms : next;
            continue;
        }
        const ob_verb_t *v = &r->list[r->pc];
        if (v->kind == OB_VERB_PAUSE) {
            log_close(ctx, s, "done", NULL);
            next_verb(ctx, s);
        } else if (v->kind == OB_VERB_SAY || v->kind == OB_VERB_PLAY) {
            log_close(ctx, s, "interrupted", NULL); /* cut, yet the call went on */
            next_verb(ctx, s);
        } else if (r->prompt < v->nprompt) { /* a pause among the gather's prompt */
            r->prompt++;
            gather_prompt(ctx, s);
        } else {
            gather_done(ctx, s, "timeout");
        }
        if (s->run && r->wait == WAIT_TIMER && r->due_ms < next)
            next = r->due_ms;
    }
    return next;
}

void dialer_doc_free(dialer_slot_t *s)
{
    struct dialer_doc_run *r = s->run;
    if (!r)
        return;
    ob_appdoc_clear(&r->doc);
    cJSON_Delete(r->log);
    free(r->last_digits);
    free(r->log_text);
    free(r);
    s->run = NULL;
}
