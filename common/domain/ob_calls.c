/*
 * Shared endings of calls. The state change and its events are one
 * transaction (the outbox), so a crash can delay the events but never lose
 * or contradict them.
 */
#include "ob_calls.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"

#include <cjson/cJSON.h>

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

/* The event of row i of res, whose columns start at column `first`. */
static void event_from_row(ob_call_event_t *ev, PGresult *res, int i, int first, const layout_t *l,
                           const char *source, const char *reason)
{
    const char *state =
        l->state < 0 ? ob_state_name(OB_STATE_COMPLETED) : PQgetvalue(res, i, first + l->state);
    ev->source = ob_xstrdup(source);
    ev->type = ob_xasprintf("outbound.call.%s", strcmp(state, ob_state_name(OB_STATE_QUEUED)) == 0
                                                    ? "retry_scheduled"
                                                    : "completed");
    ev->call_id = col(res, i, first);
    ev->deployment_id = col(res, i, first + 1);
    ev->account_id = col(res, i, first + 2);
    ev->state = ob_xstrdup(state);
    ev->status = col(res, i, first + l->status);
    ev->result = col(res, i, first + l->result);
    ev->reason = l->reason < 0 ? ob_xstrdup(reason) : col(res, i, first + l->reason);
    ev->phone_number = col(res, i, first + l->phone);
    ev->message_reference = col(res, i, first + l->reference);
    ev->attempt = atoi(PQgetvalue(res, i, first + l->attempt));
    ev->max_attempts = atoi(PQgetvalue(res, i, first + l->max_attempts));
}

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
    for (int i = 0; i < n; i++)
        event_from_row(&evs[i], res, i, 0, l, source, reason);
    if (rc == OB_OK)
        rc = ob_events_record_many(conn, evs, (size_t)n, err);
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK) {
        ob_pg_rollback(conn);
    } else if (n > 0) {
        *rows = n;
        ob_err_t perr = {{0}};
        if (producer &&
            ob_events_publish(producer, events_topic, conn, evs, (size_t)n, &perr) != OB_OK)
            OB_WARN("calls", "%s events left for the relay: %s", evs[0].type, perr.msg);
    }
    for (int i = 0; evs && i <= n; i++)
        ob_call_event_clear(&evs[i]);
    free(evs);
    PQclear(res);
    return rc;
}

ob_rc_t ob_calls_end(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                     const char *source, ob_reason_t reason, const char *sql, int nparams,
                     const char *const *params, int *ended, ob_err_t *err)
{
    return run(conn, producer, events_topic, source, &ENDED, ob_reason_name(reason), sql, nparams,
               params, ended, err);
}

/* The attempts travel as one JSON array (conclude_attempts(), migration
 * 017); "i" maps each concluded row back to its input. */
static const char CONCLUDE_MANY_SQL[] =
    "SELECT i, call_id, deployment_id, account_id, state, status, result, reason, phone_number,"
    " message_reference, attempts_made, max_attempts, next_attempt_at"
    " FROM conclude_attempts($1::json)";

/* The audio detector's verdict as the completed event's data.detection
 * object text (malloc'd), or NULL when no detector listened. */
static char *detection_json(const ob_attempt_end_t *e)
{
    if (!e->decided_by)
        return NULL;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "confidence", e->confidence);
    cJSON_AddStringToObject(d, "decided_by", e->decided_by);
    if (e->answered && e->decision_ms >= 0)
        cJSON_AddNumberToObject(d, "decision_ms", e->decision_ms);
    cJSON_AddBoolToObject(d, "beep", e->beep);
    if (e->beep)
        cJSON_AddNumberToObject(d, "beep_ms", e->beep_ms);
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    char *out = ob_xstrdup(text);
    cJSON_free(text);
    return out;
}

/* The verb log as a JSON array to embed, or NULL when verbs is not one. */
static cJSON *verb_log(const char *verbs)
{
    if (!verbs)
        return NULL;
    cJSON *log = cJSON_Parse(verbs);
    if (cJSON_IsArray(log))
        return log;
    cJSON_Delete(log);
    return NULL;
}

/* The SIP outcome (migration 022), the audio detector's verdict (migration
 * 025) and what the application did (migration 031) of the attempts just
 * concluded, in one statement; nothing when none has any. */
