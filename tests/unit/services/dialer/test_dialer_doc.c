/* The call-control document's interpreter (services/dialer/dialer_doc.c),
 * verb by verb: a slot driven through its states as the worker drives it,
 * a fake carrier that records what it is asked, real speech from espeak-ng
 * (dialer_media), and the carrier's events fired in the order the sip
 * carrier fires them. Each case is a document, a script of events and what
 * the attempt, the carrier and the flush should then hold. */
#include "dialer.h"
#include "dialer_doc.h"
#include "dialer_media.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_ID     "0190a6f2-0b7e-7c3a-9f1e-2d3c4b5a6978"
#define UNREACHABLE "http://127.0.0.1:1/a.wav"
#define FAR         3600000 /* a timer step: this much later than now (ms) */

/* ---- The fake carrier ---- */

typedef struct {
    carrier_t base;        /* must be first */
    char log[1024];        /* what it was asked, in order: play, play* (barge-in), stop, ... */
    dialer_audio_t *first; /* the first audio played (a reference), NULL before */
    int last_ms;           /* the length of the latest audio played */
    char connect[512];     /* the latest connect: "to|header;header" */
    bool refuse_connect;   /* connect answers false */
    int plays;             /* plays asked for */
} fake_t;

static fake_t car;

static void say_to_log(const char *what)
{
    size_t len = strlen(car.log);
    snprintf(car.log + len, sizeof(car.log) - len, "%s%s", len ? " " : "", what);
}

static bool fake_start(carrier_t *c, void *call, const carrier_dial_t *d)
{
    (void)c, (void)call, (void)d;
    return true;
}

static void fake_hangup(carrier_t *c, void *call)
{
    (void)c, (void)call;
    say_to_log("hangup");
}

static void fake_extend(carrier_t *c, void *call, int talk_ms)
{
    (void)c, (void)call, (void)talk_ms;
    say_to_log("extend");
}

static void fake_play(carrier_t *c, void *call, dialer_audio_t *audio, int loop, bool barge_in)
{
    (void)c, (void)call, (void)loop;
    say_to_log(barge_in ? "play*" : "play");
    car.last_ms = dialer_audio_ms(audio);
    if (!car.first)
        car.first = dialer_audio_ref(audio);
    car.plays++;
}

static void fake_stop(carrier_t *c, void *call)
{
    (void)c, (void)call;
    say_to_log("stop");
}

static bool fake_connect(carrier_t *c, void *call, const carrier_connect_t *to)
{
    (void)c, (void)call;
    say_to_log("connect");
    snprintf(car.connect, sizeof(car.connect), "%s|", to->to);
    for (int i = 0; i < to->nheaders; i++) {
        size_t len = strlen(car.connect);
        snprintf(car.connect + len, sizeof(car.connect) - len, "%s%s", i ? ";" : "",
                 to->headers[i]);
    }
    return !car.refuse_connect;
}

static int64_t fake_run(carrier_t *c, int64_t now_ms)
{
    (void)c, (void)now_ms;
    return INT64_MAX;
}

static int fake_active(const carrier_t *c)
{
    (void)c;
    return 1;
}

static void fake_destroy(carrier_t *c)
{
    (void)c;
}

static const carrier_ops_t fake_ops = {
    .name = "fake",
    .start = fake_start,
    .hangup = fake_hangup,
    .extend = fake_extend,
    .play = fake_play,
    .stop = fake_stop,
    .connect = fake_connect,
    .run = fake_run,
    .active = fake_active,
    .destroy = fake_destroy,
};

/* ---- The worker around one slot ---- */

enum {
    START_URL = 1,      /* the job has a start_url: its answer (S) is awaited */
    NO_MEDIA = 2,       /* the dialer has no media module */
    COLD = 4,           /* the audio is not prepared before the answer */
    REFUSE_CONNECT = 8, /* the carrier cannot connect */
};

static dialer_config_t cfg = {.channels = 2};
static dialer_ctx_t ctx;
static dialer_slot_t *slot;
static const ob_url_policy_t no_ranges; /* refuses nothing */
static char source[] = "/outbound/dialer/test";

/* Runs the media module and the documents until no call waits for audio
 * (10 s at most): what the worker's loop does between two events. */
