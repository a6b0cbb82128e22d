/* The sip carrier's mapping of final SIP responses to attempt results
 * (services/dialer/dialer_sip.c), and a carrier that cannot start. */
#include "dialer_carrier.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    int code;           /* final response */
    const char *result; /* documented result */
} sip_case_t;

static sip_case_t codes[] = {
    {486, "busy"},
    {600, "busy"},
    {480, "noanswer"},
    {408, "noanswer"},
    {404, "informationtone"},
    {410, "informationtone"},
    {484, "informationtone"},
    {604, "informationtone"},
    {500, "linefailure"},
    {502, "linefailure"},
    {503, "linefailure"},
    {599, "linefailure"},
    {401, "unknown"},
    {403, "unknown"},
    {487, "unknown"},
    {488, "unknown"},
    {302, "unknown"},
    {699, "unknown"},
};

ParameterizedTestParameters(sip, final_responses_map_to_results)
{
    return cr_make_param_array(sip_case_t, codes, sizeof(codes) / sizeof(codes[0]));
}

ParameterizedTest(sip_case_t *c, sip, final_responses_map_to_results)
{
    cr_expect_str_eq(carrier_sip_result(c->code), c->result, "%d", c->code);
}

Test(sip, a_bad_local_address_is_refused_with_the_reason)
{
    ob_metric_t metrics[SIP_M_COUNT] = {{0}};
    carrier_sip_opts_t o = {
        .channels = 2,
        .trunk = "127.0.0.1:5060",
        .local_addr = "not-an-ip",
        .local_port = 5060,
        .rtp_port_min = 20000,
        .rtp_port_max = 20010,
        .username = "",
        .password = "",
        .from_domain = "",
        .anonymous_id = "anonymous",
        .ring_timeout_ms = 1000,
        .response_timeout_ms = 1000,
        .talk_limit_ms = 1000,
        .metrics = metrics,
    };
    static const carrier_events_t none = {0};
    carrier_t *c = NULL;
    ob_err_t err = {{0}};
    cr_expect_eq(carrier_sip_new(&o, &none, NULL, &c, &err), OB_ERR);
    cr_expect_null(c);
    cr_expect(strstr(err.msg, "not-an-ip") != NULL, "%s", err.msg);
}
