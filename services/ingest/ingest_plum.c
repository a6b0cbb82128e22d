/*
 * Plum-compatible routes, so a client written from Plum's outbound
 * documentation works after changing only the host (docs/plum.md is the
 * compatibility table): queue one call from form fields, queue a CSV (field
 * "csv") with defaults beside it, read a call as "call_details", cancel a
 * deployment's queue. Authentication is HTTP Basic with the account email
 * and an API key. Form fields are mapped onto the native call fields and
 * handled by the same code, so the two APIs cannot disagree on a call; the
 * answers are Plum's: 200 and a Link header for a queued call, {"error"}
 * bodies, 400 for bad data, 409 for a deleted deployment.
 */
#include "ingest_plum.h"
#include "ingest_calls.h"
#include "ingest_deployment.h"
#include "ingest_idempotency.h"
#include "ingest_queue.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ingest_time.h"
#include "ob_json.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum {
    K_TEXT,   /* a string */
    K_NUMBER, /* a number when it reads as one (validation names the field otherwise) */
    K_TIME,   /* unix seconds, RFC 3339, or English (ingest_parse_natural_time) */
    K_OBJECT, /* JSON object text (call_parameters) */
} kind_t;

/* Plum field -> native field. Fuse's names first, then Plum DEV's older
 * ones; aliases of one native field: the first sent counts. */
static const struct {
    const char *plum;   /* form field */
    const char *native; /* call field */
    kind_t kind;        /* how its value is read */
} field_map[] = {
    {"phone_number", "phone_number", K_TEXT},
    {"message_reference", "message_reference", K_TEXT},
    {"call_parameters", "call_parameters", K_OBJECT},
    {"result_url", "result_url", K_TEXT},
    {"max_attempts", "max_attempts", K_NUMBER},
    {"reattempt_wait", "retry_interval_s", K_NUMBER},
    {"start_timestamp", "not_before", K_TIME},
    {"end_timestamp", "expires_at", K_TIME},
    {"max_retries", "max_retries", K_NUMBER}, /* native too, with Plum DEV's meaning */
    {"max_retry", "max_retries", K_NUMBER},   /* queuecall.php's table spells it so */
    {"retry_interval", "retry_interval_s", K_NUMBER},
    {"scheduled_timestamp", "not_before", K_TIME},
    {"expiration_timestamp", "expires_at", K_TIME},
    {"scheduled_time", "not_before", K_TIME},
    {"expiration_time", "expires_at", K_TIME},
    {"priority", "priority", K_NUMBER},
};

#define PLUM_TIMES                                                                                 \
    "unix seconds, an RFC 3339 time, or an English time such as \"now\", \"+3 days\", "            \
    "\"tomorrow 9am\" or \"oct 14th, 2011 11:05PM EST\""

void ingest_plum_form_add(cJSON *form, const char *key, const char *data, uint64_t off, size_t size)
{
    /* A value may arrive in pieces: append to what came before. */
    cJSON *prev = cJSON_GetObjectItemCaseSensitive(form, key);
    if (off > 0 && cJSON_IsString(prev)) {
        char *joined = ob_xasprintf("%s%.*s", prev->valuestring, (int)size, data);
        cJSON_ReplaceItemInObjectCaseSensitive(form, key, cJSON_CreateString(joined));
        free(joined);
    } else if (!prev) {
        char *v = ob_xstrndup(data ? data : "", size);
        cJSON_AddStringToObject(form, key, v);
        free(v);
    }
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    ingest_plum_form_add(cls, key, data, off, size);
    return MHD_YES;
}

/* The request's form fields (urlencoded or multipart) as strings. */
static cJSON *read_form(ob_http_req_t *req)
{
    cJSON *form = cJSON_CreateObject();
    struct MHD_PostProcessor *pp = MHD_create_post_processor(req->conn, 16384, on_field, form);
    if (!pp) {
        cJSON_Delete(form);
        return NULL;
    }
    enum MHD_Result ok = MHD_post_process(pp, req->body, req->body_len);
    MHD_destroy_post_processor(pp);
    if (ok != MHD_YES) {
        cJSON_Delete(form);
        return NULL;
    }
    return form;
}

