/* Consumer lag from librdkafka's statistics JSON (common/infra/ob_kafka.c). */
#include "ob_kafka.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *stats;  /* statistics document, as librdkafka emits it */
    const char *line;   /* a line the rendered metrics must hold, or NULL */
    const char *absent; /* a series that must not be there, or NULL */
} lag_case_t;

ParameterizedTestParameters(kafka, lag_from_stats)
{
    static lag_case_t cases[] = {
        /* Summed over partitions; -1 (unassigned, or the UA partition) skipped. */
        {"{\"topics\":{\"t.a\":{\"topic\":\"t.a\",\"partitions\":{"
         "\"0\":{\"partition\":0,\"consumer_lag\":5},\"1\":{\"partition\":1,\"consumer_lag\":7},"
         "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}}}}",
         "outbound_kafka_consumer_lag{topic=\"t.a\"} 12\n", NULL},
        /* Every partition revoked: this process is behind by nothing. */
        {"{\"topics\":{\"t.b\":{\"partitions\":{\"0\":{\"consumer_lag\":-1}}}}}",
         "outbound_kafka_consumer_lag{topic=\"t.b\"} 0\n", NULL},
        /* A producer's or a broken document changes nothing. */
        {"{\"name\":\"rdkafka#producer-1\",\"topics\":{}}", NULL, "topic=\"t.c\""},
        {"{\"topics\":{\"t.c\":", NULL, "topic=\"t.c\""},
    };
    return cr_make_param_array(lag_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(lag_case_t *c, kafka, lag_from_stats)
{
    ob_kafka_metrics_t *m = ob_kafka_metrics_new();
    ob_kafka_record_stats(m, c->stats, strlen(c->stats));
    char *text = ob_kafka_metrics_render(m);
    ob_kafka_metrics_free(m);
    cr_assert(strstr(text, "# TYPE outbound_kafka_consumer_lag gauge\n") != NULL, "%s", text);
    if (c->line)
        cr_assert(strstr(text, c->line) != NULL, "want %s in:\n%s", c->line, text);
    if (c->absent)
        cr_assert(strstr(text, c->absent) == NULL, "%s", text);
    free(text);
}

Test(kafka, a_later_report_replaces_the_lag)
{
    const char *a = "{\"topics\":{\"t\":{\"partitions\":{\"0\":{\"consumer_lag\":40}}}}}";
    const char *b = "{\"topics\":{\"t\":{\"partitions\":{\"0\":{\"consumer_lag\":3}}}}}";
    ob_kafka_metrics_t *m = ob_kafka_metrics_new();
    ob_kafka_record_stats(m, a, strlen(a));
    ob_kafka_record_stats(m, b, strlen(b));
    char *text = ob_kafka_metrics_render(m);
    ob_kafka_metrics_free(m);
    cr_assert(strstr(text, "outbound_kafka_consumer_lag{topic=\"t\"} 3\n") != NULL, "%s", text);
    free(text);
}
