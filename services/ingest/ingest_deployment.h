/*
 * The deployment a request names (ingest_deployment.c): loaded through this
 * ingest's cache (deployment|account, 2 s), and forgotten when the API
 * changes it. Thread-safe (the cache locks).
 */
#ifndef INGEST_DEPLOYMENT_H
#define INGEST_DEPLOYMENT_H

#include "ingest.h"

/* Loads deployment_id of the request's account into *dep; on failure the
 * problem response is set (an unknown deployment and another account's look
 * the same: 404; a deleted one 404; Postgres down 503). With for_queueing,
 * an inactive deployment is refused with 409. Borrows c->conn. */
bool ingest_load_deployment(ingest_call_t *c, const char *deployment_id, bool for_queueing,
                            deployment_t *dep);

/* Forgets what this ingest cached about the account's deployment (after a
 * change through the API); other instances see it within the cache's TTL. */
void ingest_forget_deployment(ingest_call_t *c, const char *deployment_id);

#endif
