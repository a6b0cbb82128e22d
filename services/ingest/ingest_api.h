/*
 * The router (ingest_api.c): the route table, matching, authentication,
 * admission and dispatch to the handlers. main.c hands it to the HTTP
 * server; nothing else calls it.
 */
#ifndef INGEST_API_H
#define INGEST_API_H

#include "ingest.h"

/* ob_http_fn for every request: finds the route, authenticates the key,
 * admits it under the per-key limits and runs the handler (a KEYED one
 * once per Idempotency-Key); answers 404/405 for unknown routes. ctx is the
 * ingest_ctx_t. Runs on an HTTP worker thread; blocks on Postgres and on
 * the handler. */
void ingest_api_handle(void *ctx, ob_http_req_t *req);

/* ob_http_stream_fn: starts the streaming routes (uploads, batches) when
 * their headers arrive: authenticates, admits (the key's slot is held until
 * the request is over) and runs the route's begin handler. Other routes are
 * left to buffer their body. Runs on an HTTP worker thread. */
void ingest_stream(void *ctx, ob_http_req_t *req);

#endif
