/*
 * Applications and deployments: create, read, list, update and delete, for
 * the authenticated account only. One small table-driven engine serves both:
 * each resource names its fields (JSON name = column name) and its rows and
 * view in the store (ingest_store.c), which writes the SQL. Column names in
 * generated SQL come from these tables only; every value is a parameter.
 */
#include "ingest_resources.h"
#include "ingest_calls.h"
#include "ingest_deployment.h"
#include "ingest_queue.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ob_log.h"
#include "ob_phone.h"
#include "ob_proto.h"
#include "ob_url.h"
#include "ob_uuid.h"
#include "ob_detect.h"
#include "ob_window.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    FT_TEXT,   /* string of min..max bytes */
    FT_INT,    /* integer in min..max */
    FT_BOOL,   /* true or false */
    FT_URL,    /* http(s) URL */
    FT_REGION, /* region code libphonenumber knows ("US") */
    FT_PHONE,  /* E.164 number, normalised */
    FT_RULES,  /* retry rules object (ingest_retry_rules) */
    FT_WINDOW, /* campaign window object (ob_window.h), or null */
    FT_RATE,   /* calls per second: a number from 0.01 to 10000, or null */
    FT_DETECT, /* callee-type detection thresholds object (ob_detect.h), or null */
    FT_CHOICE, /* one of the field's choices */
    FT_APP,    /* a call-control document (ingest_app), or null */
} ftype_t;

typedef struct {
    const char *name;           /* JSON member and column */
    ftype_t type;               /* validation */
    long min, max;              /* bounds: length for text, value for int */
    bool required;              /* on create */
    const char *const *choices; /* FT_CHOICE: the allowed strings, NULL-terminated */
} rfield_t;

/* Most fields a resource may have (sizes the value arrays). */
#define MAX_FIELDS 24

typedef struct {
    const char *kind;       /* "application", for messages and codes */
    const char *plural;     /* "applications": its path segment and list member */
    ingest_res_t store;     /* its rows (ingest_store.h) */
    ingest_view_t view;     /* its JSON view */
    const rfield_t *fields; /* updatable fields (JSON name = column name) */
} resource_t;

static const rfield_t app_fields[] = {
    {"name", FT_TEXT, 1, 200, true, NULL},
    {"start_url", FT_URL, 0, 2048, false, NULL},
    {NULL, 0, 0, 0, false, NULL},
};

/* How start_url requests carry the call's context (dialer_app.c). */
static const char *const start_url_formats[] = {"json", "form", NULL};
/* How a Plum-queued call's result_url body is encoded (migration 026). */
static const char *const plum_result_formats[] = {"form", "json", NULL};

static const rfield_t dep_fields[] = {
    {"name", FT_TEXT, 1, 200, true, NULL},
    {"active", FT_BOOL, 0, 0, false, NULL},
    {"capacity", FT_INT, 1, 100000, false, NULL},
    {"max_attempts", FT_INT, 1, 10, false, NULL},
    {"retry_interval_s", FT_INT, 60, 172800, false, NULL},
    {"retry_rules", FT_RULES, 0, 0, false, NULL},
    {"campaign_window", FT_WINDOW, 0, 0, false, NULL},
    {"calls_per_second", FT_RATE, 0, 0, false, NULL},
    {"default_region", FT_REGION, 0, 0, false, NULL},
    {"start_url", FT_URL, 0, 2048, false, NULL},
    {"result_url", FT_URL, 0, 2048, false, NULL},
    {"caller_id", FT_PHONE, 0, 0, false, NULL},
    {"webhook_secret", FT_TEXT, 32, 200, false, NULL},
    {"start_url_format", FT_CHOICE, 0, 0, false, start_url_formats},
    {"verify_urls", FT_BOOL, 0, 0, false, NULL},
    {"detection", FT_DETECT, 0, 0, false, NULL},
    {"plum_result_format", FT_CHOICE, 0, 0, false, plum_result_formats},
    {"plum_pci_allowed", FT_BOOL, 0, 0, false, NULL},
    {"app", FT_APP, 0, 0, false, NULL},
    {NULL, 0, 0, 0, false, NULL},
};

static const resource_t applications = {
    "application", "applications", INGEST_RES_APPLICATIONS, INGEST_VIEW_APPLICATION, app_fields,
};

static const resource_t deployments = {
    "deployment", "deployments", INGEST_RES_DEPLOYMENTS, INGEST_VIEW_DEPLOYMENT, dep_fields,
};

/* "\"json\" or \"form\"": the choices, quoted, for error messages. */
static const char *choices_text(ob_pool_t *pool, const char *const *choices)
{
    const char *text = "";
    for (const char *const *ch = choices; *ch; ch++) {
        const char *sep = ch == choices ? "" : ch[1] ? ", " : " or ";
        text = ob_pool_printf(pool, "%s%s\"%s\"", text, sep, *ch);
    }
    return text;
}

