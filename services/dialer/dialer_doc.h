/*
 * The application on answer, run: each connected call's call-control
 * document (common/domain/ob_appdoc.h) executed verb by verb on the
 * worker's loop. The document is the call's or its deployment's (the dial
 * job's app), replaced by one start_url answers, continued by one an
 * action_url answers. Audio comes prepared from the media caches
 * (dialer_media.h); the carrier sends it and reports what the callee did
 * (digits, the machine's greeting over, a connect's outcome). What every
 * verb did goes into the attempt's verb log, recorded with its conclusion,
 * and a gather's digits are published as outbound.call.gathered.
 *
 * Start rule: the verbs start once the call is connected, its callee type
 * is decided and start_url (if any) has answered: a person (voice) or an
 * unknown callee hears the verbs; an answering machine hears the machine
 * branch (the verbs when there is none) once its greeting is over (after
 * the beep); a fax is hung up on. The verbs' end hangs the call up.
 *
 * Main thread only: called from the worker's carrier and start_url
 * callbacks and from dialer_run.
 */
#ifndef DIALER_DOC_H
#define DIALER_DOC_H

#include "dialer.h"
#include "dialer_app.h"

/* The job's document is read and its audio asked for (rendered and
 * fetched ahead, so the first verb does not wait), once the call is taken
 * to be dialed. A job without app has nothing to prepare. */
void dialer_doc_prepare(dialer_ctx_t *ctx, dialer_slot_t *s);

/* The call's connected transition was recorded: the document may start. */
void dialer_doc_connected(dialer_ctx_t *ctx, dialer_slot_t *s);

/* The callee type was decided. */
void dialer_doc_decided(dialer_ctx_t *ctx, dialer_slot_t *s, const char *callee_type);

/* The callee type was revised (a voice verdict, then a machine's beep):
 * what runs for the person stops (its log entry closed "machine_beep"),
 * and the run starts over with the machine's verbs once the beep is over.
 * A call being handed over, waiting for an action_url or hung up goes on
 * as it was. */
void dialer_doc_revised(dialer_ctx_t *ctx, dialer_slot_t *s, const char *callee_type);

/* A start_url or action_url request ended (r as dialer_app's done). Returns
 * true when the document took it over (a document answered, or the
 * request was the document's own), false when the legacy answer
 * (hangup, stay_connected_s) is the caller's to apply. */
bool dialer_doc_answered(dialer_ctx_t *ctx, dialer_slot_t *s, const dialer_app_result_t *r);

/* The carrier's media events (carrier_events_t), for the slot's call. */
void dialer_doc_played(dialer_ctx_t *ctx, dialer_slot_t *s, int played_ms, bool interrupted);
void dialer_doc_digit(dialer_ctx_t *ctx, dialer_slot_t *s, char digit, bool inband);
void dialer_doc_greeting_over(dialer_ctx_t *ctx, dialer_slot_t *s, bool beep, int at_ms);
void dialer_doc_first_audio(dialer_ctx_t *ctx, dialer_slot_t *s, int greeting_end_ms,
                            int first_audio_ms);
void dialer_doc_handed_over(dialer_ctx_t *ctx, dialer_slot_t *s, const char *outcome, int code,
                            int talk_ms);

/* The call ended: the verb running is logged as cut short, and the log,
 * the digits and the first-audio timing go into s->end (pointers owned by
 * the slot until it is idle again). */
void dialer_doc_ended(dialer_ctx_t *ctx, dialer_slot_t *s);

/* Advances timers (pauses, gather waits) and calls waiting for audio;
 * returns when it wants to be called again (monotonic ms), INT64_MAX when
 * nothing is due. */
int64_t dialer_doc_run(dialer_ctx_t *ctx, int64_t now_ms);

/* Frees what the slot's run holds; NULL-safe on a slot without one. */
void dialer_doc_free(dialer_slot_t *s);

#endif
