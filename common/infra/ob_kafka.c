/*
 * librdkafka wrappers. The producer's poll thread is the only caller of
 * rd_kafka_poll, so delivery callbacks never run on request threads; the
 * synchronous send waits on a per-call condition variable that the delivery
 * callback signals. Per-topic counters and the consumer lag (from librdkafka's
 * statistics) go to the registry the service passes when it creates a handle.
 */
#include "ob_kafka.h"
#include "ob_log.h"
#include "ob_metrics.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ob_producer {
    rd_kafka_t *rk;              /* librdkafka producer */
    ob_kafka_metrics_t *metrics; /* where deliveries are counted, or NULL */
    pthread_t poller;            /* serves delivery reports */
    int stop;                    /* tells the poller to exit (atomic) */
    long failures;               /* failed deliveries (atomic) */
    int fatal;                   /* a fatal error was raised (atomic) */
    int brokers_down;            /* librdkafka lost every broker; cleared by
                                  * ob_producer_reachable (atomic) */
    unsigned down_seq;           /* counts the losses, so that a check that began before
                                  * one does not clear it (atomic) */
};

typedef struct {
    ob_delivery_fn cb; /* caller's callback */
    void *opaque;      /* caller's opaque */
} delivery_t;

struct ob_produce_batch {
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled when pending reaches zero */
    int refs;           /* the waiter plus one per message in flight */
    int pending;        /* messages without a delivery report yet */
    int failed;         /* messages that failed */
    char err[256];      /* first failure reason */
};
/* Topics are a handful per service; the cap only bounds a misconfiguration. */
#define TOPIC_CAP 32

enum { K_PRODUCED, K_FAILURES, K_CONSUMED, K_LAG, K_COUNT };

struct ob_kafka_metrics {
    /* outbound_kafka_messages_produced_total{topic},
     * outbound_kafka_produce_failures_total{topic},
     * outbound_kafka_messages_consumed_total{topic},
     * outbound_kafka_consumer_lag{topic} */
    ob_metric_family_t *f[K_COUNT];
};

ob_kafka_metrics_t *ob_kafka_metrics_new(void)
{
    ob_kafka_metrics_t *m = ob_xcalloc(1, sizeof(*m));
    m->f[K_PRODUCED] = ob_metric_family_new(
        "outbound_kafka_messages_produced_total", "Messages the broker acknowledged, by topic",
        OB_METRIC_COUNTER, NULL, 0, TOPIC_CAP, "topic=\"other\"");
    m->f[K_FAILURES] = ob_metric_family_new(
        "outbound_kafka_produce_failures_total",
        "Messages that failed delivery or were refused by the producer, by topic",
        OB_METRIC_COUNTER, NULL, 0, TOPIC_CAP, "topic=\"other\"");
    m->f[K_CONSUMED] = ob_metric_family_new(
        "outbound_kafka_messages_consumed_total", "Messages handed to the service, by topic",
        OB_METRIC_COUNTER, NULL, 0, TOPIC_CAP, "topic=\"other\"");
    m->f[K_LAG] = ob_metric_family_new(
        "outbound_kafka_consumer_lag",
        "Messages behind the end of the log, summed over this process's assigned partitions",
        OB_METRIC_GAUGE, NULL, 0, TOPIC_CAP, "topic=\"other\"");
    return m;
}

void ob_kafka_metrics_free(ob_kafka_metrics_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < K_COUNT; i++)
        ob_metric_family_free(m->f[i]);
    free(m);
}

/* Adds v to family which of m for topic (set, for the lag gauge); nothing
 * without a registry. */
static void count_topic(ob_kafka_metrics_t *m, int which, const char *topic, int64_t v)
{
    if (!m)
        return;
    char labels[300];
    snprintf(labels, sizeof(labels), "topic=\"%s\"", topic); /* Kafka names need no escaping */
    if (which == K_LAG)
        ob_metric_family_set(m->f[which], labels, v);
    else
        ob_metric_family_add(m->f[which], labels, v);
}

char *ob_kafka_metrics_render(ob_kafka_metrics_t *m)
{
    char *parts[K_COUNT];
    for (int i = 0; i < K_COUNT; i++)
        parts[i] = ob_metric_family_render(m->f[i]);
    char *text = ob_xasprintf("%s%s%s%s", parts[0], parts[1], parts[2], parts[3]);
    for (int i = 0; i < K_COUNT; i++)
        free(parts[i]);
    return text;
}