static void settle(void)
{
    int64_t until = ob_mono_ms() + 10000;
    for (;;) {
        int64_t now = ob_mono_ms();
        if (ctx.media)
            dialer_media_run(ctx.media, now);
        if (dialer_doc_run(&ctx, now) != now + 5 || now > until)
            return;
        usleep(1000);
    }
}

/* Runs the media module until it is idle: the renders and fetches a
 * document asked for while its call rang are done (10 s at most). */
static void prepared(void)
{
    int64_t until = ob_mono_ms() + 10000;
    while (ctx.media && dialer_media_run(ctx.media, ob_mono_ms()) != INT64_MAX &&
           ob_mono_ms() < until)
        usleep(1000);
}

/* A dialer with one call ringing on slot 0, whose job carries app and
 * params; the document prepared (its audio ready unless COLD), and the
 * callee answered. */
static void call_up(const char *app, const char *params, int flags)
{
    ob_err_t err = {{0}};
    memset(&car, 0, sizeof(car));
    car.base = (carrier_t){.ops = &fake_ops, .events = &dialer_carrier_events, .worker = &ctx};
    car.refuse_connect = flags & REFUSE_CONNECT;
    ctx = (dialer_ctx_t){.cfg = &cfg, .carrier = &car.base, .time_scale = 1, .source = source};
    dialer_slots_init(&ctx);
    if (!(flags & NO_MEDIA)) {
        dialer_media_opts_t o = {
            .cache_bytes = 64 << 20,
            .fetch_max_bytes = 1 << 20,
            .fetch_timeout_ms = 2000,
            .render_timeout_ms = 5000,
            .max_audio_ms = 300000,
            .urls = &no_ranges,
        };
        cr_assert_eq(dialer_media_new(&o, &ctx.media, &err), OB_OK, "%s", err.msg);
    }
    /* As dialer_take_job and the flushes move it: the waiting list is the
     * caller's to empty when a slot leaves the waiting states. */
    slot = dialer_slot_next_idle(&ctx);
    dialer_slot_enter(&ctx, slot, DIALER_SLOT_VERIFYING);
    slot->job = (ob_dial_job_t){
        .job_id = ob_xstrdup("0190a6f2-0b7e-7c3a-9f1e-000000000001"),
        .call_id = ob_xstrdup(CALL_ID),
        .deployment_id = ob_xstrdup("0190a6f2-0b7e-7c3a-9f1e-000000000002"),
        .account_id = ob_xstrdup("0190a6f2-0b7e-7c3a-9f1e-000000000003"),
        .phone_number = ob_xstrdup("+12125550100"),
        .call_parameters = params ? ob_xstrdup(params) : NULL,
        .start_url = flags & START_URL ? ob_xstrdup("http://127.0.0.1:1/start") : NULL,
        .app = app ? ob_xstrdup(app) : NULL,
        .attempt = 1,
        .max_attempts = 3,
    };
    dialer_slot_enter(&ctx, slot, DIALER_SLOT_TAKING);
    ctx.nwaiting = 0;
    dialer_slot_enter(&ctx, slot, DIALER_SLOT_DIALING);
    dialer_doc_prepare(&ctx, slot);
    if (!(flags & COLD))
        prepared();
    dialer_carrier_events.answered(&ctx, slot, "processing");
}

/* Ends the call if it is still up (the callee's or our hangup), as the
 * carrier reports it: what the attempt then records is in slot->end. */
static void call_ended(void)
{
    if (slot->state == DIALER_SLOT_CONNECTED || slot->state == DIALER_SLOT_ANSWERED)
        dialer_carrier_events.ended(&ctx, slot, true, "voice", 3000, 5000);
    else if (slot->state == DIALER_SLOT_DIALING)
        dialer_carrier_events.ended(&ctx, slot, false, "noanswer", 3000, 0);
}

static void down(void)
{
    if (!ctx.slots)
        return;
    dialer_slots_free(&ctx); /* the jobs and the documents' runs too */
    dialer_audio_unref(car.first);
    dialer_media_free(ctx.media);
    dialer_notes_clear(&ctx);
    free(ctx.notes);
    dialer_outcomes_clear(&ctx);
    free(ctx.outcomes);
    memset(&ctx, 0, sizeof(ctx));
}

/* An answer of start_url (S) or of an action_url (X): a document's text,
 * "hangup" ({"hangup": true}), "error" (the request failed), or NULL/"{}"
 * (an answer that asks for nothing). Applied as the worker's app_done does. */
