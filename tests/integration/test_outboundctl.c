/*
 * outboundctl, the command-line client, run as a user runs it (the real
 * binary, its stdout, stderr and exit code) against the real services: a
 * queued call completes, an upload reports its bad rows, --json parses,
 * calls run the application given with --say, --app or deployments
 * set-app, and every failure exits with its documented code and says what
 * is wrong.
 */
#include "harness_client.h"
#include "ob_common.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static h_stack_t s;
static h_tenant_t t;
static PGconn *pg;

static void teardown(void)
{
    h_stack_kill(&s);
    if (pg)
        PQfinish(pg);
    pg = NULL;
}

/* What one run of outboundctl did. */
typedef struct {
    int code;  /* exit code, or 128 + signal */
    char *out; /* stdout (malloc'd) */
    char *err; /* stderr (malloc'd) */
} run_t;

/* What the next run reads on stdin. */
static const char *stdin_path = "/dev/null";
/* The folder standing for the user's home in this test. */
static char home[256];
/* OUTBOUND_URL and OUTBOUND_API_KEY of the tenant, when set up. */
static char env_url[128], env_key[128];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = ob_xcalloc(1, 1);
    size_t len = 0;
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf = ob_xrealloc(buf, len + n + 1);
        memcpy(buf + len, chunk, n);
        len += n;
        buf[len] = '\0';
    }
    if (f)
        fclose(f);
    return buf;
}

/* Starts outboundctl with argv (NULL-terminated, without the program),
 * stdout and stderr to files named by stem; with_api adds the tenant's URL
 * and key to the environment. */
static pid_t start(bool with_api, const char *const *args, const char *stem)
{
    char bin[512], out[300], err[300], h_env[300], xdg[300];
    const char *dir = getenv("OB_TEST_BIN_DIR");
    snprintf(bin, sizeof(bin), "%s/outboundctl", dir && *dir ? dir : "build/bin");
    cr_assert(access(bin, X_OK) == 0, "cannot run %s", bin);
    snprintf(out, sizeof(out), "%s.out", stem);
    snprintf(err, sizeof(err), "%s.err", stem);
    snprintf(h_env, sizeof(h_env), "HOME=%s", home);
    snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s/xdg", home);
    const char *env[] = {"PATH=/usr/bin:/bin",      h_env, xdg, with_api ? env_url : NULL,
                         with_api ? env_key : NULL, NULL};
    const char *argv[32] = {bin};
    int n = 1;
    for (const char *const *a = args; *a && n < 31; a++)
        argv[n++] = *a;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open(stdin_path, O_RDONLY);
        if (fo < 0 || fe < 0 || devnull < 0)
            _exit(127);
        dup2(devnull, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execve(bin, (char **)argv, (char **)env);
        _exit(127);
    }
    return pid;
}

static run_t finish(pid_t pid, const char *stem)
{
    int status = 0;
    char path[300];
    run_t r;
    cr_assert(waitpid(pid, &status, 0) == pid);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    snprintf(path, sizeof(path), "%s.out", stem);
    r.out = slurp(path);
    snprintf(path, sizeof(path), "%s.err", stem);
    r.err = slurp(path);
    return r;
}

/* Runs outboundctl to completion. */
static run_t run_ctl(bool with_api, const char *const *args)
{
    char stem[300];
    h_unique(stem, sizeof(stem), "build/test-logs/outboundctl-");
    return finish(start(with_api, args, stem), stem);
}

