/*
 * The sip carrier end to end: a dialer with OB_DIALER_CARRIER=sip places
 * its calls through SIPp on loopback, playing a trunk (tests/integration/
 * sipp/) that answers each dialed number its own way. Every outcome a
 * trunk can give must end as the documented result, with the SIP status and
 * reason and the ring and talk times SIP measured, as the API shows them;
 * and 200 calls held at once through one dialer all end right, with no RTP
 * port left held.
 */
#include "harness_client.h"
#include "ob_common.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <spandsp.h>
#include <unistd.h>

/* Ports in 31500-31999 (the loopback range set aside for SIP tests): one
 * block per test, as Criterion runs two at once. */
#define SCEN_SIPP_PORT    31500 /* trunk */
#define SCEN_DIALER_SIP   31501 /* the dialer's SIP */
#define SCEN_SIPP_MEDIA   31504 /* SIPp's RTP (its SDP) */
#define SCEN_RTP_MIN      31510 /* the dialer's RTP range */
#define SCEN_RTP_MAX      31549
#define LOAD_SIPP_PORT    31560
#define LOAD_DIALER_SIP   31561
#define LOAD_SIPP_MEDIA   31564
#define LOAD_RTP_MIN      31590 /* 205 even ports for 200 channels */
#define LOAD_RTP_MAX      31999
#define LOAD_CALLS        200
#define SUSTAINED_CALLS   1000 /* busy at once: the sustained calls/s phase */
#define DETECT_SIPP_PORT  31550
#define DETECT_DIALER_SIP 31551
#define DETECT_SIPP_MEDIA 31552
#define DETECT_RTP_MIN    31556 /* one call at a time */
#define DETECT_RTP_MAX    31558

static h_stack_t s;
static pid_t sipp_pid;

/* The application behind start_url: "app-hangup" calls are told to stay 2 s
 * and then hang up; the others get {} and last until the callee ends them. */
static h_server_t *app;

static int on_start(void *arg, const char *head, const char *body, size_t len, const char **answer)
{
    (void)arg;
    (void)head;
    (void)len;
    *answer = strstr(body, "app-hangup") ? "{\"stay_connected_s\":2}" : "{}";
    return 200;
}

static void sipp_stop(void)
{
    if (sipp_pid <= 0)
        return;
    kill(sipp_pid, SIGTERM);
    for (int i = 0; i < 50 && waitpid(sipp_pid, NULL, WNOHANG) == 0; i++)
        h_sleep_ms(100);
    if (kill(sipp_pid, 0) == 0) {
        kill(sipp_pid, SIGKILL);
        waitpid(sipp_pid, NULL, 0);
    }
    sipp_pid = 0;
}

static void teardown(void)
{
    h_stack_kill(&s);
    sipp_stop();
    h_server_stop(app);
    app = NULL;
}

/* Starts SIPp as the trunk on port with scenario (tests/integration/sipp/);
 * extra arguments end with NULL. Its output goes to build/test-logs. */
static void sipp_start(const char *scenario, int port, int media_port, const char *const *extra)
{
    char sf[256], p[16], mp[16], log[256];
    if (strchr(scenario, '/'))
        snprintf(sf, sizeof(sf), "%s", scenario);
    else
        snprintf(sf, sizeof(sf), "tests/integration/sipp/%s", scenario);
    snprintf(p, sizeof(p), "%d", port);
    snprintf(mp, sizeof(mp), "%d", media_port);
    snprintf(log, sizeof(log), "build/test-logs/%s-sipp.log", s.prefix);
    /* A 4 MB socket buffer: bursts of hundreds of requests are the test. */
    const char *argv[32] = {"sipp",       "-sf",     sf,         "-i",  "127.0.0.1",
                            "-p",         p,         "-mp",      mp,    "-nostdin",
                            "-buff_size", "4194304", "-timeout", "240", NULL};
    int n = 14;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    sipp_pid = fork();
    cr_assert(sipp_pid >= 0, "fork: %s", strerror(errno));
    if (sipp_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp("sipp", (char *const *)argv);
        _exit(127);
    }
    /* Ready once its SIP port is bound. */
    for (int i = 0; i < 50; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int taken = bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0;
        close(fd);
        if (taken)
            return;
        cr_assert(waitpid(sipp_pid, NULL, WNOHANG) == 0, "sipp exited; see %s", log);
        h_sleep_ms(100);
    }
    cr_assert_fail("sipp did not bind port %d; see %s", port, log);
}

