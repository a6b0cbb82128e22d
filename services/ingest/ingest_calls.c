/*
 * Handlers for single calls: queue one, read one, list a deployment's calls,
 * cancel one. A call is answered 202 only after the broker acknowledged its
 * request message, so an accepted call_id is always durably in Kafka.
 */
#include "ingest_calls.h"
#include "ingest_accepted.h"
#include "ingest_deployment.h"
#include "ingest_idempotency.h"
#include "ingest_limits.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ingest_time.h"
#include "ob_appdoc.h"
#include "ob_calls.h"
#include "ob_json.h"
#include "ob_log.h"
#include "ob_phone.h"
#include "ob_proto.h"
#include "ob_service.h"
#include "ob_url.h"
#include "ob_uuid.h"
#include "ob_vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFERENCE_LEN    1024
#define MAX_PARAMETERS_LEN   65536
#define MAX_PARAMETERS_DEPTH 16

static int json_depth(const cJSON *item)
{
    int deepest = 0;
    const cJSON *child;
    cJSON_ArrayForEach(child, item)
    {
        int d = json_depth(child);
        deepest = d > deepest ? d : deepest;
    }
    return (cJSON_IsObject(item) || cJSON_IsArray(item)) ? deepest + 1 : 0;
}

static bool int_in(const cJSON *item, long lo, long hi, long *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        item->valuedouble < lo || item->valuedouble > hi)
        return false;
    *out = (long)item->valuedouble;
    return true;
}

/* The results a retry rule may name, as "busy, noanswer, ..." (pool-owned). */
static const char *retried_results(ob_pool_t *pool)
{
    const char *text = "";
    for (int r = OB_RESULT_RETRIED_FIRST; r <= OB_RESULT_RETRIED_LAST; r++)
        text = ob_pool_printf(pool, "%s%s%s", text, r == OB_RESULT_RETRIED_FIRST ? "" : ", ",
                              ob_result_name((ob_result_t)r));
    return text;
}

char *ingest_retry_rules(ob_pool_t *pool, const cJSON *rules, const char *field, cJSON *errors)
{
    int before = cJSON_GetArraySize(errors);
    const cJSON *rule;
    long v = 0;
    if (!cJSON_IsObject(rules)) {
        ingest_add_error(errors, field, "invalid_type",
                         ob_pool_printf(pool,
                                        "%s must be an object mapping a result (%s) to seconds or"
                                        " \"never\"",
                                        field, retried_results(pool)));
        return NULL;
    }
    cJSON_ArrayForEach(rule, rules)
    {
        const char *name = ob_pool_printf(pool, "%s.%s", field, rule->string);
        ob_result_t result;
        if (!ob_result_parse(rule->string, &result) || !ob_result_retried(result))
            ingest_add_error(errors, name, "unknown_result",
                             ob_pool_printf(pool,
                                            "'%s' is not a result that is retried (%s); answered"
                                            " calls are never retried",
                                            rule->string, retried_results(pool)));
        else if (!(cJSON_IsString(rule) && strcmp(rule->valuestring, "never") == 0) &&
                 !int_in(rule, 60, 172800, &v))
            ingest_add_error(
                errors, name, "out_of_range",
                ob_pool_printf(pool, "%s must be seconds from 60 to 172800, or \"never\"", name));
    }
    if (cJSON_GetArraySize(errors) != before)
        return NULL;
    char *printed = cJSON_PrintUnformatted(rules);
    char *out = ob_pool_strdup(pool, printed);
    cJSON_free(printed);
    return out;
}

char *ingest_app(ob_pool_t *pool, const cJSON *app, cJSON *errors)
{
    char *text = cJSON_PrintUnformatted(app);
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    char *out = NULL;
    if (ob_appdoc_parse(text, strlen(text), &doc, &err) == OB_OK) {
        out = ob_pool_strdup(pool, text);
        ob_appdoc_clear(&doc);
    } else {
        ingest_add_error(
            errors, "app", "invalid_app",
            strncmp(err.msg, "app:", 4) == 0 ? err.msg : ob_pool_printf(pool, "app: %s", err.msg));
    }
    cJSON_free(text);
    return out;
}

