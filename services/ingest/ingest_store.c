/*
 * Every SQL statement the ingest runs, behind named functions, so handlers
 * say what they want and the statements live in one place (the one writer
 * of accounts, api_keys, applications, deployments' settings, uploads and
 * idempotency_keys). Views are rendered as JSON by Postgres itself; column
 * names in generated statements come from the callers' field tables and
 * this file's, never from a client; every value is a parameter.
 */
#include "ingest_store.h"
#include "ob_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- views ---- */

#define APP_JSON                                                                                   \
    "json_build_object('application_id', a.application_id, 'name', a.name,"                        \
    " 'start_url', a.start_url, 'created_at', a.created_at)"
#define DEP_JSON                                                                                   \
    "json_build_object('deployment_id', d.deployment_id, 'application_id', d.application_id,"      \
    " 'name', d.name, 'active', d.active, 'paused', d.paused, 'capacity', d.capacity,"             \
    " 'max_attempts', d.max_attempts, 'retry_interval_s', d.retry_interval_s,"                     \
    " 'retry_rules', d.retry_rules, 'campaign_window', d.campaign_window,"                         \
    " 'calls_per_second', d.calls_per_second,"                                                     \
    " 'default_region', d.default_region, 'start_url', "                                           \
    "d.start_url, 'result_url', d.result_url,"                                                     \
    " 'caller_id', d.caller_id, 'webhook_secret', d.webhook_secret,"                               \
    " 'start_url_format', d.start_url_format, 'verify_urls', d.verify_urls,"                       \
    " 'detection', d.detection, 'plum_result_format', d.plum_result_format,"                       \
    " 'plum_pci_allowed', d.plum_pci_allowed, 'app', d.app, 'created_at', d.created_at)"

/* One delivery with its tries. */
#define DELIVERY_JSON                                                                              \
    "json_build_object('delivery_id', w.delivery_id, 'event_id', w.event_id,"                      \
    " 'call_id', w.call_id, 'deployment_id', w.deployment_id, 'url', w.url, 'state', w.state,"     \
    " 'attempts_made', w.attempts, 'created_at', w.created_at,"                                    \
    " 'next_attempt_at', CASE WHEN w.state = 'pending' THEN w.next_attempt_at END,"                \
    " 'delivered_at', w.delivered_at, 'last_status', w.last_status, 'last_error', w.last_error,"   \
    " 'attempts', coalesce((SELECT json_agg(json_build_object('attempt', a.attempt,"               \
    "   'started_at', a.started_at, 'duration_ms', a.duration_ms,"                                 \
    "   'http_status', a.http_status, 'error', a.error) ORDER BY a.attempt)"                       \
    "   FROM webhook_attempts a WHERE a.delivery_id = w.delivery_id), '[]'::json))"

/* By ingest_view_t; $1 = the id, $2 = the account. */
static const char *const VIEW_SQL[] = {
    [INGEST_VIEW_APPLICATION] =
        "SELECT " APP_JSON "::text FROM applications a"
        " WHERE a.application_id = $1 AND a.account_id = $2 AND a.deleted_at IS NULL",
    [INGEST_VIEW_DEPLOYMENT] =
        "SELECT " DEP_JSON "::text FROM deployments d"
        " WHERE d.deployment_id = $1 AND d.account_id = $2 AND d.deleted_at IS NULL",
    /* call_view() (migrations 014 and 015), which the webhooks send too. */
    [INGEST_VIEW_CALL] = "SELECT call_view(c.call_id)::text FROM calls c"
                         " WHERE c.call_id = $1 AND c.account_id = $2",
    /* plum_call_details() (migration 026), which a Plum-queued call's
     * result_url receives too. */
    [INGEST_VIEW_PLUM_CALL] = "SELECT json_build_object('call_id', c.call_id,"
                              " 'call_details', plum_call_details(c.call_id))::text"
                              " FROM calls c WHERE c.call_id = $1 AND c.account_id = $2",
    /* A call has one delivery per final result: no pages needed. */
    [INGEST_VIEW_CALL_DELIVERIES] =
        "SELECT json_build_object('deliveries', coalesce((SELECT json_agg(" DELIVERY_JSON
        " ORDER BY w.delivery_id) FROM webhook_deliveries w WHERE w.call_id = c.call_id),"
        " '[]'::json), 'next_cursor', NULL)::text"
        " FROM calls c WHERE c.call_id = $1 AND c.account_id = $2",
    [INGEST_VIEW_UPLOAD] =
        "SELECT json_build_object('upload_id', u.upload_id, 'deployment_id', u.deployment_id,"
        " 'file_name', u.file_name, 'status', u.status, 'detail', u.detail, 'rows', u.rows_total,"
        " 'queued', u.rows_queued, 'rejected', u.rows_rejected, 'dry_run', u.dry_run,"
        " 'accepted', CASE WHEN u.dry_run THEN u.rows_total - u.rows_rejected"
        " ELSE u.rows_queued END, 'created_at', u.created_at,"
        " 'finished_at', u.finished_at,"
        " 'errors', coalesce((SELECT json_agg(json_build_object('row', e.row_number,"
        " 'line', e.line, 'field', e.field, 'code', e.code, 'message', e.message)"
        " ORDER BY e.row_number, e.line) FROM upload_errors e"
        " WHERE e.upload_id = u.upload_id), '[]'))::text"
        " FROM uploads u WHERE u.upload_id = $1 AND u.account_id = $2",
};

