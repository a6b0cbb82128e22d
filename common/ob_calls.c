/*
 * Shared endings of calls. The state change and its events are one
 * transaction (the outbox), so a crash can delay the events but never lose
 * or contradict them.
 */
#include "ob_calls.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *col(PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? NULL : ob_xstrdup(PQgetvalue(res, row, c));
}

/* Where run() finds an event's members in the rows of a statement. */
typedef struct {
    int state, status, result, reason; /* -1: fixed (completed, the given reason) */
    int phone, reference, attempt, max_attempts;
} layout_t;

/* ended_call rows: (call_id, deployment_id, account_id, status, result,
 * phone_number, message_reference, attempts_made, max_attempts). */
static const layout_t ENDED = {-1, 3, 4, -1, 5, 6, 7, 8};
/* concluded_call rows: (call_id, deployment_id, account_id, state, status,
 * result, reason, phone_number, message_reference, attempts_made,
 * max_attempts, next_attempt_at). */
static const layout_t CONCLUDED = {3, 4, 5, 6, 7, 8, 9, 10};

/* Runs sql in its own transaction, records one event per returned row and
 * commits, then publishes the events (those that fail wait for the relay). */
static ob_rc_t run(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                   const char *source, const layout_t *l, const char *reason, const char *sql,
                   int nparams, const char *const *params, int *rows, ob_err_t *err)
{
    PGresult *res = NULL;
    ob_call_event_t *evs = NULL;
    int n = 0;
    ob_rc_t rc = ob_pg_begin(conn, err);

    *rows = 0;
    if (rc == OB_OK)
        rc = ob_pg_exec(conn, sql, nparams, params, &res, err);
    if (rc == OB_OK) {
        n = PQntuples(res);
        evs = ob_xcalloc((size_t)n + 1, sizeof(*evs));
    }
    for (int i = 0; i < n && rc == OB_OK; i++) {
        ob_call_event_t *ev = &evs[i];
        const char *state = l->state < 0 ? "completed" : PQgetvalue(res, i, l->state);
        ev->source = ob_xstrdup(source);
        ev->type = ob_xasprintf("outbound.call.%s",
                                strcmp(state, "queued") == 0 ? "retry_scheduled" : "completed");
        ev->call_id = col(res, i, 0);
        ev->deployment_id = col(res, i, 1);
        ev->account_id = col(res, i, 2);
        ev->state = ob_xstrdup(state);
        ev->status = col(res, i, l->status);
        ev->result = col(res, i, l->result);
        ev->reason = l->reason < 0 ? ob_xstrdup(reason) : col(res, i, l->reason);
        ev->phone_number = col(res, i, l->phone);
        ev->message_reference = col(res, i, l->reference);
        ev->attempt = atoi(PQgetvalue(res, i, l->attempt));
        ev->max_attempts = atoi(PQgetvalue(res, i, l->max_attempts));
        rc = ob_events_record(conn, ev, err);
    }
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK) {
        ob_pg_rollback(conn);
    } else if (n > 0) {
        *rows = n;
        ob_err_t perr = {{0}};
        if (ob_events_publish(producer, events_topic, conn, evs, (size_t)n, &perr) != OB_OK)
            OB_WARN("calls", "%s events left for the relay: %s", evs[0].type, perr.msg);
    }
    for (int i = 0; evs && i <= n; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    PQclear(res);
    return rc;
}

ob_rc_t ob_calls_end(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                     const char *source, const char *reason, const char *sql, int nparams,
                     const char *const *params, int *ended, ob_err_t *err)
{
    return run(conn, producer, events_topic, source, &ENDED, reason, sql, nparams, params, ended,
               err);
}

ob_rc_t ob_calls_conclude(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                          const char *source, const char *call_id, int attempt, const char *result,
                          const char *reason, bool answered, int ring_ms, int talk_ms,
                          ob_err_t *err)
{
    char attempt_s[16], ring[16], talk[16];
    int rows = 0;
    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    snprintf(ring, sizeof(ring), "%d", ring_ms);
    snprintf(talk, sizeof(talk), "%d", talk_ms);
    const char *params[] = {call_id, attempt_s, result, reason, answered ? "true" : "false",
                            ring,    talk};
    ob_rc_t rc = run(conn, producer, events_topic, source, &CONCLUDED, NULL,
                     "SELECT * FROM conclude_attempt($1::uuid, $2::int, $3, $4, $5::boolean,"
                     " $6::int, $7::int)",
                     7, params, &rows, err);
    if (rc == OB_OK && rows == 0) {
        ob_err_set(err, "attempt %d of call %s had already been concluded", attempt, call_id);
        rc = OB_ECONFLICT;
    }
    return rc;
}

ob_rc_t ob_calls_cancel(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                        const char *source, const char *deployment_id, const char *call_id,
                        int64_t before_ms, int *cancelled, ob_err_t *err)
{
    char before[32];
    snprintf(before, sizeof(before), "%lld", (long long)before_ms);
    const char *params[] = {deployment_id, call_id, before};
    return ob_calls_end(conn, producer, events_topic, source, "cancelled",
                        "SELECT * FROM cancel_pending($1::uuid, $2::uuid,"
                        " to_timestamp($3::bigint / 1000.0))",
                        3, params, cancelled, err);
}
