/*
 * libFuzzer target: the Plum-compatible queue route's form handling
 * (services/ingest/ingest_plum.c): form values arriving in pieces, the
 * mapping of Plum's fields onto a native call, and the native validation
 * after it. The input is read like an urlencoded body: fields separated by
 * '&', key and value by '=', %XX and '+' decoded as libmicrohttpd does; a
 * 0x01 byte in a value splits it into pieces, as the post processor does
 * with long values. A first byte '{' makes the whole input a JSON body
 * instead (Plum clients may send either).
 */
#include "ingest_calls.h"
#include "ingest_plum.h"
#include "ob_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes s[0..len) in place; returns the new length. */
static size_t unescape(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+')
            s[o++] = ' ';
        else if (s[i] == '%' && i + 2 < len && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            s[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else
            s[o++] = s[i];
    }
    return o;
}

static void add_field(cJSON *form, char *field, size_t len)
{
    char *eq = memchr(field, '=', len);
    size_t klen = eq ? (size_t)(eq - field) : len;
    char *value = eq ? eq + 1 : field + len;
    size_t vlen = eq ? len - klen - 1 : 0;
    char *key = ob_xstrndup(field, unescape(field, klen)); /* a NUL ends the key, as in MHD */
    vlen = unescape(value, vlen);
    uint64_t off = 0;
    do {
        char *cut = memchr(value + off, 1, vlen - off);
        size_t piece = cut ? (size_t)(cut - (value + off)) : vlen - off;
        ingest_plum_form_add(form, key, value + off, off, piece);
        off += piece + (cut ? 1 : 0);
    } while (off < vlen);
    free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deployment_t dep = {.active = true, .max_attempts = 3, .retry_interval_s = 600};
    ob_call_request_t m = {
        .call_id = "0190f3a0-0000-7000-8000-000000000001",
        .deployment_id = "0190f3a0-0000-7000-8000-000000000002",
        .account_id = "0190f3a0-0000-7000-8000-000000000003",
        .accepted_at_ms = 1767225600000,
    };
    cJSON *form = NULL;
    snprintf(dep.region, sizeof(dep.region), "US");
    if (size > 0 && data[0] == '{') {
        form = cJSON_ParseWithLength((const char *)data, size);
    } else {
        char *body = ob_xstrndup((const char *)data, size);
        form = cJSON_CreateObject();
        for (size_t start = 0; start < size;) {
            char *amp = memchr(body + start, '&', size - start);
            size_t len = amp ? (size_t)(amp - (body + start)) : size - start;
            if (len > 0)
                add_field(form, body + start, len);
            start += len + 1;
        }
        free(body);
    }
    if (!cJSON_IsObject(form)) {
        cJSON_Delete(form);
        return 0;
    }
    ob_pool_t *pool = ob_pool_new();
    cJSON *errors = cJSON_CreateArray();
    /* Both is_pci settings; a fixed present, so a crash replays. */
    ingest_plum_opts_t o = {.pci_allowed = size % 2 == 1, .now_ms = 1767225600000LL};
    cJSON *call = ingest_plum_to_call(form, &o, errors);
    if (call) {
        OB_ASSERT(cJSON_IsObject(call));
        if (ingest_validate_call(pool, call, &dep, &m, errors)) {
            char *msg = ob_call_request_encode(&m);
            ob_call_request_t back = {0};
            ob_err_t err = {{0}};
            OB_ASSERT(ob_call_request_decode(msg, strlen(msg), &back, &err) == OB_OK);
            ob_call_request_clear(&back);
            free(msg);
        }
    } else {
        OB_ASSERT(cJSON_GetArraySize(errors) >= 1);
    }
    cJSON_Delete(call);
    cJSON_Delete(errors);
    ob_pool_free(pool);
    cJSON_Delete(form);
    return 0;
}
