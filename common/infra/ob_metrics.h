/*
 * Prometheus metrics: counters and gauges kept in a per-service registry and
 * rendered in the text exposition format at /metrics. Updates are lock-free
 * atomics so hot paths can count without contention. Histograms and small
 * labelled families (bounded label sets with an overflow label) are below.
 */
#ifndef OB_METRICS_H
#define OB_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OB_METRIC_COUNTER, OB_METRIC_GAUGE, OB_METRIC_HISTOGRAM } ob_metric_kind_t;

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

/* ---- Histograms ------------------------------------------------------------ */

#define OB_HISTOGRAM_MAX_BUCKETS 16

/* A Prometheus histogram with fixed upper bounds. Observations are lock-free:
 * one atomic bucket increment and a compare-and-swap on the sum. */
typedef struct {
    const char *name;                              /* base name; _bucket/_sum/_count appended */
    const char *labels;                            /* rendered label set, or NULL */
    const char *help;                              /* HELP text */
    const double *bounds;                          /* ascending upper bounds, static storage */
    size_t nbounds;                                /* at most OB_HISTOGRAM_MAX_BUCKETS */
    uint64_t counts[OB_HISTOGRAM_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    double sum;                                    /* sum of observations (CAS-updated) */
} ob_histogram_t;

/* Records one observation v. Thread-safe, does not allocate. */
void ob_histogram_observe(ob_histogram_t *h, double v);

/* Renders n histograms (same-name ones adjacent) as Prometheus text: cumulative
 * _bucket{le=...} lines, _sum and _count (equal to the +Inf bucket). Caller
 * frees the result. */
char *ob_histograms_render(const ob_histogram_t *hists, size_t n);

/* ---- Labelled families ----------------------------------------------------- */

/* A metric with a bounded, runtime-discovered set of label sets (routes,
 * topics). At most cap label sets are kept; later ones are counted under
 * overflow_labels so cardinality stays bounded. Lookups take a mutex and scan
 * at most cap entries; the update itself is atomic. Entries never move. */
typedef struct ob_metric_family ob_metric_family_t;

/* Creates a family of kind (counter, gauge or histogram; bounds and nbounds
 * only for histograms). name, help, bounds and overflow_labels must outlive
 * the family (string literals). Caller frees with ob_metric_family_free. */
ob_metric_family_t *ob_metric_family_new(const char *name, const char *help, ob_metric_kind_t kind,
                                         const double *bounds, size_t nbounds, size_t cap,
                                         const char *overflow_labels);

/* Frees the family; NULL-safe. */
void ob_metric_family_free(ob_metric_family_t *f);

/* Adds v to the counter or gauge with the rendered label set labels (such as
 * "topic=\"x\""), creating it at 0 first. Thread-safe. */
void ob_metric_family_add(ob_metric_family_t *f, const char *labels, int64_t v);

/* Sets the gauge with label set labels to v. Thread-safe. */
void ob_metric_family_set(ob_metric_family_t *f, const char *labels, int64_t v);

/* Records v in the histogram with label set labels. Thread-safe. */
void ob_metric_family_observe(ob_metric_family_t *f, const char *labels, double v);

/* Renders the family as Prometheus text (HELP and TYPE even while it has no
 * label set yet), label sets in creation order. Caller frees. */
char *ob_metric_family_render(ob_metric_family_t *f);

#endif
