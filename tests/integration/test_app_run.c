/*
 * Call-control documents run by the dialer, end to end through the sim
 * carrier (docs/sim.md): a say and a gather whose digits the sim callee
 * +1 212 555 0212 presses ("1", "2", "#"), a machine branch started after
 * the beep, an action_url that answers the next document, a connect to a
 * busy number, and a start_url answering an invalid document (recorded as
 * app_error, the call hung up at once). The test is the application behind
 * start_url and the action_urls; what it checks is what a user reads back
 * from the API: the attempt's verb log, its digits, the events.
 */
#include "harness_client.h"
#include "ob_common.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;
static h_client_t api;

#define MAX_POSTS 32

/* The test's application: answers documents by path, records POSTs. */
static struct {
    h_server_t *srv;        /* serves it */
    int port;               /* where */
    pthread_mutex_t mu;     /* guards posts */
    char *posts[MAX_POSTS]; /* bodies received (malloc'd) */
    char paths[MAX_POSTS][64];
    int nposts;
} app;

static void teardown(void)
{
    h_stack_kill(&s);
}

static int on_request(void *arg, const char *head, const char *body, size_t len,
                      const char **answer)
{
    char method[8] = "", path[64] = "";
    (void)arg;
    sscanf(head, "%7s %63s", method, path);
    pthread_mutex_lock(&app.mu);
    if (app.nposts < MAX_POSTS) {
        app.posts[app.nposts] = strndup(body, len);
        snprintf(app.paths[app.nposts], sizeof(app.paths[0]), "%s", path);
        app.nposts++;
    }
    pthread_mutex_unlock(&app.mu);
    *answer = "{}";
    if (strncmp(path, "/action/thanks", 14) == 0)
        *answer = "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Thank you, {{name}}.\"},"
                  "{\"verb\":\"hangup\"}]}";
    else if (strncmp(path, "/start/bad", 10) == 0)
        *answer = "{\"verbs\":[{\"verb\":\"say\"}]}"; /* say without text */
    return 200;
}

/* The POST to a path starting with prefix about call_id (malloc'd), or NULL. */
static char *post_to(const char *prefix, const char *call_id)
{
    char *found = NULL;
    pthread_mutex_lock(&app.mu);
    for (int i = 0; i < app.nposts && !found; i++) {
        char *id = h_json_str(app.posts[i], "call_id");
        if (id && strcmp(id, call_id) == 0 && strncmp(app.paths[i], prefix, strlen(prefix)) == 0)
            found = strdup(app.posts[i]);
        free(id);
    }
    pthread_mutex_unlock(&app.mu);
    return found;
}

/* A tenant, the test's application and the services, the sim at 10x. */
static void stack_up(h_tenant_t *t)
{
    static const char *const dialer_env[] = {"OB_SIM_TIME_SCALE=10",
                                             "OB_DIALER_APP_TIMEOUT_MS=2000", NULL};
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, t, 10);
    api = h_client(&s, t, pg);
    pthread_mutex_init(&app.mu, NULL);
    app.srv = h_server_start(on_request, NULL);
    app.port = h_server_port(app.srv);
    cr_assert(h_stack_up(&s, 1, dialer_env));
}

static void stack_down(void)
{
    cr_expect(h_stack_down(&s));
    h_server_stop(app.srv);
    app.srv = NULL;
}

/* Queues phone with the document app (JSON text); returns its call_id. */
static char *queue_doc(const char *phone, const char *doc)
{
    char *body = ob_xasprintf("{\"phone_number\":\"%s\",\"call_parameters\":{\"name\":\"Ann\"},"
                              "\"app\":%s}",
                              phone, doc);
    char *id = h_queue_json(&api, body);
    free(body);
    cr_assert_not_null(id, "not queued: %s", doc);
    return id;
}

/* The completed call's view once its attempt's verb log is recorded. */
static char *completed(const char *call_id)
{
    char *body = h_wait_completed(&api, call_id, 60000);
    cr_assert_not_null(body, "call %s did not complete", call_id);
    return body;
}

Test(app_run, say_then_gather_records_the_digits_the_callee_pressed, .timeout = 90,
     .fini = teardown)
{
    h_tenant_t t;
    stack_up(&t);
    char *id = queue_doc("+12125550212",
                         "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hello {{name}}, press one "
                         "two and then the pound key.\"},{\"verb\":\"gather\","
                         "\"finish_on_key\":\"#\",\"timeout_s\":5}]}");
    char *call = completed(id);
    h_expect_path(call, "status", "completed");
    h_expect_path(call, "result", "voice");
    h_expect_path(call, "digits", "12");
    h_expect_path(call, "attempts.0.digits", "12");
    h_expect_path(call, "attempts.0.verbs.0.verb", "say");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "played");
    h_expect_path(call, "attempts.0.verbs.1.verb", "gather");
    h_expect_path(call, "attempts.0.verbs.1.outcome", "finish_on_key");
    h_expect_path(call, "attempts.0.verbs.1.digits", "12");
    h_expect_path(call, "attempts.0.app_error", NULL);
    /* The say lasted as long as its speech (nominal), a few seconds. */
    long said = h_json_long(call, "attempts.0.verbs.0.duration_ms");
    cr_expect(said > 1500 && said < 15000, "say took %ld ms: %s", said, call);
    /* The two-second rule's timing: our first audio after the greeting. */
    long gap = h_json_long(call, "attempts.0.first_audio_gap_ms");
    cr_expect(gap >= 0 && gap < 2000, "first audio %ld ms after the greeting: %s", gap, call);
    char *types = h_event_types(&s, id, 5, 20000);
    cr_assert_not_null(types);
    cr_expect(strstr(types, "outbound.call.gathered"), "no gathered event: %s", types);
    free(types);
    /* The dialer's /metrics counts it in the two-second rule's histogram. */
    h_proc_t *dialer = NULL;
    for (int i = 0; i < s.nprocs && !dialer; i++)
        if (strncmp(s.procs[i].name, "dialer", 6) == 0)
            dialer = &s.procs[i];
    cr_assert_not_null(dialer);
    cr_expect_eq(h_metric(dialer, "outbound_first_audio_gap_seconds_count"), 1);
    /* The deployment's summary counts it in the two-second rule's figures. */
    h_resp_t r = h_deployment_api(&api, "GET", "/summary", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(h_json_long(r.body, "first_audio_gap.calls"), 1, "%s", r.body);
    cr_expect_eq(h_json_long(r.body, "first_audio_gap.p50_ms"), gap, "%s", r.body);
    cr_expect_eq(h_json_long(r.body, "first_audio_gap.over_2s"), 0, "%s", r.body);
    h_resp_free(&r);
    free(call);
    free(id);
    stack_down();
}

