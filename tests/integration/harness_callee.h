/*
 * The test callee (tests/callee/ob-test-callee, docs/testing-callee.md) for
 * integration tests: start it with rules, read its per-call report lines
 * and its recordings, and measure what a listener would: level and the
 * share of a tone's frequency over a stretch of a recording.
 */
#ifndef HARNESS_CALLEE_H
#define HARNESS_CALLEE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H_RATE 8000 /* the recordings' sample rate */

typedef struct {
    pid_t pid;        /* the callee, 0 when stopped */
    int port;         /* its SIP port, from its "ready" line */
    char dir[200];    /* its files: rules, report, recordings, logs */
    char report[260]; /* its --report */
    char log[260];    /* its stderr */
} h_callee_t;

/* Starts the callee with rules (JSON text) and extra arguments (NULL-ended),
 * waiting for its "ready ADDR:PORT"; asserts on failure. */
void h_callee_start(h_callee_t *c, const char *rules, const char *const *extra);

/* SIGTERM; returns its exit code (-1 when it had to be killed). */
int h_callee_stop(h_callee_t *c);

/* SIGKILL, for a test's teardown; NULL-safe on a stopped one. */
void h_callee_kill(h_callee_t *c);

/* The report line of the first call to number (waits up to 3 s for it;
 * asserts when none); malloc'd. */
char *h_callee_report(const h_callee_t *c, const char *number);

/* A JSON number at path (h_json_path), asserting it is there. */
double h_json_num(const char *json, const char *path);

/* The callee's path beside the services under test (OB_TEST_BIN_DIR is
 * <build>/bin; the callee is <build>/tests/callee/ob-test-callee). */
void h_callee_bin(char *out, size_t len);

/* A file's whole text (malloc'd), NULL when it cannot be read. */
char *h_read_text(const char *path);

/* Writes len bytes to path; asserts. */
void h_write_file(const char *path, const void *data, size_t len);

/* A 16-bit mono WAV (the callee's recordings): samples malloc'd, *n set. */
int16_t *h_wav_read(const char *path, size_t *n);

/* RMS of [from_s, to_s) of 8 kHz samples. */
double h_rms(const int16_t *s, size_t n, double from_s, double to_s);

/* How much of [from_s, to_s)'s energy is at hz (Goertzel), 0..1. */
double h_tone_share(const int16_t *s, size_t n, double from_s, double to_s, double hz);

/* A tone of hz for seconds: a 16 kHz 16-bit WAV at path. */
void h_tone_wav(const char *path, double hz, double seconds);

/* An absolute path for a test's file: <cwd>/build/test-logs/<unique>-<name>. */
void h_test_file(char *out, size_t len, const char *name);

#endif
