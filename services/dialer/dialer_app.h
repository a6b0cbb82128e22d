/*
 * The application on answer: when a call connects, the worker POSTs the
 * call's context to its deployment's start_url, and again when the callee
 * type is decided. The requests run on libcurl's multi interface, driven
 * without blocking from the worker's event loop (dialer_app_run), so one
 * worker holds thousands of them. The application's answer may hang the call
 * up or keep it connected; its failure is recorded on the attempt and never
 * changes the call's result.
 */
#ifndef DIALER_APP_H
#define DIALER_APP_H

#include "dialer.h"
#include "ob_common.h"
#include "ob_proto.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest answer body read from an application. */
#define DIALER_APP_MAX_ANSWER 65536
/* Longest stay_connected_s an application may ask for. */
#define DIALER_APP_MAX_STAY_S 86400

typedef struct dialer_app dialer_app_t;

/* What an application's 2xx answer asks for. */
typedef struct {
    bool hangup;               /* "hangup": true, hang up now (wins over a stay) */
    int64_t stay_connected_ms; /* "stay_connected_s" in ms, or -1 when absent */
} dialer_app_answer_t;

/* The JSON body of one request: event ("connected" or "callee_type"), the
 * job's call context, callee_type ("processing" until decided) and
 * application_id (may be NULL, sent as null). call_parameters is sent as an
 * object ({} when the job has none or it is not an object). Pure; caller
 * frees with free. */
char *dialer_app_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                      const char *callee_type);

/* Parses an application's 2xx answer body of len bytes. An empty (or blank)
 * body asks for nothing. Returns OB_EINVAL with err set when the body is not
 * a JSON object, or "hangup" is not a boolean, or "stay_connected_s" not a
 * number in 0..DIALER_APP_MAX_STAY_S; unknown members are ignored. Pure. */
ob_rc_t dialer_app_parse_answer(const char *body, size_t len, dialer_app_answer_t *out,
                                ob_err_t *err) OB_MUSTCHECK;

/* Creates the requester of the worker ctx (which must outlive it): at most
 * concurrency transfers at once (more wait in a queue), each bounded by
 * timeout_ms. Call from the main thread before other threads start libcurl
 * (curl_global_init). Returns OB_ERR with err set if libcurl fails. */
ob_rc_t dialer_app_new(dialer_ctx_t *ctx, int concurrency, int timeout_ms, dialer_app_t **out,
                       ob_err_t *err) OB_MUSTCHECK;

/* Queues a POST about call (a slot of ctx whose job has a start_url, just
 * connected or just decided) for event "connected" or "callee_type". Does no
 * I/O but a cached lookup of the deployment's application id (one Postgres
 * query per deployment). The connected request's outcome is recorded on the
 * attempt. NULL-safe (app off). */
void dialer_app_notify(dialer_app_t *app, dialer_call_t *call, const char *event,
                       const char *callee_type);

/* Starts queued requests, advances transfers without blocking and handles
 * finished ones (recording outcomes, hanging up or extending calls through
 * the carrier). Returns when it wants to be called again (monotonic ms):
 * soon while transfers are in flight, INT64_MAX when idle. NULL-safe. */
int64_t dialer_app_run(dialer_app_t *app, int64_t now_ms);

/* Requests queued or in flight. NULL-safe. */
int dialer_app_pending(const dialer_app_t *app);

/* Drain: lets requests in flight and queued finish until deadline_ms
 * (monotonic). NULL-safe. */
void dialer_app_finish(dialer_app_t *app, int64_t deadline_ms);

/* Aborts what is left (a connected request's attempt records the abort)
 * and frees app. NULL-safe. */
void dialer_app_free(dialer_app_t *app);

#endif
