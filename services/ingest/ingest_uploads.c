/*
 * CSV uploads, streamed: the body goes through the CSV reader as it arrives
 * (text/csv, or the "file"/"csv" part of multipart/form-data), each row is
 * validated like a single call and produced to Kafka at once, so memory does
 * not grow with the file. Bad rows are reported with row, line, field and
 * reason and never stop the good ones. The upload and its rejected rows are
 * stored, so the report can be fetched again as JSON or CSV. Options in the
 * query say how to read the file (phone_column, delimiter) and whether to
 * queue it at all (dry_run: validate and report only).
 */
#include "ingest_uploads.h"
#include "ingest_calls.h"
#include "ingest_deployment.h"
#include "ingest_idempotency.h"
#include "ingest_lanes.h"
#include "ingest_plum.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ingest_csv.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STORED_ERRORS 100000 /* rejected rows kept for the report */
#define ANSWER_ERRORS     100    /* rejected rows listed in the upload's answer */

typedef struct {
    ingest_ctx_t *ctx;                  /* service */
    bool failed;                        /* a problem response is set; the body is ignored */
    char account_id[37];                /* uploader */
    char upload_id[OB_UUID_STRLEN + 1]; /* this upload */
    deployment_t dep;                   /* target (pool strings) */
    const char *deployment_id;          /* path parameter */
    const char *file_name;              /* multipart file name or NULL */
    cJSON *defaults;                    /* options from the query string, applied to rows */
    const char *phone_column;           /* option: the phone column's name or number, or NULL */
    char delimiter;                 /* option: the field delimiter, or INGEST_CSV_DELIM_DETECT */
    bool dry_run;                   /* option: validate and report, queue nothing */
    ingest_plum_bulk_t *plum;       /* bulk_queue (Plum): its fields, the file held, ids */
    ingest_csv_reader_t *csv;       /* the parser */
    ingest_csv_col_t *roles;        /* column roles from the header */
    struct MHD_PostProcessor *form; /* multipart parser, or NULL for text/csv */
    ob_produce_batch_t *batch;      /* acknowledgements of the rows produced */
    size_t rows, queued;            /* counts */
    size_t accepted;                /* valid rows: queued, or in a dry run would be */
    ingest_row_error_t *errors;     /* rejected rows (first MAX_STORED_ERRORS) */
    size_t nerrors, cap_errors;     /* used and allocated */
    size_t rejected;                /* rejected rows, stored or not */
    const char *idem_key;           /* the request's Idempotency-Key */
    ingest_idem_t idem;             /* whether an Idempotency-Key was claimed */
    int64_t idem_ms;                /* the key's first use */
    ob_err_t stop;                  /* why the parse stopped, if it did */
    ob_rc_t stop_rc;                /* OB_OK, or the stopping code */
    size_t bytes;                   /* file bytes received */
    pthread_mutex_t mu;             /* guards counts and errors once lanes run */
    ingest_lanes_t *lanes;          /* validation lanes, or NULL: rows handled inline */
    ingest_failure_t failure;       /* the lanes' first Kafka failure */
} upload_t;

/* A row handed to a lane. */
typedef struct {
    cJSON *call;                      /* the row as a call (owned) */
    size_t row, line;                 /* where it came from */
    char call_id[OB_UUID_STRLEN + 1]; /* given by the reader, so ids follow the file */
} work_t;

/* Records a rejected row; called with u->mu held. */
static void reject(upload_t *u, size_t row, size_t line, const char *field, const char *code,
                   const char *message)
{
    if (u->nerrors == MAX_STORED_ERRORS)
        return;
    if (u->nerrors == u->cap_errors) {
        u->cap_errors = u->cap_errors ? u->cap_errors * 2 : 64;
        u->errors = ob_xrealloc(u->errors, u->cap_errors * sizeof(ingest_row_error_t));
    }
    ingest_row_error_t *e = &u->errors[u->nerrors++];
    e->row = row;
    e->line = line;
    e->field = field ? ob_xstrdup(field) : NULL;
    e->code = ob_xstrdup(code);
    e->message = ob_xstrdup(message);
}

