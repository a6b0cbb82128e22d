/*
 * result_url webhooks end to end: a receiver started by the test checks
 * every signature with the deployment's secret, fails the first tries to
 * force retries and counts duplicates; each final result (completed, failed,
 * uncalled by cancellation) must arrive once with the call's details, and
 * the delivery log must show every try. A receiver that is down while its
 * dialer restarts still gets every result once it comes back. Every
 * result type of the sim's test numbers is followed from the status API
 * through the events topic to its webhook.
 */
#include "harness_client.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

#define MAX_EVENTS 32

/* What the receiver saw of one event id. */
typedef struct {
    char event_id[64]; /* X-Outbound-Event-Id */
    char path[64];     /* request path of the last try */
    int requests;      /* tries received */
    int accepted;      /* tries answered 200 (more than 1: a duplicate) */
    int bad;           /* tries with a missing or wrong signature or timestamp */
    char *body;        /* body of the accepted try (malloc'd) */
} rx_event_t;

/* The test's webhook receiver: one thread per connection (keep-alive). */
typedef struct {
    int port;                      /* where it listens */
    h_server_t *srv;               /* serves it; NULL while down */
    char secret[256];              /* the deployment's webhook secret */
    int fail_first;                /* tries of each event answered 500 first */
    pthread_mutex_t mu;            /* guards what follows */
    rx_event_t events[MAX_EVENTS]; /* by event id */
    int nevents;                   /* entries in events */
} receiver_t;

static receiver_t rx;

/* Checks "v1=" + hex HMAC-SHA256(secret, timestamp "." body). */
static bool signature_ok(const char *secret, const char *ts, const char *body, size_t len,
                         const char *sig)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char want[80] = "v1=";
    size_t tlen = strlen(ts);
    unsigned char *msg = malloc(tlen + 1 + len);
    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tlen + 1 + len, md, &mdlen);
    free(msg);
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(want + 3 + 2 * i, 3, "%02x", md[i]);
    return strcmp(want, sig) == 0;
}

/* Accounts for one request and returns the status to answer. */
static int on_request(void *arg, const char *head, const char *body, size_t len,
                      const char **answer)
{
    receiver_t *r = arg;
    *answer = "";
    char id[64] = "", ts[32] = "", sig[128] = "", path[64] = "";
    h_header(head, "X-Outbound-Event-Id", id, sizeof(id));
    h_header(head, "X-Outbound-Timestamp", ts, sizeof(ts));
    h_header(head, "X-Outbound-Signature", sig, sizeof(sig));
    sscanf(head, "POST %63s", path);
    long skew = labs((long)time(NULL) - atol(ts));
    bool good = id[0] && ts[0] && skew < 60 && signature_ok(r->secret, ts, body, len, sig);

    pthread_mutex_lock(&r->mu);
    rx_event_t *e = NULL;
    for (int i = 0; i < r->nevents && !e; i++)
        if (strcmp(r->events[i].event_id, id) == 0)
            e = &r->events[i];
    if (!e && r->nevents < MAX_EVENTS) {
        e = &r->events[r->nevents++];
        snprintf(e->event_id, sizeof(e->event_id), "%s", id);
    }
    int status = 500;
    if (e) {
        e->requests++;
        snprintf(e->path, sizeof(e->path), "%s", path);
        if (!good)
            e->bad++;
        else if (e->requests > r->fail_first) {
            status = 200;
            if (e->accepted++ == 0)
                e->body = strndup(body, len);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return good ? status : 401;
}

/* Starts listening on r->port. */
static void receiver_up(receiver_t *r)
{
    r->srv = h_server_start_on(r->port, on_request, r);
}

/* Prepares the receiver with the deployment's secret (not listening yet). */
static void receiver_init(receiver_t *r, PGconn *pg, const h_tenant_t *t, int fail_first)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->port = h_free_port();
    r->fail_first = fail_first;
    const char *p[] = {t->deployment_id};
    char *secret =
        h_pg_value(pg, "SELECT webhook_secret FROM deployments WHERE deployment_id = $1", 1, p);
    cr_assert(secret && strlen(secret) >= 32, "deployment secret: %s", secret);
    snprintf(r->secret, sizeof(r->secret), "%s", secret);
    free(secret);
}

/* Events answered 200 at least once. */
static int receiver_accepted(receiver_t *r)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nevents; i++)
        n += r->events[i].accepted > 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void wait_accepted(receiver_t *r, int want, int timeout_ms)
{
    for (int waited = 0; receiver_accepted(r) < want && waited < timeout_ms; waited += 100)
        h_sleep_ms(100);
    cr_assert_eq(receiver_accepted(r), want, "%d of %d results delivered in %d ms",
                 receiver_accepted(r), want, timeout_ms);
}