static void app_answers(const char *answer, bool action)
{
    dialer_app_result_t r = {
        .call = slot,
        .call_id = CALL_ID,
        .attempt = 1,
        .connected = !action,
        .action = action,
        .status = 200,
        .ms = 40,
        .answer = {.stay_connected_ms = -1},
    };
    if (answer && strcmp(answer, "hangup") == 0)
        r.answer.hangup = true;
    else if (answer && strcmp(answer, "error") == 0)
        r.error = "timed out after 3000 ms", r.status = 0;
    else if (answer && strcmp(answer, "{}") != 0)
        r.answer.doc = ob_xstrdup(answer);
    if (!dialer_doc_answered(&ctx, slot, &r) && !r.error && r.answer.hangup)
        ctx.carrier->ops->hangup(ctx.carrier, slot);
    dialer_app_answer_clear(&r.answer);
}

/* Runs a script of space-separated steps, each followed by what the
 * worker's loop does meanwhile (settle):
 *   C          the connected transition is recorded (ANSWERED -> CONNECTED)
 *   D:type     the carrier decides the callee type
 *   P / I      the carrier's play ended: played all / interrupted
 *   k<key>     the callee pressed key
 *   G          a machine's greeting is over (its beep)
 *   T          the next timer is due (a pause, a gather's wait)
 *   S / X      start_url / the action_url answers `answer`
 *   H:outcome  the carrier's connect ended
 *   |          a marker in the carrier's log: nothing before it was asked */
static void run_script(const char *script, const char *answer)
{
    char *copy = ob_xstrdup(script), *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        switch (t[0]) {
        case 'C':
            ctx.nwaiting = 0;
            dialer_slot_enter(&ctx, slot, DIALER_SLOT_CONNECTED);
            dialer_doc_connected(&ctx, slot);
            break;
        case 'D':
            dialer_carrier_events.decided(&ctx, slot, t + 2, 800);
            break;
        case 'P':
        case 'I':
            dialer_carrier_events.played(&ctx, slot, t[0] == 'P' ? car.last_ms : 300, t[0] == 'I');
            break;
        case 'k':
            dialer_carrier_events.digit(&ctx, slot, t[1], false);
            break;
        case 'G':
            dialer_carrier_events.greeting_over(&ctx, slot, true, 4200);
            break;
        case 'T':
            dialer_doc_run(&ctx, ob_mono_ms() + FAR);
            break;
        case 'S':
        case 'X':
            app_answers(answer, t[0] == 'X');
            break;
        case 'H':
            dialer_carrier_events.handed_over(&ctx, slot, t + 2, strcmp(t + 2, "busy") ? 200 : 486,
                                              strcmp(t + 2, "answered") ? 0 : 9000);
            break;
        case '|':
            say_to_log("|");
            break;
        default:
            cr_assert_fail("unknown step %s", t);
        }
        settle();
    }
    free(copy);
}

/* The verb log (JSON) as "verb:outcome[digits]@m ...": @m for the machine
 * branch's entries; *error gets the first entry's error. */
static void project_verbs(const char *json, char *out, size_t max, char *error, size_t emax)
{
    cJSON *log = json ? cJSON_Parse(json) : cJSON_CreateArray();
    const cJSON *e = NULL;
    size_t len = 0;
    out[0] = error[0] = '\0';
    cr_assert(cJSON_IsArray(log), "the verb log is a JSON array: %s", json);
    cJSON_ArrayForEach(e, log)
    {
        const cJSON *digits = cJSON_GetObjectItem(e, "digits");
        const cJSON *branch = cJSON_GetObjectItem(e, "branch");
        const cJSON *err = cJSON_GetObjectItem(e, "error");
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(e, "started_ms")), "started_ms in %s", json);
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(e, "duration_ms")), "duration_ms in %s", json);
        len += (size_t)snprintf(out + len, max - len, "%s%s:%s", len ? " " : "",
                                cJSON_GetStringValue(cJSON_GetObjectItem(e, "verb")),
                                cJSON_GetStringValue(cJSON_GetObjectItem(e, "outcome")));
        if (digits)
            len += (size_t)snprintf(out + len, max - len, "[%s]", cJSON_GetStringValue(digits));
        if (branch)
            len += (size_t)snprintf(out + len, max - len, "@%c", cJSON_GetStringValue(branch)[0]);
        if (err && !error[0])
            snprintf(error, emax, "%s", cJSON_GetStringValue(err));
    }
    cJSON_Delete(log);
}

