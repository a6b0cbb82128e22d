/*
 * The call-control document on the command line: --say and --app make the
 * `app` of `call queue` and `deployments set-app`, and `call show` prints
 * the verbs each attempt ran. Only the shape is checked here; the API
 * validates the verbs and answers 422 naming the one that is wrong.
 */
#include "ctl_app.h"

#include "ctl_table.h"
#include "ob_appdoc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Line and column (from 1) of pos in text. */
static void position(const char *text, const char *pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < pos && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

ob_rc_t ctl_app_read(const char *path, FILE *in, cJSON **out, ob_err_t *err)
{
    bool std_in = strcmp(path, "-") == 0;
    const char *name = std_in ? "stdin" : path;
    FILE *f = std_in ? in : fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    ob_rc_t rc = OB_EINVAL;
    *out = NULL;
    if (!f) {
        ob_err_set(err, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    /* One byte over the limit is enough to know it is too large. */
    buf = ob_xmalloc(OB_APPDOC_MAX_BYTES + 2);
    len = fread(buf, 1, OB_APPDOC_MAX_BYTES + 1, f);
    if (ferror(f)) {
        ob_err_set(err, "cannot read %s: %s", name, strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    if (len > OB_APPDOC_MAX_BYTES) {
        ob_err_set(err, "%s is larger than %d bytes, the most a document may have", name,
                   OB_APPDOC_MAX_BYTES);
        goto out;
    }
    if (strspn(buf, " \t\r\n") == len) {
        ob_err_set(err, "%s is empty; a document is {\"verbs\": [...]}", name);
        goto out;
    }
    /* Text after the value is checked here: with a length, cJSON's
     * require_null_terminated refuses every document. */
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (doc && end)
        end += strspn(end, " \t\r\n");
    if (!doc || !end || end != buf + len) {
        int line, col;
        cJSON_Delete(doc);
        position(buf, end ? end : buf, &line, &col);
        ob_err_set(err, "%s is not JSON (line %d, column %d)", name, line, col);
        goto out;
    }
    if (!cJSON_IsObject(doc) && !cJSON_IsArray(doc)) {
        cJSON_Delete(doc);
        ob_err_set(err, "%s: a document is a JSON object {\"verbs\": [...]} or an array of verbs",
                   name);
        goto out;
    }
    *out = doc;
    rc = OB_OK;
out:
    if (f && !std_in)
        fclose(f);
    free(buf);
    return rc;
}

ob_rc_t ctl_app_from_args(const ctl_args_t *a, FILE *in, cJSON **out, ob_err_t *err)
{
    const char *say = ctl_args_get(a, "say"), *voice = ctl_args_get(a, "voice");
    const char *file = ctl_args_get(a, "app");
    bool has_rate = ctl_args_has(a, "rate");
    long rate = 0;
    *out = NULL;
    if (say && file) {
        ob_err_set(err, "--say and --app both give the application; use one of them");
        return OB_EINVAL;
    }
    if (!say && (voice || has_rate)) {
        ob_err_set(err, "%s applies to --say; give --say TEXT too", voice ? "--voice" : "--rate");
        return OB_EINVAL;
    }
    if (file)
        return ctl_app_read(file, in, out, err);
    if (!say)
        return OB_ENOTFOUND;
    if (strspn(say, " \t\r\n") == strlen(say)) {
        ob_err_set(err, "--say needs the text to say");
        return OB_EINVAL;
    }
    if (strlen(say) > OB_APPDOC_MAX_TEXT) {
        ob_err_set(err, "--say: at most %d bytes of text, not %zu", OB_APPDOC_MAX_TEXT,
                   strlen(say));
        return OB_EINVAL;
    }
    if (voice && !*voice) {
        ob_err_set(err, "--voice needs a voice or language, e.g. en-us");
        return OB_EINVAL;
    }
    if (ctl_args_long(a, "rate", CTL_APP_MIN_RATE, CTL_APP_MAX_RATE, &rate, err) == OB_EINVAL)
        return OB_EINVAL;
    cJSON *verb = cJSON_CreateObject();
    cJSON_AddStringToObject(verb, "verb", "say");
    cJSON_AddStringToObject(verb, "text", say);
    if (voice)
        cJSON_AddStringToObject(verb, "voice", voice);
    if (has_rate)
        cJSON_AddNumberToObject(verb, "rate", (double)rate);
    cJSON *verbs = cJSON_CreateArray();
    cJSON_AddItemToArray(verbs, verb);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "verbs", verbs);
    return OB_OK;
}

/* "N verb(s)" of a list, into buf; "" when it has none. */
static int count_text(const cJSON *list, const char *what, char *buf, size_t len)
{
    int n = cJSON_GetArraySize(list);
    if (n <= 0)
        return snprintf(buf, len, "%s", "");
    return snprintf(buf, len, "%d %s%s", n, what, n == 1 ? "" : "s");
}

const char *ctl_app_describe(const cJSON *doc, char *buf, size_t len)
{
    char verbs[64], machine[64];
    if (!doc || cJSON_IsNull(doc)) {
        snprintf(buf, len, "none");
        return buf;
    }
    const cJSON *list = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "verbs");
    count_text(list, "verb", verbs, sizeof(verbs));
    count_text(cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "machine") : NULL,
               "machine verb", machine, sizeof(machine));
    snprintf(buf, len, "%s%s%s", verbs[0] ? verbs : "0 verbs", machine[0] ? ", " : "", machine);
    return buf;
}

/* "digits 12, first audio 180 ms after the greeting's end" for one attempt
 * into buf; "" when it has no such facts. */
static void attempt_facts(const cJSON *att, char *buf, size_t len)
{
    static const char *const facts[][3] = {
        {"digits", "digits ", ""},
        {"first_audio_gap_ms", "first audio ", " ms after the greeting's end"},
        {"app_error", "application error: ", ""},
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < OB_COUNTOF(facts) && used < len; i++) {
        char cell[512];
        ctl_cell(att, facts[i][0], cell, sizeof(cell));
        if (!cell[0])
            continue;
        int n = snprintf(buf + used, len - used, "%s%s%s%s", used ? ", " : "", facts[i][1], cell,
                         facts[i][2]);
        used += n > 0 ? (size_t)n : 0;
    }
}

void ctl_app_print_attempts(const cJSON *call, FILE *out)
{
    static const char *const head[] = {"VERB",    "START_MS", "DURATION_MS",
                                       "OUTCOME", "DIGITS",   "ERROR"};
    const cJSON *att;
    cJSON_ArrayForEach(att, cJSON_GetObjectItemCaseSensitive(call, "attempts"))
    {
        const cJSON *verbs = cJSON_GetObjectItemCaseSensitive(att, "verbs");
        char facts[1024], n[32];
        attempt_facts(att, facts, sizeof(facts));
        if (cJSON_GetArraySize(verbs) <= 0 && !facts[0])
            continue;
        fprintf(out, "\nattempt %s application%s%s\n", ctl_cell(att, "attempt", n, sizeof(n)),
                facts[0] ? ": " : "", facts);
        if (cJSON_GetArraySize(verbs) <= 0)
            continue;
        ctl_table_t t;
        ctl_table_init(&t, OB_COUNTOF(head), head);
        const cJSON *v;
        cJSON_ArrayForEach(v, verbs)
        {
            static const char *const keys[] = {"verb", "started_ms", "duration_ms", "outcome",
                                               "digits"};
            char cells[5][512], err[512], detail[512], last[1040];
            const char *row[6];
            for (size_t k = 0; k < OB_COUNTOF(keys); k++)
                row[k] = ctl_cell(v, keys[k], cells[k], sizeof(cells[k]));
            /* The error, else the detail (what a verb did, e.g. where it
             * connected), so the table keeps one last column. */
            ctl_cell(v, "error", err, sizeof(err));
            ctl_cell(v, "detail", detail, sizeof(detail));
            if (err[0] && detail[0])
                snprintf(last, sizeof(last), "%s (%s)", err, detail);
            else
                snprintf(last, sizeof(last), "%s", err[0] ? err : detail);
            row[5] = last;
            ctl_table_add(&t, row);
        }
        ctl_table_print(&t, out);
        ctl_table_free(&t);
    }
}
