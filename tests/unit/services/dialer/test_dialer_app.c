/* The application on answer (services/dialer/dialer_app.c): the bodies
 * POSTed to start_url (JSON and form-encoded) and the reading of the
 * application's answer; the sim's callee-type decision and extension that
 * the answers act on; and the URL checks of deployments with verify_urls,
 * against a tiny HTTP server in the test. */
#include "dialer_app.h"
#include "dialer_carrier.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    const char *body;      /* the application's 2xx answer */
    bool ok;               /* accepted */
    bool hangup;           /* asks to hang up */
    long long stay_ms;     /* asks to stay this long, -1: no */
    const char *error_has; /* part of the error when refused */
    bool doc;              /* taken as a call-control document */
} answer_case_t;

static answer_case_t answers[] = {
    {"", true, false, -1, NULL, false},
    {" \r\n", true, false, -1, NULL, false},
    {"{}", true, false, -1, NULL, false},
    {"{\"hangup\": true}", true, true, -1, NULL, false},
    {"{\"hangup\": false}", true, false, -1, NULL, false},
    {"{\"stay_connected_s\": 30}", true, false, 30000, NULL, false},
    {"{\"stay_connected_s\": 1.5, \"other\": [1]}", true, false, 1500, NULL, false},
    {"{\"stay_connected_s\": 0}", true, false, 0, NULL, false},
    {"{\"stay_connected_s\": null}", true, false, -1, NULL, false},
    {"{\"hangup\": true, \"stay_connected_s\": 10}", true, true, 10000, NULL, false},
    {"{\"hangup\": \"yes\"}", false, false, -1, "hangup", false},
    {"{\"stay_connected_s\": -1}", false, false, -1, "stay_connected_s", false},
    {"{\"stay_connected_s\": 86401}", false, false, -1, "stay_connected_s", false},
    {"{\"stay_connected_s\": \"10\"}", false, false, -1, "stay_connected_s", false},
    {"[1, 2]", true, false, -1, NULL, true},
    {"[{\"verb\": \"hangup\"}]", true, false, -1, NULL, true},
    {"{\"verbs\": [{\"verb\": \"say\", \"text\": \"hi\"}]}", true, false, -1, NULL, true},
    {"{\"hangup\": true, \"verbs\": []}", true, false, -1, NULL, true},
    {"\"ok\"", false, false, -1, "not a JSON object", false},
    {"<html>OK</html>", false, false, -1, "bad JSON", false},
    {"{\"hangup\": tru", false, false, -1, "bad JSON", false},
};

ParameterizedTestParameters(app, answer_is_read_or_refused)
{
    return cr_make_param_array(answer_case_t, answers, sizeof(answers) / sizeof(answers[0]));
}

ParameterizedTest(answer_case_t *c, app, answer_is_read_or_refused)
{
    dialer_app_answer_t a;
    ob_err_t err = {{0}};
    ob_rc_t rc = dialer_app_parse_answer(c->body, strlen(c->body), &a, &err);
    cr_expect_eq(rc == OB_OK, c->ok, "%s: rc %d (%s)", c->body, rc, err.msg);
    if (rc == OB_OK) {
        cr_expect_eq(a.hangup, c->hangup, "%s", c->body);
        cr_expect_eq(a.stay_connected_ms, c->stay_ms, "%s", c->body);
        cr_expect_eq(a.doc != NULL, c->doc, "%s: doc %s", c->body, a.doc ? a.doc : "(none)");
        if (c->doc)
            cr_expect_str_eq(a.doc, c->body, "the document is handed on as it came");
        dialer_app_answer_clear(&a);
    } else {
        cr_expect(strstr(err.msg, c->error_has), "%s: %s lacks %s", c->body, err.msg, c->error_has);
        cr_expect_not(a.hangup, "a refused answer asks for nothing");
        cr_expect_eq(a.stay_connected_ms, -1);
    }
}

Test(app, answer_is_read_within_its_length)
{
    dialer_app_answer_t a;
    ob_err_t err = {{0}};
    const char *body = "{\"hangup\": true}garbage";
    cr_expect_eq(dialer_app_parse_answer(body, 16, &a, &err), OB_OK, "%s", err.msg);
    cr_expect(a.hangup);
}

