/*
 * ob-test-callee: the far end of the tests' SIP calls (docs/testing-callee.md).
 * It answers INVITEs on one UDP address as its rules say for the dialed
 * number (ring, reject, codec, greeting, keys, hang-up, REFER), records what
 * it hears and writes one JSON line per call. One process, one libre loop,
 * one timer that paces every call's RTP: libre keeps its timers in a list
 * sorted on insertion, which a timer per call and per packet would make
 * quadratic at a thousand calls.
 */
#include "callee_media.h"
#include "callee_rules.h"

#include <re.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_TICK_MS   50     /* how often the loop looks at the stop flag with no RTP due */
#define STOP_WAIT_MS   2000   /* bound on the BYEs' wait at exit */
#define DEFAULT_CAP_MS 120000 /* an answered call's longest life */
#define X_PREFIX       "X-Outbound-"

/* The only global: set by SIGTERM and SIGINT, read by the tick. */
static volatile sig_atomic_t stop_signals;

typedef struct {
    const char *listen;   /* ADDR:PORT of SIP over UDP */
    int rtp_min, rtp_max; /* RTP port range; 0: any free port */
    const char *rules;    /* rules file, or NULL */
    const char *record;   /* folder of recordings, or NULL */
    const char *report;   /* report file (a line per call as it ends), or NULL: stdout at exit */
    int max_calls;        /* calls at once; more get 503 */
    int cap_ms;           /* an answered call's longest life */
} opts_t;

typedef struct callee callee_t;

typedef struct {
    struct le le;              /* in callee_t.calls */
    callee_t *app;             /* the process */
    const callee_rule_t *rule; /* what to do; borrowed from the rules */
    char number[64];           /* the Request-URI's user part */
    char *call_id;             /* the INVITE's Call-ID */
    cJSON *xhdrs;              /* X-Outbound-* headers of the INVITE: name -> value */
    struct sipsess *sess;      /* the dialog; NULL once let go */
    struct mbuf *desc;         /* our SDP, kept for a 200 sent after ringing */
    callee_media_t media;      /* RTP */
    int code;                  /* final response sent to the INVITE */
    int64_t invite_us;         /* when the INVITE came */
    int64_t ring_due_us;       /* when to send the 200; 0 once sent */
    int64_t answer_us;         /* when the 200 went, 0 if never */
    int64_t end_us;            /* when it ended */
    bool refer;                /* a REFER came */
    char *refer_to;            /* its Refer-To, or NULL */
    const char *hangup;        /* who ended it (static) */
    bool ended;                /* reported; waiting to be freed by the tick */
} call_t;

/* Calls made to one number, for the recordings' names. */
typedef struct {
    char *number; /* dialed number */
    int n;        /* calls so far */
} number_count_t;

struct callee {
    const opts_t *o;          /* options */
    callee_rules_t rules;     /* what each number does */
    struct sip *sip;          /* the stack */
    struct sipsess_sock *ss;  /* INVITE sessions */
    struct sip_lsnr *lsnr;    /* OPTIONS */
    char ip[64];              /* the address we listen on, for SDP */
    struct list calls;        /* call_t, live and ended */
    int active;               /* calls not ended */
    struct tmr tick;          /* paces RTP and the calls' deadlines */
    unsigned char *port_used; /* per even port of the RTP range */
    int nports;               /* even ports in the range */
    int port_next;            /* where the search for a free one starts */
    number_count_t *counts;   /* calls per number */
    size_t ncounts;           /* entries in counts */
    FILE *report;             /* --report, or NULL */
    char **lines;             /* report lines kept for exit when no --report */
    size_t nlines, caplines;  /* their count and room */
    int64_t reported;         /* calls reported */
    bool stopping;            /* a signal came: no new calls */
    struct tmr stop_tmr;      /* bounds the wait for BYEs */
    bool sip_closing;         /* sip_close(false) was called */
    bool sip_exited;          /* sip_close's exit handler ran */
};

static void on_signal(int sig)
{
    (void)sig;
    if (stop_signals++ > 0)
        _exit(3); /* a second signal: now */
}

/* ---- the report ----------------------------------------------------------- */

static int next_index(callee_t *app, const char *number)
{
    for (size_t i = 0; i < app->ncounts; i++)
        if (!strcmp(app->counts[i].number, number))
            return ++app->counts[i].n;
    app->counts = ob_xrealloc(app->counts, (app->ncounts + 1) * sizeof(*app->counts));
    app->counts[app->ncounts++] = (number_count_t){ob_xstrdup(number), 1};
    return 1;
}