/* The receiver's record of the event whose accepted body names call_id. */
static rx_event_t *event_of(receiver_t *r, const char *call_id)
{
    for (int i = 0; i < r->nevents; i++) {
        char *id = r->events[i].body ? h_json_str(r->events[i].body, "call_id") : NULL;
        bool match = id && strcmp(id, call_id) == 0;
        free(id);
        if (match)
            return &r->events[i];
    }
    return NULL;
}

static void receiver_down(receiver_t *r)
{
    h_server_stop(r->srv);
    r->srv = NULL;
    for (int i = 0; i < r->nevents; i++)
        free(r->events[i].body);
}

/* Cancels a call not yet dialed, once the scheduler has recorded it. */
static void cancel(const h_client_t *c, const char *call_id)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/calls/%s:cancel", call_id);
    long status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        h_resp_t r = h_request(c, "POST", path, NULL, NULL, NULL);
        status = r.status;
        h_resp_free(&r);
        if (status != 200)
            h_sleep_ms(100);
    }
    cr_assert_eq(status, 200, "cancel %s", call_id);
}

static void set_result_url(PGconn *pg, const h_tenant_t *t, const char *url)
{
    const char *p[] = {t->deployment_id, url};
    free(h_pg_value(pg, "UPDATE deployments SET result_url = $2 WHERE deployment_id = $1", 2, p));
}

/* Short retries: 200 ms doubling up to 1 s; calls 100 times faster. */
static const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=100", "OB_WEBHOOK_RETRY_BASE_MS=200",
                                         "OB_WEBHOOK_RETRY_MAX_MS=1000", NULL};

/* A fresh stack's tenant (capacity 10) and the receiver, set up (not yet
 * listening) with its secret; it answers the first fail_first tries of each
 * event 500. */
static PGconn *tenant_with_receiver(h_tenant_t *t, int fail_first)
{
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, t, 10);
    receiver_init(&rx, pg, t, fail_first);
    return pg;
}

