/*
 * The sip carrier's media (services/dialer/dialer_sip_media.c,
 * dialer_sip_connect.c) against a callee on loopback
 * (tests/integration/media_callee.py) that echoes our audio, presses keys
 * both ways, plays a machine's greeting and beep, hangs up or is busy, and
 * reports what it heard: the carrier is driven as the worker drives it, and
 * the events it reports are checked with what the callee got.
 */
#include "dialer_carrier.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64

/* One callback the carrier fired, in order. */
typedef struct {
    char kind;     /* a answered, d decided, p played, k digit, g greeting_over,
                      f first_audio, h handed_over, e ended */
    int a, b;      /* p: played_ms; k: -; g: at_ms; f: greeting end, first audio;
                      h: code, talk_ms; e: ring_ms, talk_ms */
    bool flag;     /* p: interrupted; k: inband; g: beep */
    char text[32]; /* d: callee type; h: outcome; k: the key; e: result */
    int64_t at;    /* when it fired, ms on the test's clock */
} rec_t;

typedef struct {
    rec_t ev[MAX_EVENTS]; /* what fired */
    int n;                /* how many */
    int64_t answered_at;  /* when answered fired, 0 before */
} worker_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rec_t *add(void *w, char kind)
{
    worker_t *wk = w;
    cr_assert_lt(wk->n, MAX_EVENTS);
    rec_t *r = &wk->ev[wk->n++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->at = now_ms();
    return r;
}

static void on_answered(void *w, void *call, const char *type)
{
    (void)call;
    snprintf(add(w, 'a')->text, sizeof(((rec_t *)0)->text), "%s", type);
    ((worker_t *)w)->answered_at = now_ms();
}

static void on_ended(void *w, void *call, bool answered, const char *result, int ring_ms,
                     int talk_ms)
{
    (void)call;
    (void)answered;
    rec_t *r = add(w, 'e');
    r->a = ring_ms;
    r->b = talk_ms;
    snprintf(r->text, sizeof(r->text), "%s", result);
}

static void on_decided(void *w, void *call, const char *type, int ms)
{
    (void)call;
    rec_t *r = add(w, 'd');
    r->a = ms;
    snprintf(r->text, sizeof(r->text), "%s", type);
}

static void on_played(void *w, void *call, int played_ms, bool interrupted)
{
    (void)call;
    rec_t *r = add(w, 'p');
    r->a = played_ms;
    r->flag = interrupted;
}

static void on_digit(void *w, void *call, char digit, bool inband)
{
    (void)call;
    rec_t *r = add(w, 'k');
    r->text[0] = digit;
    r->flag = inband;
}

static void on_greeting_over(void *w, void *call, bool beep, int at_ms)
{
    (void)call;
    rec_t *r = add(w, 'g');
    r->flag = beep;
    r->a = at_ms;
}

static void on_first_audio(void *w, void *call, int greeting_end_ms, int first_audio_ms)
{
    (void)call;
    rec_t *r = add(w, 'f');
    r->a = greeting_end_ms;
    r->b = first_audio_ms;
}

static void on_handed_over(void *w, void *call, const char *outcome, int code, int talk_ms)
{
    (void)call;
    rec_t *r = add(w, 'h');
    r->a = code;
    r->b = talk_ms;
    snprintf(r->text, sizeof(r->text), "%s", outcome);
}

static const carrier_events_t events = {
    .answered = on_answered,
    .ended = on_ended,
    .decided = on_decided,
    .played = on_played,
    .digit = on_digit,
    .greeting_over = on_greeting_over,
    .first_audio = on_first_audio,
    .handed_over = on_handed_over,
};

/* The callee, its report file, the carrier and the worker of one test. */
static pid_t callee_pid;
static char report[128];
static ob_metric_t metrics[SIP_M_COUNT];
static carrier_t *carrier;
static worker_t worker;
static int call_handle; /* the worker's handle of the call: its address */

/* A UDP port nobody holds now, even when even is set (with the next free
 * too: an RTP range). */
static int free_port(bool even)
{
    for (int tries = 0; tries < 50; tries++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        getsockname(fd, (struct sockaddr *)&a, &len);
        close(fd);
        int port = ntohs(a.sin_port);
        if (!even || (port % 2 == 0 && port < 65000))
            return port;
    }
    cr_assert_fail("no free port");
    return 0;
}

static void setup(void)
{
    snprintf(report, sizeof(report), "/tmp/media_callee_%d.jsonl", (int)getpid());
    unlink(report);
    int out[2];
    cr_assert_eq(pipe(out), 0);
    callee_pid = fork();
    cr_assert(callee_pid >= 0);
    if (callee_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        close(out[0]);
        execlp("python3", "python3", "tests/integration/media_callee.py", report, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[32] = "";
    size_t got = 0;
    while (got < sizeof(line) - 1 && !strchr(line, '\n') && read(out[0], line + got, 1) == 1)
        got++;
    close(out[0]);
    cr_assert(strchr(line, '\n'), "the callee did not start: %s", strerror(errno));
    char trunk[64];
    snprintf(trunk, sizeof(trunk), "127.0.0.1:%d", atoi(line));
    int rtp = free_port(true);
    memset(metrics, 0, sizeof(metrics));
    memset(&worker, 0, sizeof(worker));
    carrier_sip_opts_t o = {
        .channels = 4,
        .trunk = trunk,
        .local_addr = "127.0.0.1",
        .local_port = free_port(false),
        .rtp_port_min = rtp,
        .rtp_port_max = rtp + 8,
        .username = "",
        .password = "",
        .from_domain = "",
        .anonymous_id = "anonymous",
        .ring_timeout_ms = 3000,
        .response_timeout_ms = 2000,
        .talk_limit_ms = 20000,
        .metrics = metrics,
    };
    ob_err_t err = {{0}};
    cr_assert_eq(carrier_sip_new(&o, &events, &worker, &carrier, &err), OB_OK, "%s", err.msg);
}

static void teardown(void)
{
    if (carrier)
        carrier->ops->destroy(carrier);
    carrier = NULL;
    if (callee_pid > 0) {
        kill(callee_pid, SIGTERM);
        waitpid(callee_pid, NULL, 0);
    }
    callee_pid = 0;
    unlink(report);
}

/* Runs the carrier for ms, or until an event of kind (0: none) fired. */
static rec_t *run_until(char kind, int ms)
{
    int64_t end = now_ms() + ms;
    int seen = worker.n;
    while (now_ms() < end) {
        carrier->ops->run(carrier, now_ms());
        for (int i = seen; i < worker.n; i++)
            if (kind && worker.ev[i].kind == kind)
                return &worker.ev[i];
        seen = worker.n;
        usleep(2000);
    }
    return NULL;
}

static void dial(const char *number)
{
    ob_detect_config_t det;
    ob_detect_defaults(&det);
    carrier_dial_t d = {.call_id = "c1", .attempt = 1, .phone = number, .detect = &det};
    cr_assert(carrier->ops->start(carrier, &call_handle, &d));
    cr_assert_not_null(run_until('a', 3000), "%s was not answered", number);
}

static void hang_up(void)
{
    carrier->ops->hangup(carrier, &call_handle);
    cr_assert_not_null(run_until('e', 3000), "the call did not end");
    run_until(0, 300); /* the callee writes its report on our BYE */
}

/* n ms of a 1000 Hz tone at about -10 dBFS. */
static dialer_audio_t *tone(int ms)
{
    size_t n = (size_t)ms * 8;
    int16_t *s = ob_xmalloc(n * sizeof(*s));
    for (size_t i = 0; i < n; i++)
        s[i] = (int16_t)(10000 * sin(2 * M_PI * 1000 * (double)i / 8000));
    return dialer_audio_new(s, n);
}

static void play(dialer_audio_t *a, int loop, bool barge_in)
{
    carrier->ops->play(carrier, &call_handle, a, loop, barge_in);
    dialer_audio_unref(a); /* the carrier took its own */
}

/* The callee's report of the call to number. */
static bool callee_report(const char *number, char *out, size_t cap)
{
    FILE *f = fopen(report, "r");
    bool found = false;
    while (f && !found && fgets(out, (int)cap, f))
        found = strstr(out, number) != NULL;
    if (f)
        fclose(f);
    return found;
}

static double field(const char *json, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\": ", name);
    const char *p = strstr(json, key);
    cr_assert_not_null(p, "%s not in %s", name, json);
    return atof(p + strlen(key));
}

/* The kinds of the events fired, in order ("apfe"). */
static const char *kinds(void)
{
    static char k[MAX_EVENTS + 1];
    for (int i = 0; i < worker.n; i++)
        k[i] = worker.ev[i].kind;
    k[worker.n] = '\0';
    return k;
}

typedef struct {
    const char *number; /* the callee: 201 answers PCMU, 202 PCMA */
    const char *pts;    /* what the callee must have got */
} codec_case_t;

static codec_case_t codecs[] = {
    {"+15550000201", "\"pts\": [0]"},
    {"+15550000202", "\"pts\": [8]"},
};

ParameterizedTestParameters(sip_media, a_tone_goes_out_paced_in_the_answers_codec)
{
    return cr_make_param_array(codec_case_t, codecs, sizeof(codecs) / sizeof(codecs[0]));
}

ParameterizedTest(codec_case_t *c, sip_media, a_tone_goes_out_paced_in_the_answers_codec,
                  .init = setup, .fini = teardown, .timeout = 30)
{
    dial(c->number);
    int64_t asked = now_ms();
    play(tone(1000), 1, false);
    rec_t *p = run_until('p', 3000);
    cr_assert_not_null(p, "played never fired");
    cr_expect(!p->flag, "interrupted");
    cr_expect(p->a >= 990 && p->a <= 1010, "played %d ms", p->a);
    cr_expect(p->at - asked >= 950 && p->at - asked <= 1150, "played after %lld ms",
              (long long)(p->at - asked));
    run_until(0, 200);
    /* The callee sent our audio back: the carrier heard it. */
    cr_expect_geq(ob_metric_get(&metrics[SIP_M_RTP_PACKETS]), 45);
    hang_up();
    cr_expect_str_eq(kinds(), "apfe", "events: %s", kinds());
    rec_t *f = &worker.ev[2];
    cr_expect(f->b >= 0 && f->b < 200, "first audio %d ms after the answer", f->b);
    char json[512];
    cr_assert(callee_report(c->number + 1, json, sizeof(json)), "no report");
    cr_log_info("the callee heard: %s", json);
    cr_expect(strstr(json, c->pts) != NULL, "%s", json);
    cr_expect(fabs(field(json, "packets") - 50) <= 1, "%s", json);
    cr_expect_eq(field(json, "markers"), 1, "%s", json);
    cr_expect(strstr(json, "\"ts_steps\": [160]") != NULL, "%s", json);
    /* Paced, not in bursts (the p99 under load is make bench's: here the
     * callee's own clock is a Python loop on a shared machine, where one
     * scheduling hiccup of either side reached 68 ms in make test; a stall
     * of the media clock would be seconds). */
    cr_expect(field(json, "gap_p50") >= 18 && field(json, "gap_p50") <= 22, "%s", json);
    cr_expect_lt(field(json, "gap_max"), 150, "%s", json);
    cr_expect_gt(field(json, "share_1000"), 0.9, "%s", json);
}

Test(sip_media, loops_and_stop_and_the_calls_end_interrupt_a_play, .init = setup, .fini = teardown,
     .timeout = 30)
{
    dial("+15550000201");
    play(tone(200), 3, false);
    rec_t *p = run_until('p', 3000);
    cr_assert_not_null(p);
    cr_expect(!p->flag && p->a == 600, "played %d ms (interrupted %d)", p->a, p->flag);

    int64_t asked = now_ms();
    play(tone(5000), 1, false);
    run_until(0, 300);
    carrier->ops->stop(carrier, &call_handle);
    p = run_until('p', 1000);
    cr_assert_not_null(p);
    cr_expect(p->flag, "not interrupted");
    cr_expect(labs((long)(p->a - (p->at - asked))) <= 60, "played %d ms in %lld", p->a,
              (long long)(p->at - asked));

    /* A play cut by the next one, and one cut by the call's end. */
    play(tone(5000), 1, false);
    run_until(0, 100);
    play(tone(5000), 1, false);
    run_until(0, 200);
    hang_up();
    cr_expect_str_eq(kinds(), "appppfe", "events: %s", kinds());
    cr_expect(worker.ev[2].flag && worker.ev[3].flag && worker.ev[4].flag);
}

typedef struct {
    const char *number; /* the callee */
    const char *keys;   /* the keys it presses */
    bool inband;        /* heard in band */
} digits_case_t;

static digits_case_t digit_cases[] = {
    {"+15550000203", "12#", false},
    {"+15550000204", "47", true},
    {"+15550000205", "5", false}, /* both ways at once: one key */
};

ParameterizedTestParameters(sip_media, keys_are_heard_once_each_way)
{
    return cr_make_param_array(digits_case_t, digit_cases,
                               sizeof(digit_cases) / sizeof(digit_cases[0]));
}

ParameterizedTest(digits_case_t *c, sip_media, keys_are_heard_once_each_way, .init = setup,
                  .fini = teardown, .timeout = 30)
{
    dial(c->number);
    /* A long play with barge-in: the first key stops it. */
    play(tone(10000), 1, true);
    run_until(0, 2500);
    char keys[16] = "";
    int played = -1, first_key = -1;
    for (int i = 0; i < worker.n; i++) {
        rec_t *r = &worker.ev[i];
        if (r->kind == 'k') {
            cr_expect_eq(r->flag, c->inband, "key %c inband %d", r->text[0], r->flag);
            keys[strlen(keys)] = r->text[0];
            first_key = first_key < 0 ? i : first_key;
        } else if (r->kind == 'p') {
            played = i;
            cr_expect(r->flag, "the play was not interrupted");
            cr_expect(r->a >= 400 && r->a <= 900, "played %d ms", r->a);
        }
    }
    cr_expect_str_eq(keys, c->keys);
    cr_expect(played >= 0 && played < first_key, "the play's end before the key: %s", kinds());
    cr_expect_eq(ob_metric_get(&metrics[SIP_M_DIGITS_IN]), (int64_t)strlen(c->keys));
    hang_up();
}

Test(sip_media, a_machines_greeting_is_over_at_its_beeps_end, .init = setup, .fini = teardown,
     .timeout = 30)
{
    dial("+15550000208");
    rec_t *g = run_until('g', 9000);
    cr_assert_not_null(g, "greeting_over never fired: %s", kinds());
    cr_expect(g->flag, "no beep");
    /* The beep ends 6100 ms into the callee's audio. */
    cr_expect(g->a >= 6060 && g->a <= 6160, "over at %d ms", g->a);
    int64_t late = (g->at - worker.answered_at) - g->a;
    cr_expect_lt(late, 300, "told %lld ms after the beep's end", (long long)late);
    rec_t *d = NULL;
    for (int i = 0; i < worker.n; i++)
        d = worker.ev[i].kind == 'd' ? &worker.ev[i] : d;
    cr_assert_not_null(d);
    cr_expect_str_eq(d->text, "answeringmachine");
    /* Our message right after: its first audio is measured. */
    play(tone(200), 1, false);
    run_until('p', 1000);
    hang_up();
    rec_t *f = &worker.ev[worker.n - 2];
    cr_assert_eq(f->kind, 'f', "events: %s", kinds());
    cr_expect(f->a > 300 && f->a <= 5320, "greeting end %d ms", f->a);
    cr_expect(f->b >= g->a, "first audio at %d ms", f->b);
}
Test(sip_media, connect_bridges_a_second_leg_until_it_hangs_up, .init = setup, .fini = teardown,
     .timeout = 30)
{
    dial("+15550000201");
    const char *headers[] = {"X-Outbound-Call-Id: c1", "X-Outbound-Name: Ann"};
    carrier_connect_t to = {
        .to = "+15550000207", .ring_timeout_ms = 3000, .headers = headers, .nheaders = 2};
    cr_assert(carrier->ops->connect(carrier, &call_handle, &to));
    rec_t *h = run_until('h', 4000);
    cr_assert_not_null(h, "handed_over never fired: %s", kinds());
    cr_expect_str_eq(h->text, "answered");
    cr_expect_eq(h->a, 200);
    cr_expect(h->b >= 900 && h->b <= 1300, "bridged %d ms", h->b);
    if (!strchr(kinds(), 'e'))
        run_until('e', 2000);
    cr_expect_str_eq(kinds(), "ahe", "the first leg did not end after it: %s", kinds());
    run_until(0, 300);
    /* The party got the headers; its tone reached the callee through us. */
    char json[768];
    cr_assert(callee_report("15550000207", json, sizeof(json)), "no report of the party");
    cr_expect(strstr(json, "\"x_headers\": [\"x-outbound-call-id\", \"x-outbound-name\"]"), "%s",
              json);
    cr_assert(callee_report("15550000201", json, sizeof(json)), "no report of the callee");
    cr_expect(field(json, "packets") >= 40, "%s", json);
    cr_expect_gt(field(json, "share_1000"), 0.9, "%s", json);
}

typedef struct {
    const char *number;  /* the callee: 209 takes a REFER, 201 refuses it */
    const char *outcome; /* then */
    int code;            /* the handed_over's code */
} refer_case_t;

static refer_case_t refers[] = {
    {"+15550000209", "referred", 202},
    {"+15550000201", "answered", 200}, /* refused: bridged instead */
};

ParameterizedTestParameters(sip_media, refer_hands_over_or_falls_back_to_bridging)
{
    return cr_make_param_array(refer_case_t, refers, sizeof(refers) / sizeof(refers[0]));
}

ParameterizedTest(refer_case_t *c, sip_media, refer_hands_over_or_falls_back_to_bridging,
                  .init = setup, .fini = teardown, .timeout = 30)
{
    dial(c->number);
    carrier_connect_t to = {.to = "+15550000207", .ring_timeout_ms = 3000, .refer = true};
    cr_assert(carrier->ops->connect(carrier, &call_handle, &to));
    rec_t *h = run_until('h', 4000);
    cr_assert_not_null(h, "handed_over never fired: %s", kinds());
    cr_expect_str_eq(h->text, c->outcome);
    cr_expect_eq(h->a, c->code);
    if (!strchr(kinds(), 'e'))
        run_until('e', 3000);
    cr_expect_str_eq(kinds(), "ahe", "events: %s", kinds());
    run_until(0, 300);
    char json[768];
    cr_assert(callee_report(c->number + 1, json, sizeof(json)), "no report");
    if (c->code == 202)
        cr_expect(strstr(json, "\"referred_to\": \"<sip:+15550000207@127.0.0.1:"), "%s", json);
}

Test(sip_media, a_busy_second_leg_leaves_the_first_up, .init = setup, .fini = teardown,
     .timeout = 30)
{
    dial("+15550000201");
    carrier_connect_t to = {.to = "sip:+15550000206@127.0.0.1:1", .ring_timeout_ms = 3000};
    /* A sip: URI is dialed as given: this one nobody answers. */
    cr_assert(carrier->ops->connect(carrier, &call_handle, &to));
    rec_t *h = run_until('h', 6000);
    cr_assert_not_null(h, "handed_over never fired: %s", kinds());
    cr_expect(strcmp(h->text, "noanswer") == 0 || strcmp(h->text, "failed") == 0, "%s", h->text);
    cr_expect_eq(h->b, 0);

    to.to = "+15550000206";
    cr_assert(carrier->ops->connect(carrier, &call_handle, &to));
    h = run_until('h', 4000);
    cr_assert_not_null(h, "handed_over never fired: %s", kinds());
    cr_expect_str_eq(h->text, "busy");
    cr_expect_eq(h->a, 486);
    run_until(0, 300);
    cr_expect_null(strchr(kinds(), 'e'), "the first leg ended: %s", kinds());
    hang_up();
}
