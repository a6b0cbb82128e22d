/*
 * The limit of producing: librdkafka alone, with the settings a service's
 * producer has (ob_producer_conf_new with the same tuning and OB_KAFKA_*),
 * producing the messages of a file (one "key<TAB>value" per line, as
 * `kcat -C -f '%k\t%s\n'` captured them from the service's topic) as fast as
 * the client and the broker allow. The first message warms the producer up
 * (connections, producer id) and is not counted; every other one is
 * acknowledged before the clock stops. Prints one JSON line.
 *
 * The topic is created first when missing (OB_TOPIC_PARTITIONS partitions).
 *
 * Usage: limit_produce TOPIC immediate|bulk|default FILE [CHUNK]
 * With CHUNK, waits for every acknowledgement after each CHUNK messages (as
 * a batch request waits before it answers); without, only at the end.
 */
#include "limits.h"
#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;    /* the whole file */
    size_t len;    /* bytes in data */
    char **key;    /* per message, into data */
    char **value;  /* per message, into data */
    size_t *vlen;  /* value lengths */
    size_t n, cap; /* messages, slots */
} messages_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    long *failed = opaque;
    (void)rk;
    if (msg->err)
        (*failed)++;
}

/* Splits the file into messages in place; lines without a tab are skipped. */
static bool load(const char *path, messages_t *m)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    m->len = (size_t)ftell(f);
    rewind(f);
    m->data = ob_xmalloc(m->len + 1);
    bool ok = fread(m->data, 1, m->len, f) == m->len;
    fclose(f);
    m->data[m->len] = '\0';
    for (char *line = m->data; ok && line < m->data + m->len;) {
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : m->data + m->len;
        char *tab = memchr(line, '\t', (size_t)(end - line));
        if (tab) {
            if (m->n == m->cap) {
                m->cap = m->cap ? m->cap * 2 : 4096;
                m->key = ob_xrealloc(m->key, m->cap * sizeof(char *));
                m->value = ob_xrealloc(m->value, m->cap * sizeof(char *));
                m->vlen = ob_xrealloc(m->vlen, m->cap * sizeof(size_t));
            }
            *tab = '\0';
            *end = '\0';
            m->key[m->n] = line;
            m->value[m->n] = tab + 1;
            m->vlen[m->n] = (size_t)(end - tab - 1);
            m->n++;
        }
        line = end + 1;
    }
    return ok;
}

int main(int argc, char **argv)
{
    ob_base_config_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    ob_err_t err = {{0}};
    messages_t m = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    char errstr[512];
    long failed = 0, queue_full = 0;
    size_t bytes = 0;
    int code = 1;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s TOPIC immediate|bulk|default FILE [CHUNK]\n", argv[0]);
        return 64;
    }
    const char *topic = argv[1];
    const char *const *tuning = strcmp(argv[2], "immediate") == 0 ? ob_kafka_tuning_immediate
                                : strcmp(argv[2], "bulk") == 0    ? ob_kafka_tuning_bulk
                                                                  : NULL;
    size_t chunk = argc == 5 ? strtoul(argv[4], NULL, 10) : 0;
    ob_log_init("limit-produce", OB_LOG_WARN);
    ob_base_config_load(&cfg, &errs);
    if (ob_cfg_errors_report(&errs))
        goto out;
    if (!load(argv[3], &m) || m.n == 0) {
        fprintf(stderr, "%s: no messages in %s\n", argv[0], argv[3]);
        goto out;
    }
    const char *topics[] = {topic, NULL};
    if (ob_kafka_ensure_topics(&cfg, topics, &err) != OB_OK ||
        ob_producer_conf_new(&cfg, tuning, &conf, &err) != OB_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "%s: %s\n", argv[0], errstr);
        goto out;
    }
    conf = NULL; /* rd_kafka_new took it */
    /* The connections and the idempotent producer's id first, with the
     * first message (not counted): start-up is not what is measured. */
    if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m.key[0], strlen(m.key[0])),
                          RD_KAFKA_V_VALUE(m.value[0], m.vlen[0]),
                          RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: the first message was not acknowledged in 30 s\n", argv[0]);
        goto out;
    }
    double start = limits_now();
    for (size_t i = 1; i < m.n; i++) {
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m.key[i], strlen(m.key[i])),
                RD_KAFKA_V_VALUE(m.value[i], m.vlen[i]), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "%s: %s\n", argv[0], rd_kafka_err2str(e));
                goto out;
            }
            queue_full++;
            rd_kafka_poll(rk, 10);
        }
        bytes += m.vlen[i];
        rd_kafka_poll(rk, 0);
        if (chunk && i % chunk == 0)
            rd_kafka_flush(rk, 60000);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: not every message was acknowledged in 60 s\n", argv[0]);
        goto out;
    }
    double seconds = limits_now() - start;
    printf("{\"tool\":\"produce\",\"topic\":\"%s\",\"tuning\":\"%s\",\"chunk\":%zu,"
           "\"messages\":%zu,\"bytes\":%zu,\"seconds\":%.4f,\"per_s\":%.1f,\"failed\":%ld,"
           "\"queue_full\":%ld}\n",
           topic, argv[2], chunk, m.n - 1, bytes, seconds, (double)(m.n - 1) / seconds, failed,
           queue_full);
    code = failed ? 1 : 0;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk)
        rd_kafka_destroy(rk);
    free(m.data);
    free(m.key);
    free(m.value);
    free(m.vlen);
    ob_base_config_free(&cfg);
    ob_cfg_errors_free(&errs);
    return code;
}
