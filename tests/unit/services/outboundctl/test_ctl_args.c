/* outboundctl's command-line parsing (services/outboundctl/ctl_args.c):
 * options anywhere, both value forms, and each refusal's message. */
#include "ctl_args.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

static const ctl_opt_t global[] = {
    {"json", NULL, "json"},
    {"key", "KEY", "key"},
    {"help", NULL, "help"},
    {NULL, NULL, NULL},
};

static const ctl_opt_t own[] = {
    {"limit", "N", "limit"},
    {"param", "NAME=VALUE", "param"},
    {NULL, NULL, NULL},
};

typedef struct {
    const char *name;    /* what the case shows */
    const char *argv[8]; /* the words (NULL ends) */
    const char *pos;     /* positionals joined by '|', or NULL when parsing fails */
    const char *limit;   /* ctl_args_get("limit") */
    const char *key;     /* ctl_args_get("key") */
    bool json;           /* ctl_args_has("json") */
    const char *error;   /* expected message when parsing fails */
} parse_case_t;

static parse_case_t parse_cases[] = {
    {"positionals only", {"a", "b"}, "a|b", NULL, NULL, false, NULL},
    {"options anywhere", {"--json", "a", "--limit", "5", "b"}, "a|b", "5", NULL, true, NULL},
    {"--name=value", {"a", "--limit=7", "--key=k=v"}, "a", "7", "k=v", false, NULL},
    {"the last value wins", {"--limit", "1", "--limit", "2"}, "", "2", NULL, false, NULL},
    {"a value may look like an option", {"--key", "--json"}, "", NULL, "--json", false, NULL},
    {"-- ends options", {"--", "--json", "-5"}, "--json|-5", NULL, NULL, false, NULL},
    {"a lone dash is positional (stdin)", {"a", "-"}, "a|-", NULL, NULL, false, NULL},
    {"-h is --help", {"-h"}, "", NULL, NULL, false, NULL},
    {"unknown option", {"--colour", "blue"}, NULL, NULL, NULL, false, "unknown option --colour"},
    {"unknown short option",
     {"-x"},
     NULL,
     NULL,
     NULL,
     false,
     "unknown option -x (options are long: --name)"},
    {"missing value", {"a", "--limit"}, NULL, NULL, NULL, false, "--limit needs a value (N)"},
    {"value given to a flag", {"--json=yes"}, NULL, NULL, NULL, false, "--json takes no value"},
};

ParameterizedTestParameters(ctl_args, parse)
{
    return cr_make_param_array(parse_case_t, parse_cases,
                               sizeof(parse_cases) / sizeof(parse_cases[0]));
}

ParameterizedTest(parse_case_t *c, ctl_args, parse)
{
    const ctl_opt_t *tables[] = {global, own};
    ctl_args_t a;
    ob_err_t err = {{0}};
    int argc = 0;
    while (c->argv[argc])
        argc++;
    ob_rc_t rc = ctl_args_parse(tables, 2, argc, (char *const *)c->argv, &a, &err);
    if (!c->pos) {
        cr_assert_eq(rc, OB_EINVAL, "%s: parsed", c->name);
        cr_expect_str_eq(err.msg, c->error, "%s", c->name);
        return;
    }
    cr_assert_eq(rc, OB_OK, "%s: %s", c->name, err.msg);
    char joined[256] = "";
    for (int i = 0; i < a.npos; i++) {
        if (i)
            strcat(joined, "|");
        strcat(joined, a.pos[i]);
    }
    cr_expect_str_eq(joined, c->pos, "%s", c->name);
    if (c->limit)
        cr_expect_str_eq(ctl_args_get(&a, "limit"), c->limit, "%s", c->name);
    else
        cr_expect_null(ctl_args_get(&a, "limit"), "%s", c->name);
    if (c->key)
        cr_expect_str_eq(ctl_args_get(&a, "key"), c->key, "%s", c->name);
    cr_expect_eq(ctl_args_has(&a, "json"), c->json, "%s", c->name);
}

Test(ctl_args, repeated_options_keep_every_value)
{
    const ctl_opt_t *tables[] = {own};
    const char *argv[] = {"--param", "a=1", "x", "--param=b=2"};
    const char *vals[4];
    ctl_args_t a;
    ob_err_t err = {{0}};
    cr_assert_eq(ctl_args_parse(tables, 1, 4, (char *const *)argv, &a, &err), OB_OK);
    cr_assert_eq(ctl_args_all(&a, "param", vals, 4), 2);
    cr_expect_str_eq(vals[0], "a=1");
    cr_expect_str_eq(vals[1], "b=2");
    cr_expect_eq(ctl_args_all(&a, "limit", vals, 4), 0);
}

Test(ctl_args, too_many_positionals_are_refused)
{
    const char *argv[CTL_MAX_POS + 1];
    for (int i = 0; i <= CTL_MAX_POS; i++)
        argv[i] = "w";
    ctl_args_t a;
    ob_err_t err = {{0}};
    cr_expect_eq(ctl_args_parse(NULL, 0, CTL_MAX_POS + 1, (char *const *)argv, &a, &err),
                 OB_EINVAL);
    cr_expect(strstr(err.msg, "too many arguments"), "%s", err.msg);
}

typedef struct {
    const char *text; /* the value */
    long min, max;    /* bounds */
    bool ok;          /* accepted */
    long want;        /* its value when accepted */
} long_case_t;

static long_case_t long_cases[] = {
    {"5", 1, 10, true, 5},
    {"1", 1, 10, true, 1},
    {"10", 1, 10, true, 10},
    {"-1000", -1000, 1000, true, -1000},
    {"0", 1, 10, false, 0},
    {"11", 1, 10, false, 0},
    {"", 1, 10, false, 0},
    {"5x", 1, 10, false, 0},
    {" 5", 1, 10, false, 0},
    {"many", 1, 10, false, 0},
    {"99999999999999999999", 0, 100, false, 0},
};

ParameterizedTestParameters(ctl_args, parse_long)
{
    return cr_make_param_array(long_case_t, long_cases, sizeof(long_cases) / sizeof(long_cases[0]));
}

ParameterizedTest(long_case_t *c, ctl_args, parse_long)
{
    long v = -7;
    cr_expect_eq(ctl_parse_long(c->text, c->min, c->max, &v), c->ok, "\"%s\"", c->text);
    if (c->ok)
        cr_expect_eq(v, c->want, "\"%s\"", c->text);
}

Test(ctl_args, a_bad_number_option_names_its_range)
{
    const ctl_opt_t *tables[] = {own};
    const char *argv[] = {"--limit", "lots"};
    ctl_args_t a;
    ob_err_t err = {{0}};
    long v = 0;
    cr_assert_eq(ctl_args_parse(tables, 1, 2, (char *const *)argv, &a, &err), OB_OK);
    cr_expect_eq(ctl_args_long(&a, "limit", 0, 1000, &v, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "--limit must be a whole number from 0 to 1000, not \"lots\"");
    cr_expect_eq(ctl_args_long(&a, "param", 0, 1000, &v, &err), OB_ENOTFOUND);
}

Test(ctl_args, nouns_may_be_plural)
{
    cr_expect_str_eq(ctl_noun("calls"), "call");
    cr_expect_str_eq(ctl_noun("call"), "call");
    cr_expect_str_eq(ctl_noun("deployments"), "deployment");
    cr_expect_str_eq(ctl_noun("apps"), "application");
    cr_expect_str_eq(ctl_noun("configure"), "configure");
}
