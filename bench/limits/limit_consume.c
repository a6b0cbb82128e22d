/*
 * The limit of consuming: librdkafka alone, with the scheduler's consumer
 * settings (ob_consumer_conf_new: its group settings, manual offset store,
 * auto commit, OB_KAFKA_*), reading a topic from the beginning in a new
 * group and storing each offset as the scheduler does, until COUNT messages
 * arrived. The clock runs from the first message (after the group join) to
 * the last; prints one JSON line.
 *
 * Usage: limit_consume TOPIC COUNT [TIMEOUT_S]
 */
#include "limits.h"
#include "ob_config.h"
#include "ob_kafka.h"
#include "ob_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    ob_base_config_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    ob_err_t err = {{0}};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    char errstr[512], group[64];
    long count = 0, bytes = 0;
    int code = 1;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s TOPIC COUNT [TIMEOUT_S]\n", argv[0]);
        return 64;
    }
    const char *topic = argv[1];
    long want = strtol(argv[2], NULL, 10);
    double timeout = argc == 4 ? strtod(argv[3], NULL) : 120;
    ob_log_init("limit-consume", OB_LOG_WARN);
    ob_base_config_load(&cfg, &errs);
    if (ob_cfg_errors_report(&errs))
        goto out;
    snprintf(group, sizeof(group), "bench-limit-consume-%d-%ld", (int)getpid(), (long)time(NULL));
    if (ob_consumer_conf_new(&cfg, group, "earliest", &conf, &err) != OB_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "%s: %s\n", argv[0], errstr);
        goto out;
    }
    conf = NULL; /* rd_kafka_new took it */
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        fprintf(stderr, "%s: subscribe: %s\n", argv[0], rd_kafka_err2str(e));
        goto out;
    }
    double subscribed = limits_now(), first = 0, last = 0;
    while (count < want && limits_now() - subscribed < timeout) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            if (count++ == 0)
                first = limits_now();
            bytes += (long)msg->len;
            ob_consumer_store(rk, msg);
        }
        rd_kafka_message_destroy(msg);
    }
    last = limits_now();
    double seconds = count > 1 ? last - first : 0;
    printf("{\"tool\":\"consume\",\"topic\":\"%s\",\"messages\":%ld,\"wanted\":%ld,\"bytes\":%ld,"
           "\"seconds\":%.4f,\"per_s\":%.1f,\"join_s\":%.4f}\n",
           topic, count, want, bytes, seconds, seconds > 0 ? (double)(count - 1) / seconds : 0.0,
           first > 0 ? first - subscribed : -1.0);
    code = count >= want ? 0 : 1;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    ob_base_config_free(&cfg);
    ob_cfg_errors_free(&errs);
    return code;
}