static ob_rc_t on_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    upload_t *u = opaque;
    u->roles = ob_xcalloc(header->nfields, sizeof(ingest_csv_col_t));
    return ingest_csv_map_header(header, u->phone_column, u->roles, err);
}

/* Turns a CSV row into the JSON a single call would have sent. */
static cJSON *row_to_call(upload_t *u, const ingest_csv_row_t *row, const ingest_csv_row_t *header)
{
    cJSON *call = cJSON_CreateObject();
    const char *caller = NULL, *phone = NULL;
    for (size_t i = 0; i < header->nfields && i < row->nfields; i++) {
        const char *v = row->fields[i];
        if (!v[0])
            continue;
        switch (u->roles[i]) {
        case INGEST_CSV_COL_PHONE:
            phone = v;
            break;
        case INGEST_CSV_COL_CALLER_ID:
            caller = v;
            break;
        case INGEST_CSV_COL_MESSAGE_REFERENCE:
            cJSON_AddStringToObject(call, "message_reference", v);
            break;
        case INGEST_CSV_COL_MAX_ATTEMPTS:
            cJSON_AddItemToObject(call, "max_attempts", ingest_cell_value(v));
            break;
        case INGEST_CSV_COL_MAX_RETRIES: {
            /* Plum: retries after the first attempt. */
            cJSON *n = ingest_cell_value(v);
            if (cJSON_IsNumber(n))
                cJSON_SetNumberValue(n, n->valuedouble + 1);
            cJSON_AddItemToObject(call, "max_attempts", n);
            break;
        }
        case INGEST_CSV_COL_RETRY_INTERVAL:
        case INGEST_CSV_COL_RETRY_INTERVAL_PLUM:
            cJSON_AddItemToObject(call, "retry_interval_s", ingest_cell_value(v));
            break;
        case INGEST_CSV_COL_NOT_BEFORE:
            cJSON_AddStringToObject(call, "not_before", v);
            break;
        case INGEST_CSV_COL_EXPIRES_AT:
            cJSON_AddStringToObject(call, "expires_at", v);
            break;
        case INGEST_CSV_COL_PRIORITY:
            cJSON_AddItemToObject(call, "priority", ingest_cell_value(v));
            break;
        case INGEST_CSV_COL_RESULT_URL:
            cJSON_AddStringToObject(call, "result_url", v);
            break;
        case INGEST_CSV_COL_PARAMETER:
        case INGEST_CSV_COL_IGNORED:
            break;
        }
    }
    if (phone && caller) {
        char *both = ob_xasprintf("%s;ani=%s", phone, caller);
        cJSON_AddStringToObject(call, "phone_number", both);
        free(both);
    } else if (phone) {
        cJSON_AddStringToObject(call, "phone_number", phone);
    }
    char *params = ingest_csv_parameters_json(row, header, u->roles);
    if (strcmp(params, "{}") != 0)
        cJSON_AddItemToObject(call, "call_parameters", cJSON_Parse(params));
    free(params);
    ingest_apply_defaults(call, u->defaults);
    return call;
}

/* The call id of a row: derived from the Idempotency-Key when there is one. */
static void row_call_id(const upload_t *u, size_t row, char call_id[OB_UUID_STRLEN + 1])
{
    if (u->idem == INGEST_IDEM_CLAIMED)
        ingest_idem_call_id(u->account_id, u->idem_key, u->idem_ms, row, call_id);
    else
        ob_uuid_v7(call_id);
}

/* A dry run's row: validated as ingest_offer_call does, produced nowhere. */
static bool validate_only(upload_t *u, const cJSON *call, ob_call_request_t *m, cJSON *errors)
{
    ob_pool_t *pool = ob_pool_new();
    m->accepted_at_ms = ob_now_ms();
    bool valid = ingest_validate_call(pool, call, &u->dep, m, errors);
    ob_pool_free(pool);
    return valid;
}