typedef struct {
    const char *message_reference; /* NULL: none */
    const char *call_parameters;   /* as the job carries it */
    const char *application_id;    /* NULL: unknown */
    const char *event, *callee_type;
    const char *params_sent; /* call_parameters as sent */
} body_case_t;

static body_case_t bodies[] = {
    {"ref-1", "{\"name\":\"Ann\",\"n\":2}", "0190a0b0-0000-7000-8000-00000000a001", "connected",
     "processing", "{\"name\":\"Ann\",\"n\":2}"},
    {NULL, NULL, NULL, "callee_type", "voice", "{}"},
    {"r\"2", "[1,2]", "app", "callee_type", "answeringmachine", "{}"},
    {"", "not json", "app", "connected", "processing", "{}"},
};

/* The dial job of a body case. */
static ob_dial_job_t case_job(const body_case_t *c)
{
    return (ob_dial_job_t){
        .job_id = "job",
        .call_id = "0190a0b0-0000-7000-8000-0000000c0001",
        .deployment_id = "0190a0b0-0000-7000-8000-0000000d0001",
        .account_id = "0190a0b0-0000-7000-8000-0000000ac001",
        .phone_number = "+12125550100",
        .message_reference = (char *)c->message_reference,
        .call_parameters = (char *)c->call_parameters,
        .start_url = "http://127.0.0.1:1/start",
        .attempt = 2,
        .max_attempts = 3,
    };
}

ParameterizedTestParameters(app, form_body_sends_the_json_members_encoded)
{
    return cr_make_param_array(body_case_t, bodies, sizeof(bodies) / sizeof(bodies[0]));
}

/* Decodes one application/x-www-form-urlencoded value (malloc'd), as an
 * application's framework would ("+" is a space). */
static char *form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* The form body must carry the JSON body's members, in its order, with
 * strings as they are, numbers and call_parameters as their JSON text, and
 * nulls empty. */
static void expect_form_matches_json(const char *form, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    const cJSON *member = o ? o->child : NULL;
    const char *p = form;
    cr_expect(!strpbrk(form, " +\"{}"), "not percent-encoded: %s", form);
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        cr_assert(eq, "field without '=' in %s", form);
        char *name = form_decode(p, (size_t)(eq - p));
        char *value = form_decode(eq + 1, len - (size_t)(eq - p) - 1);
        cr_assert(member, "form field %s beyond the JSON members %s", name, json);
        cr_expect_str_eq(name, member->string, "field order: %s vs %s", form, json);
        char *want = cJSON_IsString(member) ? strdup(member->valuestring)
                     : cJSON_IsNull(member) ? strdup("")
                                            : cJSON_PrintUnformatted(member);
        cr_expect_str_eq(value, want, "%s", name);
        free(want);
        free(name);
        free(value);
        member = member->next;
        p += len + (amp ? 1 : 0);
    }
    cr_expect_null(member, "JSON member %s missing from %s", member ? member->string : "", form);
    cJSON_Delete(o);
}

ParameterizedTest(body_case_t *c, app, form_body_sends_the_json_members_encoded)
{
    ob_dial_job_t job = case_job(c);
    char *json = dialer_app_body(&job, c->application_id, c->event, c->callee_type);
    char *form = dialer_app_form_body(&job, c->application_id, c->event, c->callee_type);
    expect_form_matches_json(form, json);
    free(json);
    free(form);
}

Test(app, form_body_encodes_what_forms_reserve)
{
    ob_dial_job_t job = {
        .call_id = "c1",
        .deployment_id = "d1",
        .account_id = "a1",
        .phone_number = "+12125550100",
        .message_reference = "a b&c=d+e/\xc3\xa9%",
        .call_parameters = "{\"q\": \"x y&z\", \"n\": [1, 2]}",
        .attempt = 1,
        .max_attempts = 1,
    };
    char *form = dialer_app_form_body(&job, NULL, "connected", "processing");
    cr_expect_str_eq(form,
                     "event=connected&call_id=c1&phone_number=%2B12125550100"
                     "&message_reference=a%20b%26c%3Dd%2Be%2F%C3%A9%25"
                     "&call_parameters=%7B%22q%22%3A%22x%20y%26z%22%2C%22n%22%3A%5B1%2C2%5D%7D"
                     "&callee_type=processing&attempt=1&max_attempts=1&deployment_id=d1"
                     "&application_id=&account_id=a1");
    free(form);
}

