/*
 * outboundctl commands about the account's resources: the configuration
 * file, applications, deployments (their static application document
 * too), and a deployment's queue (cancel, pause, resume, status).
 */
#include "ctl.h"
#include "ctl_app.h"
#include "ctl_table.h"
#include "ob_vocab.h"

#include <stdlib.h>
#include <string.h>

int ctl_cmd_configure(const ctl_t *c, const ctl_args_t *a)
{
    ob_err_t err = {{0}};
    const char *url = ctl_args_get(a, "url"), *key = ctl_args_get(a, "key");
    if (!url || !key)
        return ctl_usage_error(c, "give both --url and --key");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return ctl_usage_error(c, "--url must start with http:// or https://, not \"%s\"", url);
    char *path = ctl_config_path();
    if (!path)
        return ctl_usage_error(c, "no home folder: set HOME, XDG_CONFIG_HOME or OUTBOUND_CONFIG");
    char *trimmed = ob_xstrdup(url);
    size_t n = strlen(trimmed);
    while (n > 8 && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    int rc = CTL_EXIT_OK;
    if (ctl_config_write(path, trimmed, key, &err) != OB_OK) {
        fprintf(stderr, "outboundctl configure: %s\n", err.msg);
        rc = CTL_EXIT_USAGE;
    } else {
        printf("wrote %s (mode 0600)\n", path);
    }
    free(trimmed);
    free(path);
    return rc;
}

/* GET of one object: its JSON in *out, or an exit code. */
static int get_object(const ctl_t *c, const char *path, cJSON **out)
{
    return ctl_request(c, "GET", path, NULL, 200, out);
}

/* POSTs body (JSON text or NULL) to path expecting want; prints the answer
 * with --json and hands it over in *out (may be NULL). */
static int post(const ctl_t *c, const char *path, const char *body, long want, cJSON **out)
{
    cJSON *j = NULL;
    int rc = ctl_request(c, "POST", path, body, want, &j);
    if (rc == CTL_EXIT_OK && c->json)
        ctl_print_json(j);
    if (out)
        *out = j;
    else
        cJSON_Delete(j);
    return rc;
}

int ctl_cmd_apps_list(const ctl_t *c, const ctl_args_t *a)
{
    (void)a;
    cJSON *all = cJSON_CreateArray();
    int rc = ctl_get_pages(c, "/api/v1/applications", "applications", 0, 1000, all);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(all);
    } else if (rc == CTL_EXIT_OK) {
        static const char *const head[] = {"APPLICATION", "NAME", "START_URL", "CREATED"};
        static const char *const keys[] = {"application_id", "name", "start_url", "created_at"};
        ctl_print_rows(all, OB_COUNTOF(head), head, keys, stdout);
    }
    cJSON_Delete(all);
    return rc;
}

int ctl_cmd_apps_create(const ctl_t *c, const ctl_args_t *a)
{
    const char *name = ctl_args_get(a, "name");
    if (!name)
        return ctl_usage_error(c, "--name is required");
    cJSON *body = cJSON_CreateObject(), *app = NULL;
    cJSON_AddStringToObject(body, "name", name);
    if (ctl_args_get(a, "start-url"))
        cJSON_AddStringToObject(body, "start_url", ctl_args_get(a, "start-url"));
    char *text = cJSON_PrintUnformatted(body);
    int rc = post(c, "/api/v1/applications", text, 201, &app);
    if (rc == CTL_EXIT_OK && !c->json) {
        char id[64];
        printf("created application %s\n", ctl_cell(app, "application_id", id, sizeof(id)));
    }
    cJSON_free(text);
    cJSON_Delete(body);
    cJSON_Delete(app);
    return rc;
}

