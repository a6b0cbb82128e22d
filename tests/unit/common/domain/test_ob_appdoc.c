/* Table-driven tests of the call-control document (common/domain/ob_appdoc.c):
 * good documents and what they parse to, each bad one with the exact message
 * a client reads in the 422, and the {{name}} templates. */
#include "ob_appdoc.h"
#include "ob_common.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- good documents ---- */

typedef struct {
    const char *json;  /* the document */
    int nverbs;        /* verbs it parses to */
    int nmachine;      /* machine verbs */
    const char *kinds; /* each verb's first letter (s say, p play, g gather, z pause, h hangup,
                          c connect), verbs then "|" then machine */
} good_case_t;

static good_case_t goods[] = {
    {"[{\"verb\":\"say\",\"text\":\"Hello\"}]", 1, 0, "s|"},
    {"{\"verbs\":[{\"verb\":\"hangup\"}]}", 1, 0, "h|"},
    {"{\"verbs\":[{\"verb\":\"say\",\"text\":\"Hi {{name}}\",\"voice\":\"en-gb\",\"rate\":200,"
     "\"loop\":2},{\"verb\":\"pause\",\"length_s\":0.5},{\"verb\":\"hangup\"}],"
     "\"machine\":[{\"verb\":\"play\",\"url\":\"https://example.com/vm.wav\"}]}",
     3, 1, "szh|p"},
    {"{\"verbs\":[{\"verb\":\"gather\",\"num_digits\":1,\"finish_on_key\":\"\",\"timeout_s\":10,"
     "\"action_url\":\"https://app.example.com/menu?c={{id}}\",\"prompt\":[{\"verb\":\"say\","
     "\"text\":\"Press 1\"},{\"verb\":\"pause\"},{\"verb\":\"play\",\"url\":\"http://x/a.wav\","
     "\"loop\":10}]}]}",
     1, 0, "g|"},
    {"[{\"verb\":\"connect\",\"to\":\"+15551234567\",\"caller_id\":\"+442079460958\","
     "\"timeout_s\":120,\"headers\":false,\"refer\":true,\"action_url\":\"https://x/done\"}]",
     1, 0, "c|"},
    {"[{\"verb\":\"connect\",\"to\":\"sip:agent@pbx.example.com;transport=tcp\"}]", 1, 0, "c|"},
    {"[{\"verb\":\"connect\",\"to\":\"sips:queue@cc.example.com\"}]", 1, 0, "c|"},
    {"[{\"verb\":\"connect\",\"to\":\"{{agent}}\"}]", 1, 0, "c|"},
    {"{\"verbs\":[{\"verb\":\"say\",\"text\":\"x\"}],\"machine\":null}", 1, 0, "s|"},
    {"  [{\"verb\":\"say\",\"text\":\"{{ not a name }}\"}]  \n", 1, 0, "s|"},
};

ParameterizedTestParameters(appdoc, parses)
{
    return cr_make_param_array(good_case_t, goods, OB_COUNTOF(goods));
}

static char kind_letter(ob_verb_kind_t k)
{
    return "spgzhc"[k];
}

ParameterizedTest(good_case_t *c, appdoc, parses)
{
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_appdoc_parse(c->json, strlen(c->json), &doc, &err);
    cr_assert_eq(rc, OB_OK, "%s: %s", c->json, err.msg);
    cr_expect_eq(doc.nverbs, c->nverbs, "%s", c->json);
    cr_expect_eq(doc.nmachine, c->nmachine, "%s", c->json);
    char kinds[160] = "";
    size_t o = 0;
    for (int i = 0; i < doc.nverbs; i++)
        kinds[o++] = kind_letter(doc.verbs[i].kind);
    kinds[o++] = '|';
    for (int i = 0; i < doc.nmachine; i++)
        kinds[o++] = kind_letter(doc.machine[i].kind);
    kinds[o] = '\0';
    cr_expect_str_eq(kinds, c->kinds, "%s", c->json);
    ob_appdoc_clear(&doc);
    cr_expect_null(doc.verbs);
    cr_expect_eq(doc.nverbs, 0);
}