/* Validates body against the fields; values[i] gets the text to store for
 * each field present (pool-owned; NULL for an explicit JSON null). */
static bool validate(ingest_call_t *c, const cJSON *body, const rfield_t *fields, bool creating,
                     const char **values, bool *present, cJSON *errors)
{
    ob_pool_t *pool = c->req->pool;
    const cJSON *item;
    cJSON_ArrayForEach(item, body)
    {
        bool known = false;
        for (const rfield_t *f = fields; f->name && !known; f++)
            known = strcmp(f->name, item->string) == 0;
        if (!known)
            ingest_add_error(errors, item->string, "unknown_field",
                             ob_pool_printf(pool, "'%s' is not a field here", item->string));
    }
    for (int i = 0; fields[i].name; i++) {
        const rfield_t *f = &fields[i];
        OB_ASSERT(i < MAX_FIELDS);
        ob_phone_t phone;
        ob_err_t err = {{0}};
        item = cJSON_GetObjectItemCaseSensitive(body, f->name);
        present[i] = item != NULL;
        values[i] = NULL;
        if (!item) {
            if (creating && f->required)
                ingest_add_error(errors, f->name, "required",
                                 ob_pool_printf(pool, "%s is required", f->name));
            continue;
        }
        if (cJSON_IsNull(item) && !f->required &&
            (f->type == FT_URL || f->type == FT_PHONE || f->type == FT_WINDOW ||
             f->type == FT_RATE || f->type == FT_DETECT || f->type == FT_APP))
            continue; /* clears an optional value */
        const char *bad = NULL;
        switch (f->type) {
        case FT_TEXT:
            if (!cJSON_IsString(item) || (long)strlen(item->valuestring) < f->min ||
                (long)strlen(item->valuestring) > f->max)
                bad = ob_pool_printf(pool, "%s must be a string of %ld to %ld bytes", f->name,
                                     f->min, f->max);
            else
                values[i] = ob_pool_strdup(pool, item->valuestring);
            break;
        case FT_INT:
            if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
                item->valuedouble < f->min || item->valuedouble > f->max)
                bad = ob_pool_printf(pool, "%s must be an integer from %ld to %ld", f->name, f->min,
                                     f->max);
            else
                values[i] = ob_pool_printf(pool, "%ld", (long)item->valuedouble);
            break;
        case FT_RATE:
            if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0.01) || item->valuedouble > 10000)
                bad = ob_pool_printf(pool,
                                     "%s must be a number of calls per second from 0.01 to 10000,"
                                     " or null for no pacing",
                                     f->name);
            else
                values[i] = ob_pool_printf(pool, "%.6g", item->valuedouble);
            break;
        case FT_CHOICE:
            if (cJSON_IsString(item))
                for (const char *const *ch = f->choices; *ch && !values[i]; ch++)
                    if (strcmp(item->valuestring, *ch) == 0)
                        values[i] = *ch;
            if (!values[i])
                bad =
                    ob_pool_printf(pool, "%s must be %s", f->name, choices_text(pool, f->choices));
            break;
        case FT_BOOL:
            if (!cJSON_IsBool(item))
                bad = ob_pool_printf(pool, "%s must be true or false", f->name);
            else
                values[i] = cJSON_IsTrue(item) ? "true" : "false";
            break;
        case FT_URL:
            if (!cJSON_IsString(item))
                bad = ob_pool_printf(pool, "%s must be an http or https URL", f->name);
            else if (ob_url_check(f->name, item->valuestring, &err) != OB_OK)
                bad = ob_pool_strdup(pool, err.msg);
            else
                values[i] = ob_pool_strdup(pool, item->valuestring);
            break;
        case FT_REGION:
            if (!cJSON_IsString(item) || !ob_phone_region_valid(item->valuestring))
                bad = ob_pool_printf(pool, "%s must be a region code such as \"US\" or \"GB\"",
                                     f->name);
            else
                values[i] = ob_pool_strdup(pool, item->valuestring);
            break;
        case FT_WINDOW: {
            ob_window_t *w = NULL;
            if (ob_window_from_cjson(item, &w, &err) != OB_OK) {
                /* err names the member ("window.hours.mon[1]: ..."). */
                bad = ob_pool_printf(pool, "campaign_%s", err.msg);
            } else {
                char *text = cJSON_PrintUnformatted(item);
                values[i] = ob_pool_strdup(pool, text);
                cJSON_free(text);
            }
            ob_window_free(w);
            break;
        }
        case FT_DETECT: {
            ob_detect_config_t cfg;
            char *text = cJSON_PrintUnformatted(item);
            if (ob_detect_config_parse(text, &cfg, &err) != OB_OK)
                bad = ob_pool_strdup(pool, err.msg); /* names the member */
            else
                values[i] = ob_pool_strdup(pool, text);
            cJSON_free(text);
            break;
        }
        case FT_APP:
            /* names its own problem: the verb and the field */
            values[i] = ingest_app(pool, item, errors);
            break;
        case FT_RULES:
            /* names its own problems (retry_rules.busy, ...) */
            values[i] = ingest_retry_rules(pool, item, f->name, errors);
            break;
        case FT_PHONE:
            if (!cJSON_IsString(item) || ob_phone_parse(item->valuestring, &phone, &err) != OB_OK)
                bad = cJSON_IsString(item) ? ob_pool_printf(pool, "%s: %s", f->name, err.msg)
                                           : ob_pool_printf(pool, "%s must be a string", f->name);
            else if (phone.post_dial[0] || phone.caller_id[0])
                /* Only the number is stored: an extension, ;postd= or ;ani=
                 * would be dropped without a word. */
                bad = ob_pool_printf(pool,
                                     "%s must be a number alone, without an extension or "
                                     "parameters",
                                     f->name);
            else
                values[i] = ob_pool_strdup(pool, phone.e164);
            break;
        }
        if (bad)
            ingest_add_error(errors, f->name, "invalid_value", bad);
    }
    return cJSON_GetArraySize(errors) == 0;
}