ParameterizedTestParameters(app, body_carries_the_call_context)
{
    return cr_make_param_array(body_case_t, bodies, sizeof(bodies) / sizeof(bodies[0]));
}

ParameterizedTest(body_case_t *c, app, body_carries_the_call_context)
{
    ob_dial_job_t job = case_job(c);
    char *text = dialer_app_body(&job, c->application_id, c->event, c->callee_type);
    cJSON *o = cJSON_Parse(text);
    cr_assert(cJSON_IsObject(o), "%s", text);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "event")->valuestring, c->event);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "call_id")->valuestring, job.call_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "phone_number")->valuestring, job.phone_number);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "deployment_id")->valuestring, job.deployment_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "account_id")->valuestring, job.account_id);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "callee_type")->valuestring, c->callee_type);
    cr_expect_eq(cJSON_GetObjectItem(o, "attempt")->valuedouble, 2);
    cr_expect_eq(cJSON_GetObjectItem(o, "max_attempts")->valuedouble, 3);
    const cJSON *ref = cJSON_GetObjectItem(o, "message_reference");
    if (c->message_reference)
        cr_expect_str_eq(ref->valuestring, c->message_reference);
    else
        cr_expect(cJSON_IsNull(ref), "%s", text);
    const cJSON *app = cJSON_GetObjectItem(o, "application_id");
    if (c->application_id)
        cr_expect_str_eq(app->valuestring, c->application_id);
    else
        cr_expect(cJSON_IsNull(app), "%s", text);
    char *params = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "call_parameters"));
    cr_expect_str_eq(params, c->params_sent, "sent as an object: %s", text);
    cJSON_free(params);
    cJSON_Delete(o);
    free(text);
}

typedef struct {
    int answered, decided, ended; /* callback counts */
    const char *answered_as;      /* callee type at answer */
    const char *decided_as;       /* callee type decided */
    int ended_talk_ms;            /* talk time reported */
    int decision_ms;              /* decision time reported */
    bool decided_before_end;      /* order of the callbacks */
} recorder_t;

static void rec_answered(void *w, void *call, const char *type)
{
    (void)call;
    ((recorder_t *)w)->answered++;
    ((recorder_t *)w)->answered_as = type;
}

static void rec_decided(void *w, void *call, const char *type, int decision_ms)
{
    recorder_t *r = w;
    (void)call;
    r->decided++;
    r->decided_as = type;
    r->decision_ms = decision_ms;
    r->decided_before_end = r->ended == 0;
}

static void rec_ended(void *w, void *call, bool was_answered, const char *result, int ring,
                      int talk)
{
    recorder_t *r = w;
    (void)call;
    (void)was_answered;
    (void)result;
    (void)ring;
    r->ended++;
    r->ended_talk_ms = talk;
}

static const carrier_events_t rec_events = {
    .answered = rec_answered,
    .ended = rec_ended,
    .decided = rec_decided,
};

static void run_until(carrier_t *c, const int *count, int64_t timeout_ms)
{
    int64_t deadline = ob_mono_ms() + timeout_ms;
    while (*count == 0 && ob_mono_ms() < deadline)
        c->ops->run(c, ob_mono_ms());
}

Test(app, sim_answers_processing_then_decides_before_the_end)
{
    recorder_t rec = {0};
    carrier_t *c = carrier_sim_new(1, 1000.0, 1, &rec_events, &rec);
    int handle;
    cr_assert(c->ops->start(
        c, &handle, &(carrier_dial_t){.call_id = "call-a", .attempt = 1, .phone = "+12125550110"}));
    run_until(c, &rec.ended, 5000);
    cr_expect_eq(rec.answered, 1);
    cr_expect_str_eq(rec.answered_as, "processing");
    cr_expect_eq(rec.decided, 1);
    cr_expect_str_eq(rec.decided_as, "answeringmachine");
    /* Nominal: 2-5 s after the answer, as a real detector listens first. */
    cr_expect(rec.decision_ms >= 2000 && rec.decision_ms <= 5000, "%d ms", rec.decision_ms);
    cr_expect(rec.decided_before_end);
    c->ops->destroy(c);
}

