/*
 * The deployment a request names, with the defaults its calls take: read
 * through this ingest's cache (the hot path of queueing does not ask
 * Postgres each time) and only as the account's own, so another account's
 * deployment looks like one that does not exist.
 */
#include "ingest_deployment.h"
#include "ingest_cache.h"
#include "ingest_reply.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ingest_load_deployment(ingest_call_t *c, const char *deployment_id, bool for_queueing,
                            deployment_t *dep)
{
    ob_http_req_t *req = c->req;
    PGconn *conn = c->conn;
    const char *account_id = c->account_id;
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    const char *params[] = {deployment_id, account_id};

    if (!ob_uuid_valid(deployment_id)) {
        ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s", deployment_id);
        return false;
    }
    char cache_key[80];
    snprintf(cache_key, sizeof(cache_key), "%s|%s", deployment_id, account_id);
    if (!ingest_cache_get(c->ctx->deps, cache_key, dep)) {
        if (ob_pg_exec(conn,
                       "SELECT account_id, active, deleted_at IS NOT NULL, max_attempts,"
                       " retry_interval_s, coalesce(caller_id, ''), default_region FROM deployments"
                       " WHERE deployment_id = $1 AND account_id = $2",
                       2, params, &res, &err) != OB_OK) {
            ingest_database_problem(req, &err);
            return false;
        }
        if (PQntuples(res) != 1) {
            PQclear(res);
            ob_http_problem(req, 404, "deployment_not_found", NULL, "no deployment %s",
                            deployment_id);
            return false;
        }
        memset(dep, 0, sizeof(*dep));
        snprintf(dep->account_id, sizeof(dep->account_id), "%s", PQgetvalue(res, 0, 0));
        dep->active = PQgetvalue(res, 0, 1)[0] == 't';
        dep->deleted = PQgetvalue(res, 0, 2)[0] == 't';
        dep->max_attempts = atol(PQgetvalue(res, 0, 3));
        dep->retry_interval_s = atol(PQgetvalue(res, 0, 4));
        snprintf(dep->caller_id, sizeof(dep->caller_id), "%s", PQgetvalue(res, 0, 5));
        snprintf(dep->region, sizeof(dep->region), "%s", PQgetvalue(res, 0, 6));
        PQclear(res);
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
