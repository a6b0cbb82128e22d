/*
 * Kafka helpers over librdkafka. The producer is idempotent with acks=all and
 * owns a poll thread that serves delivery reports, so callers can either wait
 * for the broker's acknowledgement (ob_producer_send_sync) or be called back.
 * The consumer stores offsets only when the caller says the effect is durable
 * (enable.auto.offset.store=false), and librdkafka commits what was stored.
 */
#ifndef OB_KAFKA_H
#define OB_KAFKA_H

#include "ob_common.h"
#include "ob_config.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef struct ob_producer ob_producer_t;

/* A service's Kafka metrics: per-topic counts of produced, failed and
 * consumed messages and the consumers' lag. Passed to the producers and
 * consumers that report to it (NULL: they count nothing); it must outlive
 * them. Thread-safe. */
typedef struct ob_kafka_metrics ob_kafka_metrics_t;

ob_kafka_metrics_t *ob_kafka_metrics_new(void);

/* Frees the registry; NULL-safe. */
void ob_kafka_metrics_free(ob_kafka_metrics_t *m);

/* Delivery callback, run on the producer's poll thread. rc is OB_OK when the
 * broker acknowledged the message; err holds the reason otherwise. */
typedef void (*ob_delivery_fn)(void *opaque, ob_rc_t rc, const char *err);

/* Creates a producer: idempotent, acks=all, then the service's tuning
 * (NULL or key, value pairs, NULL-terminated), then the base config's
 * OB_KAFKA_* settings, which win. */
ob_rc_t ob_producer_new(const ob_base_config_t *cfg, const char *const *tuning,
                        ob_kafka_metrics_t *metrics, ob_producer_t **out,
                        ob_err_t *err) OB_MUSTCHECK;

/* The producer settings ob_producer_new uses, as a librdkafka conf: the
 * defaults (idempotent, acks=all, linger.ms 2, lz4), then tuning, then the
 * OB_KAFKA_* settings. Caller owns *out (rd_kafka_new takes it on success).
 * bench/limits produces with exactly the services' settings through it. */
ob_rc_t ob_producer_conf_new(const ob_base_config_t *cfg, const char *const *tuning,
                             rd_kafka_conf_t **out, ob_err_t *err) OB_MUSTCHECK;

/* Producer tunings the services pass to ob_producer_new (NULL-terminated
 * key, value pairs): immediate (linger.ms 0) where a client waits for each
 * acknowledgement, bulk (linger.ms 5) where messages come in groups. */
extern const char *const ob_kafka_tuning_immediate[];
extern const char *const ob_kafka_tuning_bulk[];

/* Queues one message; cb (may be NULL) is called exactly once with the
 * outcome. Returns OB_EAGAIN when the local queue stays full for queue_wait_ms,
 * OB_ERR for other immediate failures (cb is then not called). Thread-safe. */
ob_rc_t ob_producer_send(ob_producer_t *p, const char *topic, const char *key, const void *value,
                         size_t len, int queue_wait_ms, ob_delivery_fn cb, void *opaque,
                         ob_err_t *err) OB_MUSTCHECK;

/* Sends and blocks until the broker acknowledged or failed the message, or
 * timeout_ms passed (OB_ETIMEOUT: the message may still be delivered later). */
ob_rc_t ob_producer_send_sync(ob_producer_t *p, const char *topic, const char *key,
                              const void *value, size_t len, int timeout_ms,
                              ob_err_t *err) OB_MUSTCHECK;

/* A group of messages whose acknowledgements are awaited together. */
typedef struct ob_produce_batch ob_produce_batch_t;

/* Starts an empty batch; it is freed by ob_produce_batch_wait. */
ob_produce_batch_t *ob_produce_batch_new(void);

/* Queues one message of the batch (see ob_producer_send for the codes). */
ob_rc_t ob_produce_batch_add(ob_producer_t *p, ob_produce_batch_t *b, const char *topic,
                             const char *key, const void *value, size_t len, int queue_wait_ms,
                             ob_err_t *err) OB_MUSTCHECK;

/* ob_produce_batch_add to an explicit partition of topic, or with
 * RD_KAFKA_PARTITION_UA to the one its key picks. */
ob_rc_t ob_produce_batch_add_to(ob_producer_t *p, ob_produce_batch_t *b, const char *topic,
                                int32_t partition, const char *key, const void *value, size_t len,
                                int queue_wait_ms, ob_err_t *err) OB_MUSTCHECK;