static h_proc_t *dialer_of(h_stack_t *st)
{
    for (int i = 0; i < st->nprocs; i++)
        if (strncmp(st->procs[i].name, "dialer", 6) == 0)
            return &st->procs[i];
    cr_assert_fail("no dialer");
    return NULL;
}

static void set_start_url(const h_client_t *c, int port)
{
    char path[128], body[256];
    snprintf(path, sizeof(path), "/api/v1/applications/%s", c->tenant->application_id);
    snprintf(body, sizeof(body), "{\"start_url\":\"http://127.0.0.1:%d/start\"}", port);
    h_resp_t r = h_api(c, "PATCH", path, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
}

static char *queue(const h_client_t *c, const char *phone, const char *ref)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"%s\",\"message_reference\":\"%s\",\"max_attempts\":1}", phone,
             ref);
    return h_queue_json(c, body);
}

/* What one scenario must end as, through the API. */
typedef struct {
    const char *phone;       /* dialed; its last digits pick the trunk's behaviour */
    const char *ref;         /* message_reference */
    const char *status;      /* call status */
    const char *result;      /* attempt result */
    const char *sip_code;    /* attempt sip_code as JSON text, NULL for null */
    const char *sip_reason;  /* a part of sip_reason */
    long ring_min, ring_max; /* ring_ms bounds */
    long talk_min, talk_max; /* talk_ms bounds */
    char *call_id;           /* filled in */
} scenario_t;