int ctl_cmd_deps_list(const ctl_t *c, const ctl_args_t *a)
{
    char *path = NULL;
    const char *app = ctl_args_get(a, "application");
    if (app) {
        char *e = ctl_escape(app);
        path = ob_xasprintf("/api/v1/deployments?application_id=%s", e);
        free(e);
    } else {
        path = ob_xstrdup("/api/v1/deployments");
    }
    cJSON *all = cJSON_CreateArray();
    int rc = ctl_get_pages(c, path, "deployments", 0, 1000, all);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(all);
    } else if (rc == CTL_EXIT_OK) {
        static const char *const head[] = {"DEPLOYMENT", "NAME",   "APPLICATION",
                                           "CAPACITY",   "ACTIVE", "PAUSED"};
        static const char *const keys[] = {"deployment_id", "name",   "application_id",
                                           "capacity",      "active", "paused"};
        ctl_print_rows(all, OB_COUNTOF(head), head, keys, stdout);
    }
    cJSON_Delete(all);
    free(path);
    return rc;
}

/* Prints each scalar member of obj as "name: value", objects as JSON. */
static void print_members(const cJSON *obj)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        char b[1024];
        /* A secret stays off the screen unless asked for. */
        if (strcmp(m->string, "webhook_secret") == 0)
            printf("%-18s %s\n", m->string, "(hidden; --json shows it)");
        else
            printf("%-18s %s\n", m->string,
                   cJSON_IsNull(m) ? "-" : ctl_cell(obj, m->string, b, sizeof(b)));
    }
}

int ctl_cmd_deps_show(const ctl_t *c, const ctl_args_t *a)
{
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/deployments/%s", id);
    cJSON *d = NULL;
    int rc = get_object(c, path, &d);
    if (rc == CTL_EXIT_OK && c->json)
        ctl_print_json(d);
    else if (rc == CTL_EXIT_OK)
        print_members(d);
    cJSON_Delete(d);
    free(path);
    free(id);
    return rc;
}

int ctl_cmd_deps_create(const ctl_t *c, const ctl_args_t *a)
{
    const char *app = ctl_args_get(a, "application"), *name = ctl_args_get(a, "name");
    int rc = CTL_EXIT_OK;
    if (!app || !name)
        return ctl_usage_error(c, "--application and --name are required");
    cJSON *body = cJSON_CreateObject(), *dep = NULL;
    char *text = NULL, *path = NULL;
    cJSON_AddStringToObject(body, "name", name);
    if (!ctl_body_long(c, a, body, "capacity", "capacity", 1, 100000, &rc) ||
        !ctl_body_long(c, a, body, "max-attempts", "max_attempts", 1, 10, &rc) ||
        !ctl_body_long(c, a, body, "retry-interval", "retry_interval_s", 60, 172800, &rc))
        goto out;
    static const char *const strings[][2] = {
        {"default-region", "default_region"},
        {"start-url", "start_url"},
        {"result-url", "result_url"},
        {"caller-id", "caller_id"},
    };
    for (size_t i = 0; i < OB_COUNTOF(strings); i++)
        if (ctl_args_get(a, strings[i][0]))
            cJSON_AddStringToObject(body, strings[i][1], ctl_args_get(a, strings[i][0]));
    const char *cps = ctl_args_get(a, "calls-per-second");
    if (cps) {
        char *end;
        double v = strtod(cps, &end);
        if (*end || end == cps) {
            rc = ctl_usage_error(c, "--calls-per-second must be a number, not \"%s\"", cps);
            goto out;
        }
        cJSON_AddNumberToObject(body, "calls_per_second", v);
    }
    text = cJSON_PrintUnformatted(body);
    char *e = ctl_escape(app);
    path = ob_xasprintf("/api/v1/applications/%s/deployments", e);
    free(e);
    rc = post(c, path, text, 201, &dep);
    if (rc == CTL_EXIT_OK && !c->json) {
        char id[64];
        printf("created deployment %s\n", ctl_cell(dep, "deployment_id", id, sizeof(id)));
    }
out:
    cJSON_free(text);
    free(path);
    cJSON_Delete(body);
    cJSON_Delete(dep);
    return rc;
}

/* PATCHes the deployment's app to doc (NULL: JSON null, which clears it)
 * and says what it is now. */
