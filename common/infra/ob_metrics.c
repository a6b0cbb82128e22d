/*
 * Prometheus text rendering for the metric registry, histograms and the
 * small labelled families with a bounded number of label sets.
 */
#include "ob_metrics.h"
#include "ob_common.h"

#include <pthread.h>
#include <stdbool.h>
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

void ob_histogram_observe(ob_histogram_t *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    __atomic_add_fetch(&h->counts[i], 1, __ATOMIC_RELAXED);
    double old, new;
    __atomic_load(&h->sum, &old, __ATOMIC_RELAXED);
    do
        new = old + v;
    while (
        !__atomic_compare_exchange(&h->sum, &old, &new, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* Writes one histogram's samples: labels go before le in each bucket. */
static void histogram_samples(FILE *f, const ob_histogram_t *h)
{
    const char *l = h->labels ? h->labels : "";
    const char *sep = h->labels ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b <= h->nbounds; b++) {
        cum += __atomic_load_n(&h->counts[b], __ATOMIC_RELAXED);
        if (b < h->nbounds)
            fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", h->name, l, sep, h->bounds[b],
                    (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", h->name, l, sep,
                    (unsigned long long)cum);
    }
    double sum;
    __atomic_load(&h->sum, &sum, __ATOMIC_RELAXED);
    if (h->labels) {
        fprintf(f, "%s_sum{%s} %.9g\n", h->name, l, sum);
        fprintf(f, "%s_count{%s} %llu\n", h->name, l, (unsigned long long)cum);
    } else {
        fprintf(f, "%s_sum %.9g\n", h->name, sum);
        fprintf(f, "%s_count %llu\n", h->name, (unsigned long long)cum);
    }
}

char *ob_histograms_render(const ob_histogram_t *hists, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    OB_ASSERT(f != NULL);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(hists[i - 1].name, hists[i].name) != 0)
            fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", hists[i].name, hists[i].help,
                    hists[i].name);
        histogram_samples(f, &hists[i]);
    }
    fclose(f);
    return buf;
}

typedef struct {
    char *labels;        /* rendered label set, owned (NULL for the overflow entry) */
    ob_metric_t metric;  /* the value, for counters and gauges */
    ob_histogram_t hist; /* the buckets, for histograms */
} family_entry_t;

struct ob_metric_family {
    const char *name;            /* metric name */
    const char *help;            /* HELP text */
    ob_metric_kind_t kind;       /* counter, gauge or histogram */
    const double *bounds;        /* histogram bounds */
    size_t nbounds;              /* number of bounds */
    const char *overflow_labels; /* label set used once cap is reached */
    size_t cap;                  /* label sets kept before overflowing */
    pthread_mutex_t mu;          /* guards n and the labels of entries */
    size_t n;                    /* entries in use, in creation order */
    bool overflowed;             /* the overflow entry is in use */
    family_entry_t *entries;     /* cap entries, then the overflow entry */
};

ob_metric_family_t *ob_metric_family_new(const char *name, const char *help, ob_metric_kind_t kind,
                                         const double *bounds, size_t nbounds, size_t cap,
                                         const char *overflow_labels)
{
    OB_ASSERT(nbounds <= OB_HISTOGRAM_MAX_BUCKETS && cap > 0);
    ob_metric_family_t *f = ob_xcalloc(1, sizeof(*f));
    f->name = name;
    f->help = help;
    f->kind = kind;
    f->bounds = bounds;
    f->nbounds = nbounds;
    f->cap = cap;
    f->overflow_labels = overflow_labels;
    pthread_mutex_init(&f->mu, NULL);
    f->entries = ob_xcalloc(cap + 1, sizeof(*f->entries));
    for (size_t i = 0; i <= cap; i++) {
        family_entry_t *e = &f->entries[i];
        e->metric = (ob_metric_t){name, NULL, help, kind, 0};
        e->hist.name = name;
        e->hist.help = help;
        e->hist.bounds = bounds;
        e->hist.nbounds = nbounds;
    }
    f->entries[cap].metric.labels = overflow_labels;
    f->entries[cap].hist.labels = overflow_labels;
    return f;
}

void ob_metric_family_free(ob_metric_family_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->entries[i].labels);
    pthread_mutex_destroy(&f->mu);
    free(f->entries);
    free(f);
}

/* The entry for labels, created on first use; the overflow entry once the
 * family is full. The returned entry stays valid until the family is freed. */
static family_entry_t *family_entry(ob_metric_family_t *f, const char *labels)
{
    family_entry_t *e = NULL;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n && !e; i++)
        if (strcmp(f->entries[i].labels, labels) == 0)
            e = &f->entries[i];
    if (!e && f->n < f->cap) {
        e = &f->entries[f->n];
        e->labels = ob_xstrdup(labels);
        e->metric.labels = e->labels;
        e->hist.labels = e->labels;
        f->n++;
    }
    if (!e) {
        e = &f->entries[f->cap];
        f->overflowed = true;
    }
    pthread_mutex_unlock(&f->mu);
    return e;
}

void ob_metric_family_add(ob_metric_family_t *f, const char *labels, int64_t v)
{
    ob_metric_add(&family_entry(f, labels)->metric, v);
}

void ob_metric_family_set(ob_metric_family_t *f, const char *labels, int64_t v)
{
    ob_metric_set(&family_entry(f, labels)->metric, v);
}

void ob_metric_family_observe(ob_metric_family_t *f, const char *labels, double v)
{
    ob_histogram_observe(&family_entry(f, labels)->hist, v);
}

char *ob_metric_family_render(ob_metric_family_t *f)
{
    static const char *const type[] = {"counter", "gauge", "histogram"};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    OB_ASSERT(out != NULL);
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type[f->kind]);
    pthread_mutex_lock(&f->mu);
    size_t n = f->n;
    bool overflowed = f->overflowed;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i <= f->cap; i++) {
        if (i >= n && i < f->cap)
            continue;
        if (i == f->cap && !overflowed)
            break;
        const family_entry_t *e = &f->entries[i];
        if (f->kind == OB_METRIC_HISTOGRAM)
            histogram_samples(out, &e->hist);
        else
            fprintf(out, "%s{%s} %lld\n", f->name, e->metric.labels,
                    (long long)ob_metric_get(&e->metric));
    }
    fclose(out);
    return buf;
}
