/* Table-driven tests of phone number parsing (common/domain/ob_phone.c and ob_phonenumber.cc). */
#include "ob_phone.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

typedef struct {
    const char *input;     /* what the client sent */
    const char *region;    /* deployment default region; NULL calls ob_phone_parse */
    const char *e164;      /* expected number, or NULL if rejected */
    const char *ani;       /* expected caller id */
    const char *postd;     /* expected post-dial digits */
    const char *where;     /* expected region of the number */
    const char *error_has; /* substring of the error when rejected */
} phone_case_t;

static phone_case_t cases[] = {
    /* International numbers, no default region. */
    {"+12125550100", NULL, "+12125550100", "", "", "US", NULL},
    {"+1 (212) 555-0100", NULL, "+12125550100", "", "", "US", NULL},
    {"+44 20.7946.0958", NULL, "+442079460958", "", "", "GB", NULL},
    {"+49 30 901820", NULL, "+4930901820", "", "", "DE", NULL},
    {"+33 1 23 45 67 89", NULL, "+33123456789", "", "", "FR", NULL},
    {"+91 98765 43210", NULL, "+919876543210", "", "", "IN", NULL},
    {"+61 2 9876 5432", NULL, "+61298765432", "", "", "AU", NULL},
    {"+55 11 91234-5678", NULL, "+5511912345678", "", "", "BR", NULL},
    {"+81 3-1234-5678", NULL, "+81312345678", "", "", "JP", NULL},
    {"+39 06 1234 5678", NULL, "+390612345678", "", "", "IT", NULL}, /* Italy keeps its leading 0 */
    {"+800 1234 5678", NULL, "+80012345678", "", "", "", NULL},      /* non-geographic: no region */
    {"+1/212/555/0100", NULL, "+12125550100", "", "", "US", NULL},
    {"  +12125550100", NULL, "+12125550100", "", "", "US", NULL},
    /* The dialer sim's documented test numbers (555-01XX) must stay valid. */
    {"+12125550130", NULL, "+12125550130", "", "", "US", NULL},
    {"+12125550199", NULL, "+12125550199", "", "", "US", NULL},
    {"+442075550110", NULL, "+442075550110", "", "", "GB", NULL},
    /* The (0) trunk prefix inside international numbers. */
    {"+44 (0)20 7946 0958", NULL, "+442079460958", "", "", "GB", NULL},
    {"+49 (0)30 901820", NULL, "+4930901820", "", "", "DE", NULL},
    {"+33 (0)1 23 45 67 89", NULL, "+33123456789", "", "", "FR", NULL},
    /* 00 without a region, as before; with one, the region's own prefixes. */
    {"0044 20 7946 0958", NULL, "+442079460958", "", "", "GB", NULL},
    {"0044 20 7946 0958", "ZZ", "+442079460958", "", "", "GB", NULL},
    {"0044 20 7946 0958", "", "+442079460958", "", "", "GB", NULL},
    {"00 1 212 555 0100", "GB", "+12125550100", "", "", "US", NULL},
    {"011 44 20 7946 0958", "US", "+442079460958", "", "", "GB", NULL},
    {"0049 30 901820", "DE", "+4930901820", "", "", "DE", NULL},
    {"0011 44 20 7946 0958", "AU", "+442079460958", "", "", "GB", NULL},
    {"010 1 212 555 0100", "JP", "+12125550100", "", "", "US", NULL},
    /* National numbers with a default region, leading zeros included. */
    {"(212) 555-0100", "US", "+12125550100", "", "", "US", NULL},
    {"212.555.0100", "US", "+12125550100", "", "", "US", NULL},
    {"1 212 555 0100", "US", "+12125550100", "", "", "US", NULL},
    {"020 7946 0958", "GB", "+442079460958", "", "", "GB", NULL},
    {"020 7946 0958", "gb", "+442079460958", "", "", "GB", NULL},
    {"030 901820", "DE", "+4930901820", "", "", "DE", NULL},
    {"01 23 45 67 89", "FR", "+33123456789", "", "", "FR", NULL},
    {"098765 43210", "IN", "+919876543210", "", "", "IN", NULL},
    {"02 9876 5432", "AU", "+61298765432", "", "", "AU", NULL},
    {"(11) 91234-5678", "BR", "+5511912345678", "", "", "BR", NULL},
    {"03-1234-5678", "JP", "+81312345678", "", "", "JP", NULL},
    /* An international number keeps its own country whatever the region. */
    {"+12125550100", "GB", "+12125550100", "", "", "US", NULL},
    /* tel: URIs and the Plum parameters. */
    {"tel:+1-212-555-0100", NULL, "+12125550100", "", "", "US", NULL},
    {"Tel:020-7946-0958", "GB", "+442079460958", "", "", "GB", NULL},
    {"TEL:+12125550100;ani=+12125550199", NULL, "+12125550100", "+12125550199", "", NULL, NULL},
    {"+12125550100;postd=1234#", NULL, "+12125550100", "", "1234#", NULL, NULL},
    {"+12125550100;ani=+1 212 555 0199;postd=ww12", NULL, "+12125550100", "+12125550199", "ww12",
     NULL, NULL},
    {"020 7946 0958;ANI=020 7946 0000;POSTD=p9,*A-D", "GB", "+442079460958", "+442079460000",
     "p9,*AD", NULL, NULL},
    {"+12125550100;postd=", NULL, "+12125550100", "", "", NULL, NULL},
    /* Extensions, as spreadsheets and people write them, become post-dial digits. */
    {"617 555 0106 ext. 12", "US", "+16175550106", "", "12", "US", NULL},
    {"617 555 0106 EXT 12", "US", "+16175550106", "", "12", "US", NULL},
    {"(617) 555-0106 extension 4", "US", "+16175550106", "", "4", "US", NULL},
    {"+1 617-555-0106 extn. 321", NULL, "+16175550106", "", "321", "US", NULL},
    {"+1 617 555 0106 x12", NULL, "+16175550106", "", "12", "US", NULL},
    {"+16175550106X 12 ", NULL, "+16175550106", "", "12", "US", NULL},
    {"+16175550106#12", NULL, "+16175550106", "", "12", "US", NULL},
    {"+1 617 555 0106 ext:0099", NULL, "+16175550106", "", "0099", "US", NULL},
    {"020 7946 0958 x 4021", "GB", "+442079460958", "", "4021", "GB", NULL},
    {"tel:+1-617-555-0106;ext=12-3", NULL, "+16175550106", "", "123", "US", NULL},
    {"+1 617 555 0106 ext 12;ani=+12125550199", NULL, "+16175550106", "+12125550199", "12", "US",
     NULL},
    {"+1 617 555 0106 x12345678901234567890", NULL, "+16175550106", "", "12345678901234567890",
     "US", NULL},
    /* Rejections a client can act on. */
    {"+1 212 55", NULL, NULL, NULL, NULL, NULL, "phone_number is too short for +1 (US)"},
    {"555 0100", "US", NULL, NULL, NULL, NULL, "local number without its area code"},
    {"+1234567890123456", NULL, NULL, NULL, NULL, NULL, "phone_number is too long for +1 (US)"},
    {"+44 20 7946 09588", NULL, NULL, NULL, NULL, NULL, "phone_number is too long for +44 (GB)"},
    {"+1 212 555 0100 0000 0000", NULL, NULL, NULL, NULL, NULL,
     "could not be parsed: too many digits"},
    {"+0 212 555 0100", NULL, NULL, NULL, NULL, NULL, "phone_number has an invalid country code"},
    {"+999 1234567", NULL, NULL, NULL, NULL, NULL, "phone_number has an invalid country code"},
    {"+1 555 555 0100", NULL, NULL, NULL, NULL, NULL,
     "phone_number is not a valid number for +1 (US)"},
    {"+44 20 7946 095", NULL, NULL, NULL, NULL, NULL,
     "phone_number is not a valid number for +44 (GB)"},
    {"07700 900123", "GB", NULL, NULL, NULL, NULL,
     "phone_number is not a valid number for +44 (GB)"},
    {"+1", NULL, NULL, NULL, NULL, NULL, "phone_number could not be parsed"},
    {"+1212555010a", NULL, NULL, NULL, NULL, NULL,
     "contains 'a', which is not a digit or separator"},
    {"+1 800 FLOWERS", NULL, NULL, NULL, NULL, NULL, "contains 'F'"},
    {"+12125550100 x", NULL, NULL, NULL, NULL, NULL, "contains 'x'"},
    {"+12125550100 ext 12b", NULL, NULL, NULL, NULL, NULL, "contains 'e'"},
    {"+12125550100 x 1 2", NULL, NULL, NULL, NULL, NULL, "contains 'x'"},
    {"+12125550100 x123456789012345678901", NULL, NULL, NULL, NULL, NULL,
     "extension is longer than 20 digits"},
    {"+12125550100 x12;postd=34", NULL, NULL, NULL, NULL, NULL,
     "phone_number has an extension and ;postd="},
    {"+12125550100;postd=34;ext=12", NULL, NULL, NULL, NULL, NULL,
     "phone_number has an extension and ;postd="},
    {"+12125550100 x1;ext=12", NULL, NULL, NULL, NULL, NULL, "(or two extensions)"},
    {"+12125550100;ext=", NULL, NULL, NULL, NULL, NULL, "extension (;ext=) is empty"},
    {"+12125550100;ext=1a", NULL, NULL, NULL, NULL, NULL, "(;ext=) may contain only digits"},
    {"+12125550100;ani=+12125550199 x3", NULL, NULL, NULL, NULL, NULL,
     "ani (caller id) contains 'x'"},
    /* Numbers a spreadsheet rounded into scientific notation: digits are lost. */
    {"1.61755E+10", NULL, NULL, NULL, NULL, NULL,
     "phone_number \"1.61755E+10\" is in scientific notation: the spreadsheet stored the number as "
     "a value and lost its last digits; format the column as text"},
    {"6.17555E+9", "US", NULL, NULL, NULL, NULL, "\"6.17555E+9\" is in scientific notation"},
    {" 1,61755E+10 ", "DE", NULL, NULL, NULL, NULL, "is in scientific notation"},
    {"+4.47946E+11", NULL, NULL, NULL, NULL, NULL, "is in scientific notation"},
    {"1.6e10", "US", NULL, NULL, NULL, NULL, "is in scientific notation"},
    {"1E+10", "US", NULL, NULL, NULL, NULL, "is in scientific notation"},
    {"+12125550100;ani=1.21255E+10", NULL, NULL, NULL, NULL, NULL,
     "ani (caller id) \"1.21255E+10\" is in scientific notation"},
    {"1.61755E", "US", NULL, NULL, NULL, NULL, "contains 'E'"},
    {"+1 212 555 0100\xc2\xa0", NULL, NULL, NULL, NULL, NULL, "contains the byte 0xC2"},
    {"+1 212+555 0100", NULL, NULL, NULL, NULL, NULL, "'+' only once"},
    {"", NULL, NULL, NULL, NULL, NULL, "phone_number is empty"},
    {"tel:", "US", NULL, NULL, NULL, NULL, "phone_number is empty"},
    {"+", NULL, NULL, NULL, NULL, NULL, "phone_number has no digits"},
    {"(-)", "US", NULL, NULL, NULL, NULL, "phone_number has no digits"},
    {"2125550100", NULL, NULL, NULL, NULL, NULL,
     "must be in international format (+ and country code) or the deployment needs a default "
     "region"},
    {"020 7946 0958", "", NULL, NULL, NULL, NULL, "must be in international format"},
    {"011 44 20 7946 0958", NULL, NULL, NULL, NULL, NULL, "must be in international format"},
    /* The US international prefix is 011: 0044... reads as a (too long) national number. */
    {"0044 20 7946 0958", "US", NULL, NULL, NULL, NULL, "too long for +1 (US)"},
    {"+12125550100", "XX", NULL, NULL, NULL, NULL, "default region \"XX\""},
    {"+12125550100", "USA", NULL, NULL, NULL, NULL, "default region \"USA\""},
    {"+12125550100;foo=1", NULL, NULL, NULL, NULL, NULL,
     "unknown phone_number parameter \"foo\" (expected ;ani="},
    {"+12125550100;extension=12", NULL, NULL, NULL, NULL, NULL,
     "unknown phone_number parameter \"extension\" (expected ;ani=, ;postd= or ;ext=)"},
    {"+12125550100;ani=abc", NULL, NULL, NULL, NULL, NULL, "ani (caller id) contains 'a'"},
    {"+12125550100;ani=", NULL, NULL, NULL, NULL, NULL, "ani (caller id) is empty"},
    {"+12125550100;ani=+1 212 55", NULL, NULL, NULL, NULL, NULL,
     "ani (caller id) is too short for +1 (US)"},
    {"+12125550100;ani=2125550199", NULL, NULL, NULL, NULL, NULL,
     "ani (caller id) must be in international format"},
    {"+12125550100;ani=+1 555 555 0199", NULL, NULL, NULL, NULL, NULL,
     "ani (caller id) is not a valid number"},
    {"+12125550100;postd=12x", NULL, NULL, NULL, NULL, NULL,
     "postd (post-dial digits) may contain only"},
    {"+12125550100;postd=1234567890123456789012345678901234567890123456789012345678901234", NULL,
     NULL, NULL, NULL, NULL, "postd (post-dial digits) is too long"},
};

