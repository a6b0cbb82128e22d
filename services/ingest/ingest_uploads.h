/*
 * CSV uploads (ingest_uploads.c), native and Plum's bulk_queue: begin runs
 * when the headers arrive (from ingest_stream) and sets the request up to
 * stream its body; finish answers when it is over. Route handlers; each
 * runs on the request's HTTP worker thread (rows may be validated on lane
 * threads of the upload's own).
 */
#ifndef INGEST_UPLOADS_H
#define INGEST_UPLOADS_H

#include "ingest.h"

void ingest_upload_begin(ingest_call_t *c);
/* bulk_queue's begin: the Plum route's deployment is checked
 * (ingest_plum_deployment), then the upload begins as a native one. */
void ingest_upload_plum_begin(ingest_call_t *c);
void ingest_upload_finish(ingest_call_t *c);
/* GET /uploads/{} and GET /uploads/{}/report.csv. */
void ingest_get_upload(ingest_call_t *c);
void ingest_get_upload_report(ingest_call_t *c);

#endif
