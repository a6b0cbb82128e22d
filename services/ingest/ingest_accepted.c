/*
 * The reader behind "accepted means visible" (ingest_accepted.h): one
 * thread, one librdkafka consumer assigned every partition of
 * call-requests, a hash of the calls read by call_id, and per partition a
 * list in offset order so that recorded calls leave from its head.
 */
#include "ingest_accepted.h"
#include "ob_kafka.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One call read from the topic. */
typedef struct entry {
    struct entry *next;  /* the next in its partition, by offset */
    int64_t offset;      /* its message's offset */
    int64_t accepted_ms; /* when ingest accepted it */
    char call_id[37];    /* the hash key */
    char *msg;           /* the call-request message as produced (malloc'd) */
    size_t bytes;        /* what it costs, counted against max_bytes */
} entry_t;

/* One partition's calls held, oldest first, and how far it was read. */
typedef struct {
    entry_t *head; /* oldest held */
    entry_t *tail; /* newest held */
    int64_t next;  /* the next offset to read (all below were read) */
} part_t;

struct ingest_accepted {
    rd_kafka_t *rk;          /* consumer: group.id is the scheduler's, never joined */
    rd_kafka_queue_t *queue; /* its consumer queue */
    char *topic;             /* call-requests, full name */
    int nparts;              /* the topic's partitions, set once before started */
    part_t *parts;           /* [nparts] */
    entry_t **slots;         /* open addressing by call_id, linear probing */
    size_t nslots;           /* power of two */
    size_t count;            /* entries held */
    size_t bytes;            /* their cost */
    size_t max_bytes;        /* above this the thread stops reading */
    bool started;            /* assigned: parts[].next are meaningful */
    bool stop;               /* asks the thread to end */
    pthread_mutex_t mu;      /* guards everything above but rk and topic */
    pthread_cond_t moved;    /* broadcast when parts[].next advance */
    pthread_t thread;        /* the reader */
    ob_metric_t *lag, *held; /* gauges kept by the thread */
};

