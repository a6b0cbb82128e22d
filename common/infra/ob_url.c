/*
 * URL syntax for what clients give, CIDR ranges, and the libcurl guard that
 * refuses connections into denied ranges. The guard sits in libcurl's
 * open-socket callback because that is the one place that sees the address
 * actually connected to: checking a name's resolution beforehand would let
 * a DNS answer that changes in between (rebinding) through.
 */
#include "ob_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int family;                      /* AF_INET or AF_INET6 */
    unsigned char net[16];           /* network bytes, host bits cleared */
    int prefix;                      /* significant bits */
    char text[INET6_ADDRSTRLEN + 4]; /* as written in the list, for messages */
} range_t;

struct ob_url_ranges {
    range_t *v; /* the ranges */
    size_t n;   /* how many */
};

ob_rc_t ob_url_check(const char *field, const char *url, ob_err_t *err)
{
    size_t len = strlen(url);
    size_t skip = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (len > OB_URL_MAX) {
        ob_err_set(err, "%s must be at most %d bytes", field, OB_URL_MAX);
        return OB_EINVAL;
    }
    if (skip == 0) {
        ob_err_set(err, "%s must be an http:// or https:// URL", field);
        return OB_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c > 0x20 && c != 0x7f)
            continue;
        ob_err_set(err, "%s must not contain %s (byte %zu): escape it as %%%02X", field,
                   c == '\r'   ? "a carriage return"
                   : c == '\n' ? "a line feed"
                   : c == ' '  ? "a space"
                   : c == '\t' ? "a tab"
                               : "a control character",
                   i + 1, c);
        return OB_EINVAL;
    }
    /* The host is what follows any user info, up to the port or path. */
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : auth;
    if (host == auth + alen || *host == ':') {
        ob_err_set(err, "%s must name a host (https://host/path)", field);
        return OB_EINVAL;
    }
    return OB_OK;
}

static ob_rc_t parse_range(const char *entry, range_t *r, ob_err_t *err)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(entry, '/');
    size_t alen = slash ? (size_t)(slash - entry) : strlen(entry);
    int max;
    memset(r, 0, sizeof(*r));
    if (alen == 0 || alen >= sizeof(addr) || strlen(entry) >= sizeof(r->text))
        goto bad;
    memcpy(addr, entry, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, r->net) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, r->net) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        goto bad;
    }
    r->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
            goto bad;
        r->prefix = atoi(p);
        if (r->prefix > max)
            goto bad;
    }
    for (int bit = r->prefix; bit < max; bit++)
        r->net[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    snprintf(r->text, sizeof(r->text), "%s", entry);
    return OB_OK;
bad:
    ob_err_set(err, "\"%.60s\" is not an address range (such as 10.0.0.0/8 or fc00::/7)", entry);
    return OB_EINVAL;
}

ob_rc_t ob_url_ranges_parse(const char *list, ob_url_ranges_t **out, ob_err_t *err)
{
    ob_url_ranges_t *r = ob_xcalloc(1, sizeof(*r));
    char *copy = ob_xstrdup(list ? list : "");
    char *save = NULL;
    ob_rc_t rc = OB_OK;
    *out = NULL;
    for (char *tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
        r->v = ob_xrealloc(r->v, (r->n + 1) * sizeof(range_t));
        if ((rc = parse_range(tok, &r->v[r->n], err)) != OB_OK)
            break;
        r->n++;
    }
    free(copy);
    if (rc != OB_OK) {
        ob_url_ranges_free(r);
        return rc;
    }
    *out = r;
    return OB_OK;
}

bool ob_url_ranges_match(const ob_url_ranges_t *r, const struct sockaddr *addr, char *range,
                         size_t n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char bytes[16];
    int family = addr->sa_family;
    if (!r)
        return false;
    if (family == AF_INET) {
        memcpy(bytes, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
    } else if (family == AF_INET6) {
        memcpy(bytes, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr, 16);
        if (memcmp(bytes, mapped, sizeof(mapped)) == 0) {
            memmove(bytes, bytes + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < r->n; i++) {
        const range_t *g = &r->v[i];
        if (g->family != family)
            continue;
        int full = g->prefix / 8, rest = g->prefix % 8;
        if (memcmp(bytes, g->net, (size_t)full) != 0)
            continue;
        if (rest && ((bytes[full] ^ g->net[full]) & (0xff00u >> rest) & 0xff))
            continue;
        if (range && n)
            snprintf(range, n, "%s", g->text);
        return true;
    }
    return false;
}

void ob_url_ranges_free(ob_url_ranges_t *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    ob_url_guard_t *g = clientp;
    const ob_url_policy_t *p = g->policy;
    char range[sizeof(g->range)] = "";
    if (purpose == CURLSOCKTYPE_IPCXN && p && p->deny &&
        ob_url_ranges_match(p->deny, &a->addr, range, sizeof(range)) &&
        !ob_url_ranges_match(p->allow, &a->addr, NULL, 0)) {
        const void *bytes =
            a->family == AF_INET
                ? (const void *)&((struct sockaddr_in *)(void *)&a->addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr;
        if (!inet_ntop(a->family, bytes, g->address, sizeof(g->address)))
            snprintf(g->address, sizeof(g->address), "?");
        snprintf(g->range, sizeof(g->range), "%s", range);
        return CURL_SOCKET_BAD;
    }
    g->opened++;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

void ob_url_guard_curl(CURL *e, ob_url_guard_t *g)
{
    g->address[0] = '\0';
    g->range[0] = '\0';
    g->opened = 0;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, g);
}

bool ob_url_guard_error(const ob_url_guard_t *g, char *buf, size_t n)
{
    if (!g->address[0] || g->opened > 0)
        return false;
    snprintf(buf, n, "address %s is in %s, refused by %s", g->address, g->range,
             g->policy && g->policy->deny_name ? g->policy->deny_name : "the URL deny-list");
    return true;
}

void ob_url_form_append(char **buf, size_t *len, size_t *cap, const char *s, bool encode)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = *len + 3 * strlen(s) + 1;
    if (need > *cap) {
        *cap = need * 2;
        *buf = ob_xrealloc(*buf, *cap);
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (plain || !encode) {
            (*buf)[(*len)++] = (char)*p;
        } else {
            (*buf)[(*len)++] = '%';
            (*buf)[(*len)++] = hex[*p >> 4];
            (*buf)[(*len)++] = hex[*p & 15];
        }
    }
    (*buf)[*len] = '\0';
}
