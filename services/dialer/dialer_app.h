/*
 * The application on answer: when a call connects, the worker POSTs the
 * call's context to its deployment's start_url (as JSON, or form-encoded for
 * Plum-style applications), and again when the callee type is decided. The
 * requests run on libcurl's multi interface, driven without blocking from
 * the worker's event loop (dialer_app_run), so one worker holds thousands of
 * them. The application's answer may hang the call up or keep it
 * connected; its failure is recorded on the attempt and never changes the
 * call's result. A deployment may also require that its URLs answer 200
 * before its calls are dialed (dialer_app_check_urls), checked on the same
 * loop.
 *
 * This client has no effect of its own beyond HTTP: it neither writes to
 * Postgres nor drives the carrier. Each request's outcome and what the
 * application's answer asks for (hang up, stay connected) go back to the
 * worker through dialer_app_events_t; the worker records the outcome in its
 * next batched transaction and acts on the carrier. Deployment settings are
 * read through the worker's lookup function.
 */
#ifndef DIALER_APP_H
#define DIALER_APP_H

#include "ob_common.h"
#include "ob_proto.h"
#include "ob_url.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest answer body read from an application. */
#define DIALER_APP_MAX_ANSWER 65536
/* Longest stay_connected_s an application may ask for. */
#define DIALER_APP_MAX_STAY_S 86400
/* A successful URL check holds this long (monotonic ms). */
#define DIALER_URL_CHECK_TTL_MS 60000
/* A failed URL check holds this long before the URLs are checked again. */
#define DIALER_URL_RETRY_MS 10000
/* A successful check is renewed this long after it ended, while it still
 * holds, so the calls of a busy deployment do not wait every minute. */
#define DIALER_URL_REFRESH_MS 45000
/* A deployment's settings are read again after this long, so a change
 * through the API reaches running dialers. */
#define DIALER_APP_SETTINGS_TTL_MS 30000

typedef struct dialer_app dialer_app_t;

/* What an application's 2xx answer asks for. */
typedef struct {
    bool hangup;               /* "hangup": true, hang up now (wins over a stay) */
    int64_t stay_connected_ms; /* "stay_connected_s" in ms, or -1 when absent */
    char *doc; /* a call-control document answered (a JSON array, or an object with "verbs"):
                  its text, malloc'd (dialer_app_answer_clear), NULL when none */
} dialer_app_answer_t;

/* Frees what an answer holds (its doc); NULL-safe. */
void dialer_app_answer_clear(dialer_app_answer_t *a);

typedef enum { DIALER_URLS_OK, DIALER_URLS_WAIT, DIALER_URLS_FAILED } dialer_urls_t;

/* Where one deployment's URL check stands (monotonic ms; 0: never). */
typedef struct {
    bool in_flight;    /* a check is running */
    int64_t ok_ms;     /* when the last successful check ended */
    int64_t failed_ms; /* when the last failed check ended */
} dialer_url_check_t;

/* What the dialer needs of a deployment (strings malloc'd, or NULL). */
typedef struct {
    char *application_id; /* its application; NULL when unknown */
    char *start_url;      /* its start_url, else its application's; NULL: none */
    char *result_url;     /* its result_url; NULL: none */
    bool form;            /* start_url_format "form" */
    bool verify_urls;     /* its URLs must answer 200 before its calls are dialed */
} dialer_deployment_t;

/* Reads the settings of deployment_id into *out (zeroed first; a deployment
 * that does not exist leaves it zeroed). Returns OB_ERR with err set when
 * the store cannot say. The dialer's is the worker's (one Postgres row). */
typedef ob_rc_t (*dialer_app_lookup_fn)(void *arg, const char *deployment_id,
                                        dialer_deployment_t *out, ob_err_t *err);

/* How a start_url request ended, handed to the worker (events->done). */
typedef struct {
    void *call;                 /* the worker's handle given to dialer_app_notify */
    const char *call_id;        /* the call it was about */
    int64_t attempt;            /* and its attempt */
    bool connected;             /* the connected request (its outcome is the attempt's), else a
                                   callee_type update or an action */
    bool action;                /* an action_url request (dialer_app_action) */
    long status;                /* HTTP status answered, 0 when none */
    const char *error;          /* why it failed or was not sent, NULL when it succeeded */
    int ms;                     /* how long it took, 0 when not sent */
    dialer_app_answer_t answer; /* what a successful answer asks for ({false, -1} otherwise) */
} dialer_app_result_t;

/* What the client asks of the worker, on the worker's thread; worker is
 * dialer_app_opts_t.worker. */
typedef struct {
    /* Whether call still holds the connected attempt call_id/attempt; a
     * request whose call is no longer current is not sent (done reports
     * it). */
    bool (*current)(void *worker, void *call, const char *call_id, int64_t attempt);
    /* A request ended (answered, failed, not sent or aborted). The strings
     * are valid only during the call. Called from dialer_app_run,
     * dialer_app_finish, dialer_app_abort and dialer_app_free. */
    void (*done)(void *worker, const dialer_app_result_t *r);
} dialer_app_events_t;

/* What the client is created with (copied; the pointers must outlive it). */
typedef struct {
    int concurrency;                   /* requests in flight at once (more wait in a queue) */
    int timeout_ms;                    /* bound of each request and URL check GET */
    const ob_url_policy_t *urls;       /* where requests and checks may connect */
    dialer_app_lookup_fn lookup;       /* reads a deployment's settings */
    void *lookup_arg;                  /* its first argument */
    const dialer_app_events_t *events; /* the worker's callbacks */
    void *worker;                      /* their first argument */
} dialer_app_opts_t;