static double ms(int64_t us)
{
    return (double)us / 1000.0;
}

/* Writes the recording (answered calls, with --record-dir) and the call's
 * report line. */
static void report(call_t *c, const callee_media_stats_t *st)
{
    callee_t *app = c->app;
    char *path = NULL;
    if (app->o->record && c->answer_us) {
        size_t n = 0;
        const int16_t *rec = callee_media_recording(&c->media, &n);
        path = ob_xasprintf("%s/%s-%d.wav", app->o->record, c->number, next_index(app, c->number));
        ob_err_t err;
        if (callee_wav_write(path, rec, n, &err) != OB_OK) {
            fprintf(stderr, "ob-test-callee: recording not written: %s\n", err.msg);
            free(path);
            path = NULL;
        }
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "number", c->number);
    cJSON_AddStringToObject(j, "call_id", c->call_id ? c->call_id : "");
    cJSON_AddBoolToObject(j, "answered", c->answer_us != 0);
    cJSON_AddNumberToObject(j, "code", c->code);
    if (c->answer_us)
        cJSON_AddStringToObject(j, "codec", c->media.pt == 8 ? "PCMA" : "PCMU");
    else
        cJSON_AddNullToObject(j, "codec");
    cJSON_AddNumberToObject(j, "ring_ms",
                            ms((c->answer_us ? c->answer_us : c->end_us) - c->invite_us));
    cJSON_AddNumberToObject(j, "packets", (double)st->packets);
    cJSON_AddNumberToObject(j, "bytes", (double)st->bytes);
    if (st->first_ms >= 0)
        cJSON_AddNumberToObject(j, "first_packet_ms", st->first_ms);
    else
        cJSON_AddNullToObject(j, "first_packet_ms");
    cJSON_AddNumberToObject(j, "gap_p50_ms", st->gap_p50_ms);
    cJSON_AddNumberToObject(j, "gap_p99_ms", st->gap_p99_ms);
    cJSON_AddNumberToObject(j, "gap_max_ms", st->gap_max_ms);
    cJSON_AddNumberToObject(j, "gaps_over_40ms", (double)st->gaps_over_40ms);
    cJSON_AddNumberToObject(j, "packets_sent", (double)st->sent);
    cJSON_AddStringToObject(j, "digits_sent", c->media.digits_sent);
    cJSON_AddStringToObject(j, "digits_received", c->media.digits_heard);
    cJSON_AddBoolToObject(j, "refer", c->refer);
    if (c->refer_to)
        cJSON_AddStringToObject(j, "refer_to", c->refer_to);
    else
        cJSON_AddNullToObject(j, "refer_to");
    cJSON_AddItemToObject(j, "headers", c->xhdrs);
    c->xhdrs = NULL;
    if (path)
        cJSON_AddStringToObject(j, "record", path);
    else
        cJSON_AddNullToObject(j, "record");
    cJSON_AddStringToObject(j, "hangup", c->hangup);
    cJSON_AddNumberToObject(j, "duration_ms", c->answer_us ? ms(c->end_us - c->answer_us) : 0);
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(path);
    app->reported++;
    if (app->report) {
        fprintf(app->report, "%s\n", line);
        fflush(app->report);
        cJSON_free(line);
        return;
    }
    if (app->nlines == app->caplines) {
        app->caplines = app->caplines ? app->caplines * 2 : 256;
        app->lines = ob_xrealloc(app->lines, app->caplines * sizeof(*app->lines));
    }
    app->lines[app->nlines++] = ob_xstrdup(line);
    cJSON_free(line);
}

/* ---- calls ------------------------------------------------------------------ */

static int port_take(callee_t *app)
{
    for (int k = 0; k < app->nports; k++) {
        int i = (app->port_next + k) % app->nports;
        if (!app->port_used[i]) {
            app->port_used[i] = 1;
            app->port_next = (i + 1) % app->nports;
            return app->o->rtp_min + 2 * i;
        }
    }
    return -1;
}

static void port_give(callee_t *app, int port)
{
    if (app->nports == 0 || port < app->o->rtp_min)
        return;
    int i = (port - app->o->rtp_min) / 2;
    if (i < app->nports)
        app->port_used[i] = 0;
}

/* Ends the call: stops its media, reports it and lets its dialog go (libre
 * sends the BYE, or a 486 to an INVITE still ringing, and keeps what it
 * needs for that). Freed by the next tick: this may run in a handler of
 * the session. */
