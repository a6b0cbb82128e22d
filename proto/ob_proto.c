/*
 * Table-driven JSON codecs for the topic messages: each message type is a
 * list of (name, kind, offset, required) so encode and decode cannot drift
 * apart, and adding a field is one line.
 */
#include "ob_proto.h"
#include "ob_json.h"
#include "ob_uuid.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef enum {
    F_STR,  /* char *, JSON string */
    F_UUID, /* char *, JSON string holding a canonical UUID */
    F_OBJ,  /* char * holding JSON object text, JSON object */
    F_DOC,  /* char * holding JSON object or array text (a call-control document) */
    F_INT,  /* int64_t, JSON integer */
} kind_t;

typedef struct {
    const char *name; /* JSON member */
    kind_t kind;      /* how it is represented */
    size_t off;       /* offset in the struct */
    int required;     /* decode fails without it */
    int64_t min, max; /* bounds for F_INT */
} field_t;

#define END                                                                                        \
    {                                                                                              \
        NULL, 0, 0, 0, 0, 0                                                                        \
    }
#define I64_MAX INT64_MAX

#define R(f) offsetof(ob_call_request_t, f)
static const field_t request_fields[] = {
    {"call_id", F_UUID, R(call_id), 1, 0, 0},
    {"deployment_id", F_UUID, R(deployment_id), 1, 0, 0},
    {"account_id", F_UUID, R(account_id), 1, 0, 0},
    {"phone_number", F_STR, R(phone_number), 1, 0, 0},
    {"caller_id", F_STR, R(caller_id), 0, 0, 0},
    {"post_dial", F_STR, R(post_dial), 0, 0, 0},
    {"message_reference", F_STR, R(message_reference), 0, 0, 0},
    {"call_parameters", F_OBJ, R(call_parameters), 0, 0, 0},
    {"retry_rules", F_OBJ, R(retry_rules), 0, 0, 0},
    {"result_url", F_STR, R(result_url), 0, 0, 0},
    {"request_id", F_STR, R(request_id), 0, 0, 0},
    {"upload_id", F_UUID, R(upload_id), 0, 0, 0},
    {"queued_via", F_STR, R(queued_via), 0, 0, 0},
    {"app", F_DOC, R(app), 0, 0, 0},
    {"max_attempts", F_INT, R(max_attempts), 1, 1, OB_MAX_ATTEMPTS},
    {"retry_interval_s", F_INT, R(retry_interval_s), 1, 0, 172800},
    {"priority", F_INT, R(priority), 0, -1000, 1000},
    {"not_before", F_INT, R(not_before_ms), 1, 0, I64_MAX},
    {"expires_at", F_INT, R(expires_at_ms), 0, 0, I64_MAX},
    {"accepted_at", F_INT, R(accepted_at_ms), 1, 0, I64_MAX},
    END,
};

#define C(f) offsetof(ob_cancel_deployment_t, f)
static const field_t cancel_fields[] = {
    {"command_id", F_UUID, C(command_id), 1, 0, 0},
    {"deployment_id", F_UUID, C(deployment_id), 1, 0, 0},
    {"account_id", F_UUID, C(account_id), 1, 0, 0},
    {"request_id", F_STR, C(request_id), 0, 0, 0},
    {"requested_at", F_INT, C(requested_at_ms), 1, 0, I64_MAX},
    END,
};

#define J(f) offsetof(ob_dial_job_t, f)
static const field_t job_fields[] = {
    {"job_id", F_UUID, J(job_id), 1, 0, 0},
    {"call_id", F_UUID, J(call_id), 1, 0, 0},
    {"deployment_id", F_UUID, J(deployment_id), 1, 0, 0},
    {"account_id", F_UUID, J(account_id), 1, 0, 0},
    {"phone_number", F_STR, J(phone_number), 1, 0, 0},
    {"caller_id", F_STR, J(caller_id), 0, 0, 0},
    {"post_dial", F_STR, J(post_dial), 0, 0, 0},
    {"message_reference", F_STR, J(message_reference), 0, 0, 0},
    {"call_parameters", F_OBJ, J(call_parameters), 0, 0, 0},
    {"start_url", F_STR, J(start_url), 0, 0, 0},
    {"attempt", F_INT, J(attempt), 1, 1, OB_MAX_ATTEMPTS},
    {"max_attempts", F_INT, J(max_attempts), 1, 1, OB_MAX_ATTEMPTS},
    {"retry_interval_s", F_INT, J(retry_interval_s), 1, 0, 172800},
    {"lease_until", F_INT, J(lease_until_ms), 1, 0, I64_MAX},
    {"detection", F_OBJ, J(detection), 0, 0, 0},
    {"app", F_DOC, J(app), 0, 0, 0},
    END,
};