Test(sip, every_trunk_outcome_ends_as_documented, .timeout = 180, .fini = teardown)
{
    char trunk[64], sip_port[32], rtp_min[40], rtp_max[40];
    snprintf(trunk, sizeof(trunk), "OB_SIP_TRUNK=127.0.0.1:%d", SCEN_SIPP_PORT);
    snprintf(sip_port, sizeof(sip_port), "OB_SIP_PORT=%d", SCEN_DIALER_SIP);
    snprintf(rtp_min, sizeof(rtp_min), "OB_SIP_RTP_PORT_MIN=%d", SCEN_RTP_MIN);
    snprintf(rtp_max, sizeof(rtp_max), "OB_SIP_RTP_PORT_MAX=%d", SCEN_RTP_MAX);
    const char *const dialer_env[] = {"OB_DIALER_CARRIER=sip",
                                      trunk,
                                      sip_port,
                                      rtp_min,
                                      rtp_max,
                                      "OB_DIALER_CHANNELS=20",
                                      "OB_SIP_RING_TIMEOUT_S=3",
                                      "OB_SIP_RESPONSE_TIMEOUT_MS=1500",
                                      "OB_DIALER_APP_TIMEOUT_MS=2000",
                                      "OB_DRAIN_TIMEOUT_MS=1000",
                                      "OB_SIP_USERNAME=outbound",
                                      "OB_SIP_PASSWORD=s3cret",
                                      NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 20);
    h_client_t c = h_client(&s, &t, pg);
    app = h_server_start(on_start, NULL);
    sipp_start("trunk.xml", SCEN_SIPP_PORT, SCEN_SIPP_MEDIA, NULL);
    cr_assert(h_stack_up(&s, 1, dialer_env));
    set_start_url(&c, h_server_port(app));
    h_proc_t *dialer = dialer_of(&s);

    /* Ring times are from the INVITE to the answer or the final response;
     * talk times from the 200 to the BYE. The bounds leave room for a busy
     * machine, not for a wrong measure. */
    scenario_t sc[] = {
        {"+12125550110;ani=+442079460000;postd=12#", "app-hangup", "completed", "unknown", "200",
         "OK", 400, 2500, 1900, 3500, NULL},
        {"+12125550111", "callee-hangup", "completed", "unknown", "200", "callee hung up", 400,
         2500, 1400, 2900, NULL},
        {"+12125550130", "busy", "failed", "busy", "486", "Busy Here", 0, 1500, 0, 0, NULL},
        {"+12125550140", "ring", "failed", "noanswer", NULL, "ring timeout", 2900, 4500, 0, 0,
         NULL},
        {"+12125550150", "not-found", "failed", "informationtone", "404", "Not Found", 0, 1500, 0,
         0, NULL},
        {"+12125550160", "unavailable", "failed", "linefailure", "503", "Service Unavailable", 0,
         1500, 0, 0, NULL},
        {"+12125550170", "silent", "failed", "linefailure", NULL, "no response", 1400, 3000, 0, 0,
         NULL},
        {"+12125550190", "digest-auth", "failed", "busy", "486", "Busy Here", 0, 1500, 0, 0, NULL},
        /* g711a.pcap is 4.7 s of speech from 1 s before the answer: 3.7 s
         * after it, shorter than the 6 s of talk that make a machine
         * (greeting_ms), and the callee hangs up while still talking:
         * nothing certain, unknown */
        {"+12125550180", "early-media", "completed", "unknown", "200", "callee hung up", 900, 3000,
         2900, 4500, NULL},
    };
    for (size_t i = 0; i < OB_COUNTOF(sc); i++)
        sc[i].call_id = queue(&c, sc[i].phone, sc[i].ref);

    for (size_t i = 0; i < OB_COUNTOF(sc); i++) {
        char *body = h_wait_completed(&c, sc[i].call_id, 60000);
        cr_assert_not_null(body, "%s did not complete", sc[i].ref);
        cr_expect_str_eq(h_json_path(body, "status"), sc[i].status, "%s: %s", sc[i].ref, body);
        cr_expect_str_eq(h_json_path(body, "attempts.0.result"), sc[i].result, "%s: %s", sc[i].ref,
                         body);
        h_expect_path(body, "attempts.0.sip_code", sc[i].sip_code);
        char *reason = h_json_path(body, "attempts.0.sip_reason");
        cr_expect(reason && strstr(reason, sc[i].sip_reason), "%s: sip_reason %s, not %s",
                  sc[i].ref, reason ? reason : "null", sc[i].sip_reason);
        free(reason);
        long ring = h_json_long(body, "attempts.0.ring_ms");
        long talk = h_json_long(body, "attempts.0.talk_ms");
        cr_expect(ring >= sc[i].ring_min && ring <= sc[i].ring_max,
                  "%s: ring_ms %ld not in %ld..%ld", sc[i].ref, ring, sc[i].ring_min,
                  sc[i].ring_max);
        cr_expect(talk >= sc[i].talk_min && talk <= sc[i].talk_max,
                  "%s: talk_ms %ld not in %ld..%ld", sc[i].ref, talk, sc[i].talk_min,
                  sc[i].talk_max);
        if (strcmp(sc[i].status, "completed") == 0)
            cr_expect_neq(h_json_path(body, "attempts.0.connected_at"), NULL, "%s", sc[i].ref);
        free(body);
    }

    /* g711a.pcap was played to us, before and after the answer; the
     * post-dial digits 1, 2, # went out as telephone events; every RTP port
     * is back in the pool; and the failures are counted. */
    cr_expect_gt(h_metric(dialer, "outbound_sip_rtp_packets_received_total"), 100);
    cr_expect_eq(h_metric(dialer, "outbound_sip_dtmf_digits_sent_total"), 3);
    cr_expect_eq(h_metric(dialer, "outbound_sip_rtp_ports_in_use"), 0);
    cr_expect_eq(h_metric(dialer, "outbound_sip_invites_total"), (long)OB_COUNTOF(sc));
    cr_expect_eq(h_metric(dialer, "outbound_sip_failures_total"), 6);

    /* Drain: a call still ringing at the drain deadline (1 s) is cancelled,
     * the dialer says so by its exit code, and the attempt is recorded. */
    char *ringing = queue(&c, "+12125550140", "drain");
    const char *p[] = {ringing};
    char *dialing = NULL;
    for (int i = 0; i < 100 && !dialing; i++) {
        h_sleep_ms(100);
        dialing =
            h_pg_value(pg, "SELECT 1 FROM attempts WHERE call_id = $1 AND state = 'dialing'", 1, p);
    }
    cr_assert_not_null(dialing, "the drain call was never dialed");
    free(dialing);
    h_sleep_ms(300); /* the INVITE is out and ringing */
    cr_expect_eq(h_stop(dialer, 30000), 3, "a call cut at the drain deadline: exit 3");
    char *body = h_wait_completed(&c, ringing, 10000);
    cr_assert_not_null(body, "the cut call was not recorded");
    h_expect_path(body, "attempts.0.reason", "dialer_shutdown");
    h_expect_path(body, "attempts.0.result", "unknown");
    h_expect_path(body, "attempts.0.sip_code", NULL);
    char *why = h_json_path(body, "attempts.0.sip_reason");
    cr_expect(why && strstr(why, "CANCEL sent"), "%s", body);
    free(why);
    free(body);
    free(ringing);

    cr_expect(h_stack_down(&s));
    for (size_t i = 0; i < OB_COUNTOF(sc); i++)
        free(sc[i].call_id);
    PQfinish(pg);
}

