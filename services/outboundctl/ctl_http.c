/*
 * outboundctl's HTTP side: one libcurl easy handle per request (a CLI makes
 * few), problem+json answers turned into messages and exit codes, and
 * cursor paging. Uploads stream the file from disk, so a file of any size
 * costs a few kilobytes of memory.
 */
#include "ctl.h"
#include "ctl_table.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

volatile sig_atomic_t ctl_stop;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ctl_resp_t *r = ud;
    size_t n = size * nmemb;
    r->body = ob_xrealloc(r->body, r->len + n + 1);
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ctl_resp_t *r = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
        const char *v = ptr + sizeof(name) - 1;
        while (*v == ' ')
            v++;
        size_t vl = n - (size_t)(v - ptr);
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)vl, v);
    }
    return n;
}

/* The handle and headers every request shares; caller frees both. */
static CURL *prepare(const ctl_t *c, const char *method, const char *path, const char *content_type,
                     const char *const *headers, ctl_resp_t *r, struct curl_slist **hl)
{
    char *url = ob_xasprintf("%s%s", c->url, path);
    char *auth = ob_xasprintf("Authorization: Bearer %s", c->key ? c->key : "");
    memset(r, 0, sizeof(*r));
    r->body = ob_xcalloc(1, 1);
    CURL *h = curl_easy_init();
    OB_ASSERT(h);
    *hl = curl_slist_append(NULL, auth);
    *hl = curl_slist_append(*hl, "Accept: application/json, application/problem+json");
    if (content_type) {
        char *ct = ob_xasprintf("Content-Type: %s", content_type);
        *hl = curl_slist_append(*hl, ct);
        free(ct);
    }
    for (const char *const *hh = headers; hh && *hh; hh++)
        *hl = curl_slist_append(*hl, *hh);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "outboundctl/1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    /* The key must not leak to another host through a redirect. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    free(url);
    free(auth);
    return h;
}

static void perform(CURL *h, ctl_resp_t *r)
{
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        r->status = 0;
        if (!r->error[0])
            snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
        return;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
}

void ctl_http(const ctl_t *c, const char *method, const char *path, const char *content_type,
              const char *body, const char *const *headers, ctl_resp_t *r)
{
    struct curl_slist *hl = NULL;
    CURL *h = prepare(c, method, path, content_type, headers, r, &hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    if (c->timeout_s > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    perform(h, r);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
}

/* Upload progress: redrawn at most ten times a second. */
typedef struct {
    int64_t last_ms;    /* when the bar was last drawn */
    bool drawn;         /* something is on the line */
    long long size;     /* the body's size if known (libcurl reports 0 at first) */
    long long last_now; /* bytes sent when last drawn */
    bool draw;          /* draw the bar (stderr is a terminal) */
} progress_t;

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    progress_t *p = ud;
    (void)dltotal;
    (void)dlnow;
    int64_t now = ob_mono_ms();
    if (ctl_stop)
        return 1; /* aborts the transfer */
    if (!p->draw)
        return 0;
    long long total = ultotal > 0 ? (long long)ultotal : p->size;
    if ((now - p->last_ms < 100 && ulnow != ultotal) || (p->drawn && ulnow == p->last_now))
        return 0;
    char line[256];
    ctl_progress_line((long long)ulnow, total, 30, line, sizeof(line));
    fprintf(stderr, "\r%s%s", line, total > 0 && ulnow >= total ? "  waiting for the answer" : "");
    p->last_ms = now;
    p->last_now = (long long)ulnow;
    p->drawn = true;
    return 0;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    FILE *f = ud;
    size_t n = fread(buf, 1, size * nitems, f);
    if (n == 0 && ferror(f))
        return CURL_READFUNC_ABORT;
    return n;
}

void ctl_http_upload(const ctl_t *c, const char *path, const char *content_type, FILE *f,
                     long long size, bool progress, const char *const *headers, ctl_resp_t *r)
{
    struct curl_slist *hl = NULL;
    progress_t p = {0, false, size, 0, progress};
    CURL *h = prepare(c, "POST", path, content_type, headers, r, &hl);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, f);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    /* Also without a bar: the callback is where Ctrl-C stops the transfer. */
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &p);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    perform(h, r);
    if (p.drawn)
        fputs("\r\033[K", stderr); /* clears the bar before the summary */
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
}

void ctl_resp_free(ctl_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *ctl_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    OB_ASSERT(e);
    char *out = ob_xstrdup(e);
    curl_free(e);
    return out;
}

cJSON *ctl_parse(const ctl_t *c, const ctl_resp_t *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    if (!j)
        fprintf(stderr,
                "outboundctl %s: the API answered %ld with something that is not JSON: %.200s\n",
                c->cmd, r->status, r->body);
    return j;
}

int ctl_usage_error(const ctl_t *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "outboundctl%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see outboundctl %s --help)\n", c->cmd ? c->cmd : "");
    return CTL_EXIT_USAGE;
}

