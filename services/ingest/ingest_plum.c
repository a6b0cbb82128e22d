/*
 * Plum-compatible routes, so a client written for Plum's outbound API works
 * after changing only the host: queue one call from form fields, queue a CSV
 * (field "csv"), read a call as "call_details", cancel a deployment's queue.
 * Authentication is HTTP Basic with the account email and an API key. The
 * form fields are mapped onto the native call fields and then handled by the
 * same code, so the two APIs cannot disagree.
 */
#include "ingest.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Plum field -> native field; numeric ones become JSON numbers. */
static const struct {
    const char *plum;   /* form field */
    const char *native; /* call field */
    bool number;        /* sent as a number */
} field_map[] = {
    {"phone_number", "phone_number", false},
    {"message_reference", "message_reference", false},
    {"call_parameters", "call_parameters", false},
    {"result_url", "result_url", false},
    {"max_attempts", "max_attempts", true},
    {"reattempt_wait", "retry_interval_s", true},
    {"retry_interval", "retry_interval_s", true},
    {"start_timestamp", "not_before", false},
    {"scheduled_timestamp", "not_before", false},
    {"end_timestamp", "expires_at", false},
    {"expiration_timestamp", "expires_at", false},
    {"scheduled_time", "not_before", false},
    {"expiration_time", "expires_at", false},
    {"priority", "priority", true},
};

void ingest_plum_form_add(cJSON *form, const char *key, const char *data, uint64_t off, size_t size)
{
    /* A value may arrive in pieces: append to what came before. */
    cJSON *prev = cJSON_GetObjectItemCaseSensitive(form, key);
    if (off > 0 && cJSON_IsString(prev)) {
        char *joined = ob_xasprintf("%s%.*s", prev->valuestring, (int)size, data);
        cJSON_ReplaceItemInObjectCaseSensitive(form, key, cJSON_CreateString(joined));
        free(joined);
    } else if (!prev) {
        char *v = ob_xstrndup(data ? data : "", size);
        cJSON_AddStringToObject(form, key, v);
        free(v);
    }
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    ingest_plum_form_add(cls, key, data, off, size);
    return MHD_YES;
}

/* The request's form fields (urlencoded or multipart) as strings. */
static cJSON *read_form(ob_http_req_t *req)
{
    cJSON *form = cJSON_CreateObject();
    struct MHD_PostProcessor *pp = MHD_create_post_processor(req->conn, 16384, on_field, form);
    if (!pp) {
        cJSON_Delete(form);
        return NULL;
    }
    enum MHD_Result ok = MHD_post_process(pp, req->body, req->body_len);
    MHD_destroy_post_processor(pp);
    if (ok != MHD_YES) {
        cJSON_Delete(form);
        return NULL;
    }
    return form;
}

/* Translates Plum fields to a native call object; unknown fields are named
 * as errors by the native validation. */
static cJSON *to_native(const cJSON *form)
{
    cJSON *call = cJSON_CreateObject();
    const cJSON *f;
    cJSON_ArrayForEach(f, form)
    {
        const char *native = f->string;
        bool number = false, retries = strcmp(f->string, "max_retries") == 0;
        for (size_t i = 0; i < OB_COUNTOF(field_map); i++) {
            if (strcmp(field_map[i].plum, f->string) == 0) {
                native = field_map[i].native;
                number = field_map[i].number;
            }
        }
        if (retries)
            number = true; /* native too, with Plum DEV's meaning */
        if (cJSON_HasObjectItem(call, native))
            continue;
        const char *v = cJSON_IsString(f) ? f->valuestring : "";
        char *end = NULL;
        double d = strtod(v, &end);
        if (!cJSON_IsString(f)) {
            /* A JSON body: numbers and objects are already typed. */
            cJSON_AddItemToObject(call, native, cJSON_Duplicate(f, true));
        } else if (strcmp(native, "call_parameters") == 0) {
            cJSON *obj = cJSON_Parse(v);
            cJSON_AddItemToObject(call, native, obj ? obj : cJSON_CreateString(v));
        } else if (number && end != v && *end == '\0') {
            cJSON_AddNumberToObject(call, native, d);
        } else {
            cJSON_AddStringToObject(call, native, v);
        }
    }
    return call;
}

cJSON *ingest_plum_to_call(const cJSON *form, cJSON *errors)
{
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(form, "reattempt_wait");
    long w = cJSON_IsString(wait) ? strtol(wait->valuestring, NULL, 10) : 0;
    if (wait && (w < 60 || w > 86400)) {
        ingest_add_error(errors, "reattempt_wait", "out_of_range",
                         "reattempt_wait must be from 60 to 86400 seconds");
        return NULL;
    }
    return to_native(form);
}

/* Native validation names native fields; a Plum client sent Plum's names,
 * so the errors are told in those. */
