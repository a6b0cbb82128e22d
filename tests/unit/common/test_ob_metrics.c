/* Prometheus rendering (common/ob_metrics.c). */
#include "ob_metrics.h"

#include <criterion/criterion.h>
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