/* The events queued for the flush as "type:digits-or-result ...". */
static void project_notes(char *out, size_t max)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < ctx.nnotes; i++) {
        const ob_call_event_t *n = &ctx.notes[i];
        const char *type = strncmp(n->type, "outbound.call.", 14) == 0 ? n->type + 14 : n->type;
        len += (size_t)snprintf(out + len, max - len, "%s%s:%s", len ? " " : "", type,
                                n->digits   ? n->digits
                                : n->result ? n->result
                                            : "");
        cr_expect_str_eq(n->call_id, CALL_ID);
    }
}

/* ---- The cases ---- */

typedef struct {
    const char *name;    /* what it shows */
    const char *app;     /* the job's document */
    const char *params;  /* its call_parameters */
    int flags;           /* START_URL, NO_MEDIA, COLD, REFUSE_CONNECT */
    const char *script;  /* run_script's steps */
    const char *answer;  /* what S or X answers */
    const char *verbs;   /* the verb log, projected (project_verbs) */
    const char *carrier; /* what the carrier was asked */
    const char *digits;  /* the attempt's digits, NULL: none */
    const char *notes;   /* the events queued (project_notes), NULL: none */
    const char *error;   /* the app_error recorded (a part of it), NULL: none */
    const char *said;    /* the text whose rendered audio played first, NULL: unchecked */
    const char *connect; /* the connect asked: "to|headers", NULL: unchecked */
} doc_case_t;

#define SAY(t)     "{\"verb\":\"say\",\"text\":\"" t "\"}"
#define HELLO_TEXT "Hello, this is a reminder of your appointment tomorrow."
#define HELLO      SAY(HELLO_TEXT)
#define BYE        SAY("Goodbye.")
#define PAUSE30    "{\"verb\":\"pause\",\"length_s\":30}"
#define GATHER4    "{\"verb\":\"gather\",\"num_digits\":4,\"prompt\":[" HELLO "]}"
#define GATHER_NEXT                                                                                \
    "{\"verb\":\"gather\",\"num_digits\":1,\"action_url\":\"http://127.0.0.1:1/next\"}"