/* Validates one row's call and produces it (unless in a dry run), counting
 * the outcome. */
static ob_rc_t offer(upload_t *u, cJSON *call, const char *call_id, size_t row, size_t line,
                     ob_err_t *err)
{
    cJSON *errors = cJSON_CreateArray();
    ob_call_request_t m = {
        .call_id = (char *)call_id,
        .deployment_id = (char *)u->deployment_id,
        .account_id = u->account_id,
        .upload_id = u->upload_id,
        .queued_via = u->plum ? "plum" : NULL,
    };
    bool queued = false, valid = false;
    ob_rc_t rc = OB_OK;
    if (u->dry_run) {
        valid = validate_only(u, call, &m, errors);
    } else {
        rc = ingest_offer_call(u->ctx, u->batch, call, &u->dep, &m, errors, &queued, err);
        valid = queued;
    }
    pthread_mutex_lock(&u->mu);
    if (valid) {
        u->accepted++;
        u->queued += queued;
        if (queued && u->plum)
            ingest_plum_bulk_queued(u->plum, row, call_id); /* Plum answers with the ids */
    } else if (rc == OB_OK) {
        u->rejected++;
        const cJSON *e;
        cJSON_ArrayForEach(e, errors)
        {
            reject(u, row, line, cJSON_GetObjectItem(e, "field")->valuestring,
                   cJSON_GetObjectItem(e, "code")->valuestring,
                   cJSON_GetObjectItem(e, "message")->valuestring);
        }
    }
    pthread_mutex_unlock(&u->mu);
    cJSON_Delete(errors);
    return rc;
}

/* A lane's work: one row offered; a Kafka failure stops the rest. */
static void lane_row(void *owner, void *item)
{
    upload_t *u = owner;
    work_t *w = item;
    ob_err_t err = {{0}};
    bool failed = ingest_failure_seen(&u->failure);
    ob_rc_t rc = failed ? OB_OK : offer(u, w->call, w->call_id, w->row, w->line, &err);
    cJSON_Delete(w->call);
    free(w);
    if (rc != OB_OK)
        ingest_failure_note(&u->failure, rc, &err);
}

static ob_rc_t on_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                      ob_err_t *err)
{
    upload_t *u = opaque;
    ob_err_t row_err = {{0}};
    pthread_mutex_lock(&u->mu);
    u->rows++;
    if (ingest_csv_row_check(row, header->nfields, &row_err) != OB_OK) {
        u->rejected++;
        reject(u, row->row, row->line, NULL, "invalid_row", row_err.msg);
        pthread_mutex_unlock(&u->mu);
        return OB_OK;
    }
    pthread_mutex_unlock(&u->mu);
    work_t w = {.call = row_to_call(u, row, header), .row = row->row, .line = row->line};
    row_call_id(u, row->row, w.call_id);
    if (!u->lanes) {
        ob_rc_t rc = offer(u, w.call, w.call_id, w.row, w.line, err);
        cJSON_Delete(w.call);
        return rc;
    }
    if (ingest_failure_seen(&u->failure)) {
        cJSON_Delete(w.call);
        return ingest_failure_get(&u->failure, err); /* Kafka failed in a lane: stop reading */
    }
    work_t *item = ob_xmalloc(sizeof(*item));
    *item = w;
    ingest_lanes_push(u->lanes, row->row, item);
    return OB_OK;
}

/* Counts len more bytes of the file; false (answered 413) past the most an
 * upload may hold, or once the upload has stopped. */
static bool count_bytes(upload_t *u, size_t len)
{
    if (u->stop_rc != OB_OK)
        return false;
    u->bytes += len;
    if (u->bytes > (size_t)u->ctx->cfg->max_upload) {
        u->stop_rc = OB_EAGAIN; /* answered 413 */
        ob_err_set(&u->stop, "the upload is larger than %lld bytes; split the file",
                   u->ctx->cfg->max_upload);
        return false;
    }
    return true;
}