static int map_index(const char *plum)
{
    for (size_t i = 0; i < OB_COUNTOF(field_map); i++)
        if (strcmp(field_map[i].plum, plum) == 0)
            return (int)i;
    return -1;
}

static void add_error(cJSON *errors, const char *field, const char *code, const char *fmt, ...)
    OB_PRINTF(4, 5);
static void add_error(cJSON *errors, const char *field, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ingest_add_error(errors, field, code, msg);
}

/* is_pci: 0 always, 1 where the deployment allows it; never sent on. */
static void check_pci(const cJSON *f, const ingest_plum_opts_t *o, cJSON *errors)
{
    const char *v = cJSON_IsString(f) ? f->valuestring : NULL;
    bool one =
        (v && strcmp(v, "1") == 0) || cJSON_IsTrue(f) || (cJSON_IsNumber(f) && f->valuedouble == 1);
    bool zero = (v && (strcmp(v, "0") == 0 || !v[0])) || cJSON_IsFalse(f) ||
                (cJSON_IsNumber(f) && f->valuedouble == 0);
    if (!one && !zero)
        add_error(errors, "is_pci", "invalid_value", "is_pci must be 0 or 1");
    else if (one && !o->pci_allowed)
        add_error(errors, "is_pci", "pci_unavailable",
                  "is_pci=1 asks to run the call in Plum's HIPAA/PCI secure environment, which"
                  " this deployment does not declare (its plum_pci_allowed setting is false);"
                  " send is_pci=0 or leave it out");
}

/* A Plum time: 0 or empty is none (Plum DEV: start at once, never expire),
 * the native forms are passed on as they are, English ones as seconds. */
static void add_time(cJSON *call, const char *native, const char *plum, const char *v,
                     const ingest_plum_opts_t *o, cJSON *errors)
{
    int64_t ms = 0;
    if (!v[0] || strcmp(v, "0") == 0)
        return;
    if (ingest_parse_time_text(v, &ms))
        cJSON_AddStringToObject(call, native, v);
    else if (ingest_parse_natural_time(v, o->now_ms, &ms))
        cJSON_AddNumberToObject(call, native, (double)(ms / 1000));
    else
        add_error(errors, plum, "invalid_time", "%s must be " PLUM_TIMES " (got \"%.64s\")", plum,
                  v);
}

cJSON *ingest_plum_to_call(const cJSON *form, const ingest_plum_opts_t *o, cJSON *errors)
{
    int before = cJSON_GetArraySize(errors);
    cJSON *call = cJSON_CreateObject();
    const cJSON *f;
    cJSON_ArrayForEach(f, form)
    {
        if (strcmp(f->string, "is_pci") == 0) {
            check_pci(f, o, errors);
            continue;
        }
        int i = map_index(f->string);
        const char *native = i >= 0 ? field_map[i].native : f->string;
        kind_t kind = i >= 0 ? field_map[i].kind : K_TEXT;
        if (cJSON_HasObjectItem(call, native))
            continue;
        if (!cJSON_IsString(f)) {
            /* A JSON body: numbers and objects are already typed. */
            if (kind != K_TIME || !cJSON_IsNumber(f) || f->valuedouble != 0)
                cJSON_AddItemToObject(call, native, cJSON_Duplicate(f, true));
            continue;
        }
        const char *v = f->valuestring;
        if (!v[0] && strcmp(native, "phone_number") != 0)
            continue; /* an empty field is an unset one, as PHP forms send them */
        char *end = NULL;
        double d = strtod(v, &end);
        if (kind == K_TIME) {
            add_time(call, native, f->string, v, o, errors);
        } else if (kind == K_OBJECT) {
            cJSON *obj = cJSON_Parse(v);
            cJSON_AddItemToObject(call, native, obj ? obj : cJSON_CreateString(v));
        } else if (kind == K_NUMBER && end != v && *end == '\0') {
            cJSON_AddNumberToObject(call, native, d);
        } else {
            cJSON_AddStringToObject(call, native, v);
        }
    }
    /* Plum's range is narrower than ours (60 to 172800). */
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(form, "reattempt_wait");
    double w = cJSON_IsNumber(wait) ? wait->valuedouble : -1;
    if (cJSON_IsString(wait)) {
        char *end = NULL;
        w = strtod(wait->valuestring, &end);
        if (end == wait->valuestring || *end)
            w = -1;
    }
    if (wait && !(cJSON_IsString(wait) && !wait->valuestring[0]) &&
        (w < 60 || w > 86400 || w != floor(w)))
        add_error(errors, "reattempt_wait", "out_of_range",
                  "reattempt_wait must be an integer from 60 to 86400 (seconds)");
    if (cJSON_GetArraySize(errors) != before) {
        cJSON_Delete(call);
        return NULL;
    }
    return call;
}

