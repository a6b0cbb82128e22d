/*
 * Evaluates ob_detect on the labelled corpus (tools/detect_corpus.py), and
 * Asterisk AMD()'s rules with their defaults (amd_baseline.c) beside it:
 * feeds each recording as a call would (early media, the answer, then
 * 20 ms packets) and prints, per stratum and overall, accuracy with Wilson
 * 95% intervals, person vs machine, people called machines, unknowns,
 * latencies, false beeps and CPU per call; then the targets
 * (docs/detection.md) as pass or fail.
 *
 * Usage: eval_detect CORPUS_DIR [--split NAME] [--targets full|sanity]
 *                    [--test-sha256 FILE] [--json FILE] [--results FILE] [--strict]
 * --targets full (the default) prints the targets, which only fail
 * the run with --strict; --targets sanity (make test's small slice) checks
 * that the harness ran and a few targets any detector worth running meets,
 * and fails the run when one is missed. --test-sha256 checks the test
 * split's manifest lines against a committed checksum first. --results
 * writes each recording's verdicts as TSV (what a tuner reads). Exits 0, 1 (a
 * target failed where that fails the run) or 2 (bad input).
 */
#include "amd_baseline.h"
#include "ob_detect.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_report.h"

static int class_of(const char *name)
{
    for (int i = 0; i < EVAL_CLASSES; i++)
        if (strcmp(name, eval_classes[i]) == 0)
            return i;
    return EVAL_UNKNOWN;
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
    *n = s ? fread(s, 2, (size_t)bytes / 2, f) : 0;
    fclose(f);
    return s;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ob_detect on one recording, until its result is final. */
static void run_ob(const int16_t *s, size_t n, size_t early, eval_outcome_t *o)
{
    double t0 = cpu_now();
    ob_detect_t *d = ob_detect_new(NULL);
    size_t i = 0;
    bool done = false;
    for (; i < early && !done; i += 160)
        done = ob_detect_feed(d, s + i, i + 160 <= early ? 160 : early - i);
    if (!done)
        i = early;
    if (!done && early < n)
        ob_detect_answered(d);
    for (; i < n && !done; i += 160)
        done = ob_detect_feed(d, s + i, i + 160 <= n ? 160 : n - i);
    const ob_detect_result_t *r = ob_detect_result(d);
    o->verdict =
        r->verdict == OB_DETECT_PENDING ? EVAL_UNKNOWN : class_of(ob_detect_name(r->verdict));
    o->decision_ms = r->decision_ms;
    o->beep = r->beep;
    o->beep_ms = r->beep_ms;
    snprintf(o->why, sizeof(o->why), "%s", r->why ? r->why : "-");
    ob_detect_free(d);
    o->cpu_s = cpu_now() - t0;
    o->audio_s = (double)(i < n ? i : n) / 8000;
}

/* AMD()'s rules on the audio after the answer (it does not hear early media). */
static void run_amd(const int16_t *s, size_t n, size_t early, eval_outcome_t *o)
{
    double t0 = cpu_now();
    amd_t a;
    amd_init(&a, NULL);
    size_t i = early;
    amd_status_t st = AMD_PENDING;
    for (; i + 160 <= n && st == AMD_PENDING; i += 160)
        st = amd_feed(&a, s + i, 160);
    o->verdict = st == AMD_HUMAN ? EVAL_VOICE : st == AMD_MACHINE ? EVAL_MACHINE : EVAL_UNKNOWN;
    o->decision_ms = st == AMD_PENDING ? a.total_ms : a.decision_ms;
    o->beep = false;
    o->beep_ms = -1;
    snprintf(o->why, sizeof(o->why), "%s", a.cause ? a.cause : "ended");
    o->cpu_s = cpu_now() - t0;
    o->audio_s = (double)(i - early) / 8000;
}

/* The SHA-256 (hex) of the manifest's test split lines, as
 * tools/detect_corpus.py writes it to test-split.sha256. */
static int test_split_sha256(const char *manifest, char hex[65])
{
    FILE *m = fopen(manifest, "r");
    if (!m)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    char line[2048];
    while (fgets(line, sizeof(line), m)) {
        char split[32] = "";
        if (sscanf(line, "%*s %*s %*d %*d %*d %*s %31s", split) == 1 && strcmp(split, "test") == 0)
            EVP_DigestUpdate(ctx, line, strlen(line));
    }
    fclose(m);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned int k = 0; k < len && k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", md[k]);
    return 0;
}

static int check_test_split(const char *manifest, const char *want_file)
{
    char want[80] = "", got[65] = "";
    FILE *f = fopen(want_file, "r");
    if (!f || fscanf(f, "%64s", want) != 1) {
        fprintf(stderr, "eval_detect: cannot read the test split's checksum from %s\n", want_file);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (test_split_sha256(manifest, got) != 0 || strcmp(want, got) != 0) {
        fprintf(stderr,
                "eval_detect: the test split in %s is not the frozen one (sha256 %s, %s has "
                "%s): the generator changed it. If that was meant, say why in the commit and "
                "copy test-split.sha256 from the corpus directory to %s.\n",
                manifest, got, want_file, want, want_file);
        return -1;
    }
    printf("test split: sha256 %s, as frozen in %s\n", got, want_file);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *json = NULL, *split = NULL, *sha_file = NULL, *targets = "full";
    const char *results = NULL;
    bool strict = false;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0 && k + 1 < argc)
            json = argv[++k];
        else if (strcmp(argv[k], "--results") == 0 && k + 1 < argc)
            results = argv[++k];
        else if (strcmp(argv[k], "--split") == 0 && k + 1 < argc)
            split = argv[++k];
        else if (strcmp(argv[k], "--test-sha256") == 0 && k + 1 < argc)
            sha_file = argv[++k];
        else if (strcmp(argv[k], "--targets") == 0 && k + 1 < argc)
            targets = argv[++k];
        else if (strcmp(argv[k], "--strict") == 0)
            strict = true;
        else if (argv[k][0] != '-' && !dir)
            dir = argv[k];
        else {
            fprintf(stderr, "eval_detect: unknown argument %s\n", argv[k]);
            dir = NULL;
            break;
        }
    }
    if (!dir || (strcmp(targets, "full") != 0 && strcmp(targets, "sanity") != 0)) {
        fprintf(stderr, "usage: eval_detect CORPUS_DIR [--split NAME] [--targets full|sanity] "
                        "[--test-sha256 FILE] [--json FILE] [--results FILE] [--strict]\n");
        return 2;
    }
    char path[4096], line[2048];
    snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
    if (sha_file && check_test_split(path, sha_file) != 0)
        return 2;
    FILE *m = fopen(path, "r");
    if (!m) {
        fprintf(stderr, "eval_detect: no %s (run tools/detect_corpus.py)\n", path);
        return 2;
    }
    eval_t *ev = eval_new(split ? split : "all");
    while (fgets(line, sizeof(line), m)) {
        eval_row_t row = {.onset_ms = -1};
        int cols = sscanf(line, "%127s %31s %d %d %d %63s %15s %d %63s", row.name, row.label,
                          &row.early_ms, &row.greeting_end_ms, &row.beep_ms, row.stratum, row.split,
                          &row.onset_ms, row.channel);
        if (cols < 5) {
            fprintf(stderr, "eval_detect: bad manifest line: %s", line);
            fclose(m);
            eval_free(ev);
            return 2;
        }
        if (cols < 6) /* the first corpus's manifest: the label is the stratum */
            snprintf(row.stratum, sizeof(row.stratum), "%s", row.label);
        if (cols < 7)
            snprintf(row.split, sizeof(row.split), "-");
        if (strcmp(row.split, "fixture") == 0 && !(split && strcmp(split, "fixture") == 0))
            continue; /* test_sip's recordings */
        if (split && strcmp(row.split, split) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s.raw", dir, row.name);
        size_t n = 0;
        int16_t *s = read_raw(path, &n);
        if (!s) {
            fprintf(stderr, "eval_detect: cannot read %s\n", path);
            fclose(m);
            eval_free(ev);
            return 2;
        }
        row.want = class_of(row.label);
        size_t early = (size_t)row.early_ms * 8;
        eval_outcome_t ob = {0}, amd = {0};
        run_ob(s, n, early, &ob);
        run_amd(s, n, early, &amd);
        free(s);
        eval_add(ev, &row, &ob, &amd);
    }
    fclose(m);
    if (results && eval_write_results(ev, results) != 0) {
        fprintf(stderr, "eval_detect: cannot write %s\n", results);
        eval_free(ev);
        return 2;
    }
    int failed = eval_report(ev, strcmp(targets, "sanity") == 0, json);
    eval_free(ev);
    if (failed < 0)
        return 2;
    return failed && (strict || strcmp(targets, "sanity") == 0) ? 1 : 0;
}