static bool feed(upload_t *u, const char *data, size_t len)
{
    if (!count_bytes(u, len))
        return false;
    u->stop_rc = ingest_csv_feed(u->csv, data, len, &u->stop);
    return u->stop_rc == OB_OK;
}

/* bulk_queue: the file is held, not read, until the fields beside it are
 * all known (ingest_plum.h); it counts against the upload's size as fed. */
static bool hold(upload_t *u, const char *data, size_t len)
{
    if (!count_bytes(u, len))
        return false;
    if (!ingest_plum_bulk_hold(u->plum, data, len, &u->stop))
        u->stop_rc = OB_ERR;
    return u->stop_rc == OB_OK;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data, uint64_t off,
                                    size_t size)
{
    upload_t *u = cls;
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (strcmp(key, "file") == 0 || strcmp(key, "csv") == 0) {
        if (filename && !u->file_name)
            u->file_name = ob_xstrdup(filename);
        if (u->plum)
            return hold(u, data, size) ? MHD_YES : MHD_NO;
        return size == 0 || feed(u, data, size) ? MHD_YES : MHD_NO;
    }
    /* Plum's fields beside the file are defaults for its rows; otherwise
     * options go in the query string. */
    if (u->plum)
        ingest_plum_bulk_field(u->plum, key, data, off, size);
    return MHD_YES;
}

static bool on_body(void *arg, ob_http_req_t *req, const char *data, size_t len)
{
    upload_t *u = req->stream;
    (void)arg;
    if (u->failed)
        return false;
    if (u->form)
        return MHD_post_process(u->form, data, len) == MHD_YES && u->stop_rc == OB_OK;
    return feed(u, data, len);
}

static void on_close(ob_http_req_t *req)
{
    upload_t *u = req->stream;
    if (!u)
        return;
    /* Normally finish stopped them; after a broken connection the rows still
     * waiting are dropped rather than queued for a client that is gone. */
    ingest_failure_drop(&u->failure);
    ingest_lanes_stop(u->lanes);
    u->lanes = NULL;
    if (u->form)
        MHD_destroy_post_processor(u->form);
    ingest_csv_reader_free(u->csv);
    if (u->batch) {
        ob_err_t ignored = {{0}};
        ob_rc_t unused = ob_produce_batch_wait(u->batch, 0, &ignored);
        (void)unused;
    }
    for (size_t i = 0; i < u->nerrors; i++) {
        free(u->errors[i].field);
        free(u->errors[i].code);
        free(u->errors[i].message);
    }
    free(u->errors);
    free(u->roles);
    free((char *)u->file_name);
    cJSON_Delete(u->defaults);
    ingest_plum_bulk_free(u->plum);
    pthread_mutex_destroy(&u->mu);
    ingest_failure_destroy(&u->failure);
}

/* Reads the options about the file itself (the call defaults are
 * ingest_stream_defaults'); false with a 422 problem set when one is bad.
 * phone_column is checked against the header when it arrives. */
