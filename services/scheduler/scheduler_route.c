/*
 * Dial-job routing by the dialers' announcements (dialers table, migration
 * 007). The pick itself is pure and tested on in-memory lists; refresh only
 * turns the table into such a list. Counting a dialer's busy channels from
 * attempts rather than its heartbeat makes two scheduler instances, or two
 * passes within a second, see the jobs already routed to it.
 */
#include "scheduler_route.h"
#include "ob_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Busy = calls a dialer is dialing + jobs routed to its partitions and not
 * taken yet. The partial indexes of migration 007 serve both counts. */
static const char DIALERS_SQL[] =
    "SELECT d.instance_id, d.channels,"
    " (SELECT count(*) FROM attempts a"
    "   WHERE a.worker = d.instance_id AND a.state IN ('dialing', 'connected'))"
    " + (SELECT count(*) FROM attempts a"
    "   WHERE a.state = 'released' AND a.job_partition = ANY(d.partitions)),"
    " d.partitions::text,"
    " (extract(epoch FROM now() - d.seen_at) * 1000)::bigint,"
    " coalesce(d.calls_per_second, 0)"
    " FROM dialers d"
    " WHERE d.seen_at >= now() - make_interval(secs => $1::double precision / 1000)"
    " AND cardinality(d.partitions) > 0"
    " ORDER BY d.instance_id";

/* A live dialer of the route. */
typedef struct {
    char *instance_id; /* owned copy */
    long free;         /* channels left to route to; <= 0 means none */
    int *partitions;   /* owned copy, never empty */
    int npartitions;   /* entries in partitions */
    unsigned next;     /* round-robin position in partitions */
    double cps;        /* calls-per-second limit, 0 for none */
    double tokens;     /* jobs its limit allows now (cps only) */
    int64_t filled_ms; /* when tokens were last refilled */
} route_dialer_t;

struct scheduler_route {
    route_dialer_t *dialers; /* live dialers, in the order they were set */
    int count;               /* entries in dialers */
};

scheduler_route_t *scheduler_route_new(void)
{
    return ob_xcalloc(1, sizeof(scheduler_route_t));
}

static void clear(scheduler_route_t *r)
{
    for (int i = 0; i < r->count; i++) {
        free(r->dialers[i].instance_id);
        free(r->dialers[i].partitions);
    }
    free(r->dialers);
    r->dialers = NULL;
    r->count = 0;
}

void scheduler_route_free(scheduler_route_t *r)
{
    if (!r)
        return;
    clear(r);
    free(r);
}

static const route_dialer_t *find(const route_dialer_t *d, int n, const char *instance_id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(d[i].instance_id, instance_id) == 0)
            return &d[i];
    return NULL;
}

/* Refills d's token bucket from old (the same dialer's previous entry, or
 * NULL) and caps its free channels by it. */
static void apply_cps(route_dialer_t *d, const route_dialer_t *old, int64_t now_ms)
{
    double burst = d->cps > 1 ? d->cps : 1;
    if (old && old->cps > 0) {
        double elapsed_s = (double)(now_ms - old->filled_ms) / 1000.0;
        d->tokens = old->tokens + (elapsed_s > 0 ? elapsed_s : 0) * d->cps;
        d->tokens = d->tokens < burst ? d->tokens : burst;
    } else {
        d->tokens = burst;
    }
    d->filled_ms = now_ms;
    if (d->free > (long)d->tokens)
        d->free = (long)d->tokens;
}