/* Answers with the resource's view of id (status on success). */
static void render(ingest_call_t *c, const resource_t *r, const char *id, unsigned status)
{
    ingest_reply_owned(c, r->view, id, status, r->kind, NULL);
}

/* INSERT of the present fields plus the fixed leading columns. */
static void create(ingest_call_t *c, const resource_t *r, const char *const *lead_cols,
                   const char *const *lead_vals, int nlead)
{
    const char *values[MAX_FIELDS];
    bool present[MAX_FIELDS];
    char id[OB_UUID_STRLEN + 1];
    cJSON *errors = cJSON_CreateArray();
    cJSON *body = ingest_object_body(c->req, false);
    ob_err_t err = {{0}};
    if (!body)
        goto out;
    if (!validate(c, body, r->fields, true, values, present, errors)) {
        if (!ingest_app_problem(c->req, errors))
            ob_http_problem(c->req, 422, "validation_failed", errors,
                            "the %s has %d invalid field(s)", r->kind, cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }
    ob_uuid_v7(id);
    const char *cols[MAX_FIELDS + 8], *vals[MAX_FIELDS + 8];
    int n = 0;
    for (int i = 0; i < nlead; i++) {
        cols[n] = lead_cols[i];
        vals[n++] = lead_vals[i];
    }
    for (int i = 0; r->fields[i].name; i++) {
        if (!present[i])
            continue;
        cols[n] = r->fields[i].name;
        vals[n++] = values[i];
    }
    if (ingest_store_insert(c->conn, c->req->pool, r->store, id, c->account_id, cols, vals, n,
                            &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        goto out;
    }
    ob_http_add_header(c->req, "Location",
                       ob_pool_printf(c->req->pool, "/api/v1/%s/%s", r->plural, id));
    render(c, r, id, 201);
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

static void update(ingest_call_t *c, const resource_t *r, const char *id)
{
    const char *values[MAX_FIELDS];
    bool present[MAX_FIELDS];
    cJSON *errors = cJSON_CreateArray();
    cJSON *body = NULL;
    ob_err_t err = {{0}};
    if (!ob_uuid_valid(id) || !(body = ingest_object_body(c->req, false)))
        goto out_missing;
    if (!validate(c, body, r->fields, false, values, present, errors)) {
        if (!ingest_app_problem(c->req, errors))
            ob_http_problem(c->req, 422, "validation_failed", errors, "%d invalid field(s)",
                            cJSON_GetArraySize(errors));
        errors = NULL;
        goto out;
    }
    const char *cols[MAX_FIELDS];
    const char *vals[MAX_FIELDS];
    int n = 0;
    for (int i = 0; r->fields[i].name; i++) {
        if (!present[i])
            continue;
        cols[n] = r->fields[i].name;
        vals[n++] = values[i];
    }
    if (ingest_store_update(c->conn, c->req->pool, r->store, id, c->account_id, cols, vals, n,
                            &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        goto out;
    }
    if (r == &deployments)
        ingest_forget_deployment(c, id);
    render(c, r, id, 200);
    goto out;
out_missing:
    if (!ob_uuid_valid(id))
        ob_http_problem(c->req, 404, ob_pool_printf(c->req->pool, "%s_not_found", r->kind), NULL,
                        "no %s %s", r->kind, id);
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

static void list(ingest_call_t *c, const resource_t *r, const char *filter)
{
    ingest_page_t page = {0};
    ob_err_t err = {{0}};
    const char *cursor = ob_http_query(c->req, "cursor");
    const char *lim = ob_http_query(c->req, "limit");
    long n = lim ? atol(lim) : 100;
    if ((cursor && !ob_uuid_valid(cursor)) || (filter && !ob_uuid_valid(filter)) || n < 1 ||
        n > 1000) {
        ob_http_problem(c->req, 400, "invalid_query", NULL,
                        "cursor and ids must be ids from this API and limit from 1 to 1000");
        return;
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%ld", n);
    if (ingest_store_list(c->conn, c->req->pool, r->store, c->account_id, cursor, limit, filter,
                          &page, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    ingest_reply_page(c->req, r->plural, &page, n);
}

/* Soft delete; returns false (problem set) when there was nothing to delete. */
static bool remove_row(ingest_call_t *c, const resource_t *r, const char *id)
{
    ob_err_t err = {{0}};
    bool done = false;
    if (!ob_uuid_valid(id)) {
        ob_http_problem(c->req, 404, ob_pool_printf(c->req->pool, "%s_not_found", r->kind), NULL,
                        "no %s %s", r->kind, id);
        return false;
    }
    if (ingest_store_delete(c->conn, c->req->pool, r->store, id, c->account_id, &done, &err) !=
        OB_OK) {
        ingest_database_problem(c->req, &err);
        return false;
    }
    if (!done)
        ob_http_problem(c->req, 404, ob_pool_printf(c->req->pool, "%s_not_found", r->kind), NULL,
                        "no %s %s", r->kind, id);
    return done;
}

void ingest_create_application(ingest_call_t *c)
{
    create(c, &applications, NULL, NULL, 0);
}

void ingest_list_applications(ingest_call_t *c)
{
    list(c, &applications, NULL);
}

void ingest_get_application(ingest_call_t *c)
{
    render(c, &applications, c->param[0], 200);
}

void ingest_update_application(ingest_call_t *c)
{
    update(c, &applications, c->param[0]);
}

void ingest_delete_application(ingest_call_t *c)
{
    ob_err_t err = {{0}};
    bool used = false;
    if (ob_uuid_valid(c->param[0])) {
        if (ingest_store_application_used(c->conn, c->param[0], c->account_id, &used, &err) !=
            OB_OK) {
            ingest_database_problem(c->req, &err);
            return;
        }
        if (used) {
            ob_http_problem(c->req, 409, "application_has_deployments", NULL,
                            "delete the application's deployments first");
            return;
        }
    }
    if (remove_row(c, &applications, c->param[0]))
        ob_http_reply(c->req, 204, "application/json", "", 0);
}

void ingest_create_deployment(ingest_call_t *c)
{
    ob_err_t err = {{0}};
    const char *app = c->param[0];
    bool exists = false;
    if (!ob_uuid_valid(app) ||
        ingest_store_application_exists(c->conn, app, c->account_id, &exists, &err) != OB_OK ||
        !exists) {
        if (err.msg[0])
            ingest_database_problem(c->req, &err);
        else
            ob_http_problem(c->req, 404, "application_not_found", NULL, "no application %s", app);
        return;
    }
    const char *cols[] = {"application_id"};
    create(c, &deployments, cols, &app, 1);
}

void ingest_list_deployments(ingest_call_t *c)
{
    if (c->param[0]) {
        /* Under an application: it must be one of the account's. */
        ingest_reply_owned(c, INGEST_VIEW_APPLICATION, c->param[0], 200, "application", NULL);
        if (c->req->status != 200)
            return;
    }
    list(c, &deployments, c->param[0] ? c->param[0] : ob_http_query(c->req, "application_id"));
}

void ingest_get_deployment(ingest_call_t *c)
{
    render(c, &deployments, c->param[0], 200);
}

void ingest_update_deployment(ingest_call_t *c)
{
    update(c, &deployments, c->param[0]);
}

/* Deleting a deployment refuses new calls and cancels its pending ones
 * (through the queue, behind the calls already accepted); calls in progress
 * finish. The cancel goes first: if Kafka does not take it, nothing changes. */
void ingest_delete_deployment(ingest_call_t *c)
{
    deployment_t dep;
    char command_id[OB_UUID_STRLEN + 1];
    int64_t at = 0;
    if (!ingest_load_deployment(c, c->param[0], false, &dep) ||
        !ingest_send_cancel(c, "the deployment was not deleted", command_id, &at))
        return;
    ingest_forget_deployment(c, c->param[0]);
    if (remove_row(c, &deployments, c->param[0]))
        ob_http_reply(c->req, 204, "application/json", "", 0);
}