bool ingest_app_problem(ob_http_req_t *req, cJSON *errors)
{
    const cJSON *only = cJSON_GetArraySize(errors) == 1 ? cJSON_GetArrayItem(errors, 0) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(only, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(only, "message");
    if (!cJSON_IsString(code) || strcmp(code->valuestring, "invalid_app") != 0 ||
        !cJSON_IsString(msg))
        return false;
    /* Copied: ob_http_problem consumes errors, which holds the message. */
    char *detail = ob_pool_strdup(req->pool, msg->valuestring);
    ob_http_problem(req, 422, "invalid_app", errors, "%s", detail);
    return true;
}

void ingest_call_problem(ob_http_req_t *req, cJSON *errors)
{
    if (!ingest_app_problem(req, errors))
        ob_http_problem(req, 422, "validation_failed", errors, "the call has %d invalid field(s)",
                        cJSON_GetArraySize(errors));
}

/* Validates one call object into m (strings pool-owned). Every
 * problem is appended to errors; returns true when there were none. */
bool ingest_validate_call(ob_pool_t *pool, const cJSON *body, const deployment_t *dep,
                          ob_call_request_t *m, cJSON *errors)
{
    static const char *const known[] = {
        "phone_number", "message_reference", "call_parameters", "max_attempts",
        "max_retries",  "retry_interval_s",  "retry_rules",     "priority",
        "not_before",   "expires_at",        "result_url",      "app",
    };
    int before = cJSON_GetArraySize(errors);
    bool plum = m->queued_via && strcmp(m->queued_via, "plum") == 0;
    const cJSON *item;
    ob_phone_t phone;
    ob_err_t err = {{0}};
    long v = 0;

    cJSON_ArrayForEach(item, body)
    {
        bool ok = false;
        for (size_t i = 0; i < OB_COUNTOF(known) && !ok; i++)
            ok = strcmp(item->string, known[i]) == 0;
        /* The Plum routes take Plum's fields only, as before documents. */
        if (ok && plum && strcmp(item->string, "app") == 0)
            ok = false;
        if (!ok)
            ingest_add_error(errors, item->string, "unknown_field",
                             ob_pool_printf(pool, "'%s' is not a call field", item->string));
    }
    /* JSON was checked as it was parsed; form fields and CSV cells are not. */
    const char *bad_text = ob_json_bad_text_field(pool, body);
    if (bad_text)
        ingest_add_error(
            errors, bad_text, "invalid_text",
            ob_pool_printf(pool, "%s is not UTF-8 text without NUL characters", bad_text));

    item = cJSON_GetObjectItemCaseSensitive(body, "phone_number");
    if (!item)
        ingest_add_error(errors, "phone_number", "required", "phone_number is required");
    else if (!cJSON_IsString(item))
        ingest_add_error(errors, "phone_number", "invalid_type", "phone_number must be a string");
    else if (ob_phone_parse_region(item->valuestring, dep->region, &phone, &err) != OB_OK)
        ingest_add_error(errors, "phone_number", "invalid_phone_number", err.msg);
    else {
        m->phone_number = ob_pool_strdup(pool, phone.e164);
        m->caller_id = phone.caller_id[0]  ? ob_pool_strdup(pool, phone.caller_id)
                       : dep->caller_id[0] ? ob_pool_strdup(pool, dep->caller_id)
                                           : NULL;
        m->post_dial = phone.post_dial[0] ? ob_pool_strdup(pool, phone.post_dial) : NULL;
    }

    item = cJSON_GetObjectItemCaseSensitive(body, "message_reference");
    if (item && (!cJSON_IsString(item) || strlen(item->valuestring) > MAX_REFERENCE_LEN))
        ingest_add_error(errors, "message_reference", "invalid_value",
                         "message_reference must be a string of at most 1024 bytes");
    else if (item)
        m->message_reference = ob_pool_strdup(pool, item->valuestring);

    item = cJSON_GetObjectItemCaseSensitive(body, "call_parameters");
    if (item && !cJSON_IsObject(item)) {
        ingest_add_error(errors, "call_parameters", "invalid_type",
                         "call_parameters must be an object");
    } else if (item && json_depth(item) > MAX_PARAMETERS_DEPTH) {
        ingest_add_error(errors, "call_parameters", "too_deep",
                         "call_parameters must not nest deeper than 16 levels");
    } else if (item) {
        char *text = cJSON_PrintUnformatted(item);
        if (strlen(text) > MAX_PARAMETERS_LEN)
            ingest_add_error(errors, "call_parameters", "too_large",
                             "call_parameters must be at most 65536 bytes of JSON");
        else
            m->call_parameters = ob_pool_strdup(pool, text);
        cJSON_free(text);
    }

    m->max_attempts = dep->max_attempts;
    item = cJSON_GetObjectItemCaseSensitive(body, "max_attempts");
    const cJSON *retries = cJSON_GetObjectItemCaseSensitive(body, "max_retries");
    if (item && !int_in(item, 1, 10, &v))
        ingest_add_error(errors, "max_attempts", "out_of_range",
                         "max_attempts must be an integer from 1 to 10");
    else if (item)
        m->max_attempts = v;
    /* Plum DEV's max_retries counts the attempts after the first. */
    if (retries && item)
        ingest_add_error(errors, "max_retries", "conflict",
                         "give max_attempts or max_retries (attempts after the first), not both");
    else if (retries && !int_in(retries, 0, 10, &v))
        ingest_add_error(errors, "max_retries", "out_of_range",
                         "max_retries must be an integer from 0 to 10");
    else if (retries)
        m->max_attempts = v + 1;

    item = cJSON_GetObjectItemCaseSensitive(body, "retry_rules");
    if (item)
        m->retry_rules = ingest_retry_rules(pool, item, "retry_rules", errors);

    m->retry_interval_s = dep->retry_interval_s;
    item = cJSON_GetObjectItemCaseSensitive(body, "retry_interval_s");
    if (item && !int_in(item, 60, 172800, &v))
        ingest_add_error(errors, "retry_interval_s", "out_of_range",
                         "retry_interval_s must be an integer from 60 to 172800 (seconds)");
    else if (item)
        m->retry_interval_s = v;

    item = cJSON_GetObjectItemCaseSensitive(body, "priority");
    if (item && !int_in(item, -1000, 1000, &v))
        ingest_add_error(errors, "priority", "out_of_range",
                         "priority must be an integer from -1000 to 1000");
    else if (item)
        m->priority = v;

    m->not_before_ms = m->accepted_at_ms;
    item = cJSON_GetObjectItemCaseSensitive(body, "not_before");
    if (item && !ingest_parse_time(item, &m->not_before_ms))
        ingest_add_error(errors, "not_before", "invalid_time",
                         "not_before must be unix seconds or an RFC 3339 time with offset");
    item = cJSON_GetObjectItemCaseSensitive(body, "expires_at");
    if (item && !ingest_parse_time(item, &m->expires_at_ms))
        ingest_add_error(errors, "expires_at", "invalid_time",
                         "expires_at must be unix seconds or an RFC 3339 time with offset");
    else if (item && m->expires_at_ms <= (m->not_before_ms > m->accepted_at_ms ? m->not_before_ms
                                                                               : m->accepted_at_ms))
        ingest_add_error(errors, "expires_at", "already_expired",
                         "expires_at must be later than now and than not_before");

    item = cJSON_GetObjectItemCaseSensitive(body, "result_url");
    if (item && !cJSON_IsString(item))
        ingest_add_error(errors, "result_url", "invalid_url",
                         "result_url must be an http or https URL");
    else if (item && ob_url_check("result_url", item->valuestring, &err) != OB_OK)
        ingest_add_error(errors, "result_url", "invalid_url", err.msg);
    else if (item)
        m->result_url = ob_pool_strdup(pool, item->valuestring);

    /* null: none, the deployment's runs. */
    item = cJSON_GetObjectItemCaseSensitive(body, "app");
    if (item && !plum && !cJSON_IsNull(item))
        m->app = ingest_app(pool, item, errors);

    return cJSON_GetArraySize(errors) == before;
}

void ingest_queue_json(ingest_call_t *c, const deployment_t *dep, const cJSON *body,
                       const char *body_hash)
{
    ingest_ctx_t *ctx = c->ctx;
    ob_http_req_t *req = c->req;
    const char *deployment_id = c->param[0];
    ob_call_request_t m = {0};
    char call_id[OB_UUID_STRLEN + 1];
    ob_err_t err = {{0}};
    cJSON *errors = NULL;
    int64_t key_ms = 0;
    ingest_idem_t idem = ingest_idem_claim(c, body_hash, &key_ms);

    if (idem == INGEST_IDEM_DONE)
        return;
    if (!ingest_check_pending(c, deployment_id, 1))
        goto out;
    if (idem == INGEST_IDEM_CLAIMED)
        ingest_idem_call_id(c->account_id, ob_http_header(req, "Idempotency-Key"), key_ms, 0,
                            call_id);
    else
        ob_uuid_v7(call_id);
    m.call_id = call_id;
    m.deployment_id = (char *)deployment_id;
    m.account_id = (char *)c->account_id;
    m.request_id = req->req_id;
    m.queued_via = (char *)c->queued_via;
    m.accepted_at_ms = ob_now_ms();
    errors = cJSON_CreateArray();
    if (!ingest_validate_call(req->pool, body, dep, &m, errors)) {
        ingest_call_problem(req, errors);
        errors = NULL;
        goto out;
    }
    char *msg = ob_pool_adopt(req->pool, ob_call_request_encode(&m));
    /* The database connection is not needed while Kafka acknowledges: hand
     * it back so other requests can use it meanwhile. */
    ob_pg_pool_put(ctx->pg, c->conn);
    c->conn = NULL;
    ob_rc_t rc = ingest_send_request(ctx, deployment_id, msg, &err);
    if (rc != OB_OK) {
        ob_metric_add(&ctx->metrics[M_KAFKA_FAILURES], 1);
        OB_LOG(OB_LOG_WARN, "api", OB_KV("req_id", req->req_id, "deployment_id", deployment_id),
               "call not accepted: %s", err.msg);
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, rc == OB_EAGAIN ? "overloaded" : "queue_unavailable", NULL,
                        "the call was not accepted (%s); retry later", err.msg);
        goto out;
    }
    ob_metric_add(&ctx->metrics[M_CALLS_QUEUED], 1);
    ingest_limits_add_pending(ctx->limits, deployment_id, 1);
    cJSON *ans = cJSON_CreateObject();
    char *self = ob_pool_printf(req->pool, "/api/v1/calls/%s", call_id);
    cJSON_AddStringToObject(ans, "call_id", call_id);
    cJSON_AddStringToObject(ans, "state", ob_state_name(OB_STATE_QUEUED));
    cJSON_AddStringToObject(ans, "deployment_id", deployment_id);
    cJSON_AddStringToObject(ans, "phone_number", m.phone_number);
    cJSON_AddItemToObject(ans, "links", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(ans, "links"), "self", self);
    ob_http_add_header(req, "Location", self);
    ob_http_reply_json(req, 202, ans);
    cJSON_Delete(ans);
    OB_LOG(OB_LOG_DEBUG, "api", OB_KV("call_id", call_id, "deployment_id", deployment_id),
           "call accepted");
out:
    if (idem == INGEST_IDEM_CLAIMED)
        ingest_idem_store(c);
    cJSON_Delete(errors);
}

