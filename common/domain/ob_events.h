/*
 * Call events through a transactional outbox. A state change and its event
 * row are written in the same Postgres transaction (the truth), the event's
 * id waiting in call_events_outbox; the event is then published to
 * outbound.call-events and leaves the outbox once the broker acknowledged
 * it. Events a crash left in the outbox are re-sent by the relay, so
 * consumers see every event at least once and deduplicate by id.
 */
#ifndef OB_EVENTS_H
#define OB_EVENTS_H

#include "ob_common.h"
#include "ob_kafka.h"
#include "ob_proto.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* Inserts ev into call_events inside the caller's open transaction. Fills
 * ev->id (a new UUIDv7) and ev->time_ms (now) when they are unset; the
 * strings it sets are owned by ev. */
ob_rc_t ob_events_record(PGconn *conn, ob_call_event_t *ev, ob_err_t *err) OB_MUSTCHECK;

/* The same for n events in one statement. */
ob_rc_t ob_events_record_many(PGconn *conn, ob_call_event_t *evs, size_t n,
                              ob_err_t *err) OB_MUSTCHECK;

/* After the transaction committed: publishes the n events keyed by their
 * deployment, waits for the acknowledgements and marks them published.
 * Failures leave the rows for the relay and are returned. */
ob_rc_t ob_events_publish(ob_producer_t *p, const char *topic, PGconn *conn,
                          const ob_call_event_t *evs, size_t n, ob_err_t *err) OB_MUSTCHECK;

/* The pieces of ob_events_publish, for a caller that overlaps the wait for
 * the acknowledgements with other work (the dialer marks them in its next
 * transaction). ob_events_send queues the n events and hands back the batch
 * to wait for with ob_produce_batch_wait (always, even when it returns an
 * error); ob_events_ids makes the Postgres array literal of their ids
 * (caller frees); ob_events_mark marks those published, inside the caller's
 * open transaction or on its own (then without waiting for the WAL flush). */
ob_rc_t ob_events_send(ob_producer_t *p, const char *topic, const ob_call_event_t *evs, size_t n,
                       ob_produce_batch_t **out, ob_err_t *err) OB_MUSTCHECK;
char *ob_events_ids(const ob_call_event_t *evs, size_t n);
ob_rc_t ob_events_mark(PGconn *conn, const char *ids, bool in_transaction,
                       ob_err_t *err) OB_MUSTCHECK;

/* Re-publishes up to limit events recorded more than older_than_ms ago and
 * still unpublished. Returns how many were sent, or -1 on error. */
int ob_events_relay(ob_producer_t *p, const char *topic, PGconn *conn, int older_than_ms, int limit,
                    ob_err_t *err);

#endif