/* True while a message of the batch has no delivery report yet; does not
 * block (a batch no longer pending is waited for at once). */
bool ob_produce_batch_pending(ob_produce_batch_t *b);

/* Blocks until every message of the batch was acknowledged (OB_OK), one
 * failed (OB_ERR) or timeout_ms passed (OB_ETIMEOUT), then releases the batch
 * (late delivery reports are absorbed safely). */
ob_rc_t ob_produce_batch_wait(ob_produce_batch_t *b, int timeout_ms, ob_err_t *err) OB_MUSTCHECK;

/* Waits until every queued message was delivered or failed; returns the
 * number still outstanding after timeout_ms. */
int ob_producer_flush(ob_producer_t *p, int timeout_ms);

/* Messages that failed delivery since start (changes the exit code). */
long ob_producer_failures(const ob_producer_t *p);

/* True after a fatal idempotence error: the service must drain. */
bool ob_producer_fatal(const ob_producer_t *p);

/* True from the moment librdkafka reports that it lost every broker
 * (RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) until an ob_producer_reachable that
 * began after that succeeds. Any thread. */
bool ob_producer_brokers_down(const ob_producer_t *p);

/* True when the cluster answers the producer's metadata request within
 * timeout_ms; a success also clears
 * ob_producer_brokers_down. Blocks up to timeout_ms. Any thread. */
bool ob_producer_reachable(ob_producer_t *p, int timeout_ms);

/* Flushes for up to timeout_ms, stops the poll thread and frees; NULL-safe.
 * Returns the number of messages that were never delivered. */
int ob_producer_free(ob_producer_t *p, int timeout_ms);

/* Rebalance notification: assigned is true for an assignment, false for a
 * revocation; parts lists the partitions concerned. */
typedef void (*ob_rebalance_fn)(void *opaque, bool assigned,
                                const rd_kafka_topic_partition_list_t *parts);

/* Creates a consumer in group_id subscribed to topics (NULL-terminated).
 * offset_reset is "earliest" or "latest". on_rebalance may be NULL. What it
 * consumes, and its lag, are reported to metrics (may be NULL). */
ob_rc_t ob_consumer_new(const ob_base_config_t *cfg, const char *group_id,
                        const char *const *topics, const char *offset_reset,
                        ob_rebalance_fn on_rebalance, void *opaque, ob_kafka_metrics_t *metrics,
                        rd_kafka_t **out, ob_err_t *err) OB_MUSTCHECK;

/* The consumer settings ob_consumer_new uses (group, manual offset store,
 * auto commit, offset_reset, timeouts, then OB_KAFKA_*) as a librdkafka conf,
 * without callbacks. Caller owns *out. */
ob_rc_t ob_consumer_conf_new(const ob_base_config_t *cfg, const char *group_id,
                             const char *offset_reset, rd_kafka_conf_t **out,
                             ob_err_t *err) OB_MUSTCHECK;

/* Marks msg as processed: its offset will be committed. */
void ob_consumer_store(rd_kafka_t *rk, const rd_kafka_message_t *msg);

/* Commits stored offsets synchronously, leaves the group and destroys. */
void ob_consumer_close(rd_kafka_t *rk);

/* Creates each topic that does not exist yet with the configured partition
 * count (replication factor -1: the broker's default). */
ob_rc_t ob_kafka_ensure_topics(const ob_base_config_t *cfg, const char *const *topics,
                               ob_err_t *err) OB_MUSTCHECK;

/* Renders a registry's Kafka metrics as Prometheus text; caller frees:
 * outbound_kafka_messages_produced_total{topic} and
 * outbound_kafka_produce_failures_total{topic} (from delivery reports),
 * outbound_kafka_messages_consumed_total{topic} (messages polled) and
 * outbound_kafka_consumer_lag{topic} (from the statistics every
 * statistics.interval.ms, 5000 by default, of the consumers). Thread-safe. */
char *ob_kafka_metrics_render(ob_kafka_metrics_t *m);

/* Sets outbound_kafka_consumer_lag from one librdkafka statistics JSON
 * document (the consumers' stats callback calls it): per topic, the sum of
 * consumer_lag over its partitions, -1 skipped. Bad JSON changes nothing. */
void ob_kafka_record_stats(ob_kafka_metrics_t *m, const char *json, size_t len);

#endif