void ingest_queue_call(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    char hash[65] = "";

    if (!ingest_load_deployment(c, c->param[0], true, &dep) || !ingest_require_json(req))
        return;
    ob_json_fault_t fault = OB_JSON_OK;
    cJSON *body = ob_json_parse(req->body, req->body_len, NULL, &fault);
    const char *why = ob_json_fault_text(fault);
    if (!body || !cJSON_IsObject(body)) {
        ob_http_problem(
            req, 400, "invalid_json", NULL,
            "%s%sthe body must be a JSON object such as {\"phone_number\": \"+12125550100\"}",
            why ? why : "", why ? ": " : "");
        cJSON_Delete(body);
        return;
    }
    ingest_sha256_hex(req->body, req->body_len, hash);
    ingest_queue_json(c, &dep, body, hash);
    cJSON_Delete(body);
}

/* How long a GET that found nothing waits for this ingest to read what
 * every ingest had accepted until then. */
#define UNRECORDED_WAIT_MS 2000
/* How long a cancel of a call accepted and not recorded yet waits for the
 * record before it answers 409 call_not_recorded. */
#define CANCEL_RECORD_WAIT_MS 5000

/* How long a lookup may wait for the reader: not at all while Kafka is
 * unreachable, when asking for the watermarks would hold an HTTP thread for
 * the whole wait (a soak's broker outage filled the pool with them). */
