/*
 * The skeleton every service shares, so that each main.c reads as a table of
 * contents: load and validate configuration (exit 78 on any problem), start
 * logging and signals, wait for Postgres and migrate it, make sure the topics
 * exist (exit 69 when they cannot be reached), serve /readyz and /metrics
 * from the service's tables, and drain by an ordered table of steps.
 */
#ifndef OB_SERVICE_H
#define OB_SERVICE_H

#include "ob_common.h"
#include "ob_config.h"
#include "ob_http.h"
#include "ob_kafka.h"
#include "ob_metrics.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* Loads the base settings and the service's own table into cfg (whose first
 * member is an ob_base_config_t), starts logging and installs the signal
 * handlers. Returns OB_EXIT_OK or OB_EXIT_CONFIG after logging every problem. */
int ob_service_configure(const char *svc, const ob_cfg_spec_t *specs, void *cfg);

/* The service's command line, read before anything starts: --help (what
 * it is and its settings), --config-reference (its own table as Markdown
 * rows, ob_config_reference) and --config-reference-common (the table every
 * service shares). Returns the exit code when the process should end now (0
 * after printing, 64 for an unknown argument, named on stderr), -1 to go
 * on; about says in one line what the service does. */
int ob_service_args(const char *svc, const char *about, int argc, char **argv,
                    const ob_cfg_spec_t *specs);

/* Raises the open-file limit towards its hard limit so that want
 * descriptors (connections, sockets, files) fit; logs a warning naming the
 * limit when the hard limit is lower. */
void ob_service_want_files(long want);

/* Connects to Postgres, retrying until timeout_ms or a stop signal, then
 * applies pending migrations. On failure logs why and returns non-OK. */
ob_rc_t ob_service_connect_pg(const ob_base_config_t *base, int timeout_ms,
                              PGconn **out) OB_MUSTCHECK;

/* Creates the three topics if they are missing, retrying until timeout_ms. */
ob_rc_t ob_service_ensure_topics(const ob_base_config_t *base, int timeout_ms) OB_MUSTCHECK;

/* The dependencies at start: connects to Postgres and migrates it, then makes
 * sure the topics exist, waiting up to OB_SERVICE_START_MS for each. *pg gets
 * the connection (caller closes it with PQfinish); with pg NULL it is closed
 * here. Returns OB_EXIT_OK or OB_EXIT_DEPENDENCY after logging why. */
#define OB_SERVICE_START_MS 30000
int ob_service_connect(const ob_base_config_t *base, PGconn **pg) OB_MUSTCHECK;

/* ---- Readiness and metrics ------------------------------------------------- */

/* One named readiness check. ok reads what the service last observed (flags
 * its loop refreshes); it runs on an HTTP thread and must not block. */
typedef struct {
    const char *unready;         /* /readyz detail when it fails, e.g. "kafka unreachable" */
    bool (*ok)(const void *ctx); /* true when satisfied; ctx is the service's context */
    bool gauge;                  /* also counts in the outbound_ready gauge */
} ob_service_check_t;

/* The part of a service's context the skeleton reads. It must be the first
 * member of that context, whose address is the ctx of the HTTP callbacks and
 * of the checks and drain steps (as ob_base_config_t is of the configuration).
 * Everything it points to is the service's and outlives the server. */
typedef struct {
    const ob_service_check_t *checks; /* readiness, first failing one answers; ends {NULL} */
    ob_metric_t *metrics;             /* the service's own counters and gauges */
    size_t nmetrics;                  /* entries in metrics */
    ob_metric_t *ready;               /* outbound_ready within metrics, or NULL */
    char *(*render)(void *ctx);       /* the service's further families (caller frees), or NULL */
    ob_metric_family_t *pg_writes;    /* Postgres write durations, or NULL */
    ob_kafka_metrics_t *kafka;        /* per-topic Kafka metrics, or NULL */
    ob_http_server_t *http;           /* set by ob_service_http_start; freed by a drain step */
    int pg_up;                        /* Postgres answered its last use (atomic): pg_checks */
} ob_service_t;