static void end_call(call_t *c, const char *who)
{
    callee_media_stats_t st;
    if (c->ended)
        return;
    c->ended = true;
    c->hangup = who;
    c->end_us = callee_now_us();
    callee_media_close(&c->media, &st);
    port_give(c->app, c->media.port);
    if (c->sess && !c->answer_us && c->code < 200) {
        c->code = 480;
        (void)sipsess_reject(c->sess, 480, "Temporarily Unavailable", NULL);
    }
    report(c, &st);
    c->sess = mem_deref(c->sess);
    c->desc = mem_deref(c->desc);
    c->app->active--;
}

static void call_free(call_t *c)
{
    list_unlink(&c->le);
    callee_media_free(&c->media);
    mem_deref(c->sess);
    mem_deref(c->desc);
    cJSON_Delete(c->xhdrs);
    free(c->call_id);
    free(c->refer_to);
    free(c);
}

static void answer(call_t *c, int64_t now)
{
    c->ring_due_us = 0;
    c->answer_us = now;
    c->code = 200;
    callee_media_answered(&c->media, now);
}

static int on_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    call_t *c = arg;
    if (!callee_media_sdp(&c->media, (const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb)))
        return EPROTO; /* libre answers 488 */
    *descp = callee_media_sdp_out(&c->media, c->app->ip, false);
    return 0;
}

static int on_answer(const struct sip_msg *msg, void *arg)
{
    call_t *c = arg;
    if (!callee_media_sdp(&c->media, (const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb)))
        return EPROTO;
    return 0;
}

static void on_established(const struct sip_msg *msg, void *arg)
{
    (void)msg;
    (void)arg;
}