static int unrecorded_wait_ms(const ingest_ctx_t *ctx)
{
    return ingest_kafka_usable(ctx) ? UNRECORDED_WAIT_MS : 0;
}

static void add_time(cJSON *o, const char *name, int64_t unix_ms)
{
    char t[40];
    if (!unix_ms) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    ob_time_format_rfc3339(unix_ms, t, sizeof(t));
    cJSON_AddStringToObject(o, name, t);
}

static void add_text(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* An accepted call the scheduler has not recorded yet, as the call view
 * (native) or call_details (Plum) says it: queued, with what its request
 * said, and "recorded": false. */
static cJSON *unrecorded_view(const ob_call_request_t *m, bool plum)
{
    cJSON *o = cJSON_CreateObject(), *d = o;
    cJSON *params = m->call_parameters ? cJSON_Parse(m->call_parameters) : NULL;
    cJSON_AddStringToObject(o, "call_id", m->call_id);
    if (plum) {
        /* plum_call_details()'s members (migration 026), as far as known. */
        d = cJSON_AddObjectToObject(o, "call_details");
        cJSON_AddStringToObject(d, "call_id", m->call_id);
        cJSON_AddStringToObject(d, "status", "queued");
    } else {
        cJSON_AddStringToObject(o, "deployment_id", m->deployment_id);
    }
    cJSON_AddStringToObject(d, "state", ob_state_name(OB_STATE_QUEUED));
    if (!plum)
        cJSON_AddNullToObject(d, "status");
    cJSON_AddNullToObject(d, "result");
    cJSON_AddNullToObject(d, "reason");
    cJSON_AddStringToObject(d, "phone_number", m->phone_number);
    if (!plum) {
        add_text(d, "caller_id", m->caller_id);
        add_text(d, "post_dial", m->post_dial);
    }
    add_text(d, "message_reference", m->message_reference);
    cJSON_AddItemToObject(d, "call_parameters", params ? params : cJSON_CreateObject());
    if (!plum) {
        cJSON *app = m->app ? cJSON_Parse(m->app) : NULL;
        cJSON_AddItemToObject(d, "app", app ? app : cJSON_CreateNull());
    }
    cJSON_AddNumberToObject(d, plum ? "attempts" : "attempts_made", 0);
    cJSON_AddNumberToObject(d, "max_attempts", (double)m->max_attempts);
    cJSON_AddNumberToObject(d, plum ? "reattempt_wait" : "retry_interval_s",
                            (double)m->retry_interval_s);
    if (plum) {
        cJSON_AddNumberToObject(d, "queued_timestamp", (double)(m->accepted_at_ms / 1000));
        cJSON_AddNullToObject(d, "last_attempt_timestamp");
        cJSON_AddNumberToObject(d, "start_timestamp", (double)(m->not_before_ms / 1000));
        if (m->expires_at_ms)
            cJSON_AddNumberToObject(d, "end_timestamp", (double)(m->expires_at_ms / 1000));
        else
            cJSON_AddNullToObject(d, "end_timestamp");
        cJSON_AddNullToObject(d, "completed_timestamp");
        cJSON_AddNumberToObject(d, "duration", 0);
    } else {
        cJSON_AddNumberToObject(d, "priority", (double)m->priority);
        cJSON *rules = m->retry_rules ? cJSON_Parse(m->retry_rules) : NULL;
        cJSON_AddItemToObject(d, "retry_rules", rules ? rules : cJSON_CreateObject());
        add_time(d, "accepted_at", m->accepted_at_ms);
        add_time(d, "not_before", m->not_before_ms ? m->not_before_ms : m->accepted_at_ms);
        add_time(d, "expires_at", m->expires_at_ms);
        cJSON_AddNullToObject(d, "next_attempt_at");
        cJSON_AddStringToObject(d, "waiting_for", "recording");
        add_time(d, "updated_at", m->accepted_at_ms);
        cJSON_AddNullToObject(d, "completed_at");
        cJSON_AddNullToObject(d, "duration_s");
        cJSON_AddNullToObject(d, "digits");
        cJSON_AddArrayToObject(d, "attempts");
    }
    cJSON_AddArrayToObject(d, "events");
    cJSON_AddFalseToObject(o, "recorded");
    return o;
}

typedef enum { STORED, NOT_STORED, STORE_FAILED } stored_t;

/* The call's stored view into *body (pool-owned); on STORE_FAILED the 503
 * problem is set. */
static stored_t stored_view(ingest_call_t *c, ingest_view_t view, const char *id, char **body)
{
    ob_err_t err = {{0}};
    if (ingest_store_view(c->conn, c->req->pool, view, id, c->account_id, body, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return STORE_FAILED;
    }
    return *body ? STORED : NOT_STORED;
}

void ingest_reply_call(ingest_call_t *c, ingest_view_t stored, bool plum)
{
    const char *id = c->param[0];
    ob_call_request_t m = {0};
    char *body = NULL;
    ingest_accepted_rc_t found = INGEST_ACCEPTED_UNKNOWN;
    if (ob_uuid_valid(id)) {
        if (stored_view(c, stored, id, &body) != NOT_STORED)
            goto out;
        /* Not recorded yet, or never accepted. Pruned from the calls held
         * only once recorded, so a miss in both looks at the store again. */
        found = ingest_accepted_find(c->ctx->accepted, id, unrecorded_wait_ms(c->ctx), &m);
        if (found == INGEST_ACCEPTED_FOUND && strcmp(m.account_id, c->account_id) == 0) {
            cJSON *view = unrecorded_view(&m, plum);
            ob_http_reply_json(c->req, 200, view);
            cJSON_Delete(view);
            goto out;
        }
        if (found != INGEST_ACCEPTED_FOUND && stored_view(c, stored, id, &body) != NOT_STORED)
            goto out;
    }
    if (found == INGEST_ACCEPTED_BEHIND) {
        ob_http_add_header(c->req, "Retry-After", "1");
        ob_http_problem(c->req, 503, "recording_behind", NULL,
                        "call %s is not recorded and this server has not yet read every call"
                        " accepted until now; retry shortly",
                        id);
    } else {
        ob_http_problem(c->req, 404, "call_not_found", NULL, "no call %s", id);
    }
out:
    if (body)
        ob_http_reply(c->req, 200, "application/json", body, strlen(body));
    ob_call_request_clear(&m);
}

void ingest_get_call(ingest_call_t *c)
{
    ingest_reply_call(c, INGEST_VIEW_CALL, false);
}

/* The filters' values: a state, or "pending" (any state but completed); a
 * final status; a result. */
static bool state_known(const char *v)
{
    ob_state_t state;
    return strcmp(v, "pending") == 0 || ob_state_parse(v, &state);
}

static bool status_known(const char *v)
{
    ob_status_t status;
    return ob_status_parse(v, &status);
}

static bool result_known(const char *v)
{
    ob_result_t result;
    return ob_result_parse(v, &result);
}

/* Checks an enumerated filter; on failure the error is appended. */
static const char *enum_filter(ingest_call_t *c, const char *name, bool (*known)(const char *),
                               cJSON *errors)
{
    const char *v = ob_http_query(c->req, name);
    if (!v)
        return NULL;
    if (known(v))
        return v;
    ingest_add_error(errors, name, "invalid_value",
                     ob_pool_printf(c->req->pool, "%s \"%.40s\" is not a known value", name, v));
    return NULL;
}

void ingest_list_calls(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    cJSON *errors = cJSON_CreateArray();
    ingest_page_t page = {0};
    ob_err_t err = {{0}};
    char since[32] = "", until[32] = "", limit[16];
    int64_t ms = 0;

    if (!ingest_load_deployment(c, c->param[0], false, &dep))
        goto out;
    const char *state = enum_filter(c, "state", state_known, errors);
    const char *status = enum_filter(c, "status", status_known, errors);
    const char *result = enum_filter(c, "result", result_known, errors);
    const char *ref = ob_http_query(req, "message_reference");
    const char *cursor = NULL;
    const char *v;
    if ((v = ob_http_query(req, "since")) && !ingest_parse_time_text(v, &ms))
        ingest_add_error(errors, "since", "invalid_time", "since must be unix seconds or RFC 3339");
    else if (v)
        snprintf(since, sizeof(since), "%lld", (long long)ms);
    if ((v = ob_http_query(req, "until")) && !ingest_parse_time_text(v, &ms))
        ingest_add_error(errors, "until", "invalid_time", "until must be unix seconds or RFC 3339");
    else if (v)
        snprintf(until, sizeof(until), "%lld", (long long)ms);
    const char *upload = ob_http_query(req, "upload_id");
    if (upload && !ob_uuid_valid(upload))
        ingest_add_error(errors, "upload_id", "invalid_value", "upload_id must be an upload's id");
    /* A number is matched in E.164, read as the deployment reads its calls'. */
    const char *number = NULL;
    ob_phone_t phone;
    if ((v = ob_http_query(req, "phone_number"))) {
        ob_err_t perr = {{0}};
        if (ob_phone_parse_region(v, dep.region, &phone, &perr) != OB_OK)
            ingest_add_error(errors, "phone_number", "invalid_phone_number", perr.msg);
        else
            number = phone.e164;
    }
    ingest_page_query(req, 50, &cursor, limit, errors);
    if (cJSON_GetArraySize(errors) > 0) {
        ob_http_problem(req, 400, "invalid_query", errors, "the query has %d invalid parameter(s)",
                        cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }
    ingest_calls_query_t q = {
        .deployment_id = c->param[0],
        .account_id = c->account_id,
        .state = state,
        .status = status,
        .result = result,
        .message_reference = ref,
        .since_ms = since[0] ? since : NULL,
        .until_ms = until[0] ? until : NULL,
        .cursor = cursor,
        .limit = limit,
        .upload_id = upload,
        .phone_number = number,
    };
    if (ingest_store_list_calls(c->conn, req->pool, &q, &page, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        goto out;
    }
    ingest_reply_page(req, "calls", &page, atol(limit));
out:
    cJSON_Delete(errors);
}

void ingest_cancel_call(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    const char *call_id = c->param[0];
    char *deployment_id = NULL, *state_text = NULL, *reason_text = NULL;
    ob_err_t err = {{0}};
    int cancelled = 0;

    if (!ob_uuid_valid(call_id)) {
        ob_http_problem(req, 404, "call_not_found", NULL, "no call %s", call_id);
        return;
    }
    ingest_accepted_rc_t found = INGEST_ACCEPTED_UNKNOWN;
    int64_t until = 0;
    bool looked_again = false;
    for (;;) {
        if (ingest_store_call_state(c->conn, req->pool, call_id, c->account_id, &deployment_id,
                                    &state_text, &reason_text, &err) != OB_OK) {
            ingest_database_problem(req, &err);
            return;
        }
        if (deployment_id)
            break;
        /* Accepted but not recorded yet: the cancel guards the record, so it
         * waits for it (the scheduler records within a second at rest)
         * rather than answer "retry", during which the call could be
         * released and dialed. */
        if (!until) {
            ob_call_request_t m = {0};
            found = ingest_accepted_find(c->ctx->accepted, call_id, unrecorded_wait_ms(c->ctx), &m);
            if (found == INGEST_ACCEPTED_FOUND && strcmp(m.account_id, c->account_id) != 0)
                found = INGEST_ACCEPTED_UNKNOWN;
            ob_call_request_clear(&m);
            until = ob_mono_ms() + CANCEL_RECORD_WAIT_MS;
        }
        /* Not among the calls held: recorded meanwhile (the store is asked
         * once more) or never accepted. */
        if (found != INGEST_ACCEPTED_FOUND && looked_again)
            break;
        looked_again = found != INGEST_ACCEPTED_FOUND;
        if (ob_mono_ms() >= until)
            break;
        if (!looked_again)
            ob_service_sleep(50);
    }
    if (!deployment_id) {
        if (found == INGEST_ACCEPTED_FOUND) {
            ob_http_add_header(req, "Retry-After", "1");
            ob_http_problem(req, 409, "call_not_recorded", NULL,
                            "call %s was accepted and is not recorded yet; retry the cancel"
                            " in a second",
                            call_id);
        } else if (found == INGEST_ACCEPTED_BEHIND) {
            ob_http_add_header(req, "Retry-After", "1");
            ob_http_problem(req, 503, "recording_behind", NULL,
                            "call %s is not recorded and this server has not yet read every"
                            " call accepted until now; retry shortly",
                            call_id);
        } else {
            ob_http_problem(req, 404, "call_not_found", NULL, "no call %s", call_id);
        }
        return;
    }
    ob_state_t state = OB_STATE_QUEUED;
    ob_reason_t reason = OB_REASON_ANSWERED;
    bool done_before = ob_state_parse(state_text, &state) && state == OB_STATE_COMPLETED;
    bool cancelled_before =
        done_before && ob_reason_parse(reason_text, &reason) && reason == OB_REASON_CANCELLED;
    /* While the broker is away the events wait for the scheduler's relay:
     * waiting here for their delivery to time out (10 s) held this thread,
     * and every request libmicrohttpd had given it, that long (the hard
     * soak: a call sent during a broker outage answered after 10 s). */
    ob_producer_t *events = ingest_kafka_usable(c->ctx) ? c->ctx->producer : NULL;
    if (!done_before &&
        ob_calls_cancel(c->conn, events, c->ctx->topic_events, c->ctx->source, deployment_id,
                        call_id, ob_now_ms(), &cancelled, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        return;
    }
    if (done_before && !cancelled_before) {
        ob_http_problem(req, 409, "call_completed", NULL, "call %s has already completed", call_id);
        return;
    }
    ingest_get_call(c); /* 200 with the cancelled call */
    /* Being dialed: the attempt goes on, but no other follows it (the call
     * was marked); accepted, not done yet. */
    if (cancelled == 0 && !cancelled_before && req->status == 200)
        req->status = 202;
}

bool ingest_check_pending(ingest_call_t *c, const char *deployment_id, long adding)
{
    ingest_limits_t *l = c->ctx->limits;
    long n = ingest_limits_pending(l, deployment_id, 1000);
    if (n < 0) {
        ob_err_t err = {{0}};
        if (ingest_store_pending_count(c->conn, deployment_id, &n, &err) != OB_OK) {
            ingest_database_problem(c->req, &err);
            return false;
        }
        ingest_limits_set_pending(l, deployment_id, n);
    }
    if (n + adding <= ingest_limits_max_pending(l))
        return true;
    ob_http_add_header(c->req, "Retry-After", "60");
    ob_http_problem(c->req, 429, "deployment_pending_limit", NULL,
                    "deployment %s already has %ld pending calls, the most allowed (%ld); wait"
                    " for some to complete",
                    deployment_id, n, ingest_limits_max_pending(l));
    return false;
}

bool ingest_kafka_usable(const ingest_ctx_t *ctx)
{
    return __atomic_load_n(&ctx->kafka_up, __ATOMIC_RELAXED) &&
           !ob_producer_brokers_down(ctx->producer);
}

ob_rc_t ingest_send_request(ingest_ctx_t *ctx, const char *key, const char *msg, ob_err_t *err)
{
    /* Waiting only as long as message.timeout.ms would answer 503 while the
     * message still sits in librdkafka's queue: it would then be delivered
     * when the broker returns, a call the client was told to retry (found by
     * tests/soak). The report comes by message.timeout.ms, so the wait ends
     * with the message's real fate. While the broker does not answer the
     * once-a-second metadata check, or from the moment librdkafka lost its
     * connection to every broker, calls are refused at once rather than
     * after the ack timeout. */
    if (!ingest_kafka_usable(ctx)) {
        ob_err_set(err, "kafka unreachable");
        return OB_ERR;
    }
    ob_rc_t rc = ob_producer_send_sync(ctx->producer, ctx->topic_requests, key, msg, strlen(msg),
                                       (int)ctx->cfg->ack_timeout_ms + INGEST_REPORT_GRACE_MS, err);
    if (rc == OB_ETIMEOUT)
        OB_ERROR("api",
                 "no delivery report %lld ms after message.timeout.ms: the message may"
                 " still be delivered",
                 (long long)INGEST_REPORT_GRACE_MS);
    return rc;
}

ob_rc_t ingest_offer_call(ingest_ctx_t *ctx, ob_produce_batch_t *batch, const cJSON *call,
                          const deployment_t *dep, ob_call_request_t *m, cJSON *errors,
                          bool *queued, ob_err_t *err)
{
    ob_pool_t *pool = ob_pool_new(); /* per call, so a long stream does not grow */
    ob_rc_t rc = OB_OK;
    *queued = false;
    m->accepted_at_ms = ob_now_ms();
    if (ingest_validate_call(pool, call, dep, m, errors)) {
        char *msg = ob_call_request_encode(m);
        rc = ob_produce_batch_add(ctx->bulk, batch, ctx->topic_requests, m->deployment_id, msg,
                                  strlen(msg), 30000, err);
        free(msg);
        *queued = rc == OB_OK;
        if (*queued) {
            ob_metric_add(&ctx->metrics[M_CALLS_QUEUED], 1);
            ingest_limits_add_pending(ctx->limits, m->deployment_id, 1);
        }
    }
    ob_pool_free(pool);
    return rc;
}

cJSON *ingest_cell_value(const char *text)
{
    char *end = NULL;
    double d = strtod(text, &end);
    if (end != text && *end == '\0' && text[strspn(text, "0123456789-+.")] == '\0')
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(text);
}

cJSON *ingest_stream_defaults(ob_http_req_t *req, const deployment_t *dep)
{
    static const char *const numeric[] = {"max_attempts", "retry_interval_s", "priority"};
    static const char *const text[] = {"not_before", "expires_at"};
    cJSON *defaults = cJSON_CreateObject();
    for (size_t i = 0; i < OB_COUNTOF(numeric); i++) {
        const char *v = ob_http_query(req, numeric[i]);
        if (v)
            cJSON_AddItemToObject(defaults, numeric[i], ingest_cell_value(v));
    }
    for (size_t i = 0; i < OB_COUNTOF(text); i++) {
        const char *v = ob_http_query(req, text[i]);
        if (v)
            cJSON_AddStringToObject(defaults, text[i], v);
    }
    /* Checked once, as part of a call with a valid number. */
    ob_pool_t *pool = ob_pool_new();
    cJSON *probe = cJSON_Duplicate(defaults, true);
    cJSON *errors = cJSON_CreateArray();
    ob_call_request_t m = {.accepted_at_ms = ob_now_ms()};
    cJSON_AddStringToObject(probe, "phone_number", "+12125550100");
    if (!ingest_validate_call(pool, probe, dep, &m, errors)) {
        ob_http_problem(req, 422, "validation_failed", errors, "invalid options in the query");
        cJSON_Delete(defaults);
        defaults = NULL;
    } else {
        cJSON_Delete(errors);
    }
    cJSON_Delete(probe);
    ob_pool_free(pool);
    return defaults;
}

void ingest_apply_defaults(cJSON *call, const cJSON *defaults)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, defaults)
    {
        if (!cJSON_HasObjectItem(call, d->string))
            cJSON_AddItemToObject(call, d->string, cJSON_Duplicate(d, true));
    }
}
