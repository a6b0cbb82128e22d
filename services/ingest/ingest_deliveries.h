/*
 * The result_url webhook delivery log (ingest_deliveries.c). Route
 * handlers; each runs on the request's HTTP worker thread.
 */
#ifndef INGEST_DELIVERIES_H
#define INGEST_DELIVERIES_H

#include "ingest.h"

/* GET /calls/{}/deliveries and GET /deployments/{}/deliveries. */
void ingest_list_call_deliveries(ingest_call_t *c);
void ingest_list_deployment_deliveries(ingest_call_t *c);

#endif
