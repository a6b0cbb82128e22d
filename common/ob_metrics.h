/*
 * Prometheus metrics: counters and gauges kept in a per-service registry and
 * rendered in the text exposition format at /metrics. Updates are lock-free
 * atomics so hot paths can count without contention.
 */
#ifndef OB_METRICS_H
#define OB_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OB_METRIC_COUNTER, OB_METRIC_GAUGE } ob_metric_kind_t;

typedef struct {
    const char *name;      /* e.g. "outbound_calls_queued_total" */
    const char *labels;    /* rendered label set such as "result=\"busy\"", or NULL */
    const char *help;      /* HELP text */
    ob_metric_kind_t kind; /* counter or gauge */
    int64_t value;         /* updated with the atomic helpers below */
} ob_metric_t;

static inline void ob_metric_add(ob_metric_t *m, int64_t v)
{
    __atomic_add_fetch(&m->value, v, __ATOMIC_RELAXED);
}

static inline void ob_metric_set(ob_metric_t *m, int64_t v)
{
    __atomic_store_n(&m->value, v, __ATOMIC_RELAXED);
}

static inline int64_t ob_metric_get(const ob_metric_t *m)
{
    return __atomic_load_n(&m->value, __ATOMIC_RELAXED);
}

/* Renders n metrics as Prometheus text; caller frees the result. Metrics that
 * share a name must be adjacent so HELP/TYPE are written once. */
char *ob_metrics_render(const ob_metric_t *metrics, size_t n);

#endif