static ob_rc_t record_outcome(PGconn *conn, const ob_attempt_end_t *ends, size_t n,
                              const bool *done, ob_err_t *err)
{
    cJSON *rows = cJSON_CreateArray();
    int used = 0;
    for (size_t i = 0; i < n; i++) {
        const ob_attempt_end_t *e = &ends[i];
        bool detected = e->decided_by != NULL;
        cJSON *log = done[i] ? verb_log(e->verbs) : NULL;
        bool app = log || e->digits || e->greeting_end_ms > 0 || e->first_audio_ms > 0;
        if (!done[i] || (e->sip_code == 0 && !e->sip_reason && !detected && !app))
            continue;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "call_id", e->call_id);
        cJSON_AddNumberToObject(row, "attempt", e->attempt);
        if (e->sip_code > 0)
            cJSON_AddNumberToObject(row, "sip_code", e->sip_code);
        if (e->sip_reason)
            cJSON_AddStringToObject(row, "sip_reason", e->sip_reason);
        if (detected) {
            cJSON_AddNumberToObject(row, "confidence", e->confidence);
            cJSON_AddStringToObject(row, "decided_by", e->decided_by);
            cJSON_AddBoolToObject(row, "beep", e->beep);
            if (e->beep)
                cJSON_AddNumberToObject(row, "beep_ms", e->beep_ms);
        }
        if (log)
            cJSON_AddItemToObject(row, "verbs", log);
        if (e->digits)
            cJSON_AddStringToObject(row, "digits", e->digits);
        if (e->greeting_end_ms > 0)
            cJSON_AddNumberToObject(row, "greeting_end_ms", e->greeting_end_ms);
        if (e->first_audio_ms > 0)
            cJSON_AddNumberToObject(row, "first_audio_ms", e->first_audio_ms);
        cJSON_AddItemToArray(rows, row);
        used++;
    }
    ob_rc_t rc = OB_OK;
    if (used > 0) {
        char *text = cJSON_PrintUnformatted(rows);
        const char *params[] = {text};
        rc = ob_pg_exec(conn,
                        "UPDATE attempts a SET sip_code = j.sip_code, sip_reason = j.sip_reason,"
                        " confidence = j.confidence, decided_by = j.decided_by, beep = j.beep,"
                        " beep_ms = j.beep_ms, verbs = j.verbs, digits = j.digits,"
                        " greeting_end_ms = j.greeting_end_ms, first_audio_ms = j.first_audio_ms"
                        " FROM json_to_recordset($1::json)"
                        "  AS j(call_id uuid, attempt int, sip_code int, sip_reason text,"
                        "  confidence float8, decided_by text, beep boolean, beep_ms int,"
                        "  verbs jsonb, digits text, greeting_end_ms int, first_audio_ms int)"
                        " WHERE a.call_id = j.call_id AND a.attempt = j.attempt",
                        1, params, NULL, err);
        cJSON_free(text);
    }
    cJSON_Delete(rows);
    return rc;
}

ob_rc_t ob_calls_conclude_tx(PGconn *conn, const char *source, const ob_attempt_end_t *ends,
                             size_t n, ob_call_event_t *evs, bool *done, ob_err_t *err)
{
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const ob_attempt_end_t *e = &ends[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "i", (double)i);
        cJSON_AddStringToObject(row, "call_id", e->call_id);
        cJSON_AddNumberToObject(row, "attempt", e->attempt);
        cJSON_AddStringToObject(row, "result", ob_result_name(e->result));
        cJSON_AddStringToObject(row, "reason", ob_reason_name(e->reason));
        cJSON_AddBoolToObject(row, "answered", e->answered);
        if (e->connect)
            cJSON_AddTrueToObject(row, "connected");
        if (e->result != OB_RESULT_NOATTEMPT) { /* never dialed: no ring, no talk */
            cJSON_AddNumberToObject(row, "ring_ms", e->ring_ms);
            cJSON_AddNumberToObject(row, "talk_ms", e->talk_ms);
        }
        if (e->decision_ms >= 0)
            cJSON_AddNumberToObject(row, "decision_ms", e->decision_ms);
        cJSON_AddItemToArray(rows, row);
        done[i] = false;
    }
    char *text = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);
    const char *params[] = {text};
    PGresult *res = NULL;
    ob_rc_t rc = ob_pg_exec(conn, CONCLUDE_MANY_SQL, 1, params, &res, err);
    cJSON_free(text);
    for (int r = 0; rc == OB_OK && r < PQntuples(res); r++) {
        size_t i = (size_t)atoi(PQgetvalue(res, r, 0));
        if (i >= n || done[i])
            continue;
        event_from_row(&evs[i], res, r, 1, &CONCLUDED, source, NULL);
        evs[i].detection = detection_json(&ends[i]);
        done[i] = true;
    }
    PQclear(res);
    if (rc == OB_OK)
        rc = record_outcome(conn, ends, n, done, err);
    return rc;
}

ob_rc_t ob_calls_conclude(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                          const char *source, const ob_attempt_end_t *end, ob_err_t *err)
{
    ob_call_event_t ev = {0};
    bool done = false;
    ob_rc_t rc = ob_pg_begin(conn, err);
    if (rc == OB_OK)
        rc = ob_calls_conclude_tx(conn, source, end, 1, &ev, &done, err);
    if (rc == OB_OK && done)
        rc = ob_events_record(conn, &ev, err);
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK) {
        ob_pg_rollback(conn);
    } else if (!done) {
        ob_err_set(err, "attempt %d of call %s had already been concluded", end->attempt,
                   end->call_id);
        rc = OB_ECONFLICT;
    } else {
        ob_err_t perr = {{0}};
        if (ob_events_publish(producer, events_topic, conn, &ev, 1, &perr) != OB_OK)
            OB_WARN("calls", "%s event left for the relay: %s", ev.type, perr.msg);
    }
    ob_call_event_clear(&ev);
    return rc;
}

ob_rc_t ob_calls_cancel(PGconn *conn, ob_producer_t *producer, const char *events_topic,
                        const char *source, const char *deployment_id, const char *call_id,
                        int64_t before_ms, int *cancelled, ob_err_t *err)
{
    char before[32];
    snprintf(before, sizeof(before), "%lld", (long long)before_ms);
    const char *params[] = {deployment_id, call_id, before};
    return ob_calls_end(conn, producer, events_topic, source, OB_REASON_CANCELLED,
                        "SELECT * FROM cancel_pending($1::uuid, $2::uuid,"
                        " to_timestamp($3::bigint / 1000.0))",
                        3, params, cancelled, err);
}