/* text with every whole-word native field name the form sent under a Plum
 * name replaced by that name (pool-owned). */
static const char *plum_words(ob_pool_t *pool, const char *text, const cJSON *form)
{
    const char *out = text;
    for (size_t i = 0; i < OB_COUNTOF(field_map); i++) {
        const char *native = field_map[i].native, *plum = field_map[i].plum;
        if (strcmp(native, plum) == 0 || !cJSON_HasObjectItem(form, plum))
            continue;
        size_t nl = strlen(native);
        const char *at = out;
        while ((at = strstr(at, native))) {
            bool word = (at == out || !(isalnum((unsigned char)at[-1]) || at[-1] == '_')) &&
                        !(isalnum((unsigned char)at[nl]) || at[nl] == '_');
            if (!word) {
                at += nl;
                continue;
            }
            size_t head = (size_t)(at - out);
            out = ob_pool_printf(pool, "%.*s%s%s", (int)head, out, plum, at + nl);
            at = out + head + strlen(plum);
        }
    }
    return out;
}

/* Native validation names native fields; a Plum client sent Plum's names,
 * so errors are told in those (field and message). */
static void rename_errors(ob_pool_t *pool, cJSON *errors, const cJSON *form)
{
    cJSON *e;
    cJSON_ArrayForEach(e, errors)
    {
        const cJSON *field = cJSON_GetObjectItem(e, "field");
        const cJSON *msg = cJSON_GetObjectItem(e, "message");
        if (cJSON_IsString(field))
            cJSON_ReplaceItemInObject(
                e, "field", cJSON_CreateString(plum_words(pool, field->valuestring, form)));
        if (cJSON_IsString(msg))
            cJSON_ReplaceItemInObject(e, "message",
                                      cJSON_CreateString(plum_words(pool, msg->valuestring, form)));
    }
}

static void plum_field_names(ob_http_req_t *req, const cJSON *form)
{
    cJSON *problem = cJSON_ParseWithLength(req->resp_body, req->resp_len);
    if (!problem)
        return;
    rename_errors(req->pool, cJSON_GetObjectItem(problem, "errors"), form);
    ob_http_reply_json(req, req->status, problem);
    req->content_type = "application/problem+json";
    cJSON_Delete(problem);
}

bool ingest_plum_path(const char *path)
{
    return strncmp(path, "/api/apps/", 10) == 0 || strncmp(path, "/api/outbound/", 14) == 0;
}

