/*
 * `outboundctl calls upload`: a CSV file through the API's upload route, or
 * NDJSON / a JSON array through calls:batch, streamed from disk with a
 * progress bar, then a summary of the rows queued and each rejected row's
 * reason. `upload show` prints a stored upload report the same way.
 */
#include "ctl.h"
#include "ctl_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { FMT_CSV, FMT_NDJSON, FMT_JSON } upload_fmt_t;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static bool pick_format(const char *given, const char *file, upload_fmt_t *fmt)
{
    const char *f = given ? given : file;
    if (given ? strcasecmp(f, "csv") == 0 : ends_with(f, ".csv"))
        *fmt = FMT_CSV;
    else if (given ? strcasecmp(f, "ndjson") == 0 || strcasecmp(f, "jsonl") == 0
                   : ends_with(f, ".ndjson") || ends_with(f, ".jsonl"))
        *fmt = FMT_NDJSON;
    else if (given ? strcasecmp(f, "json") == 0 : ends_with(f, ".json"))
        *fmt = FMT_JSON;
    else
        return false;
    return true;
}

/* Defaults for every row, as query parameters, checked here first so a typo
 * does not cost an upload. NULL after a usage error (in *rc). */
static char *query(const ctl_t *c, const ctl_args_t *a, int *rc)
{
    static const struct {
        const char *opt;   /* the option */
        const char *param; /* its query parameter */
        long min, max;     /* bounds; min > max for a string */
    } q[] = {
        {"max-attempts", "max_attempts", 1, 10}, {"retry-interval", "retry_interval_s", 60, 172800},
        {"priority", "priority", -1000, 1000},   {"not-before", "not_before", 1, 0},
        {"expires-at", "expires_at", 1, 0},
    };
    char *out = ob_xstrdup("");
    for (size_t i = 0; i < OB_COUNTOF(q); i++) {
        const char *v = ctl_args_get(a, q[i].opt);
        ob_err_t err = {{0}};
        long n;
        if (!v)
            continue;
        if (q[i].min <= q[i].max &&
            ctl_args_long(a, q[i].opt, q[i].min, q[i].max, &n, &err) != OB_OK) {
            *rc = ctl_usage_error(c, "%s", err.msg);
            free(out);
            return NULL;
        }
        char *ev = ctl_escape(v);
        char *more = ob_xasprintf("%s%c%s=%s", out, out[0] ? '&' : '?', q[i].param, ev);
        free(ev);
        free(out);
        out = more;
    }
    return out;
}

static long member_long(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

/* The summary of an upload report (UploadAnswer or Upload); returns how
 * many rows were rejected. */
static long print_upload(const cJSON *j)
{
    char id[64], status[32], detail[512];
    long rejected = member_long(j, "rejected");
    printf("upload %s %s: %ld rows, %ld queued, %ld rejected\n",
           ctl_cell(j, "upload_id", id, sizeof(id)), ctl_cell(j, "status", status, sizeof(status)),
           member_long(j, "rows"), member_long(j, "queued"), rejected);
    if (ctl_cell(j, "detail", detail, sizeof(detail))[0])
        printf("stopped: %s\n", detail);
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
    if (cJSON_GetArraySize(errors) > 0) {
        static const char *const head[] = {"ROW", "LINE", "FIELD", "CODE", "REASON"};
        static const char *const keys[] = {"row", "line", "field", "code", "message"};
        ctl_table_t t;
        ctl_table_init(&t, 5, head);
        const cJSON *e;
        cJSON_ArrayForEach(e, errors)
        {
            char cells[5][512];
            const char *row[5];
            for (int k = 0; k < 5; k++)
                row[k] = ctl_cell(e, keys[k], cells[k], sizeof(cells[k]));
            ctl_table_add(&t, row);
        }
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
        if (cJSON_GetArraySize(errors) < rejected)
            printf("(the first %d of %ld rejected rows; every one is in GET "
                   "/api/v1/uploads/%s/report.csv)\n",
                   cJSON_GetArraySize(errors), rejected, id);
    }
    return rejected;
}

/* The summary of a batch answer; returns how many elements were rejected. */
static long print_batch(const cJSON *j)
{
    char detail[512];
    long rejected = member_long(j, "rejected");
    printf("batch: %ld queued, %ld rejected\n", member_long(j, "accepted"), rejected);
    if (ctl_cell(j, "detail", detail, sizeof(detail))[0])
        printf("stopped: %s\n", detail);
    static const char *const head[] = {"ROW", "FIELD", "CODE", "REASON"};
    ctl_table_t t;
    ctl_table_init(&t, 4, head);
    const cJSON *res, *e;
    cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(j, "results"))
    {
        char row_no[32];
        ctl_cell(res, "row", row_no, sizeof(row_no));
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "errors"))
        {
            char cells[3][512];
            const char *row[] = {row_no, ctl_cell(e, "field", cells[0], 512),
                                 ctl_cell(e, "code", cells[1], 512),
                                 ctl_cell(e, "message", cells[2], 512)};
            ctl_table_add(&t, row);
        }
    }
    if (t.nrows > 1)
        ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    return rejected;
}

