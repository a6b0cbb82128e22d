/*
 * outboundctl commands about calls: queue one, show one, cancel one, list a
 * deployment's calls page by page, and watch them change until Ctrl-C.
 */
#include "ctl.h"
#include "ctl_app.h"
#include "ctl_table.h"
#include "ob_vocab.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The request body of `call queue`, or NULL after a usage error. */
static cJSON *call_body(const ctl_t *c, const ctl_args_t *a, int *rc)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "phone_number", a->pos[1]);
    static const char *const strings[][2] = {
        {"reference", "message_reference"},
        {"not-before", "not_before"},
        {"expires-at", "expires_at"},
        {"result-url", "result_url"},
    };
    for (size_t i = 0; i < OB_COUNTOF(strings); i++)
        if (ctl_args_get(a, strings[i][0]))
            cJSON_AddStringToObject(body, strings[i][1], ctl_args_get(a, strings[i][0]));
    if (!ctl_body_long(c, a, body, "max-attempts", "max_attempts", 1, 10, rc) ||
        !ctl_body_long(c, a, body, "retry-interval", "retry_interval_s", 60, 172800, rc) ||
        !ctl_body_long(c, a, body, "priority", "priority", -1000, 1000, rc))
        goto bad;
    const char *params_json = ctl_args_get(a, "parameters");
    cJSON *params = params_json ? cJSON_Parse(params_json) : cJSON_CreateObject();
    if (!cJSON_IsObject(params)) {
        cJSON_Delete(params);
        *rc = ctl_usage_error(c, "--parameters must be a JSON object, like '{\"name\": \"Ann\"}'");
        goto bad;
    }
    cJSON_AddItemToObject(body, "call_parameters", params);
    const char *kv[CTL_MAX_VALS];
    int n = ctl_args_all(a, "param", kv, CTL_MAX_VALS);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i]) {
            *rc = ctl_usage_error(c, "--param takes NAME=VALUE, not \"%s\"", kv[i]);
            goto bad;
        }
        char *name = ob_xstrndup(kv[i], (size_t)(eq - kv[i]));
        cJSON_DeleteItemFromObjectCaseSensitive(params, name);
        cJSON_AddStringToObject(params, name, eq + 1);
        free(name);
    }
    if (cJSON_GetArraySize(params) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(body, "call_parameters");
    /* What the callee hears: --say TEXT, or a document from --app FILE. */
    ob_err_t err = {{0}};
    cJSON *app = NULL;
    ob_rc_t arc = ctl_app_from_args(a, stdin, &app, &err);
    if (arc == OB_EINVAL) {
        *rc = ctl_usage_error(c, "%s", err.msg);
        goto bad;
    }
    if (arc == OB_OK)
        cJSON_AddItemToObject(body, "app", app);
    return body;
bad:
    cJSON_Delete(body);
    return NULL;
}

int ctl_cmd_call_queue(const ctl_t *c, const ctl_args_t *a)
{
    int rc = CTL_EXIT_OK;
    cJSON *body = call_body(c, a, &rc);
    if (!body)
        return rc;
    char *text = cJSON_PrintUnformatted(body);
    char *dep = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/deployments/%s/calls", dep);
    char *idem = NULL;
    const char *headers[2] = {NULL, NULL};
    if (ctl_args_get(a, "idempotency-key")) {
        idem = ob_xasprintf("Idempotency-Key: %s", ctl_args_get(a, "idempotency-key"));
        headers[0] = idem;
    }
    ctl_resp_t r;
    ctl_http(c, "POST", path, "application/json", text, headers, &r);
    cJSON *j = NULL;
    if (r.status != 202) {
        rc = ctl_fail(c, &r);
    } else if (!(j = ctl_parse(c, &r))) {
        rc = CTL_EXIT_UNAVAILABLE;
    } else if (c->json) {
        ctl_print_json(j);
    } else {
        char id[64], phone[64];
        printf("%s  queued  %s\n", ctl_cell(j, "call_id", id, sizeof(id)),
               ctl_cell(j, "phone_number", phone, sizeof(phone)));
    }
    cJSON_Delete(j);
    ctl_resp_free(&r);
    free(idem);
    free(path);
    free(dep);
    cJSON_free(text);
    cJSON_Delete(body);
    return rc;
}

