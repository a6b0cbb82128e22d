/*
 * outboundctl: the command-line client of the outbound HTTP API. This header
 * holds what the command files share: the run context, the exit codes, the
 * HTTP calls (libcurl), the configuration file and the command entry points.
 */
#ifndef CTL_H
#define CTL_H

#include "ctl_args.h"
#include "ob_common.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes scripts can rely on (documented in --help and the README). */
enum {
    CTL_EXIT_OK = 0,          /* done */
    CTL_EXIT_REFUSED = 1,     /* the API refused the request (4xx other than 404) */
    CTL_EXIT_USAGE = 2,       /* bad command line, missing URL or key, unreadable file */
    CTL_EXIT_NOT_FOUND = 3,   /* the call, deployment, ... does not exist (404) */
    CTL_EXIT_UNAVAILABLE = 4, /* no answer, 5xx, 429 or an answer that is not JSON: retry later */
    CTL_EXIT_PARTIAL = 5,     /* an upload or batch was taken but some rows were rejected */
};

/* What every command runs with; read-only once main has filled it. */
typedef struct {
    const char *url; /* API base URL, without a trailing slash */
    const char *key; /* API key (Bearer) */
    bool json;       /* --json: print the API's JSON as it is */
    long timeout_s;  /* whole-request timeout of one HTTP request (0: none) */
    const char *cmd; /* "call queue", for messages */
} ctl_t;

/* One HTTP answer. */
typedef struct {
    long status;          /* HTTP status; 0 when there was no answer */
    char *body;           /* NUL-terminated body, malloc'd (never NULL after a request) */
    size_t len;           /* bytes in body */
    char error[256];      /* libcurl's reason when status is 0 */
    char retry_after[32]; /* the Retry-After header, if any */
} ctl_resp_t;

/* The only global: set by SIGINT/SIGTERM, read by loops that wait. */
extern volatile sig_atomic_t ctl_stop;

/* Sends method url+path (path includes its escaped query) with an optional
 * body and extra "Name: value" headers (NULL-terminated, may be NULL).
 * Blocks until the answer or c->timeout_s; fills r (free with
 * ctl_resp_free). */
void ctl_http(const ctl_t *c, const char *method, const char *path, const char *content_type,
              const char *body, const char *const *headers, ctl_resp_t *r);

/* POSTs size bytes read from f as the body, streamed; draws a progress bar
 * on stderr when progress is true. No whole-request timeout. */
void ctl_http_upload(const ctl_t *c, const char *path, const char *content_type, FILE *f,
                     long long size, bool progress, const char *const *headers, ctl_resp_t *r);

void ctl_resp_free(ctl_resp_t *r);

/* Percent-encodes s for a path segment or query value; free with free(). */
char *ctl_escape(const char *s);

/* Parses r's body as JSON; NULL (and a message on stderr) if it is not.
 * Caller frees with cJSON_Delete. */
cJSON *ctl_parse(const ctl_t *c, const ctl_resp_t *r);

/* One request whose answer is a JSON object: method on path with body (JSON
 * text, or NULL), expecting status want. Returns CTL_EXIT_OK with the
 * answer in *out (caller frees with cJSON_Delete), or the exit code of the
 * failure (explained on stderr, *out NULL). */
int ctl_request(const ctl_t *c, const char *method, const char *path, const char *body, long want,
                cJSON **out);

/* Explains an unsuccessful answer on stderr (status, the problem's code and
 * detail, each field error, the request id, what to do) and returns its
 * exit code. With --json, the problem's JSON also goes to stdout. */
int ctl_fail(const ctl_t *c, const ctl_resp_t *r);

/* Prints a usage error on stderr ("outboundctl call queue: ...") and
 * returns CTL_EXIT_USAGE. */
int ctl_usage_error(const ctl_t *c, const char *fmt, ...) OB_PRINTF(2, 3);

/* Adds option opt, when given, to body as the integer member, checked to
 * be in [min, max]; false after a usage error, whose exit code goes to *rc. */
bool ctl_body_long(const ctl_t *c, const ctl_args_t *a, cJSON *body, const char *opt,
                   const char *member, long min, long max, int *rc) OB_MUSTCHECK;

/* Prints obj compactly on stdout with a newline. */
void ctl_print_json(const cJSON *obj);

/* GETs path (its query included, no cursor or limit) page after page of
 * page_size, moving member items of each page into out (an array), until
 * max items (0: all) or the last page. Returns an exit code. */
int ctl_get_pages(const ctl_t *c, const char *path, const char *items, long max, long page_size,
                  cJSON *out);

/* The configuration file: $OUTBOUND_CONFIG, else
 * $XDG_CONFIG_HOME/outbound/config, else ~/.config/outbound/config.
 * Caller frees; NULL when there is no home directory. */
char *ctl_config_path(void);

/* Reads url and key from path (each malloc'd, NULL if the file does not set
 * it). OB_ENOTFOUND when the file does not exist, OB_ERR (detail in err)
 * when it cannot be read. */
ob_rc_t ctl_config_read(const char *path, char **url, char **key, ob_err_t *err) OB_MUSTCHECK;

/* Writes url and key to path with mode 0600 (its folder 0700), replacing it
 * atomically. OB_ERR with the detail in err. */
ob_rc_t ctl_config_write(const char *path, const char *url, const char *key,
                         ob_err_t *err) OB_MUSTCHECK;

/* Commands: each returns an exit code. a holds the command's words after
 * its name, as parsed against its options. */
int ctl_cmd_configure(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_apps_list(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_apps_create(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_deps_list(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_deps_show(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_deps_create(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_deps_set_app(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_deps_clear_app(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_queue_control(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_queue_status(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_call_queue(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_call_show(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_call_cancel(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_calls_list(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_calls_watch(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_calls_upload(const ctl_t *c, const ctl_args_t *a);
int ctl_cmd_upload_show(const ctl_t *c, const ctl_args_t *a);

#endif
