/*
 * The single-call API's limit: libmicrohttpd configured exactly as ingest
 * configures it (ingest_http_opts from the same OB_INGEST_* and OB_HTTP_*
 * settings, through ob_http) answering every request with a fixed 202 and
 * no work behind it. Serves until SIGTERM, then prints one JSON line with
 * the requests it answered.
 */
#include "ingest.h"
#include "ob_log.h"
#include "ob_service.h"
#include "ob_signal.h"

#include <stdio.h>
#include <string.h>

/* The size of ingest's answer to a queued call. */
static const char fixed_body[] = "{\"call_id\":\"00000000-0000-7000-8000-000000000000\","
                                 "\"state\":\"queued\",\"deployment_id\":"
                                 "\"00000000-0000-7000-8000-00000000d003\"}";

static void answer(void *arg, ob_http_req_t *req)
{
    long *served = arg;
    __atomic_add_fetch(served, 1, __ATOMIC_RELAXED);
    req->route = "fixed";
    ob_http_reply(req, 202, "application/json", fixed_body, sizeof(fixed_body) - 1);
}

int main(void)
{
    ingest_config_t cfg = {0};
    ob_http_server_t *http = NULL;
    ob_err_t err = {{0}};
    long served = 0;
    int code = ob_service_configure("limit-http", ingest_config_specs, &cfg);

    if (code != OB_EXIT_OK)
        goto out;
    ob_http_opts_t opts = ingest_http_opts(&cfg);
    opts.handler = answer;
    opts.ctx = &served;
    if (ob_http_start(&opts, &http, &err) != OB_OK) {
        OB_ERROR("main", "%s", err.msg);
        code = OB_EXIT_CONFIG;
        goto out;
    }
    OB_INFO("main", "answering 202 on http://%s:%lld (%u threads)", cfg.base.http_addr,
            cfg.base.http_port, opts.threads);
    while (!ob_stop_requested)
        ob_service_sleep(1000);
    ob_http_free(http);
    http = NULL;
    printf("{\"tool\":\"http\",\"threads\":%u,\"connection_limit\":%u,\"requests\":%ld}\n",
           opts.threads, opts.connection_limit, served);
out:
    ob_http_free(http);
    ob_config_free(ingest_config_specs, &cfg);
    ob_base_config_free(&cfg.base);
    return code;
}