/* The defaults and conversions a dialer relies on. */
Test(appdoc, defaults_and_values)
{
    const char *json =
        "[{\"verb\":\"say\",\"text\":\"Hi\"},{\"verb\":\"gather\"},{\"verb\":\"pause\"},"
        "{\"verb\":\"connect\",\"to\":\"+15551234567\"},"
        "{\"verb\":\"gather\",\"num_digits\":4,\"finish_on_key\":\"*\",\"timeout_s\":2.5,"
        "\"prompt\":[{\"verb\":\"say\",\"text\":\"Enter\"}]},"
        "{\"verb\":\"pause\",\"length_s\":1.5},{\"verb\":\"play\",\"url\":\"https://x/a.wav\"}]";
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_appdoc_parse(json, strlen(json), &doc, &err), OB_OK, "%s", err.msg);
    cr_expect_str_eq(doc.verbs[0].text, "Hi");
    cr_expect_str_eq(doc.verbs[0].voice, "en-us");
    cr_expect_eq(doc.verbs[0].rate, 160);
    cr_expect_eq(doc.verbs[0].loop, 1);
    cr_expect_eq(doc.verbs[1].num_digits, 0);
    cr_expect_eq(doc.verbs[1].finish_on_key, '#');
    cr_expect_eq(doc.verbs[1].timeout_ms, 5000);
    cr_expect_null(doc.verbs[1].action_url);
    cr_expect_eq(doc.verbs[1].nprompt, 0);
    cr_expect_eq(doc.verbs[2].timeout_ms, 1000);
    cr_expect_eq(doc.verbs[3].timeout_ms, 30000);
    cr_expect(doc.verbs[3].headers);
    cr_expect_not(doc.verbs[3].refer);
    cr_expect_null(doc.verbs[3].caller_id);
    cr_expect_eq(doc.verbs[4].num_digits, 4);
    cr_expect_eq(doc.verbs[4].finish_on_key, '*');
    cr_expect_eq(doc.verbs[4].timeout_ms, 2500);
    cr_assert_eq(doc.verbs[4].nprompt, 1);
    cr_expect_eq(doc.verbs[4].prompt[0].kind, OB_VERB_SAY);
    cr_expect_str_eq(doc.verbs[4].prompt[0].text, "Enter");
    cr_expect_eq(doc.verbs[5].timeout_ms, 1500);
    cr_expect_str_eq(doc.verbs[6].url, "https://x/a.wav");
    cr_expect_eq(doc.verbs[6].loop, 1);
    ob_appdoc_clear(&doc);
    ob_appdoc_clear(NULL);
}

Test(appdoc, verb_names)
{
    static const char *const want[] = {"say", "play", "gather", "pause", "hangup", "connect"};
    cr_assert_eq(OB_COUNTOF(want), (size_t)OB_VERB_COUNT);
    for (int k = 0; k < OB_VERB_COUNT; k++)
        cr_expect_str_eq(ob_verb_name((ob_verb_kind_t)k), want[k]);
    cr_expect_null(ob_verb_name(OB_VERB_COUNT));
    cr_expect_null(ob_verb_name((ob_verb_kind_t)-1));
}

/* ---- bad documents ---- */

typedef struct {
    const char *json;  /* the document */
    const char *error; /* the exact message */
} bad_case_t;

