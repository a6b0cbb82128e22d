/*
 * eval_detect's tallies (eval_report.h). Proportions carry Wilson score 95%
 * intervals, which stay inside 0-100% and are honest at 40 recordings and
 * at 0 or 100%, where the normal approximation is not.
 */
#include "eval_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const eval_classes[EVAL_CLASSES] = {"voice", "answeringmachine", "fax",
                                                "informationtone", "unknown"};

#define DETECTORS 2
static const char *const detector_names[DETECTORS] = {"ob_detect", "amd_baseline"};
static const char *const detector_titles[DETECTORS] = {"ob_detect", "AMD() defaults"};

typedef struct {
    eval_row_t row;                /* the manifest line */
    eval_outcome_t out[DETECTORS]; /* ob_detect's, the baseline's */
} item_t;

struct eval {
    char split[32]; /* printed in the title */
    item_t *items;  /* every recording, in manifest order */
    int n, cap;     /* used, allocated */
};

/* A proportion and its interval. */
typedef struct {
    int k, n;         /* successes of trials */
    double p, lo, hi; /* k/n and the Wilson 95% interval, 0..1 */
} prop_t;

/* One detector's overall figures. */
typedef struct {
    prop_t pm;                   /* person vs machine right, over both labels */
    prop_t person_machine;       /* people called machines, of people */
    prop_t machine_person;       /* machines called people, of machines */
    prop_t unknown;              /* unknown, of people and machines */
    prop_t fax, sit;             /* right, of each */
    prop_t before_beep;          /* machine verdicts before the beep, of greetings with one */
    int false_beeps_early;       /* beeps before the callee's own sound (ringback, noise) */
    int false_beeps;             /* the same in every stratum */
    int revised, revised_people; /* voice verdicts a late beep made machines', of people */
    int people_p50, people_p90, people_p95, npeople; /* verdict after first words, ms */
    int beep_lead_p10, beep_lead_p50, beep_lead_p90; /* beep start minus machine verdict, ms */
    double cpu_ms_per_call;                          /* mean CPU per recording */
    double cpu_us_per_audio_s;                       /* CPU per second of audio fed */
} summary_t;

eval_t *eval_new(const char *split)
{
    eval_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        abort();
    snprintf(ev->split, sizeof(ev->split), "%s", split);
    return ev;
}

void eval_free(eval_t *ev)
{
    if (!ev)
        return;
    free(ev->items);
    free(ev);
}

void eval_add(eval_t *ev, const eval_row_t *row, const eval_outcome_t *ob,
              const eval_outcome_t *amd)
{
    if (ev->n == ev->cap) {
        ev->cap = ev->cap ? 2 * ev->cap : 256;
        ev->items = realloc(ev->items, (size_t)ev->cap * sizeof(*ev->items));
        if (!ev->items)
            abort();
    }
    item_t *it = &ev->items[ev->n++];
    it->row = *row;
    it->out[0] = *ob;
    it->out[1] = *amd;
}

static prop_t prop(int k, int n)
{
    prop_t r = {.k = k, .n = n, .p = n ? (double)k / n : 0, .lo = 0, .hi = 1};
    if (n) {
        double z = 1.959964, z2 = z * z, d = 1 + z2 / n;
        double c = (r.p + z2 / (2.0 * n)) / d;
        double h = z * sqrt(r.p * (1 - r.p) / n + z2 / (4.0 * n * n)) / d;
        r.lo = c - h < 0 ? 0 : c - h;
        r.hi = c + h > 1 ? 1 : c + h;
    }
    return r;
}

static int by_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int pct(int *v, int n, double p)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof(int), by_int);
    return v[(int)(p * (n - 1) + 0.5)];
}

static bool person_or_machine(int c)
{
    return c == EVAL_VOICE || c == EVAL_MACHINE;
}

/* A beep reported where there was none yet (100 ms of slack). */
static bool false_beep(const item_t *it, int d)
{
    const eval_outcome_t *o = &it->out[d];
    return o->beep && (it->row.beep_ms < 0 || o->beep_ms < it->row.beep_ms - 100);
}

