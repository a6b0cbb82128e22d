/*
 * Batches of calls in one request (a JSON array or NDJSON, up to 100,000),
 * streamed: each element is validated like a single call and produced as it
 * arrives. Good elements are queued even when others are bad; the answer
 * lists, per element, its call_id or its errors.
 */
#include "ingest_batch.h"
#include "ingest_calls.h"
#include "ingest_deployment.h"
#include "ingest_idempotency.h"
#include "ingest_lanes.h"
#include "ingest_reply.h"
#include "ob_json.h"
#include "ingest_jsonstream.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CALLS    100000
#define MAX_ELEMENT  (128 * 1024)
#define INLINE_CALLS 32   /* elements handled on the reading thread before lanes start */
#define RESULT_CHUNK 1024 /* results per chunk of the results table */
#define CHUNK_CALLS  64   /* elements handed to a lane at once */

typedef struct {
    ingest_ctx_t *ctx;         /* service */
    bool failed;               /* the answer is already set; the body is ignored */
    char account_id[37];       /* caller */
    const char *deployment_id; /* path parameter */
    deployment_t dep;          /* target */
    ingest_jsonstream_t *json; /* the splitter */
    ob_produce_batch_t *batch; /* acknowledgements */
    /* Each element's result ("call_id":... or "errors":...), by its index,
     * in chunks the reading thread allocates before an element's lane
     * writes it; the answer lists them in order. */
    char **results[MAX_CALLS / RESULT_CHUNK + 2];
    size_t last;              /* the highest index read */
    ingest_lanes_t *lanes;    /* validation lanes, once the batch is long enough */
    struct chunk *chunk;      /* the elements read and not handed to a lane yet */
    bool inline_only;         /* lanes were busy with another batch: none for this one */
    ingest_failure_t failure; /* the lanes' first Kafka failure */
    size_t queued, rejected;  /* counts (atomic while lanes run) */
    const char *idem_key;     /* the request's Idempotency-Key */
    ingest_idem_t idem;       /* Idempotency-Key state */
    int64_t idem_ms;          /* the key's first use */
    ob_err_t stop;            /* why the stream stopped */
    ob_rc_t stop_rc;          /* OB_OK or the stopping code */
    size_t bytes;             /* body bytes received */
    cJSON *defaults;          /* query options applied to every call */
} batch_t;

/* One element's result, for its place in the answer (malloc'd). */
static char *result_text(const char *call_id, const cJSON *errors)
{
    if (call_id)
        return ob_xasprintf("\"call_id\":\"%s\"", call_id);
    char *errs = cJSON_PrintUnformatted(errors);
    char *text = ob_xasprintf("\"errors\":%s", errs);
    cJSON_free(errs);
    return text;
}

/* Validates and produces one element (on a lane, or on the reading thread)
 * and keeps its result; a Kafka failure is returned and keeps none. */
static ob_rc_t handle(batch_t *b, size_t index, const char *text, size_t len, ob_err_t *err)
{
    const char *end = NULL;
    ob_rc_t rc = OB_OK;
    ob_json_fault_t fault = OB_JSON_OK;
    cJSON *call = ob_json_parse(text, len, &end, &fault);
    const char *why = ob_json_fault_text(fault);
    cJSON *errors = cJSON_CreateArray();
    char call_id[OB_UUID_STRLEN + 1];
    bool queued = false;
    if (why) {
        ingest_add_error(errors, "", "invalid_json", why);
    } else if (!cJSON_IsObject(call) || (size_t)(end - text) != len) {
        ingest_add_error(errors, "", "invalid_json", "the element is not a JSON object");
    } else {
        ingest_apply_defaults(call, b->defaults);
        if (b->idem == INGEST_IDEM_CLAIMED)
            ingest_idem_call_id(b->account_id, b->idem_key, b->idem_ms, index, call_id);
        else
            ob_uuid_v7(call_id);
        ob_call_request_t m = {
            .call_id = call_id,
            .deployment_id = (char *)b->deployment_id,
            .account_id = b->account_id,
        };
        rc = ingest_offer_call(b->ctx, b->batch, call, &b->dep, &m, errors, &queued, err);
    }
    if (rc == OB_OK) {
        b->results[index / RESULT_CHUNK][index % RESULT_CHUNK] =
            result_text(queued ? call_id : NULL, errors);
        __atomic_add_fetch(queued ? &b->queued : &b->rejected, 1, __ATOMIC_RELAXED);
    }
    cJSON_Delete(errors);
    cJSON_Delete(call);
    return rc;
}

/* Elements handed to a lane together (one handoff for CHUNK_CALLS: one
 * each cost more in locking and wakeups than the lanes gained). */
typedef struct chunk {
    size_t first, n;            /* the index of its first element, and how many */
    size_t used, cap;           /* text bytes used and allocated */
    size_t at[CHUNK_CALLS + 1]; /* where each element's text starts (+ the end) */
    char *text;                 /* the elements' texts, one after the other */
} chunk_t;

