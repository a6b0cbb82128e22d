/*
 * The API's OpenAPI document (ingest_openapi.c), embedded at build time.
 */
#ifndef INGEST_OPENAPI_H
#define INGEST_OPENAPI_H

#include "ingest.h"

/* GET /api/v1/openapi.json, public. */
void ingest_openapi(ingest_call_t *c);

#endif