static bad_case_t bads[] = {
    {"", "app: not JSON (at byte 0)"},
    {"[{\"verb\":\"say\",\"text\":\"x\"}", "app: not JSON (at byte 25)"},
    {"[{\"verb\":\"hangup\"}] x", "app: not JSON (at byte 20)"},
    {"[{\"verb\":\"hangup\",\"verb\":\"say\"}]", "app: a JSON object names the same member twice"},
    {"\"say hello\"", "app: must be an object with verbs, or an array of verbs"},
    {"{}", "app: verbs is required"},
    {"{\"verbs\":[{\"verb\":\"hangup\"}],\"vebs\":1}",
     "app: unknown member \"vebs\" (verbs, machine)"},
    {"{\"verbs\":{}}", "verbs: must be an array of verbs"},
    {"[]", "verbs: must hold at least one verb"},
    {"{\"verbs\":[]}", "verbs: must hold at least one verb"},
    {"{\"verbs\":[{\"verb\":\"hangup\"}],\"machine\":[]}", "machine: must hold at least one verb"},
    {"{\"verbs\":[{\"verb\":\"hangup\"}],\"machine\":\"x\"}", "machine: must be an array of verbs"},
    {"[1]", "verbs[0]: must be an object with a verb"},
    {"[{\"text\":\"x\"}]", "verbs[0]: verb is required"},
    {"[{\"verb\":7}]", "verbs[0]: verb must be a string"},
    {"[{\"verb\":\"hangup\"},{\"verb\":\"speak\"}]",
     "verbs[1]: unknown verb \"speak\" (say, play, gather, pause, hangup or connect)"},
    {"[{\"verb\":\"hangup\"},{\"verb\":\"say\"}]", "verbs[1] (say): text is required"},
    {"[{\"verb\":\"say\",\"txt\":\"x\"}]", "verbs[0] (say): unknown member \"txt\""},
    {"[{\"verb\":\"say\",\"text\":\"x\",\"a\":1,\"b\":2}]",
     "verbs[0] (say): unknown members \"a\", \"b\""},
    {"[{\"verb\":\"hangup\",\"reason\":\"x\"}]", "verbs[0] (hangup): unknown member \"reason\""},
    {"[{\"verb\":\"say\",\"text\":5}]", "verbs[0] (say): text must be a string"},
    {"[{\"verb\":\"say\",\"text\":\"\"}]", "verbs[0] (say): text must not be empty"},
    {"[{\"verb\":\"say\",\"text\":\"x\",\"voice\":\"../etc\"}]",
     "verbs[0] (say): voice must be an espeak-ng voice or language such as \"en-us\""},
    {"[{\"verb\":\"say\",\"text\":\"x\",\"rate\":79}]",
     "verbs[0] (say): rate must be an integer from 80 to 450 (words per minute)"},
    {"[{\"verb\":\"say\",\"text\":\"x\",\"rate\":160.5}]",
     "verbs[0] (say): rate must be an integer from 80 to 450 (words per minute)"},
    {"[{\"verb\":\"say\",\"text\":\"x\",\"loop\":11}]",
     "verbs[0] (say): loop must be an integer from 1 to 10"},
    {"[{\"verb\":\"play\",\"loop\":0,\"url\":\"https://x\"}]",
     "verbs[0] (play): loop must be an integer from 1 to 10"},
    {"{\"verbs\":[{\"verb\":\"hangup\"}],\"machine\":[{\"verb\":\"play\"}]}",
     "machine[0] (play): url is required"},
    {"[{\"verb\":\"play\",\"url\":\"ftp://x/a.wav\"}]",
     "verbs[0] (play): url must be an http:// or https:// URL"},
    {"[{\"verb\":\"hangup\"},{\"verb\":\"hangup\"},{\"verb\":\"gather\",\"num_digits\":33}]",
     "verbs[2] (gather): num_digits must be an integer from 1 to 32"},
    {"[{\"verb\":\"gather\",\"num_digits\":0}]",
     "verbs[0] (gather): num_digits must be an integer from 1 to 32"},
    {"[{\"verb\":\"gather\",\"num_digits\":\"4\"}]",
     "verbs[0] (gather): num_digits must be an integer from 1 to 32"},
    {"[{\"verb\":\"gather\",\"finish_on_key\":\"##\"}]",
     "verbs[0] (gather): finish_on_key must be one of 0-9, * and #, or \"\" for none"},
    {"[{\"verb\":\"gather\",\"finish_on_key\":\"A\"}]",
     "verbs[0] (gather): finish_on_key must be one of 0-9, * and #, or \"\" for none"},
    {"[{\"verb\":\"gather\",\"timeout_s\":0.5}]",
     "verbs[0] (gather): timeout_s must be a number of seconds from 1 to 60"},
    {"[{\"verb\":\"gather\",\"timeout_s\":61}]",
     "verbs[0] (gather): timeout_s must be a number of seconds from 1 to 60"},
    {"[{\"verb\":\"gather\",\"action_url\":\"/next\"}]",
     "verbs[0] (gather): action_url must be an http:// or https:// URL"},
    {"[{\"verb\":\"gather\",\"prompt\":{\"verb\":\"say\"}}]",
     "verbs[0] (gather): prompt must be an array of say, play and pause verbs"},
    {"[{\"verb\":\"gather\",\"prompt\":[]}]", "verbs[0].prompt: must hold at least one verb"},
    {"[{\"verb\":\"gather\",\"prompt\":[{\"verb\":\"hangup\"}]}]",
     "verbs[0].prompt[0] (hangup): a gather's prompt holds only say, play and pause"},
    {"[{\"verb\":\"gather\",\"prompt\":[{\"verb\":\"say\",\"text\":\"a\"},{\"verb\":\"gather\"}]}]",
     "verbs[0].prompt[1] (gather): a gather's prompt holds only say, play and pause"},
    {"[{\"verb\":\"gather\",\"prompt\":[{\"verb\":\"say\"}]}]",
     "verbs[0].prompt[0] (say): text is required"},
    {"[{\"verb\":\"pause\",\"length_s\":0}]",
     "verbs[0] (pause): length_s must be a number of seconds from 0.1 to 60"},
    {"[{\"verb\":\"pause\",\"length_s\":\"1\"}]",
     "verbs[0] (pause): length_s must be a number of seconds from 0.1 to 60"},
    {"[{\"verb\":\"connect\"}]", "verbs[0] (connect): to is required"},
    {"[{\"verb\":\"connect\",\"to\":\"5551234567\"}]",
     "verbs[0] (connect): to must be an E.164 number (+ and digits) or a sip: or sips: URI"},
    {"[{\"verb\":\"connect\",\"to\":\"+1555123456789012\"}]",
     "verbs[0] (connect): to must be an E.164 number (+ and digits) or a sip: or sips: URI"},
    {"[{\"verb\":\"connect\",\"to\":\"sip:agent @pbx\"}]",
     "verbs[0] (connect): to must be an E.164 number (+ and digits) or a sip: or sips: URI"},
    {"[{\"verb\":\"connect\",\"to\":\"tel:+15551234567\"}]",
     "verbs[0] (connect): to must be an E.164 number (+ and digits) or a sip: or sips: URI"},
    {"[{\"verb\":\"connect\",\"to\":\"+15551234567\",\"caller_id\":\"anonymous\"}]",
     "verbs[0] (connect): caller_id must be an E.164 number (+ and digits)"},
    {"[{\"verb\":\"connect\",\"to\":\"+15551234567\",\"headers\":1}]",
     "verbs[0] (connect): headers must be true or false"},
    {"[{\"verb\":\"connect\",\"to\":\"+15551234567\",\"refer\":\"yes\"}]",
     "verbs[0] (connect): refer must be true or false"},
    {"[{\"verb\":\"connect\",\"to\":\"+15551234567\",\"timeout_s\":121}]",
     "verbs[0] (connect): timeout_s must be a number of seconds from 1 to 120"},
};

