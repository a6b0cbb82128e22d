/*
 * Integration-test harness: spawns the real service binaries against the
 * real Kafka and Postgres of the local stack (OB_TEST_KAFKA, OB_TEST_PG_DSN),
 * talks HTTP to them with libcurl, reads Postgres and the events topic, and
 * stops them with SIGTERM so every test also checks a clean drain.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

#define H_MAX_PROCS 8

typedef struct {
    pid_t pid;     /* child process */
    char name[32]; /* "ingest", "dialer-1", ... */
    int port;      /* its HTTP port */
    char log[256]; /* where its stderr goes */
} h_proc_t;

/* A stack of services isolated like a separate installation: its own topic
 * prefix and its own Postgres schema, both named by prefix. */
typedef struct {
    char prefix[64];             /* topic prefix and schema name, unique per test */
    char dsn[512];               /* Postgres DSN selecting the schema */
    h_proc_t procs[H_MAX_PROCS]; /* started services */
    int nprocs;                  /* entries in procs */
    int ingest_port;             /* the API port */
} h_stack_t;

/* A tenant created directly in Postgres. */
typedef struct {
    char account_id[37];     /* new account */
    char application_id[37]; /* its application */
    char email[128];         /* its email */
    char deployment_id[37];  /* its deployment */
    char api_key[80];        /* plaintext key (stored hashed) */
} h_tenant_t;

typedef struct {
    long status;        /* HTTP status, 0 if the request failed */
    char *body;         /* response body (malloc'd, NUL-terminated) */
    char *content_type; /* response Content-Type (malloc'd) or NULL */
} h_resp_t;

/* Environment and paths. */
const char *h_kafka(void);
const char *h_pg_dsn(void);
/* A free TCP port on 127.0.0.1. */
int h_free_port(void);
/* A unique lower-case name with the given stem. */
void h_unique(char *out, size_t len, const char *stem);

/* Names the stack and creates its schema; call first. */
void h_stack_init(h_stack_t *s);

/* Starts a service binary ("ingest", "scheduler", "dialer") with the stack's
 * settings plus extra "NAME=value" strings (NULL-terminated, may be NULL). */
h_proc_t *h_start(h_stack_t *s, const char *service, const char *name,
                  const char *const *extra_env);
/* Waits until GET /readyz answers 200; false on timeout or if it died. */
bool h_wait_ready(const h_proc_t *p, int timeout_ms);
/* Sends SIGTERM and waits; returns the exit code (or 128+signal, or -1 on timeout). */
int h_stop(h_proc_t *p, int timeout_ms);
/* Starts ingest, scheduler and ndialers dialers and waits for them all. */
bool h_stack_up(h_stack_t *s, int ndialers, const char *const *dialer_env);
/* Stops every process; returns true if all exited 0. */
bool h_stack_down(h_stack_t *s);
/* Kills whatever a failed test left running (for .fini). */
void h_stack_kill(h_stack_t *s);

/* Runs a binary to completion with exactly the given environment; returns the
 * exit code and the captured stderr (malloc'd) in *err_out. */
int h_run_env(const char *service, const char *const *envp, char **err_out);

/* HTTP against 127.0.0.1:port. headers is NULL-terminated "Name: value". */
h_resp_t h_http(int port, const char *method, const char *path, const char *const *headers,
                const char *body);
void h_resp_free(h_resp_t *r);

/* A migrated connection to the stack's schema. */
PGconn *h_pg(const h_stack_t *s);
/* First column of the first row as a malloc'd string (NULL if no row). */
char *h_pg_value(PGconn *c, const char *sql, int n, const char *const *params);
/* h_pg_value as a number: -1 when there is no row or the value is null. */
long h_pg_long(PGconn *c, const char *sql, int n, const char *const *params);
/* Creates an account, application, deployment (capacity) and API key. */
void h_tenant(PGconn *c, h_tenant_t *t, int capacity);

/* Collects events of the stack's call-events topic for call_id until count
 * of them arrived or timeout; returns their types in arrival order as a
 * comma-separated malloc'd string. */
char *h_event_types(const h_stack_t *s, const char *call_id, int count, int timeout_ms);

/* Called with each message of a topic read by h_read_topic. */
typedef void (*h_message_fn)(void *arg, const void *payload, size_t len);

/* Reads topic from its beginning to its current end (at most 20 s), in a
 * new consumer group, calling fn for each message. Returns true if every
 * partition was read to its end. */
bool h_read_topic(const char *topic, h_message_fn fn, void *arg);

/* Appends every message of the stack's topic <prefix>.<suffix> to
 * build/test-logs/<prefix>-messages.jsonl as "<schema> <json>" lines, for
 * tools/check_schemas.py; returns how many were captured. */
int h_capture_topic(const h_stack_t *s, const char *suffix, const char *schema);

/* Sleeps ms milliseconds. */
void h_sleep_ms(int ms);

/* Finds header `name` (case-insensitive) in an HTTP head (NUL-terminated,
 * CRLF lines, the request or status line first) and copies its value,
 * truncated to len - 1, to out. False if it is absent. */
bool h_header(const char *head, const char *name, char *out, size_t len);

/* A gauge or counter of the process's /metrics, by its name with labels as
 * rendered ("outbound_calls_pending{waiting_for=\"window\"}"); -1 if absent. */
long h_metric(const h_proc_t *p, const char *name);

/* A loopback HTTP/1.1 server standing in for an application or a webhook
 * receiver: one thread per connection, keep-alive. The handler gets each
 * request's head and body and returns its status, with *answer (JSON,
 * static or living until the next request) as the body. */
typedef int (*h_handler_fn)(void *arg, const char *head, const char *body, size_t len,
                            const char **answer);
typedef struct h_server h_server_t;

/* Starts a server on a free port; asserts it could. */
h_server_t *h_server_start(h_handler_fn fn, void *arg);
/* The same on port (a server that comes back where it was). */
h_server_t *h_server_start_on(int port, h_handler_fn fn, void *arg);
int h_server_port(const h_server_t *srv);
/* Stops accepting and frees it (connections already open end by themselves). */
void h_server_stop(h_server_t *srv);

/* True if the service's log (stdout and stderr) so far holds text. */
bool h_log_has(const h_proc_t *p, const char *text);

/* Follows a dotted path ("attempts.0.connected_at", numbers index arrays)
 * and returns the value as text: strings as they are, other values as JSON
 * (malloc'd; NULL if the path does not exist or the value is null). */
char *h_json_path(const char *json, const char *path);

/* Extracts a top-level string member of a JSON text (malloc'd, NULL if absent). */
char *h_json_str(const char *json, const char *member);

/* h_json_path as a number; -1 when absent or null. */
long h_json_long(const char *json, const char *path);

/* Expects h_json_path(json, path) to be want (NULL: absent or null). */
void h_expect_path(const char *json, const char *path, const char *want);

#endif