static ob_rc_t conf_from_base(const ob_base_config_t *cfg, rd_kafka_conf_t *conf, ob_err_t *err)
{
    char errstr[512];
    for (char **kv = cfg->kafka_kv; kv && kv[0]; kv += 2) {
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            ob_err_set(err, "kafka setting %s: %s", kv[0], errstr);
            return OB_EINVAL;
        }
    }
    if (rd_kafka_conf_set(conf, "client.id", cfg->instance_id, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        ob_err_set(err, "kafka client.id: %s", errstr);
        return OB_EINVAL;
    }
    return OB_OK;
}

static ob_rc_t conf_set_all(rd_kafka_conf_t *conf, const char *const *kv, ob_err_t *err)
{
    char errstr[512];
    for (; kv[0]; kv += 2) {
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            ob_err_set(err, "kafka setting %s: %s", kv[0], errstr);
            return OB_EINVAL;
        }
    }
    return OB_OK;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *conf_opaque)
{
    ob_producer_t *p = conf_opaque;
    delivery_t *d = msg->_private;
    (void)rk;
    if (msg->err)
        __atomic_add_fetch(&p->failures, 1, __ATOMIC_RELAXED);
    count_topic(p->metrics, msg->err ? K_FAILURES : K_PRODUCED, rd_kafka_topic_name(msg->rkt), 1);
    if (d) {
        if (d->cb)
            d->cb(d->opaque, msg->err ? OB_ERR : OB_OK,
                  msg->err ? rd_kafka_err2str(msg->err) : NULL);
        free(d);
    }
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    ob_producer_t *p = opaque;
    char fatal[512];
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        __atomic_store_n(&p->fatal, 1, __ATOMIC_RELAXED);
        OB_ERROR("kafka", "fatal producer error: %s", fatal);
        return;
    }
    /* The connection to the last broker closed (a broker stopping closes
     * it at once): known now, not at the next metadata check. */
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        __atomic_add_fetch(&p->down_seq, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->brokers_down, 1, __ATOMIC_SEQ_CST);
    }
    /* Transport errors are retried by librdkafka; log them once each. */
    OB_WARN("kafka", "kafka: %s: %s", rd_kafka_err2name(code), reason);
}

static void *poll_loop(void *arg)
{
    ob_producer_t *p = arg;
    while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
        rd_kafka_poll(p->rk, 50);
    return NULL;
}

const char *const ob_kafka_tuning_immediate[] = {"linger.ms", "0", NULL};
const char *const ob_kafka_tuning_bulk[] = {"linger.ms", "5", NULL};

ob_rc_t ob_producer_conf_new(const ob_base_config_t *cfg, const char *const *tuning,
                             rd_kafka_conf_t **out, ob_err_t *err)
{
    static const char *const defaults[] = {
        "enable.idempotence",
        "true",
        "acks",
        "all",
        "linger.ms",
        "2",
        "message.timeout.ms",
        "30000",
        "compression.type",
        "lz4",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    /* Defaults, then the service's tuning, then the operator's OB_KAFKA_*. */
    if (conf_set_all(conf, defaults, err) != OB_OK ||
        (tuning && conf_set_all(conf, tuning, err) != OB_OK) ||
        conf_from_base(cfg, conf, err) != OB_OK) {
        rd_kafka_conf_destroy(conf);
        return OB_ERR;
    }
    *out = conf;
    return OB_OK;
}

ob_rc_t ob_producer_new(const ob_base_config_t *cfg, const char *const *tuning,
                        ob_kafka_metrics_t *metrics, ob_producer_t **out, ob_err_t *err)
{
    char errstr[512];
    ob_producer_t *p = ob_xcalloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = NULL;

    p->metrics = metrics;
    if (ob_producer_conf_new(cfg, tuning, &conf, err) != OB_OK)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        ob_err_set(err, "kafka producer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* rd_kafka_new took it */
    if (pthread_create(&p->poller, NULL, poll_loop, p) != 0) {
        ob_err_set(err, "cannot start the producer poll thread");
        rd_kafka_destroy(p->rk);
        goto fail;
    }
    *out = p;
    return OB_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(p);
    return OB_ERR;
}

/* ob_producer_send to an explicit partition (RD_KAFKA_PARTITION_UA: by key). */
static ob_rc_t send_to(ob_producer_t *p, const char *topic, int32_t partition, const char *key,
                       const void *value, size_t len, int queue_wait_ms, ob_delivery_fn cb,
                       void *opaque, ob_err_t *err)
{
    delivery_t *d = ob_xmalloc(sizeof(*d));
    int64_t deadline = ob_mono_ms() + queue_wait_ms;
    d->cb = cb;
    d->opaque = opaque;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return OB_OK;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            free(d);
            count_topic(p->metrics, K_FAILURES, topic, 1);
            ob_err_set(err, "kafka produce to %s: %s", topic, rd_kafka_err2str(e));
            return OB_ERR;
        }
        /* Back-pressure: the poll thread drains the queue; wait a little. */
        if (ob_mono_ms() >= deadline) {
            free(d);
            ob_err_set(err, "kafka producer queue is full");
            return OB_EAGAIN;
        }
        usleep(2000);
    }
}