static doc_case_t cases[] = {
    {.name = "say plays its rendered audio, then the document's end hangs up",
     .app = "[" HELLO "]",
     .script = "C D:voice P",
     .verbs = "say:played",
     .carrier = "play hangup",
     .said = HELLO_TEXT},
    {.name = "say waits for its render when it was not prepared",
     .app = "[" HELLO "]",
     .flags = COLD,
     .script = "C D:voice P",
     .verbs = "say:played",
     .carrier = "play hangup",
     .said = HELLO_TEXT},
    {.name = "say renders its template over call_parameters",
     .app = "[" SAY("Hello {{name}}, see you soon.") "]",
     .params = "{\"name\":\"Alice\"}",
     .script = "C D:voice P",
     .verbs = "say:played",
     .carrier = "play hangup",
     .said = "Hello Alice, see you soon."},
    {.name = "a say without media fails: app_error and hangup",
     .app = "[" HELLO "," BYE "]",
     .flags = NO_MEDIA,
     .script = "C D:voice",
     .verbs = "say:failed",
     .carrier = "hangup",
     .error = "say: this dialer has no media"},
    {.name = "play of an unreachable URL fails: app_error and hangup",
     .app = "[{\"verb\":\"play\",\"url\":\"" UNREACHABLE "\"}," BYE "]",
     .script = "C D:voice",
     .verbs = "play:failed",
     .carrier = "hangup",
     .error = "play " UNREACHABLE},
    {.name = "pause waits for its timer, then the next verb",
     .app = "[{\"verb\":\"pause\",\"length_s\":30}," BYE "]",
     .script = "C D:voice | T P",
     .verbs = "pause:done say:played",
     .carrier = "| play hangup",
     .said = "Goodbye."},
    {.name = "hangup hangs up; the verbs after it do not run",
     .app = "[{\"verb\":\"hangup\"}," BYE "]",
     .script = "C D:voice",
     .verbs = "hangup:hung_up",
     .carrier = "hangup"},

    /* gather */
    {.name = "gather ends at num_digits",
     .app = "[{\"verb\":\"gather\",\"num_digits\":2}," BYE "]",
     .script = "C D:voice k1 k2 P",
     .verbs = "gather:num_digits[12] say:played",
     .carrier = "play hangup",
     .digits = "12",
     .notes = "gathered:12",
     .said = "Goodbye."},
    {.name = "gather ends at finish_on_key, which is not kept",
     .app = "[{\"verb\":\"gather\"}]",
     .script = "C D:voice k4 k2 k#",
     .verbs = "gather:finish_on_key[42]",
     .carrier = "hangup",
     .digits = "42",
     .notes = "gathered:42"},
    {.name = "gather times out with digits",
     .app = "[{\"verb\":\"gather\",\"num_digits\":4}]",
     .script = "C D:voice k7 | T",
     .verbs = "gather:timeout[7]",
     .carrier = "| hangup",
     .digits = "7",
     .notes = "gathered:7"},
    {.name = "gather times out without digits",
     .app = "[{\"verb\":\"gather\"}]",
     .script = "C D:voice | T",
     .verbs = "gather:timeout[]",
     .carrier = "| hangup",
     .digits = "",
     .notes = "gathered:"},
    {.name = "a digit barges in on the prompt (played interrupted, then the digit)",
     .app = "[{\"verb\":\"gather\",\"num_digits\":1,\"prompt\":[" HELLO "]}]",
     .script = "C D:voice I k5",
     .verbs = "gather:num_digits[5]",
     .carrier = "play* hangup",
     .digits = "5",
     .notes = "gathered:5",
     .said = HELLO_TEXT},
    {.name = "a prompt played out: the gather listens after it",
     .app = "[" GATHER4 "]",
     .script = "C D:voice P k1 k2 k3 k4",
     .verbs = "gather:num_digits[1234]",
     .carrier = "play* hangup",
     .digits = "1234",
     .notes = "gathered:1234"},
    {.name = "digits before a gather are not kept",
     .app = "[" HELLO ",{\"verb\":\"gather\",\"num_digits\":2}]",
     .script = "C D:voice k9 k8 P k1 k2",
     .verbs = "say:played gather:num_digits[12]",
     .carrier = "play hangup",
     .digits = "12",
     .notes = "gathered:12"},
    {.name = "a digit cuts a pause in the prompt: the rest of the prompt does not play",
     .app = "[{\"verb\":\"gather\",\"num_digits\":2,\"prompt\":[" PAUSE30 "," HELLO "]}]",
     .script = "C D:voice k3 | T",
     .verbs = "gather:timeout[3]",
     .carrier = "| hangup",
     .digits = "3",
     .notes = "gathered:3"},
    {.name = "a pause in the prompt over: the prompt goes on",
     .app = "[{\"verb\":\"gather\",\"prompt\":[" PAUSE30 "," HELLO "]}]",
     .script = "C D:voice | T P T",
     .verbs = "gather:timeout[]",
     .carrier = "| play* hangup",
     .digits = "",
     .notes = "gathered:"},
    {.name = "the callee hangs up mid-gather: callee_hung_up with the digits so far",
     .app = "[" GATHER4 "]",
     .script = "C D:voice I k4 k2",
     .verbs = "gather:callee_hung_up[42]",
     .carrier = "play*",
     .digits = "42",
     .notes = "gathered:42"},

    /* when the verbs start */
    {.name = "voice: decided before connected, the verbs start on connected",
     .app = "[" HELLO "]",
     .script = "D:voice | C P",
     .verbs = "say:played",
     .carrier = "| play hangup"},
    {.name = "voice: connected before decided, the verbs start on decided",
     .app = "[" HELLO "]",
     .script = "C | D:voice P",
     .verbs = "say:played",
     .carrier = "| play hangup"},
    {.name = "unknown hears the verbs",
     .app = "[" HELLO "]",
     .script = "C D:unknown P",
     .verbs = "say:played",
     .carrier = "play hangup"},
    {.name = "the machine branch waits for the greeting, its entries marked",
     .app = "{\"verbs\":[" HELLO "],\"machine\":[" BYE "]}",
     .script = "C D:answeringmachine | G P",
     .verbs = "say:played@m",
     .carrier = "| play hangup",
     .said = "Goodbye."},
    {.name = "no machine branch: the verbs run for a machine after its greeting",
     .app = "[" BYE "]",
     .script = "D:answeringmachine C | G P",
     .verbs = "say:played",
     .carrier = "| play hangup",
     .said = "Goodbye."},
    {.name = "a beep after a person's verdict: the say stops, the machine branch follows the beep",
     .app = "{\"verbs\":[" HELLO "],\"machine\":[" BYE "]}",
     .script = "C D:voice D:answeringmachine | G P",
     .verbs = "say:machine_beep say:played@m",
     .carrier = "play stop | play hangup"},
    {.name = "a beep while a gather listens: the gather ends, the machine branch follows the beep",
     .app = "{\"verbs\":[" GATHER4 "],\"machine\":[" BYE "]}",
     .script = "C D:voice I k4 D:answeringmachine | G P",
     .verbs = "gather:machine_beep say:played@m",
     .carrier = "play* | play hangup"},
    {.name = "a fax is hung up on without verbs",
     .app = "{\"verbs\":[" HELLO "],\"machine\":[" BYE "]}",
     .script = "C D:fax",
     .verbs = "",
     .carrier = "hangup"},

    /* start_url */
    {.name = "start_url's document replaces the static one once it answers",
     .app = "[" HELLO "]",
     .flags = START_URL,
     .script = "C D:voice | S P",
     .answer = "[" BYE "]",
     .verbs = "say:played",
     .carrier = "| play hangup",
     .said = "Goodbye."},
    {.name = "start_url's document runs when there is no static one",
     .flags = START_URL,
     .script = "C D:voice | S P",
     .answer = "{\"verbs\":[" BYE "]}",
     .verbs = "say:played",
     .carrier = "| play hangup",
     .said = "Goodbye."},
    {.name = "start_url answers an invalid document: app_error and hangup",
     .app = "[" HELLO "]",
     .flags = START_URL,
     .script = "C D:voice | S",
     .answer = "[{\"verb\":\"dance\"}]",
     .verbs = "",
     .carrier = "| hangup",
     .error = "start_url answered an invalid document: "},
    {.name = "start_url's legacy hangup: the document does not run",
     .app = "[" HELLO "]",
     .flags = START_URL,
     .script = "C D:voice | S",
     .answer = "hangup",
     .verbs = "",
     .carrier = "| hangup"},
    {.name = "start_url answers nothing: the static document runs",
     .app = "[" HELLO "]",
     .flags = START_URL,
     .script = "C D:voice | S P",
     .answer = "{}",
     .verbs = "say:played",
     .carrier = "| play hangup",
     .said = HELLO_TEXT},
    {.name = "start_url fails: the static document runs",
     .app = "[" HELLO "]",
     .flags = START_URL,
     .script = "C D:voice | S P",
     .answer = "error",
     .verbs = "say:played",
     .carrier = "| play hangup",
     .said = HELLO_TEXT},

    /* action_url (the app client is off here: X answers in its place) */
    {.name = "a gather's action_url answers the next document",
     .app = "[" GATHER_NEXT "," HELLO "]",
     .script = "C D:voice k2 | X P",
     .answer = "[" BYE "]",
     .verbs = "gather:num_digits[2] say:played",
     .carrier = "| play hangup",
     .digits = "2",
     .notes = "gathered:2",
     .said = "Goodbye."},
    {.name = "an action_url answering nothing goes on with the next verb",
     .app = "[" GATHER_NEXT "," BYE "]",
     .script = "C D:voice k2 | X P",
     .answer = "{}",
     .verbs = "gather:num_digits[2] say:played",
     .carrier = "| play hangup",
     .digits = "2",
     .notes = "gathered:2",
     .said = "Goodbye."},
    {.name = "an action_url that fails: app_error and hangup",
     .app = "[" GATHER_NEXT "," BYE "]",
     .script = "C D:voice k2 | X",
     .answer = "error",
     .verbs = "gather:num_digits[2]",
     .carrier = "| hangup",
     .digits = "2",
     .notes = "gathered:2",
     .error = "action_url: timed out"},

    /* connect */
    {.name = "connect: the rendered target and the parameters as X-Outbound headers; busy goes on",
     .app = "[{\"verb\":\"connect\",\"to\":\"sip:{{agent}}@pbx\"}," BYE "]",
     .params = "{\"agent\":\"ann\",\"order\":\"A 17\",\"n\":3}",
     .script = "C D:voice H:busy P",
     .verbs = "connect:busy say:played",
     .carrier = "connect play hangup",
     .notes = "handed_over:busy",
     .said = "Goodbye.",
     .connect = "sip:ann@pbx|X-Outbound-agent: ann;X-Outbound-order: A 17;X-Outbound-n: 3"},
    {.name = "connect answered: our part is over, hangup",
     .app = "[{\"verb\":\"connect\",\"to\":\"+12125550199\",\"headers\":false}," BYE "]",
     .params = "{\"agent\":\"ann\"}",
     .script = "C D:voice H:answered",
     .verbs = "connect:answered",
     .carrier = "connect hangup",
     .notes = "handed_over:voice",
     .connect = "+12125550199|"},
    {.name = "connect the carrier refuses: failed, the next verb runs",
     .app = "[{\"verb\":\"connect\",\"to\":\"+12125550199\"}," BYE "]",
     .flags = REFUSE_CONNECT,
     .script = "C D:voice P",
     .verbs = "connect:failed say:played",
     .carrier = "connect play hangup",
     .said = "Goodbye."},
};