static bool read_options(upload_t *u, ob_http_req_t *req)
{
    cJSON *errors = cJSON_CreateArray();
    const char *v;
    u->delimiter = INGEST_CSV_DELIM_DETECT;
    if ((v = ob_http_query(req, "delimiter")) && !ingest_csv_delimiter_parse(v, &u->delimiter))
        ingest_add_error(errors, "delimiter", "invalid_value",
                         "delimiter must be \",\", \";\", \"|\", a tab, or comma, semicolon, pipe, "
                         "tab or auto");
    if ((v = ob_http_query(req, "dry_run")) && strcmp(v, "true") != 0 && strcmp(v, "1") != 0 &&
        strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
        ingest_add_error(errors, "dry_run", "invalid_value", "dry_run must be true or false");
    else
        u->dry_run = v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    if ((v = ob_http_query(req, "phone_column"))) {
        if (!v[0] || strlen(v) > 256 || !ob_utf8_valid(v, strlen(v)))
            ingest_add_error(errors, "phone_column", "invalid_value",
                             "phone_column must be a column's name (1-256 bytes of UTF-8 text) or "
                             "its number, counting from 1");
        else
            u->phone_column = ob_pool_strdup(req->pool, v);
    }
    bool ok = cJSON_GetArraySize(errors) == 0;
    if (!ok)
        ob_http_problem(req, 422, "validation_failed", errors, "invalid options in the query");
    else
        cJSON_Delete(errors);
    return ok;
}

void ingest_upload_begin(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    upload_t *u = ob_pool_alloc(req->pool, sizeof(*u));
    const char *ct = ob_http_header(req, "Content-Type");
    ob_err_t err = {{0}};

    u->ctx = c->ctx;
    pthread_mutex_init(&u->mu, NULL);
    ingest_failure_init(&u->failure);
    u->failed = true; /* until everything below succeeded */
    u->deployment_id = c->param[0];
    snprintf(u->account_id, sizeof(u->account_id), "%s", c->account_id);
    req->stream = u;
    req->on_body = on_body;
    req->on_close = on_close;
    if (c->queued_via)
        u->plum = ingest_plum_bulk_new(c);
    if (!ingest_load_deployment(c, c->param[0], true, &u->dep) ||
        !(u->defaults = ingest_stream_defaults(req, &u->dep)) || !read_options(u, req))
        return;
    /* A replayed key answers at once; the body is not read. The same file
     * sent again under the key gets the same call ids, so nothing doubles.
     * A dry run queues nothing: it leaves the key (and the pending limit)
     * to the upload that will. */
    u->idem_key = ob_http_header(req, "Idempotency-Key");
    if (!u->dry_run && (u->idem = ingest_idem_claim(c, NULL, &u->idem_ms)) == INGEST_IDEM_DONE)
        return;
    if (!u->dry_run && !ingest_check_pending(c, c->param[0], 0)) {
        if (u->idem == INGEST_IDEM_CLAIMED)
            ingest_idem_store(c); /* a 429 leaves the key usable */
        return;
    }
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        u->form = MHD_create_post_processor(req->conn, 65536, on_form_part, u);
        if (!u->form) {
            ob_http_problem(req, 400, "invalid_multipart", NULL,
                            "the multipart body has no boundary");
            return;
        }
    } else if (ct && strncasecmp(ct, "text/csv", 8) != 0 &&
               strncasecmp(ct, "application/csv", 15) != 0 &&
               strncasecmp(ct, "text/plain", 10) != 0) {
        ob_http_problem(
            req, 415, "unsupported_media_type", NULL,
            "send the file as text/csv, or as the \"file\" part of multipart/form-data");
        return;
    }
    ob_uuid_v7(u->upload_id);
    if (ingest_store_create_upload(c->conn, u->upload_id, c->account_id, c->param[0], u->dry_run,
                                   &err) != OB_OK) {
        ingest_database_problem(req, &err);
        return;
    }
    u->csv = ingest_csv_reader_new(on_header, on_row, u);
    ingest_csv_reader_set_delimiter(u->csv, u->delimiter);
    u->batch = ob_produce_batch_new();
    if (u->ctx->cfg->upload_lanes > 1)
        u->lanes = ingest_lanes_start((int)u->ctx->cfg->upload_lanes, lane_row, u);
    u->failed = false;
}

void ingest_upload_plum_begin(ingest_call_t *c)
{
    if (!ingest_plum_deployment(c)) {
        c->req->stream = NULL; /* the problem is set; the body is dropped */
        return;
    }
    ingest_upload_begin(c);
}

/* Stores the outcome and the rejected rows. */
static ob_rc_t store(ingest_call_t *c, upload_t *u, const char *status, const char *detail,
                     ob_err_t *err)
{
    ingest_upload_outcome_t o = {
        .upload_id = u->upload_id,
        .status = status,
        .detail = detail,
        .file_name = u->file_name,
        .rows = u->rows,
        .queued = u->queued,
        .rejected = u->rejected,
    };
    return ingest_store_finish_upload(c->conn, &o, u->errors, u->nerrors, err);
}