/* A lane's work: a chunk of elements; a Kafka failure stops the rest. */
static void lane_chunk(void *owner, void *item)
{
    batch_t *b = owner;
    chunk_t *c = item;
    ob_err_t err = {{0}};
    ob_rc_t rc = OB_OK;
    for (size_t i = 0; i < c->n && rc == OB_OK; i++) {
        if (ingest_failure_seen(&b->failure))
            break;
        rc = handle(b, c->first + i, c->text + c->at[i], c->at[i + 1] - c->at[i], &err);
    }
    free(c->text);
    free(c);
    if (rc != OB_OK)
        ingest_failure_note(&b->failure, rc, &err);
}

/* Stops the lanes, every element handed to them done; returns their
 * failure, if any (err set). */
static ob_rc_t stop_lanes(batch_t *b, ob_err_t *err)
{
    if (b->chunk) /* the last elements read */
        ingest_lanes_push(b->lanes, b->chunk->first / CHUNK_CALLS, b->chunk);
    b->chunk = NULL;
    if (b->lanes)
        __atomic_sub_fetch(&b->ctx->batches_laned, 1, __ATOMIC_ACQ_REL);
    ingest_lanes_stop(b->lanes);
    b->lanes = NULL;
    return ingest_failure_get(&b->failure, err);
}

static ob_rc_t on_element(void *opaque, size_t index, size_t line, const char *text, size_t len,
                          ob_err_t *err)
{
    batch_t *b = opaque;
    (void)line;
    if (index > MAX_CALLS) {
        ob_err_set(err, "a batch holds at most %d calls; element %zu and the rest were not read",
                   MAX_CALLS, index);
        return OB_EINVAL;
    }
    if (!b->results[index / RESULT_CHUNK])
        b->results[index / RESULT_CHUNK] = ob_xcalloc(RESULT_CHUNK, sizeof(char *));
    b->last = index;
    /* A long batch is validated and produced on lanes, one thread each, as
     * an upload's rows are; a short one on this thread. So is a long one
     * while another batch has lanes: two batches at once already keep the
     * cores busy, and lanes for both cost more than they gave (make bench,
     * two clients: 55,000 calls/s with lanes for both, 68,000 without). */
    if (!b->lanes && !b->inline_only && index > INLINE_CALLS && b->ctx->cfg->upload_lanes > 1) {
        int none = 0;
        if (__atomic_compare_exchange_n(&b->ctx->batches_laned, &none, 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            b->lanes = ingest_lanes_start((int)b->ctx->cfg->upload_lanes, lane_chunk, b);
        else
            b->inline_only = true;
    }
    if (!b->lanes)
        return handle(b, index, text, len, err);
    if (ingest_failure_seen(&b->failure))
        return ingest_failure_get(&b->failure, err); /* Kafka failed in a lane: stop reading */
    chunk_t *c = b->chunk;
    if (!c) {
        c = b->chunk = ob_xcalloc(1, sizeof(*c));
        c->first = index;
    }
    if (c->used + len > c->cap) {
        c->cap = (c->used + len) * 2;
        c->text = ob_xrealloc(c->text, c->cap);
    }
    memcpy(c->text + c->used, text, len);
    c->used += len;
    c->at[++c->n] = c->used;
    if (c->n == CHUNK_CALLS) {
        ingest_lanes_push(b->lanes, c->first / CHUNK_CALLS, c);
        b->chunk = NULL;
    }
    return OB_OK;
}

static bool on_body(void *arg, ob_http_req_t *req, const char *data, size_t len)
{
    batch_t *b = req->stream;
    (void)arg;
    if (b->failed || b->stop_rc != OB_OK)
        return false;
    b->bytes += len;
    if (b->bytes > (size_t)b->ctx->cfg->max_upload) {
        b->stop_rc = OB_EAGAIN; /* answered 413 */
        ob_err_set(&b->stop, "the batch is larger than %lld bytes", b->ctx->cfg->max_upload);
        return false;
    }
    b->stop_rc = ingest_jsonstream_feed(b->json, data, len, &b->stop);
    return b->stop_rc == OB_OK;
}

static void on_close(ob_http_req_t *req)
{
    batch_t *b = req->stream;
    if (!b)
        return;
    /* Normally finish stopped them; after a broken connection the elements
     * still waiting are dropped rather than queued for a client that is
     * gone. */
    ingest_failure_drop(&b->failure);
    ob_err_t ignored_lane = {{0}};
    ob_rc_t unused_lane = stop_lanes(b, &ignored_lane);
    (void)unused_lane;
    ingest_failure_destroy(&b->failure);
    ingest_jsonstream_free(b->json);
    if (b->batch) {
        ob_err_t ignored = {{0}};
        ob_rc_t unused = ob_produce_batch_wait(b->batch, 0, &ignored);
        (void)unused;
    }
    for (size_t c = 0; c < OB_COUNTOF(b->results); c++) {
        for (size_t i = 0; b->results[c] && i < RESULT_CHUNK; i++)
            free(b->results[c][i]);
        free(b->results[c]);
    }
    cJSON_Delete(b->defaults);
}

void ingest_batch_begin(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    batch_t *b = ob_pool_alloc(req->pool, sizeof(*b));
    const char *ct = ob_http_header(req, "Content-Type");
    ingest_jsonstream_mode_t mode = INGEST_JSONSTREAM_AUTO;

    b->ctx = c->ctx;
    b->failed = true; /* until everything below succeeded */
    ingest_failure_init(&b->failure);
    b->deployment_id = c->param[0];
    snprintf(b->account_id, sizeof(b->account_id), "%s", c->account_id);
    req->stream = b;
    req->on_body = on_body;
    req->on_close = on_close;
    if (!ingest_load_deployment(c, c->param[0], true, &b->dep) ||
        !(b->defaults = ingest_stream_defaults(req, &b->dep)))
        return;
    if (ct && strncasecmp(ct, "application/json", 16) == 0)
        mode = INGEST_JSONSTREAM_ARRAY;
    else if (ct && (strncasecmp(ct, "application/x-ndjson", 20) == 0 ||
                    strncasecmp(ct, "application/jsonl", 17) == 0))
        mode = INGEST_JSONSTREAM_NDJSON;
    else if (ct) {
        ob_http_problem(req, 415, "unsupported_media_type", NULL,
                        "send a JSON array as application/json, or NDJSON as"
                        " application/x-ndjson");
        return;
    }
    /* Refused whole while the broker does not answer, rather than after
     * each row's message timed out (30 s; found by tests/soak). */
    if (!ingest_kafka_usable(c->ctx)) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "queue_unavailable", NULL,
                        "Kafka is unreachable: no call of the batch was queued; retry");
        return;
    }
    b->idem_key = ob_http_header(req, "Idempotency-Key");
    if ((b->idem = ingest_idem_claim(c, NULL, &b->idem_ms)) == INGEST_IDEM_DONE)
        return;
    if (!ingest_check_pending(c, c->param[0], 0)) {
        if (b->idem == INGEST_IDEM_CLAIMED)
            ingest_idem_store(c); /* a 429 leaves the key usable */
        return;
    }
    b->json = ingest_jsonstream_new(mode, MAX_ELEMENT, on_element, b);
    b->batch = ob_produce_batch_new();
    b->failed = false;
}

