/*
 * Evaluates ob_detect on a labelled corpus (tools/detect_corpus.py): feeds
 * each recording as a call would (early media, the answer, then audio in
 * 20 ms packets), and prints the confusion matrix, accuracy per class, human
 * vs machine accuracy and decision latencies, then checks the targets:
 *
 *   fax and informationtone        >= 98% right
 *   voice vs answeringmachine      >= 90% right (the two classes together)
 *   voice verdicts                 p95 within 2500 ms of the greeting's end
 *   answeringmachine verdicts      before the beep, or (a greeting shorter
 *                                  than the greeting threshold, which a
 *                                  person's answer can be as long as) by the
 *                                  beep itself within 250 ms of its start
 *
 * Usage: eval_detect CORPUS_DIR [--json FILE]. Prints "detect: N passed,
 * M failed" over the targets; exits 1 when one is missed.
 */
#include "ob_detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 5
static const char *const classes[CLASSES] = {"voice", "answeringmachine", "fax", "informationtone",
                                             "unknown"};

typedef struct {
    int confusion[CLASSES][CLASSES]; /* [expected][got] */
    int *human_ms, nhuman;           /* voice verdict minus greeting end */
    int *machine_ms, nmachine;       /* machine verdict time */
    int with_beep, before_beep, by_beep, beeps_heard;
    int *all_ms, nall; /* decision time of every verdict */
} stats_t;

static int class_of(const char *name)
{
    for (int i = 0; i < CLASSES; i++)
        if (strcmp(name, classes[i]) == 0)
            return i;
    return CLASSES - 1;
}

static int by_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static int pct(int *v, int n, double p)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof(int), by_int);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static int16_t *read_raw(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    rewind(f);
    int16_t *s = malloc((size_t)bytes + 2);
    *n = fread(s, 2, (size_t)bytes / 2, f);
    fclose(f);
    return s;
}