Test(webhooks, each_final_result_is_delivered_signed_once_after_retries, .timeout = 120,
     .fini = teardown)
{
    h_tenant_t t, other;
    char url[128], own[128];
    PGconn *pg = tenant_with_receiver(&t, 2);
    h_client_t c = h_client(&s, &t, pg);
    h_tenant(pg, &other, 1);
    h_client_t o = h_client(&s, &other, pg);
    receiver_up(&rx);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/deployment-hook", rx.port);
    snprintf(own, sizeof(own), "http://127.0.0.1:%d/own-hook", rx.port);
    set_result_url(pg, &t, url);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    /* voice, busy, noanswer and line failure end completed or failed; one
     * voice call has its own result_url; one is cancelled (uncalled). The
     * other tenant's call has no result_url anywhere: no webhook. */
    static const char *const numbers[] = {"+12125550100", "+12125550130", "+12125550140",
                                          "+12125550160"};
    char *calls[6], body[256];
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof(body), "{\"phone_number\":\"%s\",\"max_attempts\":1}", numbers[i]);
        calls[i] = h_queue_json(&c, body);
    }
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"+12125550101\",\"max_attempts\":1,\"result_url\":\"%s\"}", own);
    calls[4] = h_queue_json(&c, body);
    calls[5] = h_queue_json(&c, "{\"phone_number\":\"+12125550102\",\"not_before\":\"+1 hour\"}");
    cancel(&c, calls[5]);
    char *silent = h_queue_json(&o, "{\"phone_number\":\"+12125550100\",\"max_attempts\":1}");

    wait_accepted(&rx, 6, 40000);
    h_sleep_ms(1500); /* time for any duplicate to show up */

    static const char *const statuses[] = {"completed", "failed",    "failed",
                                           "failed",    "completed", "uncalled"};
    pthread_mutex_lock(&rx.mu);
    cr_expect_eq(rx.nevents, 6, "one event id per final result");
    for (int i = 0; i < 6; i++) {
        rx_event_t *e = event_of(&rx, calls[i]);
        cr_assert_not_null(e, "no webhook for call %s", calls[i]);
        cr_expect_eq(e->bad, 0, "%s: %d tries with a bad signature", calls[i], e->bad);
        cr_expect_eq(e->accepted, 1, "%s: delivered %d times", calls[i], e->accepted);
        cr_expect_eq(e->requests, 3, "%s: 2 failures then the success, got %d", calls[i],
                     e->requests);
        cr_expect_str_eq(e->path, i == 4 ? "/own-hook" : "/deployment-hook", "%s", calls[i]);
        char *status = h_json_str(e->body, "status");
        char *event_id = h_json_str(e->body, "event_id");
        cr_expect_str_eq(status, statuses[i], "%s", e->body);
        cr_expect_str_eq(event_id, e->event_id, "the body names the event");
        free(status);
        free(event_id);

        /* The same call details as GET /api/v1/calls/{id}, after the event id. */
        char path[128];
        snprintf(path, sizeof(path), "/api/v1/calls/%s", calls[i]);
        h_resp_t r = h_get(&c, path);
        cr_assert_eq(r.status, 200);
        const char *details = strchr(e->body, ',') + 1;
        cr_expect_str_eq(details, r.body + 1, "webhook body differs from the status API");
        h_resp_free(&r);
    }
    pthread_mutex_unlock(&rx.mu);

    /* The delivery log: two failed tries, then the success. */
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", calls[1]);
    h_resp_t r = h_get(&c, path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.state"), "delivered", "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.attempts_made"), "3");
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.url"), url);
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.attempts.0.http_status"), "500");
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.attempts.0.error"), "HTTP 500");
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.attempts.1.http_status"), "500");
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.attempts.2.http_status"), "200");
    cr_expect_null(h_json_path(r.body, "deliveries.0.attempts.2.error"));
    h_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/deployments/%s/deliveries?limit=4", t.deployment_id);
    r = h_get(&c, path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_not_null(h_json_path(r.body, "deliveries.3.delivery_id"));
    char *cursor = h_json_str(r.body, "next_cursor");
    cr_assert_not_null(cursor, "a full page has a next one: %s", r.body);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/deliveries?limit=4&cursor=%s",
             t.deployment_id, cursor);
    r = h_get(&c, path);
    cr_expect_not_null(h_json_path(r.body, "deliveries.1.delivery_id"), "%s", r.body);
    cr_expect_null(h_json_path(r.body, "deliveries.2"), "6 deliveries in all: %s", r.body);
    h_resp_free(&r);
    free(cursor);

    /* The secret is shown to its own account, which may verify with it. */
    snprintf(path, sizeof(path), "/api/v1/deployments/%s", t.deployment_id);
    r = h_get(&c, path);
    cr_expect_str_eq(h_json_path(r.body, "webhook_secret"), rx.secret);
    h_resp_free(&r);

    /* Another account sees neither the call's nor the deployment's log. */
    snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", calls[0]);
    r = h_get(&o, path);
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/deployments/%s/deliveries", t.deployment_id);
    r = h_get(&o, path);
    cr_expect_eq(r.status, 404, "%s", r.body);
    h_resp_free(&r);

    /* No result_url anywhere: the call completes without a delivery. */
    char *done = h_wait_completed(&o, silent, 30000);
    cr_expect_not_null(done);
    free(done);
    snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", silent);
    r = h_get(&o, path);
    cr_expect_eq(r.status, 200);
    cr_expect_null(h_json_path(r.body, "deliveries.0"), "%s", r.body);
    h_resp_free(&r);

    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0) {
            cr_expect_eq(
                h_metric(&s.procs[i], "outbound_webhook_deliveries_total{outcome=\"delivered\"}"),
                6);
            cr_expect_eq(h_metric(&s.procs[i], "outbound_webhook_tries_total{outcome=\"failed\"}"),
                         12);
        }

    cr_expect(h_stack_down(&s));
    /* The secret signs; it is never written to a log. */
    for (int i = 0; i < s.nprocs; i++)
        cr_expect(!h_log_has(&s.procs[i], rx.secret), "%s logged the webhook secret",
                  s.procs[i].name);
    receiver_down(&rx);
    for (int i = 0; i < 6; i++)
        free(calls[i]);
    free(silent);
    PQfinish(pg);
}