ParameterizedTestParameters(appdoc, refuses)
{
    return cr_make_param_array(bad_case_t, bads, OB_COUNTOF(bads));
}

ParameterizedTest(bad_case_t *c, appdoc, refuses)
{
    ob_appdoc_t doc;
    memset(&doc, 0x5a, sizeof(doc));
    ob_err_t err = {{0}};
    cr_assert_eq(ob_appdoc_parse(c->json, strlen(c->json), &doc, &err), OB_EINVAL, "%s", c->json);
    cr_expect_str_eq(err.msg, c->error, "%s: got \"%s\"", c->json, err.msg);
    cr_expect_null(doc.verbs);
    cr_expect_null(doc.machine);
    cr_expect_eq(doc.nverbs, 0);
}

/* Bounds that need built inputs: bytes, verb count, text length. */
static char *repeat_verbs(int n)
{
    size_t cap = (size_t)n * 20 + 8;
    char *s = ob_xmalloc(cap);
    size_t o = (size_t)snprintf(s, cap, "[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s{\"verb\":\"hangup\"}", i ? "," : "");
    snprintf(s + o, cap - o, "]");
    return s;
}

Test(appdoc, bounds)
{
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    char *ok = repeat_verbs(OB_APPDOC_MAX_VERBS);
    cr_expect_eq(ob_appdoc_parse(ok, strlen(ok), &doc, &err), OB_OK, "%s", err.msg);
    ob_appdoc_clear(&doc);
    char *over = repeat_verbs(OB_APPDOC_MAX_VERBS + 1);
    cr_expect_eq(ob_appdoc_parse(over, strlen(over), &doc, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "verbs: at most 64 verbs");
    free(ok);
    free(over);

    char *big = ob_xmalloc(OB_APPDOC_MAX_BYTES + 2);
    memset(big, ' ', OB_APPDOC_MAX_BYTES + 1);
    big[OB_APPDOC_MAX_BYTES + 1] = '\0';
    cr_expect_eq(ob_appdoc_parse(big, OB_APPDOC_MAX_BYTES + 1, &doc, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "app: at most 65536 bytes of JSON (it has 65537)");
    free(big);

    char text[OB_APPDOC_MAX_TEXT + 2];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    char *json = ob_xasprintf("[{\"verb\":\"say\",\"text\":\"%s\"}]", text);
    cr_expect_eq(ob_appdoc_parse(json, strlen(json), &doc, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "verbs[0] (say): text must be at most 4000 bytes (it has 4001)");
    free(json);
    text[sizeof(text) - 2] = '\0';
    json = ob_xasprintf("[{\"verb\":\"say\",\"text\":\"%s\"}]", text);
    cr_expect_eq(ob_appdoc_parse(json, strlen(json), &doc, &err), OB_OK, "%s", err.msg);
    ob_appdoc_clear(&doc);
    free(json);
}

Test(appdoc, not_utf8)
{
    const char json[] = "[{\"verb\":\"say\",\"text\":\"caf\xe9\"}]";
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    cr_expect_eq(ob_appdoc_parse(json, strlen(json), &doc, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "app: the body is not UTF-8 text (JSON must be UTF-8)");
}

Test(appdoc, to_valid)
{
    cr_expect(ob_appdoc_to_valid("+15551234567"));
    cr_expect(ob_appdoc_to_valid("sip:1000@pbx"));
    cr_expect(ob_appdoc_to_valid("SIPS:a@b"));
    cr_expect_not(ob_appdoc_to_valid("+0123"));
    cr_expect_not(ob_appdoc_to_valid("+1"));
    cr_expect_not(ob_appdoc_to_valid("sip:"));
    cr_expect_not(ob_appdoc_to_valid("sip:<a@b>"));
    cr_expect_not(ob_appdoc_to_valid(NULL));
}

/* ---- templates ---- */

typedef struct {
    const char *tmpl;   /* the template */
    const char *params; /* call_parameters, or NULL */
    bool url;           /* percent-encode the values */
    size_t max;         /* the bound */
    const char *want;   /* the result, or NULL when refused */
} render_case_t;

#define P                                                                                          \
    "{\"name\":\"Ana Lee\",\"n\":42,\"x\":1.5,\"yes\":true,\"no\":false,\"nil\":null,"             \
    "\"o\":{\"a\":[1,\"b\"]},\"amp\":\"a&b=c/d?e~f\",\"utf\":\"caf\xc3\xa9\",\"a.b\":\"dot\"}"

static render_case_t renders[] = {
    {"Hello {{name}}.", P, false, 4000, "Hello Ana Lee."},
    {"{{name}}{{name}}", P, false, 4000, "Ana LeeAna Lee"},
    {"Missing: [{{nobody}}]", P, false, 4000, "Missing: []"},
    {"No params: [{{name}}]", NULL, false, 4000, "No params: []"},
    {"Empty params: [{{name}}]", "", false, 4000, "Empty params: []"},
    {"Number {{n}} and {{x}}", P, false, 4000, "Number 42 and 1.5"},
    {"Bools {{yes}} {{no}}", P, false, 4000, "Bools true false"},
    {"Null [{{nil}}]", P, false, 4000, "Null []"},
    {"Object {{o}}", P, false, 4000, "Object {\"a\":[1,\"b\"]}"},
    {"Dotted {{a.b}}", P, false, 4000, "Dotted dot"},
    {"Text keeps {{amp}}", P, false, 4000, "Text keeps a&b=c/d?e~f"},
    {"https://x/?q={{amp}}", P, true, 2048, "https://x/?q=a%26b%3Dc%2Fd%3Fe~f"},
    {"https://x/{{name}}/{{utf}}", P, true, 2048, "https://x/Ana%20Lee/caf%C3%A9"},
    {"https://x/?o={{o}}", P, true, 2048, "https://x/?o=%7B%22a%22%3A%5B1%2C%22b%22%5D%7D"},
    {"Literal {{ name }} stays", P, false, 4000, "Literal {{ name }} stays"},
    {"Literal {{}} and {{name} and {{", P, false, 4000, "Literal {{}} and {{name} and {{"},
    {"Brace {{{name}}}", P, false, 4000, "Brace {Ana Lee}"},
    {"{{a-b_c.9}}", "{\"a-b_c.9\":\"ok\"}", false, 4000, "ok"},
    {"Case {{Name}}", P, false, 4000, "Case "},
    {"Bad params {{name}}", "not json", false, 4000, "Bad params "},
    {"", P, false, 4000, ""},
    {"exactly10!", NULL, false, 10, "exactly10!"},
    {"eleven....!", NULL, false, 10, NULL},
    {"Hi {{name}}", P, false, 9, NULL},
    {"{{name}}", P, true, 8, NULL},
    {"{{name}}", P, true, 9, "Ana%20Lee"},
};

ParameterizedTestParameters(appdoc, renders)
{
    return cr_make_param_array(render_case_t, renders, OB_COUNTOF(renders));
}

ParameterizedTest(render_case_t *c, appdoc, renders)
{
    ob_err_t err = {{0}};
    char *got = ob_appdoc_render(c->tmpl, c->params, c->url, c->max, &err);
    if (!c->want) {
        cr_expect_null(got, "%s: %s", c->tmpl, got);
        char want[128];
        snprintf(want, sizeof(want), "the rendered text would be longer than %zu bytes", c->max);
        cr_expect_str_eq(err.msg, want);
    } else {
        cr_assert_not_null(got, "%s: %s", c->tmpl, err.msg);
        cr_expect_str_eq(got, c->want, "%s", c->tmpl);
    }
    free(got);
}

/* A name longer than 64 characters is not a placeholder. */
Test(appdoc, long_name_is_literal)
{
    char tmpl[80];
    snprintf(tmpl, sizeof(tmpl), "{{%065d}}", 0);
    ob_err_t err = {{0}};
    char *got = ob_appdoc_render(tmpl, "{}", false, 4000, &err);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, tmpl);
    free(got);
}

/* The schema's examples (proto/examples/app-*.json) are what users copy. */
typedef struct {
    const char *file; /* under proto/examples */
    int nverbs;       /* verbs */
    int nmachine;     /* machine verbs */
} example_case_t;

static example_case_t examples[] = {
    {"app-say.json", 4, 0},
    {"app-gather.json", 3, 0},
    {"app-voicemail.json", 2, 3},
    {"app-connect.json", 4, 0},
};

ParameterizedTestParameters(appdoc, examples)
{
    return cr_make_param_array(example_case_t, examples, OB_COUNTOF(examples));
}

ParameterizedTest(example_case_t *c, appdoc, examples)
{
    char path[128];
    snprintf(path, sizeof(path), "proto/examples/%s", c->file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run from the repository root)", path);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ob_appdoc_t doc;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_appdoc_parse(buf, n, &doc, &err), OB_OK, "%s: %s", path, err.msg);
    cr_expect_eq(doc.nverbs, c->nverbs, "%s", path);
    cr_expect_eq(doc.nmachine, c->nmachine, "%s", path);
    ob_appdoc_clear(&doc);
}