static int by_row(const void *a, const void *b)
{
    const ingest_row_error_t *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* bulk_queue: the body is over, so the fields beside the file are all
 * known. They become the rows' defaults (before the query's), then the
 * file held meanwhile is read. False with the answer set: no row read. */
static bool plum_fields(ingest_call_t *c, upload_t *u)
{
    ob_err_t err = {{0}};
    if (u->stop_rc != OB_OK)
        return true; /* 413, or the file could not be held: answered below */
    cJSON *defaults = ingest_plum_bulk_defaults(c->req, u->plum, &u->dep);
    if (!defaults) {
        if (store(c, u, "failed", "the fields beside the file were refused; no row was read",
                  &err) != OB_OK)
            OB_WARN("upload", "upload %s not marked failed: %s", u->upload_id, err.msg);
        if (u->idem == INGEST_IDEM_CLAIMED)
            ingest_idem_store(c);
        return false;
    }
    ingest_apply_defaults(defaults, u->defaults);
    cJSON_Delete(u->defaults);
    u->defaults = defaults;
    const char *data = NULL;
    size_t len = 0;
    while (u->stop_rc == OB_OK && ingest_plum_bulk_next(u->plum, &data, &len, &err))
        u->stop_rc = ingest_csv_feed(u->csv, data, len, &u->stop);
    if (u->stop_rc == OB_OK && err.msg[0]) {
        u->stop_rc = OB_ERR;
        u->stop = err;
    }
    return true;
}

