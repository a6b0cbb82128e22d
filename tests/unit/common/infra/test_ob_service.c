/* The drain table runner (common/infra/ob_service.c): numbering, deadlines from the
 * shares, and the exit code from steps that succeed, fail or overrun. */
#include "ob_common.h"
#include "ob_log.h"
#include "ob_service.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 4

/* What a step of a case does: succeed or fail, after sleeping. */
typedef struct {
    bool ok;      /* its return value */
    int sleep_ms; /* how long it takes */
    int share;    /* its share of the drain deadline */
} step_spec_t;

typedef struct {
    const char *what;             /* the case, for failure messages */
    int64_t drain_ms;             /* the drain deadline */
    step_spec_t steps[MAX_STEPS]; /* ends at share 0 */
    int code;                     /* the exit code expected */
    int deadlines[MAX_STEPS];     /* each step's deadline, ms after the drain began */
} drain_case_t;

static const drain_case_t drain_cases[] = {
    {"all succeed",
     1000,
     {{true, 0, 10}, {true, 0, 40}, {true, 0, 50}},
     OB_EXIT_OK,
     {100, 500, 1000}},
    {"one alone", 500, {{true, 0, 100}}, OB_EXIT_OK, {500}},
    {"the middle one fails; the last still runs",
     1000,
     {{true, 0, 10}, {false, 0, 40}, {true, 0, 50}},
     OB_EXIT_UNDRAINED,
     {100, 500, 1000}},
    {"the last one fails", 1000, {{true, 0, 50}, {false, 0, 50}}, OB_EXIT_UNDRAINED, {500, 1000}},
    {"past its own share, within the drain",
     1000,
     {{true, 300, 10}, {true, 0, 90}},
     OB_EXIT_OK,
     {100, 1000}},
    {"past the drain deadline",
     200,
     {{true, 0, 50}, {true, 300, 50}},
     OB_EXIT_UNDRAINED,
     {100, 200}},
    {"an early step overruns the whole drain",
     200,
     {{true, 300, 20}, {true, 0, 30}, {true, 0, 50}},
     OB_EXIT_UNDRAINED,
     {40, 100, 200}},
};

/* What the steps saw. */
typedef struct {
    const drain_case_t *c;       /* the case run */
    int64_t t0;                  /* ob_mono_ms just before the drain */
    int ran;                     /* steps run so far */
    int64_t deadline[MAX_STEPS]; /* the deadline each got */
} run_t;

static bool step(void *ctx, int64_t deadline_ms)
{
    run_t *r = ctx;
    const step_spec_t *s = &r->c->steps[r->ran];
    r->deadline[r->ran++] = deadline_ms;
    struct timespec ts = {s->sleep_ms / 1000, (long)(s->sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return s->ok;
}

static const char *const names[MAX_STEPS] = {"first thing", "second thing", "third", "fourth"};

/* Runs the drain with stderr (the log) captured into *log (caller frees). */
static int run_captured(const ob_drain_step_t *steps, run_t *r, int64_t drain_ms, char **log)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    r->t0 = ob_mono_ms();
    int code = ob_service_drain(steps, r, drain_ms);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long len = ftell(f);
    rewind(f);
    *log = calloc(1, (size_t)len + 1);
    cr_assert_eq(fread(*log, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return code;
}

ParameterizedTestParameters(drain, runs_the_table)
{
    return cr_make_param_array(drain_case_t, drain_cases, OB_COUNTOF(drain_cases));
}

ParameterizedTest(drain_case_t *c, drain, runs_the_table)
{
    ob_drain_step_t steps[MAX_STEPS + 1] = {{0}};
    int n = 0;
    while (n < MAX_STEPS && c->steps[n].share) {
        steps[n] = (ob_drain_step_t){names[n], step, c->steps[n].share};
        n++;
    }
    run_t r = {.c = c};
    char *log = NULL;
    ob_log_init("test", OB_LOG_INFO);

    int code = run_captured(steps, &r, c->drain_ms, &log);

    cr_expect_eq(code, c->code, "%s: exit %d, expected %d", c->what, code, c->code);
    cr_expect_eq(r.ran, n, "%s: %d of %d steps ran", c->what, r.ran, n);
    for (int k = 0; k < n; k++) {
        char line[64];
        snprintf(line, sizeof(line), "\"drain %d/%d: %s\"", k + 1, n, names[k]);
        cr_expect(strstr(log, line), "%s: no %s in the log:\n%s", c->what, line, log);
        /* The steps before may have taken a few ms between t0 and the start. */
        int64_t at = r.deadline[k] - r.t0;
        cr_expect(at >= c->deadlines[k] - 5 && at <= c->deadlines[k] + 5,
                  "%s: step %d's deadline %lld ms after the start, expected %d", c->what, k + 1,
                  (long long)at, c->deadlines[k]);
    }
    char last[32];
    snprintf(last, sizeof(last), "\"drained; exit %d\"", c->code);
    cr_expect(strstr(log, last), "%s: no %s in the log:\n%s", c->what, last, log);
    free(log);
}

Test(drain, ms_left_counts_down_to_zero)
{
    int64_t now = ob_mono_ms();
    cr_expect_eq(ob_service_ms_left(now - 10), 0);
    int left = ob_service_ms_left(now + 10000);
    cr_expect(left > 9900 && left <= 10000, "%d ms left", left);
}

/* The command line: nothing goes on, the references and --help print and
 * end with 0, anything else is a usage error naming the argument. */
Test(args, only_known_arguments)
{
    char *none[] = {"outbound-test", NULL};
    char *help[] = {"outbound-test", "--help", NULL};
    char *reference[] = {"outbound-test", "--config-reference-common", NULL};
    char *unknown[] = {"outbound-test", "--prot", NULL};
    char *two[] = {"outbound-test", "--help", "--help", NULL};
    cr_expect_eq(ob_service_args("test", "a test", 1, none, ob_base_config_specs), -1);
    cr_expect_eq(ob_service_args("test", "a test", 2, help, ob_base_config_specs), OB_EXIT_OK);
    cr_expect_eq(ob_service_args("test", "a test", 2, reference, ob_base_config_specs), OB_EXIT_OK);
    cr_expect_eq(ob_service_args("test", "a test", 2, unknown, ob_base_config_specs),
                 OB_EXIT_USAGE);
    cr_expect_eq(ob_service_args("test", "a test", 3, two, ob_base_config_specs), OB_EXIT_USAGE);
}
