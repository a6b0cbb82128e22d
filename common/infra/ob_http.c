/*
 * libmicrohttpd glue. Bodies are collected into the request pool up to the
 * configured limit (beyond it they are discarded and the handler is skipped
 * with 413); the handler runs once the whole body has arrived.
 */
#include "ob_http.h"
#include "ob_log.h"
#include "ob_metrics.h"
#include "ob_uuid.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Routes are a fixed table and codes a few dozen, so these caps are never
 * reached by a correct service; they bound the damage if one is not. */
#define ROUTE_CODE_CAP 256
#define ROUTE_CAP      96

/* 1 ms to 10 s: from a cached lookup to a slow database or Kafka wait. */
static const double duration_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};

struct ob_http_server {
    struct MHD_Daemon *daemon;     /* the libmicrohttpd daemon */
    ob_http_opts_t opts;           /* copy of the options */
    ob_metric_family_t *requests;  /* outbound_http_requests_total{route,code} */
    ob_metric_family_t *durations; /* outbound_http_request_duration_seconds{route} */
};

typedef struct {
    ob_http_req_t req;     /* what handlers see */
    size_t body_cap;       /* capacity of req.body */
    struct timespec start; /* when the headers arrived */
} conn_state_t;

const char *ob_http_header(ob_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ob_http_query(ob_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void ob_http_add_header(ob_http_req_t *req, const char *name, const char *value)
{
    OB_ASSERT(req->nhdr < OB_HTTP_MAX_HEADERS);
    req->hdr_name[req->nhdr] = name;
    req->hdr_value[req->nhdr] = ob_pool_strdup(req->pool, value);
    req->nhdr++;
}

void ob_http_reply(ob_http_req_t *req, unsigned status, const char *content_type, const char *body,
                   size_t len)
{
    req->status = status;
    req->content_type = content_type;
    req->resp_body = body;
    req->resp_len = len;
}

void ob_http_reply_json(ob_http_req_t *req, unsigned status, const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    OB_ASSERT(text != NULL);
    char *copy = ob_pool_strdup(req->pool, text);
    cJSON_free(text);
    ob_http_reply(req, status, "application/json", copy, strlen(copy));
}

void ob_http_problem(ob_http_req_t *req, unsigned status, const char *code, cJSON *errors,
                     const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);

    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type",
                            ob_pool_printf(req->pool, "https://outbound.dev/problems/%s", code));
    cJSON_AddStringToObject(p, "title", MHD_get_reason_phrase_for(status));
    cJSON_AddNumberToObject(p, "status", status);
    cJSON_AddStringToObject(p, "code", code);
    cJSON_AddStringToObject(p, "detail", detail);
    cJSON_AddStringToObject(p, "request_id", req->req_id);
    if (errors)
        cJSON_AddItemToObject(p, "errors", errors);
    ob_http_reply_json(req, status, p);
    req->content_type = "application/problem+json";
    cJSON_Delete(p);
}

static void builtin(ob_http_server_t *srv, ob_http_req_t *req)
{
    const ob_http_opts_t *o = &srv->opts;
    if (strcmp(req->path, "/healthz") == 0) {
        req->route = "/healthz";
        ob_http_reply(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
    } else if (strcmp(req->path, "/readyz") == 0) {
        req->route = "/readyz";
        const char *why = "ready";
        bool ok = o->ready ? o->ready(o->ctx, &why) : true;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", ok ? "ready" : "not_ready");
        cJSON_AddStringToObject(j, "detail", why);
        ob_http_reply_json(req, ok ? 200 : 503, j);
        cJSON_Delete(j);
    } else if (strcmp(req->path, "/metrics") == 0) {
        req->route = "/metrics";
        char *own = o->metrics ? o->metrics(o->ctx) : ob_xstrdup("");
        char *requests = ob_metric_family_render(srv->requests);
        char *durations = ob_metric_family_render(srv->durations);
        char *text = ob_xasprintf("%s%s%s", own, requests, durations);
        free(own);
        free(requests);
        free(durations);
        ob_pool_adopt(req->pool, text);
        ob_http_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text));
    } else if (o->handler) {
        o->handler(o->ctx, req);
    } else {
        ob_http_problem(req, 404, "not_found", NULL, "no route for %s %s", req->method, req->path);
    }
}

/* Counts the answered request; route is a static pattern, never the path,
 * so the label sets stay few. */
static void record(ob_http_server_t *srv, const conn_state_t *st)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs =
        (double)(now.tv_sec - st->start.tv_sec) + (double)(now.tv_nsec - st->start.tv_nsec) / 1e9;
    char labels[192];
    snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%u\"", st->req.route, st->req.status);
    ob_metric_family_add(srv->requests, labels, 1);
    snprintf(labels, sizeof(labels), "route=\"%s\"", st->req.route);
    ob_metric_family_observe(srv->durations, labels, secs);
}