#define CTL(...)      run_ctl(true, (const char *const[]){__VA_ARGS__, NULL})
#define CTL_BARE(...) run_ctl(false, (const char *const[]){__VA_ARGS__, NULL})

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Sets up the home folder and the tenant's environment. */
static void use_home(void)
{
    mkdir("build/test-logs", 0755);
    h_unique(home, sizeof(home), "build/test-logs/outboundctl-home-");
    cr_assert(mkdir(home, 0755) == 0);
    snprintf(env_url, sizeof(env_url), "OUTBOUND_URL=http://127.0.0.1:%d", s.ingest_port);
    snprintf(env_key, sizeof(env_key), "OUTBOUND_API_KEY=%s", t.api_key);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static const char *const fast_sim[] = {"OB_SIM_TIME_SCALE=200", NULL};

static const char good_and_bad[] = "phone_number,message_reference,max_attempts,customer\n"
                                   "+1 212 555 0100,first,1,Sam\n"
                                   "not a number,second,1,Kim\n"
                                   "(212) 555-0101,third,11,Lee\n"
                                   "212.555.0102,fourth,2,Ann\n"
                                   "+12125550103,fifth\n";

Test(outboundctl, queue_show_upload_list_watch_and_control, .timeout = 300, .fini = teardown)
{
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    cr_assert(h_stack_up(&s, 1, fast_sim), "stack did not become ready");
    use_home();
    const char *dep = t.deployment_id;

    /* Queue a call and see it complete through `call show --json`. */
    run_t r = CTL("call", "queue", dep, "+1 (212) 555-0100", "--reference", "order-42", "--param",
                  "name=Ann", "--json");
    cr_assert_eq(r.code, 0, "exit %d: %s", r.code, r.err);
    char *call_id = h_json_str(r.out, "call_id");
    cr_assert_not_null(call_id, "no call_id in %s", r.out);
    run_free(&r);
    char *state = NULL;
    for (int i = 0; i < 600; i++, h_sleep_ms(100)) {
        r = CTL("call", "show", call_id, "--json");
        /* 3: not recorded yet, a moment after it was accepted. */
        cr_assert(r.code == 0 || r.code == 3, "exit %d: %s", r.code, r.err);
        free(state);
        state = r.code == 0 ? h_json_str(r.out, "state") : NULL;
        if (state && strcmp(state, "completed") == 0)
            break;
        run_free(&r);
    }
    cr_assert_str_eq(state, "completed", "the call did not complete");
    h_expect_path(r.out, "status", "completed");
    h_expect_path(r.out, "result", "voice");
    h_expect_path(r.out, "message_reference", "order-42");
    h_expect_path(r.out, "call_parameters.name", "Ann");
    run_free(&r);
    /* The readable form says the same. */
    r = CTL("call", "show", call_id);
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "completed (completed, voice, answered)"), "%s", r.out);
    cr_expect(strstr(r.out, "order-42"), "%s", r.out);
    cr_expect(strstr(r.out, "ATTEMPT"), "%s", r.out);
    run_free(&r);

    /* A CSV with good and bad rows: the good ones are queued, each bad one
     * is listed with its reason, and the exit code says some were rejected. */
    char csv[300], ndjson[300];
    snprintf(csv, sizeof(csv), "%s/calls.csv", home);
    write_file(csv, good_and_bad);
    r = CTL("calls", "upload", dep, csv, "--retry-interval", "120");
    cr_expect_eq(r.code, 5, "exit %d: %s %s", r.code, r.out, r.err);
    cr_expect(strstr(r.out, "5 rows, 2 queued, 3 rejected"), "%s", r.out);
    cr_expect(strstr(r.out, "phone_number"), "%s", r.out);
    cr_expect(strstr(r.out, "max_attempts"), "%s", r.out);
    cr_expect(strstr(r.out, "invalid_row"), "%s", r.out);
    cr_expect(strstr(r.out, "ROW"), "a table of the rejected rows: %s", r.out);
    run_free(&r);
    /* The same file with --json: the API's report, parseable. */
    r = CTL("calls", "upload", dep, csv, "--json");
    cr_expect_eq(r.code, 5, "exit %d: %s", r.code, r.err);
    cr_expect_eq(h_json_long(r.out, "queued"), 2, "%s", r.out);
    cr_expect_eq(h_json_long(r.out, "rejected"), 3, "%s", r.out);
    h_expect_path(r.out, "errors.0.field", "phone_number");
    char *upload_id = h_json_path(r.out, "upload_id");
    run_free(&r);
    r = CTL("upload", "show", upload_id);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "2 queued, 3 rejected"), "%s", r.out);
    run_free(&r);
    /* NDJSON goes through calls:batch, chosen by the extension. */
    snprintf(ndjson, sizeof(ndjson), "%s/calls.ndjson", home);
    write_file(ndjson, "{\"phone_number\": \"+12125550100\"}\n"
                       "{\"phone_number\": \"12\"}\n"
                       "{\"phone_number\": \"+12125550101\", \"message_reference\": \"nd\"}\n");
    r = CTL("calls", "upload", dep, ndjson);
    cr_expect_eq(r.code, 5, "exit %d: %s %s", r.code, r.out, r.err);
    cr_expect(strstr(r.out, "batch: 2 queued, 1 rejected"), "%s", r.out);
    cr_expect(strstr(r.out, "invalid_phone_number"), "%s", r.out);
    run_free(&r);
    /* From stdin, of unknown length (sent chunked). */
    stdin_path = ndjson;
    r = CTL("calls", "upload", dep, "-", "--format", "ndjson", "--json");
    stdin_path = "/dev/null";
    cr_expect_eq(r.code, 5, "exit %d: %s %s", r.code, r.out, r.err);
    cr_expect_eq(h_json_long(r.out, "accepted"), 2, "%s", r.out);
    cr_expect_eq(h_json_long(r.out, "rejected"), 1, "%s", r.out);
    run_free(&r);
    /* A file with only good rows exits 0. */
    write_file(csv, "phone\n+12125550100\n+12125550110\n");
    r = CTL("calls", "upload", dep, csv);
    cr_expect_eq(r.code, 0, "exit %d: %s %s", r.code, r.out, r.err);
    cr_expect(strstr(r.out, "2 rows, 2 queued, 0 rejected"), "%s", r.out);
    cr_expect_str_eq(r.err, "", "no progress bar when stderr is not a terminal");
    run_free(&r);

    /* Paging: every call once, whatever the page size. 1 + 2 + 2 + 2 + 2 + 2. */
    const char *p[] = {dep};
    char *n = NULL;
    for (int i = 0; i < 200; i++, h_sleep_ms(100)) {
        free(n);
        n = h_pg_value(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1", 1, p);
        if (strcmp(n, "11") == 0)
            break;
    }
    cr_expect_str_eq(n, "11");
    free(n);
    r = CTL("calls", "list", dep, "--json", "--limit", "0", "--page-size", "2");
    cr_expect_eq(r.code, 0, "%s", r.err);
    cJSON *list = cJSON_Parse(r.out);
    cr_expect(cJSON_IsArray(list), "not a JSON array: %s", r.out);
    cr_expect_eq(cJSON_GetArraySize(list), 11, "%s", r.out);
    cJSON_Delete(list);
    run_free(&r);
    r = CTL("calls", "list", dep, "--limit", "3", "--page-size", "2");
    cr_expect_eq(r.code, 0, "%s", r.err);
    int lines = 0;
    for (const char *c = r.out; *c; c++)
        lines += *c == '\n';
    cr_expect_eq(lines, 4, "a header and 3 calls: %s", r.out);
    cr_expect(strncmp(r.out, "CALL ", 5) == 0, "%s", r.out);
    run_free(&r);

    /* Watch: a call queued while watching shows up, then completes. */
    char stem[300];
    h_unique(stem, sizeof(stem), "build/test-logs/outboundctl-watch-");
    pid_t watcher =
        start(true, (const char *const[]){"calls", "watch", dep, "--interval", "1", NULL}, stem);
    h_sleep_ms(1500);
    r = CTL("call", "queue", dep, "+12125550100", "--reference", "watched");
    cr_assert_eq(r.code, 0, "%s", r.err);
    char watched[64];
    cr_assert_eq(sscanf(r.out, "%63s", watched), 1);
    run_free(&r);
    h_client_t c = h_client(&s, &t, pg);
    char *body = h_wait_completed(&c, watched, 60000);
    cr_expect_not_null(body);
    free(body);
    h_sleep_ms(2500);
    kill(watcher, SIGINT);
    r = finish(watcher, stem);
    cr_expect_eq(r.code, 0, "Ctrl-C ends a watch cleanly: %d %s", r.code, r.err);
    cr_expect(strstr(r.out, watched), "%s", r.out);
    cr_expect(strstr(r.out, "completed (completed, voice, answered)  ref watched"), "%s", r.out);
    run_free(&r);

    /* Pause, cancel a call that waits, resume. */
    r = CTL("queue", "pause", dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    run_free(&r);
    r = CTL("queue", "status", dep, "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    h_expect_path(r.out, "paused", "true");
    run_free(&r);
    r = CTL("call", "queue", dep, "+12125550100", "--not-before", "+1 hours", "--json");
    cr_assert_eq(r.code, 0, "%s", r.err);
    char *later = h_json_str(r.out, "call_id");
    run_free(&r);
    for (int i = 0; i < 100; i++, h_sleep_ms(100)) {
        r = CTL("call", "cancel", later);
        if (r.code != 3)
            break;
        run_free(&r);
    }
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "completed (uncalled, noattempt, cancelled)"), "%s", r.out);
    run_free(&r);
    /* Cancelling a completed call is refused: exit 1 with the reason. */
    r = CTL("call", "cancel", call_id);
    cr_expect_eq(r.code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "call_completed"), "%s", r.err);
    run_free(&r);
    r = CTL("queue", "resume", dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    run_free(&r);
    r = CTL("queue", "status", dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "paused false"), "%s", r.out);
    run_free(&r);
    r = CTL("queue", "cancel", dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    run_free(&r);

    /* Applications and deployments. */
    r = CTL("applications", "create", "--name", "cli-app", "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    char *app = h_json_str(r.out, "application_id");
    run_free(&r);
    r = CTL("deployments", "create", "--application", app, "--name", "cli-dep", "--capacity", "3",
            "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    char *new_dep = h_json_str(r.out, "deployment_id");
    run_free(&r);
    r = CTL("deployments", "show", new_dep, "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    h_expect_path(r.out, "capacity", "3");
    h_expect_path(r.out, "name", "cli-dep");
    run_free(&r);
    r = CTL("deployments", "show", new_dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "cli-dep") && strstr(r.out, "(hidden; --json shows it)"), "%s", r.out);
    run_free(&r);
    r = CTL("deployments", "list");
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, new_dep) && strstr(r.out, dep), "%s", r.out);
    run_free(&r);
    r = CTL("applications", "list", "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    list = cJSON_Parse(r.out);
    cr_expect_eq(cJSON_GetArraySize(list), 2, "%s", r.out);
    cJSON_Delete(list);
    run_free(&r);

    /* `configure` writes a private file; it is used when nothing else is set. */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.ingest_port);
    r = CTL_BARE("configure", "--url", url, "--key", t.api_key);
    cr_expect_eq(r.code, 0, "%s", r.err);
    run_free(&r);
    char conf[400];
    struct stat st;
    snprintf(conf, sizeof(conf), "%s/xdg/outbound/config", home);
    cr_expect(stat(conf, &st) == 0 && (st.st_mode & 0777) == 0600, "%s mode %o", conf,
              st.st_mode & 0777);
    r = CTL_BARE("call", "show", call_id, "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    h_expect_path(r.out, "call_id", call_id);
    run_free(&r);

    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(call_id);
    free(state);
    free(upload_id);
    free(later);
    free(app);
    free(new_dep);
}

Test(outboundctl, failures_exit_with_their_codes_and_say_what_is_wrong, .timeout = 120,
     .fini = teardown)
{
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));
    s.ingest_port = s.procs[0].port;
    use_home();
    const char *dep = t.deployment_id;

    /* A bad key: 1, named as such. */
    run_t r = CTL("call", "queue", dep, "+12125550100", "--key", "obk_nope");
    cr_expect_eq(r.code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "the API key was refused (401 invalid_api_key)"), "%s", r.err);
    cr_expect(strstr(r.err, "--key, OUTBOUND_API_KEY or outboundctl configure"), "%s", r.err);
    cr_expect_str_eq(r.out, "");
    run_free(&r);

    /* Invalid fields: 1, each field named; with --json the problem on stdout. */
    r = CTL("call", "queue", dep, "555-0100", "--max-attempts", "3", "--json");
    cr_expect_eq(r.code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "422 validation_failed"), "%s", r.err);
    cr_expect(strstr(r.err, "phone_number: invalid_phone_number"), "%s", r.err);
    h_expect_path(r.out, "code", "validation_failed");
    run_free(&r);

    /* A CSV the API cannot read at all: 1, with its reason. */
    char csv[300];
    snprintf(csv, sizeof(csv), "%s/no-phone.csv", home);
    write_file(csv, "name,message_reference\nSam,x\n");
    r = CTL("calls", "upload", dep, csv);
    cr_expect_eq(r.code, 1, "%s %s", r.out, r.err);
    cr_expect(strstr(r.out, "failed: 0 rows"), "%s", r.out);
    cr_expect(strstr(r.out, "phone"), "%s", r.out);
    cr_expect(strstr(r.err, "stopped early (HTTP 422)"), "%s", r.err);
    run_free(&r);

    /* Not found: 3. */
    r = CTL("call", "show", "01a21b1d-d89a-7390-99fb-98b72deb4911");
    cr_expect_eq(r.code, 3, "%s", r.err);
    cr_expect(strstr(r.err, "not found (404"), "%s", r.err);
    run_free(&r);
    r = CTL("calls", "list", "01a21b1d-d89a-7390-99fb-98b72deb4911");
    cr_expect_eq(r.code, 3, "%s", r.err);
    run_free(&r);

    /* No key anywhere: 2, saying where a key can come from. */
    r = CTL_BARE("call", "show", "x", "--url", "http://127.0.0.1:1");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "no API key: pass --key, set OUTBOUND_API_KEY or run outboundctl "
                            "configure"),
              "%s", r.err);
    run_free(&r);
    r = CTL_BARE("deployments", "list", "--key", "k");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "no API URL"), "%s", r.err);
    run_free(&r);

    /* Nothing listening: 4. */
    char closed[64];
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d", h_free_port());
    r = CTL("deployments", "list", "--url", closed);
    cr_expect_eq(r.code, 4, "%s", r.err);
    cr_expect(strstr(r.err, "cannot reach the API"), "%s", r.err);
    run_free(&r);

    /* Usage errors: 2, naming what is wrong. */
    r = CTL("call", "queue", dep);
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "takes 2 arguments (DEPLOYMENT PHONE), not 1"), "%s", r.err);
    run_free(&r);
    r = CTL("call", "queue", dep, "+12125550100", "--max-attempts", "many");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "--max-attempts must be a whole number from 1 to 10"), "%s", r.err);
    run_free(&r);
    r = CTL("calls", "list", dep, "--colour", "blue");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "unknown option --colour"), "%s", r.err);
    run_free(&r);
    r = CTL("calls", "frobnicate");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "unknown command"), "%s", r.err);
    run_free(&r);
    r = CTL("calls", "upload", dep, "calls.txt");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "--format"), "%s", r.err);
    run_free(&r);
    r = CTL("calls", "upload", dep, "/nonexistent/calls.csv");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "cannot open /nonexistent/calls.csv"), "%s", r.err);
    run_free(&r);
    r = CTL_BARE("--bogus");
    cr_expect_eq(r.code, 2);
    run_free(&r);
    r = CTL_BARE("--timeout");
    cr_expect_eq(r.code, 2);
    run_free(&r);

    /* Help goes to stdout and exits 0, with the exit codes. */
    r = CTL_BARE("--help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "Exit codes:"), "%s", r.out);
    run_free(&r);
    r = CTL_BARE("call", "queue", "--help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "--max-attempts N"), "%s", r.out);
    cr_expect(strstr(r.out, "--say TEXT") && strstr(r.out, "--app FILE"), "%s", r.out);
    run_free(&r);

    /* The application options: refused before any request, naming why. */
    char not_json[300];
    snprintf(not_json, sizeof(not_json), "%s/not-json.json", home);
    write_file(not_json, "{\"verbs\": [\n  {\"verb\": \"say\" \"text\": \"hi\"}\n]}\n");
    static const struct {
        const char *argv[8]; /* the words after "call queue DEP PHONE" or whole (NULL ends) */
        const char *err;     /* what stderr says */
    } app_usage[] = {
        {{"--say", "Hi", "--app", "@NOT_JSON"}, "--say and --app both give the application"},
        {{"--voice", "fr"}, "--voice applies to --say; give --say TEXT too"},
        {{"--say", "Hi", "--rate", "1000"}, "--rate must be a whole number from 80 to 450"},
        {{"--say", ""}, "--say needs the text to say"},
        {{"--app", "/nonexistent/app.json"}, "cannot open /nonexistent/app.json"},
        {{"--app", "@NOT_JSON"}, "not-json.json is not JSON (line 2, column 18)"},
    };
    for (size_t i = 0; i < OB_COUNTOF(app_usage); i++) {
        const char *argv[16] = {"call", "queue", dep, "+12125550100"};
        int n = 4;
        for (const char *const *w = app_usage[i].argv; *w; w++)
            argv[n++] = strcmp(*w, "@NOT_JSON") == 0 ? not_json : *w;
        r = run_ctl(true, argv);
        cr_expect_eq(r.code, 2, "%s: exit %d", app_usage[i].err, r.code);
        cr_expect(strstr(r.err, app_usage[i].err), "want \"%s\": %s", app_usage[i].err, r.err);
        run_free(&r);
    }
    r = CTL("deployments", "set-app", dep);
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "takes 2 arguments (DEPLOYMENT FILE), not 1"), "%s", r.err);
    run_free(&r);
    r = CTL("deployments", "set-app", dep, not_json);
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "is not JSON (line 2, column 18)"), "%s", r.err);
    run_free(&r);
    stdin_path = "/dev/null";
    r = CTL("deployments", "set-app", dep, "-");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "stdin is empty"), "%s", r.err);
    run_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
}