/* Records whether Postgres answered the service's last use of it. Any thread. */
void ob_service_set_pg_up(ob_service_t *svc, bool up);

/* The checks of a service whose one dependency is Postgres (the scheduler,
 * the dialer): "draining", then "postgres unreachable" while svc->pg_up is
 * 0 (counted in outbound_ready). */
extern const ob_service_check_t ob_service_pg_checks[];

/* A check for the checks tables: fails with "draining" once a stop was asked. */
bool ob_service_not_draining(const void *ctx);

/* ob_http_ready_fn: true when every check passes; otherwise *why is the first
 * failing check's unready text. */
bool ob_service_ready(void *ctx, const char **why);

/* ob_http_metrics_fn: sets outbound_ready from the gauge checks, then renders
 * the own metrics, render's, pg_writes and the Kafka metrics, in this order.
 * Caller frees. */
char *ob_service_metrics(void *ctx);

/* Starts the HTTP server with opts (whose ctx must be the context svc opens)
 * answering /readyz and /metrics as above, and keeps it in svc->http. Returns
 * OB_EXIT_OK, or OB_EXIT_CONFIG after logging why (the port cannot be bound). */
int ob_service_http_start(ob_service_t *svc, ob_http_opts_t *opts) OB_MUSTCHECK;

/* ---- Drain ----------------------------------------------------------------- */

/* One step of a drain. It returns true when its part drained, false when it
 * left work undone (calls hung up, messages undelivered). deadline_ms is on
 * the ob_mono_ms clock and may already have passed: a step then still does
 * what cannot be skipped (release, commit) as quickly as it can. */
typedef bool (*ob_drain_fn)(void *ctx, int64_t deadline_ms);

typedef struct {
    const char *name; /* logged as "drain k/n: <name>" */
    ob_drain_fn fn;   /* the step */
    int share;        /* percent of the drain deadline it may use; a table's shares sum to 100 */
} ob_drain_step_t;

/* Runs steps (ending with {NULL}) in order with ctx, logging "drain k/n:
 * <name>" before each and "drained; exit <code>" at the end. Step k's
 * deadline is the drain's start plus drain_ms times the shares of steps 1..k,
 * so time a step leaves unused goes to the next; a step that fails or ends
 * past its deadline is named in a warning. Blocks until every step has run.
 * Returns OB_EXIT_OK, or OB_EXIT_UNDRAINED when a step returned false or the
 * drain ended after its deadline (start + drain_ms). */
int ob_service_drain(const ob_drain_step_t *steps, void *ctx, int64_t drain_ms);

/* Milliseconds from now to deadline_ms (ob_mono_ms clock), 0 once past. */
int ob_service_ms_left(int64_t deadline_ms);

/* For the services' own drain steps: flushes *producer for what is left
 * of deadline_ms and frees it (sets it NULL); false when a message was left
 * undelivered or the producer had failed fatally. NULL-safe. */
bool ob_service_flush_producer(ob_producer_t **producer, int64_t deadline_ms);
/* Commits *consumer's stored offsets, leaves its group and frees it (sets
 * it NULL); librdkafka waits for the group's answer. Always true. */
bool ob_service_leave_group(rd_kafka_t **consumer);

/* Drain steps for the steps tables; ctx opens with an ob_service_t. */
bool ob_service_stop_accepting(void *ctx, int64_t deadline_ms); /* closes the listener */
bool ob_service_http_close(void *ctx, int64_t deadline_ms);     /* answers requests in progress */

/* Sleeps up to ms, returning early when a stop was requested. */
void ob_service_sleep(int ms);

/* Topic name suffixes. */
#define OB_TOPIC_CALL_REQUESTS "call-requests"
#define OB_TOPIC_DIAL_JOBS     "dial-jobs"
#define OB_TOPIC_CALL_EVENTS   "call-events"

#endif