Test(app, sim_extend_overrides_the_talk_time)
{
    recorder_t rec = {0};
    /* 100x: voice talks 10-45 s nominal, 0.1-0.45 s here; a stay of 100 s
     * nominal is 1 s here. */
    carrier_t *c = carrier_sim_new(1, 100.0, 1, &rec_events, &rec);
    int handle;
    cr_assert(c->ops->start(
        c, &handle, &(carrier_dial_t){.call_id = "call-b", .attempt = 1, .phone = "+12125550100"}));
    run_until(c, &rec.answered, 5000);
    cr_assert_eq(rec.answered, 1);
    c->ops->extend(c, &handle, 100000);
    int64_t from = ob_mono_ms();
    run_until(c, &rec.ended, 5000);
    cr_expect_eq(rec.ended, 1);
    cr_expect_geq(ob_mono_ms() - from, 950, "stayed the time asked");
    cr_expect(rec.ended_talk_ms >= 99000 && rec.ended_talk_ms <= 102000, "talk %d ms",
              rec.ended_talk_ms);
    c->ops->destroy(c);
}

typedef struct {
    bool in_flight;         /* a check is running */
    long long ok, failed;   /* when the last success / failure ended (0: never) */
    long long now;          /* when asked */
    dialer_urls_t expected; /* the answer */
    bool start;             /* a check starts */
} state_case_t;

#define TTL     DIALER_URL_CHECK_TTL_MS
#define RETRY   DIALER_URL_RETRY_MS
#define REFRESH DIALER_URL_REFRESH_MS

static state_case_t states[] = {
    /* never checked: the first asker starts one, the others wait for it */
    {false, 0, 0, 1000000, DIALER_URLS_WAIT, true},
    {true, 0, 0, 1000000, DIALER_URLS_WAIT, false},
    /* a success holds for the TTL, renewed early without waiting */
    {false, 1000000, 0, 1000000, DIALER_URLS_OK, false},
    {false, 1000000, 0, 1000000 + REFRESH - 1, DIALER_URLS_OK, false},
    {false, 1000000, 0, 1000000 + REFRESH, DIALER_URLS_OK, true},
    {true, 1000000, 0, 1000000 + REFRESH, DIALER_URLS_OK, false},
    {true, 1000000, 0, 1000000 + TTL - 1, DIALER_URLS_OK, false},
    /* an expired success waits for its renewal */
    {false, 1000000, 0, 1000000 + TTL, DIALER_URLS_WAIT, true},
    {true, 1000000, 0, 1000000 + TTL, DIALER_URLS_WAIT, false},
    /* a failure holds for the retry time, then the URLs are checked again */
    {false, 0, 1000000, 1000000, DIALER_URLS_FAILED, false},
    {false, 0, 1000000, 1000000 + RETRY - 1, DIALER_URLS_FAILED, false},
    {false, 0, 1000000, 1000000 + RETRY, DIALER_URLS_WAIT, true},
    /* the latest check wins: a failed renewal fails an unexpired success */
    {false, 1000000, 1000000 + REFRESH, 1000000 + REFRESH + 1, DIALER_URLS_FAILED, false},
    {false, 1000000, 1000000 + REFRESH, 1000000 + REFRESH + RETRY, DIALER_URLS_WAIT, true},
    {false, 1000000 + 5000, 1000000, 1000000 + 5001, DIALER_URLS_OK, false},
};

ParameterizedTestParameters(app, url_state_follows_the_latest_check)
{
    return cr_make_param_array(state_case_t, states, sizeof(states) / sizeof(states[0]));
}

