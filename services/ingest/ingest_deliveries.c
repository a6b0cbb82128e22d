/*
 * The webhook delivery log: the result_url deliveries of a call or of a
 * deployment, each with every try (webhook_deliveries and webhook_attempts,
 * written by the dialers' sender, dialer_webhooks.c). Another account's ids
 * answer 404, like ids that do not exist.
 */
#include "ingest_deliveries.h"
#include "ingest_deployment.h"
#include "ingest_reply.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One delivery with its tries, rendered by Postgres. */
#define DELIVERY_JSON                                                                              \
    "json_build_object('delivery_id', w.delivery_id, 'event_id', w.event_id,"                      \
    " 'call_id', w.call_id, 'deployment_id', w.deployment_id, 'url', w.url, 'state', w.state,"     \
    " 'attempts_made', w.attempts, 'created_at', w.created_at,"                                    \
    " 'next_attempt_at', CASE WHEN w.state = 'pending' THEN w.next_attempt_at END,"                \
    " 'delivered_at', w.delivered_at, 'last_status', w.last_status, 'last_error', w.last_error,"   \
    " 'attempts', coalesce((SELECT json_agg(json_build_object('attempt', a.attempt,"               \
    "   'started_at', a.started_at, 'duration_ms', a.duration_ms,"                                 \
    "   'http_status', a.http_status, 'error', a.error) ORDER BY a.attempt)"                       \
    "   FROM webhook_attempts a WHERE a.delivery_id = w.delivery_id), '[]'::json))"

void ingest_list_call_deliveries(ingest_call_t *c)
{
    /* A call has one delivery per final result: no pages needed. */
    static const char SQL[] =
        "SELECT json_build_object('deliveries', coalesce((SELECT json_agg(" DELIVERY_JSON
        " ORDER BY w.delivery_id) FROM webhook_deliveries w WHERE w.call_id = c.call_id),"
        " '[]'::json), 'next_cursor', NULL)::text"
        " FROM calls c WHERE c.call_id = $1 AND c.account_id = $2";
    ingest_reply_owned(c, SQL, c->param[0], 200, "call",
                       " (a call accepted in the last seconds may not be recorded yet)");
}

void ingest_list_deployment_deliveries(ingest_call_t *c)
{
    /* Newest first; the cursor is the last delivery_id of the previous page
     * (UUIDv7, so time-ordered). */
    static const char SQL[] =
        "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]'::json)::text, count(*),"
        " min(id::text) FROM (SELECT w.delivery_id AS id, " DELIVERY_JSON " AS j"
        " FROM webhook_deliveries w WHERE w.deployment_id = $1 AND w.account_id = $2"
        " AND ($3::text IS NULL OR w.state = $3) AND ($4::uuid IS NULL OR w.delivery_id < $4)"
        " ORDER BY w.delivery_id DESC LIMIT $5::int) x";
    ob_http_req_t *req = c->req;
    deployment_t dep;
    cJSON *errors = cJSON_CreateArray();
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    char limit[16];
    const char *cursor = NULL;

    if (!ingest_load_deployment(c, c->param[0], false, &dep))
        goto out;
    const char *state = ob_http_query(req, "state");
    if (state && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
        strcmp(state, "failed") != 0)
        ingest_add_error(errors, "state", "invalid_value",
                         "state must be pending, delivered or failed");
    ingest_page_query(req, 50, &cursor, limit, errors);
    if (cJSON_GetArraySize(errors) > 0) {
        ob_http_problem(req, 400, "invalid_query", errors, "the query has %d invalid parameter(s)",
                        cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }
    const char *params[] = {c->param[0], c->account_id, state, cursor, limit};
    if (ob_pg_exec(c->conn, SQL, 5, params, &res, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        goto out;
    }
    /* A full page may have a next one; a short page is the last. */
    bool more = atol(PQgetvalue(res, 0, 1)) == atol(limit);
    char *body = ob_pool_printf(req->pool, "{\"deliveries\":%s,\"next_cursor\":%s%s%s}",
                                PQgetvalue(res, 0, 0), more ? "\"" : "",
                                more ? PQgetvalue(res, 0, 2) : "null", more ? "\"" : "");
    ob_http_reply(req, 200, "application/json", body, strlen(body));
out:
    PQclear(res);
    cJSON_Delete(errors);
}