static int64_t now_ms(void)
{
    return ob_mono_ms();
}

/* Queues n calls to prefix + two digits (i % 100) in one batch; fills
 * ids[0..n) (caller frees) when ids is not NULL. */
static void queue_batch(const h_client_t *c, const char *prefix, int n, char **ids)
{
    size_t cap = (size_t)n * 64 + 16, o = 0;
    char *batch = malloc(cap);
    o += (size_t)snprintf(batch + o, cap - o, "[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(batch + o, cap - o,
                              "%s{\"phone_number\":\"%s%02d\",\"max_attempts\":1}", i ? "," : "",
                              prefix, i % 100);
    snprintf(batch + o, cap - o, "]");
    h_resp_t r = h_queue_batch(c, batch, n);
    free(batch);
    for (int i = 0; ids && i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "results.%d.call_id", i);
        ids[i] = h_json_path(r.body, key);
        cr_assert_not_null(ids[i], "%s", r.body);
    }
    h_resp_free(&r);
}

Test(sip, two_hundred_calls_at_once_through_one_dialer, .timeout = 240, .fini = teardown)
{
    /* OB_TEST_SIP_CPS overrides the trunk's limit, to measure (0: none). */
    const char *cps_env = getenv("OB_TEST_SIP_CPS");
    double cps_limit = cps_env ? atof(cps_env) : 100;
    char trunk[64], sip_port[32], rtp_min[40], rtp_max[40], cps[40], channels[40];
    snprintf(trunk, sizeof(trunk), "OB_SIP_TRUNK=127.0.0.1:%d", LOAD_SIPP_PORT);
    snprintf(sip_port, sizeof(sip_port), "OB_SIP_PORT=%d", LOAD_DIALER_SIP);
    snprintf(rtp_min, sizeof(rtp_min), "OB_SIP_RTP_PORT_MIN=%d", LOAD_RTP_MIN);
    snprintf(rtp_max, sizeof(rtp_max), "OB_SIP_RTP_PORT_MAX=%d", LOAD_RTP_MAX);
    snprintf(cps, sizeof(cps), "OB_SIP_CPS=%g", cps_limit);
    snprintf(channels, sizeof(channels), "OB_DIALER_CHANNELS=%d", LOAD_CALLS);
    const char *const dialer_env[] = {
        "OB_DIALER_CARRIER=sip", trunk, sip_port, rtp_min, rtp_max, channels, cps, NULL};
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, LOAD_CALLS);
    h_client_t c = h_client(&s, &t, pg);
    char m[16];
    snprintf(m, sizeof(m), "%d", LOAD_CALLS + SUSTAINED_CALLS);
    const char *const sipp_extra[] = {"-m", m, NULL}; /* SIPp ends after the last call */
    sipp_start("load.xml", LOAD_SIPP_PORT, LOAD_SIPP_MEDIA, sipp_extra);
    cr_assert(h_stack_up(&s, 1, dialer_env));
    h_proc_t *dialer = dialer_of(&s);

    /* One batch: 100 numbers twice; the last digit says how the trunk
     * answers (load.xml). */
    char *ids[LOAD_CALLS];
    queue_batch(&c, "+121255501", LOAD_CALLS, ids);

    /* Watch the dialer: calls up at once, RTP ports held, INVITEs sent. */
    long peak_calls = 0, peak_ports = 0, peak_waiting = 0;
    int64_t first_invite = 0, last_invite = 0, deadline = now_ms() + 120000;
    for (;;) {
        long calls = h_metric(dialer, "outbound_calls_in_flight");
        long ports = h_metric(dialer, "outbound_sip_rtp_ports_in_use");
        long invites = h_metric(dialer, "outbound_sip_invites_total");
        long waiting = h_metric(dialer, "outbound_sip_calls_waiting_cps");
        peak_waiting = waiting > peak_waiting ? waiting : peak_waiting;
        peak_calls = calls > peak_calls ? calls : peak_calls;
        peak_ports = ports > peak_ports ? ports : peak_ports;
        if (invites > 0 && !first_invite)
            first_invite = now_ms();
        if (invites >= LOAD_CALLS && !last_invite)
            last_invite = now_ms();
        if ((last_invite && calls == 0) || now_ms() > deadline)
            break;
        h_sleep_ms(last_invite ? 50 : 5); /* finely while INVITEs go out, to time them */
    }
    cr_assert(last_invite, "only %ld INVITEs sent", h_metric(dialer, "outbound_sip_invites_total"));
    double span_s = (double)(last_invite - first_invite) / 1000.0;
    fprintf(stderr,
            "sip load: %d calls, peak %ld concurrent (%ld RTP ports, %ld waiting for the CPS); "
            "INVITEs over %.2f s (%.0f calls/s, limit %g)\n",
            LOAD_CALLS, peak_calls, peak_ports, peak_waiting, span_s,
            (LOAD_CALLS - 1) / (span_s > 0 ? span_s : 1), cps_limit);
    cr_expect_eq(peak_calls, LOAD_CALLS, "every call was up at once");
    cr_expect_eq(peak_ports, LOAD_CALLS, "one RTP port per call");
    if (cps_limit > 0) {
        cr_expect_geq(span_s, (LOAD_CALLS - 1) / cps_limit - 0.1, "INVITEs paced to %g/s",
                      cps_limit);
    }

    /* Every call ended as its number says, with its SIP status. */
    int answered = 0, busy = 0, missing = 0;
    for (int i = 0; i < LOAD_CALLS; i++) {
        char *body = h_wait_completed(&c, ids[i], 60000);
        int digit = (i % 100) % 10;
        const char *result = digit <= 6 ? "unknown" : digit <= 8 ? "busy" : "informationtone";
        const char *code = digit <= 6 ? "200" : digit <= 8 ? "486" : "404";
        if (!body) {
            missing++;
            continue;
        }
        char *got = h_json_path(body, "attempts.0.result");
        char *got_code = h_json_path(body, "attempts.0.sip_code");
        cr_expect(got && strcmp(got, result) == 0 && got_code && strcmp(got_code, code) == 0,
                  "call %d: %s", i, body);
        if (digit <= 6)
            cr_expect_geq(h_json_long(body, "attempts.0.talk_ms"), 9500, "call %d: %s", i, body);
        answered += digit <= 6;
        busy += digit > 6 && digit <= 8;
        free(got);
        free(got_code);
        free(body);
        free(ids[i]);
    }
    cr_expect_eq(missing, 0);
    cr_expect_eq(answered, 140);
    cr_expect_eq(busy, 40);
    cr_expect_eq(h_metric(dialer, "outbound_sip_rtp_ports_in_use"), 0, "no RTP port leaked");
    cr_expect_eq(h_metric(dialer, "outbound_sip_invites_total"), LOAD_CALLS);

    /* Sustained: 1000 calls the trunk answers busy at once, through the
     * same 200 channels; calls/s from the batch's acceptance to the last
     * conclusion in Postgres (scheduler, Kafka, dialer, SIP and back). */
    int64_t started = now_ms();
    queue_batch(&c, "+121255502", SUSTAINED_CALLS, NULL);
    const char *count_sql = "SELECT count(*) FILTER (WHERE a.result = 'busy' AND a.sip_code = 486)"
                            " || ',' || count(*) FROM calls c JOIN attempts a USING (call_id)"
                            " WHERE c.phone_number LIKE '+121255502%' AND c.state = 'completed'";
    char *counts = NULL;
    long busy_done = 0, done = 0, sustained_waiting = 0;
    while (done < SUSTAINED_CALLS && now_ms() < started + 120000) {
        free(counts);
        h_sleep_ms(100);
        long waiting = h_metric(dialer, "outbound_sip_calls_waiting_cps");
        sustained_waiting = waiting > sustained_waiting ? waiting : sustained_waiting;
        counts = h_pg_value(pg, count_sql, 0, NULL);
        sscanf(counts ? counts : "0,0", "%ld,%ld", &busy_done, &done);
    }
    double took_s = (double)(now_ms() - started) / 1000.0;
    fprintf(stderr,
            "sip sustained: %ld calls concluded in %.2f s (%.0f calls/s), at most %ld waiting for "
            "the CPS\n",
            done, took_s, (double)done / took_s, sustained_waiting);
    /* The scheduler knows the limit too: it routes about a second's worth
     * at a time (not all 200 free channels), so calls wait in Postgres
     * rather than in the dialer's pacing queue. */
    if (cps_limit > 0)
        cr_expect_leq(sustained_waiting, (long)(cps_limit * 1.5), "calls held back in the dialer");
    free(counts);
    cr_expect_eq(done, SUSTAINED_CALLS);
    cr_expect_eq(busy_done, SUSTAINED_CALLS, "every one busy with 486");
    cr_expect_eq(h_metric(dialer, "outbound_sip_rtp_ports_in_use"), 0, "no RTP port leaked");
    cr_expect_eq(h_metric(dialer, "outbound_sip_invites_total"), LOAD_CALLS + SUSTAINED_CALLS);

    cr_expect(h_stack_down(&s));
    /* SIPp stops by itself after its last call (-m). */
    for (int i = 0; i < 100 && waitpid(sipp_pid, NULL, WNOHANG) == 0; i++)
        h_sleep_ms(100);
    cr_expect_eq(kill(sipp_pid, 0), -1, "SIPp did not end after %d calls",
                 LOAD_CALLS + SUSTAINED_CALLS);
    sipp_pid = 0;
    PQfinish(pg);
}

