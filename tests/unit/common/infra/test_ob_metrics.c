/* Prometheus rendering (common/infra/ob_metrics.c). */
#include "ob_metrics.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

Test(metrics, renders_help_type_once_per_name_with_labels)
{
    ob_metric_t m[] = {
        {"outbound_results_total", "result=\"busy\"", "results", OB_METRIC_COUNTER, 0},
        {"outbound_results_total", "result=\"voice\"", "results", OB_METRIC_COUNTER, 0},
        {"outbound_in_flight", NULL, "calls now", OB_METRIC_GAUGE, 0},
    };
    ob_metric_add(&m[0], 2);
    ob_metric_add(&m[1], 40);
    ob_metric_set(&m[2], 7);
    char *text = ob_metrics_render(m, 3);
    cr_assert_str_eq(text, "# HELP outbound_results_total results\n"
                           "# TYPE outbound_results_total counter\n"
                           "outbound_results_total{result=\"busy\"} 2\n"
                           "outbound_results_total{result=\"voice\"} 40\n"
                           "# HELP outbound_in_flight calls now\n"
                           "# TYPE outbound_in_flight gauge\n"
                           "outbound_in_flight 7\n");
    free(text);
}

static const double bounds[] = {0.001, 0.5, 10};

Test(metrics, histogram_renders_cumulative_buckets_sum_and_count)
{
    ob_histogram_t h[] = {
        {.name = "outbound_x_seconds",
         .labels = "route=\"/a\"",
         .help = "x",
         .bounds = bounds,
         .nbounds = 3},
        {.name = "outbound_x_seconds", .labels = NULL, .help = "x", .bounds = bounds, .nbounds = 3},
    };
    ob_histogram_observe(&h[0], 0.001); /* on a bound: counted in that bucket (le) */
    ob_histogram_observe(&h[0], 0.25);
    ob_histogram_observe(&h[0], 20);
    ob_histogram_observe(&h[1], 0.5);
    char *text = ob_histograms_render(h, 2);
    cr_assert_str_eq(text, "# HELP outbound_x_seconds x\n"
                           "# TYPE outbound_x_seconds histogram\n"
                           "outbound_x_seconds_bucket{route=\"/a\",le=\"0.001\"} 1\n"
                           "outbound_x_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
                           "outbound_x_seconds_bucket{route=\"/a\",le=\"10\"} 2\n"
                           "outbound_x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
                           "outbound_x_seconds_sum{route=\"/a\"} 20.251\n"
                           "outbound_x_seconds_count{route=\"/a\"} 3\n"
                           "outbound_x_seconds_bucket{le=\"0.001\"} 0\n"
                           "outbound_x_seconds_bucket{le=\"0.5\"} 1\n"
                           "outbound_x_seconds_bucket{le=\"10\"} 1\n"
                           "outbound_x_seconds_bucket{le=\"+Inf\"} 1\n"
                           "outbound_x_seconds_sum 0.5\n"
                           "outbound_x_seconds_count 1\n");
    free(text);
}

typedef struct {
    size_t cap;           /* family capacity */
    const char *adds[4];  /* label sets added to, one each, NULL-terminated */
    const char *expected; /* rendered text */
} family_case_t;

