/*
 * libFuzzer target: the JSON request validation of a queued call
 * (ingest_validate_call in services/ingest/ingest_calls.c), as the single
 * call, batch and upload routes run it. The first byte picks the
 * deployment's default region; the rest is the request body. A call that
 * passes must encode to a call-requests message that decodes again, with
 * the same fields: that is what the scheduler will read.
 */
#include "ingest_calls.h"
#include "ob_pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const regions[] = {"", "US", "GB", "DE"};
    deployment_t dep = {.active = true, .max_attempts = 3, .retry_interval_s = 600};
    ob_call_request_t m = {
        .call_id = "0190f3a0-0000-7000-8000-000000000001",
        .deployment_id = "0190f3a0-0000-7000-8000-000000000002",
        .account_id = "0190f3a0-0000-7000-8000-000000000003",
        .accepted_at_ms = 1767225600000, /* 2026-01-01, so results do not change with time */
    };
    ob_call_request_t back = {0};
    ob_err_t err = {{0}};
    if (size < 1)
        return 0;
    snprintf(dep.region, sizeof(dep.region), "%s", regions[data[0] % 4]);
    if (data[0] & 4)
        snprintf(dep.caller_id, sizeof(dep.caller_id), "+12125550199");
    cJSON *body = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return 0;
    }
    ob_pool_t *pool = ob_pool_new();
    cJSON *errors = cJSON_CreateArray();
    if (ingest_validate_call(pool, body, &dep, &m, errors)) {
        OB_ASSERT(cJSON_GetArraySize(errors) == 0);
        char *msg = ob_call_request_encode(&m);
        if (ob_call_request_decode(msg, strlen(msg), &back, &err) != OB_OK) {
            fprintf(stderr, "accepted call does not decode: %s\n%s\n", err.msg, msg);
            abort();
        }
        OB_ASSERT(same(back.phone_number, m.phone_number) && same(back.result_url, m.result_url) &&
                  same(back.message_reference, m.message_reference) &&
                  same(back.call_parameters, m.call_parameters) &&
                  back.max_attempts == m.max_attempts && back.expires_at_ms == m.expires_at_ms);
        OB_ASSERT(m.max_attempts >= 1 && m.max_attempts <= OB_MAX_ATTEMPTS);
        ob_call_request_clear(&back);
        free(msg);
    } else {
        OB_ASSERT(cJSON_GetArraySize(errors) > 0);
    }
    cJSON_Delete(errors);
    ob_pool_free(pool);
    cJSON_Delete(body);
    return 0;
}
