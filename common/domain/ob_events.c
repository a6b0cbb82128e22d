/*
 * Outbox implementation. The CloudEvent text is built from the same struct
 * for the live path and the relay (which rebuilds the struct from the row),
 * so both publish identical messages.
 */
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_uuid.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ob_rc_t ob_events_record_many(PGconn *conn, ob_call_event_t *evs, size_t n, ob_err_t *err)
{
    if (n == 0)
        return OB_OK;
    /* One statement for the batch: the rows travel as a JSON array. */
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        ob_call_event_t *ev = &evs[i];
        if (!ev->id) {
            ev->id = ob_xmalloc(OB_UUID_STRLEN + 1);
            ob_uuid_v7(ev->id);
        }
        if (!ev->time_ms)
            ev->time_ms = ob_now_ms();
        char *data = ob_call_event_data_encode(ev);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "event_id", ev->id);
        cJSON_AddStringToObject(row, "call_id", ev->call_id);
        cJSON_AddStringToObject(row, "deployment_id", ev->deployment_id);
        cJSON_AddStringToObject(row, "type", ev->type);
        cJSON_AddStringToObject(row, "source", ev->source);
        cJSON_AddNumberToObject(row, "at", (double)ev->time_ms);
        /* The call and deployment are the row's own columns: the stored
         * data leaves them out (about 100 of its 270 bytes), and readers
         * (the relay, a call's events in the API) put them back. */
        cJSON *stored = cJSON_Parse(data);
        cJSON_DeleteItemFromObjectCaseSensitive(stored, "call_id");
        cJSON_DeleteItemFromObjectCaseSensitive(stored, "deployment_id");
        cJSON_AddItemToObject(row, "data", stored);
        cJSON_AddItemToArray(rows, row);
        free(data);
    }
    char *text = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);
    const char *params[] = {text};
    /* Each event waits in the outbox until the broker acknowledged it. data
     * is read as text and then cast: json_to_recordset's own conversion of a
     * nested object to jsonb costs twice as much. */
    ob_rc_t rc =
        ob_pg_exec(conn,
                   "WITH r AS (SELECT * FROM json_to_recordset($1::json)"
                   "  AS r(event_id uuid, call_id uuid, deployment_id uuid, type text,"
                   "  source text, at bigint, data text)),"
                   " o AS (INSERT INTO call_events_outbox (event_id, occurred_at)"
                   "  SELECT event_id, to_timestamp(at / 1000.0) FROM r)"
                   " INSERT INTO call_events (event_id, call_id, deployment_id, type, source,"
                   " occurred_at, data)"
                   " SELECT event_id, call_id, deployment_id, type, source,"
                   " to_timestamp(at / 1000.0), data::jsonb FROM r",
                   1, params, NULL, err);
    cJSON_free(text);
    return rc;
}

ob_rc_t ob_events_record(PGconn *conn, ob_call_event_t *ev, ob_err_t *err)
{
    return ob_events_record_many(conn, ev, 1, err);
}

char *ob_events_ids(const ob_call_event_t *evs, size_t n)
{
    size_t cap = n * (OB_UUID_STRLEN + 1) + 3;
    char *ids = ob_xmalloc(cap);
    size_t o = 0;
    ids[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(ids + o, cap - o, "%s%s", i ? "," : "", evs[i].id);
    ids[o++] = '}';
    ids[o] = '\0';
    return ids;
}

ob_rc_t ob_events_mark(PGconn *conn, const char *ids, bool in_transaction, ob_err_t *err)
{
    const char *params[] = {ids};
    /* On its own, not waiting for the WAL flush: a mark lost to a crash only
     * makes the relay send the event again, and consumers deduplicate by id.
     * (Inside the caller's transaction it commits as that one does.) */
    return ob_pg_exec(conn,
                      in_transaction
                          ? "DELETE FROM call_events_outbox WHERE event_id = ANY($1::uuid[])"
                          : "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
                            " DELETE FROM call_events_outbox USING s"
                            " WHERE event_id = ANY($1::uuid[])",
                      1, params, NULL, err);
}

ob_rc_t ob_events_send(ob_producer_t *p, const char *topic, const ob_call_event_t *evs, size_t n,
                       ob_produce_batch_t **out, ob_err_t *err)
{
    ob_produce_batch_t *b = ob_produce_batch_new();
    ob_rc_t rc = OB_OK;
    for (size_t i = 0; i < n && rc == OB_OK; i++) {
        char *text = ob_call_event_encode(&evs[i]);
        rc = ob_produce_batch_add(p, b, topic, evs[i].deployment_id, text, strlen(text), 5000, err);
        free(text);
    }
    *out = b; /* waited for (and freed) by the caller even when a message failed */
    return rc;
}

ob_rc_t ob_events_publish(ob_producer_t *p, const char *topic, PGconn *conn,
                          const ob_call_event_t *evs, size_t n, ob_err_t *err)
{
    if (n == 0)
        return OB_OK;
    ob_produce_batch_t *b = NULL;
    ob_rc_t rc = ob_events_send(p, topic, evs, n, &b, err);
    ob_err_t wait_err = {{0}};
    ob_rc_t wrc = ob_produce_batch_wait(b, 30000, &wait_err);
    if (rc != OB_OK)
        return rc;
    if (wrc != OB_OK) {
        ob_err_set(err, "%s", wait_err.msg);
        return wrc;
    }
    char *ids = ob_events_ids(evs, n);
    rc = ob_events_mark(conn, ids, false, err);
    free(ids);
    return rc;
}

int ob_events_relay(ob_producer_t *p, const char *topic, PGconn *conn, int older_than_ms, int limit,
                    ob_err_t *err)
{
    char age[32], lim[32];
    PGresult *res = NULL;
    snprintf(age, sizeof(age), "%d", older_than_ms);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {age, lim};
    if (ob_pg_exec(conn,
                   "SELECT e.event_id, e.type, e.source,"
                   " (extract(epoch FROM e.occurred_at) * 1000)::bigint,"
                   " (e.data || jsonb_build_object('call_id', e.call_id,"
                   " 'deployment_id', e.deployment_id))::text"
                   " FROM call_events_outbox o JOIN call_events e USING (event_id)"
                   " WHERE o.occurred_at < now() - make_interval(secs => $1::int / 1000.0)"
                   " ORDER BY o.occurred_at LIMIT $2::int",
                   2, params, &res, err) != OB_OK)
        return -1;
    int rows = PQntuples(res);
    ob_call_event_t *evs = ob_xcalloc((size_t)rows, sizeof(*evs));
    int n = 0;
    for (int i = 0; i < rows; i++) {
        ob_call_event_t *ev = &evs[n];
        const char *data = PQgetvalue(res, i, 4);
        ob_err_t derr = {{0}};
        if (ob_call_event_data_decode(data, strlen(data), ev, &derr) != OB_OK) {
            OB_WARN("events", "event %s has undecodable data (%s); skipped", PQgetvalue(res, i, 0),
                    derr.msg);
            continue;
        }
        ev->id = ob_xstrdup(PQgetvalue(res, i, 0));
        ev->type = ob_xstrdup(PQgetvalue(res, i, 1));
        ev->source = ob_xstrdup(PQgetvalue(res, i, 2));
        ev->time_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        n++;
    }
    PQclear(res);
    ob_rc_t rc = ob_events_publish(p, topic, conn, evs, (size_t)n, err);
    for (int i = 0; i < n; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    return rc == OB_OK ? n : -1;
}
