/*
 * What outbound fetches on a client's behalf (result_url webhooks, start_url
 * requests, URL checks) must not be turned against the platform's own
 * network: the syntax check ingest applies to every URL a client gives,
 * address ranges (CIDR lists) with the deny-list the dialer applies by
 * default, and the libcurl guard that checks every address a transfer
 * connects to, after DNS resolution.
 */
#ifndef OB_URL_H
#define OB_URL_H

#include "ob_common.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <sys/socket.h>

#define OB_URL_MAX 2048 /* bytes in a client's URL */

/* Loopback, "this network", RFC 1918, CGNAT, link-local (cloud metadata at
 * 169.254.169.254), multicast, reserved and broadcast; IPv6 unspecified,
 * loopback, unique local, link-local and multicast. */
#define OB_URL_DENY_DEFAULT                                                                        \
    "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,"                 \
    "192.168.0.0/16,224.0.0.0/4,240.0.0.0/4,::/128,::1/128,fc00::/7,fe80::/10,ff00::/8"

/*
 * Checks a URL a client gives (field names it in err, "result_url"): it must
 * start with http:// or https://, name a host, be at most OB_URL_MAX bytes
 * and hold no space and no control character (CR and LF would inject
 * headers into the request the dialer makes). Returns OB_OK or OB_EINVAL
 * with err saying what is wrong. Pure.
 */
ob_rc_t ob_url_check(const char *field, const char *url, ob_err_t *err) OB_MUSTCHECK;

/* A list of address ranges. */
typedef struct ob_url_ranges ob_url_ranges_t;

/*
 * Parses a list of CIDR ranges separated by commas and/or spaces
 * ("10.0.0.0/8, fc00::/7"); an address without a prefix length is that one
 * address. Host bits below the prefix are ignored. An empty list is valid
 * and matches nothing. Returns OB_OK with *out set (free with
 * ob_url_ranges_free), or OB_EINVAL with err naming the bad entry.
 */
ob_rc_t ob_url_ranges_parse(const char *list, ob_url_ranges_t **out, ob_err_t *err) OB_MUSTCHECK;

/*
 * True when addr (AF_INET or AF_INET6) lies in one of the ranges; an
 * IPv4-mapped IPv6 address (::ffff:127.0.0.1) is matched as the IPv4
 * address it is. When it matches and range is not NULL, the matching
 * range's text is written there (at most n bytes). Pure; thread-safe.
 */
bool ob_url_ranges_match(const ob_url_ranges_t *r, const struct sockaddr *addr, char *range,
                         size_t n);

/* Frees the list; NULL is fine. */
void ob_url_ranges_free(ob_url_ranges_t *r);

/* Where fetched URLs may connect: anything but the deny ranges, except
 * what the allow ranges give back (loopback receivers in tests). */
typedef struct {
    const ob_url_ranges_t *deny;  /* refused ranges; NULL: none */
    const ob_url_ranges_t *allow; /* exceptions to deny; NULL: none */
    const char *deny_name;        /* the setting deny came from, for messages */
} ob_url_policy_t;

/* One transfer's guard: the policy, and what it refused. */
typedef struct {
    const ob_url_policy_t *policy;    /* NULL: nothing is refused */
    char address[INET6_ADDRSTRLEN];   /* the last address refused, "" if none */
    char range[INET6_ADDRSTRLEN + 4]; /* the deny range it lies in */
    int opened;                       /* connections allowed (and opened) */
} ob_url_guard_t;

/*
 * Makes easy handle e refuse every connection to an address that g's policy
 * denies. The address checked is the one the socket would connect to, after
 * DNS resolution, so a name that resolves (or rebinds) to a private address
 * is refused like the address itself; redirects are covered too. Set it
 * after any curl_easy_reset; g must outlive the transfer. A refused transfer
 * fails with CURLE_COULDNT_CONNECT and g->address set: describe it with
 * ob_url_guard_error. Clears what g recorded.
 */
void ob_url_guard_curl(CURL *e, ob_url_guard_t *g);

/* When g refused every address the transfer tried (so it failed for that
 * reason alone; a name with an allowed address too fails, if it does, for
 * another): writes "address 127.0.0.1 is in 127.0.0.0/8, refused by
 * OB_DIALER_URL_DENY" to buf (n bytes) and returns true. */
bool ob_url_guard_error(const ob_url_guard_t *g, char *buf, size_t n);

/* Appends s to *buf (*len bytes used, *cap allocated; *buf may start NULL
 * with both 0), percent-encoded when encode: everything but RFC 3986's
 * unreserved characters, so "+" (every E.164 number starts with one) is not
 * read back as a space. The one encoder of the form bodies the dialer
 * sends (start_url requests, result_url webhooks). Aborts without memory. */
void ob_url_form_append(char **buf, size_t *len, size_t *cap, const char *s, bool encode);

#endif
