/* Table-driven tests of the strict JSON parser (common/infra/ob_json.c). */
#include "ob_json.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *text;      /* the input (NUL-terminated; len is strlen) */
    bool trailing;         /* parse with end: text may go on after the value */
    ob_json_fault_t fault; /* what the parser says */
    size_t used;           /* with trailing and no fault: where the value stopped */
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {"{\"a\":1}", false, OB_JSON_OK, 0},
    {"[1,2,{\"b\":\"x\"}]", false, OB_JSON_OK, 0},
    {"{\"a\":1,\"b\":{\"a\":2}}", false, OB_JSON_OK, 0},
    {"{\"a\":", false, OB_JSON_SYNTAX, 0},
    {"", false, OB_JSON_SYNTAX, 0},
    {"{\"a\":\"\xc3\x28\"}", false, OB_JSON_NOT_UTF8, 0},
    {"{\"a\":\"\xed\xa0\x80\"}", false, OB_JSON_NOT_UTF8, 0},
    {"{\"a\":\"x\\u0000y\"}", false, OB_JSON_NUL_ESCAPE, 0},
    {"{\"a\":\"x\\\\u0000y\"}", false, OB_JSON_OK, 0}, /* an escaped backslash, then text */
    {"{\"a\":1,\"a\":2}", false, OB_JSON_DUPLICATE, 0},
    {"{\"o\":{\"k\":1,\"j\":2,\"k\":3}}", false, OB_JSON_DUPLICATE, 0},
    {"[{\"k\":1},{\"k\":2}]", false, OB_JSON_OK, 0},
    /* cJSON leaves what follows the value unread; without end all is text. */
    {"{\"a\":1} \xff", false, OB_JSON_NOT_UTF8, 0},
    {"{\"a\":1} \xff", true, OB_JSON_OK, 7},
    {"{\"a\":1}{\"b\":2}", true, OB_JSON_OK, 7},
};

ParameterizedTestParameters(json, parse)
{
    return cr_make_param_array(parse_case_t, parse_cases, OB_COUNTOF(parse_cases));
}

ParameterizedTest(parse_case_t *c, json, parse)
{
    const char *end = NULL;
    ob_json_fault_t fault = OB_JSON_SYNTAX;
    cJSON *v = ob_json_parse(c->text, strlen(c->text), c->trailing ? &end : NULL, &fault);
    cr_expect_eq(fault, c->fault, "%s: fault %d, want %d", c->text, fault, c->fault);
    cr_expect_eq(v != NULL, c->fault == OB_JSON_OK, "%s: a value only without a fault", c->text);
    cr_expect_eq(ob_json_fault_text(fault) == NULL, fault == OB_JSON_OK);
    if (c->trailing && v)
        cr_expect_eq((size_t)(end - c->text), c->used, "%s: stopped at %td", c->text,
                     end - c->text);
    cJSON_Delete(v);
}

typedef struct {
    const char *name;  /* member name of the value */
    const char *value; /* string value (not necessarily UTF-8) */
    const char *want;  /* the field named, or NULL */
} text_case_t;

static const text_case_t text_cases[] = {
    {"name", "plain", NULL},
    {"name", "caf\xc3\xa9", NULL},
    {"name", "caf\xe9", "p.name"},
    {"\xff", "x", "p.(a member name)"},
};

ParameterizedTestParameters(json, bad_text_field)
{
    return cr_make_param_array(text_case_t, text_cases, OB_COUNTOF(text_cases));
}

ParameterizedTest(text_case_t *c, json, bad_text_field)
{
    ob_pool_t *pool = ob_pool_new();
    cJSON *o = cJSON_CreateObject();
    cJSON *p = cJSON_AddObjectToObject(o, "p");
    cJSON_AddStringToObject(p, c->name, c->value);
    cJSON_AddNumberToObject(o, "n", 1);
    const char *got = ob_json_bad_text_field(pool, o);
    if (c->want)
        cr_expect_str_eq(got ? got : "(none)", c->want);
    else
        cr_expect_null(got, "named %s", got);
    cJSON_Delete(o);
    ob_pool_free(pool);
}
