/*
 * The sim carrier: reproduces every result type with realistic timing.
 * Documented test numbers (+1 NPA 555-01DX, D choosing the outcome) always
 * give the same result; any other number draws from a realistic mix seeded by
 * call id and attempt, so a run can be replayed. Times are nominal seconds
 * divided by the time scale. With recordings to play (carrier_sim_play),
 * answered calls are classified by the real detector.
 */
#include "dialer_carrier.h"
#include "ob_common.h"
#include "ob_vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *call;                  /* worker's handle; NULL when the slot is free */
    bool answers;                /* the outcome is an answer */
    bool connected;              /* answer already reported */
    bool decided;                /* callee type already reported */
    const char *result;          /* outcome */
    int ring_ms;                 /* nominal ring time */
    int talk_ms;                 /* nominal talk time */
    int detect_ms;               /* nominal callee-type decision time after the answer */
    int64_t answer_at;           /* when ringing ends (scaled) */
    int64_t decide_at;           /* when the callee type is known (scaled) */
    int64_t end_at;              /* when the call ends (scaled) */
    int64_t started_at;          /* when the call started */
    ob_detect_result_t detected; /* the detector's, when a recording played; why NULL if not */
    /* media: what the application sends and what the callee does back */
    dialer_audio_t *audio;       /* playing (a reference), NULL when nothing plays */
    int64_t play_started_at;     /* when it started (scaled clock) */
    int64_t play_end_at;         /* when it ends, loops included */
    bool barge_in;               /* a digit stops it */
    int64_t first_audio_ms;      /* nominal ms after the answer of our first audio, -1 none */
    char keys[4];                /* test number 555-02DX: the keys it presses, "" none */
    int pressed;                 /* keys pressed so far */
    int64_t press_at;            /* when the next key is pressed, 0: not planned */
    int64_t greeting_at;         /* a machine's greeting is over (scaled clock), 0: not one */
    bool greeting_told;          /* greeting_over reported */
    bool connecting;             /* a connect's second leg is up or ringing */
    int64_t connect_at;          /* when it reports its outcome */
    const char *connect_outcome; /* answered, busy, noanswer, failed */
    int connect_code;            /* its SIP-like status */
    int connect_talk_ms;         /* how long the legs were bridged (nominal) */
} sim_call_t;

/* A recording heard after an answer. */
typedef struct {
    char label[32]; /* what it is: voice, answeringmachine, fax, unknown */
    int16_t *samples;
    size_t n;
} sim_clip_t;

typedef struct {
    carrier_t base;    /* must be first */
    sim_call_t *calls; /* one slot per channel */
    int channels;      /* slots */
    int active;        /* slots in use */
    double scale;      /* time compression */
    uint64_t seed;     /* outcome seed */
    sim_clip_t *clips; /* recordings to play (carrier_sim_play), or none */
    size_t nclips;
} sim_t;

/* Media timing of the simulated callees, nominal ms. */
#define SIM_BEEP_AFTER_MS  1500   /* a machine's greeting goes on this long after its verdict */
#define SIM_BEEP_MS        500    /* its beep, the greeting's last part */
#define SIM_SILENCE_MS     800    /* a person's silence before the voice verdict */
#define SIM_PRESS_AFTER_MS 1000   /* a key is pressed this long into a prompt, or after audio */
#define SIM_KEY_GAP_MS     300    /* between keys */
#define SIM_KEYS_TALK_MS   120000 /* a key-pressing callee stays on the line this long at most */

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int between(uint64_t *rng, int lo, int hi)
{
    return lo + (int)(splitmix(rng) % (uint64_t)(hi - lo + 1));
}

/* Outcome table: result, answers, weight in the random mix. Test number
 * digit D picks row D. */
static const struct {
    ob_result_t result; /* callee type or failure */
    bool answers;       /* connected before ending */
    int weight;         /* share of random numbers, in percent */
} outcomes[] = {
    {OB_RESULT_VOICE, true, 60},            /* D = 0 */
    {OB_RESULT_ANSWERINGMACHINE, true, 15}, /* D = 1 */
    {OB_RESULT_FAX, true, 2},               /* D = 2 */
    {OB_RESULT_BUSY, false, 8},             /* D = 3 */
    {OB_RESULT_NOANSWER, false, 10},        /* D = 4 */
    {OB_RESULT_INFORMATIONTONE, false, 2},  /* D = 5 */
    {OB_RESULT_LINEFAILURE, false, 2},      /* D = 6 */
    {OB_RESULT_UNKNOWN, true, 1},           /* D = 7 */
};

