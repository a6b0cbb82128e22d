/*
 * A deployment's queue as a whole (ingest_queue.c): cancel every pending
 * call, pause and resume releasing, and the counts per state. Handlers run
 * on the request's HTTP worker thread.
 */
#ifndef INGEST_QUEUE_H
#define INGEST_QUEUE_H

#include "ingest.h"

/* Produces the command that cancels the pending calls of deployment
 * c->param[0] accepted until now and marks the deployment so releases stop
 * at once; false with a 503 problem (starting with what) when Kafka did not
 * take it. Blocks until Kafka acknowledges. */
bool ingest_send_cancel(ingest_call_t *c, const char *what, char command_id[37],
                        int64_t *requested_at_ms);

/* Route handlers: POST /deployments/{}:cancel, :pause, :resume and GET
 * /deployments/{}/summary. */
void ingest_cancel_queue(ingest_call_t *c);
void ingest_pause_queue(ingest_call_t *c);
void ingest_resume_queue(ingest_call_t *c);
void ingest_queue_summary(ingest_call_t *c);

#endif
