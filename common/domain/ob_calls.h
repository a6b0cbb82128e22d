/*
 * Ending calls and attempts: the one place that turns the rows such a
 * statement returns into call state and events, shared by ingest (cancel),
 * the scheduler (expiry, expired leases) and the dialers (attempt results).
 */
#ifndef OB_CALLS_H
#define OB_CALLS_H

#include "ob_common.h"
#include "ob_kafka.h"
#include "ob_proto.h"
#include "ob_vocab.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* Runs sql in its own transaction. The statement must end calls and return
 * (call_id, deployment_id, account_id, status, result, phone_number,
 * message_reference, attempts_made, max_attempts) for each. Records one
 * completed event per row with the given reason (the one the statement
 * wrote), commits, then publishes the events (those that fail are left for
 * the relay; all of them when producer is NULL). *ended gets the row count. */
ob_rc_t ob_calls_end(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                     const char *source, ob_reason_t reason, const char *sql, int nparams,
                     const char *const *params, int *ended, ob_err_t *err) OB_MUSTCHECK;

/* How one attempt ended, for the conclusions below. */
typedef struct {
    const char *call_id;    /* the call */
    int attempt;            /* its attempt that ended */
    ob_result_t result;     /* voice, busy, ..., noattempt */
    ob_reason_t reason;     /* answered, the result (ob_reason_of_result), dialer_shutdown, ... */
    bool answered;          /* it was connected */
    bool connect;           /* its connected transition is written with its end: it was
                               answered and ended before that was recorded (one update of
                               the call and attempt rows instead of two) */
    int ring_ms;            /* until the answer or the end */
    int talk_ms;            /* connected time */
    int decision_ms;        /* callee type decided this long after the answer, or -1 */
    int sip_code;           /* final SIP status of a sip carrier call, 0 if none */
    const char *sip_reason; /* its reason phrase, or why no response decided; NULL if none */
    const char *decided_by; /* the audio detector's rule ("long_greeting", ...); NULL when no
                               detector listened, and then the three below are unset */
    double confidence;      /* its confidence, 0-1 */
    bool beep;              /* it heard a machine's beep */
    int beep_ms;            /* this long after the answer */
    const char *verbs;      /* the verb log, a JSON array's text, or NULL */
    const char *digits;     /* digits gathered (the last gather's), or NULL */
    int greeting_end_ms;    /* the callee's first words ended, after the answer; -1: unknown */
    int first_audio_ms;     /* our first audio went out, after the answer; -1: none */
} ob_attempt_end_t;
/* Of the application's four (attempts.verbs, digits, greeting_end_ms,
 * first_audio_ms): verbs that is not a JSON array's text is stored as NULL;
 * a greeting_end_ms or first_audio_ms of 0 or less is stored as NULL, so a
 * zero-initialised ob_attempt_end_t records none of them (a first audio at
 * 0 ms is reported as 1). */

/*
 * Inside the caller's open transaction, concludes the n attempts in one
 * statement through conclude_attempts() (dialing or connected ones; released
 * ones only with result noattempt), and records the SIP outcome of those
 * that have one (sip_code, sip_reason), the detector's (confidence,
 * decided_by, beep) and the application's (verbs, digits, greeting_end_ms,
 * first_audio_ms): each call completes (answered), is
 * queued for its next attempt by its retry rules (event
 * outbound.call.retry_scheduled) or fails. For each concluded attempt
 * done[i] is set and evs[i] filled (its event, to be recorded by the
 * caller; owned by evs[i]); an attempt already concluded gets done[i] false.
 */
ob_rc_t ob_calls_conclude_tx(PGconn *conn, const char *source, const ob_attempt_end_t *ends,
                             size_t n, ob_call_event_t *evs, bool *done,
                             ob_err_t *err) OB_MUSTCHECK;

/* One attempt in its own transaction, its event recorded, committed and
 * published. Returns OB_ECONFLICT when the attempt had already been
 * concluded (nothing changed), OB_EDEPENDENCY/OB_ERR/OB_EAGAIN when Postgres
 * failed. */
ob_rc_t ob_calls_conclude(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                          const char *source, const ob_attempt_end_t *end,
                          ob_err_t *err) OB_MUSTCHECK;

/* cancel_pending() for one call (call_id) or every call of the deployment
 * accepted up to before_ms (call_id NULL), through ob_calls_end. */
ob_rc_t ob_calls_cancel(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                        const char *source, const char *deployment_id, const char *call_id,
                        int64_t before_ms, int *cancelled, ob_err_t *err) OB_MUSTCHECK;

#endif
