/*
 * The result_url webhook sender: a thread of the dialer with its own
 * consumer of outbound.call-events, its own Postgres connection, its own
 * libcurl multi handle and its own metrics. Each completed event becomes a
 * webhook_deliveries row; due deliveries are POSTed, signed, many at once
 * on keep-alive connections, and retried with exponential backoff and
 * jitter until the maximum age.
 *
 * A module of the dialer, not a service of its own (issue 20): it shares
 * nothing with the worker but the process, the base settings, the URL
 * policy and the service-wide Kafka and Postgres metric registries, and the
 * worker knows it only through the four calls below (start, drain,
 * metrics, stop). Deliveries are claimed FOR UPDATE SKIP LOCKED, so the
 * senders of all dialers share them and scale with the dialers, and
 * OB_WEBHOOK_ENABLED=false turns one off. A separate binary would add an
 * image, a compose service, Kubernetes manifests, a configuration table and
 * a drain of its own for no gain today; should webhooks ever need to scale
 * apart from dialing, these calls are what its main.c would make.
 */
#ifndef DIALER_WEBHOOKS_H
#define DIALER_WEBHOOKS_H

#include "ob_common.h"
#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_url.h"

#include <stddef.h>
#include <stdint.h>

/* "v1=" plus 64 hex digits plus NUL. */
#define DIALER_WEBHOOK_SIG_LEN 68

/* What the sender needs from the dialer's configuration. */
typedef struct {
    const ob_base_config_t *base;      /* Kafka, Postgres, topic prefix, instance id */
    ob_kafka_metrics_t *kafka_metrics; /* its consumer reports here; must outlive it */
    ob_metric_family_t *pg_writes;     /* times its result writes; must outlive it */
    int concurrency;                   /* transfers in flight at once */
    int timeout_ms;                    /* whole-transfer timeout of one try */
    int64_t retry_base_ms;             /* wait after the first failed try; doubles */
    int64_t retry_max_ms;              /* longest wait between tries */
    int64_t max_age_ms;                /* give up this long after the delivery was created */
    const ob_url_policy_t *urls; /* where deliveries may connect; NULL: anywhere; must outlive */
} dialer_webhooks_opts_t;

typedef struct dialer_webhooks dialer_webhooks_t;

/* Writes "v1=" + lower-case hex HMAC-SHA256(secret, timestamp "." body) into
 * out: the X-Outbound-Signature header's value. Pure. */
void dialer_webhook_sign(const char *secret, const char *timestamp, const char *body,
                         size_t body_len, char out[DIALER_WEBHOOK_SIG_LEN]);

/* The form body of a JSON object (a Plum call_details), for receivers that
 * read POST parameters: application/x-www-form-urlencoded, members in
 * order, nested ones named with PHP's brackets (events[0][event]=queued,
 * call_parameters[name]=Sam), numbers as written in JSON (integers without
 * a fraction), true and false as 1 and 0, null as an empty value, names
 * and values percent-encoded but for RFC 3986's unreserved characters.
 * NULL when json is not an object. Pure; caller frees with free. */
char *dialer_webhook_form_body(const char *json);

/* The wait before try attempt + 1 after try `attempt` (1-based) failed:
 * base * 2^(attempt - 1), capped at max, then scaled by 0.5 + jitter / 2
 * ("equal jitter", jitter in [0, 1)), so waits still grow but receivers that
 * failed together are not retried together. Pure. */
int64_t dialer_webhook_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double jitter);

/* When to try next (unix ms) after try `attempt` failed at now_ms, or -1
 * when that would be later than created_ms + max_age_ms (give up). Pure. */
int64_t dialer_webhook_next_ms(int64_t created_ms, int64_t now_ms, int attempt,
                               const dialer_webhooks_opts_t *o, double jitter);

/* Starts the sender thread (opts is copied; what it points to must outlive
 * the sender). Connects to Postgres and Kafka on the thread, retrying while
 * they are down. Call from the main thread before other threads use libcurl
 * (curl_global_init). Returns OB_ERR with err set if the thread or the
 * libcurl handle cannot be created; otherwise *out is the sender, freed by
 * dialer_webhooks_stop. */
ob_rc_t dialer_webhooks_start(const dialer_webhooks_opts_t *opts, dialer_webhooks_t **out,
                              ob_err_t *err) OB_MUSTCHECK;

/* Drain: stops taking new events and deliveries, lets transfers in flight
 * finish until deadline_ms (monotonic) or their timeout, hands the rest
 * back (they stay pending and come due again at once), commits the
 * consumed offsets and joins the thread. Blocks until then. The metrics
 * stay readable until dialer_webhooks_stop. NULL-safe; a second call does
 * nothing. */
void dialer_webhooks_drain(dialer_webhooks_t *ws, int64_t deadline_ms);

/* The sender's Prometheus families (deliveries created, delivered and
 * failed, tries, transfers in flight), all zero when ws is NULL (webhooks
 * off). Safe from any thread while ws lives; caller frees. */
char *dialer_webhooks_metrics(const dialer_webhooks_t *ws);

/* Drains at once if dialer_webhooks_drain was not called, then frees ws.
 * NULL-safe. */
void dialer_webhooks_stop(dialer_webhooks_t *ws);

#endif