int ctl_cmd_calls_upload(const ctl_t *c, const ctl_args_t *a)
{
    const char *file = a->pos[1];
    upload_fmt_t fmt;
    int rc = CTL_EXIT_OK;
    if (!pick_format(ctl_args_get(a, "format"), file, &fmt))
        return ctl_usage_error(c,
                               ctl_args_get(a, "format")
                                   ? "--format must be csv, ndjson or json, not \"%s\""
                                   : "cannot tell the format of %s from its name: pass --format "
                                     "csv, ndjson or json",
                               ctl_args_get(a, "format") ? ctl_args_get(a, "format") : file);
    char *q = query(c, a, &rc);
    if (!q)
        return rc;
    bool from_stdin = strcmp(file, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(file, "rb");
    char *path = NULL, *idem = NULL;
    cJSON *j = NULL;
    ctl_resp_t r = {0};
    struct stat st;
    long long size = -1; /* unknown: sent chunked */
    if (!f) {
        fprintf(stderr, "outboundctl %s: cannot open %s: %s\n", c->cmd, file, strerror(errno));
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
        size = (long long)st.st_size;
    char *dep = ctl_escape(a->pos[0]);
    path = ob_xasprintf("/api/v1/deployments/%s/%s%s", dep,
                        fmt == FMT_CSV ? "uploads" : "calls:batch", q);
    free(dep);
    const char *headers[2] = {NULL, NULL};
    if (ctl_args_get(a, "idempotency-key")) {
        idem = ob_xasprintf("Idempotency-Key: %s", ctl_args_get(a, "idempotency-key"));
        headers[0] = idem;
    }
    bool progress = isatty(STDERR_FILENO) && !ctl_args_has(a, "no-progress");
    const char *ct = fmt == FMT_CSV      ? "text/csv"
                     : fmt == FMT_NDJSON ? "application/x-ndjson"
                                         : "application/json";
    ctl_http_upload(c, path, ct, f, size, progress, headers, &r);
    if (r.status == 0 && ctl_stop) {
        fprintf(stderr,
                "outboundctl %s: interrupted; rows sent before it may have been queued "
                "(see outboundctl calls list %s)\n",
                c->cmd, a->pos[0]);
        rc = 130;
        goto out;
    }
    if (r.status == 0) {
        rc = ctl_fail(c, &r);
        goto out;
    }
    j = cJSON_ParseWithLength(r.body, r.len);
    bool report = j && (cJSON_HasObjectItem(j, "upload_id") || cJSON_HasObjectItem(j, "results"));
    if (!report) {
        rc = r.status >= 200 && r.status < 300 ? CTL_EXIT_UNAVAILABLE : ctl_fail(c, &r);
        if (rc == CTL_EXIT_UNAVAILABLE && r.status < 300)
            fprintf(stderr, "outboundctl %s: the API answered %ld without a report: %.200s\n",
                    c->cmd, r.status, r.body);
        goto out;
    }
    long rejected;
    if (c->json) {
        ctl_print_json(j);
        rejected = member_long(j, "rejected");
    } else {
        rejected = fmt == FMT_CSV ? print_upload(j) : print_batch(j);
    }
    if (r.status >= 200 && r.status < 300) {
        rc = rejected > 0 ? CTL_EXIT_PARTIAL : CTL_EXIT_OK;
    } else {
        /* The rows before the failure are queued and listed above. */
        rc = r.status == 404                      ? CTL_EXIT_NOT_FOUND
             : r.status == 429 || r.status >= 500 ? CTL_EXIT_UNAVAILABLE
                                                  : CTL_EXIT_REFUSED;
        fprintf(stderr, "outboundctl %s: the %s stopped early (HTTP %ld)%s\n", c->cmd,
                fmt == FMT_CSV ? "upload" : "batch", r.status,
                rc == CTL_EXIT_UNAVAILABLE ? "; retry with the same --idempotency-key" : "");
    }
out:
    if (f && !from_stdin)
        fclose(f);
    cJSON_Delete(j);
    ctl_resp_free(&r);
    free(idem);
    free(path);
    free(q);
    return rc;
}

int ctl_cmd_upload_show(const ctl_t *c, const ctl_args_t *a)
{
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/uploads/%s", id);
    cJSON *j = NULL;
    int rc = ctl_request(c, "GET", path, NULL, 200, &j);
    if (rc == CTL_EXIT_OK && c->json)
        ctl_print_json(j);
    else if (rc == CTL_EXIT_OK)
        print_upload(j);
    cJSON_Delete(j);
    free(path);
    free(id);
    return rc;
}