/* The JSON body of one request: event ("connected" or "callee_type"), the
 * job's call context, callee_type ("processing" until decided) and
 * application_id (may be NULL, sent as null). call_parameters is sent as an
 * object ({} when the job has none or it is not an object). Pure; caller
 * frees with free. */
char *dialer_app_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                      const char *callee_type);

/* The same request as an application/x-www-form-urlencoded body: the JSON
 * body's members in its order and with its names, percent-encoded (space
 * as %20, "+" as %2B); call_parameters is its JSON object text, numbers are
 * decimal, and null values (message_reference, application_id) are sent
 * empty. Pure; caller frees with free. */
char *dialer_app_form_body(const ob_dial_job_t *job, const char *application_id, const char *event,
                           const char *callee_type);

/* Parses an application's 2xx answer body of len bytes. An empty (or blank)
 * body asks for nothing. A JSON array, or an object with a "verbs" member,
 * is a call-control document: its text goes to out->doc (checked by the
 * caller, ob_appdoc_parse). Returns OB_EINVAL with err set when the body is
 * not a JSON object or array, or "hangup" is not a boolean, or
 * "stay_connected_s" not a number in 0..DIALER_APP_MAX_STAY_S; unknown
 * members are ignored. Pure; out->doc is the caller's to clear. */
ob_rc_t dialer_app_parse_answer(const char *body, size_t len, dialer_app_answer_t *out,
                                ob_err_t *err) OB_MUSTCHECK;

/* The answer about a deployment requiring verified URLs whose check
 * stands as c at now_ms: OK while its latest check succeeded within
 * DIALER_URL_CHECK_TTL_MS, FAILED while its latest check failed within
 * DIALER_URL_RETRY_MS, else WAIT. *start is set when a check should start
 * now: none is in flight and there is no standing answer, or the success is
 * older than DIALER_URL_REFRESH_MS (renewed early; the answer stays OK).
 * Pure. */
dialer_urls_t dialer_url_state(const dialer_url_check_t *c, int64_t now_ms, bool *start);

/* Creates the client (opts copied). Call from the main thread before other
 * threads start libcurl (curl_global_init). Returns OB_ERR with err set if
 * libcurl fails; caller frees *out with dialer_app_free. */
ob_rc_t dialer_app_new(const dialer_app_opts_t *opts, dialer_app_t **out,
                       ob_err_t *err) OB_MUSTCHECK;

/* Queues a POST about call (the worker's handle of a connected call whose
 * job has a start_url; job is copied from) for event "connected" or
 * "callee_type", in the deployment's start_url_format. Does no I/O but the
 * cached lookup of the deployment's settings (once per deployment every
 * DIALER_APP_SETTINGS_TTL_MS). Its outcome reaches events->done. NULL-safe
 * (app off). */
void dialer_app_notify(dialer_app_t *app, void *call, const ob_dial_job_t *job, const char *event,
                       const char *callee_type);

/* Queues a POST to a document's action_url (url, rendered) about call:
 * the start_url body with event (e.g. "gather", "connect") plus one more
 * member name = value (e.g. "digits": "1234"), in the deployment's
 * start_url_format. Its outcome and answer (the next document) reach
 * events->done with action set. NULL-safe (app off: done is never called,
 * the caller must not wait). */
void dialer_app_action(dialer_app_t *app, void *call, const ob_dial_job_t *job, const char *url,
                       const char *event, const char *name, const char *value);

/* For the job's deployment: OK when it does not require verified URLs or
 * both its start_url and result_url (those set) answered 200 to a GET
 * within the last DIALER_URL_CHECK_TTL_MS; WAIT while a check is in flight
 * (started by this call when none is), or while the deployment's settings
 * cannot be read; FAILED with *why set (app-owned, valid until the next
 * dialer_app_run, e.g. "result_url http://... answered 503") when the latest
 * check failed less than DIALER_URL_RETRY_MS ago. One check per deployment
 * is in flight however many jobs ask; its GETs (no redirects followed, 200
 * required, bounded by the app timeout) run in dialer_app_run and do not
 * count against the request concurrency. The URLs checked are the
 * deployment's current ones, not a call's own result_url. Does no blocking
 * I/O except the cached per-deployment Postgres lookup. NULL-safe (app off:
 * OK). */
dialer_urls_t dialer_app_check_urls(dialer_app_t *app, const ob_dial_job_t *job, const char **why);

/* Starts queued requests, advances transfers (URL checks included) without
 * blocking and hands finished ones to events->done. Returns when it wants
 * to be called again (monotonic ms): soon while transfers are in flight,
 * INT64_MAX when idle. NULL-safe. */
int64_t dialer_app_run(dialer_app_t *app, int64_t now_ms);

/* Requests queued or in flight (URL checks are not counted: a drain drops
 * them). NULL-safe. */
int dialer_app_pending(const dialer_app_t *app);

/* Drain: lets requests in flight and queued finish until deadline_ms
 * (monotonic). NULL-safe. */
void dialer_app_finish(dialer_app_t *app, int64_t deadline_ms);

/* Drain: hands the requests still in flight ("aborted: the dialer
 * stopped") and queued ("not sent: the dialer stopped") to events->done and
 * drops them, and drops the URL checks. NULL-safe. */
void dialer_app_abort(dialer_app_t *app);

/* dialer_app_abort, then frees app. NULL-safe. */
void dialer_app_free(dialer_app_t *app);

#endif
