/*
 * A small HTTP server on libmicrohttpd shared by every service: /healthz,
 * /readyz and /metrics come built in; ingest adds its API through a handler.
 * Each request owns a memory pool released when libmicrohttpd reports the
 * request complete, so handlers allocate freely and return early safely.
 * Every request is counted in outbound_http_requests_total{route,code} and
 * timed in outbound_http_request_duration_seconds{route}, appended to /metrics.
 */
#ifndef OB_HTTP_H
#define OB_HTTP_H

#include "ob_common.h"
#include "ob_pool.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

struct MHD_Connection;

#define OB_HTTP_MAX_HEADERS 8

typedef struct ob_http_req {
    struct MHD_Connection *conn; /* libmicrohttpd connection (for header lookups) */
    ob_pool_t *pool;             /* per-request memory, freed after the response */
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* URL path without the query string */
    char *body;                  /* request body, NUL-terminated, pool-owned */
    size_t body_len;             /* bytes in body */
    bool body_too_large;         /* the body exceeded max_body and was dropped */
    char req_id[37];             /* correlation id, echoed as X-Request-Id */
    unsigned status;             /* response status set by the handler */
    const char *route;           /* matched route pattern for metrics (static storage, no quotes);
                                    "unmatched" until a handler sets it */
    const char *content_type;    /* response content type */
    const char *resp_body;       /* response body, pool-owned or static */
    size_t resp_len;             /* bytes in resp_body */
    const char *hdr_name[OB_HTTP_MAX_HEADERS];  /* extra response header names */
    const char *hdr_value[OB_HTTP_MAX_HEADERS]; /* and their values */
    int nhdr;                                   /* extra headers in use */
    /* Streaming (see ob_http_stream_fn): body chunks go to on_body instead of
     * body; on_close runs when the request is over, whatever happened. */
    bool (*on_body)(void *ctx, struct ob_http_req *req, const char *data, size_t len);
    void (*on_close)(struct ob_http_req *req);
    void *stream; /* the streaming handler's state */
    /* Runs last when the request is over, after on_close (for what the
     * service holds for the whole request, such as an admission slot). */
    void (*on_finish)(void *arg, struct ob_http_req *req);
    void *finish_arg;
} ob_http_req_t;

/* Handles one request by filling status and body. Runs on a server thread;
 * it may block (for example on a Kafka acknowledgement). */
typedef void (*ob_http_handler_fn)(void *ctx, ob_http_req_t *req);
/* True when the service can take work; otherwise *why says what is missing. */
typedef bool (*ob_http_ready_fn)(void *ctx, const char **why);
/* Called once per request when its headers have arrived. To take the body
 * as a stream (large uploads), it sets req->on_body (and optionally
 * req->on_close and req->stream); on_body returning false discards the rest
 * of the body. The handler then runs when the body is complete, as usual. */
typedef void (*ob_http_stream_fn)(void *ctx, ob_http_req_t *req);
/* Renders the service's metrics as Prometheus text; caller frees. */
typedef char *(*ob_http_metrics_fn)(void *ctx);

typedef struct {
    const char *addr;           /* IPv4 or IPv6 literal to bind */
    int port;                   /* TCP port */
    unsigned threads;           /* worker threads (libmicrohttpd thread pool) */
    unsigned connection_limit;  /* concurrent connections accepted */
    unsigned timeout_s;         /* idle connection timeout */
    size_t max_body;            /* request bodies above this are refused with 413 */
    ob_http_handler_fn handler; /* for paths other than the built-in ones; may be NULL */
    ob_http_stream_fn stream;   /* decides which requests stream their body; may be NULL */
    ob_http_ready_fn ready;     /* /readyz; NULL means always ready */
    ob_http_metrics_fn metrics; /* /metrics; NULL means empty */
    void *ctx;                  /* passed to the callbacks */
} ob_http_opts_t;

typedef struct ob_http_server ob_http_server_t;

/* Starts listening; returns OB_ERR with detail if the port cannot be bound. */
ob_rc_t ob_http_start(const ob_http_opts_t *opts, ob_http_server_t **out,
                      ob_err_t *err) OB_MUSTCHECK;

/* Stops accepting new connections (first drain step); requests in progress finish. */
void ob_http_quiesce(ob_http_server_t *srv);

/* Stops the server and frees it; NULL-safe. */
void ob_http_free(ob_http_server_t *srv);

/* An on_body that drops the body: for a streamed request answered before
 * its body arrives. */
bool ob_http_discard_body(void *ctx, ob_http_req_t *req, const char *data, size_t len);

/* Request helpers. */
const char *ob_http_header(ob_http_req_t *req, const char *name);
const char *ob_http_query(ob_http_req_t *req, const char *name);
void ob_http_add_header(ob_http_req_t *req, const char *name, const char *value);
void ob_http_reply(ob_http_req_t *req, unsigned status, const char *content_type, const char *body,
                   size_t len);
/* Serialises json (not consumed) as the response body. */
void ob_http_reply_json(ob_http_req_t *req, unsigned status, const cJSON *json);
/* application/problem+json with a stable machine-readable code; errors (may be
 * NULL) is attached as "errors" and consumed. */
void ob_http_problem(ob_http_req_t *req, unsigned status, const char *code, cJSON *errors,
                     const char *fmt, ...) OB_PRINTF(5, 6);

#endif