/* The first row's first column as pool text, or NULL without rows. */
static char *first_text(ob_pool_t *pool, PGresult *res)
{
    return PQntuples(res) > 0 ? ob_pool_strdup(pool, PQgetvalue(res, 0, 0)) : NULL;
}

ob_rc_t ingest_store_view(PGconn *conn, ob_pool_t *pool, ingest_view_t view, const char *id,
                          const char *account_id, char **json, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {id, account_id};
    *json = NULL;
    OB_ASSERT((size_t)view < OB_COUNTOF(VIEW_SQL));
    ob_rc_t rc = ob_pg_exec(conn, VIEW_SQL[view], 2, params, &res, err);
    if (rc == OB_OK)
        *json = first_text(pool, res);
    PQclear(res);
    return rc;
}

/* A page's statement answers items, count and last id in one row. */
static ob_rc_t page(PGconn *conn, ob_pool_t *pool, const char *sql, int n,
                    const char *const *params, ingest_page_t *out, ob_err_t *err)
{
    PGresult *res = NULL;
    ob_rc_t rc = ob_pg_exec(conn, sql, n, params, &res, err);
    if (rc == OB_OK) {
        out->items = ob_pool_strdup(pool, PQgetvalue(res, 0, 0));
        out->count = atol(PQgetvalue(res, 0, 1));
        out->last_id = ob_pool_strdup(pool, PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return rc;
}

/* ---- deployments, keys and accounts ---- */

ob_rc_t ingest_store_deployment(PGconn *conn, const char *deployment_id, const char *account_id,
                                deployment_t *dep, bool *found, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {deployment_id, account_id};
    ob_rc_t rc = ob_pg_exec(conn,
                            "SELECT account_id, active, deleted_at IS NOT NULL, max_attempts,"
                            " retry_interval_s, coalesce(caller_id, ''), default_region"
                            " FROM deployments WHERE deployment_id = $1 AND account_id = $2",
                            2, params, &res, err);
    *found = rc == OB_OK && PQntuples(res) == 1;
    if (*found) {
        memset(dep, 0, sizeof(*dep));
        snprintf(dep->account_id, sizeof(dep->account_id), "%s", PQgetvalue(res, 0, 0));
        dep->active = PQgetvalue(res, 0, 1)[0] == 't';
        dep->deleted = PQgetvalue(res, 0, 2)[0] == 't';
        dep->max_attempts = atol(PQgetvalue(res, 0, 3));
        dep->retry_interval_s = atol(PQgetvalue(res, 0, 4));
        snprintf(dep->caller_id, sizeof(dep->caller_id), "%s", PQgetvalue(res, 0, 5));
        snprintf(dep->region, sizeof(dep->region), "%s", PQgetvalue(res, 0, 6));
    }
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_pending_count(PGconn *conn, const char *deployment_id, long *count,
                                   ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {deployment_id};
    ob_rc_t rc = ob_pg_exec(conn,
                            "SELECT count(*) FROM calls WHERE deployment_id = $1"
                            " AND state <> 'completed'",
                            1, params, &res, err);
    if (rc == OB_OK)
        *count = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_find_key(PGconn *conn, const char *key_hash, const char *email,
                              ingest_key_entry_t *hit, bool *found, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {key_hash, email};
    ob_rc_t rc = ob_pg_exec(conn,
                            "SELECT k.account_id, a.email FROM api_keys k"
                            " JOIN accounts a USING (account_id)"
                            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
                            " AND ($2::text IS NULL OR lower(a.email) = lower($2))",
                            2, params, &res, err);
    *found = rc == OB_OK && PQntuples(res) == 1;
    if (*found) {
        memset(hit, 0, sizeof(*hit));
        snprintf(hit->account_id, sizeof(hit->account_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(hit->email, sizeof(hit->email), "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_insert_key(PGconn *conn, const ingest_store_key_t *key, ob_err_t *err)
{
    const char *params[] = {key->key_id, key->account_id, key->key_hash, key->prefix, key->label};
    return ob_pg_exec(conn,
                      "INSERT INTO api_keys (key_id, account_id, key_hash, key_prefix, label)"
                      " VALUES ($1, $2, $3, $4, $5)",
                      5, params, NULL, err);
}

ob_rc_t ingest_store_create_account(PGconn *conn, const char *account_id, const char *email,
                                    const char *name, const char *capacity,
                                    const ingest_store_key_t *key, ob_err_t *err)
{
    const char *params[] = {account_id, email, name, capacity};
    ob_rc_t rc = ob_pg_begin(conn, err);
    if (rc == OB_OK)
        rc = ob_pg_exec(conn,
                        "INSERT INTO accounts (account_id, email, name, capacity)"
                        " VALUES ($1, $2, $3, $4::int)",
                        4, params, NULL, err);
    if (rc == OB_OK)
        rc = ingest_store_insert_key(conn, key, err);
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK)
        ob_pg_rollback(conn);
    return rc;
}

ob_rc_t ingest_store_list_keys(PGconn *conn, ob_pool_t *pool, const char *account_id, char **json,
                               ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {account_id};
    ob_rc_t rc =
        ob_pg_exec(conn,
                   "SELECT json_build_object('api_keys', coalesce(json_agg(json_build_object("
                   " 'key_id', key_id, 'prefix', key_prefix, 'label', label,"
                   " 'created_at', created_at, 'revoked_at', revoked_at) ORDER BY key_id), '[]'))"
                   "::text FROM api_keys WHERE account_id = $1",
                   1, params, &res, err);
    *json = rc == OB_OK ? first_text(pool, res) : NULL;
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_revoke_key(PGconn *conn, ob_pool_t *pool, const char *key_id,
                                const char *account_id, char **key_hash, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {key_id, account_id};
    ob_rc_t rc = ob_pg_exec(conn,
                            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                            " WHERE key_id = $1 AND account_id = $2 RETURNING key_hash",
                            2, params, &res, err);
    *key_hash = rc == OB_OK && PQntuples(res) == 1 ? first_text(pool, res) : NULL;
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_ping(PGconn *conn, ob_err_t *err)
{
    return ob_pg_exec(conn, "SELECT 1", 0, NULL, NULL, err);
}

/* ---- queues ---- */

ob_rc_t ingest_store_mark_cancel(PGconn *conn, const char *deployment_id, int64_t at_ms,
                                 ob_err_t *err)
{
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)at_ms);
    const char *params[] = {deployment_id, at};
    return ob_pg_exec(conn,
                      "UPDATE deployments SET cancel_before = greatest(cancel_before,"
                      " to_timestamp($2::bigint / 1000.0)) WHERE deployment_id = $1",
                      2, params, NULL, err);
}

ob_rc_t ingest_store_set_paused(PGconn *conn, const char *deployment_id, const char *account_id,
                                bool paused, ob_err_t *err)
{
    const char *params[] = {deployment_id, account_id, paused ? "true" : "false"};
    return ob_pg_exec(conn,
                      "UPDATE deployments SET paused = $3 WHERE deployment_id = $1"
                      " AND account_id = $2",
                      3, params, NULL, err);
}

/* "<pad>'a', count(*) FILTER (WHERE <col> = 'a'),<pad>'b', ..." for the
 * n names of a vocabulary (pool-owned): one count per name. */
static const char *count_each(ob_pool_t *pool, const char *pad, const char *col,
                              const char *(*name)(int), int n)
{
    const char *text = "";
    for (int i = 0; i < n; i++)
        text = ob_pool_printf(pool, "%s%s%s'%s', count(*) FILTER (WHERE %s = '%s')", text,
                              i ? "," : "", pad, name(i), col, name(i));
    return text;
}

static const char *state_at(int i)
{
    return ob_state_name((ob_state_t)i);
}

static const char *status_at(int i)
{
    return ob_status_name((ob_status_t)i);
}

static const char *wait_at(int i)
{
    return ob_wait_name((ob_wait_t)i);
}

/* The summary's statement (pool-owned): the deployment, its calls counted
 * by state, by final status and, pending ones, by what they wait for, and
 * the distribution of its first-audio gaps (the two-second rule). */
static const char *summary_sql(ob_pool_t *pool)
{
    return ob_pool_printf(
        pool,
        "SELECT json_build_object("
        " 'deployment_id', d.deployment_id, 'name', d.name, 'active', d.active, 'paused', d.paused,"
        " 'capacity', d.capacity,"
        " 'in_flight', (SELECT count(*) FROM calls c WHERE c.deployment_id = d.deployment_id"
        "   AND c.active_attempt IS NOT NULL),"
        " 'states', (SELECT json_build_object(%s)"
        "   FROM calls c WHERE c.deployment_id = d.deployment_id),"
        " 'statuses', (SELECT json_build_object(%s)"
        "   FROM calls c WHERE c.deployment_id = d.deployment_id),"
        " 'pending', (SELECT json_build_object("
        "   'total', count(*), 'scheduled_later', count(*) FILTER (WHERE next_attempt_at > now()),"
        "   'waiting_for', json_build_object(%s))"
        "   FROM (SELECT c.next_attempt_at, wait_reason(c, d.paused, now()) AS r FROM calls c"
        "    WHERE c.deployment_id = d.deployment_id AND c.state = 'queued'"
        "    AND c.active_attempt IS NULL) p),"
        /* The two-second rule: our first audio after the callee's
         * greeting ended, over the answered attempts of the last 30 days. */
        " 'first_audio_gap', (SELECT json_build_object('calls', count(*),"
        "   'p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY g),"
        "   'p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY g),"
        "   'p99_ms', percentile_disc(0.99) WITHIN GROUP (ORDER BY g),"
        "   'max_ms', max(g), 'over_2s', count(*) FILTER (WHERE g > 2000))"
        "   FROM (SELECT a.first_audio_ms - a.greeting_end_ms AS g FROM attempts a"
        "    WHERE a.deployment_id = d.deployment_id AND a.first_audio_ms IS NOT NULL"
        "    AND a.greeting_end_ms IS NOT NULL AND a.released_at > now() - interval '30 days') f)"
        " )::text,"
        " d.campaign_window::text"
        " FROM deployments d WHERE d.deployment_id = $1 AND d.account_id = $2"
        " AND d.deleted_at IS NULL",
        count_each(pool, "   ", "state", state_at, OB_STATE_COUNT),
        count_each(pool, "   ", "status", status_at, OB_STATUS_COUNT),
        count_each(pool, "     ", "r", wait_at, OB_WAIT_COUNT));
}

ob_rc_t ingest_store_queue_summary(PGconn *conn, ob_pool_t *pool, const char *deployment_id,
                                   const char *account_id, char **json, char **window,
                                   ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {deployment_id, account_id};
    ob_rc_t rc = ob_pg_exec(conn, summary_sql(pool), 2, params, &res, err);
    *json = rc == OB_OK ? first_text(pool, res) : NULL;
    *window = *json && !PQgetisnull(res, 0, 1) ? ob_pool_strdup(pool, PQgetvalue(res, 0, 1)) : NULL;
    PQclear(res);
    return rc;
}

/* ---- calls ---- */

ob_rc_t ingest_store_list_calls(PGconn *conn, ob_pool_t *pool, const ingest_calls_query_t *q,
                                ingest_page_t *out, ob_err_t *err)
{
    /* The cursor is the last call_id of the previous page (call ids are
     * time-ordered UUIDv7). */
    static const char SQL[] =
        "SELECT coalesce(json_agg(json_build_object("
        "  'call_id', c.call_id, 'state', c.state, 'status', c.status, 'result', c.result,"
        "  'reason', c.reason, 'phone_number', c.phone_number,"
        "  'message_reference', c.message_reference, 'attempts_made', c.attempts_made,"
        "  'max_attempts', c.max_attempts, 'accepted_at', c.accepted_at,"
        "  'next_attempt_at', CASE WHEN c.state = 'completed' THEN NULL ELSE c.next_attempt_at END,"
        "  'completed_at', c.completed_at) ORDER BY c.call_id DESC), '[]'::json)::text,"
        " count(*), min(c.call_id::text)"
        " FROM (SELECT * FROM calls c"
        "  WHERE c.deployment_id = $1 AND c.account_id = $2"
        "  AND ($3::text IS NULL OR ($3 = 'pending' AND c.state <> 'completed') OR c.state = $3)"
        "  AND ($4::text IS NULL OR c.status = $4) AND ($5::text IS NULL OR c.result = $5)"
        "  AND ($6::text IS NULL OR c.message_reference = $6)"
        "  AND ($7::bigint IS NULL OR c.accepted_at >= to_timestamp($7::bigint / 1000.0))"
        "  AND ($8::bigint IS NULL OR c.accepted_at < to_timestamp($8::bigint / 1000.0))"
        "  AND ($9::uuid IS NULL OR c.call_id < $9::uuid)"
        "  AND ($11::uuid IS NULL OR c.upload_id = $11::uuid)"
        "  AND ($12::text IS NULL OR c.phone_number = $12)"
        "  ORDER BY c.call_id DESC LIMIT $10::int) c";
    const char *params[] = {q->deployment_id,     q->account_id,  q->state,    q->status, q->result,
                            q->message_reference, q->since_ms,    q->until_ms, q->cursor, q->limit,
                            q->upload_id,         q->phone_number};
    return page(conn, pool, SQL, 12, params, out, err);
}

ob_rc_t ingest_store_call_state(PGconn *conn, ob_pool_t *pool, const char *call_id,
                                const char *account_id, char **deployment_id, char **state,
                                char **reason, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {call_id, account_id};
    ob_rc_t rc = ob_pg_exec(conn,
                            "SELECT deployment_id, state, reason FROM calls"
                            " WHERE call_id = $1 AND account_id = $2",
                            2, params, &res, err);
    *deployment_id = *state = *reason = NULL;
    if (rc == OB_OK && PQntuples(res) > 0) {
        *deployment_id = ob_pool_strdup(pool, PQgetvalue(res, 0, 0));
        *state = ob_pool_strdup(pool, PQgetvalue(res, 0, 1));
        *reason = ob_pool_strdup(pool, PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_list_deliveries(PGconn *conn, ob_pool_t *pool, const char *deployment_id,
                                     const char *account_id, const char *state, const char *cursor,
                                     const char *limit, ingest_page_t *out, ob_err_t *err)
{
    /* Newest first; the cursor is the last delivery_id of the previous page
     * (UUIDv7, so time-ordered). */
    static const char SQL[] =
        "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]'::json)::text, count(*),"
        " min(id::text) FROM (SELECT w.delivery_id AS id, " DELIVERY_JSON " AS j"
        " FROM webhook_deliveries w WHERE w.deployment_id = $1 AND w.account_id = $2"
        " AND ($3::text IS NULL OR w.state = $3) AND ($4::uuid IS NULL OR w.delivery_id < $4)"
        " ORDER BY w.delivery_id DESC LIMIT $5::int) x";
    const char *params[] = {deployment_id, account_id, state, cursor, limit};
    return page(conn, pool, SQL, 5, params, out, err);
}

ob_rc_t ingest_store_plum_deployment(PGconn *conn, const char *deployment_id,
                                     const char *application_id, const char *account_id,
                                     bool *found, bool *deleted, bool *pci_allowed, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {deployment_id, application_id, account_id};
    ob_rc_t rc =
        ob_pg_exec(conn,
                   "SELECT d.deleted_at IS NOT NULL OR a.deleted_at IS NOT NULL,"
                   " d.plum_pci_allowed FROM deployments d"
                   " JOIN applications a ON a.application_id = d.application_id"
                   " WHERE d.deployment_id = $1 AND d.application_id = $2 AND d.account_id = $3",
                   3, params, &res, err);
    *found = rc == OB_OK && PQntuples(res) == 1;
    *deleted = *found && PQgetvalue(res, 0, 0)[0] == 't';
    *pci_allowed = *found && PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    return rc;
}

/* ---- idempotency keys ---- */

ob_rc_t ingest_store_idem_claim(PGconn *conn, ob_pool_t *pool, const char *account_id,
                                const char *key, const char *route, const char *body_hash,
                                long long lease_ms, ingest_store_claim_t *out, ob_err_t *err)
{
    PGresult *res = NULL;
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", lease_ms);
    const char *params[] = {account_id, key, route, body_hash, lease};
    memset(out, 0, sizeof(*out));
    /* Claimable: never used, released after a 5xx/429 (status 0), or held
     * by a request whose lease ran out (its ingest died). */
    ob_rc_t rc = ob_pg_exec(
        conn,
        "WITH ins AS (INSERT INTO idempotency_keys (account_id, key, route, request_hash,"
        " claimed_until) VALUES ($1, $2, $3, $4, now() + $5 * interval '1 ms')"
        " ON CONFLICT (account_id, key) DO UPDATE"
        " SET status_code = NULL, claimed_until = EXCLUDED.claimed_until"
        " WHERE (idempotency_keys.status_code = 0 OR (idempotency_keys.status_code IS NULL"
        " AND coalesce(idempotency_keys.claimed_until,"
        " idempotency_keys.created_at + interval '30 s') < now()))"
        " AND idempotency_keys.route = EXCLUDED.route"
        " AND idempotency_keys.request_hash IS NOT DISTINCT FROM EXCLUDED.request_hash"
        " RETURNING true AS claimed, route, request_hash, status_code, response,"
        " created_at, 0::float8 AS left_s)"
        " SELECT claimed, route, request_hash, status_code, response,"
        " (extract(epoch FROM created_at) * 1000)::bigint, left_s FROM ins"
        " UNION ALL SELECT false, route, request_hash, status_code, response,"
        " (extract(epoch FROM created_at) * 1000)::bigint,"
        " ceil(extract(epoch FROM coalesce(claimed_until, created_at + interval '30 s')"
        " - now()))::float8 FROM idempotency_keys"
        " WHERE account_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)",
        5, params, &res, err);
    out->found = rc == OB_OK && PQntuples(res) == 1;
    if (out->found) {
        out->claimed = PQgetvalue(res, 0, 0)[0] == 't';
        out->route = ob_pool_strdup(pool, PQgetvalue(res, 0, 1));
        out->request_hash =
            PQgetisnull(res, 0, 2) ? NULL : ob_pool_strdup(pool, PQgetvalue(res, 0, 2));
        out->answered = !PQgetisnull(res, 0, 3);
        out->status = (unsigned)atoi(PQgetvalue(res, 0, 3));
        out->response = ob_pool_strdup(pool, PQgetvalue(res, 0, 4));
        out->created_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
        out->left_s = ob_pool_strdup(pool, PQgetvalue(res, 0, 6));
    }
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_idem_keep(PGconn *conn, const char *account_id, const char *key,
                               unsigned status, const char *body, ob_err_t *err)
{
    char code[8];
    snprintf(code, sizeof(code), "%u", status);
    const char *params[] = {account_id, key, code, body};
    return ob_pg_exec(conn,
                      "UPDATE idempotency_keys SET status_code = $3,"
                      " response = $4 WHERE account_id = $1 AND key = $2",
                      4, params, NULL, err);
}

ob_rc_t ingest_store_idem_release(PGconn *conn, const char *account_id, const char *key,
                                  ob_err_t *err)
{
    const char *params[] = {account_id, key};
    return ob_pg_exec(conn,
                      "UPDATE idempotency_keys SET status_code = 0,"
                      " response = NULL WHERE account_id = $1 AND key = $2",
                      2, params, NULL, err);
}

/* Appends s to an array literal's text, quoted for array_in. */
static void array_item(ob_pool_t *pool, char **text, const char *s)
{
    size_t n = strlen(*text), len = strlen(s);
    char *out = ob_pool_alloc(pool, n + 2 * len + 4);
    char *o = out + n;
    memcpy(out, *text, n);
    if (n > 1)
        *o++ = ',';
    *o++ = '"';
    for (const char *i = s; *i; i++) {
        if (*i == '"' || *i == '\\')
            *o++ = '\\';
        *o++ = *i;
    }
    *o++ = '"';
    *o = '\0';
    *text = out;
}

ob_rc_t ingest_store_idem_renew(PGconn *conn, const char *const *accounts, const char *const *keys,
                                size_t n, long long lease_ms, ob_err_t *err)
{
    ob_pool_t *pool = ob_pool_new();
    char *account_list = ob_pool_strdup(pool, "{"), *key_list = ob_pool_strdup(pool, "{");
    char lease[24];
    for (size_t i = 0; i < n; i++) {
        array_item(pool, &account_list, accounts[i]);
        array_item(pool, &key_list, keys[i]);
    }
    account_list = ob_pool_printf(pool, "%s}", account_list);
    key_list = ob_pool_printf(pool, "%s}", key_list);
    snprintf(lease, sizeof(lease), "%lld", lease_ms);
    const char *params[] = {account_list, key_list, lease};
    ob_rc_t rc = ob_pg_exec(conn,
                            "UPDATE idempotency_keys k SET claimed_until = now() + $3 * interval"
                            " '1 ms' FROM unnest($1::uuid[], $2::text[]) AS h(account_id, key)"
                            " WHERE k.account_id = h.account_id AND k.key = h.key"
                            " AND k.status_code IS NULL",
                            3, params, NULL, err);
    ob_pool_free(pool);
    return rc;
}

/* ---- uploads ---- */

ob_rc_t ingest_store_create_upload(PGconn *conn, const char *upload_id, const char *account_id,
                                   const char *deployment_id, bool dry_run, ob_err_t *err)
{
    const char *params[] = {upload_id, account_id, deployment_id, dry_run ? "t" : "f"};
    return ob_pg_exec(conn,
                      "INSERT INTO uploads (upload_id, account_id, deployment_id, dry_run)"
                      " VALUES ($1, $2, $3, $4)",
                      4, params, NULL, err);
}

/* Inserts errors[0..n) of the upload: arrays of each column, unnested by
 * Postgres, in one statement. */
static ob_rc_t insert_errors(PGconn *conn, const char *upload_id, const ingest_row_error_t *errors,
                             size_t n, ob_err_t *err)
{
    cJSON *cols[5] = {cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray(),
                      cJSON_CreateArray(), cJSON_CreateArray()};
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(cols[0], cJSON_CreateNumber((double)errors[i].row));
        cJSON_AddItemToArray(cols[1], cJSON_CreateNumber((double)errors[i].line));
        cJSON_AddItemToArray(cols[2], errors[i].field ? cJSON_CreateString(errors[i].field)
                                                      : cJSON_CreateNull());
        cJSON_AddItemToArray(cols[3], cJSON_CreateString(errors[i].code));
        cJSON_AddItemToArray(cols[4], cJSON_CreateString(errors[i].message));
    }
    char *text[5];
    for (int k = 0; k < 5; k++) {
        text[k] = cJSON_PrintUnformatted(cols[k]);
        cJSON_Delete(cols[k]);
    }
    const char *params[] = {upload_id, text[0], text[1], text[2], text[3], text[4]};
    ob_rc_t rc =
        ob_pg_exec(conn,
                   "INSERT INTO upload_errors (upload_id, row_number, line, field, code, message)"
                   " SELECT $1, r::int, l::int, f, co, m FROM"
                   " json_array_elements_text($2::json) WITH ORDINALITY a(r, i)"
                   " JOIN json_array_elements_text($3::json) WITH ORDINALITY b(l, i) USING (i)"
                   " JOIN json_array_elements_text($4::json) WITH ORDINALITY f(f, i) USING (i)"
                   " JOIN json_array_elements_text($5::json) WITH ORDINALITY d(co, i) USING (i)"
                   " JOIN json_array_elements_text($6::json) WITH ORDINALITY e(m, i) USING (i)"
                   " ON CONFLICT DO NOTHING",
                   6, params, NULL, err);
    for (int k = 0; k < 5; k++)
        cJSON_free(text[k]);
    return rc;
}

ob_rc_t ingest_store_finish_upload(PGconn *conn, const ingest_upload_outcome_t *o,
                                   const ingest_row_error_t *errors, size_t n, ob_err_t *err)
{
    char rows[24], queued[24], rejected[24];
    snprintf(rows, sizeof(rows), "%zu", o->rows);
    snprintf(queued, sizeof(queued), "%zu", o->queued);
    snprintf(rejected, sizeof(rejected), "%zu", o->rejected);
    const char *params[] = {o->upload_id, o->status, o->detail,   rows,
                            queued,       rejected,  o->file_name};
    ob_rc_t rc = ob_pg_begin(conn, err);
    if (rc == OB_OK)
        rc = ob_pg_exec(conn,
                        "UPDATE uploads SET status = $2, detail = $3, rows_total = $4,"
                        " rows_queued = $5, rows_rejected = $6, file_name = $7,"
                        " finished_at = now() WHERE upload_id = $1",
                        7, params, NULL, err);
    /* One multi-row INSERT per 500 rejected rows. */
    for (size_t at = 0; at < n && rc == OB_OK; at += 500)
        rc = insert_errors(conn, o->upload_id, errors + at, n - at < 500 ? n - at : 500, err);
    if (rc == OB_OK)
        rc = ob_pg_commit(conn, err);
    if (rc != OB_OK)
        ob_pg_rollback(conn);
    return rc;
}

ob_rc_t ingest_store_upload_errors(PGconn *conn, const char *upload_id, const char *account_id,
                                   void (*row)(void *arg, const char *const cells[5]), void *arg,
                                   bool *found, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {upload_id, account_id};
    ob_rc_t rc =
        ob_pg_exec(conn,
                   "SELECT e.row_number::text, e.line::text, e.field, e.code, e.message"
                   " FROM uploads u LEFT JOIN upload_errors e USING (upload_id)"
                   " WHERE u.upload_id = $1 AND u.account_id = $2 ORDER BY e.row_number, e.line",
                   2, params, &res, err);
    *found = rc == OB_OK && PQntuples(res) > 0;
    for (int i = 0; *found && i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0))
            continue; /* an upload without errors */
        const char *cells[5];
        for (int k = 0; k < 5; k++)
            cells[k] = PQgetisnull(res, i, k) ? "" : PQgetvalue(res, i, k);
        row(arg, cells);
    }
    PQclear(res);
    return rc;
}

/* ---- applications and deployments ---- */

static const struct {
    const char *table;      /* SQL table */
    const char *id_col;     /* primary key column */
    const char *delete_set; /* what a soft delete sets beside deleted_at */
    const char *list;       /* $1 account, $2 cursor, $3 limit, $4 filter: items, count, last id */
} RESOURCES[] = {
    [INGEST_RES_APPLICATIONS] =
        {"applications", "application_id", "",
         "SELECT coalesce(json_agg(j ORDER BY id), '[]')::text, count(*), max(id::text) FROM ("
         " SELECT a.application_id AS id, " APP_JSON " AS j FROM applications a"
         " WHERE a.account_id = $1 AND a.deleted_at IS NULL AND ($2::uuid IS NULL OR"
         " a.application_id > $2)"
         " AND $4::uuid IS NULL ORDER BY a.application_id LIMIT $3::int) x"},
    [INGEST_RES_DEPLOYMENTS] =
        {"deployments", "deployment_id", ", active = false",
         "SELECT coalesce(json_agg(j ORDER BY id), '[]')::text, count(*), max(id::text) FROM ("
         " SELECT d.deployment_id AS id, " DEP_JSON " AS j FROM deployments d"
         " WHERE d.account_id = $1 AND d.deleted_at IS NULL AND ($2::uuid IS NULL OR"
         " d.deployment_id > $2)"
         " AND ($4::uuid IS NULL OR d.application_id = $4) ORDER BY d.deployment_id"
         " LIMIT $3::int) x"},
};

/* $1 = id and $2 = account, then the values: the parameters of a write. */
static const char **write_params(ob_pool_t *pool, const char *id, const char *account_id,
                                 const char *const *vals, int n)
{
    const char **params = ob_pool_alloc(pool, (size_t)(n + 2) * sizeof(*params));
    params[0] = id;
    params[1] = account_id;
    for (int i = 0; i < n; i++)
        params[i + 2] = vals[i];
    return params;
}

ob_rc_t ingest_store_insert(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, const char *const *cols,
                            const char *const *vals, int n, ob_err_t *err)
{
    char *names = ob_pool_printf(pool, "%s, account_id", RESOURCES[res].id_col);
    char *args = ob_pool_strdup(pool, "$1, $2");
    for (int i = 0; i < n; i++) {
        names = ob_pool_printf(pool, "%s, %s", names, cols[i]);
        args = ob_pool_printf(pool, "%s, $%d", args, i + 3);
    }
    char *sql =
        ob_pool_printf(pool, "INSERT INTO %s (%s) VALUES (%s)", RESOURCES[res].table, names, args);
    return ob_pg_exec(conn, sql, n + 2, write_params(pool, id, account_id, vals, n), NULL, err);
}

ob_rc_t ingest_store_update(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, const char *const *cols,
                            const char *const *vals, int n, ob_err_t *err)
{
    const char *id_col = RESOURCES[res].id_col;
    char *sets = ob_pool_strdup(pool, "");
    for (int i = 0; i < n; i++)
        sets = ob_pool_printf(pool, "%s, %s = $%d", sets, cols[i], i + 3);
    /* "SET id = id" keeps the statement whole when no field is given. */
    char *sql = ob_pool_printf(pool,
                               "UPDATE %s SET %s = %s%s WHERE %s = $1 AND account_id = $2"
                               " AND deleted_at IS NULL",
                               RESOURCES[res].table, id_col, id_col, sets, id_col);
    return ob_pg_exec(conn, sql, n + 2, write_params(pool, id, account_id, vals, n), NULL, err);
}

ob_rc_t ingest_store_delete(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, bool *deleted, ob_err_t *err)
{
    PGresult *out = NULL;
    char *sql =
        ob_pool_printf(pool,
                       "UPDATE %s SET deleted_at = now()%s WHERE %s = $1 AND account_id = $2"
                       " AND deleted_at IS NULL",
                       RESOURCES[res].table, RESOURCES[res].delete_set, RESOURCES[res].id_col);
    const char *params[] = {id, account_id};
    ob_rc_t rc = ob_pg_exec(conn, sql, 2, params, &out, err);
    *deleted = rc == OB_OK && atoi(PQcmdTuples(out)) == 1;
    PQclear(out);
    return rc;
}

ob_rc_t ingest_store_list(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *account_id,
                          const char *cursor, const char *limit, const char *filter,
                          ingest_page_t *out, ob_err_t *err)
{
    const char *params[] = {account_id, cursor, limit, filter};
    return page(conn, pool, RESOURCES[res].list, 4, params, out, err);
}

/* True when sql ($1 = id, $2 = account) answers a row. */
static ob_rc_t any_row(PGconn *conn, const char *sql, const char *id, const char *account_id,
                       bool *any, ob_err_t *err)
{
    PGresult *res = NULL;
    const char *params[] = {id, account_id};
    ob_rc_t rc = ob_pg_exec(conn, sql, 2, params, &res, err);
    *any = rc == OB_OK && PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

ob_rc_t ingest_store_application_exists(PGconn *conn, const char *application_id,
                                        const char *account_id, bool *exists, ob_err_t *err)
{
    return any_row(conn,
                   "SELECT 1 FROM applications WHERE application_id = $1"
                   " AND account_id = $2 AND deleted_at IS NULL",
                   application_id, account_id, exists, err);
}

ob_rc_t ingest_store_application_used(PGconn *conn, const char *application_id,
                                      const char *account_id, bool *used, ob_err_t *err)
{
    return any_row(conn,
                   "SELECT 1 FROM deployments WHERE application_id = $1"
                   " AND account_id = $2 AND deleted_at IS NULL LIMIT 1",
                   application_id, account_id, used, err);
}
