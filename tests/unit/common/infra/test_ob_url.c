/* Table-driven tests of URL checks, address ranges and the libcurl guard
 * (common/infra/ob_url.c). */
#include "ob_url.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- ob_url_check: what a client may give as result_url or start_url ---- */

typedef struct {
    const char *url;  /* given */
    const char *want; /* NULL: accepted; else a part of the message */
} url_case_t;

static url_case_t url_cases[] = {
    {"https://example.com/hook", NULL},
    {"http://example.com:8080/a?b=c#d", NULL},
    {"https://user:pw@example.com/", NULL},
    {"http://[::1]:8080/", NULL}, /* syntax only: the dialer refuses the address */
    {"ftp://example.com/", "must be an http:// or https:// URL"},
    {"file:///etc/passwd", "must be an http:// or https:// URL"},
    {"gopher://127.0.0.1:6379/_SET", "must be an http:// or https:// URL"},
    {"HTTPS://example.com/", "must be an http:// or https:// URL"},
    {"example.com/hook", "must be an http:// or https:// URL"},
    {"", "must be an http:// or https:// URL"},
    {"https://example.com/a\r\nX-Injected: 1", "must not contain a carriage return (byte 22)"},
    {"https://example.com/a\nHost: evil", "must not contain a line feed (byte 22)"},
    {"https://example.com/a b", "must not contain a space"},
    {"https://example.com/\ta", "must not contain a tab"},
    {"https://example.com/\x01",
     "must not contain a control character (byte 21): escape it as %01"},
    {"https://example.com/\x7f", "must not contain a control character"},
    {"https://", "must name a host"},
    {"https:///path", "must name a host"},
    {"https://user@/path", "must name a host"},
    {"https://:443/", "must name a host"},
};

ParameterizedTestParameters(url, check)
{
    return cr_make_param_array(url_case_t, url_cases, OB_COUNTOF(url_cases));
}

ParameterizedTest(url_case_t *c, url, check)
{
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_url_check("result_url", c->url, &err);
    if (!c->want) {
        cr_assert_eq(rc, OB_OK, "%s refused: %s", c->url, err.msg);
        return;
    }
    cr_assert_eq(rc, OB_EINVAL, "%s accepted", c->url);
    cr_expect(strncmp(err.msg, "result_url ", 11) == 0, "message names the field: %s", err.msg);
    cr_expect(strstr(err.msg, c->want) != NULL, "%s: '%s' lacks '%s'", c->url, err.msg, c->want);
}

Test(url, check_limits_the_length)
{
    ob_err_t err = {{0}};
    char *url = malloc(OB_URL_MAX + 2);
    memset(url, 'a', OB_URL_MAX + 1);
    memcpy(url, "https://", 8);
    url[OB_URL_MAX + 1] = '\0';
    cr_expect_eq(ob_url_check("start_url", url, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "start_url must be at most 2048 bytes");
    url[OB_URL_MAX] = '\0';
    cr_expect_eq(ob_url_check("start_url", url, &err), OB_OK);
    free(url);
}

/* ---- ranges: parsing and matching ---- */

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        cr_assert_fail("bad test address %s", text);
    return ss;
}

typedef struct {
    const char *address; /* connected to */
    const char *range;   /* the default deny range it is in, or NULL: allowed */
} match_case_t;

static match_case_t match_cases[] = {
    {"127.0.0.1", "127.0.0.0/8"},
    {"127.255.255.254", "127.0.0.0/8"},
    {"0.0.0.0", "0.0.0.0/8"},
    {"10.1.2.3", "10.0.0.0/8"},
    {"172.16.0.1", "172.16.0.0/12"},
    {"172.31.255.255", "172.16.0.0/12"},
    {"192.168.1.1", "192.168.0.0/16"},
    {"100.64.0.1", "100.64.0.0/10"},
    {"100.127.255.255", "100.64.0.0/10"},
    {"169.254.169.254", "169.254.0.0/16"},
    {"224.0.0.1", "224.0.0.0/4"},
    {"255.255.255.255", "240.0.0.0/4"},
    {"::1", "::1/128"},
    {"::", "::/128"},
    {"fd00::1", "fc00::/7"},
    {"fc00::1", "fc00::/7"},
    {"fe80::1", "fe80::/10"},
    {"febf::1", "fe80::/10"},
    {"ff02::1", "ff00::/8"},
    {"::ffff:127.0.0.1", "127.0.0.0/8"},
    {"::ffff:169.254.169.254", "169.254.0.0/16"},
    {"8.8.8.8", NULL},
    {"172.32.0.1", NULL},
    {"172.15.255.255", NULL},
    {"100.128.0.1", NULL},
    {"100.63.255.255", NULL},
    {"11.0.0.1", NULL},
    {"193.168.1.1", NULL},
    {"2001:4860:4860::8888", NULL},
    {"fec0::1", NULL},
    {"::2", NULL},
    {"::ffff:8.8.8.8", NULL},
};

ParameterizedTestParameters(url, default_deny)
{
    return cr_make_param_array(match_case_t, match_cases, OB_COUNTOF(match_cases));
}

