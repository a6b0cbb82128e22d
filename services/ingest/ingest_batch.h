/*
 * Batches of calls in one request (ingest_batch.c), streamed like uploads:
 * begin runs when the headers arrive (from ingest_stream) and sets the
 * request up to stream its body; finish answers when it is over. Both run
 * on the request's HTTP worker thread.
 */
#ifndef INGEST_BATCH_H
#define INGEST_BATCH_H

#include "ingest.h"

void ingest_batch_begin(ingest_call_t *c);
void ingest_batch_finish(ingest_call_t *c);

#endif