void carrier_sim_outcome(const char *phone, const char *call_id, int attempt, uint64_t seed,
                         const char **result, bool *answers, int *ring_ms, int *talk_ms)
{
    uint64_t rng = fnv1a(call_id, fnv1a(phone, seed ^ 14695981039346656037ULL)) + (uint64_t)attempt;
    size_t len = strlen(phone);
    int pick = -1;

    /* Test numbers: ...55501DX, as in +1 212 555 0130 (busy). */
    if (len >= 8 && strncmp(phone + len - 7, "55501", 5) == 0 && phone[len - 2] >= '0' &&
        phone[len - 2] <= '7')
        pick = phone[len - 2] - '0';
    /* ...55502DX: a person who presses keys (sim_start). */
    if (len >= 8 && strncmp(phone + len - 7, "55502", 5) == 0)
        pick = 0;
    if (pick < 0) {
        int roll = between(&rng, 0, 99), acc = 0;
        for (size_t i = 0; i < OB_COUNTOF(outcomes) && pick < 0; i++) {
            acc += outcomes[i].weight;
            if (roll < acc)
                pick = (int)i;
        }
    }
    ob_result_t r = outcomes[pick].result;
    *result = ob_result_name(r);
    *answers = outcomes[pick].answers;
    switch (r) {
    case OB_RESULT_NOANSWER:
        *ring_ms = 30000; /* rings out to the ring timeout */
        break;
    case OB_RESULT_BUSY:
    case OB_RESULT_LINEFAILURE:
        *ring_ms = between(&rng, 300, 1500);
        break;
    case OB_RESULT_INFORMATIONTONE:
        *ring_ms = between(&rng, 2000, 4000);
        break;
    default:
        *ring_ms = between(&rng, 3000, 9000);
        break;
    }
    if (r == OB_RESULT_VOICE)
        *talk_ms = between(&rng, 10000, 45000);
    else if (r == OB_RESULT_ANSWERINGMACHINE)
        *talk_ms = between(&rng, 15000, 30000);
    else if (*answers)
        *talk_ms = between(&rng, 4000, 8000);
    else
        *talk_ms = 0;
}

static int64_t scaled(const sim_t *s, int ms)
{
    return (int64_t)((double)ms / s->scale);
}

/* Plays a recording labelled with the call's outcome (the pick-th of them)
 * to the detector: its verdict and decision time replace the drawn ones. */
static void hear(sim_t *s, sim_call_t *sc, uint64_t pick, const ob_detect_config_t *cfg)
{
    size_t matching = 0;
    for (size_t i = 0; i < s->nclips; i++)
        matching += strcmp(s->clips[i].label, sc->result) == 0;
    if (matching == 0)
        return;
    const sim_clip_t *clip = NULL;
    for (size_t i = 0, k = pick % matching; i < s->nclips && !clip; i++)
        if (strcmp(s->clips[i].label, sc->result) == 0 && k-- == 0)
            clip = &s->clips[i];
    ob_detect_t *d = ob_detect_new(cfg);
    ob_detect_answered(d);
    ob_detect_feed(d, clip->samples, clip->n);
    const ob_detect_result_t *r = ob_detect_result(d);
    if (r->verdict != OB_DETECT_PENDING) {
        sc->detected = *r;
        sc->result = ob_detect_name(r->verdict);
        sc->detect_ms = r->decision_ms;
    }
    ob_detect_free(d);
}

