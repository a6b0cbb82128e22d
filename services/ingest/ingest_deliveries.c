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

void ingest_list_call_deliveries(ingest_call_t *c)
{
    ingest_reply_owned(c, INGEST_VIEW_CALL_DELIVERIES, c->param[0], 200, "call",
                       " (a call accepted in the last seconds may not be recorded yet)");
}

void ingest_list_deployment_deliveries(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    cJSON *errors = cJSON_CreateArray();
    ingest_page_t page = {0};
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
    if (ingest_store_list_deliveries(c->conn, req->pool, c->param[0], c->account_id, state, cursor,
                                     limit, &page, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        goto out;
    }
    ingest_reply_page(req, "deliveries", &page, atol(limit));
out:
    cJSON_Delete(errors);
}
