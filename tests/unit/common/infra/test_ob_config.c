/* Configuration loading (common/infra/ob_config.c): defaults, parsing, bounds and
 * that every problem is reported, not just the first. */
#include "ob_config.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long long n;  /* OB_T_N */
    char *word;   /* OB_T_WORD */
    bool flag;    /* OB_T_FLAG */
    double ratio; /* OB_T_RATIO */
    char *name;   /* OB_T_NAME */
    char *nets;   /* OB_T_NETS */
} test_cfg_t;

#define F(x) offsetof(test_cfg_t, x)
static const ob_cfg_spec_t specs[] = {
    {"OB_T_N", OB_CFG_INT, "5", 1, 10, NULL, F(n), "a number"},
    {"OB_T_WORD", OB_CFG_ENUM, "b", 0, 0, "a|b|c", F(word), "a word"},
    {"OB_T_FLAG", OB_CFG_BOOL, "false", 0, 0, NULL, F(flag), "a flag"},
    {"OB_T_RATIO", OB_CFG_DOUBLE, "0.5", 0, 1, NULL, F(ratio), "a ratio"},
    {"OB_T_NAME", OB_CFG_STRING, "x", 0, 0, NULL, F(name), "a name"},
    {"OB_T_NETS", OB_CFG_RANGES, "10.0.0.0/8", 0, 0, NULL, F(nets), "address ranges"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static void clear_env(void)
{
    for (const ob_cfg_spec_t *s = specs; s->env; s++)
        unsetenv(s->env);
}

Test(config, defaults_apply, .init = clear_env)
{
    test_cfg_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    ob_config_load(specs, &cfg, &errs);
    cr_assert_eq(errs.n, 0);
    cr_expect_eq(cfg.n, 5);
    cr_expect_str_eq(cfg.word, "b");
    cr_expect_eq(cfg.flag, false);
    cr_expect_float_eq(cfg.ratio, 0.5, 1e-9);
    cr_expect_str_eq(cfg.name, "x");
    cr_expect_str_eq(cfg.nets, "10.0.0.0/8");
    ob_config_free(specs, &cfg);
}

Test(config, values_from_environment, .init = clear_env)
{
    test_cfg_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    setenv("OB_T_N", "10", 1);
    setenv("OB_T_WORD", "c", 1);
    setenv("OB_T_FLAG", "yes", 1);
    setenv("OB_T_RATIO", "0.25", 1);
    setenv("OB_T_NAME", "hello", 1);
    setenv("OB_T_NETS", "", 1);
    ob_config_load(specs, &cfg, &errs);
    cr_assert_eq(errs.n, 0, "%s", errs.n ? errs.lines[0] : "");
    cr_expect_eq(cfg.n, 10);
    cr_expect_str_eq(cfg.word, "c");
    cr_expect(cfg.flag);
    cr_expect_float_eq(cfg.ratio, 0.25, 1e-9);
    cr_expect_str_eq(cfg.name, "hello");
    cr_expect_str_eq(cfg.nets, "");
    ob_config_free(specs, &cfg);
}

typedef struct {
    const char *env;   /* variable */
    const char *value; /* bad value */
} bad_case_t;

static bad_case_t bad[] = {
    {"OB_T_N", "11"},
    {"OB_T_N", "0"},
    {"OB_T_N", "3x"},
    {"OB_T_N", ""},
    {"OB_T_WORD", "d"},
    {"OB_T_FLAG", "maybe"},
    {"OB_T_RATIO", "1.5"},
    {"OB_T_RATIO", "nan?"},
    {"OB_T_NETS", "10.0.0.0/33"},
    {"OB_T_NETS", "127.0.0.1,localhost"},
};

ParameterizedTestParameters(config, bad_values_are_named)
{
    return cr_make_param_array(bad_case_t, bad, sizeof(bad) / sizeof(bad[0]));
}

ParameterizedTest(bad_case_t *c, config, bad_values_are_named, .init = clear_env)
{
    test_cfg_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    setenv(c->env, c->value, 1);
    ob_config_load(specs, &cfg, &errs);
    cr_assert_eq(errs.n, 1, "%s=%s gave %zu errors", c->env, c->value, errs.n);
    cr_expect(strstr(errs.lines[0], c->env) != NULL, "%s", errs.lines[0]);
    ob_cfg_errors_free(&errs);
    ob_config_free(specs, &cfg);
}

Test(config, all_problems_reported_at_once, .init = clear_env)
{
    test_cfg_t cfg = {0};
    ob_cfg_errors_t errs = {0};
    setenv("OB_T_N", "99", 1);
    setenv("OB_T_WORD", "zzz", 1);
    setenv("OB_T_FLAG", "2", 1);
    ob_config_load(specs, &cfg, &errs);
    cr_expect_eq(errs.n, 3);
    ob_cfg_errors_free(&errs);
    ob_config_free(specs, &cfg);
}

Test(config, kafka_passthrough_maps_names_and_validates, .init = clear_env)
{
    ob_base_config_t base = {0};
    ob_cfg_errors_t errs = {0};
    setenv("OB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1", 1);
    setenv("OB_KAFKA_SOCKET_TIMEOUT_MS", "1234", 1);
    setenv("OB_KAFKA_NOT_A_SETTING", "1", 1);
    ob_base_config_load(&base, &errs);
    cr_assert_eq(errs.n, 1, "expected exactly the unknown setting to be reported");
    cr_expect(strstr(errs.lines[0], "OB_KAFKA_NOT_A_SETTING") != NULL, "%s", errs.lines[0]);
    bool found = false;
    for (char **kv = base.kafka_kv; kv[0]; kv += 2)
        found |= strcmp(kv[0], "socket.timeout.ms") == 0 && strcmp(kv[1], "1234") == 0;
    cr_expect(found, "socket.timeout.ms not passed through");
    unsetenv("OB_KAFKA_BOOTSTRAP_SERVERS");
    unsetenv("OB_KAFKA_SOCKET_TIMEOUT_MS");
    unsetenv("OB_KAFKA_NOT_A_SETTING");
    ob_cfg_errors_free(&errs);
    ob_base_config_free(&base);
}

/* The reference docs/configuration.md is generated from: one Markdown row a
 * setting, the values each type takes, a required setting and a '|' in a
 * help text escaped so that it stays in its cell. */
Test(config, reference_rows_say_default_values_and_help)
{
    static const ob_cfg_spec_t more[] = {
        {"OB_T_REQUIRED", OB_CFG_STRING, NULL, 0, 0, NULL, 0, "must be set"},
        {"OB_T_EMPTY", OB_CFG_STRING, "", 0, 0, NULL, 0, "a | b"},
        {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ob_config_reference(out, specs);
    ob_config_reference(out, more);
    fclose(out);
    cr_expect_str_eq(text,
                     "| `OB_T_N` | `5` | 1 to 10 | a number |\n"
                     "| `OB_T_WORD` | `b` | `a`, `b` or `c` | a word |\n"
                     "| `OB_T_FLAG` | `false` | `true` or `false` (also 1/0, yes/no, on/off)"
                     " | a flag |\n"
                     "| `OB_T_RATIO` | `0.5` | 0 to 1 (fractions allowed) | a ratio |\n"
                     "| `OB_T_NAME` | `x` | text | a name |\n"
                     "| `OB_T_NETS` | `10.0.0.0/8` | address ranges: CIDR or single addresses,"
                     " comma-separated | address ranges |\n"
                     "| `OB_T_REQUIRED` | required | text | must be set |\n"
                     "| `OB_T_EMPTY` | (empty) | text | a \\| b |\n");
    free(text);
}