#define E(f) offsetof(ob_call_event_t, f)
/* Members of the CloudEvent's data object. */
static const field_t event_data_fields[] = {
    {"call_id", F_UUID, E(call_id), 1, 0, 0},
    {"deployment_id", F_UUID, E(deployment_id), 1, 0, 0},
    {"account_id", F_UUID, E(account_id), 1, 0, 0},
    {"state", F_STR, E(state), 1, 0, 0},
    {"status", F_STR, E(status), 0, 0, 0},
    {"result", F_STR, E(result), 0, 0, 0},
    {"reason", F_STR, E(reason), 0, 0, 0},
    {"phone_number", F_STR, E(phone_number), 1, 0, 0},
    {"message_reference", F_STR, E(message_reference), 0, 0, 0},
    {"attempt", F_INT, E(attempt), 1, 0, OB_MAX_ATTEMPTS},
    {"max_attempts", F_INT, E(max_attempts), 1, 1, OB_MAX_ATTEMPTS},
    {"detection", F_OBJ, E(detection), 0, 0, 0},
    {"digits", F_STR, E(digits), 0, 0, 0},
    END,
};

/*
 * Encoding writes JSON text directly: every accepted call is encoded once on
 * the ingest's hot path, and building a cJSON tree to print it cost more
 * allocations than the rest of the request.
 */
typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void out_reserve(out_t *o, size_t n)
{
    if (o->len + n + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
        cap *= 2;
    o->p = ob_xrealloc(o->p, cap);
    o->cap = cap;
}

static void out_raw(out_t *o, const char *s, size_t n)
{
    out_reserve(o, n);
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(out_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    out_reserve(o, strlen(s) + 2);
    o->p[o->len++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x20 && *c != '"' && *c != '\\') {
            if (o->len + 2 > o->cap)
                out_reserve(o, 2);
            o->p[o->len++] = (char)*c;
            continue;
        }
        char esc[7] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15], 0};
        const char *e = *c == '"'    ? "\\\""
                        : *c == '\\' ? "\\\\"
                        : *c == '\n' ? "\\n"
                        : *c == '\r' ? "\\r"
                        : *c == '\t' ? "\\t"
                                     : esc;
        out_raw(o, e, strlen(e));
    }
    out_raw(o, "\"", 1);
}

static void out_int(out_t *o, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    out_raw(o, buf, (size_t)n);
}

/* Appends ,"name": (no comma before the first member of an object). */
static void out_key(out_t *o, const char *name)
{
    if (o->p[o->len - 1] != '{')
        out_raw(o, ",", 1);
    out_str(o, name);
    out_raw(o, ":", 1);
}

/* True for text that is one JSON object (or, for F_DOC, array). */
static bool is_object_text(const char *s, kind_t kind)
{
    cJSON *item = cJSON_ParseWithOpts(s, NULL, 1);
    bool ok = cJSON_IsObject(item) || (kind == F_DOC && cJSON_IsArray(item));
    cJSON_Delete(item);
    return ok;
}

/*
 * Writes the fields' members. Optional integers that are 0 and strings that
 * are NULL are left out (decode reads them back as 0 and NULL). F_OBJ text
 * is copied as it is if it is one JSON object; producers validate it, so
 * anything else is dropped rather than sent broken.
 */
static void encode_fields(out_t *o, const field_t *fields, const void *m)
{
    const char *base = m;
    for (const field_t *f = fields; f->name; f++) {
        const void *p = base + f->off;
        if (f->kind == F_INT) {
            int64_t v = *(const int64_t *)p;
            if (v == 0 && !f->required)
                continue;
            out_key(o, f->name);
            out_int(o, v);
            continue;
        }
        const char *s = *(char *const *)p;
        bool raw = f->kind == F_OBJ || f->kind == F_DOC;
        if (!s || (raw && !is_object_text(s, f->kind)))
            continue;
        out_key(o, f->name);
        if (raw)
            out_raw(o, s, strlen(s));
        else
            out_str(o, s);
    }
}

/* Starts {"v":1,"kind":"<kind>" */
static out_t envelope(const char *kind)
{
    out_t o = {0};
    out_raw(&o, "{\"v\":", 5);
    out_int(&o, OB_PROTO_VERSION);
    out_key(&o, "kind");
    out_str(&o, kind);
    return o;
}

static char *finish(out_t *o)
{
    out_raw(o, "}", 1);
    return o->p;
}