void ingest_batch_finish(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    batch_t *b = req->stream;
    ob_err_t ack_err = {{0}};
    if (!b || b->failed)
        return; /* the answer was set when the request began */
    c->account_id = b->account_id;
    if (b->stop_rc == OB_OK)
        b->stop_rc = ingest_jsonstream_finish(b->json, &b->stop);
    ob_err_t lane_err = {{0}};
    ob_rc_t lane_rc = stop_lanes(b, &lane_err); /* every element was offered */
    if (lane_rc != OB_OK && b->stop_rc == OB_OK) {
        b->stop_rc = lane_rc;
        b->stop = lane_err;
    }
    ob_rc_t ack = ob_produce_batch_wait(b->batch, 60000, &ack_err);
    b->batch = NULL;
    /* The results in the batch's order (lanes finish out of order). */
    char *out_buf = NULL;
    size_t out_len = 0, listed = 0;
    FILE *out = open_memstream(&out_buf, &out_len);
    OB_ASSERT(out != NULL);
    for (size_t i = 0; i <= b->last; i++) {
        const char *r =
            b->results[i / RESULT_CHUNK] ? b->results[i / RESULT_CHUNK][i % RESULT_CHUNK] : NULL;
        if (r)
            fprintf(out, "%s{\"row\":%zu,%s}", listed++ ? "," : "", i, r);
    }
    fclose(out);
    unsigned code = 202;
    const char *detail = NULL;
    if (ack != OB_OK) {
        code = 503;
        detail = ob_pool_printf(req->pool,
                                "Kafka did not acknowledge every call (%s); retry the"
                                " batch with the same Idempotency-Key",
                                ack_err.msg);
    } else if (b->stop_rc != OB_OK) {
        code = b->stop_rc == OB_EINVAL ? 400 : b->stop_rc == OB_EAGAIN ? 413 : 503;
        detail = ob_pool_printf(req->pool, "%s%s", b->stop.msg,
                                b->queued ? "; the calls listed with a call_id were queued" : "");
    }
    cJSON *d = detail ? cJSON_CreateString(detail) : cJSON_CreateNull();
    char *dtext = cJSON_PrintUnformatted(d);
    char *body =
        ob_pool_printf(req->pool,
                       "{\"deployment_id\":\"%s\",\"accepted\":%zu,\"rejected\":%zu,"
                       "\"detail\":%s,\"results\":[%.*s]}",
                       b->deployment_id, b->queued, b->rejected, dtext, (int)out_len, out_buf);
    free(out_buf);
    cJSON_free(dtext);
    cJSON_Delete(d);
    ob_http_reply(req, code, "application/json", body, strlen(body));
    OB_LOG(OB_LOG_INFO, "batch", OB_KV("deployment_id", b->deployment_id, "req_id", req->req_id),
           "batch: %zu accepted, %zu rejected (%u)", b->queued, b->rejected, code);
    if (b->idem == INGEST_IDEM_CLAIMED)
        ingest_idem_store(c);
}