/* "completed" or "completed (failed, busy, max_attempts)". */
static void state_text(const cJSON *call, char *buf, size_t len)
{
    char st[64], status[64], result[64], reason[128];
    ctl_cell(call, "state", st, sizeof(st));
    ctl_cell(call, "status", status, sizeof(status));
    ctl_cell(call, "result", result, sizeof(result));
    ctl_cell(call, "reason", reason, sizeof(reason));
    if (!status[0])
        snprintf(buf, len, "%s", st);
    else
        snprintf(buf, len, "%s (%s, %s, %s)", st, status, result[0] ? result : "-",
                 reason[0] ? reason : "-");
}

int ctl_cmd_call_show(const ctl_t *c, const ctl_args_t *a)
{
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/calls/%s", id);
    cJSON *call = NULL;
    int rc = ctl_request(c, "GET", path, NULL, 200, &call);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(call);
    } else if (rc == CTL_EXIT_OK) {
        static const char *const fields[][2] = {
            {"call", "call_id"},
            {"deployment", "deployment_id"},
            {"phone", "phone_number"},
            {"reference", "message_reference"},
            {"parameters", "call_parameters"},
            {"attempts made", "attempts_made"},
            {"max attempts", "max_attempts"},
            {"accepted", "accepted_at"},
            {"next attempt", "next_attempt_at"},
            {"completed", "completed_at"},
            {"duration (s)", "duration_s"},
            {"digits", "digits"},
        };
        char b[1024];
        state_text(call, b, sizeof(b));
        printf("%-14s %s\n", "state", b);
        for (size_t i = 0; i < OB_COUNTOF(fields); i++) {
            ctl_cell(call, fields[i][1], b, sizeof(b));
            printf("%-14s %s\n", fields[i][0], b[0] ? b : "-");
        }
        const cJSON *app = cJSON_GetObjectItemCaseSensitive(call, "app");
        if (app && !cJSON_IsNull(app))
            printf("%-14s %s (--json shows it)\n", "app", ctl_app_describe(app, b, sizeof(b)));
        const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(call, "attempts");
        if (cJSON_GetArraySize(attempts) > 0) {
            static const char *const head[] = {"ATTEMPT",    "STATE",   "RESULT",  "REASON",
                                               "DIALING_AT", "RING_MS", "TALK_MS", "DECISION_MS"};
            static const char *const keys[] = {"attempt",    "state",   "result",  "reason",
                                               "dialing_at", "ring_ms", "talk_ms", "decision_ms"};
            putchar('\n');
            ctl_print_rows(attempts, OB_COUNTOF(head), head, keys, stdout);
            ctl_app_print_attempts(call, stdout);
        }
    }
    cJSON_Delete(call);
    free(path);
    free(id);
    return rc;
}

int ctl_cmd_call_cancel(const ctl_t *c, const ctl_args_t *a)
{
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/calls/%s:cancel", id);
    cJSON *call = NULL;
    int rc = ctl_request(c, "POST", path, NULL, 200, &call);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(call);
    } else if (rc == CTL_EXIT_OK) {
        char st[256];
        state_text(call, st, sizeof(st));
        printf("%s  %s\n", a->pos[0], st);
    }
    cJSON_Delete(call);
    free(path);
    free(id);
    return rc;
}

static const char *const list_head[] = {"CALL",  "STATE",     "STATUS",   "RESULT",  "REASON",
                                        "PHONE", "REFERENCE", "ATTEMPTS", "ACCEPTED"};

