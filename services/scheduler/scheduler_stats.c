/*
 * Queue gauges: every few seconds one query counts the unfinished calls of
 * the owned partitions by deployment and by what they wait for. The totals
 * go to outbound_calls_pending{waiting_for}; the busiest deployments get
 * their own series of depth, wait, calls in flight and capacity, and the
 * rest are summed under deployment="_other" so that the label set stays
 * bounded and sums over it stay right. Instances own disjoint partitions,
 * so their series add up too.
 */
#include "ob_log.h"
#include "ob_pg.h"
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NREASONS OB_WAIT_COUNT

/* Per deployment: its capacity and window, then one count per wait reason
 * (in ob_wait_t order), the calls in flight (no reason) and how long the
 * longest-waiting due call has waited for capacity, in whole seconds of the
 * scheduler's clock. */
#define COUNT_WAITING(e, s) " count(*) FILTER (WHERE r = '" s "'),"
#define COUNTS_WAITING      OB_WAIT_LIST(COUNT_WAITING)
static const char STATS_SQL[] =
    "SELECT deployment_id, capacity, win," COUNTS_WAITING " count(*) FILTER (WHERE r IS NULL),"
    " coalesce(floor(extract(epoch FROM to_timestamp($2::bigint / 1000.0)"
    "  - min(due) FILTER (WHERE r = 'capacity'))), 0)::bigint"
    " FROM (SELECT c.deployment_id, d.capacity, d.campaign_window::text AS win,"
    "  wait_reason(c, d.paused, to_timestamp($2::bigint / 1000.0)) AS r,"
    "  greatest(c.accepted_at, c.next_attempt_at) AS due"
    "  FROM calls c JOIN deployments d USING (deployment_id)"
    "  WHERE c.request_partition = ANY($1::int[]) AND c.state <> 'completed') w"
    " GROUP BY 1, 2, 3";
#undef COUNTS_WAITING
#undef COUNT_WAITING

/* Campaign window states of the deployments with unfinished calls. */
enum { WIN_OPEN, WIN_CLOSED, WIN_PER_CALLEE, WIN_NONE, WIN_COUNT };
static const char *const window_states[WIN_COUNT] = {"open", "closed", "per_callee", "none"};

typedef struct {
    const char *id;       /* deployment id (in the result) */
    int64_t capacity;     /* its configured capacity */
    int64_t waiting;      /* calls waiting, whatever for */
    int64_t in_flight;    /* calls released and not ended */
    int64_t oldest_due_s; /* longest wait for capacity so far */
    int64_t by_reason[NREASONS];
} dep_stats_t;

/* Busiest first: the most calls waiting or in flight; then by id, so the
 * labelled set does not flap between equals. */
