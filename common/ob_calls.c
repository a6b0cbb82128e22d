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

static char *col(PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? NULL : ob_xstrdup(PQgetvalue(res, row, c));
}

ob_rc_t ob_calls_end(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                     const char *source, const char *reason, const char *sql, int nparams,
                     const char *const *params, int *ended, ob_err_t *err)
{
    PGresult *res = NULL;
    ob_call_event_t *evs = NULL;
    int n = 0;
    ob_rc_t rc = ob_pg_begin(conn, err);

    *ended = 0;
    if (rc == OB_OK)
        rc = ob_pg_exec(conn, sql, nparams, params, &res, err);
    if (rc == OB_OK) {
        n = PQntuples(res);
        evs = ob_xcalloc((size_t)n + 1, sizeof(*evs));
    }
    for (int i = 0; i < n && rc == OB_OK; i++) {
        ob_call_event_t *ev = &evs[i];
        ev->source = ob_xstrdup(source);
        ev->type = ob_xstrdup("outbound.call.completed");
        ev->call_id = col(res, i, 0);
        ev->deployment_id = col(res, i, 1);
        ev->account_id = col(res, i, 2);
        ev->state = ob_xstrdup("completed");
        ev->status = col(res, i, 3);
        ev->result = col(res, i, 4);
        ev->reason = ob_xstrdup(reason);
        ev->phone_number = col(res, i, 5);
        ev->message_reference = col(res, i, 6);
        ev->attempt = atoi(PQgetvalue(res, i, 7));
        ev->max_attempts = atoi(PQgetvalue(res, i, 8));
        rc = ob_events_record(conn, ev, err);
    }
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK) {
        ob_pg_rollback(conn);
    } else if (n > 0) {
        *ended = n;
        ob_err_t perr = {{0}};
        if (ob_events_publish(producer, events_topic, conn, evs, (size_t)n, &perr) != OB_OK)
            OB_WARN("calls", "%s events left for the relay: %s", reason, perr.msg);
    }
    for (int i = 0; evs && i <= n; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    PQclear(res);
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
