/*
 * Call events through a transactional outbox. A state change and its event
 * row are written in the same Postgres transaction (the truth); the event is
 * then published to outbound.call-events and marked published once the
 * broker acknowledged it. Rows a crash left unpublished are re-sent by the
 * relay, so consumers see every event at least once and deduplicate by id.
 */
#ifndef OB_EVENTS_H
#define OB_EVENTS_H

#include "ob_common.h"
#include "ob_kafka.h"
#include "ob_proto.h"

#include <libpq-fe.h>

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

/* Re-publishes up to limit events recorded more than older_than_ms ago and
 * still unpublished. Returns how many were sent, or -1 on error. */
int ob_events_relay(ob_producer_t *p, const char *topic, PGconn *conn, int older_than_ms, int limit,
                    ob_err_t *err);

#endif