static void on_refer(struct sip *sip, const struct sip_msg *msg, void *arg)
{
    call_t *c = arg;
    const struct sip_hdr *to = sip_msg_hdr(msg, SIP_HDR_REFER_TO);
    c->refer = true;
    free(c->refer_to);
    c->refer_to = to ? ob_xstrndup(to->val.p, to->val.l) : NULL;
    if (!c->rule->accept_refer) {
        if (c->rule->refer_reject == 405)
            (void)sip_treplyf(NULL, NULL, sip, msg, false, 405, "Method Not Allowed",
                              "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
                              "Content-Length: 0\r\n\r\n");
        else
            (void)sip_treply(NULL, sip, msg, 603, "Declined");
        return;
    }
    (void)sip_treply(NULL, sip, msg, 202, "Accepted");
    if (!c->rule->refer_notify || !c->sess)
        return;
    static const char frag[] = "SIP/2.0 200 OK\r\n";
    int err =
        sip_drequestf(NULL, sip, true, "NOTIFY", sipsess_dialog(c->sess), 0, NULL, NULL, NULL, NULL,
                      "Event: refer\r\n"
                      "Subscription-State: terminated;reason=noresource\r\n"
                      "Content-Type: message/sipfrag;version=2.0\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      sizeof(frag) - 1, frag);
    if (err)
        fprintf(stderr, "ob-test-callee: NOTIFY not sent: %s\n", strerror(err));
}

static void on_close(int err, const struct sip_msg *msg, void *arg)
{
    call_t *c = arg;
    (void)msg;
    if (err == ECONNRESET && !c->answer_us)
        c->code = 487; /* libre answered the INVITE so, and the CANCEL 200 */
    if (err == ECONNRESET)
        end_call(c, c->answer_us ? "caller" : "cancel");
    else
        end_call(c, err == ETIMEDOUT ? "timeout" : "error");
}

static cJSON *x_headers(const struct sip_msg *msg)
{
    cJSON *h = cJSON_CreateObject();
    for (const struct le *le = msg->hdrl.head; le; le = le->next) {
        const struct sip_hdr *hdr = le->data;
        if (hdr->name.l <= strlen(X_PREFIX) ||
            strncasecmp(hdr->name.p, X_PREFIX, strlen(X_PREFIX)) != 0)
            continue;
        char *name = ob_xstrndup(hdr->name.p, hdr->name.l);
        char *val = ob_xstrndup(hdr->val.p, hdr->val.l);
        cJSON_DeleteItemFromObjectCaseSensitive(h, name);
        cJSON_AddStringToObject(h, name, val);
        free(name);
        free(val);
    }
    return h;
}

static const char *reason_of(int code)
{
    switch (code) {
    case 404:
        return "Not Found";
    case 480:
        return "Temporarily Unavailable";
    case 486:
        return "Busy Here";
    case 488:
        return "Not Acceptable Here";
    case 503:
        return "Service Unavailable";
    case 603:
        return "Decline";
    default:
        return code < 400 ? "Redirect" : code < 500 ? "Client Error" : "Server Error";
    }
}

/* Answers the INVITE's transaction with a final code, without a session,
 * and reports the call. */
static void refuse(call_t *c, const struct sip_msg *msg, int code, const char *who)
{
    c->code = code;
    (void)sip_treply(NULL, c->app->sip, msg, (uint16_t)code, reason_of(code));
    end_call(c, who);
}

static void on_invite(const struct sip_msg *msg, void *arg)
{
    callee_t *app = arg;
    int64_t now = callee_now_us();
    call_t *c = ob_xcalloc(1, sizeof(*c));
    c->app = app;
    c->invite_us = now;
    c->hangup = "";
    c->media.st.first_ms = -1; /* a call refused before its media opened */
    pl_strcpy(&msg->uri.user, c->number, sizeof(c->number));
    c->call_id = ob_xstrndup(msg->callid.p, msg->callid.l);
    c->xhdrs = x_headers(msg);
    c->rule = callee_rules_find(&app->rules, c->number);
    list_append(&app->calls, &c->le, c);
    app->active++;

    if (app->stopping) {
        refuse(c, msg, 503, "shutdown");
        return;
    }
    if (app->active > app->o->max_calls) {
        refuse(c, msg, 503, "max_calls");
        return;
    }
    if (c->rule->reject) {
        refuse(c, msg, c->rule->reject, "rejected");
        return;
    }
    int port = app->nports ? port_take(app) : 0;
    int err = port < 0 ? EADDRINUSE : EINVAL;
    /* A port of the range another process holds: the next one. */
    for (int tries = 0; port >= 0 && tries < 64; tries++) {
        err = callee_media_open(&c->media, app->ip, port, c->rule, app->o->record != NULL,
                                app->o->cap_ms + 1000);
        if (err != EADDRINUSE || !app->nports)
            break;
        port_give(app, port); /* taken elsewhere: tried again when it comes round */
        port = port_take(app);
    }
    if (err) {
        port_give(app, port);
        fprintf(stderr, "ob-test-callee: no RTP port: %s\n", strerror(err));
        refuse(c, msg, 503, "no_rtp_port");
        return;
    }
    bool offered = mbuf_get_left(msg->mb) > 0;
    if (offered &&
        !callee_media_sdp(&c->media, (const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb))) {
        refuse(c, msg, 488, "no_common_codec");
        return;
    }
    c->desc = callee_media_sdp_out(&c->media, app->ip, !offered);
    bool ring = c->rule->ring_ms > 0;
    err = sipsess_accept(&c->sess, app->ss, msg, ring ? 180 : 200, ring ? "Ringing" : "OK",
                         "ob-test-callee", "application/sdp", ring ? NULL : c->desc, NULL, NULL,
                         false, on_offer, on_answer, on_established, NULL, on_refer, on_close, c,
                         NULL);
    if (err) {
        fprintf(stderr, "ob-test-callee: INVITE not accepted: %s\n", strerror(err));
        refuse(c, msg, 500, "error");
        return;
    }
    c->code = ring ? 180 : 200;
    if (ring)
        c->ring_due_us = now + (int64_t)c->rule->ring_ms * 1000;
    else
        answer(c, now);
}

/* Out-of-dialog requests other than INVITE: OPTIONS is answered. */
static bool on_request(const struct sip_msg *msg, void *arg)
{
    callee_t *app = arg;
    if (pl_strcmp(&msg->met, "OPTIONS"))
        return false;
    (void)sip_treplyf(NULL, NULL, app->sip, msg, false, 200, "OK",
                      "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REFER\r\n"
                      "Accept: application/sdp\r\n"
                      "Content-Length: 0\r\n\r\n");
    return true;
}

/* ---- the loop ------------------------------------------------------------- */

static void stop_now(void *arg)
{
    (void)arg;
    re_cancel();
}

static void sip_exited(void *arg)
{
    callee_t *app = arg;
    app->sip_exited = true;
    re_cancel();
}

static void begin_stop(callee_t *app)
{
    app->stopping = true;
    for (struct le *le = app->calls.head; le; le = le->next)
        end_call(le->data, "shutdown");
    app->ss = mem_deref(app->ss);
    app->lsnr = mem_deref(app->lsnr);
    /* The exit handler runs once the last transaction (our BYEs) is done. */
    sip_close(app->sip, false);
    app->sip_closing = true;
    tmr_start(&app->stop_tmr, STOP_WAIT_MS, stop_now, app);
}

static void tick(void *arg)
{
    callee_t *app = arg;
    int64_t now = callee_now_us(), next = now + IDLE_TICK_MS * 1000;
    if (stop_signals && !app->stopping)
        begin_stop(app);
    struct le *le = app->calls.head;
    while (le) {
        call_t *c = le->data;
        le = le->next;
        if (c->ended) {
            call_free(c);
            continue;
        }
        if (c->ring_due_us && now >= c->ring_due_us) {
            if (sipsess_answer(c->sess, 200, "OK", c->desc, NULL) != 0) {
                end_call(c, "error");
                continue;
            }
            answer(c, now);
        }
        if (c->answer_us) {
            int64_t up = now - c->answer_us;
            if (c->rule->hangup_after_ms >= 0 && up >= (int64_t)c->rule->hangup_after_ms * 1000) {
                end_call(c, "callee");
                continue;
            }
            if (up >= (int64_t)c->app->o->cap_ms * 1000) {
                end_call(c, "cap");
                continue;
            }
        }
        int64_t due = callee_media_tick(&c->media, now);
        if (due < next)
            next = due;
        if (c->ring_due_us && c->ring_due_us < next)
            next = c->ring_due_us;
        if (c->answer_us && c->rule->hangup_after_ms >= 0) {
            int64_t at = c->answer_us + (int64_t)c->rule->hangup_after_ms * 1000;
            if (at < next)
                next = at;
        }
    }
    if (app->stopping && !app->calls.head)
        return; /* nothing left to pace; the exit handler or stop_tmr ends the loop */
    int64_t wait_ms = (next - callee_now_us() + 999) / 1000;
    tmr_start(&app->tick, (uint64_t)(wait_ms < 1 ? 1 : wait_ms), tick, app);
}

/* ---- start-up --------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ob-test-callee --listen ADDR:PORT [--rules FILE] [--record-dir DIR]\n"
               "         [--report FILE] [--rtp-min PORT --rtp-max PORT] [--max-calls N]\n"
               "         [--cap-ms MS]\n"
               "A SIP callee for tests (docs/testing-callee.md). Prints \"ready ADDR:PORT\"\n"
               "once listening; SIGTERM or SIGINT ends every call and exits.\n");
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* Fills o from argv; false with the problem on stderr. */
static bool parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"rules", required_argument, NULL, 'r'},
        {"record-dir", required_argument, NULL, 'd'},
        {"report", required_argument, NULL, 'o'},
        {"rtp-min", required_argument, NULL, 'a'},
        {"rtp-max", required_argument, NULL, 'b'},
        {"max-calls", required_argument, NULL, 'm'},
        {"cap-ms", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts_t){.max_calls = 2000, .cap_ms = DEFAULT_CAP_MS};
    int ch;
    bool ok = true;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *name = NULL;
        switch (ch) {
        case 'l':
            o->listen = optarg;
            break;
        case 'r':
            o->rules = optarg;
            break;
        case 'd':
            o->record = optarg;
            break;
        case 'o':
            o->report = optarg;
            break;
        case 'a':
            ok = parse_int(optarg, 1024, 65534, &o->rtp_min) || !(name = "--rtp-min");
            break;
        case 'b':
            ok = parse_int(optarg, 1024, 65535, &o->rtp_max) || !(name = "--rtp-max");
            break;
        case 'm':
            ok = parse_int(optarg, 1, 100000, &o->max_calls) || !(name = "--max-calls");
            break;
        case 'c':
            ok = parse_int(optarg, 1000, 3600000, &o->cap_ms) || !(name = "--cap-ms");
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return false;
        }
        if (!ok) {
            fprintf(stderr, "ob-test-callee: %s: \"%s\" is out of range\n", name, optarg);
            return false;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ob-test-callee: unexpected argument \"%s\"\n", argv[optind]);
        return false;
    }
    if (!o->listen) {
        fprintf(stderr, "ob-test-callee: --listen ADDR:PORT is required\n");
        return false;
    }
    if ((o->rtp_min || o->rtp_max) && (!o->rtp_min || !o->rtp_max || o->rtp_min > o->rtp_max)) {
        fprintf(stderr, "ob-test-callee: --rtp-min and --rtp-max go together, min <= max\n");
        return false;
    }
    return true;
}