static int busiest_first(const void *a, const void *b)
{
    const dep_stats_t *x = a, *y = b;
    int64_t nx = x->waiting + x->in_flight, ny = y->waiting + y->in_flight;
    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The per-deployment families, in the order their samples are rendered. */
static const struct {
    const char *name, *help;
} families[] = {
    {"outbound_queue_depth", "calls waiting to be dialed (any reason), by deployment"},
    {"outbound_queue_oldest_due_seconds",
     "how long the longest-waiting due call has waited for capacity, by deployment"},
    {"outbound_calls_in_flight", "calls released to a dialer and not ended, by deployment"},
    {"outbound_capacity", "calls a deployment may have in flight at once"},
};
#define WINDOWS_NAME "outbound_campaign_windows"
#define WINDOWS_HELP                                                                               \
    "deployments with unfinished calls by the state of their campaign window now "                 \
    "(per_callee: evaluated in each callee's zone; none: no window)"

/* HELP and TYPE of the per-deployment families (and, before the first count,
 * of the windows family), declared while they have no sample. */
static char *declare(bool with_windows)
{
    char *text = ob_xstrdup("");
    for (size_t f = 0; f <= OB_COUNTOF(families); f++) {
        if (f == OB_COUNTOF(families) && !with_windows)
            break;
        const char *name = f < OB_COUNTOF(families) ? families[f].name : WINDOWS_NAME;
        const char *help = f < OB_COUNTOF(families) ? families[f].help : WINDOWS_HELP;
        char *more = ob_xasprintf("%s# HELP %s %s\n# TYPE %s gauge\n", text, name, help, name);
        free(text);
        text = more;
    }
    return text;
}

/* A gauge sample: name, rendered labels (owned) and value. */
static void sample(ob_metric_t *m, const char *name, const char *help, char *labels, int64_t v)
{
    *m = (ob_metric_t){name, labels, help, OB_METRIC_GAUGE, v};
}

/* The families as text: deployments[0..nown) labelled on their own, the sum
 * of the rest (other, when there is a rest) as _other. */
static char *render(const dep_stats_t *deps, size_t nown, const dep_stats_t *other,
                    const int64_t windows[WIN_COUNT])
{
    size_t nseries = nown + (other ? 1 : 0);
    size_t n = OB_COUNTOF(families) * nseries + WIN_COUNT, k = 0;
    ob_metric_t *m = ob_xcalloc(n, sizeof(*m));
    for (size_t f = 0; f < OB_COUNTOF(families); f++) {
        for (size_t i = 0; i < nseries; i++) {
            const dep_stats_t *d = i < nown ? &deps[i] : other;
            int64_t v[] = {d->waiting, d->oldest_due_s, d->in_flight, d->capacity};
            sample(&m[k++], families[f].name, families[f].help,
                   ob_xasprintf("deployment=\"%s\"", d->id), v[f]);
        }
    }
    for (int w = 0; w < WIN_COUNT; w++)
        sample(&m[k++], WINDOWS_NAME, WINDOWS_HELP, ob_xasprintf("state=\"%s\"", window_states[w]),
               windows[w]);
    char *samples = ob_metrics_render(m, k);
    for (size_t i = 0; i < k; i++)
        free((char *)m[i].labels);
    free(m);
    if (nseries > 0)
        return samples;
    /* No deployment has unfinished calls: the families are still declared. */
    char *head = declare(false);
    char *all = ob_xasprintf("%s%s", head, samples);
    free(head);
    free(samples);
    return all;
}

/* Which window state a deployment's window text is in at now_ms. */
static int window_state(scheduler_ctx_t *ctx, const char *text, int64_t now_ms)
{
    if (!text)
        return WIN_NONE;
    bool bad = false;
    const ob_window_t *w = scheduler_window_for(ctx, text, &bad);
    if (bad || !w)
        return WIN_NONE; /* logged where it is parsed; its calls wait */
    if (ob_window_uses_callee_zone(w))
        return WIN_PER_CALLEE;
    return ob_window_open_at(w, NULL, 0, now_ms) ? WIN_OPEN : WIN_CLOSED;
}

void scheduler_count_pending(scheduler_ctx_t *ctx)
{
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    char now[24];
    int64_t now_ms = scheduler_now_ms(ctx);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    char *owned = scheduler_owned_array(ctx);
    const char *params[] = {owned, now};
    ob_rc_t rc = ob_pg_exec(ctx->pg, STATS_SQL, 2, params, &res, &err);
    free(owned);
    if (rc != OB_OK) {
        OB_WARN("stats", "pending calls not counted: %s", err.msg);
        return;
    }
    size_t ndeps = (size_t)PQntuples(res);
    dep_stats_t *deps = ob_xcalloc(ndeps + 1, sizeof(*deps));
    int64_t totals[NREASONS] = {0}, windows[WIN_COUNT] = {0};
    for (size_t i = 0; i < ndeps; i++) {
        dep_stats_t *d = &deps[i];
        int row = (int)i;
        d->id = PQgetvalue(res, row, 0);
        d->capacity = atoll(PQgetvalue(res, row, 1));
        const char *win = PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2);
        windows[window_state(ctx, win, now_ms)]++;
        for (size_t r = 0; r < NREASONS; r++) {
            d->by_reason[r] = atoll(PQgetvalue(res, row, 3 + (int)r));
            d->waiting += d->by_reason[r];
            totals[r] += d->by_reason[r];
        }
        d->in_flight = atoll(PQgetvalue(res, row, 3 + (int)NREASONS));
        d->oldest_due_s = atoll(PQgetvalue(res, row, 4 + (int)NREASONS));
    }
    qsort(deps, ndeps, sizeof(*deps), busiest_first);
    size_t nown = ndeps < (size_t)ctx->cfg->metrics_deployments
                      ? ndeps
                      : (size_t)ctx->cfg->metrics_deployments;
    dep_stats_t other = {.id = "_other"};
    for (size_t i = nown; i < ndeps; i++) {
        other.capacity += deps[i].capacity;
        other.waiting += deps[i].waiting;
        other.in_flight += deps[i].in_flight;
        if (deps[i].oldest_due_s > other.oldest_due_s)
            other.oldest_due_s = deps[i].oldest_due_s;
    }
    char *text = render(deps, nown, nown < ndeps ? &other : NULL, windows);
    free(deps);
    PQclear(res);

    for (size_t r = 0; r < NREASONS; r++)
        ob_metric_set(&ctx->metrics[M_WAIT + (int)r], totals[r]);
    pthread_mutex_lock(&ctx->stats_mu);
    free(ctx->stats_text);
    ctx->stats_text = text;
    pthread_mutex_unlock(&ctx->stats_mu);
}

char *scheduler_stats_render(scheduler_ctx_t *ctx)
{
    pthread_mutex_lock(&ctx->stats_mu);
    char *text = ctx->stats_text ? ob_xstrdup(ctx->stats_text) : NULL;
    pthread_mutex_unlock(&ctx->stats_mu);
    if (!text) /* not counted yet */
        text = declare(true);
    return text;
}
