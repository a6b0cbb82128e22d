/*
 * The platform's vocabulary (docs DESIGN section 2), typed once: a call's
 * state, its final status, an attempt's result (the callee type), why a call
 * or an attempt ended, and what a pending call waits for. Each is an enum
 * with one name table, the X-macro list below; SQL parameters, JSON members,
 * metric labels and the API's filters take their names from here, and
 * tools/check_vocab.py checks the SQL, the JSON Schemas and the OpenAPI
 * document against these lists. Domain layer: no I/O, no allocation.
 */
#ifndef OB_VOCAB_H
#define OB_VOCAB_H

#include <stdbool.h>

/* Each list is X(constant, "name"), in the enum's order. Use it to build
 * compile-time tables (metric label sets, SQL text):
 *     #define X(e, s) [M_FIRST + e] = {"name", "label=\"" s "\"", ...},
 *     OB_RESULT_DIALED_LIST(X)
 *     #undef X
 */

/* A call's state: queued -> dialing -> connected -> completed (calls.state,
 * events' data.state). */
#define OB_STATE_LIST(X)                                                                           \
    X(OB_STATE_QUEUED, "queued")                                                                   \
    X(OB_STATE_DIALING, "dialing")                                                                 \
    X(OB_STATE_CONNECTED, "connected")                                                             \
    X(OB_STATE_COMPLETED, "completed")

/* The final status of a completed call (calls.status): answered, dialed and
 * never answered, or never dialed. */
#define OB_STATUS_LIST(X)                                                                          \
    X(OB_STATUS_COMPLETED, "completed")                                                            \
    X(OB_STATUS_FAILED, "failed")                                                                  \
    X(OB_STATUS_UNCALLED, "uncalled")

/* The results a carrier reports for an attempt it dialed, in the order of
 * the sim carrier's test numbers (...55501D0 to ...55501D7, docs) and of
 * the dialer's outbound_results_total series. busy..unknown are the results
 * a retry rule may name (OB_RESULT_RETRIED_FIRST..OB_RESULT_RETRIED_LAST). */
#define OB_RESULT_DIALED_LIST(X)                                                                   \
    X(OB_RESULT_VOICE, "voice")                                                                    \
    X(OB_RESULT_ANSWERINGMACHINE, "answeringmachine")                                              \
    X(OB_RESULT_FAX, "fax")                                                                        \
    X(OB_RESULT_BUSY, "busy")                                                                      \
    X(OB_RESULT_NOANSWER, "noanswer")                                                              \
    X(OB_RESULT_INFORMATIONTONE, "informationtone")                                                \
    X(OB_RESULT_LINEFAILURE, "linefailure")                                                        \
    X(OB_RESULT_UNKNOWN, "unknown")

/* Every result of an attempt (calls.result, attempts.result, events'
 * data.result): the dialed ones, then noattempt (never dialed). */
#define OB_RESULT_LIST(X)                                                                          \
    OB_RESULT_DIALED_LIST(X)                                                                       \
    X(OB_RESULT_NOATTEMPT, "noattempt")

/* Why a call or an attempt ended (calls.reason, attempts.reason, events'
 * data.reason): answered; an unanswered attempt's own result (busy ..
 * unknown); why a call failed after its last attempt (max_attempts,
 * retry_rule, expired, cancelled: conclude_attempts()); why a pending call
 * ended (cancelled, expired, window_closed: end_pending_calls()); why an
 * attempt was cut or never tried (dialer_shutdown, lease_expired,
 * url_check_failed). */