/* Runs case c and checks what it should leave. */
static void check(const doc_case_t *c)
{
    char verbs[1024], error[512], notes[512];
    call_up(c->app, c->params, c->flags);
    run_script(c->script, c->answer);
    call_ended();
    cr_assert_eq(slot->state, DIALER_SLOT_CONNECTED_ENDING, "%s", c->name);

    project_verbs(slot->end.verbs, verbs, sizeof(verbs), error, sizeof(error));
    cr_expect_str_eq(verbs, c->verbs, "%s: verb log %s", c->name,
                     slot->end.verbs ? slot->end.verbs : "(none)");
    cr_expect_str_eq(car.log, c->carrier, "%s: the carrier was asked '%s'", c->name, car.log);
    if (c->digits)
        cr_expect(slot->end.digits && strcmp(slot->end.digits, c->digits) == 0,
                  "%s: digits '%s', not '%s'", c->name, slot->end.digits, c->digits);
    else
        cr_expect_null(slot->end.digits, "%s: digits '%s'", c->name, slot->end.digits);
    project_notes(notes, sizeof(notes));
    cr_expect_str_eq(notes, c->notes ? c->notes : "", "%s: events '%s'", c->name, notes);
    if (c->error) {
        cr_expect_eq(ctx.noutcomes, 1, "%s: one app_error", c->name);
        if (ctx.noutcomes > 0) {
            cr_expect_eq(ctx.outcomes[0].kind, DIALER_OUTCOME_DOC);
            cr_expect(ctx.outcomes[0].error && strstr(ctx.outcomes[0].error, c->error),
                      "%s: app_error '%s'", c->name, ctx.outcomes[0].error);
        }
        if (strstr(c->verbs, ":failed"))
            cr_expect(strstr(error, c->error), "%s: the failed verb's error '%s'", c->name, error);
    } else {
        cr_expect_eq(ctx.noutcomes, 0, "%s: app_error '%s'", c->name,
                     ctx.noutcomes ? ctx.outcomes[0].error : "");
    }
    if (c->said) {
        dialer_audio_t *a = NULL;
        const char *why = NULL;
        cr_assert_eq(dialer_media_say(ctx.media, c->said, "en-us", 160, &a, &why),
                     DIALER_MEDIA_READY, "%s: %s", c->name, why ? why : "pending");
        cr_expect_eq(car.first, a, "%s: the first audio played is '%s' rendered", c->name, c->said);
        cr_expect_gt(dialer_audio_ms(a), 300, "%s: real speech", c->name);
        dialer_audio_unref(a);
    }
    if (c->connect)
        cr_expect_str_eq(car.connect, c->connect, "%s: connect '%s'", c->name, car.connect);
}