static bool sim_start(carrier_t *c, void *call, const carrier_dial_t *dial)
{
    const char *call_id = dial->call_id, *phone = dial->phone;
    int attempt = dial->attempt;
    sim_t *s = (sim_t *)c;
    if (s->active == s->channels)
        return false;
    for (int i = 0; i < s->channels; i++) {
        sim_call_t *sc = &s->calls[i];
        if (sc->call)
            continue;
        memset(sc, 0, sizeof(*sc));
        sc->call = call;
        carrier_sim_outcome(phone, call_id, attempt, s->seed, &sc->result, &sc->answers,
                            &sc->ring_ms, &sc->talk_ms);
        sc->started_at = ob_mono_ms();
        sc->answer_at = sc->started_at + scaled(s, sc->ring_ms);
        sc->end_at = sc->answer_at + scaled(s, sc->talk_ms);
        /* Detection takes 2-5 s after the answer, as a real one listens
         * first; the type is the outcome's, so results do not change. */
        uint64_t pick = fnv1a(call_id, s->seed + (uint64_t)attempt);
        sc->detect_ms = 2000 + (int)(pick % 3001);
        if (sc->answers)
            hear(s, sc, pick, dial->detect);
        sc->decide_at = sc->answer_at + scaled(s, sc->detect_ms);
        sc->first_audio_ms = -1;
        size_t len = strlen(phone);
        /* Test numbers ...55502DX: a person who presses D, X, then '#'. */
        if (len >= 8 && strncmp(phone + len - 7, "55502", 5) == 0) {
            snprintf(sc->keys, sizeof(sc->keys), "%c%c#", phone[len - 2], phone[len - 1]);
            /* It waits on the line for what comes next: until we hang up,
             * 2 min at most. */
            sc->talk_ms = SIM_KEYS_TALK_MS;
            sc->end_at = sc->answer_at + scaled(s, sc->talk_ms);
        }
        if (strcmp(sc->result, "answeringmachine") == 0)
            sc->greeting_at = sc->decide_at + scaled(s, SIM_BEEP_AFTER_MS);
        s->active++;
        return true;
    }
    return false;
}

/* The nominal ms after the answer of the scaled time t. */
static int after_answer(const sim_t *s, const sim_call_t *sc, int64_t t)
{
    return (int)((double)(t - sc->answer_at) * s->scale);
}

/* What plays stops, reported as played (interrupted unless it ended). */
static void stop_audio(sim_t *s, sim_call_t *sc, int64_t now, bool interrupted)
{
    if (!sc->audio)
        return;
    int64_t until = now < sc->play_end_at ? now : sc->play_end_at;
    int played = (int)((double)(until - sc->play_started_at) * s->scale);
    dialer_audio_unref(sc->audio);
    sc->audio = NULL;
    /* The callee answers its keys a second after what it heard ended. */
    if (sc->keys[0] && sc->pressed == 0)
        sc->press_at = until + scaled(s, SIM_PRESS_AFTER_MS);
    if (s->base.events->played)
        s->base.events->played(s->base.worker, sc->call, played, interrupted);
}

static void finish(sim_t *s, sim_call_t *sc, int talk_ms)
{
    void *call = sc->call;
    bool connected = sc->connected;
    const char *result = sc->result;
    int ring_ms = sc->ring_ms;
    int64_t now = ob_mono_ms();
    stop_audio(s, sc, now, true);
    if (sc->connecting && s->base.events->handed_over) {
        sc->connecting = false;
        s->base.events->handed_over(s->base.worker, call, "failed", 0, 0);
    }
    if (connected && sc->first_audio_ms >= 0 && s->base.events->first_audio) {
        /* The greeting ended when the detector's silence began (a person),
         * or at the beep (a machine). */
        int greeting_end = sc->greeting_at ? after_answer(s, sc, sc->greeting_at) - SIM_BEEP_MS
                                           : sc->detect_ms - SIM_SILENCE_MS;
        s->base.events->first_audio(s->base.worker, call, greeting_end > 0 ? greeting_end : 0,
                                    (int)sc->first_audio_ms);
    }
    sc->call = NULL;
    s->active--;
    if (connected && sc->detected.why && s->base.events->detected)
        s->base.events->detected(s->base.worker, call, &sc->detected);
    s->base.events->ended(s->base.worker, call, connected, result, ring_ms, talk_ms);
}

static void sim_hangup(carrier_t *c, void *call)
{
    sim_t *s = (sim_t *)c;
    for (int i = 0; i < s->channels; i++) {
        sim_call_t *sc = &s->calls[i];
        if (sc->call != call)
            continue;
        int64_t now = ob_mono_ms();
        int talk = sc->connected ? (int)((double)(now - sc->answer_at) * s->scale) : 0;
        if (!sc->connected)
            sc->result = ob_result_name(OB_RESULT_NOANSWER); /* hung up while ringing */
        finish(s, sc, talk);
        return;
    }
}

static void sim_extend(carrier_t *c, void *call, int talk_ms)
{
    sim_t *s = (sim_t *)c;
    for (int i = 0; i < s->channels; i++) {
        sim_call_t *sc = &s->calls[i];
        if (sc->call != call || !sc->connected)
            continue;
        sc->end_at = ob_mono_ms() + scaled(s, talk_ms);
        sc->talk_ms = (int)((double)(sc->end_at - sc->answer_at) * s->scale);
        return;
    }
}