void ingest_plum_answer(ob_http_req_t *req)
{
    if (!req->content_type || strcmp(req->content_type, "application/problem+json") != 0)
        return;
    cJSON *p = cJSON_ParseWithLength(req->resp_body, req->resp_len);
    const cJSON *detail = cJSON_GetObjectItem(p, "detail");
    const cJSON *e;
    char *msg = ob_pool_strdup(req->pool,
                               cJSON_IsString(detail) ? detail->valuestring : "the request failed");
    const char *sep = ": ";
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(p, "errors"))
    {
        const cJSON *row = cJSON_GetObjectItem(e, "row");
        const cJSON *field = cJSON_GetObjectItem(e, "field");
        const cJSON *text = cJSON_GetObjectItem(e, "message");
        const char *f = cJSON_IsString(field) && field->valuestring[0] ? field->valuestring : NULL;
        const char *t = cJSON_IsString(text) ? text->valuestring : "invalid";
        /* Every error names its field, once. */
        bool named = f && strncmp(t, f, strlen(f)) == 0;
        const char *where =
            cJSON_IsNumber(row) ? ob_pool_printf(req->pool, "row %d: ", row->valueint) : "";
        msg = ob_pool_printf(req->pool, "%s%s%s%s%s%s", msg, sep, where, f && !named ? f : "",
                             f && !named ? ": " : "", t);
        sep = "; ";
    }
    cJSON_Delete(p);
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "error", msg);
    /* Plum answers bad data 400 (we say 422 on the native API). */
    ob_http_reply_json(req, req->status == 422 ? 400 : req->status, ans);
    cJSON_Delete(ans);
}