ParameterizedTest(state_case_t *c, app, url_state_follows_the_latest_check)
{
    dialer_url_check_t check = {c->in_flight, c->ok, c->failed};
    bool start = !c->start;
    dialer_urls_t got = dialer_url_state(&check, c->now, &start);
    cr_expect_eq(got, c->expected, "in flight %d, ok %lld, failed %lld, now %lld: %d", c->in_flight,
                 c->ok, c->failed, c->now, got);
    cr_expect_eq(start, c->start, "in flight %d, ok %lld, failed %lld, now %lld: start %d",
                 c->in_flight, c->ok, c->failed, c->now, start);
}

/* The URLs checked: a tiny HTTP/1.1 server, one thread per connection, that
 * answers by path and counts the requests to each target. */
#define MAX_TARGETS      32
#define CHECK_TIMEOUT_MS 500

typedef struct {
    int fd, port;                   /* listening socket, its port */
    volatile int stop;              /* ends the accept loop */
    pthread_t thread;               /* accept loop */
    pthread_mutex_t mu;             /* guards what follows */
    char targets[MAX_TARGETS][128]; /* request targets seen */
    char methods[MAX_TARGETS][8];   /* with their methods */
    int hits[MAX_TARGETS];          /* and how often */
    int ntargets;                   /* entries used */
} server_t;

static server_t srv;

static void count(server_t *sv, const char *method, const char *target)
{
    pthread_mutex_lock(&sv->mu);
    int i = 0;
    while (i < sv->ntargets && strcmp(sv->targets[i], target) != 0)
        i++;
    if (i == sv->ntargets && i < MAX_TARGETS) {
        snprintf(sv->targets[i], sizeof(sv->targets[i]), "%s", target);
        snprintf(sv->methods[i], sizeof(sv->methods[i]), "%s", method);
        sv->ntargets++;
    }
    if (i < MAX_TARGETS)
        sv->hits[i]++;
    pthread_mutex_unlock(&sv->mu);
}

static int hits(server_t *sv, const char *target)
{
    int n = 0;
    pthread_mutex_lock(&sv->mu);
    for (int i = 0; i < sv->ntargets; i++)
        if (strcmp(sv->targets[i], target) == 0)
            n = sv->hits[i];
    pthread_mutex_unlock(&sv->mu);
    return n;
}

