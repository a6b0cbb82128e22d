/*
 * The message contracts on the three topics, in C: call requests
 * (outbound.call-requests), dial jobs (outbound.dial-jobs) and call events
 * (outbound.call-events, CloudEvents 1.0). The JSON Schemas beside this file
 * are the normative description; encode and decode here follow them and the
 * unit tests check both directions against the schemas' examples.
 *
 * All strings in the structs are owned by the struct and released with the
 * matching _clear function; a NULL string means the field is absent.
 */
#ifndef OB_PROTO_H
#define OB_PROTO_H

#include "ob_common.h"

#include <stdint.h>

#define OB_PROTO_VERSION 1

/* The most attempts a call may have: 10, or 11 through Plum's max_retries (0-10). */
#define OB_MAX_ATTEMPTS 11

/* outbound.call-requests, kind "queue": one accepted call. */
typedef struct {
    char *call_id;            /* UUIDv7 assigned by ingest */
    char *deployment_id;      /* message key */
    char *account_id;         /* owner */
    char *phone_number;       /* E.164 */
    char *caller_id;          /* ;ani= or deployment default, may be NULL */
    char *post_dial;          /* ;postd= digits, may be NULL */
    char *message_reference;  /* client reference, may be NULL */
    char *call_parameters;    /* JSON object text, may be NULL */
    char *retry_rules;        /* JSON object text: result -> seconds or "never", may be NULL */
    char *result_url;         /* per-call webhook override, may be NULL */
    char *request_id;         /* HTTP request that accepted it, may be NULL */
    char *upload_id;          /* CSV upload it came from, may be NULL */
    char *queued_via;         /* "plum": queued through the Plum routes; NULL: the native API */
    char *app;                /* the call's own call-control document (JSON object or array
                                 text, checked by ob_appdoc_parse), may be NULL */
    int64_t max_attempts;     /* 1..OB_MAX_ATTEMPTS */
    int64_t retry_interval_s; /* seconds between attempts */
    int64_t priority;         /* higher first */
    int64_t not_before_ms;    /* unix ms; not dialed before */
    int64_t expires_at_ms;    /* unix ms; 0 = never */
    int64_t accepted_at_ms;   /* unix ms when ingest accepted it */
} ob_call_request_t;

/* outbound.call-requests, kind "cancel_deployment": cancels every call of the
 * deployment accepted up to requested_at that has not started dialing. It
 * travels on the deployment's partition, behind the calls it concerns. */
typedef struct {
    char *command_id;        /* UUIDv7, names the command */
    char *deployment_id;     /* message key */
    char *account_id;        /* owner */
    char *request_id;        /* HTTP request that asked for it, may be NULL */
    int64_t requested_at_ms; /* unix ms; calls accepted later are not touched */
} ob_cancel_deployment_t;

/* outbound.dial-jobs: one attempt released to a dialer. */
typedef struct {
    char *job_id;             /* UUIDv7, names the attempt row's job */
    char *call_id;            /* call to dial */
    char *deployment_id;      /* for capacity accounting and logs */
    char *account_id;         /* owner */
    char *phone_number;       /* E.164 */
    char *caller_id;          /* may be NULL */
    char *post_dial;          /* may be NULL */
    char *message_reference;  /* may be NULL */
    char *call_parameters;    /* JSON object text, may be NULL */
    char *start_url;          /* application to run on answer, may be NULL */
    int64_t attempt;          /* 1..max_attempts */
    int64_t max_attempts;     /* for the retry decision at the end */
    int64_t retry_interval_s; /* seconds until the next attempt */
    int64_t lease_until_ms;   /* unix ms; the scheduler reclaims the attempt after */
    char *detection;          /* JSON object text: the deployment's detection thresholds, or NULL */
    char *app;                /* the call-control document run on answer (the call's, else the
                                 deployment's; JSON object or array text), may be NULL */
} ob_dial_job_t;

/* outbound.call-events: a CloudEvents 1.0 envelope around the call's state. */
typedef struct {
    char *id;                /* event id (UUIDv7), for consumer deduplication */
    char *source;            /* "/outbound/<service>/<instance>" */
    char *type;              /* "outbound.call.queued", ".dialing", ".connected", ".completed",
                                ".retry_scheduled", ".gathered" (digits), ".handed_over"
                                (result: the connect's second leg) */
    char *call_id;           /* subject */
    char *deployment_id;     /* data.deployment_id, also the message key */
    char *account_id;        /* data.account_id */
    char *state;             /* queued | dialing | connected | completed */
    char *status;            /* completed | failed | uncalled, with state completed */
    char *result;            /* callee type or failure result of the attempt */
    char *reason;            /* why it ended this way */
    char *phone_number;      /* E.164 */
    char *message_reference; /* may be NULL */
    int64_t attempt;         /* attempt number concerned (0 for queued) */
    int64_t max_attempts;    /* call's limit */
    int64_t time_ms;         /* unix ms of the transition */
    char *detection;         /* JSON object text: the audio detector's verdict on a completed
                                attempt (confidence, decided_by, decision_ms, beep, beep_ms),
                                or NULL when none listened */
    char *digits;            /* outbound.call.gathered: the digits a gather read ("" for none),
                                else NULL */
} ob_call_event_t;

/* Encoders return a malloc'd JSON text (caller frees with free). */
char *ob_cancel_deployment_encode(const ob_cancel_deployment_t *m);
char *ob_call_request_encode(const ob_call_request_t *m);
char *ob_dial_job_encode(const ob_dial_job_t *m);
char *ob_call_event_encode(const ob_call_event_t *m);
/* The CloudEvent's data member alone, as stored in call_events.data. */
char *ob_call_event_data_encode(const ob_call_event_t *m);

/* Decoders fill *out (zeroed first) from len bytes of JSON. On OB_EINVAL,
 * err names the field and what is wrong, and *out holds nothing. */
ob_rc_t ob_call_request_decode(const char *json, size_t len, ob_call_request_t *out,
                               ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ob_cancel_deployment_decode(const char *json, size_t len, ob_cancel_deployment_t *out,
                                    ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ob_dial_job_decode(const char *json, size_t len, ob_dial_job_t *out,
                           ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ob_call_event_decode(const char *json, size_t len, ob_call_event_t *out,
                             ob_err_t *err) OB_MUSTCHECK;

/* Decodes the data member alone (as stored in call_events.data) into the
 * data fields of *out, which the caller zeroed; envelope fields untouched. */
ob_rc_t ob_call_event_data_decode(const char *json, size_t len, ob_call_event_t *out,
                                  ob_err_t *err) OB_MUSTCHECK;

/* The "kind" of a call-requests message ("queue", "cancel_deployment") copied
 * into buf, or "" when the message has none. */
void ob_request_kind(const char *json, size_t len, char buf[32]);

void ob_call_request_clear(ob_call_request_t *m);
void ob_cancel_deployment_clear(ob_cancel_deployment_t *m);
void ob_dial_job_clear(ob_dial_job_t *m);
void ob_call_event_clear(ob_call_event_t *m);

#endif