/* Runs one recording; returns the verdict's class. */
static int run(const int16_t *s, size_t n, size_t early, ob_detect_result_t *out)
{
    ob_detect_t *d = ob_detect_new(NULL);
    size_t i = 0;
    bool done = false;
    for (; i < early && !done; i += 160)
        done = ob_detect_feed(d, s + i, i + 160 <= early ? 160 : early - i);
    i = early;
    if (!done && early < n)
        ob_detect_answered(d);
    for (; i < n && !done; i += 160)
        done = ob_detect_feed(d, s + i, i + 160 <= n ? 160 : n - i);
    *out = *ob_detect_result(d);
    ob_detect_free(d);
    if (out->verdict == OB_DETECT_PENDING)
        out->verdict = OB_DETECT_UNKNOWN; /* the recording ended first */
    return class_of(ob_detect_name(out->verdict));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: eval_detect CORPUS_DIR [--json FILE]\n");
        return 2;
    }
    const char *dir = argv[1], *json = argc > 3 && strcmp(argv[2], "--json") == 0 ? argv[3] : NULL;
    char path[4096], line[1024];
    snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
    FILE *m = fopen(path, "r");
    if (!m) {
        fprintf(stderr, "eval_detect: no %s (run tools/detect_corpus.py)\n", path);
        return 2;
    }
    stats_t st = {0};
    int cap = 4096, total = 0;
    st.human_ms = calloc((size_t)cap, sizeof(int));
    st.machine_ms = calloc((size_t)cap, sizeof(int));
    st.all_ms = calloc((size_t)cap, sizeof(int));
    while (fgets(line, sizeof(line), m) && total < cap) {
        char name[512], label[64];
        int early_ms, greeting_end, beep;
        if (sscanf(line, "%511s %63s %d %d %d", name, label, &early_ms, &greeting_end, &beep) != 5)
            continue;
        snprintf(path, sizeof(path), "%s/%s.raw", dir, name);
        size_t n = 0;
        int16_t *s = read_raw(path, &n);
        if (!s) {
            fprintf(stderr, "eval_detect: cannot read %s\n", path);
            return 2;
        }
        ob_detect_result_t r;
        int want = class_of(label), got = run(s, n, (size_t)early_ms * 8, &r);
        free(s);
        total++;
        st.confusion[want][got]++;
        st.all_ms[st.nall++] = r.decision_ms;
        if (want == 0 && got == 0)
            st.human_ms[st.nhuman++] = r.decision_ms - greeting_end;
        if (want == 1 && got == 1) {
            st.machine_ms[st.nmachine++] = r.decision_ms;
            if (beep >= 0) {
                st.with_beep++;
                st.before_beep += r.decision_ms < beep;
                st.by_beep += r.decision_ms >= beep && r.decision_ms <= beep + 250;
                if (r.decision_ms >= beep)
                    printf("  late: %s decided by %s at %d ms, the beep began at %d ms\n", name,
                           r.why, r.decision_ms, beep);
                st.beeps_heard += r.beep;
            }
        }
        if (want != got)
            printf("  miss: %s (%s) -> %s by %s at %d ms\n", name, label, ob_detect_name(r.verdict),
                   r.why ? r.why : "-", r.decision_ms);
    }
    fclose(m);

    printf("\n%-18s", "expected \\ got");
    for (int j = 0; j < CLASSES; j++)
        printf(" %16s", classes[j]);
    printf(" %9s\n", "accuracy");
    double acc[CLASSES];
    for (int i = 0; i < CLASSES; i++) {
        int row = 0;
        printf("%-18s", classes[i]);
        for (int j = 0; j < CLASSES; j++) {
            printf(" %16d", st.confusion[i][j]);
            row += st.confusion[i][j];
        }
        acc[i] = row ? (double)st.confusion[i][i] / row : 1;
        printf(" %8.1f%%\n", 100 * acc[i]);
    }
    int hm = st.confusion[0][0] + st.confusion[1][1];
    int hm_all = 0;
    for (int j = 0; j < CLASSES; j++)
        hm_all += st.confusion[0][j] + st.confusion[1][j];
    double human_machine = hm_all ? (double)hm / hm_all : 1;
    int h50 = pct(st.human_ms, st.nhuman, 0.5), h95 = pct(st.human_ms, st.nhuman, 0.95);
    int m50 = pct(st.machine_ms, st.nmachine, 0.5), m95 = pct(st.machine_ms, st.nmachine, 0.95);
    int a50 = pct(st.all_ms, st.nall, 0.5), a95 = pct(st.all_ms, st.nall, 0.95);
    printf("\n%d recordings; human vs machine %.1f%%\n", total, 100 * human_machine);
    printf("decision latency, all verdicts: median %d ms, p95 %d ms (after the answer)\n", a50,
           a95);
    printf("voice verdicts after the greeting's end: median %d ms, p95 %d ms\n", h50, h95);
    printf("machine verdicts: median %d ms, p95 %d ms after the answer; before the beep %d of "
           "%d, by the beep %d; beep heard %d of %d\n",
           m50, m95, st.before_beep, st.with_beep, st.by_beep, st.beeps_heard, st.with_beep);

    struct {
        const char *what;
        bool ok;
    } targets[] = {
        {"fax >= 98%", acc[2] >= 0.98},
        {"informationtone >= 98%", acc[3] >= 0.98},
        {"human vs machine >= 90%", human_machine >= 0.90},
        {"voice verdict p95 <= 2500 ms after the greeting", h95 >= 0 && h95 <= 2500},
        {"machine verdict before the beep (short greetings: by it, within 250 ms)",
         st.before_beep + st.by_beep == st.with_beep},
    };
    int passed = 0, failed = 0;
    for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        printf("%s %s\n", targets[t].ok ? "ok  " : "FAIL", targets[t].what);
        targets[t].ok ? passed++ : failed++;
    }
    if (json) {
        FILE *j = fopen(json, "w");
        if (j) {
            fprintf(j,
                    "{\"recordings\":%d,\"accuracy\":{\"voice\":%.4f,\"answeringmachine\":%.4f,"
                    "\"fax\":%.4f,\"informationtone\":%.4f,\"unknown\":%.4f},"
                    "\"human_vs_machine\":%.4f,\"voice_after_greeting_ms\":{\"p50\":%d,\"p95\":%d},"
                    "\"machine_ms\":{\"p50\":%d,\"p95\":%d},\"all_ms\":{\"p50\":%d,\"p95\":%d},"
                    "\"machine_before_beep\":[%d,%d],\"machine_by_beep\":%d,"
                    "\"beeps_heard\":%d}\n",
                    total, acc[0], acc[1], acc[2], acc[3], acc[4], human_machine, h50, h95, m50,
                    m95, a50, a95, st.before_beep, st.with_beep, st.by_beep, st.beeps_heard);
            fclose(j);
        }
    }
    printf("detect: %d passed, %d failed\n", passed, failed);
    free(st.human_ms);
    free(st.machine_ms);
    free(st.all_ms);
    return failed ? 1 : 0;
}