ParameterizedTestParameters(metrics, family_renders)
{
    static family_case_t cases[] = {
        {4, {NULL}, "# HELP outbound_f_total f\n# TYPE outbound_f_total counter\n"},
        {4,
         {"code=\"200\"", "code=\"500\"", "code=\"200\"", NULL},
         "# HELP outbound_f_total f\n# TYPE outbound_f_total counter\n"
         "outbound_f_total{code=\"200\"} 2\noutbound_f_total{code=\"500\"} 1\n"},
        {1,
         {"code=\"200\"", "code=\"500\"", "code=\"404\"", NULL},
         "# HELP outbound_f_total f\n# TYPE outbound_f_total counter\n"
         "outbound_f_total{code=\"200\"} 1\noutbound_f_total{code=\"other\"} 2\n"},
    };
    return cr_make_param_array(family_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(family_case_t *c, metrics, family_renders)
{
    ob_metric_family_t *f = ob_metric_family_new("outbound_f_total", "f", OB_METRIC_COUNTER, NULL,
                                                 0, c->cap, "code=\"other\"");
    for (int i = 0; c->adds[i]; i++)
        ob_metric_family_add(f, c->adds[i], 1);
    char *text = ob_metric_family_render(f);
    cr_assert_str_eq(text, c->expected);
    free(text);
    ob_metric_family_free(f);
}

Test(metrics, family_histogram_and_gauge)
{
    ob_metric_family_t *h = ob_metric_family_new("outbound_d_seconds", "d", OB_METRIC_HISTOGRAM,
                                                 bounds, 3, 2, "route=\"other\"");
    ob_metric_family_observe(h, "route=\"/b\"", 1);
    char *text = ob_metric_family_render(h);
    cr_assert_str_eq(text, "# HELP outbound_d_seconds d\n# TYPE outbound_d_seconds histogram\n"
                           "outbound_d_seconds_bucket{route=\"/b\",le=\"0.001\"} 0\n"
                           "outbound_d_seconds_bucket{route=\"/b\",le=\"0.5\"} 0\n"
                           "outbound_d_seconds_bucket{route=\"/b\",le=\"10\"} 1\n"
                           "outbound_d_seconds_bucket{route=\"/b\",le=\"+Inf\"} 1\n"
                           "outbound_d_seconds_sum{route=\"/b\"} 1\n"
                           "outbound_d_seconds_count{route=\"/b\"} 1\n");
    free(text);
    ob_metric_family_free(h);

    ob_metric_family_t *g =
        ob_metric_family_new("outbound_lag", "lag", OB_METRIC_GAUGE, NULL, 0, 2, "topic=\"other\"");
    ob_metric_family_set(g, "topic=\"t\"", 7);
    ob_metric_family_set(g, "topic=\"t\"", 3);
    text = ob_metric_family_render(g);
    cr_assert_str_eq(text, "# HELP outbound_lag lag\n# TYPE outbound_lag gauge\n"
                           "outbound_lag{topic=\"t\"} 3\n");
    free(text);
    ob_metric_family_free(g);
}

#define THREADS    4
#define PER_THREAD 20000

typedef struct {
    ob_metric_family_t *counter; /* shared counter family */
    ob_metric_family_t *hist;    /* shared histogram family */
    int id;                      /* thread number */
} worker_t;

static void *hammer(void *arg)
{
    worker_t *w = arg;
    char labels[32];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(labels, sizeof(labels), "code=\"%d\"", (i + w->id) % 5); /* 5 sets, cap 3 */
        ob_metric_family_add(w->counter, labels, 1);
        ob_metric_family_observe(w->hist, "route=\"/r\"", 0.25);
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_not_lost)
{
    ob_metric_family_t *c = ob_metric_family_new("outbound_c_total", "c", OB_METRIC_COUNTER, NULL,
                                                 0, 3, "code=\"other\"");
    ob_metric_family_t *h = ob_metric_family_new("outbound_h_seconds", "h", OB_METRIC_HISTOGRAM,
                                                 bounds, 3, 3, "route=\"other\"");
    pthread_t t[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){c, h, i};
        pthread_create(&t[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = ob_metric_family_render(c);
    long long total = 0, v;
    int lines = 0;
    for (char *p = strstr(text, "\noutbound_c_total{"); p;
         p = strstr(p + 1, "\noutbound_c_total{")) {
        cr_assert(sscanf(strchr(p, '}') + 1, " %lld", &v) == 1);
        total += v;
        lines++;
    }
    cr_assert_eq(lines, 4, "three label sets and the overflow one:\n%s", text);
    cr_assert_eq(total, (long long)THREADS * PER_THREAD);
    cr_assert(strstr(text, "code=\"other\"} ") != NULL);
    free(text);
    text = ob_metric_family_render(h);
    char want[128];
    snprintf(want, sizeof(want), "outbound_h_seconds_count{route=\"/r\"} %d\n",
             THREADS * PER_THREAD);
    cr_assert(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof(want), "outbound_h_seconds_sum{route=\"/r\"} %d\n",
             THREADS * PER_THREAD / 4);
    cr_assert(strstr(text, want) != NULL, "%s", text);
    free(text);
    ob_metric_family_free(c);
    ob_metric_family_free(h);
}