ParameterizedTestParameters(doc, runs_the_verbs)
{
    return cr_make_param_array(doc_case_t, cases, OB_COUNTOF(cases));
}

ParameterizedTest(doc_case_t *c, doc, runs_the_verbs, .fini = down)
{
    check(c);
}

/* Bugs these tests found in dialer_doc.c (fixed): they must stay fixed. */
static doc_case_t bugs[] = {
    /* The sip and sim carriers report a play cut by the call's end as
     * played(interrupted) just before ended; it was taken for the say's
     * end, logged "interrupted", and the next verb (here a connect to an
     * agent) started on a call that was gone. */
    {.name = "the callee hangs up mid-say: callee_hung_up, nothing more runs",
     .app = "[" HELLO ",{\"verb\":\"connect\",\"to\":\"sip:agent@pbx\"}]",
     .script = "C D:voice I",
     .verbs = "say:callee_hung_up",
     .carrier = "play"},
    /* a templated `to` is not checked once rendered
     * (ob_appdoc_to_valid, as docs/application.md says it is), so the
     * carrier is asked to connect "not a number". */
    {.name = "connect to a rendered target that is no number or URI: not dialed, app_error",
     .app = "[{\"verb\":\"connect\",\"to\":\"{{agent}}\"}," BYE "]",
     .params = "{\"agent\":\"not a number\"}",
     .script = "C D:voice",
     .verbs = "connect:failed",
     .carrier = "hangup",
     .error = "not a number"},
};