static sim_call_t *call_of(sim_t *s, void *call)
{
    for (int i = 0; i < s->channels; i++)
        if (s->calls[i].call == call)
            return &s->calls[i];
    return NULL;
}

static void sim_play(carrier_t *c, void *call, dialer_audio_t *audio, int loop, bool barge_in)
{
    sim_t *s = (sim_t *)c;
    sim_call_t *sc = call_of(s, call);
    if (!sc || !sc->connected)
        return;
    int64_t now = ob_mono_ms();
    stop_audio(s, sc, now, true);
    sc->audio = dialer_audio_ref(audio);
    sc->play_started_at = now;
    sc->play_end_at = now + scaled(s, dialer_audio_ms(audio) * (loop > 0 ? loop : 1));
    sc->barge_in = barge_in;
    if (sc->first_audio_ms < 0)
        sc->first_audio_ms = after_answer(s, sc, now);
    /* A prompt that listens for keys is answered during it. */
    if (barge_in && sc->keys[0] && sc->pressed == 0)
        sc->press_at = now + scaled(s, SIM_PRESS_AFTER_MS);
}

static void sim_stop(carrier_t *c, void *call)
{
    sim_t *s = (sim_t *)c;
    sim_call_t *sc = call_of(s, call);
    if (sc)
        stop_audio(s, sc, ob_mono_ms(), true);
}

/* A connect's second leg: the sim outcome of its number (a sip: URI
 * answers). */
static bool sim_connect(carrier_t *c, void *call, const carrier_connect_t *to)
{
    sim_t *s = (sim_t *)c;
    sim_call_t *sc = call_of(s, call);
    if (!sc || !sc->connected || sc->connecting)
        return false;
    const char *result = "voice";
    bool answers = true;
    int ring_ms = 2000, talk_ms = 20000;
    if (strncmp(to->to, "sip", 3) != 0)
        carrier_sim_outcome(to->to, "connect", 1, s->seed, &result, &answers, &ring_ms, &talk_ms);
    if (!answers && ring_ms > to->ring_timeout_ms * s->scale)
        ring_ms = (int)(to->ring_timeout_ms * s->scale);
    sc->connecting = true;
    sc->connect_talk_ms = answers ? talk_ms : 0;
    sc->connect_at = ob_mono_ms() + scaled(s, ring_ms + sc->connect_talk_ms);
    sc->connect_outcome = answers                           ? "answered"
                          : strcmp(result, "busy") == 0     ? "busy"
                          : strcmp(result, "noanswer") == 0 ? "noanswer"
                                                            : "failed";
    sc->connect_code = answers                           ? 200
                       : strcmp(result, "busy") == 0     ? 486
                       : strcmp(result, "noanswer") == 0 ? 0
                                                         : 503;
    /* The callee stays on the line while handed over. */
    if (sc->end_at < sc->connect_at + 1)
        sc->end_at = sc->connect_at + 1;
    return true;
}

/* The media events due at now; returns the next one's time. */
static int64_t media_run(sim_t *s, sim_call_t *sc, int64_t now)
{
    int64_t next = INT64_MAX;
    if (sc->greeting_at && !sc->greeting_told && now >= sc->greeting_at) {
        sc->greeting_told = true;
        if (s->base.events->greeting_over)
            s->base.events->greeting_over(s->base.worker, sc->call, true,
                                          after_answer(s, sc, sc->greeting_at));
    }
    if (sc->audio && now >= sc->play_end_at)
        stop_audio(s, sc, now, false);
    if (sc->call && sc->press_at && now >= sc->press_at && sc->keys[sc->pressed]) {
        char key = sc->keys[sc->pressed++];
        sc->press_at = sc->keys[sc->pressed] ? now + scaled(s, SIM_KEY_GAP_MS) : 0;
        if (sc->audio && sc->barge_in)
            stop_audio(s, sc, now, true);
        if (s->base.events->digit)
            s->base.events->digit(s->base.worker, sc->call, key, false);
    }
    if (sc->call && sc->connecting && now >= sc->connect_at) {
        sc->connecting = false;
        if (s->base.events->handed_over)
            s->base.events->handed_over(s->base.worker, sc->call, sc->connect_outcome,
                                        sc->connect_code, sc->connect_talk_ms);
    }
    if (!sc->call)
        return next;
    if (sc->greeting_at && !sc->greeting_told)
        next = sc->greeting_at;
    if (sc->audio && sc->play_end_at < next)
        next = sc->play_end_at;
    if (sc->press_at && sc->press_at < next)
        next = sc->press_at;
    if (sc->connecting && sc->connect_at < next)
        next = sc->connect_at;
    return next;
}