ParameterizedTest(match_case_t *c, url, default_deny)
{
    ob_url_ranges_t *r = NULL;
    ob_err_t err = {{0}};
    char range[64] = "";
    cr_assert_eq(ob_url_ranges_parse(OB_URL_DENY_DEFAULT, &r, &err), OB_OK, "%s", err.msg);
    struct sockaddr_storage ss = addr_of(c->address);
    bool hit = ob_url_ranges_match(r, (struct sockaddr *)&ss, range, sizeof(range));
    if (c->range) {
        cr_expect(hit, "%s should be denied", c->address);
        cr_expect_str_eq(range, c->range, "%s", c->address);
    } else {
        cr_expect(!hit, "%s should be allowed (matched %s)", c->address, range);
    }
    ob_url_ranges_free(r);
}

typedef struct {
    const char *list;  /* given */
    const char *error; /* NULL: valid; else a part of the message */
} parse_case_t;

static parse_case_t parse_cases[] = {
    {"", NULL},
    {" , ,", NULL},
    {"10.0.0.0/8", NULL},
    {"10.0.0.1", NULL},
    {"10.0.0.0/8 fc00::/7,\t::1", NULL},
    {"0.0.0.0/0,::/0", NULL},
    {"10.0.0.0/33", "\"10.0.0.0/33\" is not an address range"},
    {"fc00::/129", "\"fc00::/129\" is not an address range"},
    {"10.0.0.0/", "is not an address range"},
    {"10.0.0.0/-1", "is not an address range"},
    {"10.0.0.0/8x", "is not an address range"},
    {"10.0.0/8", "is not an address range"},
    {"localhost", "\"localhost\" is not an address range"},
    {"/8", "is not an address range"},
    {"10.0.0.0/8,bogus", "\"bogus\" is not an address range"},
};

ParameterizedTestParameters(url, parse)
{
    return cr_make_param_array(parse_case_t, parse_cases, OB_COUNTOF(parse_cases));
}

ParameterizedTest(parse_case_t *c, url, parse)
{
    ob_url_ranges_t *r = NULL;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_url_ranges_parse(c->list, &r, &err);
    if (!c->error) {
        cr_expect_eq(rc, OB_OK, "'%s': %s", c->list, err.msg);
        cr_expect_not_null(r);
    } else {
        cr_expect_eq(rc, OB_EINVAL, "'%s' accepted", c->list);
        cr_expect_null(r);
        cr_expect(strstr(err.msg, c->error) != NULL, "'%s' lacks '%s'", err.msg, c->error);
    }
    ob_url_ranges_free(r);
}

Test(url, host_bits_and_odd_prefixes)
{
    ob_url_ranges_t *r = NULL;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_url_ranges_parse("192.168.1.77/23,2001:db8::1/33,1.2.3.4", &r, &err), OB_OK);
    struct sockaddr_storage in1 = addr_of("192.168.0.5"), out1 = addr_of("192.168.2.0"),
                            in2 = addr_of("2001:db8:7fff::"), out2 = addr_of("2001:db8:8000::"),
                            one = addr_of("1.2.3.4"), next = addr_of("1.2.3.5");
    cr_expect(ob_url_ranges_match(r, (struct sockaddr *)&in1, NULL, 0));
    cr_expect(!ob_url_ranges_match(r, (struct sockaddr *)&out1, NULL, 0));
    cr_expect(ob_url_ranges_match(r, (struct sockaddr *)&in2, NULL, 0));
    cr_expect(!ob_url_ranges_match(r, (struct sockaddr *)&out2, NULL, 0));
    cr_expect(ob_url_ranges_match(r, (struct sockaddr *)&one, NULL, 0));
    cr_expect(!ob_url_ranges_match(r, (struct sockaddr *)&next, NULL, 0));
    ob_url_ranges_free(r);
}

Test(url, an_empty_list_and_null_match_nothing)
{
    ob_url_ranges_t *r = NULL;
    ob_err_t err = {{0}};
    struct sockaddr_storage lo = addr_of("127.0.0.1");
    cr_assert_eq(ob_url_ranges_parse("", &r, &err), OB_OK);
    cr_expect(!ob_url_ranges_match(r, (struct sockaddr *)&lo, NULL, 0));
    cr_expect(!ob_url_ranges_match(NULL, (struct sockaddr *)&lo, NULL, 0));
    ob_url_ranges_free(r);
}

/* ---- the libcurl guard, against a real connection attempt ---- */

/* A GET of url through the guard, with a "host:port:addr,addr" entry for
 * libcurl's resolver when resolve is not NULL; returns libcurl's code. */
static CURLcode fetch_resolved(const char *url, const char *resolve, ob_url_guard_t *g)
{
    struct curl_slist *names = resolve ? curl_slist_append(NULL, resolve) : NULL;
    CURL *e = curl_easy_init();
    cr_assert_not_null(e);
    curl_easy_setopt(e, CURLOPT_RESOLVE, names);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    ob_url_guard_curl(e, g);
    CURLcode code = curl_easy_perform(e);
    curl_easy_cleanup(e);
    curl_slist_free_all(names);
    return code;
}

