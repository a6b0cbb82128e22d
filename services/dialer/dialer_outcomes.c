/*
 * What the worker records about a running call besides its transitions:
 * the start_url requests' outcomes and the document's errors (on the
 * attempt), and the events of a call still up (a gather's digits, a
 * connect's outcome). Both wait in the context for the next flush, which
 * writes them in its transaction. Also the start_url client's callbacks,
 * by which answers reach the call's document or the legacy answer.
 */
#include "dialer.h"
#include "dialer_app.h"
#include "dialer_doc.h"
#include "ob_events.h"
#include "ob_log.h"
#include "ob_pg.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The connected requests' outcomes; call row unlocked (app_* are the
 * attempt's alone). */
static const char APP_CONNECTED_SQL[] =
    "UPDATE attempts SET app_status = o.status, app_error = o.error, app_ms = o.ms"
    " FROM json_to_recordset($1::json) AS o(call_id uuid, attempt int, status int, error text,"
    "  ms int)"
    " WHERE attempts.call_id = o.call_id AND attempts.attempt = o.attempt";

/* A callee_type update's failure, only when the connected request had none. */
static const char APP_UPDATE_SQL[] =
    "UPDATE attempts SET app_error = coalesce(attempts.app_error, 'callee_type update: ' || "
    "o.error)"
    " FROM json_to_recordset($1::json) AS o(call_id uuid, attempt int, error text)"
    " WHERE attempts.call_id = o.call_id AND attempts.attempt = o.attempt";

/* A document's error, after what app_error already says. */
static const char APP_DOC_SQL[] =
    "UPDATE attempts SET app_error = coalesce(attempts.app_error || '; ', '') || o.error"
    " FROM json_to_recordset($1::json) AS o(call_id uuid, attempt int, error text)"
    " WHERE attempts.call_id = o.call_id AND attempts.attempt = o.attempt";

void dialer_outcomes_clear(dialer_ctx_t *ctx)
{
    for (int i = 0; i < ctx->noutcomes; i++) {
        free(ctx->outcomes[i].call_id);
        free(ctx->outcomes[i].error);
    }
    ctx->noutcomes = 0;
}

static void push_outcome(dialer_ctx_t *ctx, const char *call_id, int64_t attempt,
                         dialer_outcome_kind_t kind, long status, const char *error, int ms)
{
    if (ctx->noutcomes == ctx->outcomes_cap) {
        ctx->outcomes_cap = ctx->outcomes_cap ? 2 * ctx->outcomes_cap : 64;
        ctx->outcomes =
            ob_xrealloc(ctx->outcomes, (size_t)ctx->outcomes_cap * sizeof(*ctx->outcomes));
    }
    ctx->outcomes[ctx->noutcomes++] = (dialer_app_outcome_t){
        .call_id = ob_xstrdup(call_id),
        .attempt = attempt,
        .kind = kind,
        .status = status,
        .error = error ? ob_xstrdup(error) : NULL,
        .ms = ms,
    };
}

void dialer_outcome_add(dialer_ctx_t *ctx, const dialer_slot_t *s, dialer_outcome_kind_t kind,
                        long status, const char *error, int ms)
{
    push_outcome(ctx, s->job.call_id, s->job.attempt, kind, status, error, ms);
}

ob_rc_t dialer_outcomes_write(dialer_ctx_t *ctx, ob_err_t *err)
{
    /* In the order they happen: the connected request's first. */
    static const char *const sql[] = {APP_CONNECTED_SQL, APP_UPDATE_SQL, APP_DOC_SQL};
    ob_rc_t rc = OB_OK;
    for (int kind = DIALER_OUTCOME_CONNECTED; kind <= DIALER_OUTCOME_DOC && rc == OB_OK; kind++) {
        cJSON *rows = cJSON_CreateArray();
        for (int i = 0; i < ctx->noutcomes; i++) {
            const dialer_app_outcome_t *o = &ctx->outcomes[i];
            if ((int)o->kind != kind)
                continue;
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "call_id", o->call_id);
            cJSON_AddNumberToObject(row, "attempt", (double)o->attempt);
            if (o->status > 0)
                cJSON_AddNumberToObject(row, "status", (double)o->status);
            if (o->error)
                cJSON_AddStringToObject(row, "error", o->error);
            cJSON_AddNumberToObject(row, "ms", o->ms);
            cJSON_AddItemToArray(rows, row);
        }
        if (cJSON_GetArraySize(rows) > 0) {
            char *text = cJSON_PrintUnformatted(rows);
            const char *params[] = {text};
            rc = ob_pg_exec(ctx->pg, sql[kind], 1, params, NULL, err);
            cJSON_free(text);
        }
        cJSON_Delete(rows);
    }
    return rc;
}

void dialer_note_event(dialer_ctx_t *ctx, const dialer_slot_t *s, const char *type,
                       const char *result, const char *digits)
{
    if (ctx->nnotes == ctx->notes_cap) {
        ctx->notes_cap = ctx->notes_cap ? 2 * ctx->notes_cap : 64;
        ctx->notes = ob_xrealloc(ctx->notes, (size_t)ctx->notes_cap * sizeof(*ctx->notes));
    }
    ob_call_event_t ev =
        dialer_event_for(ctx, &s->job, type, ob_state_name(OB_STATE_CONNECTED), result);
    ev.digits = digits ? ob_xstrdup(digits) : NULL;
    ctx->notes[ctx->nnotes++] = ev;
}