/* The answer to a path: /ok 200, /created 201, /down 503, /moved 302 to
 * /target, /slow 200 after the check's timeout, /big 200 with 200 KB. */
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char head[4096], method[8] = "", target[128] = "", path[128] = "";
    size_t used = 0;
    while (used < sizeof(head) - 1) {
        ssize_t n = read(fd, head + used, sizeof(head) - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        head[used] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    head[used] = '\0';
    sscanf(head, "%7s %127s", method, target);
    count(&srv, method, target);
    sscanf(target, "%127[^?]", path);
    int status = 200;
    size_t body_len = 0;
    const char *extra = "";
    if (strcmp(path, "/created") == 0)
        status = 201;
    else if (strcmp(path, "/down") == 0)
        status = 503;
    else if (strcmp(path, "/moved") == 0)
        status = 302, extra = "Location: /target\r\n";
    else if (strcmp(path, "/slow") == 0)
        usleep((CHECK_TIMEOUT_MS + 500) * 1000);
    else if (strcmp(path, "/big") == 0)
        body_len = 200000;
    char resp[512];
    int rl = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                      extra, body_len);
    if (send(fd, resp, (size_t)rl, MSG_NOSIGNAL) == rl && body_len > 0) {
        char *body = calloc(1, body_len);
        memset(body, 'x', body_len);
        (void)!send(fd, body, body_len, MSG_NOSIGNAL);
        free(body);
    }
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    server_t *sv = arg;
    while (!sv->stop) {
        struct pollfd p = {.fd = sv->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(sv->fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static void server_up(server_t *sv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    memset(sv, 0, sizeof(*sv));
    pthread_mutex_init(&sv->mu, NULL);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(bind(sv->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    cr_assert(listen(sv->fd, 64) == 0);
    getsockname(sv->fd, (struct sockaddr *)&sa, &len);
    sv->port = ntohs(sa.sin_port);
    pthread_create(&sv->thread, NULL, accept_loop, sv);
}

static void server_down(server_t *sv)
{
    sv->stop = 1;
    pthread_join(sv->thread, NULL);
    close(sv->fd);
}

/* The deployments the fake lookup knows: "<id> <start path|-> <result
 * path|-|closed> <verify 0|1>"; "broken" makes every lookup fail. */
typedef struct {
    const char *const *rows; /* NULL-terminated */
    bool broken;             /* the store cannot say */
    int lookups;             /* calls so far */
} fake_store_t;

static char *url_of(const char *path)
{
    char url[256];
    if (strcmp(path, "-") == 0)
        return NULL;
    if (strcmp(path, "closed") == 0)
        return strdup("http://127.0.0.1:1/closed"); /* nothing listens there */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    return strdup(url);
}

static ob_rc_t fake_lookup(void *arg, const char *deployment_id, dialer_deployment_t *out,
                           ob_err_t *err)
{
    fake_store_t *store = arg;
    memset(out, 0, sizeof(*out));
    store->lookups++;
    if (store->broken) {
        ob_err_set(err, "the store is down");
        return OB_ERR;
    }
    for (const char *const *row = store->rows; *row; row++) {
        char id[64], start[128], result[128];
        int verify = 0;
        if (sscanf(*row, "%63s %127s %127s %d", id, start, result, &verify) != 4 ||
            strcmp(id, deployment_id) != 0)
            continue;
        out->application_id = strdup("app");
        out->start_url = url_of(start);
        out->result_url = url_of(result);
        out->verify_urls = verify == 1;
    }
    return OB_OK;
}

static fake_store_t store;
static dialer_app_t *checker;
static const ob_url_policy_t no_ranges; /* refuses nothing, as the worker's unset policy */

/* The checks ask nothing of a worker: no request is ever queued. */
static bool no_call(void *worker, void *call, const char *call_id, int64_t attempt)
{
    (void)worker, (void)call, (void)call_id, (void)attempt;
    return false;
}

static void no_result(void *worker, const dialer_app_result_t *r)
{
    (void)worker, (void)r;
}

static const dialer_app_events_t no_worker = {no_call, no_result};

static void checks_up(const char *const *rows)
{
    ob_err_t err = {{0}};
    server_up(&srv);
    store = (fake_store_t){rows, false, 0};
    dialer_app_opts_t o = {
        .concurrency = 10,
        .timeout_ms = CHECK_TIMEOUT_MS,
        .urls = &no_ranges,
        .lookup = fake_lookup,
        .lookup_arg = &store,
        .events = &no_worker,
    };
    cr_assert_eq(dialer_app_new(&o, &checker, &err), OB_OK, "%s", err.msg);
}

static void checks_down(void)
{
    dialer_app_free(checker);
    server_down(&srv);
}

/* Asks about deployment_id until the answer is no longer WAIT (at most 5 s),
 * running the checks meanwhile. */
static dialer_urls_t settle(const char *deployment_id, const char **why)
{
    ob_dial_job_t job = {.deployment_id = (char *)deployment_id};
    int64_t deadline = ob_mono_ms() + 5000;
    dialer_urls_t st;
    while ((st = dialer_app_check_urls(checker, &job, why)) == DIALER_URLS_WAIT &&
           ob_mono_ms() < deadline) {
        dialer_app_run(checker, ob_mono_ms());
        usleep(1000);
    }
    return st;
}

static dialer_urls_t ask(const char *deployment_id, const char **why)
{
    ob_dial_job_t job = {.deployment_id = (char *)deployment_id};
    return dialer_app_check_urls(checker, &job, why);
}

static const char *const deployments[] = {
    "off /down /down 0",
    "both /ok?d=both /ok?r=both 1",
    "start /ok?d=start - 1",
    "none - - 1",
    "down /ok?d=down /down?r=down 1",
    "moved /moved?d=moved - 1",
    "created /created - 1",
    "slow /ok?d=slow /slow 1",
    "refused - closed 1",
    "big /big - 1",
    NULL,
};

Test(app, urls_unchecked_without_verify_urls)
{
    checks_up(deployments);
    const char *why = NULL;
    cr_expect_eq(ask("off", &why), DIALER_URLS_OK);
    cr_expect_eq(ask("none", &why), DIALER_URLS_OK, "verify_urls without URLs: nothing to check");
    cr_expect_eq(dialer_app_check_urls(NULL, &(ob_dial_job_t){.deployment_id = "x"}, &why),
                 DIALER_URLS_OK, "app off");
    dialer_app_run(checker, ob_mono_ms());
    cr_expect_eq(hits(&srv, "/down"), 0, "checked without verify_urls");
    checks_down();
}

Test(app, urls_answering_200_pass_once_per_ttl)
{
    checks_up(deployments);
    const char *why = NULL;
    cr_expect_eq(ask("both", &why), DIALER_URLS_WAIT, "the first ask starts the check");
    for (int i = 0; i < 100; i++)
        cr_expect_eq(ask("both", &why), DIALER_URLS_WAIT);
    cr_expect_eq(settle("both", &why), DIALER_URLS_OK);
    for (int i = 0; i < 100; i++)
        cr_expect_eq(ask("both", &why), DIALER_URLS_OK);
    dialer_app_run(checker, ob_mono_ms());
    cr_expect_eq(hits(&srv, "/ok?d=both"), 1, "one check for every asker");
    cr_expect_eq(hits(&srv, "/ok?r=both"), 1);
    pthread_mutex_lock(&srv.mu);
    for (int i = 0; i < srv.ntargets; i++)
        cr_expect_str_eq(srv.methods[i], "GET", "%s", srv.targets[i]);
    pthread_mutex_unlock(&srv.mu);
    cr_expect_eq(settle("start", &why), DIALER_URLS_OK, "only start_url set");
    cr_expect_eq(settle("big", &why), DIALER_URLS_OK, "a long 200 body is still a 200");
    cr_expect_eq(store.lookups, 3, "settings read once per deployment");
    checks_down();
}

typedef struct {
    const char *deployment_id; /* from deployments[] */
    const char *why_starts;    /* the reason's start (the server's port follows) */
    const char *why_has;       /* what the reason says after it */
} failure_case_t;

static failure_case_t failures[] = {
    {"down", "result_url http://127.0.0.1:", "/down?r=down answered 503, not 200"},
    {"moved", "start_url http://127.0.0.1:", "/moved?d=moved answered 302 (redirects are not"},
    {"created", "start_url http://127.0.0.1:", "/created answered 201, not 200"},
    {"slow", "result_url http://127.0.0.1:", "/slow did not answer within 500 ms"},
    {"refused", "result_url http://127.0.0.1:1/closed could not be fetched: ", ""},
};

ParameterizedTestParameters(app, urls_not_answering_200_fail_with_the_reason)
{
    return cr_make_param_array(failure_case_t, failures, sizeof(failures) / sizeof(failures[0]));
}

ParameterizedTest(failure_case_t *c, app, urls_not_answering_200_fail_with_the_reason)
{
    checks_up(deployments);
    const char *why = NULL;
    cr_assert_eq(settle(c->deployment_id, &why), DIALER_URLS_FAILED, "%s", c->deployment_id);
    cr_expect(
        why && strncmp(why, c->why_starts, strlen(c->why_starts)) == 0 && strstr(why, c->why_has),
        "%s: why is \"%s\", want \"%s...%s\"", c->deployment_id, why, c->why_starts, c->why_has);
    int before = srv.ntargets;
    cr_expect_eq(ask(c->deployment_id, &why), DIALER_URLS_FAILED, "a failure holds");
    dialer_app_run(checker, ob_mono_ms());
    cr_expect_eq(srv.ntargets, before, "no new check while the failure holds");
    cr_expect_eq(hits(&srv, "/target"), 0, "a redirect is not followed");
    checks_down();
}

Test(app, urls_wait_while_the_settings_cannot_be_read)
{
    checks_up(deployments);
    store.broken = true;
    const char *why = NULL;
    for (int i = 0; i < 50; i++)
        cr_expect_eq(ask("both", &why), DIALER_URLS_WAIT, "not dialed on a guess");
    cr_expect_eq(store.lookups, 1, "a failed read is not repeated at once");
    cr_expect_eq(srv.ntargets, 0);
    store.broken = false;
    usleep(1100 * 1000);
    cr_expect_eq(settle("both", &why), DIALER_URLS_OK, "read again a second later");
    checks_down();
}
