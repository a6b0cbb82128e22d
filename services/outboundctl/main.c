/*
 * outboundctl: the command-line client of the outbound HTTP API. main reads
 * like its table of contents: find the command, parse its options, resolve
 * the URL and key (flags, environment, configuration file), run it, exit
 * with a code scripts can rely on.
 */
#include "ctl.h"

#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* One command of the table below. */
typedef struct {
    const char *noun;      /* as shown in help ("calls"); either form matches */
    const char *verb;      /* NULL for a one-word command */
    const char *args;      /* positional arguments, for help */
    int npos;              /* how many positional arguments it takes */
    const ctl_opt_t *opts; /* its own options */
    bool needs_api;        /* needs the URL and key */
    bool interruptible;    /* Ctrl-C ends it cleanly (watch, upload) */
    int (*run)(const ctl_t *c, const ctl_args_t *a); /* the command */
    const char *summary;                             /* one line for the command list */
    const char *example;                             /* an example line for its --help */
} command_t;

static const ctl_opt_t global_opts[] = {
    {"url", "URL", "API address, e.g. http://127.0.0.1:19080 (else OUTBOUND_URL, else configure)"},
    {"key", "KEY", "API key (else OUTBOUND_API_KEY, else configure)"},
    {"json", NULL, "print the API's JSON as it is (lists: one array of every page)"},
    {"timeout", "S", "seconds one request may take (default 60; uploads have none)"},
    {"help", NULL, "show help"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t no_opts[] = {{NULL, NULL, NULL}};

static const ctl_opt_t app_create_opts[] = {
    {"name", "NAME", "the application's name (required)"},
    {"start-url", "URL", "where dialers POST the call when it is answered"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t dep_list_opts[] = {
    {"application", "ID", "only this application's deployments"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t dep_create_opts[] = {
    {"application", "ID", "the application it deploys (required)"},
    {"name", "NAME", "its name (required)"},
    {"capacity", "N", "concurrent calls, 1-100000 (default 1)"},
    {"max-attempts", "N", "default attempts of its calls, 1-10"},
    {"retry-interval", "S", "default seconds between attempts, 60-172800"},
    {"calls-per-second", "X", "pacing, 0.01-10000"},
    {"default-region", "CC", "region of numbers in national format, e.g. GB"},
    {"start-url", "URL", "its application URL"},
    {"result-url", "URL", "its webhook URL"},
    {"caller-id", "E164", "the number calls come from"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t call_queue_opts[] = {
    {"reference", "R", "your reference (message_reference), returned with the call"},
    {"max-attempts", "N", "attempts, 1-10 (default: the deployment's)"},
    {"retry-interval", "S", "seconds between attempts, 60-172800"},
    {"priority", "N", "-1000..1000, higher is dialed first"},
    {"not-before", "T", "not dialed before: unix seconds, RFC 3339 or +N minutes/hours/days"},
    {"expires-at", "T", "never dialed after (same forms)"},
    {"result-url", "URL", "webhook of this call"},
    {"param", "NAME=VALUE", "a call parameter for your application (repeatable)"},
    {"parameters", "JSON", "call parameters as a JSON object"},
    {"idempotency-key", "K", "makes a retry safe: the same key queues nothing twice"},
    {"say", "TEXT", "the callee hears TEXT when answering (app: one say verb)"},
    {"voice", "V", "voice or language of --say, e.g. en-us (default), fr, de"},
    {"rate", "N", "words per minute of --say, 80-450 (default 160)"},
    {"app", "FILE", "the call's application document, a JSON file (- reads stdin)"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t calls_list_opts[] = {
    {"state", "S", "pending, queued, dialing, connected or completed"},
    {"status", "S", "completed, failed or uncalled"},
    {"result", "R", "voice, answeringmachine, fax, busy, noanswer, ..."},
    {"reference", "R", "only calls with this message_reference"},
    {"upload", "ID", "only the calls of this upload"},
    {"limit", "N", "at most N calls, newest first (default 100; 0: all)"},
    {"page-size", "N", "calls per API page, 1-1000 (default 100)"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t calls_watch_opts[] = {
    {"interval", "S", "seconds between polls (default 2)"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t calls_upload_opts[] = {
    {"format", "F", "csv, ndjson or json (default: from the file's extension)"},
    {"max-attempts", "N", "default attempts of the rows, 1-10"},
    {"retry-interval", "S", "default seconds between attempts, 60-172800"},
    {"priority", "N", "default priority, -1000..1000"},
    {"not-before", "T", "default start time"},
    {"expires-at", "T", "default expiry"},
    {"idempotency-key", "K", "makes a retry of the whole file safe"},
    {"no-progress", NULL, "no progress bar (it is shown only when stderr is a terminal)"},
    {NULL, NULL, NULL},
};

static const command_t commands[] = {
    {"configure", NULL, "--url URL --key KEY", 0, no_opts, false, false, ctl_cmd_configure,
     "save --url and --key in the configuration file (mode 0600)",
     "outboundctl configure --url http://127.0.0.1:19080 --key obk_..."},
    {"applications", "list", "", 0, no_opts, true, false, ctl_cmd_apps_list,
     "list the account's applications", "outboundctl applications list"},
    {"applications", "create", "--name NAME", 0, app_create_opts, true, false, ctl_cmd_apps_create,
     "create an application", "outboundctl applications create --name reminders"},
    {"deployments", "list", "", 0, dep_list_opts, true, false, ctl_cmd_deps_list,
     "list the account's deployments", "outboundctl deployments list"},
    {"deployments", "show", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_deps_show,
     "show one deployment's settings", "outboundctl deployments show $DEP"},
    {"deployments", "create", "--application ID --name NAME", 0, dep_create_opts, true, false,
     ctl_cmd_deps_create, "create a deployment of an application",
     "outboundctl deployments create --application $APP --name uk --capacity 20"},
    {"deployments", "set-app", "DEPLOYMENT FILE", 2, no_opts, true, false, ctl_cmd_deps_set_app,
     "give a deployment's calls an application document (JSON; - reads stdin)",
     "outboundctl deployments set-app $DEP reminder.json"},
    {"deployments", "clear-app", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_deps_clear_app,
     "remove a deployment's application document", "outboundctl deployments clear-app $DEP"},
    {"call", "queue", "DEPLOYMENT PHONE", 2, call_queue_opts, true, false, ctl_cmd_call_queue,
     "queue one call",
     "outboundctl call queue $DEP +12125550100 --say \"Your order has shipped.\""},
    {"call", "show", "CALL_ID", 1, no_opts, true, false, ctl_cmd_call_show,
     "show a call, its attempts and its result", "outboundctl call show $CALL_ID"},
    {"call", "cancel", "CALL_ID", 1, no_opts, true, false, ctl_cmd_call_cancel,
     "cancel a call that has not started dialing", "outboundctl call cancel $CALL_ID"},
    {"calls", "list", "DEPLOYMENT", 1, calls_list_opts, true, false, ctl_cmd_calls_list,
     "list a deployment's calls, newest first", "outboundctl calls list $DEP --state pending"},
    {"calls", "watch", "DEPLOYMENT", 1, calls_watch_opts, true, true, ctl_cmd_calls_watch,
     "print each change of a deployment's calls until Ctrl-C", "outboundctl calls watch $DEP"},
    {"calls", "upload", "DEPLOYMENT FILE", 2, calls_upload_opts, true, true, ctl_cmd_calls_upload,
     "queue the calls of a CSV or NDJSON file (- reads stdin)",
     "outboundctl calls upload $DEP calls.csv --max-attempts 2"},
    {"upload", "show", "UPLOAD_ID", 1, no_opts, true, false, ctl_cmd_upload_show,
     "show an upload's report again", "outboundctl upload show $UPLOAD_ID"},
    {"queue", "status", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_queue_status,
     "counts of a deployment's calls, capacity, paused", "outboundctl queue status $DEP"},
    {"queue", "cancel", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_queue_control,
     "cancel every pending call of a deployment", "outboundctl queue cancel $DEP"},
    {"queue", "pause", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_queue_control,
     "stop releasing a deployment's calls", "outboundctl queue pause $DEP"},
    {"queue", "resume", "DEPLOYMENT", 1, no_opts, true, false, ctl_cmd_queue_control,
     "release a paused deployment's calls again", "outboundctl queue resume $DEP"},
};

static const char exit_help[] =
    "Exit codes:\n"
    "  0  done\n"
    "  1  the API refused the request (4xx: invalid input, bad key, conflict); the\n"
    "     problem's code, detail and field errors are printed on stderr\n"
    "  2  usage: bad command line, no URL or key configured, unreadable file\n"
    "  3  not found (404): no such call, deployment, application or upload\n"
    "  4  unavailable: the API could not be reached, answered 5xx or 429, or did not\n"
    "     answer JSON; retrying later may succeed\n"
    "  5  an upload or batch was taken but some rows were rejected (listed)\n"
    "  130  interrupted (Ctrl-C) during an upload\n";

static void print_opts(FILE *out, const ctl_opt_t *opts)
{
    for (const ctl_opt_t *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-24s %s\n", left, o->help);
    }
}

static void tool_help(FILE *out)
{
    fputs("outboundctl: the command-line client of the outbound call queuing API\n\n"
          "Usage: outboundctl COMMAND [ARGUMENTS] [OPTIONS]\n\nCommands:\n",
          out);
    for (size_t i = 0; i < OB_COUNTOF(commands); i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%s%s %s", commands[i].noun, commands[i].verb ? " " : "",
                 commands[i].verb ? commands[i].verb : "", commands[i].args);
        fprintf(out, "  %-46s %s\n", left, commands[i].summary);
    }
    fputs("\nOptions of every command:\n", out);
    print_opts(out, global_opts);
    fputs("\nThe URL and key come from --url and --key, else OUTBOUND_URL and\n"
          "OUTBOUND_API_KEY, else the file `outboundctl configure` writes:\n"
          "$OUTBOUND_CONFIG, else $XDG_CONFIG_HOME/outbound/config, else\n"
          "~/.config/outbound/config. Nouns may be singular or plural (call list,\n"
          "calls show). With --json, an API error's problem JSON also goes to stdout.\n\n",
          out);
    fputs(exit_help, out);
    fputs("\nRun `outboundctl COMMAND --help` for a command's options.\n", out);
}

static void command_help(FILE *out, const command_t *cmd)
{
    fprintf(out, "Usage: outboundctl %s%s%s %s [OPTIONS]\n\n%c%s.\n", cmd->noun,
            cmd->verb ? " " : "", cmd->verb ? cmd->verb : "", cmd->args,
            toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
    if (cmd->opts[0].name) {
        fputs("\nOptions:\n", out);
        print_opts(out, cmd->opts);
    }
    fputs("\nOptions of every command:\n", out);
    print_opts(out, global_opts);
    fprintf(out, "\nExample:\n  %s\n\n%s", cmd->example, exit_help);
}

/* Whether option name (as typed, after "--") takes a value in any table,
 * so the command words can be found wherever the options are. */
static bool takes_value(const char *name)
{
    if (strchr(name, '='))
        return false;
    for (const ctl_opt_t *o = global_opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->arg != NULL;
    for (size_t i = 0; i < OB_COUNTOF(commands); i++)
        for (const ctl_opt_t *o = commands[i].opts; o->name; o++)
            if (strcmp(o->name, name) == 0)
                return o->arg != NULL;
    return false;
}

/* The command named by the first words of argv (NULL if none); the indexes
 * of its one or two words go to word[]. */
static const command_t *find_command(int argc, char **argv, int word[2], const char **noun,
                                     const char **verb)
{
    int n = 0;
    *noun = *verb = NULL;
    for (int i = 1; i < argc && n < 2; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2]) {
            i += takes_value(argv[i] + 2);
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1])
            continue;
        word[n++] = i;
        if (n == 1 && strcmp(argv[i], "configure") == 0)
            break;
    }
    if (n == 0)
        return NULL;
    *noun = argv[word[0]];
    *verb = n > 1 ? argv[word[1]] : NULL;
    for (size_t i = 0; i < OB_COUNTOF(commands); i++) {
        const command_t *c = &commands[i];
        if (strcmp(ctl_noun(c->noun), ctl_noun(*noun)) != 0)
            continue;
        if (!c->verb) {
            word[1] = -1;
            return c;
        }
        if (*verb && strcmp(c->verb, *verb) == 0)
            return c;
    }
    return NULL;
}

/* A short usage error: what was not understood and what would be. */
static void unknown_command(const char *noun, const char *verb)
{
    bool known_noun = false;
    for (size_t i = 0; noun && i < OB_COUNTOF(commands); i++)
        if (strcmp(ctl_noun(commands[i].noun), ctl_noun(noun)) == 0) {
            if (!known_noun)
                fprintf(stderr, "outboundctl: %s%s%s: unknown command; %s takes:", noun,
                        verb ? " " : "", verb ? verb : "", noun);
            fprintf(stderr, " %s", commands[i].verb);
            known_noun = true;
        }
    if (known_noun)
        fputc('\n', stderr);
    else if (noun)
        fprintf(stderr, "outboundctl: unknown command \"%s\"\n", noun);
    else
        fputs("outboundctl: no command given\n", stderr);
    fputs("(see outboundctl --help)\n", stderr);
}

static void on_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

/* url and key from flags, environment, then the configuration file; a
 * usage error names what is missing and where it can come from. */
static int resolve(ctl_t *c, const ctl_args_t *a, char **url_buf, char **key_buf)
{
    ob_err_t err = {{0}};
    const char *url = ctl_args_get(a, "url"), *key = ctl_args_get(a, "key");
    if (!url && getenv("OUTBOUND_URL") && *getenv("OUTBOUND_URL"))
        url = getenv("OUTBOUND_URL");
    if (!key && getenv("OUTBOUND_API_KEY") && *getenv("OUTBOUND_API_KEY"))
        key = getenv("OUTBOUND_API_KEY");
    if (!url || !key) {
        char *path = ctl_config_path();
        ob_rc_t rc = path ? ctl_config_read(path, url_buf, key_buf, &err) : OB_ENOTFOUND;
        free(path);
        if (rc == OB_ERR)
            return ctl_usage_error(c, "%s", err.msg);
        url = url ? url : *url_buf;
        key = key ? key : *key_buf;
    }
    if (!url)
        return ctl_usage_error(c, "no API URL: pass --url, set OUTBOUND_URL or run outboundctl "
                                  "configure");
    if (!key)
        return ctl_usage_error(c, "no API key: pass --key, set OUTBOUND_API_KEY or run "
                                  "outboundctl configure");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return ctl_usage_error(c, "the API URL must start with http:// or https://, not \"%s\"",
                               url);
    /* A trailing slash would double the one every path starts with. */
    char *trimmed = ob_xstrdup(url);
    size_t n = strlen(trimmed);
    while (n > 8 && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    free(*url_buf);
    *url_buf = trimmed;
    c->url = trimmed;
    c->key = key;
    return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    ctl_t c = {.timeout_s = 60};
    ctl_args_t args;
    ob_err_t err = {{0}};
    char *url_buf = NULL, *key_buf = NULL, **rest = NULL, cmd_name[64];
    int word[2] = {-1, -1}, rc = CTL_EXIT_OK;
    const char *noun, *verb;

    /* Find the command. */
    const command_t *cmd = find_command(argc, argv, word, &noun, &verb);
    bool help = false;
    for (int i = 1; i < argc && !help; i++)
        help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (noun && strcmp(noun, "help") == 0) {
        /* "outboundctl help [COMMAND]" */
        int w2[2] = {-1, -1};
        cmd = argc > 2 ? find_command(argc - 1, argv + 1, w2, &noun, &verb) : NULL;
        cmd ? command_help(stdout, cmd) : tool_help(stdout);
        return CTL_EXIT_OK;
    }
    if (!cmd && help && !noun) {
        tool_help(stdout);
        return CTL_EXIT_OK;
    }
    if (!cmd) {
        unknown_command(noun, verb);
        return CTL_EXIT_USAGE;
    }
    snprintf(cmd_name, sizeof(cmd_name), "%s%s%s", cmd->noun, cmd->verb ? " " : "",
             cmd->verb ? cmd->verb : "");
    c.cmd = cmd_name;
    if (help) {
        command_help(stdout, cmd);
        return CTL_EXIT_OK;
    }

    /* Parse its options: every word but the command's own. */
    rest = ob_xcalloc((size_t)argc, sizeof(char *));
    int nrest = 0;
    for (int i = 1; i < argc; i++)
        if (i != word[0] && i != word[1])
            rest[nrest++] = argv[i];
    const ctl_opt_t *tables[] = {global_opts, cmd->opts};
    if (ctl_args_parse(tables, 2, nrest, rest, &args, &err) != OB_OK) {
        rc = ctl_usage_error(&c, "%s", err.msg);
        goto out;
    }
    if (args.npos != cmd->npos) {
        rc = ctl_usage_error(&c, "takes %d argument%s%s%s%s, not %d", cmd->npos,
                             cmd->npos == 1 ? "" : "s", cmd->npos ? " (" : "",
                             cmd->npos ? cmd->args : "", cmd->npos ? ")" : "", args.npos);
        goto out;
    }
    c.json = ctl_args_has(&args, "json");
    if (ctl_args_long(&args, "timeout", 1, 86400, &c.timeout_s, &err) == OB_EINVAL) {
        rc = ctl_usage_error(&c, "%s", err.msg);
        goto out;
    }

    /* Resolve where the API is and who we are. */
    if (cmd->needs_api && (rc = resolve(&c, &args, &url_buf, &key_buf)) != CTL_EXIT_OK)
        goto out;

    /* Run it. */
    if (cmd->interruptible) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmd->run(&c, &args);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
        rc = CTL_EXIT_USAGE; /* stdout closed or full: the output is lost */
out:
    free(rest);
    free(url_buf);
    free(key_buf);
    return rc;
}