static enum MHD_Result respond(struct MHD_Connection *conn, ob_http_req_t *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        req->resp_len, (void *)req->resp_body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", req->content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->req_id);
    for (int i = 0; i < req->nhdr; i++)
        MHD_add_response_header(resp, req->hdr_name[i], req->hdr_value[i]);
    enum MHD_Result rc = MHD_queue_response(conn, req->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

bool ob_http_discard_body(void *ctx, ob_http_req_t *req, const char *data, size_t len)
{
    (void)ctx;
    (void)req;
    (void)data;
    (void)len;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    ob_http_server_t *srv = cls;
    conn_state_t *st = *con_cls;
    (void)version;

    if (!st) {
        ob_pool_t *pool = ob_pool_new();
        st = ob_pool_alloc(pool, sizeof(*st));
        st->req.pool = pool;
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        st->req.route = "unmatched";
        st->req.conn = conn;
        st->req.method = ob_pool_strdup(pool, method);
        st->req.path = ob_pool_strdup(pool, url);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && strlen(rid) < sizeof(st->req.req_id) && rid[0])
            snprintf(st->req.req_id, sizeof(st->req.req_id), "%s", rid);
        else
            ob_uuid_v7(st->req.req_id);
        st->req.body = ob_pool_alloc(pool, 1);
        st->req.status = 500;
        st->req.content_type = "text/plain";
        st->req.resp_body = "";
        *con_cls = st;
        if (srv->opts.stream)
            srv->opts.stream(srv->opts.ctx, &st->req);
        return MHD_YES;
    }
    if (*upload_size && st->req.on_body) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!st->req.on_body(srv->opts.ctx, &st->req, upload, n))
            st->req.on_body = ob_http_discard_body;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->req.body_too_large || st->req.body_len + n > srv->opts.max_body) {
            st->req.body_too_large = true;
            return MHD_YES;
        }
        if (st->req.body_len + n + 1 > st->body_cap) {
            size_t cap = st->body_cap ? st->body_cap : 1024;
            while (cap < st->req.body_len + n + 1)
                cap *= 2;
            char *grown = ob_pool_alloc(st->req.pool, cap);
            memcpy(grown, st->req.body, st->req.body_len);
            st->req.body = grown;
            st->body_cap = cap;
        }
        memcpy(st->req.body + st->req.body_len, upload, n);
        st->req.body_len += n;
        st->req.body[st->req.body_len] = '\0';
        return MHD_YES;
    }
    if (st->req.body_too_large)
        ob_http_problem(&st->req, 413, "body_too_large", NULL,
                        "request body exceeds the limit of %zu bytes", srv->opts.max_body);
    else
        builtin(srv, &st->req);
    enum MHD_Result rc = respond(conn, &st->req);
    record(srv, st);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_state_t *st = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (st && st->req.on_close)
        st->req.on_close(&st->req);
    if (st && st->req.on_finish)
        st->req.on_finish(st->req.finish_arg, &st->req);
    if (st)
        ob_pool_free(st->req.pool);
    *con_cls = NULL;
}

ob_rc_t ob_http_start(const ob_http_opts_t *opts, ob_http_server_t **out, ob_err_t *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    if (strchr(opts->addr, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)opts->port);
        if (inet_pton(AF_INET6, opts->addr, &a6->sin6_addr) != 1)
            goto bad_addr;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)opts->port);
        if (inet_pton(AF_INET, opts->addr, &a4->sin_addr) != 1)
            goto bad_addr;
    }

    ob_http_server_t *srv = ob_xcalloc(1, sizeof(*srv));
    srv->opts = *opts;
    srv->requests = ob_metric_family_new(
        "outbound_http_requests_total", "HTTP requests answered, by matched route and status code",
        OB_METRIC_COUNTER, NULL, 0, ROUTE_CODE_CAP, "route=\"other\",code=\"other\"");
    srv->durations = ob_metric_family_new(
        "outbound_http_request_duration_seconds",
        "Time from request headers to the response being queued, by matched route",
        OB_METRIC_HISTOGRAM, duration_bounds, OB_COUNTOF(duration_bounds), ROUTE_CAP,
        "route=\"other\"");
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, opts->threads ? opts->threads : 1, MHD_OPTION_CONNECTION_LIMIT,
        opts->connection_limit ? opts->connection_limit : 1024, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->timeout_s ? opts->timeout_s : 30, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_END);
    if (!srv->daemon) {
        ob_metric_family_free(srv->requests);
        ob_metric_family_free(srv->durations);
        free(srv);
        ob_err_set(err, "cannot listen on %s:%d (port in use or address unavailable)", opts->addr,
                   opts->port);
        return OB_ERR;
    }
    *out = srv;
    return OB_OK;
bad_addr:
    ob_err_set(err, "OB_HTTP_ADDR \"%s\" is not an IP address", opts->addr);
    return OB_EINVAL;
}

void ob_http_quiesce(ob_http_server_t *srv)
{
    if (srv && srv->daemon) {
        MHD_socket s = MHD_quiesce_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

void ob_http_free(ob_http_server_t *srv)
{
    if (!srv)
        return;
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    ob_metric_family_free(srv->requests);
    ob_metric_family_free(srv->durations);
    free(srv);
}
