/*
 * Serves the OpenAPI document (services/ingest/openapi.json, embedded at
 * build time) at /api/v1/openapi.json, without authentication.
 */
#include "ingest_openapi.h"

#include <string.h>

extern const char ingest_openapi_json[];

void ingest_openapi(ingest_call_t *c)
{
    ob_http_add_header(c->req, "Cache-Control", "public, max-age=300");
    ob_http_reply(c->req, 200, "application/json", ingest_openapi_json,
                  strlen(ingest_openapi_json));
}
