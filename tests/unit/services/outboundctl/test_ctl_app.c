/* outboundctl and the call-control document (services/outboundctl/ctl_app.c):
 * the app made from --say/--voice/--rate or read from --app FILE, each
 * refusal's message, and what `call show` prints of the verbs. */
#include "ctl_app.h"
#include "ob_appdoc.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ctl_opt_t opts[] = {
    {"say", "TEXT", "say"}, {"voice", "V", "voice"},     {"rate", "N", "rate"},
    {"app", "FILE", "app"}, {"reference", "R", "other"}, {NULL, NULL, NULL},
};

typedef struct {
    const char *name;    /* what the case shows */
    const char *argv[8]; /* the words; "@F" stands for a file holding file (NULL ends) */
    const char *file;    /* the file's text, when a word is "@F" */
    const char *in;      /* what "-" reads */
    ob_rc_t rc;          /* expected result */
    const char *want;    /* OB_OK: the app's compact JSON; OB_EINVAL: part of the message */
} app_case_t;

static app_case_t app_cases[] = {
    {"no app options", {"--reference", "r1"}, NULL, NULL, OB_ENOTFOUND, NULL},
    {"--say",
     {"--say", "Hello"},
     NULL,
     NULL,
     OB_OK,
     "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hello\"}]}"},
    {"--say with voice and rate",
     {"--say=Your code is 4 2", "--voice", "fr", "--rate", "200"},
     NULL,
     NULL,
     OB_OK,
     "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Your code is 4 "
     "2\",\"voice\":\"fr\",\"rate\":200}]}"},
    {"--say keeps a template as it is",
     {"--say", "Hello {{name}}"},
     NULL,
     NULL,
     OB_OK,
     "{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hello {{name}}\"}]}"},
    {"rate too slow",
     {"--say", "Hi", "--rate", "79"},
     NULL,
     NULL,
     OB_EINVAL,
     "--rate must be a whole number from 80 to 450, not \"79\""},
    {"rate not a number",
     {"--say", "Hi", "--rate", "fast"},
     NULL,
     NULL,
     OB_EINVAL,
     "--rate must be a whole number from 80 to 450, not \"fast\""},
    {"--voice alone",
     {"--voice", "fr"},
     NULL,
     NULL,
     OB_EINVAL,
     "--voice applies to --say; give --say TEXT too"},
    {"--rate alone",
     {"--rate", "120"},
     NULL,
     NULL,
     OB_EINVAL,
     "--rate applies to --say; give --say TEXT too"},
    {"empty --say", {"--say", "  "}, NULL, NULL, OB_EINVAL, "--say needs the text to say"},
    {"empty --voice",
     {"--say", "Hi", "--voice="},
     NULL,
     NULL,
     OB_EINVAL,
     "--voice needs a voice or language"},
    {"--say and --app",
     {"--say", "Hi", "--app", "@F"},
     "[]",
     NULL,
     OB_EINVAL,
     "--say and --app both give the application; use one of them"},
    {"--app object",
     {"--app", "@F"},
     "{\"verbs\": [{\"verb\": \"hangup\"}],\n \"machine\": [{\"verb\": \"pause\", \"length_s\": "
     "1}]}\n",
     NULL,
     OB_OK,
     "{\"verbs\":[{\"verb\":\"hangup\"}],\"machine\":[{\"verb\":\"pause\",\"length_s\":1}]}"},
    {"--app array",
     {"--app", "@F"},
     "[{\"verb\":\"hangup\"}]",
     NULL,
     OB_OK,
     "[{\"verb\":\"hangup\"}]"},
    {"--app from stdin",
     {"--app", "-"},
     NULL,
     "{\"verbs\":[{\"verb\":\"say\",\"text\":\"from stdin\"}]}",
     OB_OK,
     "{\"verbs\":[{\"verb\":\"say\",\"text\":\"from stdin\"}]}"},
    {"--app not JSON, where",
     {"--app", "@F"},
     "{\n  \"verbs\": [\n    {\"verb\": \"say\" \"text\": \"x\"}\n  ]\n}\n",
     NULL,
     OB_EINVAL,
     "is not JSON (line 3, column 20)"},
    {"--app with trailing text",
     {"--app", "@F"},
     "[] and more",
     NULL,
     OB_EINVAL,
     "is not JSON (line 1, column 4)"},
    {"--app empty",
     {"--app", "@F"},
     " \n",
     NULL,
     OB_EINVAL,
     "is empty; a document is {\"verbs\": [...]}"},
    {"--app empty stdin", {"--app", "-"}, NULL, "", OB_EINVAL, "stdin is empty"},
    {"--app a string",
     {"--app", "@F"},
     "\"say hello\"",
     NULL,
     OB_EINVAL,
     "a document is a JSON object {\"verbs\": [...]} or an array of verbs"},
    {"--app missing file",
     {"--app", "/nonexistent/app.json"},
     NULL,
     NULL,
     OB_EINVAL,
     "cannot open /nonexistent/app.json: No such file or directory"},
};

ParameterizedTestParameters(ctl_app, from_args)
{
    return cr_make_param_array(app_case_t, app_cases, sizeof(app_cases) / sizeof(app_cases[0]));
}