static size_t hash(const char *call_id)
{
    size_t h = 1469598103934665603ULL;
    for (const char *p = call_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static entry_t **find_slot(ingest_accepted_t *a, const char *call_id)
{
    size_t mask = a->nslots - 1;
    for (size_t i = hash(call_id) & mask;; i = (i + 1) & mask)
        if (!a->slots[i] || strcmp(a->slots[i]->call_id, call_id) == 0)
            return &a->slots[i];
}

static void grow(ingest_accepted_t *a)
{
    entry_t **old = a->slots;
    size_t n = a->nslots;
    a->nslots = n ? n * 2 : 1024;
    a->slots = ob_xcalloc(a->nslots, sizeof(*a->slots));
    for (size_t i = 0; i < n; i++)
        if (old[i])
            *find_slot(a, old[i]->call_id) = old[i];
    free(old);
}

/* Removes e from the hash (backward-shift deletion keeps probes unbroken). */
static void unhash(ingest_accepted_t *a, const entry_t *e)
{
    size_t mask = a->nslots - 1;
    size_t i = (size_t)(find_slot(a, e->call_id) - a->slots);
    if (a->slots[i] != e)
        return; /* a later message with the same call_id took its slot */
    a->slots[i] = NULL;
    for (size_t j = (i + 1) & mask; a->slots[j]; j = (j + 1) & mask) {
        size_t home = hash(a->slots[j]->call_id) & mask;
        /* Move j back into the hole unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            a->slots[i] = a->slots[j];
            a->slots[j] = NULL;
            i = j;
        }
    }
}

/* The members the index needs, read straight from the text ingest's
 * encoder writes (ob_call_request_encode: {"v":1,"kind":"queue","call_id":
 * "...", ... ,"accepted_at":N}), without parsing the message: kind and
 * call_id lead it, accepted_at ends it. Returns 1 for a call, 0 for another
 * kind, -1 when the text is not in that shape (then it is parsed). */
static int read_fast(const char *p, size_t len, char call_id[OB_UUID_STRLEN + 1], int64_t *at)
{
    static const char head[] = "{\"v\":1,\"kind\":\"", call[] = "queue\",\"call_id\":\"",
                      tail[] = ",\"accepted_at\":";
    size_t hl = sizeof(head) - 1, cl = sizeof(call) - 1, tl = sizeof(tail) - 1;
    if (len < hl + cl + OB_UUID_STRLEN + tl + 3 || memcmp(p, head, hl) != 0)
        return -1;
    if (memcmp(p + hl, call, cl) != 0)
        return strncmp(p + hl, "queue\"", 6) == 0 ? -1 : 0;
    const char *id = p + hl + cl;
    if (id[OB_UUID_STRLEN] != '"')
        return -1;
    memcpy(call_id, id, OB_UUID_STRLEN);
    call_id[OB_UUID_STRLEN] = '\0';
    /* The number before the final '}', after the last member's name: a
     * nested "accepted_at" (in call_parameters) never ends the text. */
    const char *end = p + len - 1, *d = end;
    if (*end != '}')
        return -1;
    while (d > p && d[-1] >= '0' && d[-1] <= '9')
        d--;
    if (d == end || (size_t)(d - p) < tl || memcmp(d - tl, tail, tl) != 0 ||
        !ob_uuid_valid(call_id))
        return -1;
    *at = strtoll(d, NULL, 10);
    return 1;
}

/* The same members by parsing the message, for any other shape. */
static int read_parsed(const char *p, size_t len, char call_id[OB_UUID_STRLEN + 1], int64_t *at)
{
    cJSON *root = cJSON_ParseWithLength(p, len);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "call_id");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(root, "accepted_at");
    int rc = 0;
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "queue") == 0 && cJSON_IsString(id) &&
        strlen(id->valuestring) == OB_UUID_STRLEN && cJSON_IsNumber(when)) {
        memcpy(call_id, id->valuestring, OB_UUID_STRLEN + 1);
        *at = (int64_t)when->valuedouble;
        rc = 1;
    }
    cJSON_Delete(root);
    return rc;
}

/* The entry for a call-request message, or NULL for the other kinds
 * (cancel, pause, resume), which only move the read position. Outside the
 * lock, and only what the index needs: the whole message is validated when
 * a lookup finds it (a full decode of every message took four times the
 * CPU, and slowed a concurrent upload under AddressSanitizer past its
 * client's patience). */
bool ingest_accepted_fields(const char *msg, size_t len, char call_id[OB_UUID_STRLEN + 1],
                            int64_t *accepted_ms)
{
    int rc = read_fast(msg, len, call_id, accepted_ms);
    if (rc < 0)
        rc = read_parsed(msg, len, call_id, accepted_ms);
    return rc == 1;
}

static entry_t *entry_of(const rd_kafka_message_t *m)
{
    char call_id[OB_UUID_STRLEN + 1];
    int64_t at = 0;
    if (m->err || !ingest_accepted_fields(m->payload, m->len, call_id, &at))
        return NULL;
    entry_t *e = ob_xcalloc(1, sizeof(*e));
    e->offset = m->offset;
    e->accepted_ms = at;
    memcpy(e->call_id, call_id, sizeof(e->call_id));
    e->msg = ob_xstrndup(m->payload, m->len);
    e->bytes = sizeof(*e) + m->len + 1 + 2 * sizeof(entry_t *);
    return e;
}

/* Holds e (may be NULL) read at offset of partition p (under mu). */
static void hold(ingest_accepted_t *a, int32_t partition, int64_t offset, entry_t *e)
{
    part_t *p = &a->parts[partition];
    p->next = offset + 1;
    if (!e)
        return;
    if (2 * (a->count + 1) > a->nslots)
        grow(a);
    /* A call produced twice (a retried request) is found as its latest
     * message; the older entry leaves with its partition's head in time. */
    *find_slot(a, e->call_id) = e;
    if (p->tail)
        p->tail->next = e;
    else
        p->head = e;
    p->tail = e;
    a->count++;
    a->bytes += e->bytes;
}

/* Drops what the scheduler recorded: every entry below its committed
 * offset (under mu), and updates the gauges. */
static void forget_recorded(ingest_accepted_t *a, const rd_kafka_topic_partition_list_t *done)
{
    int64_t oldest = 0;
    for (int i = 0; i < done->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &done->elems[i];
        if (t->err || t->offset < 0 || t->partition < 0 || t->partition >= a->nparts)
            continue;
        part_t *p = &a->parts[t->partition];
        while (p->head && p->head->offset < t->offset) {
            entry_t *e = p->head;
            p->head = e->next;
            if (!p->head)
                p->tail = NULL;
            unhash(a, e);
            a->count--;
            a->bytes -= e->bytes;
            free(e->msg);
            free(e);
        }
    }
    for (int i = 0; i < a->nparts; i++)
        if (a->parts[i].head && (!oldest || a->parts[i].head->accepted_ms < oldest))
            oldest = a->parts[i].head->accepted_ms;
    ob_metric_set(a->held, (int64_t)a->count);
    ob_metric_set(a->lag, oldest ? (ob_now_ms() - oldest + 999) / 1000 : 0);
}

/* The scheduler group's committed offsets of every partition; caller
 * destroys. NULL when the broker did not answer. */
static rd_kafka_topic_partition_list_t *committed(ingest_accepted_t *a, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(a->nparts);
    for (int i = 0; i < a->nparts; i++)
        rd_kafka_topic_partition_list_add(l, a->topic, i);
    if (rd_kafka_committed(a->rk, l, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(l);
        return NULL;
    }
    return l;
}

/* The number of partitions of topic, or 0. */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    int n = 0;
    if (t && rd_kafka_metadata(rk, 0, t, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
    return n;
}

/* Learns the partitions (a topic just created may not be known to the
 * broker's metadata yet), then assigns every one from the first call the
 * scheduler has not recorded (its committed offset; the start of the log
 * without one). Only this thread writes nparts and parts, before started. */
static bool assign(ingest_accepted_t *a)
{
    if (!a->nparts) {
        int n = partition_count(a->rk, a->topic);
        if (n <= 0)
            return false;
        a->parts = ob_xcalloc((size_t)n, sizeof(*a->parts));
        a->nparts = n;
    }
    rd_kafka_topic_partition_list_t *l = committed(a, 5000);
    if (!l)
        return false;
    for (int i = 0; i < l->cnt; i++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(a->rk, a->topic, l->elems[i].partition, &lo, &hi,
                                             5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_topic_partition_list_destroy(l);
            return false;
        }
        if (l->elems[i].offset < lo)
            l->elems[i].offset = lo;
        a->parts[l->elems[i].partition].next = l->elems[i].offset;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(a->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void *run(void *arg)
{
    ingest_accepted_t *a = arg;
    rd_kafka_message_t *batch[1024];
    entry_t *entries[1024];
    int64_t next_prune = 0;
    int tries = 0;
    while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
        if (!a->started) {
            bool ok = assign(a);
            pthread_mutex_lock(&a->mu);
            a->started = ok;
            pthread_cond_broadcast(&a->moved);
            pthread_mutex_unlock(&a->mu);
            if (!ok) {
                /* A group's coordinator is still loading just after start. */
                if (++tries % 25 == 0)
                    OB_WARN("accepted", "cannot read %s's positions yet; retrying", a->topic);
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (ob_mono_ms() >= next_prune) {
            rd_kafka_topic_partition_list_t *l = committed(a, 2000);
            pthread_mutex_lock(&a->mu);
            if (l)
                forget_recorded(a, l);
            pthread_mutex_unlock(&a->mu);
            if (l)
                rd_kafka_topic_partition_list_destroy(l);
            next_prune = ob_mono_ms() + 1000;
        }
        /* Full: stop reading (librdkafka's prefetch is bounded) until the
         * scheduler has recorded some; lookups then answer BEHIND. */
        if (a->bytes >= a->max_bytes) { /* only this thread changes it */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        ssize_t n = rd_kafka_consume_batch_queue(a->queue, 100, batch, OB_COUNTOF(batch));
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++) {
            entries[i] = entry_of(batch[i]);
            if (batch[i]->err && batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                OB_WARN("accepted", "reading %s: %s", a->topic, rd_kafka_message_errstr(batch[i]));
        }
        pthread_mutex_lock(&a->mu);
        for (ssize_t i = 0; i < n; i++) {
            if (!batch[i]->err && batch[i]->partition >= 0 && batch[i]->partition < a->nparts) {
                hold(a, batch[i]->partition, batch[i]->offset, entries[i]);
            } else if (entries[i]) {
                free(entries[i]->msg);
                free(entries[i]);
            }
        }
        pthread_cond_broadcast(&a->moved);
        pthread_mutex_unlock(&a->mu);
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(batch[i]);
    }
    return NULL;
}

ingest_accepted_t *ingest_accepted_start(const ob_base_config_t *cfg, const char *topic,
                                         const char *group_id, size_t max_bytes, ob_metric_t *lag,
                                         ob_metric_t *held, ob_err_t *err)
{
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    ingest_accepted_t *a = ob_xcalloc(1, sizeof(*a));
    a->topic = ob_xstrdup(topic);
    a->max_bytes = max_bytes;
    a->lag = lag;
    a->held = held;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->moved, NULL);
    if (ob_consumer_conf_new(cfg, group_id, "earliest", &conf, err) != OB_OK)
        goto fail;
    /* The scheduler's group is only asked for its committed offsets: this
     * consumer assigns partitions itself (it never joins the group), and
     * must never commit, whatever OB_KAFKA_* says. */
    if (rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "statistics.interval.ms", "0", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "max.partition.fetch.bytes", "4194304", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "fetch.max.bytes", "16777216", errstr, sizeof(errstr))) {
        ob_err_set(err, "kafka: %s", errstr);
        goto fail;
    }
    a->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!a->rk) {
        ob_err_set(err, "kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL;
    a->queue = rd_kafka_queue_get_consumer(a->rk);
    grow(a);
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        ob_err_set(err, "cannot start the accepted-calls reader: %s", strerror(errno));
        goto fail;
    }
    return a;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    a->thread = 0;
    a->stop = true;
    ingest_accepted_stop(a);
    return NULL;
}

void ingest_accepted_stop(ingest_accepted_t *a)
{
    if (!a)
        return;
    if (!a->stop) {
        __atomic_store_n(&a->stop, true, __ATOMIC_RELAXED);
        pthread_join(a->thread, NULL);
    }
    if (a->queue)
        rd_kafka_queue_destroy(a->queue);
    if (a->rk) {
        rd_kafka_consumer_close(a->rk);
        rd_kafka_destroy(a->rk);
    }
    for (int i = 0; a->parts && i < a->nparts; i++) {
        for (entry_t *e = a->parts[i].head, *next; e; e = next) {
            next = e->next;
            free(e->msg);
            free(e);
        }
    }
    free(a->parts);
    free(a->slots);
    free(a->topic);
    pthread_cond_destroy(&a->moved);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

bool ingest_accepted_ready(ingest_accepted_t *a)
{
    pthread_mutex_lock(&a->mu);
    bool started = a->started;
    pthread_mutex_unlock(&a->mu);
    return started;
}

/* Copies call_id's message out (under mu); NULL when not held. */
static char *lookup(ingest_accepted_t *a, const char *call_id)
{
    entry_t *e = *find_slot(a, call_id);
    return e ? ob_xstrdup(e->msg) : NULL;
}

/* Waits (under mu) until every partition was read up to hw[], or deadline. */
static bool wait_read(ingest_accepted_t *a, const int64_t *hw, const struct timespec *deadline)
{
    for (;;) {
        bool done = a->started;
        for (int i = 0; done && i < a->nparts; i++)
            done = a->parts[i].next >= hw[i];
        if (done)
            return true;
        if (pthread_cond_timedwait(&a->moved, &a->mu, deadline) == ETIMEDOUT)
            return false;
    }
}

/* The deadline wait_ms from start, for pthread_cond_timedwait. */
static struct timespec deadline_of(int64_t start, int wait_ms)
{
    struct timespec d;
    int64_t left = wait_ms - (ob_mono_ms() - start);
    clock_gettime(CLOCK_REALTIME, &d);
    if (left < 0)
        left = 0;
    d.tv_sec += (time_t)(left / 1000);
    d.tv_nsec += (long)(left % 1000) * 1000000L;
    if (d.tv_nsec >= 1000000000L) {
        d.tv_sec++;
        d.tv_nsec -= 1000000000L;
    }
    return d;
}

ingest_accepted_rc_t ingest_accepted_find(ingest_accepted_t *a, const char *call_id, int wait_ms,
                                          ob_call_request_t *out)
{
    ingest_accepted_rc_t rc = INGEST_ACCEPTED_BEHIND;
    int64_t *hw = NULL;
    int64_t start = ob_mono_ms();
    struct timespec deadline = deadline_of(start, wait_ms);
    ob_err_t err = {{0}};
    char *msg = NULL;
    int n = 0;

    pthread_mutex_lock(&a->mu);
    while (!a->started && pthread_cond_timedwait(&a->moved, &a->mu, &deadline) != ETIMEDOUT)
        ;
    bool started = a->started;
    n = a->nparts;
    if (started)
        msg = lookup(a, call_id);
    pthread_mutex_unlock(&a->mu);
    if (!started)
        goto out;
    if (!msg) {
        /* What was acknowledged before now is below these marks. A topic
         * just created may not have a known leader yet: ask again. */
        hw = ob_xcalloc((size_t)n, sizeof(*hw));
        for (int i = 0; i < n; i++) {
            int64_t lo = 0;
            for (;;) {
                int left = wait_ms - (int)(ob_mono_ms() - start);
                if (left <= 0)
                    goto out;
                if (rd_kafka_query_watermark_offsets(a->rk, a->topic, i, &lo, &hw[i], left) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR)
                    break;
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        pthread_mutex_lock(&a->mu);
        bool read = wait_read(a, hw, &deadline);
        msg = lookup(a, call_id);
        pthread_mutex_unlock(&a->mu);
        if (!msg) {
            rc = read ? INGEST_ACCEPTED_UNKNOWN : INGEST_ACCEPTED_BEHIND;
            goto out;
        }
    }
    rc = ob_call_request_decode(msg, strlen(msg), out, &err) == OB_OK ? INGEST_ACCEPTED_FOUND
                                                                      : INGEST_ACCEPTED_UNKNOWN;
out:
    free(msg);
    free(hw);
    return rc;
}