/* Writes the first max_ms of a corpus recording (tools/detect_corpus.py:
 * 8 kHz 16-bit linear) as the A-law RTP packets of a pcap SIPp can play,
 * 20 ms each; returns how many ms it holds. */
static int write_pcap(const char *raw, const char *pcap, int max_ms)
{
    FILE *in = fopen(raw, "rb"), *out = fopen(pcap, "wb");
    cr_assert(in && out, "%s or %s", raw, pcap);
    const uint32_t global[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1}; /* Ethernet */
    fwrite(global, sizeof(global), 1, out);
    int16_t pcm[160];
    int ms = 0;
    for (uint16_t seq = 0; ms < max_ms && fread(pcm, 2, 160, in) == 160; seq++, ms += 20) {
        uint8_t pkt[14 + 20 + 8 + 12 + 160] = {0};
        pkt[12] = 0x08; /* IPv4 */
        uint8_t *ip = pkt + 14, *udp = ip + 20, *rtp = udp + 8;
        ip[0] = 0x45;
        ip[2] = (20 + 8 + 12 + 160) >> 8;
        ip[3] = (20 + 8 + 12 + 160) & 0xff;
        ip[8] = 64;
        ip[9] = 17; /* UDP */
        ip[12] = ip[16] = 127;
        ip[15] = ip[19] = 1;
        udp[1] = udp[3] = 100; /* ports: SIPp rewrites them */
        udp[4] = 0;
        udp[5] = 8 + 12 + 160;
        rtp[0] = 0x80;
        rtp[1] = 8; /* PCMA */
        rtp[2] = (uint8_t)(seq >> 8);
        rtp[3] = (uint8_t)seq;
        uint32_t ts = (uint32_t)seq * 160;
        rtp[4] = (uint8_t)(ts >> 24);
        rtp[5] = (uint8_t)(ts >> 16);
        rtp[6] = (uint8_t)(ts >> 8);
        rtp[7] = (uint8_t)ts;
        rtp[11] = 1; /* SSRC */
        for (int i = 0; i < 160; i++)
            rtp[12 + i] = linear_to_alaw(pcm[i]);
        const uint32_t rec[4] = {(uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000, sizeof(pkt),
                                 sizeof(pkt)};
        fwrite(rec, sizeof(rec), 1, out);
        fwrite(pkt, sizeof(pkt), 1, out);
    }
    fclose(in);
    fclose(out);
    return ms;
}

/* The detect.xml trunk playing corpus recording name (the first max_ms of
 * it), after the answer or as early media. */
static void detect_trunk(const char *name, bool early, int max_ms)
{
    char raw[256], pcap[256], xml[256], abs_pcap[512], play[16], cwd[256];
    snprintf(raw, sizeof(raw), "build/detect/small/%s.raw", name);
    snprintf(pcap, sizeof(pcap), "build/test-logs/%s-%s.pcap", s.prefix, name);
    snprintf(xml, sizeof(xml), "build/test-logs/%s-%s.xml", s.prefix, name);
    int ms = write_pcap(raw, pcap, max_ms);
    snprintf(abs_pcap, sizeof(abs_pcap), "%s/%s", getcwd(cwd, sizeof(cwd)), pcap);
    snprintf(play, sizeof(play), "%d", ms + 200);
    FILE *t = fopen("tests/integration/sipp/detect.xml", "r"), *o = fopen(xml, "w");
    cr_assert(t && o);
    char line[1024];
    while (fgets(line, sizeof(line), t)) {
        char *at;
        if (strstr(line, "<!--@EARLY@-->")) {
            fputs(early ? "  <nop next=\"early\"/>\n" : "", o);
            continue;
        }
        if ((at = strstr(line, "@PCAP@"))) {
            fprintf(o, "%.*s%s%s", (int)(at - line), line, abs_pcap, at + 6);
            continue;
        }
        if ((at = strstr(line, "@PLAY_MS@"))) {
            fprintf(o, "%.*s%s%s", (int)(at - line), line, play, at + 9);
            continue;
        }
        fputs(line, o);
    }
    fclose(t);
    fclose(o);
    const char *const once[] = {"-m", "1", NULL};
    sipp_start(xml, DETECT_SIPP_PORT, DETECT_SIPP_MEDIA, once);
}

/* What a recording must be detected as, through the API. */
typedef struct {
    const char *recording; /* in build/detect/small */
    bool early;            /* played as early media (never answered) */
    bool strict;           /* the deployment with the strict thresholds */
    const char *result;    /* attempt result */
    const char *decided_by;
    bool beep;
} detect_case_t;

Test(sip, the_detector_hears_what_answered, .timeout = 240, .fini = teardown)
{
    if (access("build/detect/small/manifest.tsv", R_OK) != 0)
        cr_assert_eq(system("/usr/bin/python3 tools/detect_corpus.py build/detect/small --small"),
                     0);
    char trunk[64], sip_port[32], rtp_min[40], rtp_max[40];
    snprintf(trunk, sizeof(trunk), "OB_SIP_TRUNK=127.0.0.1:%d", DETECT_SIPP_PORT);
    snprintf(sip_port, sizeof(sip_port), "OB_SIP_PORT=%d", DETECT_DIALER_SIP);
    snprintf(rtp_min, sizeof(rtp_min), "OB_SIP_RTP_PORT_MIN=%d", DETECT_RTP_MIN);
    snprintf(rtp_max, sizeof(rtp_max), "OB_SIP_RTP_PORT_MAX=%d", DETECT_RTP_MAX);
    const char *const dialer_env[] = {
        "OB_DIALER_CARRIER=sip",   trunk, sip_port, rtp_min, rtp_max, "OB_DIALER_CHANNELS=1",
        "OB_SIP_RING_TIMEOUT_S=8", NULL};
    h_tenant_t t, strict;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 1);
    h_tenant(pg, &strict, 1);
    h_client_t plain = h_client(&s, &t, pg), picky = h_client(&s, &strict, pg);
    /* No greeting is too long and words are not counted: a machine is
     * known by its beep only. */
    cr_assert(h_stack_up(&s, 1, dialer_env));
    h_resp_t r = h_deployment_api(&picky, "PATCH", "",
                                  "{\"detection\": {\"greeting_ms\": 10000, \"max_words\": 0,"
                                  " \"total_analysis_ms\": 15000}}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "detection.greeting_ms", "10000");
    h_resp_free(&r);
    r = h_deployment_api(&picky, "PATCH", "", "{\"detection\": {\"greeting_ms\": 1}}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "detection.greeting_ms must be an integer from 500 to 10000"), "%s",
              r.body);
    h_resp_free(&r);

    const detect_case_t cases[] = {
        {"voice4-en-us-175-clean", false, false, "voice", "short_greeting", false},
        {"machine1-en-us-175-n40", false, false, "answeringmachine", "long_greeting", true},
        {"fax-cng10-clean", false, false, "fax", NULL, false},
        {"sit0-early-clean", true, false, "informationtone", "special_information_tone", false},
        {"machine1-en-us-175-clean", false, true, "answeringmachine", "beep", true},
    };
    for (size_t i = 0; i < OB_COUNTOF(cases); i++) {
        const detect_case_t *c = &cases[i];
        detect_trunk(c->recording, c->early, 12000);
        const h_client_t *who = c->strict ? &picky : &plain;
        char *id = queue(who, "+12125550100", c->recording);
        char *body = h_wait_completed(who, id, 60000);
        cr_assert_not_null(body, "%s did not complete", c->recording);
        h_expect_path(body, "attempts.0.result", c->result);
        char *by = h_json_path(body, "attempts.0.decided_by");
        if (c->decided_by)
            cr_expect(by && strcmp(by, c->decided_by) == 0, "%s: decided by %s: %s", c->recording,
                      by, body);
        else
            cr_expect_not_null(by, "%s: %s", c->recording, body);
        char *conf = h_json_path(body, "attempts.0.confidence");
        cr_expect(conf && atof(conf) > 0.5 && atof(conf) <= 1, "%s: confidence %s", c->recording,
                  conf);
        h_expect_path(body, "attempts.0.beep", c->beep ? "true" : "false");
        if (c->early) {
            h_expect_path(body, "attempts.0.connected_at", NULL);
            cr_expect(strstr(body, "special information tone in early media"), "%s", body);
        } else {
            long decided = h_json_long(body, "attempts.0.decision_ms");
            cr_expect(decided > 0 && decided < 12000, "%s: decision_ms %ld", c->recording, decided);
            long beep = h_json_long(body, "attempts.0.beep_ms");
            /* A machine is known before its beep, unless by the beep itself. */
            if (c->beep && strcmp(c->decided_by, "beep") == 0)
                cr_expect(beep > 0 && beep < decided, "%s: beep %ld, decided %ld", c->recording,
                          beep, decided);
            else if (c->beep)
                cr_expect_gt(beep, decided, "%s: the beep came after the verdict", c->recording);
        }
        free(by);
        free(conf);
        free(body);
        free(id);
        /* SIPp ends after its one call. */
        for (int k = 0; k < 50 && waitpid(sipp_pid, NULL, WNOHANG) == 0; k++)
            h_sleep_ms(100);
        sipp_stop();
    }
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}