ParameterizedTestParameters(doc, found_bugs_stay_fixed)
{
    return cr_make_param_array(doc_case_t, bugs, OB_COUNTOF(bugs));
}

ParameterizedTest(doc_case_t *c, doc, found_bugs_stay_fixed, .fini = down)
{
    check(c);
}

/* ---- Timing ---- */

Test(doc, pause_waits_its_length, .fini = down)
{
    char verbs[256], error[64];
    call_up("[{\"verb\":\"pause\",\"length_s\":0.2},{\"verb\":\"hangup\"}]", NULL, 0);
    int64_t t0 = ob_mono_ms();
    run_script("C D:voice", NULL);
    int64_t due = dialer_doc_run(&ctx, ob_mono_ms());
    cr_expect(due >= t0 + 200 && due <= ob_mono_ms() + 200, "due %lld ms after connected",
              (long long)(due - t0));
    cr_expect_eq(dialer_doc_run(&ctx, due - 1), due, "not due yet");
    cr_expect_str_eq(car.log, "");
    while (ob_mono_ms() < due)
        usleep(5000);
    cr_expect_eq(dialer_doc_run(&ctx, ob_mono_ms()), INT64_MAX, "nothing more is due");
    cr_expect_str_eq(car.log, "hangup");
    call_ended();
    project_verbs(slot->end.verbs, verbs, sizeof(verbs), error, sizeof(error));
    cr_expect_str_eq(verbs, "pause:done hangup:hung_up");
    cJSON *log = cJSON_Parse(slot->end.verbs);
    int ms = cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "duration_ms")->valueint;
    cr_expect(ms >= 200 && ms < 1000, "the pause lasted %d ms", ms);
    cJSON_Delete(log);
}

Test(doc, gather_wait_starts_again_after_each_digit, .fini = down)
{
    call_up("[{\"verb\":\"gather\",\"timeout_s\":1,\"finish_on_key\":\"\"}]", NULL, 0);
    run_script("C D:voice", NULL);
    int64_t first = dialer_doc_run(&ctx, ob_mono_ms());
    cr_expect(first > ob_mono_ms() + 800 && first <= ob_mono_ms() + 1000, "waits 1 s");
    usleep(300 * 1000);
    run_script("k1", NULL);
    int64_t second = dialer_doc_run(&ctx, ob_mono_ms());
    cr_expect_geq(second, first + 250, "the wait counts again from the digit");
    cr_expect_eq(dialer_doc_run(&ctx, first), second, "the first deadline no longer ends it");
    cr_expect_str_eq(car.log, "");
    dialer_doc_run(&ctx, second);
    cr_expect_str_eq(car.log, "hangup");
    call_ended();
    cr_expect_str_eq(slot->end.digits, "1");
}

Test(doc, first_audio_timing_goes_to_the_attempt, .fini = down)
{
    call_up("[" HELLO "]", NULL, 0);
    run_script("C D:voice", NULL);
    dialer_carrier_events.first_audio(&ctx, slot, 1200, 1500);
    call_ended();
    cr_expect_eq(slot->end.greeting_end_ms, 1200);
    cr_expect_eq(slot->end.first_audio_ms, 1500);
    uint64_t n = 0;
    for (size_t i = 0; i <= OB_HISTOGRAM_MAX_BUCKETS; i++)
        n += ctx.first_audio_gap.counts[i];
    cr_expect_eq(n, 1, "the gap observed once");
    cr_expect_float_eq(ctx.first_audio_gap.sum, 0.3, 1e-9);
}