/* A beep reported before the callee made any sound of its own: ringback
 * after the answer, or line noise (early media is never searched for one);
 * 100 ms of slack, as the detector reports a tone's start to its 20 ms
 * frame and from a window. Needs the manifest's onset_ms. */
static bool early_beep(const item_t *it, int d)
{
    const eval_outcome_t *o = &it->out[d];
    return false_beep(it, d) &&
           (it->row.onset_ms < 0 ? it->row.beep_ms < 0 : o->beep_ms < it->row.onset_ms - 100);
}

static bool in_stratum(const item_t *it, const char *stratum)
{
    return !stratum || strcmp(it->row.stratum, stratum) == 0;
}

static summary_t summarise(const eval_t *ev, int d, const char *stratum)
{
    summary_t s = {0};
    int pm = 0, pm_n = 0, pcm = 0, people = 0, mcp = 0, machines = 0, unk = 0;
    int fax = 0, fax_n = 0, sit = 0, sit_n = 0, bb = 0, bb_n = 0, nlead = 0;
    int *lat = calloc((size_t)ev->n + 1, sizeof(int)),
        *lead = calloc((size_t)ev->n + 1, sizeof(int));
    double cpu = 0, audio = 0;
    int calls = 0;
    for (int i = 0; i < ev->n; i++) {
        const item_t *it = &ev->items[i];
        if (!in_stratum(it, stratum))
            continue;
        const eval_outcome_t *o = &it->out[d];
        int want = it->row.want;
        calls++;
        cpu += o->cpu_s;
        audio += o->audio_s;
        s.false_beeps += false_beep(it, d);
        s.false_beeps_early += early_beep(it, d);
        if (strcmp(o->why, "late_beep") == 0) {
            s.revised++;
            s.revised_people += want == EVAL_VOICE;
        }
        if (person_or_machine(want)) {
            pm_n++;
            pm += o->verdict == want;
            unk += o->verdict == EVAL_UNKNOWN;
        }
        if (want == EVAL_VOICE) {
            people++;
            pcm += o->verdict == EVAL_MACHINE;
            if (o->verdict == EVAL_VOICE && it->row.greeting_end_ms >= 0)
                lat[s.npeople++] = o->decision_ms - it->row.greeting_end_ms;
        }
        if (want == EVAL_MACHINE) {
            machines++;
            mcp += o->verdict == EVAL_VOICE;
            if (it->row.beep_ms >= 0) {
                bb_n++;
                if (o->verdict == EVAL_MACHINE) {
                    bb += o->decision_ms < it->row.beep_ms;
                    lead[nlead++] = it->row.beep_ms - o->decision_ms;
                }
            }
        }
        if (want == EVAL_FAX) {
            fax_n++;
            fax += o->verdict == want;
        }
        if (want == EVAL_INFOTONE) {
            sit_n++;
            sit += o->verdict == want;
        }
    }
    s.pm = prop(pm, pm_n);
    s.person_machine = prop(pcm, people);
    s.machine_person = prop(mcp, machines);
    s.unknown = prop(unk, pm_n);
    s.fax = prop(fax, fax_n);
    s.sit = prop(sit, sit_n);
    s.before_beep = prop(bb, bb_n);
    s.people_p50 = pct(lat, s.npeople, 0.5);
    s.people_p90 = pct(lat, s.npeople, 0.9);
    s.people_p95 = pct(lat, s.npeople, 0.95);
    s.beep_lead_p10 = pct(lead, nlead, 0.1);
    s.beep_lead_p50 = pct(lead, nlead, 0.5);
    s.beep_lead_p90 = pct(lead, nlead, 0.9);
    s.cpu_ms_per_call = calls ? 1000 * cpu / calls : 0;
    s.cpu_us_per_audio_s = audio > 0 ? 1e6 * cpu / audio : 0;
    free(lat);
    free(lead);
    return s;
}

/* The strata in order of first appearance. */
static int strata(const eval_t *ev, const char **names, int max)
{
    int n = 0;
    for (int i = 0; i < ev->n; i++) {
        int k = 0;
        while (k < n && strcmp(names[k], ev->items[i].row.stratum) != 0)
            k++;
        if (k == n && n < max)
            names[n++] = ev->items[i].row.stratum;
    }
    return n;
}