static int64_t sim_run(carrier_t *c, int64_t now)
{
    sim_t *s = (sim_t *)c;
    int64_t next = INT64_MAX;
    for (int i = 0; i < s->channels; i++) {
        sim_call_t *sc = &s->calls[i];
        if (!sc->call)
            continue;
        if (sc->connected && sc->decided) {
            int64_t due = media_run(s, sc, now);
            next = due < next ? due : next;
            if (!sc->call)
                continue;
        }
        if (!sc->connected && now >= sc->answer_at) {
            if (!sc->answers) {
                finish(s, sc, 0);
                continue;
            }
            sc->connected = true;
            s->base.events->answered(s->base.worker, sc->call, "processing");
        }
        /* Decided before the call ends, even when it ends early. */
        if (sc->call && sc->connected && !sc->decided &&
            (now >= sc->decide_at || now >= sc->end_at)) {
            sc->decided = true;
            /* A call that ends first is decided at its end. */
            int decision_ms = sc->detect_ms < sc->talk_ms ? sc->detect_ms : sc->talk_ms;
            if (s->base.events->decided)
                s->base.events->decided(s->base.worker, sc->call, sc->result, decision_ms);
        }
        if (sc->call && sc->connected && now >= sc->end_at) {
            finish(s, sc, sc->talk_ms);
            continue;
        }
        if (sc->call) {
            int64_t due = sc->connected ? sc->end_at : sc->answer_at;
            if (sc->connected && !sc->decided && sc->decide_at < due)
                due = sc->decide_at;
            next = due < next ? due : next;
        }
    }
    return next;
}

static int sim_active(const carrier_t *c)
{
    return ((const sim_t *)c)->active;
}

static void sim_destroy(carrier_t *c)
{
    sim_t *s = (sim_t *)c;
    if (!s)
        return;
    for (size_t i = 0; i < s->nclips; i++)
        free(s->clips[i].samples);
    free(s->clips);
    free(s->calls);
    free(s);
}

static const carrier_ops_t sim_ops = {
    .name = "sim",
    .start = sim_start,
    .hangup = sim_hangup,
    .extend = sim_extend,
    .play = sim_play,
    .stop = sim_stop,
    .connect = sim_connect,
    .run = sim_run,
    .active = sim_active,
    .destroy = sim_destroy,
};

carrier_t *carrier_sim_new(int channels, double time_scale, uint64_t seed,
                           const carrier_events_t *events, void *worker)
{
    sim_t *s = ob_xcalloc(1, sizeof(*s));
    s->base.ops = &sim_ops;
    s->base.events = events;
    s->base.worker = worker;
    s->calls = ob_xcalloc((size_t)channels, sizeof(sim_call_t));
    s->channels = channels;
    s->scale = time_scale;
    s->seed = seed;
    return &s->base;
}

/* Reads dir/name.raw (8 kHz 16-bit linear) into clip. */
static bool read_clip(const char *dir, const char *name, sim_clip_t *clip)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.raw", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    rewind(f);
    clip->samples = ob_xmalloc((size_t)bytes + 2);
    clip->n = fread(clip->samples, 2, (size_t)bytes / 2, f);
    fclose(f);
    return true;
}

int carrier_sim_play(carrier_t *c, const char *dir, ob_err_t *err)
{
    sim_t *s = (sim_t *)c;
    char path[1024], line[1024];
    snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
    FILE *m = fopen(path, "r");
    if (!m) {
        ob_err_set(err, "no corpus at %s (make it with tools/detect_corpus.py)", path);
        return -1;
    }
    size_t cap = 0;
    while (fgets(line, sizeof(line), m)) {
        char name[512], label[32];
        int early = 0;
        if (sscanf(line, "%511s %31s %d", name, label, &early) != 3 || early != 0)
            continue; /* early media: heard before an answer the sim never gives it */
        if (s->nclips == cap) {
            cap = cap ? 2 * cap : 64;
            s->clips = realloc(s->clips, cap * sizeof(*s->clips));
            OB_ASSERT(s->clips != NULL);
        }
        sim_clip_t *clip = &s->clips[s->nclips];
        snprintf(clip->label, sizeof(clip->label), "%s", label);
        if (!read_clip(dir, name, clip)) {
            fclose(m);
            ob_err_set(err, "cannot read %s/%s.raw", dir, name);
            return -1;
        }
        s->nclips++;
    }
    fclose(m);
    return (int)s->nclips;
}
