/*
 * The test callee for integration tests (harness_callee.h): its process,
 * its report lines and its recordings, and the measures a listener would
 * take of them.
 */
#include "harness_callee.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void h_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

char *h_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* The callee beside the services: OB_TEST_BIN_DIR is <build>/bin, the
 * callee is <build>/tests/callee/ob-test-callee (build or build/san). */
void h_callee_bin(char *out, size_t len)
{
    const char *bindir = getenv("OB_TEST_BIN_DIR") ? getenv("OB_TEST_BIN_DIR") : "build/bin";
    size_t n = strlen(bindir);
    while (n > 0 && bindir[n - 1] == '/')
        n--;
    if (n >= 4 && !strncmp(bindir + n - 4, "/bin", 4))
        n -= 4;
    snprintf(out, len, "%.*s/tests/callee/ob-test-callee", (int)n, bindir);
    cr_assert(access(out, X_OK) == 0, "%s: %s (make tests-build)", out, strerror(errno));
}

/* Starts the callee with rules (JSON text) and extra arguments (NULL-ended),
 * waiting for its "ready ADDR:PORT". */
void h_callee_start(h_callee_t *callee, const char *rules, const char *const *extra)
{
    char stem[64], rules_path[260], bin[512], ready[128] = "";
    int out[2];
    h_unique(stem, sizeof(stem), "callee");
    snprintf(callee->dir, sizeof(callee->dir), "build/test-logs/%s", stem);
    cr_assert(mkdir("build/test-logs", 0755) == 0 || errno == EEXIST);
    cr_assert(mkdir(callee->dir, 0755) == 0, "%s: %s", callee->dir, strerror(errno));
    snprintf(rules_path, sizeof(rules_path), "%s/rules.json", callee->dir);
    snprintf(callee->report, sizeof(callee->report), "%s/report.jsonl", callee->dir);
    snprintf(callee->log, sizeof(callee->log), "%s/callee->log", callee->dir);
    h_write_file(rules_path, rules, strlen(rules));
    h_callee_bin(bin, sizeof(bin));
    const char *argv[32] = {bin,        "--listen",     "127.0.0.1:0",  "--rules",   rules_path,
                            "--report", callee->report, "--record-dir", callee->dir, NULL};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    cr_assert(pipe(out) == 0);
    pid_t parent = getpid();
    callee->pid = fork();
    cr_assert(callee->pid >= 0);
    if (callee->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(callee->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], 1);
        dup2(fd, 2);
        close(out[0]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    size_t got = 0;
    while (got < sizeof(ready) - 1 && !strchr(ready, '\n') && poll(&pfd, 1, 5000) > 0) {
        ssize_t r = read(out[0], ready + got, sizeof(ready) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        ready[got] = 0;
    }
    close(out[0]);
    cr_assert(sscanf(ready, "ready 127.0.0.1:%d", &callee->port) == 1,
              "no ready line from %s (got \"%s\"); see %s", bin, ready, callee->log);
}

/* SIGTERM; returns the exit code. */
int h_callee_stop(h_callee_t *callee)
{
    int status = 0;
    kill(callee->pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(callee->pid, &status, WNOHANG) == 0; i++)
        h_sleep_ms(50);
    if (waitpid(callee->pid, &status, WNOHANG) == 0 && kill(callee->pid, 0) == 0) {
        kill(callee->pid, SIGKILL);
        waitpid(callee->pid, &status, 0);
        callee->pid = 0;
        return -1;
    }
    callee->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *h_callee_report(const h_callee_t *callee, const char *number)
{
    char key[96];
    snprintf(key, sizeof(key), "\"number\":\"%s\"", number);
    for (int i = 0; i < 60; i++) {
        char *text = h_read_text(callee->report);
        char *at = text ? strstr(text, key) : NULL;
        if (at) {
            while (at > text && at[-1] != '\n')
                at--;
            char *line = strndup(at, strcspn(at, "\n"));
            free(text);
            return line;
        }
        free(text);
        h_sleep_ms(50);
    }
    cr_assert_fail("no report line for %s in %s", number, callee->report);
    return NULL;
}

double h_json_num(const char *json, const char *path)
{
    char *v = h_json_path(json, path);
    cr_assert(v, "no %s in %s", path, json);
    double d = atof(v);
    free(v);
    return d;
}

/* A 16-bit mono WAV (the callee's recordings): samples malloc'd, *n set. */
int16_t *h_wav_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    uint8_t h[44];
    cr_assert_eq(fread(h, 1, 44, f), 44u);
    cr_assert(!memcmp(h, "RIFF", 4) && !memcmp(h + 36, "data", 4), "%s: not our WAV", path);
    size_t bytes = (size_t)h[40] | (size_t)h[41] << 8 | (size_t)h[42] << 16 | (size_t)h[43] << 24;
    int16_t *s = malloc(bytes + 2);
    *n = fread(s, 2, bytes / 2, f);
    fclose(f);
    return s;
}

/* RMS of [from_s, to_s) of the recording. */
double h_rms(const int16_t *s, size_t n, double from_s, double to_s)
{
    size_t a = (size_t)(from_s * H_RATE), b = (size_t)(to_s * H_RATE);
    double sum = 0;
    if (b > n)
        b = n;
    for (size_t i = a; i < b; i++)
        sum += (double)s[i] * s[i];
    return b > a ? sqrt(sum / (double)(b - a)) : 0;
}

/* How much of [from_s, to_s)'s energy is at hz (Goertzel), 0..1. */
double h_tone_share(const int16_t *s, size_t n, double from_s, double to_s, double hz)
{
    size_t a = (size_t)(from_s * H_RATE), b = (size_t)(to_s * H_RATE);
    if (b > n)
        b = n;
    if (b <= a)
        return 0;
    double w = 2 * M_PI * hz / H_RATE, c = 2 * cos(w), s1 = 0, s2 = 0, total = 0;
    for (size_t i = a; i < b; i++) {
        double s0 = s[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        total += (double)s[i] * s[i];
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    return total > 0 ? 2 * power / ((double)(b - a) * total) : 0;
}

/* A tone of hz for seconds: a 16 kHz 16-bit WAV (resampled by the callee). */
void h_tone_wav(const char *path, double hz, double seconds)
{
    const int rate = 16000;
    size_t n = (size_t)(seconds * rate);
    uint8_t *buf = calloc(1, 44 + 2 * n);
    uint32_t bytes = (uint32_t)(2 * n), v;
    memcpy(buf, "RIFF", 4);
    v = 36 + bytes;
    memcpy(buf + 4, &v, 4);
    memcpy(buf + 8, "WAVEfmt ", 8);
    v = 16;
    memcpy(buf + 16, &v, 4);
    buf[20] = 1;
    buf[22] = 1;
    v = (uint32_t)rate;
    memcpy(buf + 24, &v, 4);
    v = (uint32_t)rate * 2;
    memcpy(buf + 28, &v, 4);
    buf[32] = 2;
    buf[34] = 16;
    memcpy(buf + 36, "data", 4);
    memcpy(buf + 40, &bytes, 4);
    for (size_t i = 0; i < n; i++) {
        int16_t s = (int16_t)(8000 * sin(2 * M_PI * hz * (double)i / rate));
        memcpy(buf + 44 + 2 * i, &s, 2);
    }
    h_write_file(path, buf, 44 + 2 * n);
    free(buf);
}

/* An absolute path for a test's file: build/test-logs/<unique>-<name>. */
void h_test_file(char *out, size_t len, const char *name)
{
    char stem[64], cwd[256];
    h_unique(stem, sizeof(stem), "callee");
    cr_assert(getcwd(cwd, sizeof(cwd)));
    cr_assert(mkdir("build/test-logs", 0755) == 0 || errno == EEXIST);
    int n = snprintf(out, len, "%s/build/test-logs/%s-%s", cwd, stem, name);
    cr_assert(n > 0 && (size_t)n < len, "path too long");
}

void h_callee_kill(h_callee_t *callee)
{
    if (callee->pid > 0) {
        kill(callee->pid, SIGKILL);
        waitpid(callee->pid, NULL, 0);
        callee->pid = 0;
    }
}