ob_rc_t ob_producer_send(ob_producer_t *p, const char *topic, const char *key, const void *value,
                         size_t len, int queue_wait_ms, ob_delivery_fn cb, void *opaque,
                         ob_err_t *err)
{
    return send_to(p, topic, RD_KAFKA_PARTITION_UA, key, value, len, queue_wait_ms, cb, opaque,
                   err);
}

ob_produce_batch_t *ob_produce_batch_new(void)
{
    ob_produce_batch_t *b = ob_xcalloc(1, sizeof(*b));
    pthread_condattr_t ca;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->refs = 1;
    return b;
}

/* Drops one reference; the last one frees the batch. Called with b->mu held. */
static void batch_unref_locked(ob_produce_batch_t *b)
{
    if (--b->refs > 0) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

static void on_batch_delivery(void *opaque, ob_rc_t rc, const char *errmsg)
{
    ob_produce_batch_t *b = opaque;
    pthread_mutex_lock(&b->mu);
    if (rc != OB_OK && b->failed++ == 0)
        snprintf(b->err, sizeof(b->err), "%s", errmsg ? errmsg : "delivery failed");
    if (--b->pending == 0)
        pthread_cond_signal(&b->cv);
    batch_unref_locked(b);
}

ob_rc_t ob_produce_batch_add(ob_producer_t *p, ob_produce_batch_t *b, const char *topic,
                             const char *key, const void *value, size_t len, int queue_wait_ms,
                             ob_err_t *err)
{
    return ob_produce_batch_add_to(p, b, topic, RD_KAFKA_PARTITION_UA, key, value, len,
                                   queue_wait_ms, err);
}

ob_rc_t ob_produce_batch_add_to(ob_producer_t *p, ob_produce_batch_t *b, const char *topic,
                                int32_t partition, const char *key, const void *value, size_t len,
                                int queue_wait_ms, ob_err_t *err)
{
    pthread_mutex_lock(&b->mu);
    b->refs++;
    b->pending++;
    pthread_mutex_unlock(&b->mu);
    ob_rc_t rc =
        send_to(p, topic, partition, key, value, len, queue_wait_ms, on_batch_delivery, b, err);
    if (rc != OB_OK) {
        pthread_mutex_lock(&b->mu);
        b->pending--;
        batch_unref_locked(b);
    }
    return rc;
}

bool ob_produce_batch_pending(ob_produce_batch_t *b)
{
    pthread_mutex_lock(&b->mu);
    bool pending = b->pending > 0;
    pthread_mutex_unlock(&b->mu);
    return pending;
}

ob_rc_t ob_produce_batch_wait(ob_produce_batch_t *b, int timeout_ms, ob_err_t *err)
{
    struct timespec ts;
    ob_rc_t rc = OB_OK;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    while (b->pending > 0) {
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) != 0 && b->pending > 0) {
            ob_err_set(err, "kafka did not acknowledge %d message(s) within %d ms", b->pending,
                       timeout_ms);
            rc = OB_ETIMEOUT;
            break;
        }
    }
    if (rc == OB_OK && b->failed) {
        ob_err_set(err, "kafka delivery failed: %s", b->err);
        rc = OB_ERR;
    }
    batch_unref_locked(b);
    return rc;
}

ob_rc_t ob_producer_send_sync(ob_producer_t *p, const char *topic, const char *key,
                              const void *value, size_t len, int timeout_ms, ob_err_t *err)
{
    ob_produce_batch_t *b = ob_produce_batch_new();
    ob_rc_t rc = ob_produce_batch_add(p, b, topic, key, value, len, timeout_ms / 2, err);
    ob_err_t wait_err = {{0}};
    ob_rc_t wrc = ob_produce_batch_wait(b, timeout_ms, &wait_err);
    if (rc != OB_OK)
        return rc;
    if (wrc != OB_OK)
        ob_err_set(err, "%s", wait_err.msg);
    return wrc;
}

