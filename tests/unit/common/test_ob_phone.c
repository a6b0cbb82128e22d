/* Table-driven tests of the E.164 normaliser (common/ob_phone.c). */
#include "ob_phone.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *input;     /* what the client sent */
    const char *e164;      /* expected number, or NULL if rejected */
    const char *ani;       /* expected caller id */
    const char *postd;     /* expected post-dial digits */
    const char *error_has; /* substring of the error when rejected */
} phone_case_t;

static phone_case_t cases[] = {
    {"+12125550100", "+12125550100", "", "", NULL},
    {"+1 (212) 555-0100", "+12125550100", "", "", NULL},
    {"+44 20.7946.0958", "+442079460958", "", "", NULL},
    {"0044 20 7946 0958", "+442079460958", "", "", NULL},
    {"tel:+1-212-555-0100", "+12125550100", "", "", NULL},
    {"TEL:+12125550100;ani=+12125550199", "+12125550100", "+12125550199", "", NULL},
    {"+12125550100;postd=1234#", "+12125550100", "", "1234#", NULL},
    {"+12125550100;ani=+1 212 555 0199;postd=ww12", "+12125550100", "+12125550199", "ww12", NULL},
    {"2125550100", NULL, NULL, NULL, "international format"},
    {"+0 212 555 0100", NULL, NULL, NULL, "country code"},
    {"+1 212 55", NULL, NULL, NULL, "7 to 15"},
    {"+1234567890123456", NULL, NULL, NULL, "7 to 15"},
    {"+1212555010a", NULL, NULL, NULL, "'a'"},
    {"+", NULL, NULL, NULL, "no digits"},
    {"+12125550100;foo=1", NULL, NULL, NULL, "unknown phone_number parameter"},
    {"+12125550100;ani=abc", NULL, NULL, NULL, "ani"},
};

ParameterizedTestParameters(phone, parse)
{
    return cr_make_param_array(phone_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(phone_case_t *c, phone, parse)
{
    ob_phone_t out;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_phone_parse(c->input, &out, &err);
    if (c->e164) {
        cr_assert_eq(rc, OB_OK, "%s: %s", c->input, err.msg);
        cr_expect_str_eq(out.e164, c->e164, "%s", c->input);
        cr_expect_str_eq(out.caller_id, c->ani, "%s", c->input);
        cr_expect_str_eq(out.post_dial, c->postd, "%s", c->input);
    } else {
        cr_assert_eq(rc, OB_EINVAL, "%s was accepted as %s", c->input, out.e164);
        cr_expect(strstr(err.msg, c->error_has) != NULL, "%s: error \"%s\" lacks \"%s\"", c->input,
                  err.msg, c->error_has);
    }
}