Test(webhooks, a_receiver_down_for_a_while_gets_every_result_once_back, .timeout = 120,
     .fini = teardown)
{
    h_tenant_t t;
    char url[128];
    PGconn *pg = tenant_with_receiver(&t, 0);
    h_client_t c = h_client(&s, &t, pg);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rx.port);
    set_result_url(pg, &t, url);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    static const char *const numbers[] = {"+12125550100", "+12125550130", "+12125550160",
                                          "+12125550110"};
    char *calls[4], body[128];
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof(body), "{\"phone_number\":\"%s\",\"max_attempts\":1}", numbers[i]);
        calls[i] = h_queue_json(&c, body);
    }
    for (int i = 0; i < 4; i++)
        free(h_wait_completed(&c, calls[i], 30000));

    /* Nobody listens: every delivery fails its first tries and waits. */
    const char *p[] = {t.deployment_id};
    char *tried = NULL;
    for (int waited = 0; waited < 15000; waited += 200) {
        free(tried);
        tried = h_pg_value(pg,
                           "SELECT count(*) FILTER (WHERE attempts >= 2 AND state = 'pending')"
                           " FROM webhook_deliveries WHERE deployment_id = $1",
                           1, p);
        if (tried && strcmp(tried, "4") == 0)
            break;
        h_sleep_ms(200);
    }
    cr_assert_str_eq(tried, "4", "every delivery was tried and is still pending");
    free(tried);
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", calls[0]);
    h_resp_t r = h_get(&c, path);
    cr_expect_str_eq(h_json_path(r.body, "deliveries.0.state"), "pending", "%s", r.body);
    cr_expect_null(h_json_path(r.body, "deliveries.0.attempts.0.http_status"), "no answer");
    cr_expect_not_null(h_json_path(r.body, "deliveries.0.attempts.0.error"), "%s", r.body);
    h_resp_free(&r);

    /* The dialer restarts meanwhile: a clean drain leaves them pending, and
     * the next dialer takes them over. */
    h_proc_t *dialer = NULL;
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0)
            dialer = &s.procs[i];
    cr_assert_not_null(dialer);
    cr_expect_eq(h_stop(dialer, 30000), 0, "the dialer drains with webhooks pending");
    dialer->pid = 0;
    receiver_up(&rx);
    h_proc_t *again = h_start(&s, "dialer", "dialer-2", dialer_env);
    cr_assert(h_wait_ready(again, 60000));

    wait_accepted(&rx, 4, 20000);
    h_sleep_ms(1500);
    pthread_mutex_lock(&rx.mu);
    cr_expect_eq(rx.nevents, 4);
    for (int i = 0; i < 4; i++) {
        rx_event_t *e = event_of(&rx, calls[i]);
        cr_assert_not_null(e, "no webhook for call %s", calls[i]);
        cr_expect_eq(e->accepted, 1, "%s: delivered %d times", calls[i], e->accepted);
        cr_expect_eq(e->bad, 0);
    }
    pthread_mutex_unlock(&rx.mu);
    char *delivered = h_pg_value(pg,
                                 "SELECT count(*) FROM webhook_deliveries"
                                 " WHERE deployment_id = $1 AND state = 'delivered'",
                                 1, p);
    cr_expect_str_eq(delivered, "4");
    free(delivered);

    cr_expect(h_stack_down(&s));
    receiver_down(&rx);
    for (int i = 0; i < 4; i++)
        free(calls[i]);
    PQfinish(pg);
}