static CURLcode fetch(const char *url, ob_url_guard_t *g)
{
    return fetch_resolved(url, NULL, g);
}

Test(url, the_guard_refuses_a_name_that_resolves_to_a_denied_address)
{
    ob_url_ranges_t *deny = NULL;
    ob_err_t err = {{0}};
    char why[256];
    cr_assert_eq(ob_url_ranges_parse(OB_URL_DENY_DEFAULT, &deny, &err), OB_OK);
    ob_url_policy_t policy = {deny, NULL, "OB_DIALER_URL_DENY"};
    ob_url_guard_t g = {.policy = &policy};
    /* Port 9 (discard) on loopback: nothing listens, so only a refusal by
     * the guard itself fills g.address. */
    cr_expect_eq(fetch("http://localhost:9/", &g), CURLE_COULDNT_CONNECT);
    cr_assert(ob_url_guard_error(&g, why, sizeof(why)), "the guard did not refuse localhost");
    cr_expect(strcmp(g.address, "127.0.0.1") == 0 || strcmp(g.address, "::1") == 0, "%s",
              g.address);
    cr_expect(strstr(why, "refused by OB_DIALER_URL_DENY") != NULL, "%s", why);
    cr_expect(fetch("http://127.0.0.1:9/", &g) == CURLE_COULDNT_CONNECT);
    cr_expect_str_eq(g.address, "127.0.0.1");
    cr_expect_str_eq(g.range, "127.0.0.0/8");
    ob_url_ranges_free(deny);
}

Test(url, libcurl_refuses_a_stored_url_that_would_inject_headers)
{
    /* URLs stored before ingest checked them reach the dialer too. */
    ob_url_guard_t g = {.policy = NULL};
    cr_expect_eq(fetch("http://127.0.0.1:9/a\r\nX-Injected: 1", &g), CURLE_URL_MALFORMAT);
    cr_expect_eq(fetch("http://127.0.0.1:9/a\nHost: evil", &g), CURLE_URL_MALFORMAT);
    cr_expect_eq(fetch("http://127.0.0.1:9/a\x01", &g), CURLE_URL_MALFORMAT);
}

Test(url, the_allow_list_and_a_null_policy_let_the_connection_through)
{
    ob_url_ranges_t *deny = NULL, *allow = NULL;
    ob_err_t err = {{0}};
    char why[256];
    cr_assert_eq(ob_url_ranges_parse(OB_URL_DENY_DEFAULT, &deny, &err), OB_OK);
    cr_assert_eq(ob_url_ranges_parse("127.0.0.0/8,::1", &allow, &err), OB_OK);
    ob_url_policy_t policy = {deny, allow, "OB_DIALER_URL_DENY"};
    ob_url_guard_t g = {.policy = &policy};
    /* Allowed: the connection is tried and refused by the kernel instead. */
    cr_expect_eq(fetch("http://127.0.0.1:9/", &g), CURLE_COULDNT_CONNECT);
    cr_expect(!ob_url_guard_error(&g, why, sizeof(why)), "refused: %s", why);
    ob_url_guard_t open = {.policy = NULL};
    cr_expect_eq(fetch("http://127.0.0.1:9/", &open), CURLE_COULDNT_CONNECT);
    cr_expect(!ob_url_guard_error(&open, why, sizeof(why)));
    ob_url_ranges_free(deny);
    ob_url_ranges_free(allow);
}

Test(url, a_name_with_an_allowed_address_too_is_not_called_refused)
{
    ob_url_ranges_t *deny = NULL, *allow = NULL;
    ob_err_t err = {{0}};
    char why[256];
    cr_assert_eq(ob_url_ranges_parse("127.0.0.0/8", &deny, &err), OB_OK);
    cr_assert_eq(ob_url_ranges_parse("127.0.0.2", &allow, &err), OB_OK);
    ob_url_policy_t policy = {deny, allow, "OB_DIALER_URL_DENY"};
    ob_url_guard_t g = {.policy = &policy};
    /* 127.0.0.1 is refused, 127.0.0.2 tried (and refused by the kernel):
     * the transfer did not fail because of the deny-list alone. */
    cr_expect_eq(fetch_resolved("http://two.test:9/", "two.test:9:127.0.0.1,127.0.0.2", &g),
                 CURLE_COULDNT_CONNECT);
    cr_expect_str_eq(g.address, "127.0.0.1");
    cr_expect_eq(g.opened, 1);
    cr_expect(!ob_url_guard_error(&g, why, sizeof(why)), "%s", why);
    /* Both denied: refused. */
    ob_url_policy_t strict = {deny, NULL, "OB_DIALER_URL_DENY"};
    g.policy = &strict;
    cr_expect_eq(fetch_resolved("http://two.test:9/", "two.test:9:127.0.0.1,127.0.0.2", &g),
                 CURLE_COULDNT_CONNECT);
    cr_expect(ob_url_guard_error(&g, why, sizeof(why)));
    cr_expect_eq(g.opened, 0);
    ob_url_ranges_free(deny);
    ob_url_ranges_free(allow);
}