/* `call show CALL --json` once the call has completed (asserted). */
static char *completed(const char *call_id)
{
    for (int i = 0; i < 600; i++, h_sleep_ms(100)) {
        run_t r = CTL("call", "show", call_id, "--json");
        /* 3: not recorded yet, a moment after it was accepted. */
        cr_assert(r.code == 0 || r.code == 3, "exit %d: %s", r.code, r.err);
        char *state = r.code == 0 ? h_json_str(r.out, "state") : NULL;
        bool done = state && strcmp(state, "completed") == 0;
        free(state);
        free(r.err);
        if (done)
            return r.out;
        free(r.out);
    }
    cr_assert_fail("call %s did not complete", call_id);
    return NULL;
}

/* The call_id of `call queue ... --json` (asserted to succeed). */
static char *queued(run_t r)
{
    cr_assert_eq(r.code, 0, "exit %d: %s", r.code, r.err);
    char *id = h_json_str(r.out, "call_id");
    cr_assert_not_null(id, "no call_id in %s", r.out);
    run_free(&r);
    return id;
}

/* Needs the call-control document (issue 21): `app` on calls and
 * deployments, the verbs on the attempts, and the sim's test numbers whose
 * callee presses digits (+1 NPA 555-02DX presses D, X, then '#'). */