/* Opens SIP on the --listen address; 0 or an errno, with why on stderr. */
static int listen_sip(callee_t *app)
{
    struct sa laddr;
    char host[64];
    int port = 0;
    const char *colon = strrchr(app->o->listen, ':');
    if (!colon || (size_t)(colon - app->o->listen) >= sizeof(host) ||
        !parse_int(colon + 1, 0, 65535, &port)) {
        fprintf(stderr, "ob-test-callee: --listen \"%s\" is not ADDR:PORT\n", app->o->listen);
        return EINVAL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - app->o->listen), app->o->listen);
    int err = sa_set_str(&laddr, host, (uint16_t)port);
    if (err) {
        fprintf(stderr, "ob-test-callee: --listen \"%s\": %s is no IP address\n", app->o->listen,
                host);
        return err;
    }
    snprintf(app->ip, sizeof(app->ip), "%s", host);
    if ((err = sip_alloc(&app->sip, NULL, 4096, 4096, 4096, "ob-test-callee", sip_exited, app)) ||
        (err = sip_transp_add(app->sip, SIP_TRANSP_UDP, &laddr))) {
        fprintf(stderr, "ob-test-callee: SIP on %s: %s\n", app->o->listen, strerror(err));
        return err;
    }
    struct sa bound;
    if ((err = sip_transp_laddr(app->sip, &bound, SIP_TRANSP_UDP, NULL)) == 0)
        port = sa_port(&bound);
    ob_udp_buffers(port, 4 << 20);
    if ((err = sipsess_listen(&app->ss, app->sip, 4096, on_invite, app)) ||
        (err = sip_listen(&app->lsnr, app->sip, true, on_request, app))) {
        fprintf(stderr, "ob-test-callee: SIP sessions: %s\n", strerror(err));
        return err;
    }
    printf("ready %s:%d\n", host, port);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    callee_t app = {.o = &o};
    ob_err_t err;
    int rc = OB_EXIT_OK;
    bool libre_up = false;

    if (!parse_opts(argc, argv, &o)) {
        usage(stderr);
        return OB_EXIT_USAGE;
    }
    if (callee_rules_load(o.rules, &app.rules, &err) != OB_OK) {
        fprintf(stderr, "ob-test-callee: %s\n", err.msg);
        return OB_EXIT_CONFIG;
    }
    if (o.report && !(app.report = fopen(o.report, "a"))) {
        fprintf(stderr, "ob-test-callee: --report %s: %s\n", o.report, strerror(errno));
        rc = OB_EXIT_CONFIG;
        goto out;
    }
    if (o.rtp_min) {
        app.nports = (o.rtp_max - o.rtp_min) / 2 + 1;
        app.port_used = ob_xcalloc((size_t)app.nports, 1);
    }
    /* Two sockets a call at most (RTP, and SIP's share). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    int maxfds =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int e = libre_init();
    if (e) {
        fprintf(stderr, "ob-test-callee: libre: %s\n", strerror(e));
        rc = OB_EXIT_DEPENDENCY;
        goto out;
    }
    libre_up = true;
    (void)fd_setsize(maxfds);
    list_init(&app.calls);
    tmr_init(&app.tick);
    tmr_init(&app.stop_tmr);
    if (listen_sip(&app) != 0) {
        rc = OB_EXIT_DEPENDENCY;
        goto out;
    }
    tmr_start(&app.tick, 1, tick, &app);
    (void)re_main(NULL);
    fprintf(stderr, "ob-test-callee: stopped, %lld call(s) reported\n", (long long)app.reported);

out:
    while (app.calls.head)
        call_free(app.calls.head->data);
    tmr_cancel(&app.tick);
    tmr_cancel(&app.stop_tmr);
    app.ss = mem_deref(app.ss);
    app.lsnr = mem_deref(app.lsnr);
    /* sip_close(false) let go of our reference; once its transactions end
     * the exit handler runs and the stack is ours to free. BYEs still
     * unanswered at the deadline: their transactions are cut, which ends them. */
    if (app.sip_closing && !app.sip_exited)
        sip_close(app.sip, true);
    if (!app.sip_closing || app.sip_exited)
        app.sip = mem_deref(app.sip);
    for (size_t i = 0; i < app.nlines; i++) {
        printf("%s\n", app.lines[i]);
        free(app.lines[i]);
    }
    fflush(stdout);
    free(app.lines);
    for (size_t i = 0; i < app.ncounts; i++)
        free(app.counts[i].number);
    free(app.counts);
    free(app.port_used);
    if (app.report)
        fclose(app.report);
    callee_rules_free(&app.rules);
    if (libre_up)
        libre_close();
    return rc;
}
