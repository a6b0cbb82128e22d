/*
 * Calls (ingest_calls.c): the routes of one call (queue, read, list, cancel)
 * and the queueing every route that adds calls shares (single calls, Plum's
 * queue, batches, uploads): validation, the pending limit, producing to
 * outbound.call-requests and the accepted answer. Handlers run on the
 * request's HTTP worker thread; the rest is thread-safe unless it says so.
 */
#ifndef INGEST_CALLS_H
#define INGEST_CALLS_H

#include "ingest.h"
#include "ingest_store.h"

/* Route handlers: POST /deployments/{}/calls, GET /calls/{}, GET
 * /deployments/{}/calls, POST /calls/{}:cancel. */
void ingest_queue_call(ingest_call_t *c);
void ingest_get_call(ingest_call_t *c);
void ingest_list_calls(ingest_call_t *c);
void ingest_cancel_call(ingest_call_t *c);

/* Validates one call object (the body of a single call, a batch element or
 * a CSV row turned into JSON) into m, with the deployment's defaults for
 * what is absent. Strings in m are allocated from pool; every problem is
 * appended to errors; returns true when there were none. m->accepted_at_ms
 * must be set first. Pure but for the phone number library. */
bool ingest_validate_call(ob_pool_t *pool, const cJSON *body, const deployment_t *dep,
                          ob_call_request_t *m, cJSON *errors);

/* Validates retry rules (an object mapping busy, noanswer, informationtone,
 * linefailure or unknown to seconds from 60 to 172800, or "never"), naming
 * problems as field.result in errors. Returns the rules as compact JSON text
 * from pool, or NULL if there were problems. */
char *ingest_retry_rules(ob_pool_t *pool, const cJSON *rules, const char *field, cJSON *errors);

/* Validates a call-control document (ob_appdoc_parse: an object with verbs,
 * or an array of verbs), appending a problem under field "app" with code
 * invalid_app whose message names the verb and the field ("app: verbs[1]
 * (say): text is required"). Returns the document as compact JSON text from
 * pool, or NULL if it was refused. */
char *ingest_app(ob_pool_t *pool, const cJSON *app, cJSON *errors);

/* When the only problem in errors is ingest_app's, answers 422 with code
 * invalid_app and that problem as the detail, consumes errors and returns
 * true; else returns false and leaves errors alone. */
bool ingest_app_problem(ob_http_req_t *req, cJSON *errors);

/* The 422 for a call refused by ingest_validate_call (errors consumed):
 * ingest_app_problem's, else validation_failed, "the call has N invalid
 * field(s)". */
void ingest_call_problem(ob_http_req_t *req, cJSON *errors);

/* How much longer than OB_INGEST_ACK_TIMEOUT_MS a request waits for the
 * delivery report of its message (librdkafka times messages out on a scan
 * about once a second). */
#define INGEST_REPORT_GRACE_MS 5000

/* False while the broker is known to be away: the once-a-second metadata
 * check failed, or librdkafka lost every broker since (any thread). */
bool ingest_kafka_usable(const ingest_ctx_t *ctx);

/* Produces one message to the call-requests topic with the ingest's
 * producer, whose message.timeout.ms is OB_INGEST_ACK_TIMEOUT_MS, and blocks
 * until its delivery report: OB_OK once the broker acknowledged it; any
 * other code means the broker does not have it and never will (librdkafka
 * gave it up, or the broker was unreachable at the last check and nothing
 * was sent), so a 503 that says "not accepted" is true. */
ob_rc_t ingest_send_request(ingest_ctx_t *ctx, const char *key, const char *msg,
                            ob_err_t *err) OB_MUSTCHECK;

/* For streams of calls (batches, uploads): validates call and, when valid,
 * produces it into batch, whose acknowledgements the caller awaits. m comes
 * with its ids set. Returns OB_OK with *queued false and errors filled for an
 * invalid call; any other code is a Kafka failure that ends the stream. */
ob_rc_t ingest_offer_call(ingest_ctx_t *ctx, ob_produce_batch_t *batch, const cJSON *call,
                          const deployment_t *dep, ob_call_request_t *m, cJSON *errors,
                          bool *queued, ob_err_t *err) OB_MUSTCHECK;

/* Queues the call given as JSON object body to the deployment c->param[0]
 * (already loaded into dep), under the request's Idempotency-Key if any
 * (body_hash identifies the request); sets the 202 answer or the problem.
 * Hands c->conn back to the pool while Kafka acknowledges (c->conn is NULL
 * then). */
void ingest_queue_json(ingest_call_t *c, const deployment_t *dep, const cJSON *body,
                       const char *body_hash);

/* False (with a 429 problem set, or 503 when Postgres fails) when the
 * deployment already holds the most pending calls allowed; adding is how
 * many the request would add. Counts in Postgres at most once a second per
 * deployment (ingest_limits.h). */
bool ingest_check_pending(ingest_call_t *c, const char *deployment_id, long adding);

/* Streams of calls (batches, uploads) take options in the query string
 * (max_attempts, retry_interval_s, priority, not_before, expires_at) as
 * defaults for every call that does not set them. Returns them as call
 * fields (caller deletes), or NULL with a 422 problem set when invalid. */
cJSON *ingest_stream_defaults(ob_http_req_t *req, const deployment_t *dep);
/* Adds each default the call does not set itself (copies). */
void ingest_apply_defaults(cJSON *call, const cJSON *defaults);
/* A text cell as a JSON value (caller deletes): numbers become numbers (so
 * validation checks their range), anything else stays a string. */
cJSON *ingest_cell_value(const char *text);

/* Answers GET of call c->param[0] from the stored view (INGEST_VIEW_CALL
 * or INGEST_VIEW_PLUM_CALL), or, for a call accepted but not recorded yet
 * (ingest_accepted.h), from its request message, flagged "recorded": false,
 * in the native or Plum shape; 404 only for a call no ingest accepted (or
 * another account's), 503 when this ingest cannot tell yet. */
void ingest_reply_call(ingest_call_t *c, ingest_view_t view, bool plum);

#endif