Test(outboundctl, say_gather_and_set_app_run_the_application, .timeout = 300, .fini = teardown)
{
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    cr_assert(h_stack_up(&s, 1, fast_sim), "stack did not become ready");
    use_home();
    const char *dep = t.deployment_id;

    /* --say: the call's app is one say verb, and the attempt ran it. */
    char *said = queued(CTL("call", "queue", dep, "+12125550100", "--say",
                            "Your order has shipped.", "--voice", "en-us", "--json"));
    char *body = completed(said);
    h_expect_path(body, "result", "voice");
    h_expect_path(body, "app.verbs.0.verb", "say");
    h_expect_path(body, "app.verbs.0.text", "Your order has shipped.");
    h_expect_path(body, "app.verbs.0.voice", "en-us");
    h_expect_path(body, "attempts.0.verbs.0.verb", "say");
    char *outcome = h_json_path(body, "attempts.0.verbs.0.outcome");
    cr_expect_not_null(outcome, "the say verb has no outcome: %s", body);
    free(outcome);
    free(body);

    /* --app FILE: say then gather on a number whose callee presses 1, 2, #. */
    char doc[300], bad[300];
    snprintf(doc, sizeof(doc), "%s/gather.json", home);
    write_file(doc, "{\"verbs\": [\n"
                    "  {\"verb\": \"say\", \"text\": \"Press 1 then 2, then hash.\"},\n"
                    "  {\"verb\": \"gather\", \"finish_on_key\": \"#\", \"timeout_s\": 5}\n"
                    "]}\n");
    char *gathered = queued(CTL("call", "queue", dep, "+12125550212", "--app", doc, "--json"));
    body = completed(gathered);
    h_expect_path(body, "digits", "12");
    h_expect_path(body, "attempts.0.digits", "12");
    h_expect_path(body, "attempts.0.verbs.0.verb", "say");
    h_expect_path(body, "attempts.0.verbs.1.verb", "gather");
    h_expect_path(body, "attempts.0.verbs.1.digits", "12");
    free(body);
    /* The readable form lists the verbs and the digits. */
    run_t r = CTL("call", "show", gathered);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "app            2 verbs"), "%s", r.out);
    cr_expect(strstr(r.out, "attempt 1 application: digits 12"), "%s", r.out);
    cr_expect(strstr(r.out, "VERB") && strstr(r.out, "\nsay ") && strstr(r.out, "\ngather "), "%s",
              r.out);
    run_free(&r);

    /* A document the API refuses: 1, naming the verb and the field. */
    snprintf(bad, sizeof(bad), "%s/bad.json", home);
    write_file(bad, "{\"verbs\": [{\"verb\": \"gather\", \"num_digits\": 99}]}");
    r = CTL("call", "queue", dep, "+12125550100", "--app", bad);
    cr_expect_eq(r.code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "422"), "%s", r.err);
    cr_expect(strstr(r.err, "gather") && strstr(r.err, "num_digits"), "%s", r.err);
    run_free(&r);
    r = CTL("deployments", "set-app", dep, bad);
    cr_expect_eq(r.code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "num_digits"), "%s", r.err);
    run_free(&r);

    /* The deployment's app (from stdin) runs for a call that brings none. */
    stdin_path = doc;
    r = CTL("deployments", "set-app", dep, "-");
    stdin_path = "/dev/null";
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "application set (2 verbs)"), "%s", r.out);
    run_free(&r);
    r = CTL("deployments", "show", dep, "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    h_expect_path(r.out, "app.verbs.1.verb", "gather");
    run_free(&r);
    char *from_dep = queued(CTL("call", "queue", dep, "+12125550212", "--json"));
    body = completed(from_dep);
    h_expect_path(body, "digits", "12");
    h_expect_path(body, "attempts.0.verbs.1.verb", "gather");
    free(body);
    r = CTL("deployments", "clear-app", dep);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "application cleared"), "%s", r.out);
    run_free(&r);
    r = CTL("deployments", "show", dep, "--json");
    cr_expect_eq(r.code, 0, "%s", r.err);
    h_expect_path(r.out, "app", NULL);
    run_free(&r);

    cr_expect(h_stack_down(&s), "a service did not drain cleanly");
    free(said);
    free(gathered);
    free(from_dep);
}