int ob_producer_flush(ob_producer_t *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

long ob_producer_failures(const ob_producer_t *p)
{
    return __atomic_load_n(&p->failures, __ATOMIC_RELAXED);
}

bool ob_producer_fatal(const ob_producer_t *p)
{
    return __atomic_load_n(&p->fatal, __ATOMIC_RELAXED) != 0;
}

int ob_producer_free(ob_producer_t *p, int timeout_ms)
{
    if (!p)
        return 0;
    int left = ob_producer_flush(p, timeout_ms);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
    pthread_join(p->poller, NULL);
    if (left > 0)
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(p->rk, 0); /* serve the purge's delivery reports */
    rd_kafka_destroy(p->rk);
    free(p);
    return left;
}

/* A consumer's conf opaque: the rebalance notification and the registry the
 * statistics callback reports to. */
typedef struct {
    ob_rebalance_fn fn;          /* caller's notification */
    void *opaque;                /* caller's opaque */
    ob_kafka_metrics_t *metrics; /* or NULL */
} rebalance_t;

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rebalance_t *rb = opaque;
    bool assigned = e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (!assigned && rb->fn)
        rb->fn(rb->opaque, false, parts); /* stop using them before they go */
    if (assigned)
        rd_kafka_assign(rk, parts);
    else
        rd_kafka_assign(rk, NULL);
    if (assigned && rb->fn)
        rb->fn(rb->opaque, true, parts);
}

/* Counts each message as librdkafka hands it to the service (whichever poll
 * call the service uses); error events are not messages. */
static rd_kafka_resp_err_t on_consume(rd_kafka_t *rk, rd_kafka_message_t *msg, void *ic_opaque)
{
    (void)rk;
    if (!msg->err && msg->rkt)
        count_topic(ic_opaque, K_CONSUMED, rd_kafka_topic_name(msg->rkt), 1);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *ic_opaque,
                                  char *errstr, size_t errstr_size)
{
    (void)conf;
    (void)errstr;
    (void)errstr_size;
    return rd_kafka_interceptor_add_on_consume(rk, "ob_metrics", on_consume, ic_opaque);
}

/* -1 means unknown (not assigned, or no offset yet) and is skipped, so a
 * topic whose partitions were all revoked reads 0 here. */
void ob_kafka_record_stats(ob_kafka_metrics_t *m, const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    const cJSON *topic, *part;
    cJSON_ArrayForEach(topic, topics)
    {
        int64_t sum = 0;
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(topic, "partitions");
        cJSON_ArrayForEach(part, parts)
        {
            const cJSON *lag = cJSON_GetObjectItemCaseSensitive(part, "consumer_lag");
            if (cJSON_IsNumber(lag) && lag->valuedouble >= 0)
                sum += (int64_t)lag->valuedouble;
        }
        if (topic->string)
            count_topic(m, K_LAG, topic->string, sum);
    }
    cJSON_Delete(root);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    rebalance_t *rb = opaque;
    (void)rk;
    ob_kafka_record_stats(rb->metrics, json, json_len);
    return 0; /* librdkafka frees json */
}

