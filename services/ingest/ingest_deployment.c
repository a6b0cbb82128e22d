/*
 * The deployment a request names, with the defaults its calls take: read
 * through this ingest's cache (the hot path of queueing does not ask
 * Postgres each time) and only as the account's own, so another account's
 * deployment looks like one that does not exist.
 */
#include "ingest_deployment.h"
#include "ingest_cache.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ingest_load_deployment(ingest_call_t *c, const char *deployment_id, bool for_queueing,
                            deployment_t *dep)
{
    ob_http_req_t *req = c->req;
    const char *account_id = c->account_id;
    ob_err_t err = {{0}};
    bool found = false;

    if (!ob_uuid_valid(deployment_id)) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s", deployment_id);
        return false;
    }
    char cache_key[80];
    snprintf(cache_key, sizeof(cache_key), "%s|%s", deployment_id, account_id);
    if (!ingest_cache_get(c->ctx->deps, cache_key, dep)) {
        if (ingest_store_deployment(c->conn, deployment_id, account_id, dep, &found, &err) !=
            OB_OK) {
            ingest_database_problem(req, &err);
            return false;
        }
        if (!found) {
            ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s",
                            deployment_id);
            return false;
        }
        ingest_cache_put(c->ctx->deps, cache_key, dep);
    }
    if (dep->deleted) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "deployment %s was deleted",
                        deployment_id);
        return false;
    }
    if (for_queueing && !dep->active) {
        ob_http_problem(req, 409, "deployment_inactive", NULL,
                        "deployment %s is not active; activate it before queueing calls",
                        deployment_id);
        return false;
    }
    return true;
}

void ingest_forget_deployment(ingest_call_t *c, const char *deployment_id)
{
    char cache_key[80];
    snprintf(cache_key, sizeof(cache_key), "%s|%s", deployment_id, c->account_id);
    ingest_cache_drop(c->ctx->deps, cache_key);
}