#define OB_REASON_LIST(X)                                                                          \
    X(OB_REASON_ANSWERED, "answered")                                                              \
    X(OB_REASON_BUSY, "busy")                                                                      \
    X(OB_REASON_NOANSWER, "noanswer")                                                              \
    X(OB_REASON_INFORMATIONTONE, "informationtone")                                                \
    X(OB_REASON_LINEFAILURE, "linefailure")                                                        \
    X(OB_REASON_UNKNOWN, "unknown")                                                                \
    X(OB_REASON_MAX_ATTEMPTS, "max_attempts")                                                      \
    X(OB_REASON_RETRY_RULE, "retry_rule")                                                          \
    X(OB_REASON_EXPIRED, "expired")                                                                \
    X(OB_REASON_CANCELLED, "cancelled")                                                            \
    X(OB_REASON_WINDOW_CLOSED, "window_closed")                                                    \
    X(OB_REASON_DIALER_SHUTDOWN, "dialer_shutdown")                                                \
    X(OB_REASON_LEASE_EXPIRED, "lease_expired")                                                    \
    X(OB_REASON_URL_CHECK_FAILED, "url_check_failed")

/* What a pending call waits for (wait_reason() in common/sql/calls.sql, the
 * API's waiting_for, the scheduler's outbound_calls_pending series, in this
 * order). */
#define OB_WAIT_LIST(X)                                                                            \
    X(OB_WAIT_CAPACITY, "capacity")                                                                \
    X(OB_WAIT_WINDOW, "window")                                                                    \
    X(OB_WAIT_SCHEDULED, "scheduled")                                                              \
    X(OB_WAIT_RETRY_WAIT, "retry_wait")                                                            \
    X(OB_WAIT_PAUSED, "paused")

#define OB_VOCAB_ENUM_MEMBER(e, s) e,

typedef enum { OB_STATE_LIST(OB_VOCAB_ENUM_MEMBER) OB_STATE_COUNT } ob_state_t;
typedef enum { OB_STATUS_LIST(OB_VOCAB_ENUM_MEMBER) OB_STATUS_COUNT } ob_status_t;
typedef enum { OB_RESULT_LIST(OB_VOCAB_ENUM_MEMBER) OB_RESULT_COUNT } ob_result_t;
typedef enum { OB_REASON_LIST(OB_VOCAB_ENUM_MEMBER) OB_REASON_COUNT } ob_reason_t;
typedef enum { OB_WAIT_LIST(OB_VOCAB_ENUM_MEMBER) OB_WAIT_COUNT } ob_wait_t;

/* Results [0, OB_RESULT_DIALED_COUNT) are the dialed ones; those in
 * [OB_RESULT_RETRIED_FIRST, OB_RESULT_RETRIED_LAST] end an attempt
 * unanswered and may be named by a retry rule. */
#define OB_RESULT_DIALED_COUNT  OB_RESULT_NOATTEMPT
#define OB_RESULT_RETRIED_FIRST OB_RESULT_BUSY
#define OB_RESULT_RETRIED_LAST  OB_RESULT_UNKNOWN

/* The name of a value, a string literal (never NULL). A value outside the
 * enum is a programmer error (OB_ASSERT). */
const char *ob_state_name(ob_state_t v);
const char *ob_status_name(ob_status_t v);
const char *ob_result_name(ob_result_t v);
const char *ob_reason_name(ob_reason_t v);
const char *ob_wait_name(ob_wait_t v);

/* The value named text (exact, case-sensitive) into *out; false, *out
 * unchanged, for NULL or a name not in the list. */
bool ob_state_parse(const char *text, ob_state_t *out);
bool ob_status_parse(const char *text, ob_status_t *out);
bool ob_result_parse(const char *text, ob_result_t *out);
bool ob_reason_parse(const char *text, ob_reason_t *out);
bool ob_wait_parse(const char *text, ob_wait_t *out);

/* A result a retry rule may name: busy, noanswer, informationtone,
 * linefailure or unknown. */
bool ob_result_retried(ob_result_t v);

/* The reason an unanswered attempt ends with, its result's own name
 * (OB_REASON_BUSY for OB_RESULT_BUSY), into *out; false, *out unchanged,
 * for a result that is not retried (a callee type, noattempt). */
bool ob_reason_of_result(ob_result_t v, ob_reason_t *out);

#endif
