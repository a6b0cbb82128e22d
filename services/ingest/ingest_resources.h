/*
 * Applications and deployments (ingest_resources.c): create, read, list,
 * update and delete, for the authenticated account only. Route handlers;
 * each runs on the request's HTTP worker thread.
 */
#ifndef INGEST_RESOURCES_H
#define INGEST_RESOURCES_H

#include "ingest.h"

void ingest_create_application(ingest_call_t *c);
void ingest_list_applications(ingest_call_t *c);
void ingest_get_application(ingest_call_t *c);
void ingest_update_application(ingest_call_t *c);
void ingest_delete_application(ingest_call_t *c);
void ingest_create_deployment(ingest_call_t *c);
void ingest_list_deployments(ingest_call_t *c);
void ingest_get_deployment(ingest_call_t *c);
void ingest_update_deployment(ingest_call_t *c);
/* Refuses new calls and cancels the pending ones through the queue. */
void ingest_delete_deployment(ingest_call_t *c);

#endif