static char *dup_or_null(const char *s)
{
    return s ? ob_xstrdup(s) : NULL;
}

ob_call_event_t dialer_note_copy(const dialer_ctx_t *ctx, int i)
{
    const ob_call_event_t *e = &ctx->notes[i];
    ob_call_event_t c = *e;
    c.id = dup_or_null(e->id);
    c.source = dup_or_null(e->source);
    c.type = dup_or_null(e->type);
    c.call_id = dup_or_null(e->call_id);
    c.deployment_id = dup_or_null(e->deployment_id);
    c.account_id = dup_or_null(e->account_id);
    c.state = dup_or_null(e->state);
    c.status = dup_or_null(e->status);
    c.result = dup_or_null(e->result);
    c.reason = dup_or_null(e->reason);
    c.phone_number = dup_or_null(e->phone_number);
    c.message_reference = dup_or_null(e->message_reference);
    c.detection = dup_or_null(e->detection);
    c.digits = dup_or_null(e->digits);
    return c;
}

void dialer_notes_clear(dialer_ctx_t *ctx)
{
    for (int i = 0; i < ctx->nnotes; i++)
        ob_call_event_clear(&ctx->notes[i]);
    ctx->nnotes = 0;
}

void dialer_note_gathered(dialer_ctx_t *ctx, const dialer_slot_t *s, const char *digits)
{
    dialer_note_event(ctx, s, "gathered", NULL, digits);
}

/* The slot still holds the connected attempt call_id/attempt. */
static bool app_current(void *worker, void *call, const char *call_id, int64_t attempt)
{
    const dialer_slot_t *s = call;
    (void)worker;
    bool connected = s->state == DIALER_SLOT_CONNECTED || s->state == DIALER_SLOT_CONNECTED_ENDING;
    return connected && s->job.attempt == attempt && strcmp(s->job.call_id, call_id) == 0;
}

/* A request ended: its outcome waits for the flush (a callee_type update's
 * only when it failed; an action_url's goes to the verb log), the call's
 * document takes what it answered, and otherwise what the legacy answer
 * asks for is done on the carrier while the call is still up. */
static void app_done(void *worker, const dialer_app_result_t *r)
{
    dialer_ctx_t *ctx = worker;
    dialer_slot_t *s = r->call;
    bool current = app_current(ctx, s, r->call_id, r->attempt);
    if (!r->action && (r->connected || r->error))
        push_outcome(ctx, r->call_id, r->attempt,
                     r->connected ? DIALER_OUTCOME_CONNECTED : DIALER_OUTCOME_UPDATE, r->status,
                     r->error, r->ms);
    if (!current || s->state != DIALER_SLOT_CONNECTED)
        return; /* CONNECTED_ENDING: the carrier has ended it already */
    if (dialer_doc_answered(ctx, s, r) || r->error)
        return;
    if (r->answer.hangup) {
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", r->call_id), "application asked to hang up");
        ctx->carrier->ops->hangup(ctx->carrier, s);
    } else if (r->answer.stay_connected_ms >= 0) {
        OB_LOG(OB_LOG_INFO, "worker", OB_KV("call_id", r->call_id),
               "application asked to stay connected %lld ms",
               (long long)r->answer.stay_connected_ms);
        ctx->carrier->ops->extend(ctx->carrier, s, (int)r->answer.stay_connected_ms);
    }
}

static const dialer_app_events_t app_events = {app_current, app_done};

static char *value_or_null(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : ob_xstrdup(PQgetvalue(res, 0, col));
}

/* The client's lookup: one row of deployments and its application. */
static ob_rc_t read_deployment(void *arg, const char *deployment_id, dialer_deployment_t *out,
                               ob_err_t *err)
{
    static const char SQL[] =
        "SELECT d.application_id::text, coalesce(d.start_url, ap.start_url), d.result_url,"
        " d.start_url_format = 'form', d.verify_urls"
        " FROM deployments d JOIN applications ap ON ap.application_id = d.application_id"
        " WHERE d.deployment_id = $1";
    dialer_ctx_t *ctx = arg;
    PGresult *res = NULL;
    const char *p[] = {deployment_id};
    memset(out, 0, sizeof(*out));
    if (ob_pg_exec(ctx->pg, SQL, 1, p, &res, err) != OB_OK)
        return OB_ERR;
    if (PQntuples(res) == 1) {
        out->application_id = value_or_null(res, 0);
        out->start_url = value_or_null(res, 1);
        out->result_url = value_or_null(res, 2);
        out->form = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        out->verify_urls = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    }
    PQclear(res);
    return OB_OK;
}

ob_rc_t dialer_app_start(dialer_ctx_t *ctx, ob_err_t *err)
{
    dialer_app_opts_t o = {
        .concurrency = (int)ctx->cfg->app_concurrency,
        .timeout_ms = (int)ctx->cfg->app_timeout_ms,
        .urls = &ctx->url_policy,
        .lookup = read_deployment,
        .lookup_arg = ctx,
        .events = &app_events,
        .worker = ctx,
    };
    return dialer_app_new(&o, &ctx->app, err);
}