const char *ingest_plum_url(ob_http_req_t *req, const char *path)
{
    const char *host = ob_http_header(req, "Host");
    const char *proto = ob_http_header(req, "X-Forwarded-Proto");
    if (!host || !host[0] || strlen(host) > 255 ||
        host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")])
        return path; /* a relative reference, which RFC 8288 allows */
    return ob_pool_printf(req->pool, "%s://%s%s",
                          proto && strcasecmp(proto, "https") == 0 ? "https" : "http", host, path);
}

/* Sets header name to value, in place of the one the answer has. */
static void set_header(ob_http_req_t *req, const char *old_name, const char *name,
                       const char *value)
{
    for (int i = 0; i < req->nhdr; i++) {
        if (strcasecmp(req->hdr_name[i], old_name) == 0) {
            req->hdr_name[i] = name;
            req->hdr_value[i] = value;
            return;
        }
    }
    ob_http_add_header(req, name, value);
}

/* The native 202 answer (fresh or replayed) as Plum's: 200, the call_id, and
 * a Link header to the call's status where native answers say Location. */
static void plum_accepted(ob_http_req_t *req)
{
    cJSON *native = cJSON_ParseWithLength(req->resp_body, req->resp_len);
    const cJSON *id = cJSON_GetObjectItem(native, "call_id");
    if (cJSON_IsString(id) && ob_uuid_valid(id->valuestring)) {
        const char *path = ob_pool_printf(req->pool, "/api/outbound/%s", id->valuestring);
        set_header(req, "Location", "Link",
                   ob_pool_printf(req->pool, "<%s>; rel=\"monitor\"", ingest_plum_url(req, path)));
        cJSON *ans = cJSON_CreateObject();
        cJSON_AddStringToObject(ans, "call_id", id->valuestring);
        ob_http_reply_json(req, 200, ans);
        cJSON_Delete(ans);
    }
    cJSON_Delete(native);
}

bool ingest_plum_deployment(ingest_call_t *c)
{
    ob_err_t err = {{0}};
    bool found = false, deleted = false;
    if (!ob_uuid_valid(c->param[0]) || !ob_uuid_valid(c->param[1]) ||
        ingest_store_plum_deployment(c->conn, c->param[1], c->param[0], c->account_id, &found,
                                     &deleted, &c->pci_allowed, &err) != OB_OK ||
        !found) {
        if (err.msg[0])
            ingest_database_problem(c->req, &err);
        else
            ob_http_problem(c->req, 404, "deployment_not_found", NULL,
                            "no deployment %s in application %s", c->param[1], c->param[0]);
        return false;
    }
    if (deleted) {
        ob_http_problem(c->req, 409, "deployment_deleted", NULL,
                        "deployment %s of application %s was deleted", c->param[1], c->param[0]);
        return false;
    }
    c->queued_via = "plum";
    c->param[0] = c->param[1];
    c->param[1] = NULL;
    return true;
}

void ingest_plum_queue(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    deployment_t dep;
    char hash[65];
    if (!ingest_plum_deployment(c) || !ingest_load_deployment(c, c->param[0], true, &dep))
        return;
    const char *ct = ob_http_header(req, "Content-Type");
    ob_json_fault_t fault = OB_JSON_OK;
    cJSON *form = ct && strncasecmp(ct, "application/json", 16) == 0
                      ? ob_json_parse(req->body, req->body_len, NULL, &fault)
                      : read_form(req);
    if (!cJSON_IsObject(form)) {
        ob_http_problem(req, 400, "invalid_form", NULL,
                        "send the call as form fields (application/x-www-form-urlencoded or"
                        " multipart/form-data) or as a JSON object");
        cJSON_Delete(form);
        return;
    }
    cJSON *errors = cJSON_CreateArray();
    ingest_plum_opts_t o = {.pci_allowed = c->pci_allowed, .now_ms = ob_now_ms()};
    cJSON *call = ingest_plum_to_call(form, &o, errors);
    if (!call) {
        int n = cJSON_GetArraySize(errors);
        ob_http_problem(req, 422, "validation_failed", errors, "the call has %d invalid field(s)",
                        n);
        cJSON_Delete(form);
        return;
    }
    cJSON_Delete(errors);
    ingest_sha256_hex(req->body, req->body_len, hash);
    ingest_queue_json(c, &dep, call, hash);
    if (req->status == 422)
        plum_field_names(req, form);
    else if (req->status == 202)
        plum_accepted(req);
    cJSON_Delete(call);
    cJSON_Delete(form);
}

cJSON *ingest_plum_stream_defaults(ob_http_req_t *req, const cJSON *form, const deployment_t *dep,
                                   bool pci_allowed)
{
    ingest_plum_opts_t o = {.pci_allowed = pci_allowed, .now_ms = ob_now_ms()};
    cJSON *errors = cJSON_CreateArray();
    cJSON *defaults = ingest_plum_to_call(form, &o, errors);
    if (defaults) {
        /* Rows may say max_attempts: a default of max_retries is told as the
         * attempts it means, so the two do not conflict. */
        const cJSON *retries = cJSON_GetObjectItemCaseSensitive(defaults, "max_retries");
        if (cJSON_IsNumber(retries) && !cJSON_HasObjectItem(defaults, "max_attempts")) {
            cJSON_AddNumberToObject(defaults, "max_attempts", retries->valuedouble + 1);
            cJSON_DeleteItemFromObjectCaseSensitive(defaults, "max_retries");
        }
        /* Checked once, as part of a call with a valid number. */
        ob_pool_t *pool = ob_pool_new();
        cJSON *probe = cJSON_Duplicate(defaults, true);
        ob_call_request_t m = {.accepted_at_ms = ob_now_ms()};
        if (!cJSON_HasObjectItem(probe, "phone_number"))
            cJSON_AddStringToObject(probe, "phone_number", "+12125550100");
        if (!ingest_validate_call(pool, probe, dep, &m, errors)) {
            cJSON_Delete(defaults);
            defaults = NULL;
        }
        cJSON_Delete(probe);
        ob_pool_free(pool);
    }
    if (defaults) {
        cJSON_Delete(errors);
        return defaults;
    }
    rename_errors(req->pool, errors, form);
    int n = cJSON_GetArraySize(errors);
    ob_http_problem(req, 422, "validation_failed", errors, "%d invalid field(s) beside the file",
                    n);
    return NULL;
}

/* bulk_queue's state beside the upload's (ingest_uploads.c). Plum clients
 * send the fields beside the file in any order (PHP's curl sends them in
 * its array's, often the file first), and every row needs them: the file is
 * held in an unlinked temporary file until the body is over, then read. */
struct ingest_plum_bulk {
    cJSON *form;       /* the fields beside the file, as strings */
    size_t form_bytes; /* their size so far */
    bool pci_allowed;  /* the deployment accepts is_pci=1 */
    FILE *spool;       /* the file, until the fields are all read */
    bool file_seen;    /* a csv (or file) part came */
    bool spool_failed; /* the file could not be held */
    bool reading;      /* it is being read back */
    char buf[65536];   /* reading the spool back */
    struct {
        size_t row;                       /* the file's row */
        char call_id[OB_UUID_STRLEN + 1]; /* its call */
    } * ids;                              /* queued calls, up to INGEST_PLUM_LISTED_IDS */
    size_t nids;                          /* entries in ids */
    size_t queued;                        /* calls queued, listed or not */
};

#define MAX_FORM_BYTES 65536 /* the fields beside the file, together */

ingest_plum_bulk_t *ingest_plum_bulk_new(const ingest_call_t *c)
{
    ingest_plum_bulk_t *b = ob_xcalloc(1, sizeof(*b));
    b->form = cJSON_CreateObject();
    b->pci_allowed = c->pci_allowed;
    return b;
}

void ingest_plum_bulk_free(ingest_plum_bulk_t *b)
{
    if (!b)
        return;
    cJSON_Delete(b->form);
    if (b->spool)
        fclose(b->spool);
    free(b->ids);
    free(b);
}

void ingest_plum_bulk_field(ingest_plum_bulk_t *b, const char *key, const char *data, uint64_t off,
                            size_t size)
{
    b->form_bytes += size + (off == 0 ? strlen(key) : 0);
    if (b->form_bytes <= MAX_FORM_BYTES)
        ingest_plum_form_add(b->form, key, data, off, size);
}

/* An unlinked file in TMPDIR (or /tmp): gone with the process. */
static FILE *spool_file(ob_err_t *err)
{
    const char *dir = getenv("TMPDIR");
    char *path = ob_xasprintf("%s/outbound-bulk-XXXXXX", dir && dir[0] ? dir : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w+") : NULL;
    if (!f)
        ob_err_set(err, "cannot create a temporary file in %s: %s", dir && dir[0] ? dir : "/tmp",
                   strerror(errno));
    if (fd >= 0)
        unlink(path);
    if (fd >= 0 && !f)
        close(fd);
    free(path);
    return f;
}

bool ingest_plum_bulk_hold(ingest_plum_bulk_t *b, const char *data, size_t size, ob_err_t *err)
{
    b->file_seen = true;
    if (!b->spool && !b->spool_failed && !(b->spool = spool_file(err)))
        b->spool_failed = true;
    if (b->spool && size > 0 && fwrite(data, 1, size, b->spool) != size) {
        ob_err_set(err, "the file could not be held while the fields beside it were read: %s",
                   strerror(errno));
        b->spool_failed = true;
    }
    return !b->spool_failed;
}

bool ingest_plum_bulk_next(ingest_plum_bulk_t *b, const char **data, size_t *len, ob_err_t *err)
{
    if (!b->spool || b->spool_failed)
        return false;
    if (!b->reading) {
        b->reading = true;
        if (fflush(b->spool) != 0 || fseek(b->spool, 0, SEEK_SET) != 0) {
            ob_err_set(err, "the file held could not be read back: %s", strerror(errno));
            b->spool_failed = true;
            return false;
        }
    }
    size_t n = fread(b->buf, 1, sizeof(b->buf), b->spool);
    if (n == 0 && ferror(b->spool)) {
        ob_err_set(err, "the file held could not be read back: %s", strerror(errno));
        b->spool_failed = true;
    }
    *data = b->buf;
    *len = n;
    return n > 0;
}

void ingest_plum_bulk_queued(ingest_plum_bulk_t *b, size_t row, const char *call_id)
{
    if (b->queued++ >= INGEST_PLUM_LISTED_IDS)
        return;
    if (!b->ids)
        b->ids = ob_xcalloc(INGEST_PLUM_LISTED_IDS, sizeof(*b->ids));
    b->ids[b->nids].row = row;
    snprintf(b->ids[b->nids].call_id, sizeof(b->ids[b->nids].call_id), "%s", call_id);
    b->nids++;
}

cJSON *ingest_plum_bulk_defaults(ob_http_req_t *req, ingest_plum_bulk_t *b, const deployment_t *dep)
{
    if (b->form_bytes > MAX_FORM_BYTES) {
        ob_http_problem(req, 413, "form_too_large", NULL,
                        "the fields beside the file hold more than %d bytes", MAX_FORM_BYTES);
        return NULL;
    }
    if (!b->file_seen) {
        ob_http_problem(req, 400, "csv_required", NULL,
                        "csv is required: send the file as the \"csv\" part of"
                        " multipart/form-data");
        return NULL;
    }
    return ingest_plum_stream_defaults(req, b->form, dep, b->pci_allowed);
}

static int by_listed_row(const void *x, const void *y)
{
    const size_t a = *(const size_t *)x, c = *(const size_t *)y;
    return a < c ? -1 : a > c;
}

void ingest_plum_bulk_answer(ob_http_req_t *req, ingest_plum_bulk_t *b, const cJSON *native,
                             unsigned status)
{
    const cJSON *links = cJSON_GetObjectItem(native, "links");
    const cJSON *calls = cJSON_GetObjectItem(links, "calls");
    const cJSON *report = cJSON_GetObjectItem(links, "report_csv");
    const cJSON *detail = cJSON_GetObjectItem(native, "detail");
    cJSON *ans = cJSON_CreateObject();
    if (status != 201 && status != 200) {
        /* Plum: 400 for a file that could not be read; 413, 503 as they are. */
        status = b->spool_failed ? 503 : status == 422 ? 400 : status;
        cJSON_AddStringToObject(ans, "error",
                                cJSON_IsString(detail) ? detail->valuestring : "the upload failed");
        if (status == 503)
            ob_http_add_header(req, "Retry-After", "1");
    } else {
        status = 200; /* Plum: "200: success" */
    }
    static const char *const copied[] = {"upload_id", "rows", "queued", "rejected"};
    for (size_t i = 0; i < OB_COUNTOF(copied); i++)
        cJSON_AddItemToObject(ans, copied[i],
                              cJSON_Duplicate(cJSON_GetObjectItem(native, copied[i]), true));
    /* The ids of the queued calls in file order, or above the listed number
     * only the link that pages through them. */
    if (b->queued <= INGEST_PLUM_LISTED_IDS) {
        if (b->nids > 1)
            qsort(b->ids, b->nids, sizeof(*b->ids), by_listed_row);
        cJSON *ids = cJSON_AddArrayToObject(ans, "call_ids");
        for (size_t i = 0; i < b->nids; i++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(b->ids[i].call_id));
    }
    if (cJSON_IsString(calls)) {
        cJSON_AddStringToObject(ans, "calls_url", ingest_plum_url(req, calls->valuestring));
        ob_http_add_header(req, "Link",
                           ob_pool_printf(req->pool, "<%s>; rel=\"related\"",
                                          ingest_plum_url(req, calls->valuestring)));
    }
    if (cJSON_IsString(report))
        cJSON_AddStringToObject(ans, "report_url", ingest_plum_url(req, report->valuestring));
    /* The rejected rows, each one text naming its row and field. */
    cJSON *errors = cJSON_AddArrayToObject(ans, "errors");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(native, "errors"))
    {
        const cJSON *field = cJSON_GetObjectItem(e, "field");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "row", cJSON_Duplicate(cJSON_GetObjectItem(e, "row"), true));
        if (cJSON_IsString(field))
            cJSON_AddStringToObject(o, "field", field->valuestring);
        cJSON_AddItemToObject(o, "error", cJSON_Duplicate(cJSON_GetObjectItem(e, "message"), true));
        cJSON_AddItemToArray(errors, o);
    }
    ob_http_reply_json(req, status, ans);
    cJSON_Delete(ans);
}

void ingest_plum_cancel(ingest_call_t *c)
{
    if (!ingest_plum_deployment(c))
        return;
    ingest_cancel_queue(c);
    /* Plum: "No body is returned for a successful response". */
    if (c->req->status == 202)
        ob_http_reply(c->req, 202, "text/plain; charset=utf-8", "", 0);
}

void ingest_plum_get_call(ingest_call_t *c)
{
    ingest_reply_call(c, INGEST_VIEW_PLUM_CALL, true);
}