static void list_row(ctl_table_t *t, const cJSON *call)
{
    static const char *const keys[] = {"call_id", "state",        "status",           "result",
                                       "reason",  "phone_number", "message_reference"};
    char cells[9][256];
    const char *row[9];
    for (int k = 0; k < 7; k++)
        row[k] = ctl_cell(call, keys[k], cells[k], sizeof(cells[k]));
    char made[32], max[32];
    snprintf(cells[7], sizeof(cells[7]), "%s/%s", ctl_cell(call, "attempts_made", made, 32),
             ctl_cell(call, "max_attempts", max, 32));
    row[7] = cells[7];
    row[8] = ctl_cell(call, "accepted_at", cells[8], sizeof(cells[8]));
    ctl_table_add(t, row);
}

/* The list query of a deployment's calls from --state, --status, ... */
static char *list_path(const ctl_args_t *a, const char *dep)
{
    static const char *const filters[] = {"state", "status", "result", "reference", "upload"};
    static const char *const params[] = {"state", "status", "result", "message_reference",
                                         "upload_id"};
    char *e = ctl_escape(dep);
    char *path = ob_xasprintf("/api/v1/deployments/%s/calls", e);
    free(e);
    char sep = '?';
    for (size_t i = 0; i < OB_COUNTOF(filters); i++) {
        const char *v = ctl_args_get(a, filters[i]);
        if (!v)
            continue;
        char *ev = ctl_escape(v);
        char *more = ob_xasprintf("%s%c%s=%s", path, sep, params[i], ev);
        free(ev);
        free(path);
        path = more;
        sep = '&';
    }
    return path;
}

int ctl_cmd_calls_list(const ctl_t *c, const ctl_args_t *a)
{
    ob_err_t err = {{0}};
    long limit = 100, page = 100;
    if (ctl_args_long(a, "limit", 0, 100000000, &limit, &err) == OB_EINVAL ||
        ctl_args_long(a, "page-size", 1, 1000, &page, &err) == OB_EINVAL)
        return ctl_usage_error(c, "%s", err.msg);
    char *path = list_path(a, a->pos[0]);
    cJSON *all = cJSON_CreateArray();
    int rc = ctl_get_pages(c, path, "calls", limit, page, all);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(all);
    } else if (rc == CTL_EXIT_OK) {
        ctl_table_t t;
        ctl_table_init(&t, OB_COUNTOF(list_head), list_head);
        const cJSON *call;
        cJSON_ArrayForEach(call, all) list_row(&t, call);
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
    }
    cJSON_Delete(all);
    free(path);
    return rc;
}

/* --- calls watch ------------------------------------------------------- */

/* What watch last printed of one call, in an open-addressing table. */
typedef struct {
    char id[40];    /* call_id, "" for a free slot */
    char what[256]; /* the state text last printed */
    bool final;     /* completed: no need to look again */
    unsigned seen;  /* poll round in which a list last showed it */
} seen_t;

typedef struct {
    seen_t *slots; /* cap entries */
    size_t cap;    /* a power of two */
    size_t used;   /* slots taken */
} seen_map_t;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static seen_t *seen_get(seen_map_t *m, const char *id)
{
    if (m->used * 2 >= m->cap) {
        seen_map_t bigger = {ob_xcalloc(m->cap ? m->cap * 2 : 1024, sizeof(seen_t)),
                             m->cap ? m->cap * 2 : 1024, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].id[0])
                *seen_get(&bigger, m->slots[i].id) = m->slots[i];
        free(m->slots);
        *m = bigger;
    }
    size_t i = hash(id) & (m->cap - 1);
    while (m->slots[i].id[0] && strcmp(m->slots[i].id, id) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].id[0]) {
        snprintf(m->slots[i].id, sizeof(m->slots[i].id), "%s", id);
        m->used++;
    }
    return &m->slots[i];
}

