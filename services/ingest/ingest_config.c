/*
 * The ingest service's settings table and the libmicrohttpd configuration it
 * derives from them, apart from main.c so that bench/limits serves a fixed
 * answer with exactly the same server configuration.
 */
#include "ingest.h"

#include <stddef.h>

#define CFG(field) offsetof(ingest_config_t, field)
const ob_cfg_spec_t ingest_config_specs[] = {
    {"OB_INGEST_THREADS", OB_CFG_INT, "64", 1, 1024, NULL, CFG(threads),
     "HTTP worker threads (each may wait for one Kafka acknowledgement)"},
    {"OB_INGEST_MAX_BODY_BYTES", OB_CFG_INT, "1048576", 1024, 1073741824, NULL, CFG(max_body),
     "larger bodies get 413 (uploads and batches: OB_INGEST_MAX_UPLOAD_BYTES)"},
    {"OB_INGEST_MAX_CONNECTIONS", OB_CFG_INT, "4096", 1, 1000000, NULL, CFG(conn_limit),
     "concurrent connections (ingest raises its open-file limit to fit them, up to the "
     "hard limit, and warns when that is not enough)"},
    {"OB_INGEST_ACK_TIMEOUT_MS", OB_CFG_INT, "10000", 100, 120000, NULL, CFG(ack_timeout_ms),
     "how long a call waits for Kafka before 503; a call answered 503 is never queued "
     "later (the producer gives its message up at the same time)"},
    {"OB_INGEST_PG_POOL", OB_CFG_INT, "16", 1, 256, NULL, CFG(pg_pool),
     "Postgres connections (not held while waiting for Kafka)"},
    {"OB_INGEST_KEY_RATE", OB_CFG_DOUBLE, "5000", 1, 1000000, NULL, CFG(key_rate),
     "requests per second one API key may send; above it `429 rate_limited` with "
     "`Retry-After`"},
    {"OB_INGEST_KEY_CONCURRENCY", OB_CFG_INT, "256", 1, 100000, NULL, CFG(key_concurrency),
     "requests one API key may have in progress (an upload or batch counts until its "
     "answer); above it `429 too_many_concurrent_requests`"},
    {"OB_INGEST_MAX_PENDING", OB_CFG_INT, "10000000", 1, 1000000000, NULL, CFG(max_pending),
     "calls a deployment may hold not yet completed; above it `429 "
     "deployment_pending_limit`"},
    {"OB_INGEST_MAX_UPLOAD_BYTES", OB_CFG_INT, "2147483648", 1024, 1099511627776.0, NULL,
     CFG(max_upload),
     "largest CSV upload or batch body (`413`); other bodies are limited by "
     "OB_INGEST_MAX_BODY_BYTES"},
    {"OB_INGEST_UPLOAD_LANES", OB_CFG_INT, "2", 1, 64, NULL, CFG(upload_lanes),
     "threads that validate the rows of one CSV upload, or of one batch of more than 32 calls, "
     "while its request thread reads the body (1: the request's own thread)"},
    {"OB_INGEST_IDEMPOTENCY_LEASE_MS", OB_CFG_INT, "10000", 3000, 600000, NULL, CFG(idem_lease_ms),
     "how long an Idempotency-Key stays claimed by a request whose ingest stopped renewing it"
     " (died); a retry takes the key over after that"},
    {"OB_INGEST_ACCEPTED_MAX_BYTES", OB_CFG_INT, "536870912", 1048576, 68719476736.0, NULL,
     CFG(accepted_max_bytes),
     "memory for accepted calls the scheduler has not recorded yet, held to answer GET (each"
     " call's message plus about 100 bytes; RSS grows about 800 bytes a call); when full, GET of"
     " an unrecorded call answers 503 until the scheduler catches up"},
    {"OB_INGEST_ADMIN_KEY", OB_CFG_STRING, "", 0, 0, NULL, CFG(admin_key),
     "bootstrap key that may create accounts; at least 32 characters; empty: none"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

ob_http_opts_t ingest_http_opts(const ingest_config_t *cfg)
{
    return (ob_http_opts_t){
        .addr = cfg->base.http_addr,
        .port = (int)cfg->base.http_port,
        .threads = (unsigned)cfg->threads,
        .connection_limit = (unsigned)cfg->conn_limit,
        .timeout_s = 30,
        .max_body = (size_t)cfg->max_body,
    };
}