/* Right (exact callee type) and unknowns in a stratum for detector d, and
 * the stratum's label ("mixed" when it has several). */
static prop_t stratum_right(const eval_t *ev, int d, const char *stratum, int *unknown,
                            const char **label)
{
    int k = 0, n = 0;
    *unknown = 0;
    *label = NULL;
    for (int i = 0; i < ev->n; i++) {
        const item_t *it = &ev->items[i];
        if (!in_stratum(it, stratum))
            continue;
        n++;
        k += it->out[d].verdict == it->row.want;
        *unknown += it->out[d].verdict == EVAL_UNKNOWN && it->row.want != EVAL_UNKNOWN;
        if (!*label)
            *label = it->row.label;
        else if (strcmp(*label, it->row.label) != 0)
            *label = "mixed";
    }
    return prop(k, n);
}

static const char *short_label(const char *label)
{
    return strcmp(label, "answeringmachine") == 0  ? "machine"
           : strcmp(label, "informationtone") == 0 ? "sit"
                                                   : label;
}

static void print_prop(const prop_t *p)
{
    printf("%5.1f%% [%5.1f-%5.1f]", 100 * p->p, 100 * p->lo, 100 * p->hi);
}

static void print_row(const char *what, const prop_t *a, const prop_t *b)
{
    printf("%-40s %4d/%-4d ", what, a->k, a->n);
    print_prop(a);
    printf("   %4d/%-4d ", b->k, b->n);
    print_prop(b);
    printf("\n");
}

static void json_prop(FILE *j, const char *key, const prop_t *p)
{
    fprintf(j, "\"%s\":{\"k\":%d,\"n\":%d,\"p\":%.4f,\"lo\":%.4f,\"hi\":%.4f}", key, p->k, p->n,
            p->p, p->lo, p->hi);
}

static void json_summary(FILE *j, const summary_t *s)
{
    json_prop(j, "person_vs_machine", &s->pm);
    fputc(',', j);
    json_prop(j, "people_called_machines", &s->person_machine);
    fputc(',', j);
    json_prop(j, "machines_called_people", &s->machine_person);
    fputc(',', j);
    json_prop(j, "unknown", &s->unknown);
    fputc(',', j);
    json_prop(j, "fax", &s->fax);
    fputc(',', j);
    json_prop(j, "informationtone", &s->sit);
    fputc(',', j);
    json_prop(j, "machine_before_beep", &s->before_beep);
    fprintf(j,
            ",\"false_beeps_ringback_early\":%d,\"false_beeps\":%d,"
            "\"revised_by_late_beep\":{\"all\":%d,\"people\":%d},"
            "\"people_after_first_words_ms\":{\"n\":%d,\"p50\":%d,\"p90\":%d,\"p95\":%d},"
            "\"beep_minus_machine_verdict_ms\":{\"p10\":%d,\"p50\":%d,\"p90\":%d},"
            "\"cpu_ms_per_call\":%.3f,"
            "\"cpu_us_per_audio_second\":%.1f",
            s->false_beeps_early, s->false_beeps, s->revised, s->revised_people, s->npeople,
            s->people_p50, s->people_p90, s->people_p95, s->beep_lead_p10, s->beep_lead_p50,
            s->beep_lead_p90, s->cpu_ms_per_call, s->cpu_us_per_audio_s);
}

int eval_write_results(const eval_t *ev, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "name\tstratum\tlabel\tchannel\tob_verdict\tob_ms\tob_why\tob_beep_ms\t"
               "amd_verdict\tamd_ms\tamd_why\n");
    for (int i = 0; i < ev->n; i++) {
        const item_t *it = &ev->items[i];
        const eval_outcome_t *o = &it->out[0], *a = &it->out[1];
        fprintf(f, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\n", it->row.name, it->row.stratum,
                it->row.label, it->row.channel, eval_classes[o->verdict], o->decision_ms, o->why,
                o->beep ? o->beep_ms : -1, eval_classes[a->verdict], a->decision_ms, a->why);
    }
    return fclose(f) == 0 ? 0 : -1;
}

typedef struct {
    char what[640]; /* the target, as printed */
    bool ok;        /* met */
} target_t;