/* A temporary file holding text; its path goes to path. */
static void temp_file(const char *text, char *path, size_t len)
{
    snprintf(path, len, "/tmp/test_ctl_app_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

ParameterizedTest(app_case_t *c, ctl_app, from_args)
{
    const ctl_opt_t *tables[] = {opts};
    char path[64] = "";
    const char *argv[8] = {0};
    int argc = 0;
    for (; c->argv[argc]; argc++) {
        argv[argc] = c->argv[argc];
        if (strcmp(argv[argc], "@F") == 0) {
            temp_file(c->file, path, sizeof(path));
            argv[argc] = path;
        }
    }
    ctl_args_t a;
    ob_err_t err = {{0}};
    cr_assert_eq(ctl_args_parse(tables, 1, argc, (char *const *)argv, &a, &err), OB_OK, "%s: %s",
                 c->name, err.msg);
    FILE *in = fmemopen((void *)(c->in ? c->in : ""), c->in ? strlen(c->in) : 0, "r");
    cJSON *app = NULL;
    ob_rc_t rc = ctl_app_from_args(&a, in, &app, &err);
    fclose(in);
    if (path[0])
        unlink(path);
    cr_assert_eq(rc, c->rc, "%s: rc %d (%s)", c->name, rc, err.msg);
    if (rc == OB_OK) {
        char *text = cJSON_PrintUnformatted(app);
        cr_expect_str_eq(text, c->want, "%s", c->name);
        cJSON_free(text);
    } else {
        cr_expect_null(app, "%s", c->name);
    }
    if (rc == OB_EINVAL)
        cr_expect(strstr(err.msg, c->want), "%s: \"%s\" lacks \"%s\"", c->name, err.msg, c->want);
    cJSON_Delete(app);
}

Test(ctl_app, a_document_over_the_limit_is_refused_before_the_api)
{
    char path[64];
    char *big = malloc(OB_APPDOC_MAX_BYTES + 2);
    memset(big, ' ', OB_APPDOC_MAX_BYTES + 1);
    big[0] = '[';
    big[OB_APPDOC_MAX_BYTES] = ']';
    big[OB_APPDOC_MAX_BYTES + 1] = '\0';
    temp_file(big, path, sizeof(path));
    free(big);
    cJSON *doc = NULL;
    ob_err_t err = {{0}};
    cr_expect_eq(ctl_app_read(path, stdin, &doc, &err), OB_EINVAL);
    cr_expect(strstr(err.msg, "is larger than 65536 bytes"), "%s", err.msg);
    cr_expect_null(doc);
    unlink(path);
}

typedef struct {
    const char *doc;  /* a document's JSON, or NULL */
    const char *want; /* ctl_app_describe's text */
} describe_case_t;

static describe_case_t describe_cases[] = {
    {NULL, "none"},
    {"null", "none"},
    {"[{\"verb\":\"hangup\"}]", "1 verb"},
    {"{\"verbs\":[{\"verb\":\"say\"},{\"verb\":\"gather\"}]}", "2 verbs"},
    {"{\"verbs\":[{\"verb\":\"say\"}],\"machine\":[{\"verb\":\"say\"}]}", "1 verb, 1 machine verb"},
    {"{\"verbs\":[],\"machine\":[{},{},{}]}", "0 verbs, 3 machine verbs"},
};

ParameterizedTestParameters(ctl_app, describe)
{
    return cr_make_param_array(describe_case_t, describe_cases,
                               sizeof(describe_cases) / sizeof(describe_cases[0]));
}

ParameterizedTest(describe_case_t *c, ctl_app, describe)
{
    cJSON *doc = c->doc ? cJSON_Parse(c->doc) : NULL;
    char buf[64];
    cr_expect_str_eq(ctl_app_describe(doc, buf, sizeof(buf)), c->want, "%s",
                     c->doc ? c->doc : "NULL");
    cJSON_Delete(doc);
}

/* What `call show` prints under its attempts table. */
static char *print_attempts(const char *call_json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    cJSON *call = cJSON_Parse(call_json);
    cr_assert_not_null(call);
    ctl_app_print_attempts(call, out);
    fclose(out);
    cJSON_Delete(call);
    return buf;
}

Test(ctl_app, call_show_lists_each_attempts_verbs_and_digits)
{
    char *text = print_attempts(
        "{\"digits\": \"12\", \"attempts\": ["
        "{\"attempt\": 1, \"result\": \"busy\"},"
        "{\"attempt\": 2, \"digits\": \"12\", \"first_audio_gap_ms\": 180, \"verbs\": ["
        "{\"verb\": \"say\", \"started_ms\": 0, \"duration_ms\": 2310, \"outcome\": \"played\"},"
        "{\"verb\": \"gather\", \"started_ms\": 2310, \"duration_ms\": 1200, \"outcome\": "
        "\"finish_on_key\", \"digits\": \"12\"},"
        "{\"verb\": \"play\", \"started_ms\": 3510, \"duration_ms\": 0, \"outcome\": \"failed\", "
        "\"error\": \"fetch_failed\", \"detail\": \"HTTP 404\"}]}]}");
    cr_expect_str_eq(text, "\nattempt 2 application: digits 12, first audio 180 ms after the "
                           "greeting's end\n"
                           "VERB    START_MS  DURATION_MS  OUTCOME        DIGITS  ERROR\n"
                           "say     0         2310         played         -       -\n"
                           "gather  2310      1200         finish_on_key  12      -\n"
                           "play    3510      0            failed         -       fetch_failed "
                           "(HTTP 404)\n");
    free(text);
}

Test(ctl_app, an_application_error_is_shown_without_verbs)
{
    char *text = print_attempts("{\"attempts\": [{\"attempt\": 1, \"verbs\": [], \"app_error\": "
                                "\"verbs[0] (say): text is required\"}]}");
    cr_expect_str_eq(text, "\nattempt 1 application: application error: verbs[0] (say): text is "
                           "required\n");
    free(text);
}

Test(ctl_app, nothing_is_printed_for_calls_without_an_application)
{
    char *text = print_attempts("{\"attempts\": [{\"attempt\": 1, \"result\": \"voice\"}]}");
    cr_expect_str_eq(text, "");
    free(text);
    text = print_attempts("{\"call_id\": \"x\"}");
    cr_expect_str_eq(text, "");
    free(text);
}