ob_rc_t ob_consumer_conf_new(const ob_base_config_t *cfg, const char *group_id,
                             const char *offset_reset, rd_kafka_conf_t **out, ob_err_t *err)
{
    const char *const settings[] = {
        "group.id",
        group_id,
        "enable.auto.offset.store",
        "false",
        "enable.auto.commit",
        "true",
        "auto.commit.interval.ms",
        "1000",
        "auto.offset.reset",
        offset_reset,
        "enable.partition.eof",
        "false",
        "session.timeout.ms",
        "10000",
        "heartbeat.interval.ms",
        "1000",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    /* Defaults the operator's OB_KAFKA_* override. Statistics feed the lag
     * gauge. Prefetch is bounded in bytes: with librdkafka's defaults (64 MB
     * queued, fetches of up to 50 MB) a scheduler recording a backlog of
     * 200,000 calls peaked at 109 MB of memory, and at 8 MB queued and
     * fetches of 2 MB (256 KB a partition) at 40 MB, while librdkafka alone
     * consumed 1.8 instead of 2.1 million messages/s (make bench, issue 8).
     * Not in messages: librdkafka 2.0 waits before fetching again once
     * queued.min.messages is reached, and at 1,000 a partition it consumed
     * 3,000 messages/s. */
    static const char *const defaults[] = {
        "statistics.interval.ms",
        "5000",
        "queued.max.messages.kbytes",
        "8192",
        "fetch.max.bytes",
        "2097152",
        "max.partition.fetch.bytes",
        "262144",
        NULL,
    };
    if (conf_set_all(conf, defaults, err) != OB_OK || conf_from_base(cfg, conf, err) != OB_OK ||
        conf_set_all(conf, settings, err) != OB_OK) {
        rd_kafka_conf_destroy(conf);
        return OB_ERR;
    }
    *out = conf;
    return OB_OK;
}

ob_rc_t ob_consumer_new(const ob_base_config_t *cfg, const char *group_id,
                        const char *const *topics, const char *offset_reset, ob_rebalance_fn fn,
                        void *opaque, ob_kafka_metrics_t *metrics, rd_kafka_t **out, ob_err_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_t *rk = NULL;
    rebalance_t *rb = ob_xcalloc(1, sizeof(*rb));

    rb->fn = fn;
    rb->opaque = opaque;
    rb->metrics = metrics;
    if (ob_consumer_conf_new(cfg, group_id, offset_reset, &conf, err) != OB_OK)
        goto fail;
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    if (rd_kafka_conf_interceptor_add_on_new(conf, "ob_metrics", on_new, metrics)) {
        ob_err_set(err, "kafka: cannot add the metrics interceptor");
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, rb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        ob_err_set(err, "kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(rk);
    subs = rd_kafka_topic_partition_list_new(4);
    for (const char *const *t = topics; *t; t++) {
        rd_kafka_topic_partition_list_add(subs, *t, RD_KAFKA_PARTITION_UA);
        /* Exported from the start: nothing consumed yet and, with no
         * partition assigned yet, no lag of this process's. */
        count_topic(metrics, K_CONSUMED, *t, 0);
        count_topic(metrics, K_LAG, *t, 0);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        ob_err_set(err, "kafka subscribe: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        rk = NULL;
        goto fail;
    }
    *out = rk;
    /* rb lives as long as the handle: freed in ob_consumer_close. */
    return OB_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(rb);
    return OB_ERR;
}

void ob_consumer_store(rd_kafka_t *rk, const rd_kafka_message_t *msg)
{
    rd_kafka_resp_err_t e = rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset);
    if (e)
        OB_WARN("kafka", "offset store failed (partition revoked?): %s", rd_kafka_err2str(e));
    (void)rk;
}

void ob_consumer_close(rd_kafka_t *rk)
{
    if (!rk)
        return;
    rebalance_t *rb = rd_kafka_opaque(rk);
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        OB_WARN("kafka", "final offset commit: %s", rd_kafka_err2str(e));
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(rb);
}

/* True when the cluster answers a metadata request within timeout_ms. */
static bool kafka_reachable(rd_kafka_t *rk, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

bool ob_producer_reachable(ob_producer_t *p, int timeout_ms)
{
    unsigned seq = __atomic_load_n(&p->down_seq, __ATOMIC_SEQ_CST);
    if (!kafka_reachable(p->rk, timeout_ms))
        return false;
    /* A loss reported while the check ran is not undone by its answer,
     * which the broker may have sent just before it went. */
    if (__atomic_load_n(&p->down_seq, __ATOMIC_SEQ_CST) == seq)
        __atomic_store_n(&p->brokers_down, 0, __ATOMIC_SEQ_CST);
    return true;
}

bool ob_producer_brokers_down(const ob_producer_t *p)
{
    return __atomic_load_n(&p->brokers_down, __ATOMIC_RELAXED) != 0;
}

ob_rc_t ob_kafka_ensure_topics(const ob_base_config_t *cfg, const char *const *topics,
                               ob_err_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_NewTopic_t *nt[8] = {0};
    size_t n = 0;
    rd_kafka_event_t *ev = NULL;
    ob_rc_t rc = OB_ERR;

    if (conf_from_base(cfg, conf, err) != OB_OK)
        goto out;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        ob_err_set(err, "kafka admin: %s", errstr);
        goto out;
    }
    conf = NULL;
    for (; topics[n] && n < OB_COUNTOF(nt); n++) {
        nt[n] = rd_kafka_NewTopic_new(topics[n], (int)cfg->partitions, -1, errstr, sizeof(errstr));
        if (!nt[n]) {
            ob_err_set(err, "topic %s: %s", topics[n], errstr);
            goto out;
        }
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) {
        ob_err_set(err, "kafka did not answer CreateTopics within 30 s");
        rc = OB_EDEPENDENCY;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        ob_err_set(err, "CreateTopics: %s", rd_kafka_event_error_string(ev));
        rc = OB_EDEPENDENCY;
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            ob_err_set(err, "creating topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                       rd_kafka_topic_result_error_string(tr[i]));
            rc = OB_EDEPENDENCY;
            goto out;
        }
    }
    rc = OB_OK;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rc;
}