int eval_report(eval_t *ev, bool sanity, const char *json_path)
{
    if (ev->n == 0) {
        fprintf(stderr, "eval_detect: no recordings in split %s\n", ev->split);
        return -1;
    }
    /* ob_detect's misses, the first 40 of them. */
    int misses = 0;
    for (int i = 0; i < ev->n; i++) {
        const item_t *it = &ev->items[i];
        const eval_outcome_t *o = &it->out[0];
        if (o->verdict == it->row.want && !false_beep(it, 0))
            continue;
        if (++misses <= 40)
            printf("  miss: %s (%s) -> %s by %s at %d ms%s\n", it->row.name, it->row.label,
                   eval_classes[o->verdict], o->why, o->decision_ms,
                   false_beep(it, 0) ? ", a beep where there was none" : "");
    }
    if (misses > 40)
        printf("  ... and %d more misses\n", misses - 40);

    const char *names[128];
    int ns = strata(ev, names, 128);
    printf("\ncallee-type detection, split %s: %d recordings, %d strata\n", ev->split, ev->n, ns);
    printf("%-24s %-8s %4s | %-29s %4s | %-29s %4s\n", "stratum", "label", "n", "ob_detect right",
           "unk", "AMD() defaults right", "unk");
    target_t targets[64];
    int nt = 0;
    char worst[512] = "";
    bool strata_ok = true;
    for (int k = 0; k < ns; k++) {
        int unk[DETECTORS];
        const char *label;
        prop_t r[DETECTORS];
        for (int d = 0; d < DETECTORS; d++)
            r[d] = stratum_right(ev, d, names[k], &unk[d], &label);
        printf("%-24s %-8s %4d | %4d ", names[k], short_label(label), r[0].n, r[0].k);
        print_prop(&r[0]);
        printf(" %4d | %4d ", unk[0], r[1].k);
        print_prop(&r[1]);
        printf(" %4d\n", unk[1]);
        summary_t s = summarise(ev, 0, names[k]);
        if (s.pm.n == r[0].n && s.pm.p < 0.90) {
            strata_ok = false;
            size_t len = strlen(worst);
            snprintf(worst + len, sizeof(worst) - len, "%s%s %.0f%%", len ? ", " : "", names[k],
                     100 * s.pm.p);
        }
    }

    summary_t sum[DETECTORS];
    for (int d = 0; d < DETECTORS; d++)
        sum[d] = summarise(ev, d, NULL);
    printf("\n%-40s %-30s %-30s\n", "overall", "ob_detect", "AMD() defaults");
    print_row("person vs machine right", &sum[0].pm, &sum[1].pm);
    print_row("people called machines", &sum[0].person_machine, &sum[1].person_machine);
    print_row("machines called people", &sum[0].machine_person, &sum[1].machine_person);
    print_row("unknown (people and machines)", &sum[0].unknown, &sum[1].unknown);
    print_row("fax right", &sum[0].fax, &sum[1].fax);
    print_row("information tone right", &sum[0].sit, &sum[1].sit);
    print_row("machine verdict before the beep", &sum[0].before_beep, &sum[1].before_beep);
    printf("\n");
    for (int d = 0; d < DETECTORS; d++)
        printf("%s:\n  people: verdict %d / %d / %d ms (p50/p90/p95) after their first words end "
               "(%d verdicts)\n  machines: the beep came %d / %d / %d ms (p10/p50/p90) after "
               "the verdict\n  false beeps: %d (before the callee's own sound: %d)\n"
               "  voice verdicts a late beep revised to machine: %d (of them people: %d)\n"
               "  CPU: %.3f ms per call, %.1f us per second of audio\n",
               detector_titles[d], sum[d].people_p50, sum[d].people_p90, sum[d].people_p95,
               sum[d].npeople, sum[d].beep_lead_p10, sum[d].beep_lead_p50, sum[d].beep_lead_p90,
               sum[d].false_beeps, sum[d].false_beeps_early, sum[d].revised, sum[d].revised_people,
               sum[d].cpu_ms_per_call, sum[d].cpu_us_per_audio_s);

    const summary_t *o = &sum[0];
#define TARGET(ok_, ...)                                                                           \
    do {                                                                                           \
        snprintf(targets[nt].what, sizeof(targets[nt].what), __VA_ARGS__);                         \
        targets[nt++].ok = (ok_);                                                                  \
    } while (0)
    if (sanity) {
        /* make test: the harness ran, and what any detector worth running does. */
        summary_t cng = summarise(ev, 0, "fax-cng"), na = summarise(ev, 0, "sit-na");
        TARGET(ns >= 20, "every stratum was evaluated (%d strata)", ns);
        TARGET(o->pm.p >= 0.60, "person vs machine >= 60%% (%.1f%%)", 100 * o->pm.p);
        TARGET(cng.fax.n > 0 && cng.fax.p >= 0.99, "fax CNG all right (%d of %d)", cng.fax.k,
               cng.fax.n);
        TARGET(na.sit.n > 0 && na.sit.p >= 0.99,
               "North American information tones all right (%d of %d)", na.sit.k, na.sit.n);
        TARGET(o->false_beeps_early == 0, "ringback or early media taken for a beep: 0 (%d)",
               o->false_beeps_early);
        TARGET(o->npeople > 0 && o->people_p50 <= 2500,
               "median voice verdict <= 2.5 s after the first words end (%d ms)", o->people_p50);
    } else {
        TARGET(o->pm.p >= 0.95, "person vs machine >= 95%% overall (%.1f%%)", 100 * o->pm.p);
        TARGET(strata_ok, "person vs machine >= 90%% in every stratum%s%s", worst[0] ? ": " : "",
               worst);
        TARGET(o->person_machine.p <= 0.02, "people called machines <= 2%% (%.1f%%)",
               100 * o->person_machine.p);
        TARGET(o->fax.p >= 0.99, "fax >= 99%% (%.1f%%)", 100 * o->fax.p);
        TARGET(o->sit.p >= 0.99, "information tone >= 99%% (%.1f%%)", 100 * o->sit.p);
        TARGET(o->false_beeps_early == 0, "ringback or early media taken for a beep: 0 (%d)",
               o->false_beeps_early);
        TARGET(o->npeople > 0 && o->people_p50 <= 1000,
               "median voice verdict <= 1.0 s after the first words end (%d ms)", o->people_p50);
        TARGET(o->before_beep.p >= 0.95, "machine verdict before the beep >= 95%% (%.1f%%)",
               100 * o->before_beep.p);
    }
#undef TARGET
    int passed = 0, failed = 0;
    printf("\ntargets (%s, ob_detect, split %s):\n", sanity ? "make test's sanity set" : "issue 22",
           ev->split);
    for (int t = 0; t < nt; t++) {
        printf("%s %s\n", targets[t].ok ? "ok  " : "FAIL", targets[t].what);
        targets[t].ok ? passed++ : failed++;
    }
    printf("detect: %d passed, %d failed\n", passed, failed);

    if (json_path) {
        FILE *j = fopen(json_path, "w");
        if (!j) {
            fprintf(stderr, "eval_detect: cannot write %s\n", json_path);
            return -1;
        }
        fprintf(j, "{\"split\":\"%s\",\"recordings\":%d,\"detectors\":{", ev->split, ev->n);
        for (int d = 0; d < DETECTORS; d++) {
            fprintf(j, "%s\"%s\":{", d ? "," : "", detector_names[d]);
            json_summary(j, &sum[d]);
            fprintf(j, ",\"strata\":{");
            for (int k = 0; k < ns; k++) {
                int unk;
                const char *label;
                prop_t r = stratum_right(ev, d, names[k], &unk, &label);
                fprintf(j, "%s\"%s\":{\"label\":\"%s\",\"unknown\":%d,", k ? "," : "", names[k],
                        label, unk);
                json_prop(j, "right", &r);
                fputc('}', j);
            }
            fprintf(j, "}}");
        }
        fprintf(j, "},\"targets\":[");
        for (int t = 0; t < nt; t++)
            fprintf(j, "%s{\"what\":\"%s\",\"ok\":%s}", t ? "," : "", targets[t].what,
                    targets[t].ok ? "true" : "false");
        fprintf(j, "]}\n");
        if (fclose(j) != 0)
            return -1;
    }
    return failed;
}