static void plum_field_names(ob_http_req_t *req, const cJSON *form)
{
    cJSON *problem = cJSON_ParseWithLength(req->resp_body, req->resp_len);
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(problem, "errors"))
    {
        const cJSON *field = cJSON_GetObjectItem(e, "field");
        for (size_t i = 0; cJSON_IsString(field) && i < OB_COUNTOF(field_map); i++) {
            if (strcmp(field_map[i].native, field->valuestring) == 0 &&
                cJSON_HasObjectItem(form, field_map[i].plum)) {
                cJSON_ReplaceItemInObject(e, "field", cJSON_CreateString(field_map[i].plum));
                break;
            }
        }
    }
    if (problem) {
        ob_http_reply_json(req, req->status, problem);
        req->content_type = "application/problem+json";
    }
    cJSON_Delete(problem);
}

/* Checks that the deployment c->param[1] belongs to application c->param[0]
 * and moves it to param[0], where the native handlers expect it. */
static bool app_deployment(ingest_call_t *c)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {c->param[1], c->param[0], c->account_id};
    if (!ob_uuid_valid(c->param[0]) || !ob_uuid_valid(c->param[1]) ||
        ob_pg_exec(c->conn,
                   "SELECT 1 FROM deployments WHERE deployment_id = $1"
                   " AND application_id = $2 AND account_id = $3",
                   3, params, &res, &err) != OB_OK ||
        PQntuples(res) != 1) {
        if (err.msg[0])
            ingest_database_problem(c->req, &err);
        else
            ob_http_problem(c->req, 404, "deployment_not_found", NULL,
                            "no deployment %s in application %s", c->param[1], c->param[0]);
        PQclear(res);
        return false;
    }
    PQclear(res);
    c->param[0] = c->param[1];
    c->param[1] = NULL;
    return true;
}

void ingest_plum_queue(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    char hash[65];
    if (!app_deployment(c) || !ingest_load_deployment(c, c->param[0], true, &dep))
        return;
    const char *ct = ob_http_header(req, "Content-Type"), *why = NULL;
    cJSON *form = ct && strncasecmp(ct, "application/json", 16) == 0
                      ? ingest_json_parse(req->body, req->body_len, NULL, &why)
                      : read_form(req);
    if (!cJSON_IsObject(form)) {
        ob_http_problem(req, 400, "invalid_form", NULL,
                        "send the call as form fields (application/x-www-form-urlencoded or"
                        " multipart/form-data) or as a JSON object");
        cJSON_Delete(form);
        return;
    }
    cJSON *errors = cJSON_CreateArray();
    cJSON *call = ingest_plum_to_call(form, errors);
    if (!call) {
        ob_http_problem(req, 422, "validation_failed", errors, "the call has 1 invalid field");
        cJSON_Delete(form);
        return;
    }
    cJSON_Delete(errors);
    ingest_sha256_hex(req->body, req->body_len, hash);
    ingest_queue_json(c, &dep, call, hash);
    if (req->status == 422)
        plum_field_names(req, form);
    cJSON_Delete(call);
    cJSON_Delete(form);
}

void ingest_plum_bulk_begin(ingest_call_t *c)
{
    if (!app_deployment(c)) {
        c->req->stream = NULL; /* the problem is set; the body is dropped */
        return;
    }
    ingest_upload_begin(c);
}

void ingest_plum_cancel(ingest_call_t *c)
{
    if (app_deployment(c))
        ingest_cancel_queue(c);
}

/* Plum's status words for a call. */
static const char PLUM_CALL_SQL[] =
    "SELECT json_build_object('call_id', c.call_id, 'call_details', json_build_object("
    " 'status', CASE WHEN c.state = 'queued' THEN 'queued'"
    "   WHEN c.state IN ('dialing', 'connected') THEN 'in progress' ELSE c.status END,"
    " 'state', c.state, 'result', c.result, 'reason', c.reason,"
    " 'phone_number', c.phone_number, 'message_reference', c.message_reference,"
    " 'call_parameters', c.call_parameters, 'attempts', c.attempts_made,"
    " 'max_attempts', c.max_attempts, 'reattempt_wait', c.retry_interval_s,"
    " 'queued_timestamp', extract(epoch FROM c.accepted_at)::bigint,"
    " 'start_timestamp', extract(epoch FROM c.not_before)::bigint,"
    " 'end_timestamp', extract(epoch FROM c.expires_at)::bigint,"
    " 'completed_timestamp', extract(epoch FROM c.completed_at)::bigint,"
    " 'duration', coalesce((SELECT round(sum(a.talk_ms) / 1000.0)::int FROM attempts a"
    "   WHERE a.call_id = c.call_id), 0),"
    " 'events', coalesce((SELECT json_agg(json_build_object("
    "   'event', substr(e.type, length('outbound.call.') + 1),"
    "   'timestamp', extract(epoch FROM e.occurred_at)::bigint,"
    "   'result', e.data->>'result', 'attempt', (e.data->>'attempt')::int)"
    "   ORDER BY e.occurred_at, e.event_id) FROM call_events e WHERE e.call_id = c.call_id),"
    "   '[]')))::text"
    " FROM calls c WHERE c.call_id = $1 AND c.account_id = $2";

void ingest_plum_get_call(ingest_call_t *c)
{
    ingest_reply_owned(c, PLUM_CALL_SQL, c->param[0], 200, "call", NULL);
}
