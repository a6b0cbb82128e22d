/*
 * How handlers answer: problem details for validation and database
 * failures, a resource read by id, and the checks every JSON route makes of
 * a request. One place, so every route words the same failure the same way.
 */
#include "ingest_reply.h"
#include "ob_json.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <string.h>

void ingest_add_error(cJSON *errors, const char *field, const char *code, const char *msg)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "field", field);
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(errors, e);
}

void ingest_database_problem(ob_http_req_t *req, const ob_err_t *err)
{
    OB_LOG(OB_LOG_ERROR, "api", OB_KV("req_id", req->req_id), "database: %s", err->msg);
    ob_http_add_header(req, "Retry-After", "1");
    ob_http_problem(req, 503, "database_unavailable", NULL,
                    "the database cannot be reached right now; retry shortly");
}

void ingest_reply_owned(ingest_call_t *c, ingest_view_t view, const char *id, unsigned status,
                        const char *what, const char *hint)
{
    char *body = NULL;
    ob_err_t err = {{0}};
    if (ob_uuid_valid(id) &&
        ingest_store_view(c->conn, c->req->pool, view, id, c->account_id, &body, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    if (!body) {
        ob_http_problem(c->req, 404, ob_pool_printf(c->req->pool, "%s_not_found", what), NULL,
                        "no %s %s%s", what, id, hint ? hint : "");
        return;
    }
    ob_http_reply(c->req, status, "application/json", body, strlen(body));
}

void ingest_reply_page(ob_http_req_t *req, const char *name, const ingest_page_t *page, long limit)
{
    bool more = page->count == limit;
    char *body = ob_pool_printf(req->pool, "{\"%s\":%s,\"next_cursor\":%s%s%s}", name, page->items,
                                more ? "\"" : "", more ? page->last_id : "null", more ? "\"" : "");
    ob_http_reply(req, 200, "application/json", body, strlen(body));
}

void ingest_page_query(ob_http_req_t *req, long default_limit, const char **cursor, char limit[16],
                       cJSON *errors)
{
    long n = default_limit;
    const char *v = ob_http_query(req, "limit");
    *cursor = ob_http_query(req, "cursor");
    if (*cursor && !ob_uuid_valid(*cursor))
        ingest_add_error(errors, "cursor", "invalid_cursor",
                         "cursor must be the next_cursor of a previous page");
    if (v && (sscanf(v, "%ld", &n) != 1 || n < 1 || n > 1000))
        ingest_add_error(errors, "limit", "out_of_range", "limit must be from 1 to 1000");
    snprintf(limit, 16, "%ld", n);
}

cJSON *ingest_object_body(ob_http_req_t *req, bool empty_is_object)
{
    if (!ingest_require_json(req))
        return NULL;
    ob_json_fault_t fault = OB_JSON_OK;
    cJSON *body = req->body_len || !empty_is_object
                      ? ob_json_parse(req->body, req->body_len, NULL, &fault)
                      : cJSON_CreateObject();
    const char *why = ob_json_fault_text(fault);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ob_http_problem(req, 400, "invalid_json", NULL, "%s%sthe body must be a JSON object",
                        why ? why : "", why ? ": " : "");
        return NULL;
    }
    return body;
}

bool ingest_require_json(ob_http_req_t *req)
{
    const char *ct = ob_http_header(req, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16) == 0)
        return true;
    ob_http_problem(req, 415, "unsupported_media_type", NULL,
                    "send the body as application/json (got %.64s)", ct);
    return false;
}