/* The sim's test numbers, by the D of +1 212 555-01DX (README, "The sim
 * carrier"): the result each one gives and whether it is answered. */
static const struct {
    const char *phone;  /* test number */
    const char *result; /* its documented result */
    bool answered;      /* connected before ending */
} sim_numbers[] = {
    {"+12125550100", "voice", true},        {"+12125550110", "answeringmachine", true},
    {"+12125550120", "fax", true},          {"+12125550130", "busy", false},
    {"+12125550140", "noanswer", false},    {"+12125550150", "informationtone", false},
    {"+12125550160", "linefailure", false}, {"+12125550170", "unknown", true},
};

#define NTYPES ((int)(sizeof(sim_numbers) / sizeof(sim_numbers[0])))

/* One call's events as read from the topic. */
typedef struct {
    const char *call_id; /* the call (not owned) */
    char types[256];     /* its event types in topic order, comma-separated */
    char *result;        /* data.result of its completed event (malloc'd) */
    char *status;        /* data.status of its completed event (malloc'd) */
} topic_call_t;

/* Files one call-events message under its call (the subject). */
static void topic_one(void *arg, const void *payload, size_t len)
{
    topic_call_t *calls = arg;
    cJSON *ev = cJSON_ParseWithLength(payload, len);
    const cJSON *subject = cJSON_GetObjectItem(ev, "subject");
    const cJSON *type = cJSON_GetObjectItem(ev, "type");
    const cJSON *data = cJSON_GetObjectItem(ev, "data");
    for (int i = 0; i < NTYPES && cJSON_IsString(subject) && cJSON_IsString(type); i++) {
        topic_call_t *c = &calls[i];
        if (strcmp(c->call_id, subject->valuestring) != 0)
            continue;
        const char *t = type->valuestring;
        if (strncmp(t, "outbound.call.", 14) == 0)
            t += 14; /* "queued,dialing,..." reads better in a failure */
        size_t used = strlen(c->types);
        snprintf(c->types + used, sizeof(c->types) - used, "%s%s", used ? "," : "", t);
        if (strcmp(t, "completed") == 0) {
            const cJSON *result = cJSON_GetObjectItem(data, "result");
            const cJSON *status = cJSON_GetObjectItem(data, "status");
            free(c->result);
            free(c->status);
            c->result = cJSON_IsString(result) ? strdup(result->valuestring) : NULL;
            c->status = cJSON_IsString(status) ? strdup(status->valuestring) : NULL;
        }
    }
    cJSON_Delete(ev);
}

/* Reads the stack's call-events topic into calls until each has its
 * completed event (a few reads at most: the webhooks were sent from the
 * completed events, so they are on the topic already). */
static void read_call_events(topic_call_t *calls)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "%s.call-events", s.prefix);
    for (int tries = 0; tries < 3; tries++) {
        for (int i = 0; i < NTYPES; i++) {
            calls[i].types[0] = '\0';
            free(calls[i].result);
            free(calls[i].status);
            calls[i].result = calls[i].status = NULL;
        }
        cr_expect(h_read_topic(topic, topic_one, calls), "call-events not read to its end");
        bool all = true;
        for (int i = 0; i < NTYPES; i++)
            all &= calls[i].result != NULL;
        if (all)
            return;
        h_sleep_ms(500);
    }
}

