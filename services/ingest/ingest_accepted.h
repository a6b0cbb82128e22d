/*
 * Accepted means visible: the calls every ingest accepted (acknowledged by
 * Kafka) that the scheduler has not recorded in Postgres yet, read back from
 * outbound.call-requests itself, so that GET answers a call from the moment
 * of its 202 on any ingest instance, at no Postgres cost per call.
 *
 * A thread consumes every partition of the topic from the scheduler group's
 * committed offsets (the first call not yet recorded) and keeps each call's
 * request message by call_id; entries below the group's committed offset
 * (recorded for good) are dropped once a second. A lookup that misses waits
 * until the thread has read up to the high watermarks of the moment, so a
 * call acknowledged before the lookup began is found if it exists.
 */
#ifndef INGEST_ACCEPTED_H
#define INGEST_ACCEPTED_H

#include "ob_config.h"
#include "ob_metrics.h"
#include "ob_proto.h"
#include "ob_uuid.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct ingest_accepted ingest_accepted_t;

/* Starts the reader of topic (the full call-requests name) for the
 * scheduler group group_id, holding at most max_bytes of messages (above
 * that it stops reading until the scheduler catches up). lag and held are
 * gauges it keeps: seconds since the oldest call held was accepted (0 when
 * none) and calls held. Returns NULL with err set on failure. */
ingest_accepted_t *ingest_accepted_start(const ob_base_config_t *cfg, const char *topic,
                                         const char *group_id, size_t max_bytes, ob_metric_t *lag,
                                         ob_metric_t *held, ob_err_t *err);

/* Stops the thread and frees; NULL-safe. */
void ingest_accepted_stop(ingest_accepted_t *a);

/* What the index reads of one call-request message: true, with its call_id
 * and accepted_at (unix ms), for a call; false for another kind or text
 * that is not a call request. From the text ingest's encoder writes
 * without parsing it, else by parsing it. Pure; for tests. */
bool ingest_accepted_fields(const char *msg, size_t len, char call_id[OB_UUID_STRLEN + 1],
                            int64_t *accepted_ms);

/* True once the reader knows where to read from (readiness). */
bool ingest_accepted_ready(ingest_accepted_t *a);

typedef enum {
    INGEST_ACCEPTED_FOUND,   /* *out holds the call's request */
    INGEST_ACCEPTED_UNKNOWN, /* read up to date and not there: never accepted, or recorded */
    INGEST_ACCEPTED_BEHIND,  /* the reader could not catch up within wait_ms */
} ingest_accepted_rc_t;

/* Looks call_id up among the calls held; on a miss, waits up to wait_ms
 * for the reader to reach the topic's high watermarks, then looks again.
 * On FOUND, *out is decoded from the message (caller clears it with
 * ob_call_request_clear). Thread-safe; blocks at most about wait_ms. */
ingest_accepted_rc_t ingest_accepted_find(ingest_accepted_t *a, const char *call_id, int wait_ms,
                                          ob_call_request_t *out);

#endif