bool ctl_body_long(const ctl_t *c, const ctl_args_t *a, cJSON *body, const char *opt,
                   const char *member, long min, long max, int *rc)
{
    ob_err_t err = {{0}};
    long v;
    ob_rc_t r = ctl_args_long(a, opt, min, max, &v, &err);
    if (r == OB_EINVAL) {
        *rc = ctl_usage_error(c, "%s", err.msg);
        return false;
    }
    if (r == OB_OK)
        cJSON_AddNumberToObject(body, member, (double)v);
    return true;
}

void ctl_print_json(const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    OB_ASSERT(s);
    puts(s);
    cJSON_free(s);
}

static const char *member_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int ctl_fail(const ctl_t *c, const ctl_resp_t *r)
{
    const char *cmd = c->cmd ? c->cmd : "";
    if (r->status == 0) {
        fprintf(stderr,
                "outboundctl %s: cannot reach the API at %s: %s (is the URL right and the ingest "
                "running?)\n",
                cmd, c->url, r->error);
        return CTL_EXIT_UNAVAILABLE;
    }
    int code = r->status == 404                       ? CTL_EXIT_NOT_FOUND
               : r->status == 429 || r->status >= 500 ? CTL_EXIT_UNAVAILABLE
               : r->status >= 400                     ? CTL_EXIT_REFUSED
                                                      : CTL_EXIT_UNAVAILABLE;
    cJSON *p = cJSON_ParseWithLength(r->body, r->len);
    const char *pcode = member_str(p, "code");
    const char *detail = member_str(p, "detail");
    if (c->json && p)
        ctl_print_json(p);
    const char *what = code == CTL_EXIT_NOT_FOUND             ? "not found"
                       : code == CTL_EXIT_UNAVAILABLE         ? "the API is unavailable"
                       : r->status == 401 || r->status == 403 ? "the API key was refused"
                                                              : "the API refused the request";
    if (r->status < 400)
        what = "unexpected answer";
    fprintf(stderr, "outboundctl %s: %s (%ld%s%s): %s\n", cmd, what, r->status, pcode ? " " : "",
            pcode ? pcode : "", detail ? detail : (p ? "no detail" : r->body));
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(p, "errors");
    const cJSON *e;
    cJSON_ArrayForEach(e, errors)
    {
        const char *field = member_str(e, "field");
        fprintf(stderr, "  %s: %s: %s\n", field && *field ? field : "(body)",
                member_str(e, "code") ? member_str(e, "code") : "?",
                member_str(e, "message") ? member_str(e, "message") : "");
    }
    if (r->status == 401 || r->status == 403)
        fprintf(stderr,
                "  check the key given by --key, OUTBOUND_API_KEY or outboundctl configure\n");
    if (r->retry_after[0])
        fprintf(stderr, "  retry after %s s\n", r->retry_after);
    if (member_str(p, "request_id"))
        fprintf(stderr, "  request id: %s\n", member_str(p, "request_id"));
    cJSON_Delete(p);
    return code;
}

int ctl_get_pages(const ctl_t *c, const char *path, const char *items, long max, long page_size,
                  cJSON *out)
{
    char *cursor = NULL;
    int rc = CTL_EXIT_OK;
    long got = 0;
    for (;;) {
        long want = page_size;
        if (max > 0 && max - got < want)
            want = max - got;
        char *page = ob_xasprintf("%s%climit=%ld%s%s", path, strchr(path, '?') ? '&' : '?', want,
                                  cursor ? "&cursor=" : "", cursor ? cursor : "");
        ctl_resp_t r;
        ctl_http(c, "GET", page, NULL, NULL, NULL, &r);
        free(page);
        if (r.status != 200) {
            rc = ctl_fail(c, &r);
            ctl_resp_free(&r);
            break;
        }
        cJSON *j = ctl_parse(c, &r);
        ctl_resp_free(&r);
        cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(j, items);
        if (!j || !cJSON_IsArray(list)) {
            cJSON_Delete(list);
            cJSON_Delete(j);
            rc = CTL_EXIT_UNAVAILABLE;
            break;
        }
        cJSON *it;
        while ((it = cJSON_DetachItemFromArray(list, 0)) != NULL) {
            cJSON_AddItemToArray(out, it);
            got++;
        }
        cJSON_Delete(list);
        const char *next = member_str(j, "next_cursor");
        free(cursor);
        cursor = next ? ctl_escape(next) : NULL;
        cJSON_Delete(j);
        if (!cursor || (max > 0 && got >= max) || ctl_stop)
            break;
    }
    free(cursor);
    return rc;
}

int ctl_request(const ctl_t *c, const char *method, const char *path, const char *body, long want,
                cJSON **out)
{
    ctl_resp_t r;
    int rc = CTL_EXIT_OK;
    *out = NULL;
    ctl_http(c, method, path, body ? "application/json" : NULL, body, NULL, &r);
    if (r.status != want)
        rc = ctl_fail(c, &r);
    else if (!(*out = ctl_parse(c, &r)))
        rc = CTL_EXIT_UNAVAILABLE;
    ctl_resp_free(&r);
    return rc;
}