Test(app_run, a_machine_hears_the_machine_branch_after_its_beep, .timeout = 90, .fini = teardown)
{
    h_tenant_t t;
    stack_up(&t);
    char *id = queue_doc(
        "+12125550110", "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hello, this is for a person.\"}],"
                        "\"machine\":[{\"verb\":\"say\",\"text\":\"Sorry we missed you.\"}]}");
    char *call = completed(id);
    h_expect_path(call, "result", "answeringmachine");
    h_expect_path(call, "attempts.0.verbs.0.verb", "say");
    h_expect_path(call, "attempts.0.verbs.0.branch", "machine");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "played");
    h_expect_path(call, "attempts.0.verbs.1", NULL); /* hung up once the branch was done */
    free(call);
    free(id);
    stack_down();
}

Test(app_run, an_action_url_answers_what_the_call_does_next, .timeout = 90, .fini = teardown)
{
    h_tenant_t t;
    stack_up(&t);
    char doc[512];
    snprintf(doc, sizeof(doc),
             "[{\"verb\":\"gather\",\"num_digits\":2,\"timeout_s\":5,"
             "\"action_url\":\"http://127.0.0.1:%d/action/thanks?who={{name}}\","
             "\"prompt\":[{\"verb\":\"say\",\"text\":\"Enter your two digit code.\"}]}]",
             app.port);
    char *id = queue_doc("+12125550234", doc);
    char *call = completed(id);
    h_expect_path(call, "attempts.0.verbs.0.verb", "gather");
    h_expect_path(call, "attempts.0.verbs.0.digits", "34");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "num_digits");
    h_expect_path(call, "attempts.0.verbs.1.verb", "say"); /* the answered document */
    h_expect_path(call, "attempts.0.verbs.1.outcome", "played");
    h_expect_path(call, "attempts.0.verbs.2.verb", "hangup");
    char *post = post_to("/action/thanks?who=Ann", id);
    cr_assert_not_null(post, "no action POST for %s", id);
    h_expect_path(post, "event", "gather");
    h_expect_path(post, "digits", "34");
    free(post);
    free(call);
    free(id);
    stack_down();
}

Test(app_run, a_connect_to_a_busy_number_is_recorded_and_the_call_goes_on, .timeout = 90,
     .fini = teardown)
{
    h_tenant_t t;
    stack_up(&t);
    char *id = queue_doc("+12125550100",
                         "[{\"verb\":\"connect\",\"to\":\"+12125550130\",\"timeout_s\":20},"
                         "{\"verb\":\"say\",\"text\":\"Everyone is busy. Goodbye.\"}]");
    char *call = completed(id);
    h_expect_path(call, "attempts.0.verbs.0.verb", "connect");
    h_expect_path(call, "attempts.0.verbs.0.outcome", "busy");
    h_expect_path(call, "attempts.0.verbs.0.to", "+12125550130");
    h_expect_path(call, "attempts.0.verbs.1.verb", "say");
    h_expect_path(call, "attempts.0.verbs.1.outcome", "played");
    char *types = h_event_types(&s, id, 5, 20000);
    cr_assert_not_null(types);
    cr_expect(strstr(types, "outbound.call.handed_over"), "no handed_over event: %s", types);
    free(types);
    free(call);
    free(id);
    stack_down();
}

Test(app_run, an_invalid_document_from_start_url_is_an_app_error_and_the_call_ends, .timeout = 90,
     .fini = teardown)
{
    h_tenant_t t;
    stack_up(&t);
    char path[128], body[256];
    snprintf(path, sizeof(path), "/api/v1/applications/%s", t.application_id);
    snprintf(body, sizeof(body), "{\"start_url\":\"http://127.0.0.1:%d/start/bad\"}", app.port);
    h_resp_t r = h_api(&api, "PATCH", path, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);
    char *id = queue_doc("+12125550100", "[{\"verb\":\"say\",\"text\":\"The static one.\"}]");
    char *call = completed(id);
    h_expect_path(call, "status", "completed");
    char *error = h_json_path(call, "attempts.0.app_error");
    cr_assert_not_null(error, "no app_error: %s", call);
    cr_expect(strstr(error, "start_url answered an invalid document") &&
                  strstr(error, "verbs[0] (say)"),
              "%s", error);
    free(error);
    /* Hung up at once: nothing was played, and the callee did not talk
     * its 10-45 s. */
    h_expect_path(call, "attempts.0.verbs", NULL);
    long talk = h_json_long(call, "attempts.0.talk_ms");
    cr_expect(talk < 10000, "talked %ld ms after an invalid document", talk);
    free(call);
    free(id);
    stack_down();
}
