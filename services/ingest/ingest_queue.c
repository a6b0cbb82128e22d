/*
 * Handlers for a deployment's queue as a whole: cancel every pending call,
 * pause and resume releasing, and the counts per state. Cancelling the queue
 * travels through outbound.call-requests behind the calls it concerns, so it
 * covers every call accepted before it, recorded yet or not.
 */
#include "ingest_queue.h"
#include "ingest_calls.h"
#include "ingest_deployment.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ob_log.h"
#include "ob_proto.h"
#include "ob_uuid.h"
#include "ob_window.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ingest_send_cancel(ingest_call_t *c, const char *what, char command_id[37],
                        int64_t *requested_at_ms)
{
    ob_err_t err = {{0}};
    ob_uuid_v7(command_id);
    ob_cancel_deployment_t m = {
        .command_id = command_id,
        .deployment_id = (char *)c->param[0],
        .account_id = (char *)c->account_id,
        .request_id = c->req->req_id,
        .requested_at_ms = ob_now_ms(),
    };
    char *msg = ob_pool_adopt(c->req->pool, ob_cancel_deployment_encode(&m));
    if (ingest_send_request(c->ctx, m.deployment_id, msg, &err) != OB_OK) {
        ob_http_add_header(c->req, "Retry-After", "1");
        ob_http_problem(c->req, 503, "queue_unavailable", NULL, "%s (%s); retry", what, err.msg);
        return false;
    }
    *requested_at_ms = m.requested_at_ms;
    /* Releases stop at once for the calls it covers; if this fails, the
     * command still cancels them when the scheduler reaches it. */
    if (ingest_store_mark_cancel(c->conn, m.deployment_id, m.requested_at_ms, &err) != OB_OK)
        OB_WARN("api", "cancel marker not set (the command still applies): %s", err.msg);
    return true;
}

void ingest_cancel_queue(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    char command_id[OB_UUID_STRLEN + 1], at[32];
    int64_t requested_at_ms = 0;

    if (!ingest_load_deployment(c, c->param[0], false, &dep) ||
        !ingest_send_cancel(c, "the cancellation was not accepted", command_id, &requested_at_ms))
        return;
    ob_time_format_rfc3339(requested_at_ms, at, sizeof(at));
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "command_id", command_id);
    cJSON_AddStringToObject(ans, "deployment_id", c->param[0]);
    cJSON_AddStringToObject(ans, "requested_at", at);
    cJSON_AddStringToObject(ans, "detail",
                            "every call accepted before requested_at that has not started "
                            "dialing ends as uncalled with reason cancelled");
    ob_http_reply_json(req, 202, ans);
    cJSON_Delete(ans);
}

static void set_paused(ingest_call_t *c, bool paused)
{
    deployment_t dep;
    ob_err_t err = {{0}};
    if (!ingest_load_deployment(c, c->param[0], false, &dep))
        return;
    if (ingest_store_set_paused(c->conn, c->param[0], c->account_id, paused, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    OB_LOG(OB_LOG_INFO, "api", OB_KV("deployment_id", c->param[0], "req_id", c->req->req_id),
           "queue %s", paused ? "paused" : "resumed");
    ingest_queue_summary(c);
}

void ingest_pause_queue(ingest_call_t *c)
{
    set_paused(c, true);
}

void ingest_resume_queue(ingest_call_t *c)
{
    set_paused(c, false);
}

/* An instant as RFC 3339 UTC for a JSON answer, or null for -1. */
static cJSON *instant(int64_t ms)
{
    char text[40];
    if (ms < 0)
        return cJSON_CreateNull();
    ob_time_format_rfc3339(ms, text, sizeof(text));
    return cJSON_CreateString(text);
}

/*
 * The campaign window as users see it: whether it is open now and when it
 * next opens and closes (null when that depends on each callee's zone, or
 * does not happen within a year), and its definition (null: always open).
 */
static cJSON *window_state(const char *text)
{
    ob_window_t *w = NULL;
    ob_err_t err = {{0}};
    cJSON *out = cJSON_CreateObject();
    int64_t now = ob_now_ms();
    bool parsed = ob_window_parse(text, &w, &err) == OB_OK;
    if (!parsed || ob_window_uses_callee_zone(w)) {
        /* Open or not depends on each callee's zones. */
        cJSON_AddNullToObject(out, "open");
        cJSON_AddNullToObject(out, "next_open");
        cJSON_AddNullToObject(out, "next_close");
    } else {
        bool open = ob_window_open_at(w, NULL, 0, now);
        cJSON_AddBoolToObject(out, "open", open);
        cJSON_AddItemToObject(out, "next_open",
                              instant(open ? now : ob_window_next_open(w, NULL, 0, now)));
        cJSON_AddItemToObject(out, "next_close", instant(ob_window_next_close(w, NULL, 0, now)));
    }
    cJSON_AddItemToObject(out, "definition", text ? cJSON_Parse(text) : cJSON_CreateNull());
    ob_window_free(w);
    return out;
}

void ingest_queue_summary(ingest_call_t *c)
{
    char *json = NULL, *window = NULL;
    ob_err_t err = {{0}};
    const char *id = c->param[0];
    if (ob_uuid_valid(id) && ingest_store_queue_summary(c->conn, c->req->pool, id, c->account_id,
                                                        &json, &window, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    if (!json) {
        ob_http_problem(c->req, 404, "deployment_not_found", NULL, "no deployment %s", id);
        return;
    }
    cJSON *summary = cJSON_Parse(json);
    cJSON_AddItemToObject(summary, "window", window_state(window));
    ob_http_reply_json(c->req, 200, summary);
    cJSON_Delete(summary);
}
