/*
 * Command-line parsing for outboundctl. Only long options, accepted anywhere
 * on the line (as git and kubectl do), so "call show ID --json" and
 * "--json call show ID" mean the same.
 */
#include "ctl_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const ctl_opt_t *find_opt(const ctl_opt_t *const *tables, int ntables, const char *name,
                                 size_t len)
{
    for (int t = 0; t < ntables; t++)
        for (const ctl_opt_t *o = tables[t]; o && o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

ob_rc_t ctl_args_parse(const ctl_opt_t *const *tables, int ntables, int argc, char *const *argv,
                       ctl_args_t *out, ob_err_t *err)
{
    bool only_pos = false;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (only_pos || w[0] != '-' || w[1] == '\0') {
            if (out->npos == CTL_MAX_POS) {
                ob_err_set(err, "too many arguments (at \"%s\")", w);
                return OB_EINVAL;
            }
            out->pos[out->npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_pos = true;
            continue;
        }
        const char *name = strcmp(w, "-h") == 0 ? "help" : w + 2;
        if (w[1] != '-' && strcmp(w, "-h") != 0) {
            ob_err_set(err, "unknown option %s (options are long: --name)", w);
            return OB_EINVAL;
        }
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const ctl_opt_t *o = find_opt(tables, ntables, name, len);
        if (!o) {
            ob_err_set(err, "unknown option --%.*s", (int)len, name);
            return OB_EINVAL;
        }
        const char *value = NULL;
        if (o->arg && eq) {
            value = eq + 1;
        } else if (o->arg) {
            if (i + 1 >= argc) {
                ob_err_set(err, "--%s needs a value (%s)", o->name, o->arg);
                return OB_EINVAL;
            }
            value = argv[++i];
        } else if (eq) {
            ob_err_set(err, "--%s takes no value", o->name);
            return OB_EINVAL;
        }
        if (out->nvals == CTL_MAX_VALS) {
            ob_err_set(err, "too many options (at --%s)", o->name);
            return OB_EINVAL;
        }
        out->vals[out->nvals++] = (ctl_optval_t){o, value};
    }
    return OB_OK;
}

const char *ctl_args_get(const ctl_args_t *a, const char *name)
{
    for (int i = a->nvals - 1; i >= 0; i--)
        if (strcmp(a->vals[i].opt->name, name) == 0)
            return a->vals[i].value;
    return NULL;
}

bool ctl_args_has(const ctl_args_t *a, const char *name)
{
    for (int i = 0; i < a->nvals; i++)
        if (strcmp(a->vals[i].opt->name, name) == 0)
            return true;
    return false;
}

int ctl_args_all(const ctl_args_t *a, const char *name, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < a->nvals && n < max; i++)
        if (strcmp(a->vals[i].opt->name, name) == 0)
            out[n++] = a->vals[i].value;
    return n;
}

bool ctl_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

ob_rc_t ctl_args_long(const ctl_args_t *a, const char *name, long min, long max, long *out,
                      ob_err_t *err)
{
    const char *s = ctl_args_get(a, name);
    if (!ctl_args_has(a, name))
        return OB_ENOTFOUND;
    if (!ctl_parse_long(s, min, max, out)) {
        ob_err_set(err, "--%s must be a whole number from %ld to %ld, not \"%s\"", name, min, max,
                   s ? s : "");
        return OB_EINVAL;
    }
    return OB_OK;
}

const char *ctl_noun(const char *noun)
{
    static const char *const nouns[][2] = {
        {"calls", "call"},       {"deployments", "deployment"}, {"applications", "application"},
        {"apps", "application"}, {"app", "application"},        {"queues", "queue"},
        {"uploads", "upload"},
    };
    for (size_t i = 0; i < OB_COUNTOF(nouns); i++)
        if (strcmp(noun, nouns[i][0]) == 0)
            return nouns[i][1];
    return noun;
}