static void clear_fields(const field_t *fields, void *m)
{
    char *base = m;
    for (const field_t *f = fields; f->name; f++) {
        if (f->kind != F_INT) {
            free(*(char **)(base + f->off));
            *(char **)(base + f->off) = NULL;
        }
    }
}

static ob_rc_t decode_fields(const cJSON *obj, const field_t *fields, void *m, const char *where,
                             ob_err_t *err)
{
    char *base = m;
    for (const field_t *f = fields; f->name; f++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        void *p = base + f->off;
        if (!item || cJSON_IsNull(item)) {
            if (f->required) {
                ob_err_set(err, "%s%s is required", where, f->name);
                return OB_EINVAL;
            }
            continue;
        }
        switch (f->kind) {
        case F_INT: {
            double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
            if (!(d == floor(d)) || d < (double)f->min || d > (double)f->max) {
                ob_err_set(err, "%s%s must be an integer from %lld to %lld", where, f->name,
                           (long long)f->min, (long long)f->max);
                return OB_EINVAL;
            }
            *(int64_t *)p = (int64_t)d;
            break;
        }
        case F_OBJ:
        case F_DOC: {
            if (!cJSON_IsObject(item) && !(f->kind == F_DOC && cJSON_IsArray(item))) {
                ob_err_set(err, "%s%s must be an %s", where, f->name,
                           f->kind == F_DOC ? "object or an array" : "object");
                return OB_EINVAL;
            }
            char *text = cJSON_PrintUnformatted(item);
            OB_ASSERT(text != NULL);
            *(char **)p = ob_xstrdup(text);
            cJSON_free(text);
            break;
        }
        case F_STR:
        case F_UUID:
            if (!cJSON_IsString(item) || (f->kind == F_UUID && !ob_uuid_valid(item->valuestring))) {
                ob_err_set(err, "%s%s must be a %s", where, f->name,
                           f->kind == F_UUID ? "UUID string" : "string");
                return OB_EINVAL;
            }
            *(char **)p = ob_xstrdup(item->valuestring);
            break;
        }
    }
    return OB_OK;
}

static cJSON *parse_object(const char *json, size_t len, ob_err_t *err)
{
    const char *end = NULL;
    if (!ob_utf8_valid(json, len)) {
        /* Postgres would refuse its text, and retrying cannot help. */
        ob_err_set(err, "not UTF-8 text");
        return NULL;
    }
    ob_json_fault_t fault = OB_JSON_OK;
    cJSON *root = ob_json_parse(json, len, &end, &fault);
    if (fault == OB_JSON_NUL_ESCAPE || fault == OB_JSON_DUPLICATE) {
        ob_err_set(err, "%s", ob_json_fault_text(fault));
        return NULL;
    }
    if (!root || !cJSON_IsObject(root)) {
        ob_err_set(err, "not a JSON object (at byte %td)", root ? 0 : (end ? end - json : 0));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Checks the envelope's "v" and "kind" members. */
static ob_rc_t check_envelope(const cJSON *root, const char *kind, ob_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (!cJSON_IsNumber(v) || v->valueint != OB_PROTO_VERSION) {
        ob_err_set(err, "v must be %d", OB_PROTO_VERSION);
        return OB_EINVAL;
    }
    if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0) {
        ob_err_set(err, "kind must be \"%s\"", kind);
        return OB_EINVAL;
    }
    return OB_OK;
}

char *ob_call_request_encode(const ob_call_request_t *m)
{
    out_t o = envelope("queue");
    encode_fields(&o, request_fields, m);
    return finish(&o);
}

char *ob_dial_job_encode(const ob_dial_job_t *m)
{
    out_t o = envelope("dial");
    encode_fields(&o, job_fields, m);
    return finish(&o);
}

char *ob_call_event_data_encode(const ob_call_event_t *m)
{
    out_t o = {0};
    out_raw(&o, "{", 1);
    encode_fields(&o, event_data_fields, m);
    return finish(&o);
}

char *ob_call_event_encode(const ob_call_event_t *m)
{
    char time[32];
    out_t o = {0};
    ob_time_format_rfc3339(m->time_ms, time, sizeof(time));
    out_raw(&o, "{", 1);
    static const char *const names[] = {"specversion", "id",   "source",         "type",
                                        "subject",     "time", "datacontenttype"};
    const char *values[] = {"1.0", m->id, m->source, m->type, m->call_id, time, "application/json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        out_key(&o, names[i]);
        out_str(&o, values[i] ? values[i] : "");
    }
    out_key(&o, "data");
    out_raw(&o, "{", 1);
    encode_fields(&o, event_data_fields, m);
    out_raw(&o, "}", 1);
    return finish(&o);
}

ob_rc_t ob_call_request_decode(const char *json, size_t len, ob_call_request_t *out, ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return OB_EINVAL;
    ob_rc_t rc = check_envelope(root, "queue", err);
    if (rc == OB_OK)
        rc = decode_fields(root, request_fields, out, "", err);
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_call_request_clear(out);
    return rc;
}

char *ob_cancel_deployment_encode(const ob_cancel_deployment_t *m)
{
    out_t o = envelope("cancel_deployment");
    encode_fields(&o, cancel_fields, m);
    return finish(&o);
}

ob_rc_t ob_cancel_deployment_decode(const char *json, size_t len, ob_cancel_deployment_t *out,
                                    ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return OB_EINVAL;
    ob_rc_t rc = check_envelope(root, "cancel_deployment", err);
    if (rc == OB_OK)
        rc = decode_fields(root, cancel_fields, out, "", err);
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_cancel_deployment_clear(out);
    return rc;
}

void ob_request_kind(const char *json, size_t len, char buf[32])
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "kind");
    snprintf(buf, 32, "%s", cJSON_IsString(k) ? k->valuestring : "");
    cJSON_Delete(root);
}