/* Prints call if it changed since watch last printed it. */
static void note(const ctl_t *c, seen_map_t *m, const cJSON *call, unsigned round)
{
    char id[64], what[256], phone[64], ref[128];
    ctl_cell(call, "call_id", id, sizeof(id));
    if (!id[0])
        return;
    state_text(call, what, sizeof(what));
    seen_t *s = seen_get(m, id);
    s->seen = round;
    if (strcmp(s->what, what) == 0)
        return;
    snprintf(s->what, sizeof(s->what), "%s", what);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(call, "state");
    ob_state_t state = OB_STATE_QUEUED;
    s->final = cJSON_IsString(st) && ob_state_parse(st->valuestring, &state) &&
               state == OB_STATE_COMPLETED;
    if (c->json) {
        ctl_print_json(call);
    } else {
        char now[16];
        time_t t = time(NULL);
        strftime(now, sizeof(now), "%H:%M:%S", localtime(&t));
        ctl_cell(call, "message_reference", ref, sizeof(ref));
        printf("%s  %s  %-13s  %s%s%s\n", now, id,
               ctl_cell(call, "phone_number", phone, sizeof(phone)), what, ref[0] ? "  ref " : "",
               ref);
    }
    fflush(stdout);
}

static void sleep_ms(long ms)
{
    for (long left = ms; left > 0 && !ctl_stop; left -= 100) {
        struct timespec ts = {0, (left < 100 ? left : 100) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int ctl_cmd_calls_watch(const ctl_t *c, const ctl_args_t *a)
{
    ob_err_t err = {{0}};
    long interval = 2;
    if (ctl_args_long(a, "interval", 1, 3600, &interval, &err) == OB_EINVAL)
        return ctl_usage_error(c, "%s", err.msg);
    /* Pending calls, and every call accepted since the watch began (a call
     * can be accepted and complete between two polls). A call that was
     * pending and is in neither list any more completed: it is fetched. */
    char since[32];
    snprintf(since, sizeof(since), "%lld", (long long)(time(NULL) - 1));
    char *e = ctl_escape(a->pos[0]);
    char *pending = ob_xasprintf("/api/v1/deployments/%s/calls?state=pending", e);
    char *recent = ob_xasprintf("/api/v1/deployments/%s/calls?since=%s", e, since);
    free(e);
    seen_map_t m = {0};
    int rc = CTL_EXIT_OK;
    if (!c->json)
        fprintf(stderr, "watching deployment %s; Ctrl-C to stop\n", a->pos[0]);
    for (unsigned round = 1; !ctl_stop; round++) {
        cJSON *calls = cJSON_CreateArray();
        rc = ctl_get_pages(c, pending, "calls", 10000, 1000, calls);
        if (rc == CTL_EXIT_OK)
            rc = ctl_get_pages(c, recent, "calls", 10000, 1000, calls);
        if (rc != CTL_EXIT_OK) {
            cJSON_Delete(calls);
            break;
        }
        /* Oldest first, so the lines read in the order things happened. */
        for (int i = cJSON_GetArraySize(calls) - 1; i >= 0; i--)
            note(c, &m, cJSON_GetArrayItem(calls, i), round);
        cJSON_Delete(calls);
        int fetched = 0;
        for (size_t i = 0; i < m.cap && fetched < 200 && !ctl_stop; i++) {
            seen_t *s = &m.slots[i];
            if (!s->id[0] || s->final || s->seen == round)
                continue;
            char *path = ob_xasprintf("/api/v1/calls/%s", s->id);
            ctl_resp_t r;
            ctl_http(c, "GET", path, NULL, NULL, NULL, &r);
            cJSON *call = r.status == 200 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
            if (call)
                note(c, &m, call, round);
            cJSON_Delete(call);
            ctl_resp_free(&r);
            free(path);
            fetched++;
        }
        sleep_ms(interval * 1000);
    }
    free(m.slots);
    free(pending);
    free(recent);
    return rc;
}
