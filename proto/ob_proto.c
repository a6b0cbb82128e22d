/*
 * Table-driven JSON codecs for the topic messages: each message type is a
 * list of (name, kind, offset, required) so encode and decode cannot drift
 * apart, and adding a field is one line.
 */
#include "ob_proto.h"
#include "ob_uuid.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef enum {
    F_STR,  /* char *, JSON string */
    F_UUID, /* char *, JSON string holding a canonical UUID */
    F_OBJ,  /* char * holding JSON object text, JSON object */
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
    {"result_url", F_STR, R(result_url), 0, 0, 0},
    {"request_id", F_STR, R(request_id), 0, 0, 0},
    {"upload_id", F_UUID, R(upload_id), 0, 0, 0},
    {"max_attempts", F_INT, R(max_attempts), 1, 1, 10},
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
    {"attempt", F_INT, J(attempt), 1, 1, 10},
    {"max_attempts", F_INT, J(max_attempts), 1, 1, 10},
    {"retry_interval_s", F_INT, J(retry_interval_s), 1, 0, 172800},
    {"lease_until", F_INT, J(lease_until_ms), 1, 0, I64_MAX},
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
    {"attempt", F_INT, E(attempt), 1, 0, 10},
    {"max_attempts", F_INT, E(max_attempts), 1, 1, 10},
    END,
};

static void encode_fields(cJSON *obj, const field_t *fields, const void *m)
{
    const char *base = m;
    for (const field_t *f = fields; f->name; f++) {
        const void *p = base + f->off;
        if (f->kind == F_INT) {
            cJSON_AddNumberToObject(obj, f->name, (double)*(const int64_t *)p);
            continue;
        }
        const char *s = *(char *const *)p;
        if (!s)
            continue;
        cJSON *item = f->kind == F_OBJ ? cJSON_Parse(s) : NULL;
        if (f->kind == F_OBJ && cJSON_IsObject(item))
            cJSON_AddItemToObject(obj, f->name, item);
        else if (f->kind == F_OBJ)
            cJSON_Delete(item); /* not an object: the producer validated, so drop it */
        else
            cJSON_AddStringToObject(obj, f->name, s);
    }
}

static char *print_and_delete(cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    OB_ASSERT(text != NULL);
    char *out = ob_xstrdup(text);
    cJSON_free(text);
    cJSON_Delete(obj);
    return out;
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
        case F_OBJ: {
            if (!cJSON_IsObject(item)) {
                ob_err_set(err, "%s%s must be an object", where, f->name);
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
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
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

static cJSON *envelope(const char *kind)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "v", OB_PROTO_VERSION);
    cJSON_AddStringToObject(obj, "kind", kind);
    return obj;
}

char *ob_call_request_encode(const ob_call_request_t *m)
{
    cJSON *obj = envelope("queue");
    encode_fields(obj, request_fields, m);
    if (!m->expires_at_ms)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "expires_at");
    return print_and_delete(obj);
}

char *ob_dial_job_encode(const ob_dial_job_t *m)
{
    cJSON *obj = envelope("dial");
    encode_fields(obj, job_fields, m);
    return print_and_delete(obj);
}

char *ob_call_event_data_encode(const ob_call_event_t *m)
{
    cJSON *data = cJSON_CreateObject();
    encode_fields(data, event_data_fields, m);
    return print_and_delete(data);
}

char *ob_call_event_encode(const ob_call_event_t *m)
{
    char time[32];
    cJSON *obj = cJSON_CreateObject();
    cJSON *data = cJSON_CreateObject();
    ob_time_format_rfc3339(m->time_ms, time, sizeof(time));
    cJSON_AddStringToObject(obj, "specversion", "1.0");
    cJSON_AddStringToObject(obj, "id", m->id);
    cJSON_AddStringToObject(obj, "source", m->source);
    cJSON_AddStringToObject(obj, "type", m->type);
    cJSON_AddStringToObject(obj, "subject", m->call_id);
    cJSON_AddStringToObject(obj, "time", time);
    cJSON_AddStringToObject(obj, "datacontenttype", "application/json");
    encode_fields(data, event_data_fields, m);
    cJSON_AddItemToObject(obj, "data", data);
    return print_and_delete(obj);
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
    cJSON *obj = envelope("cancel_deployment");
    encode_fields(obj, cancel_fields, m);
    return print_and_delete(obj);
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
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(time->valuestring, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6) {
        ob_err_set(err, "time must be RFC 3339");
        return OB_EINVAL;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    out->time_ms = (int64_t)timegm(&tm) * 1000 + ms;
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