Test(webhooks, every_result_type_reaches_the_api_the_topic_and_the_webhook, .timeout = 90,
     .fini = teardown)
{
    h_tenant_t t;
    char url[128];
    PGconn *pg = tenant_with_receiver(&t, 1); /* the first try of each event answers 500 */
    h_client_t c = h_client(&s, &t, pg);
    receiver_up(&rx);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/results", rx.port);
    cr_assert(h_stack_up(&s, 1, dialer_env));

    /* Each call names the receiver as its own result_url; one attempt each,
     * so an unanswered result is final. */
    char *calls[NTYPES], body[256];
    for (int i = 0; i < NTYPES; i++) {
        snprintf(body, sizeof(body),
                 "{\"phone_number\":\"%s\",\"max_attempts\":1,\"result_url\":\"%s\"}",
                 sim_numbers[i].phone, url);
        calls[i] = h_queue_json(&c, body);
    }

    /* At 100x the longest call (a voice call: ring 9 s and talk 45 s) takes
     * about half a second, and each webhook's retry 200 ms. */
    wait_accepted(&rx, NTYPES, 30000);
    h_sleep_ms(1500); /* time for any duplicate to show up */

    /* The status API: the final status and the attempt's timings. A
     * decision_ms is the sim's detection time, 2-5 s nominal after the
     * answer, or the call's end when it is shorter; never after the call. */
    for (int i = 0; i < NTYPES; i++) {
        const char *type = sim_numbers[i].result;
        char *call = h_wait_completed(&c, calls[i], 10000);
        cr_assert_not_null(call, "%s (%s) did not complete", calls[i], type);
        h_expect_path(call, "status", sim_numbers[i].answered ? "completed" : "failed");
        h_expect_path(call, "result", type);
        /* Unanswered with its only attempt used: max_attempts. */
        h_expect_path(call, "reason", sim_numbers[i].answered ? "answered" : "max_attempts");
        h_expect_path(call, "attempts_made", "1");
        h_expect_path(call, "attempts.0.result", type);
        h_expect_path(call, "attempts.1", NULL);
        long ring = h_json_long(call, "attempts.0.ring_ms");
        long talk = h_json_long(call, "attempts.0.talk_ms");
        long decision = h_json_long(call, "attempts.0.decision_ms");
        char *connected = h_json_path(call, "attempts.0.connected_at");
        cr_expect_gt(ring, 0, "%s: ring_ms %ld in %s", type, ring, call);
        if (sim_numbers[i].answered) {
            /* A person's phone rings 3-9 s before the answer. */
            cr_expect(ring >= 3000 && ring <= 9000, "%s: ring_ms %ld", type, ring);
            cr_expect_gt(talk, 0, "%s: talk_ms %ld in %s", type, talk, call);
            cr_expect(decision >= 2000 && decision <= 5000 && decision <= talk,
                      "%s: decision_ms %ld (talk %ld) in %s", type, decision, talk, call);
            cr_expect_not_null(connected, "%s: no connected_at in %s", type, call);
        } else {
            cr_expect(talk <= 0, "%s: unanswered but talk_ms %ld in %s", type, talk, call);
            h_expect_path(call, "attempts.0.decision_ms", NULL);
            cr_expect_null(connected, "%s: unanswered but connected_at in %s", type, call);
        }
        if (strcmp(type, "noanswer") == 0)
            cr_expect_eq(ring, 30000, "noanswer rings out after 30 s, ring_ms %ld", ring);
        free(connected);
        free(call);
    }

    /* The events topic: every transition in order, connected only for the
     * answered, and the completed event carries the result. */
    topic_call_t on_topic[NTYPES];
    memset(on_topic, 0, sizeof(on_topic));
    for (int i = 0; i < NTYPES; i++)
        on_topic[i].call_id = calls[i];
    read_call_events(on_topic);
    for (int i = 0; i < NTYPES; i++) {
        const char *type = sim_numbers[i].result;
        cr_expect_str_eq(on_topic[i].types,
                         sim_numbers[i].answered ? "queued,dialing,connected,completed"
                                                 : "queued,dialing,completed",
                         "%s: events %s", type, on_topic[i].types);
        cr_expect(on_topic[i].result && strcmp(on_topic[i].result, type) == 0,
                  "%s: completed event's result %s", type, on_topic[i].result);
        cr_expect(
            on_topic[i].status &&
                strcmp(on_topic[i].status, sim_numbers[i].answered ? "completed" : "failed") == 0,
            "%s: completed event's status %s", type, on_topic[i].status);
        free(on_topic[i].result);
        free(on_topic[i].status);
    }

    /* The receiver: one event per call, its first try refused, the second
     * accepted, every try signed; the body has the call's result. */
    pthread_mutex_lock(&rx.mu);
    cr_expect_eq(rx.nevents, NTYPES, "one event id per call, got %d", rx.nevents);
    for (int i = 0; i < NTYPES; i++) {
        const char *type = sim_numbers[i].result;
        rx_event_t *e = event_of(&rx, calls[i]);
        cr_assert_not_null(e, "no webhook for %s (%s)", calls[i], type);
        cr_expect_eq(e->bad, 0, "%s: %d tries with a bad signature", type, e->bad);
        cr_expect_eq(e->accepted, 1, "%s: delivered %d times", type, e->accepted);
        cr_expect_eq(e->requests, 2, "%s: a 500 then the success, got %d tries", type, e->requests);
        cr_expect_str_eq(e->path, "/results", "%s", type);
        h_expect_path(e->body, "call_id", calls[i]);
        h_expect_path(e->body, "result", type);
        h_expect_path(e->body, "status", sim_numbers[i].answered ? "completed" : "failed");
        h_expect_path(e->body, "event_id", e->event_id);
    }
    pthread_mutex_unlock(&rx.mu);

    /* The delivery log shows both tries of each. */
    for (int i = 0; i < NTYPES; i++) {
        char path[160];
        snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", calls[i]);
        h_resp_t r = h_get(&c, path);
        cr_assert_eq(r.status, 200, "%s", r.body);
        h_expect_path(r.body, "deliveries.0.state", "delivered");
        h_expect_path(r.body, "deliveries.0.url", url);
        h_expect_path(r.body, "deliveries.0.attempts_made", "2");
        h_expect_path(r.body, "deliveries.0.attempts.0.http_status", "500");
        h_expect_path(r.body, "deliveries.0.attempts.0.error", "HTTP 500");
        h_expect_path(r.body, "deliveries.0.attempts.1.http_status", "200");
        h_expect_path(r.body, "deliveries.0.attempts.1.error", NULL);
        h_expect_path(r.body, "deliveries.0.attempts.2", NULL);
        h_expect_path(r.body, "deliveries.1", NULL);
        h_resp_free(&r);
    }

    cr_expect(h_stack_down(&s));
    receiver_down(&rx);
    for (int i = 0; i < NTYPES; i++)
        free(calls[i]);
    PQfinish(pg);
}