void scheduler_route_set(scheduler_route_t *r, const scheduler_dialer_t *list, size_t n,
                         int stale_after_ms, int64_t now_ms)
{
    route_dialer_t *next = ob_xcalloc(n ? n : 1, sizeof(*next));
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        const scheduler_dialer_t *in = &list[i];
        if (in->age_ms > stale_after_ms || in->npartitions <= 0 ||
            find(next, count, in->instance_id))
            continue;
        const route_dialer_t *old = find(r->dialers, r->count, in->instance_id);
        route_dialer_t *d = &next[count++];
        d->instance_id = ob_xstrdup(in->instance_id);
        d->free = in->channels - in->busy;
        d->partitions = ob_xmalloc((size_t)in->npartitions * sizeof(int));
        memcpy(d->partitions, in->partitions, (size_t)in->npartitions * sizeof(int));
        d->npartitions = in->npartitions;
        d->next = old ? old->next : 0;
        d->cps = in->cps > 0 ? in->cps : 0;
        if (d->cps > 0)
            apply_cps(d, old, now_ms);
    }
    clear(r);
    r->dialers = next;
    r->count = count;
}

long scheduler_route_free_channels(const scheduler_route_t *r)
{
    long total = 0;
    for (int i = 0; i < r->count; i++)
        if (r->dialers[i].free > 0)
            total += r->dialers[i].free;
    return total;
}

int scheduler_route_dialers(const scheduler_route_t *r)
{
    return r->count;
}

int scheduler_route_pick(scheduler_route_t *r)
{
    route_dialer_t *best = NULL;
    for (int i = 0; i < r->count; i++)
        if (r->dialers[i].free > 0 && (!best || r->dialers[i].free > best->free))
            best = &r->dialers[i];
    if (!best)
        return -1;
    best->free--;
    if (best->cps > 0)
        best->tokens -= 1;
    return best->partitions[best->next++ % (unsigned)best->npartitions];
}

/* Parses a Postgres int[] literal ("{0,3,7}") into *out (caller frees);
 * returns the count, or -1 when the text is not such a literal. */
static int parse_int_array(const char *text, int **out)
{
    size_t cap = 1;
    for (const char *c = text; *c; c++)
        cap += *c == ',';
    int *v = ob_xmalloc(cap * sizeof(int));
    int n = 0;
    const char *s = text;
    if (*s++ != '{')
        goto bad;
    while (*s && *s != '}') {
        char *end;
        long p = strtol(s, &end, 10);
        if (end == s || p < 0 || p > 1 << 30 || (size_t)n == cap)
            goto bad;
        v[n++] = (int)p;
        s = *end == ',' ? end + 1 : end;
    }
    if (*s != '}' || s[1])
        goto bad;
    *out = v;
    return n;
bad:
    free(v);
    return -1;
}

ob_rc_t scheduler_route_refresh(scheduler_route_t *r, PGconn *pg, int stale_after_ms, ob_err_t *err)
{
    PGresult *res = NULL;
    scheduler_dialer_t *list = NULL;
    int rows = 0;
    char stale[16];
    snprintf(stale, sizeof(stale), "%d", stale_after_ms);
    const char *params[] = {stale};

    ob_rc_t rc = ob_pg_exec(pg, DIALERS_SQL, 1, params, &res, err);
    if (rc != OB_OK)
        goto out;
    rows = PQntuples(res);
    list = ob_xcalloc(rows ? (size_t)rows : 1, sizeof(*list));
    for (int i = 0; i < rows; i++) {
        int *parts = NULL;
        int n = parse_int_array(PQgetvalue(res, i, 3), &parts);
        list[i] = (scheduler_dialer_t){
            .instance_id = PQgetvalue(res, i, 0),
            .channels = atol(PQgetvalue(res, i, 1)),
            .busy = atol(PQgetvalue(res, i, 2)),
            .partitions = parts,
            .npartitions = n < 0 ? 0 : n, /* unreadable: not routable */
            .age_ms = atoll(PQgetvalue(res, i, 4)),
            .cps = atof(PQgetvalue(res, i, 5)),
        };
    }
out:
    /* Also on failure: an empty route releases nothing. */
    scheduler_route_set(r, list, (size_t)rows, stale_after_ms, ob_mono_ms());
    for (int i = 0; i < rows; i++)
        free((void *)list[i].partitions);
    free(list);
    PQclear(res);
    return rc;
}