static int patch_app(const ctl_t *c, const char *dep_id, cJSON *doc)
{
    cJSON *body = cJSON_CreateObject(), *dep = NULL;
    cJSON_AddItemToObject(body, "app", doc ? doc : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(body);
    char *id = ctl_escape(dep_id);
    char *path = ob_xasprintf("/api/v1/deployments/%s", id);
    int rc = ctl_request(c, "PATCH", path, text, 200, &dep);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(dep);
    } else if (rc == CTL_EXIT_OK) {
        char what[128];
        const cJSON *now = cJSON_GetObjectItemCaseSensitive(dep, "app");
        ctl_app_describe(now ? now : doc, what, sizeof(what));
        if (doc)
            printf("deployment %s: application set (%s)\n", dep_id, what);
        else
            printf("deployment %s: application cleared\n", dep_id);
    }
    cJSON_Delete(dep);
    free(path);
    free(id);
    cJSON_free(text);
    cJSON_Delete(body);
    return rc;
}

int ctl_cmd_deps_set_app(const ctl_t *c, const ctl_args_t *a)
{
    ob_err_t err = {{0}};
    cJSON *doc = NULL;
    if (ctl_app_read(a->pos[1], stdin, &doc, &err) != OB_OK)
        return ctl_usage_error(c, "%s", err.msg);
    return patch_app(c, a->pos[0], doc); /* the body owns doc */
}

int ctl_cmd_deps_clear_app(const ctl_t *c, const ctl_args_t *a)
{
    return patch_app(c, a->pos[0], NULL);
}

int ctl_cmd_queue_control(const ctl_t *c, const ctl_args_t *a)
{
    /* c->cmd is "queue cancel", "queue pause" or "queue resume". */
    const char *verb = strchr(c->cmd, ' ') + 1;
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/deployments/%s:%s", id, verb);
    int rc = post(c, path, NULL, strcmp(verb, "cancel") == 0 ? 202 : 200, NULL);
    if (rc == CTL_EXIT_OK && !c->json)
        printf("%s %s\n",
               strcmp(verb, "cancel") == 0  ? "cancelling the pending calls of deployment"
               : strcmp(verb, "pause") == 0 ? "paused deployment"
                                            : "resumed deployment",
               a->pos[0]);
    free(path);
    free(id);
    return rc;
}

int ctl_cmd_queue_status(const ctl_t *c, const ctl_args_t *a)
{
    char *id = ctl_escape(a->pos[0]);
    char *path = ob_xasprintf("/api/v1/deployments/%s/summary", id);
    cJSON *s = NULL;
    int rc = get_object(c, path, &s);
    if (rc == CTL_EXIT_OK && c->json) {
        ctl_print_json(s);
    } else if (rc == CTL_EXIT_OK) {
        char b[8][256];
        const cJSON *states = cJSON_GetObjectItemCaseSensitive(s, "states");
        const cJSON *statuses = cJSON_GetObjectItemCaseSensitive(s, "statuses");
        const cJSON *pending = cJSON_GetObjectItemCaseSensitive(s, "pending");
        printf("deployment  %s (%s)\n", ctl_cell(s, "deployment_id", b[0], 256),
               ctl_cell(s, "name", b[1], 256));
        printf("active      %s, paused %s\n", ctl_cell(s, "active", b[0], 256),
               ctl_cell(s, "paused", b[1], 256));
        printf("in flight   %s of capacity %s\n", ctl_cell(s, "in_flight", b[0], 256),
               ctl_cell(s, "capacity", b[1], 256));
        printf("states      ");
        for (int i = 0; i < OB_STATE_COUNT; i++) {
            const char *name = ob_state_name((ob_state_t)i);
            printf("%s%s %s", i ? ", " : "", name, ctl_cell(states, name, b[0], 256));
        }
        printf("\nstatuses    ");
        for (int i = 0; i < OB_STATUS_COUNT; i++) {
            const char *name = ob_status_name((ob_status_t)i);
            printf("%s%s %s", i ? ", " : "", name, ctl_cell(statuses, name, b[0], 256));
        }
        putchar('\n');
        printf("pending     %s", ctl_cell(pending, "total", b[0], 256));
        const cJSON *w;
        const char *sep = ", waiting for ";
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(pending, "waiting_for"))
        {
            if (cJSON_IsNumber(w) && w->valuedouble > 0) {
                printf("%s%s %.0f", sep, w->string, w->valuedouble);
                sep = ", ";
            }
        }
        putchar('\n');
    }
    cJSON_Delete(s);
    free(path);
    free(id);
    return rc;
}
