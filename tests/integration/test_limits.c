/*
 * Admission limits through real HTTP: a key over its request rate, a
 * deployment at its pending limit and an oversized upload are refused with
 * 429/413 and a code that names the limit; other keys are not affected.
 * Also the input limits of a call (nesting) and Plum DEV's relative times,
 * and a key's limit on requests in progress at once.
 */
#include "harness_client.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

Test(limits, each_limit_answers_with_its_own_code, .timeout = 120, .fini = teardown)
{
    h_tenant_t t, other;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_tenant(pg, &other, 5);
    h_client_t mine = h_client(&s, &t, pg), theirs = h_client(&s, &other, pg);
    const char *const env[] = {"OB_INGEST_KEY_RATE=5", "OB_INGEST_MAX_PENDING=2",
                               "OB_INGEST_MAX_UPLOAD_BYTES=2000", NULL};
    h_start(&s, "ingest", "ingest", env);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    /* The deployment holds at most 2 pending calls. */
    const char *call = "{\"phone_number\": \"+12125550100\", \"not_before\": \"+2 hours\"}";
    h_resp_t r = h_deployment_api(&mine, "POST", "/calls", call);
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&mine, "POST", "/calls",
                         "{\"phone_number\": \"+12125550100\", \"expires_at\": \"+3 days\"}");
    cr_expect_eq(r.status, 202, "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&mine, "POST", "/calls", call);
    cr_expect_eq(r.status, 429, "%s", r.body);
    cr_expect(strstr(r.body, "\"code\":\"deployment_pending_limit\""), "%s", r.body);
    h_resp_free(&r);

    /* Over 5 requests a second, the key is throttled; another key is not. */
    int throttled = 0;
    for (int i = 0; i < 20; i++) {
        r = h_deployment_api(&mine, "GET", "/summary", NULL);
        if (r.status == 429) {
            throttled++;
            cr_expect(strstr(r.body, "\"code\":\"rate_limited\""), "%s", r.body);
        } else {
            cr_expect_eq(r.status, 200, "%s", r.body);
        }
        h_resp_free(&r);
    }
    cr_expect(throttled >= 10, "only %d of 20 requests were throttled", throttled);
    r = h_deployment_api(&theirs, "GET", "/summary", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    /* Input limits, with the second key. */
    r = h_deployment_api(
        &theirs, "POST", "/calls",
        "{\"phone_number\": \"+12125550100\", \"call_parameters\":"
        " {\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":{\"l\":"
        "{\"m\":{\"n\":{\"o\":{\"p\":{\"q\":1}}}}}}}}}}}}}}}}}}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"code\":\"too_deep\""), "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&theirs, "POST", "/calls",
                         "{\"phone_number\": \"+12125550100\", \"not_before\": \"next week\"}");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"not_before\""), "%s", r.body);
    h_resp_free(&r);

    char big[3100];
    strcpy(big, "phone_number\n");
    while (strlen(big) < 3000)
        strcat(big, "+12125550100\n");
    r = h_deployment_request(&theirs, "POST", "/uploads", "text/csv", NULL, big);
    cr_expect_eq(r.status, 413, "%s", r.body);
    cr_expect(strstr(r.body, "larger than 2000 bytes"), "%s", r.body);
    h_resp_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
    PQfinish(pg);
}

/* Opens a request whose body is still coming: it stays in progress. */
static int start_slow_upload(int port, const h_tenant_t *t)
{
    char head[512];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    int n = snprintf(head, sizeof(head),
                     "POST /api/v1/deployments/%s/uploads HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: text/csv\r\n"
                     "Content-Length: 100000\r\n\r\nphone_number\n+12125550100\n",
                     t->deployment_id, t->api_key);
    cr_assert_eq(write(fd, head, (size_t)n), n);
    return fd;
}

Test(limits, a_key_with_too_many_requests_in_progress_waits, .timeout = 120, .fini = teardown)
{
    h_tenant_t t, other;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_tenant(pg, &other, 5);
    h_client_t mine = h_client(&s, &t, pg), theirs = h_client(&s, &other, pg);
    const char *const env[] = {"OB_INGEST_KEY_CONCURRENCY=1", NULL};
    h_start(&s, "ingest", "ingest", env);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    /* The upload holds the key's one slot once ingest has read its headers;
     * then the key's other requests wait. A request of the key's that
     * ingest took first holds the slot instead, and the upload is refused
     * (found in make test's sanitizer run: the upload's answer was this
     * 429): after 3 s without a 429, a new upload. */
    int fd = -1;
    h_resp_t r = {0};
    for (int uploads = 0; uploads < 5 && r.status != 429; uploads++) {
        if (fd >= 0)
            close(fd);
        fd = start_slow_upload(s.ingest_port, &t);
        h_sleep_ms(200);
        for (int i = 0; i < 30; i++) {
            h_resp_free(&r);
            r = h_deployment_api(&mine, "GET", "/summary", NULL);
            if (r.status == 429)
                break;
            usleep(100000);
        }
    }
    cr_expect_eq(r.status, 429, "%s", r.body);
    cr_expect(strstr(r.body, "\"code\":\"too_many_concurrent_requests\""), "%s", r.body);
    h_resp_free(&r);
    r = h_deployment_api(&theirs, "GET", "/summary", NULL);
    cr_expect_eq(r.status, 200, "another key is not held back: %s", r.body);
    h_resp_free(&r);

    /* When the slow request goes, the key may send again. */
    close(fd);
    for (int i = 0; i < 50; i++) {
        h_resp_free(&r);
        r = h_deployment_api(&mine, "GET", "/summary", NULL);
        if (r.status == 200)
            break;
        usleep(100000);
    }
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_resp_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
    PQfinish(pg);
}
