/*
 * Prometheus text rendering for the metric registry.
 */
#include "ob_metrics.h"
#include "ob_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ob_metrics_render(const ob_metric_t *metrics, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    OB_ASSERT(f != NULL);
    for (size_t i = 0; i < n; i++) {
        const ob_metric_t *m = &metrics[i];
        if (i == 0 || strcmp(metrics[i - 1].name, m->name) != 0)
            fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                    m->kind == OB_METRIC_COUNTER ? "counter" : "gauge");
        if (m->labels)
            fprintf(f, "%s{%s} %lld\n", m->name, m->labels, (long long)ob_metric_get(m));
        else
            fprintf(f, "%s %lld\n", m->name, (long long)ob_metric_get(m));
    }
    fclose(f);
    return buf;
}