ob_rc_t ob_dial_job_decode(const char *json, size_t len, ob_dial_job_t *out, ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return OB_EINVAL;
    ob_rc_t rc = check_envelope(root, "dial", err);
    if (rc == OB_OK)
        rc = decode_fields(root, job_fields, out, "", err);
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_dial_job_clear(out);
    return rc;
}

static ob_rc_t decode_event_envelope(const cJSON *root, ob_call_event_t *out, ob_err_t *err)
{
    static const struct {
        const char *name; /* CloudEvents attribute */
        size_t off;       /* where it goes */
    } attrs[] = {{"id", E(id)}, {"source", E(source)}, {"type", E(type)}};
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "specversion");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(root, "time");
    if (!cJSON_IsString(sv) || strcmp(sv->valuestring, "1.0") != 0) {
        ob_err_set(err, "specversion must be \"1.0\"");
        return OB_EINVAL;
    }
    for (size_t i = 0; i < OB_COUNTOF(attrs); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, attrs[i].name);
        if (!cJSON_IsString(a) || !a->valuestring[0]) {
            ob_err_set(err, "%s is required", attrs[i].name);
            return OB_EINVAL;
        }
        *(char **)((char *)out + attrs[i].off) = ob_xstrdup(a->valuestring);
    }
    if (!cJSON_IsString(time)) {
        ob_err_set(err, "time is required");
        return OB_EINVAL;
    }
    /* Any producer may write to the topic: an offset or another precision
     * is read as written, a year such as 5202552025 is refused (its
     * milliseconds overflowed). */
    if (!ob_time_parse_rfc3339(time->valuestring, &out->time_ms)) {
        ob_err_set(err, "time must be an RFC 3339 time from 1970 to 9999");
        return OB_EINVAL;
    }
    return OB_OK;
}

ob_rc_t ob_call_event_decode(const char *json, size_t len, ob_call_event_t *out, ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return OB_EINVAL;
    ob_rc_t rc = decode_event_envelope(root, out, err);
    if (rc == OB_OK) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        if (!cJSON_IsObject(data)) {
            ob_err_set(err, "data must be an object");
            rc = OB_EINVAL;
        } else {
            rc = decode_fields(data, event_data_fields, out, "data.", err);
        }
    }
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_call_event_clear(out);
    return rc;
}

ob_rc_t ob_call_event_data_decode(const char *json, size_t len, ob_call_event_t *out, ob_err_t *err)
{
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return OB_EINVAL;
    ob_rc_t rc = decode_fields(root, event_data_fields, out, "data.", err);
    cJSON_Delete(root);
    if (rc != OB_OK)
        clear_fields(event_data_fields, out);
    return rc;
}

void ob_call_request_clear(ob_call_request_t *m)
{
    clear_fields(request_fields, m);
}

void ob_cancel_deployment_clear(ob_cancel_deployment_t *m)
{
    clear_fields(cancel_fields, m);
}

void ob_dial_job_clear(ob_dial_job_t *m)
{
    clear_fields(job_fields, m);
}

void ob_call_event_clear(ob_call_event_t *m)
{
    clear_fields(event_data_fields, m);
    free(m->id);
    free(m->source);
    free(m->type);
    m->id = m->source = m->type = NULL;
}