/* Issue 9: result_url cannot be turned against the platform's own network.
 * The API refuses URLs that would inject headers; a dialer whose deny-list
 * holds loopback (the default, without the harness's allowance) never
 * contacts a receiver reached through a name that resolves to 127.0.0.1,
 * and the delivery log says why. */
Test(webhooks, a_result_url_into_a_denied_range_is_refused_and_never_contacted, .timeout = 120,
     .fini = teardown)
{
    h_tenant_t t;
    char url[128], body[512], path[160];
    PGconn *pg = tenant_with_receiver(&t, 0);
    h_client_t c = h_client(&s, &t, pg);
    receiver_up(&rx);
    static const char *const denying_env[] = {
        "OB_SIM_TIME_SCALE=100", "OB_WEBHOOK_RETRY_BASE_MS=200", "OB_WEBHOOK_RETRY_MAX_MS=1000",
        "OB_DIALER_URL_ALLOW=", NULL};
    cr_assert(h_stack_up(&s, 1, denying_env));

    /* CR LF in a result_url: 422 naming the field, nothing queued. */
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"+12125550100\","
             "\"result_url\":\"http://localhost:%d/x\\r\\nX-Injected: 1\"}",
             rx.port);
    h_resp_t r = h_deployment_api(&c, "POST", "/calls", body);
    cr_expect_eq(r.status, 422, "%s", r.body);
    h_expect_path(r.body, "errors.0.field", "result_url");
    h_expect_path(r.body, "errors.0.code", "invalid_url");
    char *msg = h_json_path(r.body, "errors.0.message");
    cr_expect(msg && strstr(msg, "must not contain a carriage return"), "%s", r.body);
    free(msg);
    h_resp_free(&r);
    /* The same through the deployment's own result_url. */
    r = h_deployment_api(&c, "PATCH", "", "{\"result_url\":\"https://example.com/\\nHost: evil\"}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    h_expect_path(r.body, "errors.0.field", "result_url");
    h_resp_free(&r);

    /* A well-formed URL whose host resolves to loopback: accepted by the
     * API (an address is only known when connecting), refused by the
     * dialer, never retried. */
    snprintf(url, sizeof(url), "http://localhost:%d/denied-hook", rx.port);
    snprintf(body, sizeof(body),
             "{\"phone_number\":\"+12125550100\",\"max_attempts\":1,\"result_url\":\"%s\"}", url);
    char *call = h_queue_json(&c, body);
    char *done = h_wait_completed(&c, call, 30000);
    cr_assert_not_null(done, "call %s did not complete", call);
    h_expect_path(done, "status", "completed");
    free(done);

    snprintf(path, sizeof(path), "/api/v1/calls/%s/deliveries", call);
    char *state = NULL;
    for (int waited = 0; waited < 20000; waited += 200) {
        r = h_get(&c, path);
        free(state);
        state = h_json_path(r.body, "deliveries.0.state");
        if (state && strcmp(state, "failed") == 0)
            break;
        h_resp_free(&r);
        h_sleep_ms(200);
    }
    cr_assert_str_eq(state, "failed", "the delivery failed at once: %s", r.body);
    free(state);
    h_expect_path(r.body, "deliveries.0.url", url);
    h_expect_path(r.body, "deliveries.0.attempts_made", "1");
    h_expect_path(r.body, "deliveries.0.next_attempt_at", NULL);
    h_expect_path(r.body, "deliveries.0.attempts.0.http_status", NULL);
    char *error = h_json_path(r.body, "deliveries.0.last_error");
    cr_expect(error && strstr(error, "refused by OB_DIALER_URL_DENY") &&
                  (strstr(error, "address 127.0.0.1 is in 127.0.0.0/8") ||
                   strstr(error, "address ::1 is in ::1/128")),
              "the error names the address and the deny-list: %s", r.body);
    free(error);
    h_resp_free(&r);

    h_sleep_ms(1500); /* a retry would have come by now */
    pthread_mutex_lock(&rx.mu);
    cr_expect_eq(rx.nevents, 0, "the receiver on loopback was contacted");
    pthread_mutex_unlock(&rx.mu);
    for (int i = 0; i < s.nprocs; i++)
        if (strcmp(s.procs[i].name, "dialer-1") == 0) {
            cr_expect_eq(
                h_metric(&s.procs[i], "outbound_webhook_deliveries_total{outcome=\"failed\"}"), 1);
            cr_expect_eq(
                h_metric(&s.procs[i], "outbound_webhook_deliveries_total{outcome=\"delivered\"}"),
                0);
        }

    cr_expect(h_stack_down(&s));
    receiver_down(&rx);
    free(call);
    PQfinish(pg);
}