void ingest_upload_finish(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    upload_t *u = req->stream;
    ob_err_t err = {{0}}, ack_err = {{0}};
    if (!u || u->failed)
        return; /* the answer was set when the request began */
    c->account_id = u->account_id;
    if (u->plum && u->form && !plum_fields(c, u))
        return;
    if (u->stop_rc == OB_OK)
        u->stop_rc = ingest_csv_finish(u->csv, &u->stop);
    bool laned = u->lanes != NULL;
    ingest_lanes_stop(u->lanes); /* every row has been offered once this returns */
    u->lanes = NULL;
    if (laned) {
        ob_err_t lane_err = {{0}};
        ob_rc_t lane_rc = ingest_failure_get(&u->failure, &lane_err);
        if (lane_rc != OB_OK && u->stop_rc == OB_OK) {
            u->stop_rc = lane_rc;
            u->stop = lane_err;
        }
        /* Lanes finish rows out of order: report them in file order. */
        if (u->nerrors > 1)
            qsort(u->errors, u->nerrors, sizeof(ingest_row_error_t), by_row);
    }
    ob_rc_t ack = ob_produce_batch_wait(u->batch, 60000, &ack_err);
    u->batch = NULL;
    const char *status = "completed";
    char *detail = NULL;
    if (ack != OB_OK) {
        status = "failed";
        detail = ob_pool_printf(req->pool,
                                "Kafka did not acknowledge every row (%s): rows may not"
                                " all be queued; check the calls of this upload before uploading"
                                " again",
                                ack_err.msg);
    } else if (u->stop_rc != OB_OK) {
        status = "failed";
        detail = ob_pool_printf(req->pool, "the file could not be read past this point: %s%s",
                                u->stop.msg, u->queued ? "; the rows before it were queued" : "");
    }
    if (store(c, u, status, detail, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        return;
    }
    OB_LOG(OB_LOG_INFO, "upload", OB_KV("deployment_id", u->deployment_id, "req_id", req->req_id),
           "%s %s: %zu row(s), %zu accepted, %zu queued, %zu rejected (%s)",
           u->dry_run ? "dry run" : "upload", u->upload_id, u->rows, u->accepted, u->queued,
           u->rejected, status);
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "upload_id", u->upload_id);
    cJSON_AddStringToObject(ans, "deployment_id", u->deployment_id);
    cJSON_AddStringToObject(ans, "status", status);
    if (detail)
        cJSON_AddStringToObject(ans, "detail", detail);
    cJSON_AddNumberToObject(ans, "rows", (double)u->rows);
    cJSON_AddNumberToObject(ans, "queued", (double)u->queued);
    cJSON_AddNumberToObject(ans, "rejected", (double)u->rejected);
    cJSON_AddBoolToObject(ans, "dry_run", u->dry_run);
    cJSON_AddNumberToObject(ans, "accepted", (double)u->accepted);
    cJSON *errors = cJSON_AddArrayToObject(ans, "errors");
    for (size_t i = 0; i < u->nerrors && i < ANSWER_ERRORS; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "row", (double)u->errors[i].row);
        cJSON_AddNumberToObject(e, "line", (double)u->errors[i].line);
        if (u->errors[i].field)
            cJSON_AddStringToObject(e, "field", u->errors[i].field);
        cJSON_AddStringToObject(e, "code", u->errors[i].code);
        cJSON_AddStringToObject(e, "message", u->errors[i].message);
        cJSON_AddItemToArray(errors, e);
    }
    cJSON *links = cJSON_AddObjectToObject(ans, "links");
    cJSON_AddStringToObject(links, "self",
                            ob_pool_printf(req->pool, "/api/v1/uploads/%s", u->upload_id));
    cJSON_AddStringToObject(
        links, "report_csv",
        ob_pool_printf(req->pool, "/api/v1/uploads/%s/report.csv", u->upload_id));
    if (!u->dry_run)
        cJSON_AddStringToObject(links, "calls",
                                ob_pool_printf(req->pool,
                                               "/api/v1/deployments/%s/calls?upload_id=%s",
                                               u->deployment_id, u->upload_id));
    /* A dry run created nothing to point at: 200, not 201. */
    unsigned code = ack != OB_OK              ? 503
                    : u->stop_rc == OB_EAGAIN ? 413
                    : u->stop_rc != OB_OK     ? 422
                    : u->dry_run              ? 200
                                              : 201;
    if (u->plum)
        ingest_plum_bulk_answer(req, u->plum, ans, code);
    else
        ob_http_reply_json(req, code, ans);
    cJSON_Delete(ans);
    if (u->idem == INGEST_IDEM_CLAIMED)
        ingest_idem_store(c);
}

void ingest_get_upload(ingest_call_t *c)
{
    ingest_reply_owned(c, INGEST_VIEW_UPLOAD, c->param[0], 200, "upload", NULL);
}

static void report_row(void *arg, const char *const cells[5])
{
    ingest_csv_write_row(arg, cells, 5);
}

/* The rejected rows as a spreadsheet-safe CSV file. */
void ingest_get_upload_report(ingest_call_t *c)
{
    static const char *const head[] = {"row", "line", "field", "code", "message"};
    ob_err_t err = {{0}};
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    FILE *f = open_memstream(&buf, &len);
    OB_ASSERT(f != NULL);
    fputs(INGEST_CSV_UTF8_BOM, f);
    ingest_csv_write_row(f, head, 5);
    if (!ob_uuid_valid(c->param[0]) ||
        ingest_store_upload_errors(c->conn, c->param[0], c->account_id, report_row, f, &found,
                                   &err) != OB_OK ||
        !found) {
        fclose(f);
        free(buf);
        if (err.msg[0])
            ingest_database_problem(c->req, &err);
        else
            ob_http_problem(c->req, 404, "upload_not_found", NULL, "no upload %s", c->param[0]);
        return;
    }
    fclose(f);
    ob_pool_adopt(c->req->pool, buf);
    ob_http_add_header(
        c->req, "Content-Disposition",
        ob_pool_printf(c->req->pool, "attachment; filename=\"upload-%s-report.csv\"", c->param[0]));
    ob_http_reply(c->req, 200, "text/csv; charset=utf-8", buf, len);
}