ParameterizedTestParameters(phone, parse)
{
    return cr_make_param_array(phone_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(phone_case_t *c, phone, parse)
{
    ob_phone_t out;
    ob_err_t err = {{0}};
    ob_rc_t rc = c->region ? ob_phone_parse_region(c->input, c->region, &out, &err)
                           : ob_phone_parse(c->input, &out, &err);
    if (c->e164) {
        cr_assert_eq(rc, OB_OK, "%s: %s", c->input, err.msg);
        cr_expect_str_eq(out.e164, c->e164, "%s", c->input);
        cr_expect_str_eq(out.caller_id, c->ani, "%s", c->input);
        cr_expect_str_eq(out.post_dial, c->postd, "%s", c->input);
        if (c->where)
            cr_expect_str_eq(out.region, c->where, "%s", c->input);
    } else {
        cr_assert_eq(rc, OB_EINVAL, "%s was accepted as %s", c->input, out.e164);
        cr_expect(strstr(err.msg, c->error_has) != NULL, "%s: error \"%s\" lacks \"%s\"", c->input,
                  err.msg, c->error_has);
        cr_expect_str_empty(out.e164, "%s: a rejected number leaves no result", c->input);
    }
}

typedef struct {
    const char *region; /* what a deployment is configured with */
    bool valid;         /* whether libphonenumber supports it */
} region_case_t;

static region_case_t regions[] = {
    {"US", true},  {"GB", true},   {"DE", true},   {"jp", true}, {"Br", true}, {"ZZ", false},
    {"XX", false}, {"001", false}, {"USA", false}, {"U", false}, {"", false},  {NULL, false},
};

ParameterizedTestParameters(phone, region_valid)
{
    return cr_make_param_array(region_case_t, regions, sizeof(regions) / sizeof(regions[0]));
}

ParameterizedTest(region_case_t *c, phone, region_valid)
{
    cr_expect_eq(ob_phone_region_valid(c->region), c->valid, "%s",
                 c->region ? c->region : "(null)");
}

/*
 * libphonenumber's example number for every region and number type, and
 * variants of each (national prefix after the country code, a digit changed,
 * dropped or added), as python3-phonenumbers (another implementation over the
 * same metadata) reads them. ob_phone_parse must agree on each: this covers
 * ob_phonenumber.cc's shortcuts (its own reading of + and digits, and the
 * region found once) for every country code.
 */
typedef struct {
    const char *input;
    const char *e164;   /* "" when rejected */
    const char *region; /* "" for non-geographic codes */
    bool accepted;      /* valid, and not possible only as a local number */
} example_t;

static const example_t examples[] = {
#include "phone_examples.h"
};

Test(phone, every_example_number_and_variant_agrees_with_python_phonenumbers)
{
    size_t n = sizeof(examples) / sizeof(examples[0]), accepted = 0;
    cr_assert_gt(n, 5000, "the example table has %zu numbers", n);
    for (size_t i = 0; i < n; i++) {
        const example_t *x = &examples[i];
        ob_phone_t out;
        ob_err_t err = {{0}};
        ob_rc_t rc = ob_phone_parse(x->input, &out, &err);
        if (!x->accepted) {
            cr_expect_eq(rc, OB_EINVAL, "%s was accepted as %s", x->input, out.e164);
            continue;
        }
        accepted++;
        cr_expect_eq(rc, OB_OK, "%s: %s", x->input, err.msg);
        cr_expect_str_eq(out.e164, x->e164, "%s", x->input);
        cr_expect_str_eq(out.region, x->region, "%s", x->input);
    }
    cr_expect_gt(accepted, 1000, "only %zu of %zu numbers are valid", accepted, n);
}
