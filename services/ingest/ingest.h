/*
 * The ingest service's context and the entry points its modules share:
 * routing and handlers (ingest_api.c) and authentication (ingest_auth.c).
 */
#ifndef INGEST_H
#define INGEST_H

#include "ob_config.h"
#include "ob_http.h"
#include "ob_kafka.h"
#include "ob_metrics.h"
#include "ob_pg.h"
#include "ob_proto.h"
#include "ob_service.h"

typedef struct {
    ob_base_config_t base;        /* shared settings (must be first) */
    long long threads;            /* OB_INGEST_THREADS */
    long long max_body;           /* OB_INGEST_MAX_BODY_BYTES */
    long long conn_limit;         /* OB_INGEST_MAX_CONNECTIONS */
    long long ack_timeout_ms;     /* OB_INGEST_ACK_TIMEOUT_MS */
    long long pg_pool;            /* OB_INGEST_PG_POOL */
    char *admin_key;              /* OB_INGEST_ADMIN_KEY: bootstrap key for /accounts, "" = off */
    double key_rate;              /* OB_INGEST_KEY_RATE: requests/s per API key */
    long long key_concurrency;    /* OB_INGEST_KEY_CONCURRENCY: requests in progress per key */
    long long max_pending;        /* OB_INGEST_MAX_PENDING: queued calls per deployment */
    long long max_upload;         /* OB_INGEST_MAX_UPLOAD_BYTES: largest streamed body */
    long long upload_lanes;       /* OB_INGEST_UPLOAD_LANES: threads validating one upload */
    long long idem_lease_ms;      /* OB_INGEST_IDEMPOTENCY_LEASE_MS: an unrenewed claim's life */
    long long accepted_max_bytes; /* OB_INGEST_ACCEPTED_MAX_BYTES: unrecorded calls held for GET */
} ingest_config_t;

/* The OB_INGEST_* settings (ingest_config.c), terminated by env NULL. */
extern const ob_cfg_spec_t ingest_config_specs[];

/* The HTTP server options of cfg (address, port, threads, connection limit,
 * timeout, body limit); the caller adds the handlers. */
ob_http_opts_t ingest_http_opts(const ingest_config_t *cfg);

enum {
    M_CALLS_QUEUED,   /* outbound_calls_queued_total */
    M_KAFKA_FAILURES, /* outbound_call_requests_unacknowledged_total */
    M_READY,          /* outbound_ready */
    M_RECORDING_LAG,  /* outbound_call_recording_lag_seconds */
    M_UNRECORDED,     /* outbound_calls_unrecorded */
    M_COUNT,
};

typedef struct {
    ob_service_t svc;                  /* readiness, metrics, HTTP server (first member) */
    const ingest_config_t *cfg;        /* read-only configuration */
    ob_producer_t *producer;           /* single requests: sends at once (no linger) */
    ob_producer_t *bulk;               /* batches and uploads: lingers to fill batches */
    ob_pg_pool_t *pg;                  /* connections for auth and queries */
    struct ingest_limits *limits;      /* admission limits (ingest_limits.h) */
    struct ingest_cache *keys;         /* key hash -> account (ingest_cache.h) */
    struct ingest_cache *deps;         /* deployment|account -> deployment_t */
    char *topic_requests;              /* full name of outbound.call-requests */
    char *topic_events;                /* full name of outbound.call-events */
    char *source;                      /* CloudEvents source of this instance */
    int kafka_up;                      /* last metadata check answered (atomic) */
    int pg_up;                         /* last Postgres check answered (atomic) */
    ob_metric_t metrics[M_COUNT];      /* Prometheus registry */
    ob_kafka_metrics_t *kafka_metrics; /* per-topic Kafka counts and lag */
    struct ingest_claims *claims;      /* Idempotency-Key claims held (ingest_idempotency.c) */
    struct ingest_accepted *accepted;  /* accepted calls not yet recorded (ingest_accepted.h) */
} ingest_ctx_t;

/* The HTTP handler for every /api route. */
void ingest_api_handle(void *ctx, ob_http_req_t *req);

/* What a route handler gets: the authenticated account, a borrowed Postgres
 * connection and the path parameters ({} in the route pattern). */
typedef struct {
    ingest_ctx_t *ctx;      /* service context */
    ob_http_req_t *req;     /* the request; set the response here */
    PGconn *conn;           /* borrowed for the request */
    const char *account_id; /* authenticated account */
    const char *param[2];   /* path parameters in order */
    const char *queued_via; /* "plum" on the Plum routes: the calls' queued_via; else NULL */
    bool pci_allowed;       /* Plum routes: the deployment accepts is_pci=1 */
} ingest_call_t;

typedef void (*ingest_route_fn)(ingest_call_t *c);

/* The deployment a call is queued to, with its defaults. */
typedef struct {
    char account_id[37];   /* owner */
    bool active;           /* accepting calls */
    bool deleted;          /* soft-deleted */
    long max_attempts;     /* default attempts */
    long retry_interval_s; /* default wait between attempts */
    char caller_id[64];    /* default caller id, "" if none */
    char region[3];        /* default region for national numbers, "" if none */
} deployment_t;

/* What the key cache holds for an API key. */
typedef struct {
    char account_id[37]; /* the key's account */
    char email[321];     /* the account's email, for HTTP Basic */
} ingest_key_entry_t;

/* Forgets what this ingest cached about a deployment or a key (after a
 * change through the API). */
void ingest_forget_deployment(ingest_call_t *c, const char *deployment_id);
void ingest_forget_key(ingest_ctx_t *ctx, const char *key_hash);

/* Loads a deployment of the account; on failure the problem response is set
 * (an unknown deployment and another account's look the same: 404). With
 * for_queueing, an inactive deployment is refused with 409. */
bool ingest_load_deployment(ingest_call_t *c, const char *deployment_id, bool for_queueing,
                            deployment_t *dep);

/* Appends {field, code, message} to a problem's errors array. */
void ingest_add_error(cJSON *errors, const char *field, const char *code, const char *msg);

/* Times (ingest_time.c). A time given as unix seconds (number or digit
 * string), RFC 3339 text, "now" or "+N unit" (second, minute, hour, day,
 * week): what the native API takes. */
bool ingest_parse_time(const cJSON *item, int64_t *unix_ms);
bool ingest_parse_time_text(const char *s, int64_t *unix_ms);
/* The English time expressions of PHP's strtotime() that Plum DEV documents
 * ("now", "+3 days", "oct 14th, 2011 11:05PM EST", "tomorrow 9am", "next
 * monday", "3 hours ago", ...; docs/plum.md lists the grammar), relative to
 * now_ms, in UTC unless the text names a zone. False for anything else, or
 * a time before 1970 or from the year 3000. Pure. */
bool ingest_parse_natural_time(const char *s, int64_t now_ms, int64_t *unix_ms);

/* Reads a list's paging query: cursor (a previous page's next_cursor, a
 * UUID, or NULL) and limit (1-1000, default_limit when absent, as text for
 * a query parameter); appends a problem to errors for each bad one. */
void ingest_page_query(ob_http_req_t *req, long default_limit, const char **cursor, char limit[16],
                       cJSON *errors);

/* True when the request body is declared as JSON (or undeclared); otherwise
 * sets a 415 problem. */
bool ingest_require_json(ob_http_req_t *req);

/* Parses text[0..len) as one JSON value, refusing what cJSON would accept
 * silently but store wrongly: bytes that are not UTF-8 (RFC 8259 text), a
 * \u0000 escape (the string would end there) and a member name repeated in
 * one object (which value counts would be a guess). Returns NULL with *why
 * set to a client-facing reason on those or on a syntax error; with end
 * non-NULL, text may go on after the value and *end is where it stopped. */
cJSON *ingest_json_parse(const char *text, size_t len, const char **end, const char **why);

/* The name of the first member of object, at any depth, whose name or
 * string value is not UTF-8 text without NUL ("call_parameters.name";
 * pool-owned), or NULL: for values that did not come from JSON text checked
 * as a whole (form fields, CSV cells, call_parameters given as text). */
const char *ingest_bad_text_field(ob_pool_t *pool, const cJSON *object);

/* Answers status with the JSON text that sql ($1 = id, $2 = the account)
 * returns in its first row; an invalid or unknown id (or another account's)
 * is a 404 "<what>_not_found" saying "no <what> <id><hint>". */
void ingest_reply_owned(ingest_call_t *c, const char *sql, const char *id, unsigned status,
                        const char *what, const char *hint);

/* Sets a 503 problem for a failed Postgres operation and logs why. */
void ingest_database_problem(ob_http_req_t *req, const ob_err_t *err);

/* Validates one call object (the body of a single call, a batch element or
 * a CSV row turned into JSON) into m, with the deployment's defaults for
 * what is absent. Strings in m are allocated from pool; every problem is
 * appended to errors; returns true when there were none. m->accepted_at_ms
 * must be set first. */
bool ingest_validate_call(ob_pool_t *pool, const cJSON *body, const deployment_t *dep,
                          ob_call_request_t *m, cJSON *errors);

/* Validates retry rules (an object mapping busy, noanswer, informationtone,
 * linefailure or unknown to seconds from 60 to 172800, or "never"), naming
 * problems as field.result in errors. Returns the rules as compact JSON text
 * from pool, or NULL if there were problems. */
char *ingest_retry_rules(ob_pool_t *pool, const cJSON *rules, const char *field, cJSON *errors);

/* Idempotency-Key handling (ingest_idempotency.c). */
typedef enum {
    INGEST_IDEM_NONE,    /* no key: handle the request normally */
    INGEST_IDEM_CLAIMED, /* first use: handle it, then ingest_idem_store */
    INGEST_IDEM_DONE,    /* answered: the stored answer (or a problem) is set */
} ingest_idem_t;

/* Claims the request's Idempotency-Key for this route. body_hash may be NULL
 * when the body is not known yet (streamed uploads). On a replay the first
 * answer is set on the request; on misuse a 409/422 problem is. *created_ms
 * (may be NULL) gets when the key was first used. */
ingest_idem_t ingest_idem_claim(ingest_call_t *c, const char *body_hash, int64_t *created_ms);

/* Stores the request's answer under its claimed key, or releases the key when
 * the answer was a 5xx (so that a retry is handled afresh); stops renewing
 * the claim. Does nothing when the request holds no claim. */
void ingest_idem_store(ingest_call_t *c);

/* The claims this ingest holds, renewed while their requests are in
 * progress; lease_ms is how long one lasts unrenewed. Never NULL. */
typedef struct ingest_claims ingest_claims_t;
ingest_claims_t *ingest_claims_new(long long lease_ms);
void ingest_claims_free(ingest_claims_t *cl); /* NULL-safe */

/* Extends the lease of every claim held (one UPDATE); the main loop calls
 * it once a second. Failures are logged: a lease that runs out only lets a
 * retry go ahead, which derives the same call ids. */
void ingest_idem_renew(ingest_ctx_t *ctx);

/* When a request is over: a claim it still holds (it ended without an
 * answer kept, e.g. its client went away mid-upload) is released so that a
 * retry goes ahead at once. Borrows a Postgres connection. */
void ingest_idem_finish(ingest_ctx_t *ctx, ob_http_req_t *req);

/* The call id for item row (0 for a single call) of a request under a
 * claimed key: a UUIDv7 at the key's first use whose random bits come from
 * the account, the key and the row, so every retry names the same calls.
 * A pure function: safe from any thread. */
void ingest_idem_call_id(const char *account_id, const char *key, int64_t created_ms, size_t row,
                         char out[37]);

/* Lower-case hex SHA-256 of len bytes into out (65 bytes). */
void ingest_sha256_hex(const void *data, size_t len, char out[65]);

/* How much longer than OB_INGEST_ACK_TIMEOUT_MS a request waits for the
 * delivery report of its message (librdkafka times messages out on a scan
 * about once a second). */
#define INGEST_REPORT_GRACE_MS 5000

/* Produces one message to the call-requests topic with the ingest's
 * producer, whose message.timeout.ms is OB_INGEST_ACK_TIMEOUT_MS, and blocks
 * until its delivery report: OB_OK once the broker acknowledged it; any
 * other code means the broker does not have it and never will (librdkafka
 * gave it up, or the broker was unreachable at the last check and nothing
 * was sent), so a 503 that says "not accepted" is true. Thread-safe. */
ob_rc_t ingest_send_request(ingest_ctx_t *ctx, const char *key, const char *msg,
                            ob_err_t *err) OB_MUSTCHECK;

/* For streams of calls (batches, uploads): validates call and, when valid,
 * produces it into batch, whose acknowledgements the caller awaits. m comes
 * with its ids set. Returns OB_OK with *queued false and errors filled for an
 * invalid call; any other code is a Kafka failure that ends the stream. */
ob_rc_t ingest_offer_call(ingest_ctx_t *ctx, ob_produce_batch_t *batch, const cJSON *call,
                          const deployment_t *dep, ob_call_request_t *m, cJSON *errors,
                          bool *queued, ob_err_t *err);

/* Queues the call given as JSON object body to the deployment c->param[0]
 * (already loaded into dep), under the request's Idempotency-Key if any
 * (body_hash identifies the request); sets the 202 answer or the problem. */
void ingest_queue_json(ingest_call_t *c, const deployment_t *dep, const cJSON *body,
                       const char *body_hash);

/* False (with a 429 problem set) when the deployment already holds the most
 * pending calls allowed; adding is how many the request would add. */
bool ingest_check_pending(ingest_call_t *c, const char *deployment_id, long adding);

/* Streams of calls (batches, uploads) take options in the query string
 * (max_attempts, retry_interval_s, priority, not_before, expires_at) as
 * defaults for every call that does not set them. Returns them as call
 * fields (caller deletes), or NULL with a 422 problem set when invalid. */
cJSON *ingest_stream_defaults(ob_http_req_t *req, const deployment_t *dep);
/* Adds each default the call does not set itself. */
void ingest_apply_defaults(cJSON *call, const cJSON *defaults);
/* A text cell as a JSON value: numbers become numbers (so validation checks
 * their range), anything else stays a string. */
cJSON *ingest_cell_value(const char *text);

/* Answers GET of call c->param[0] from sql ($1 = id, $2 = the account;
 * the view as JSON text), or, for a call accepted but not recorded yet
 * (ingest_accepted.h), from its request message, flagged "recorded": false,
 * in the native or Plum shape; 404 only for a call no ingest accepted (or
 * another account's), 503 when this ingest cannot tell yet. */
void ingest_reply_call(ingest_call_t *c, const char *sql, bool plum);

/* Route handlers (ingest_calls.c). */
void ingest_queue_call(ingest_call_t *c);
void ingest_get_call(ingest_call_t *c);
void ingest_list_calls(ingest_call_t *c);
void ingest_cancel_call(ingest_call_t *c);

/* Route handlers (ingest_deliveries.c): the result_url webhook delivery log. */
void ingest_list_call_deliveries(ingest_call_t *c);
void ingest_list_deployment_deliveries(ingest_call_t *c);

/* Route handlers (ingest_resources.c): applications and deployments. */
void ingest_create_application(ingest_call_t *c);
void ingest_list_applications(ingest_call_t *c);
void ingest_get_application(ingest_call_t *c);
void ingest_update_application(ingest_call_t *c);
void ingest_delete_application(ingest_call_t *c);
void ingest_create_deployment(ingest_call_t *c);
void ingest_list_deployments(ingest_call_t *c);
void ingest_get_deployment(ingest_call_t *c);
void ingest_update_deployment(ingest_call_t *c);
void ingest_delete_deployment(ingest_call_t *c);

/* Route handlers (ingest_accounts.c): accounts (admin key) and API keys. */
void ingest_create_account(ingest_call_t *c);
void ingest_create_key(ingest_call_t *c);
void ingest_list_keys(ingest_call_t *c);
void ingest_revoke_key(ingest_call_t *c);
/* True when the request carries the configured admin key. */
bool ingest_is_admin(const ingest_ctx_t *ctx, ob_http_req_t *req);

/* CSV uploads (ingest_uploads.c): begin runs when the headers arrive and
 * sets the request up to stream its body; finish answers when it is over. */
void ingest_upload_begin(ingest_call_t *c);
void ingest_upload_finish(ingest_call_t *c);
void ingest_get_upload(ingest_call_t *c);
void ingest_get_upload_report(ingest_call_t *c);

/* Batches of calls (ingest_batch.c), streamed like uploads. */
void ingest_batch_begin(ingest_call_t *c);
void ingest_batch_finish(ingest_call_t *c);

/* Plum-compatible routes (ingest_plum.c); {app}/{dep} come as param[0..1].
 * They answer as Plum documents: 200 with a Link header for a queued call,
 * errors as {"error": "..."} (bad data 400, a deleted deployment 409). */
void ingest_plum_queue(ingest_call_t *c);
void ingest_plum_bulk_begin(ingest_call_t *c);
void ingest_plum_cancel(ingest_call_t *c);
void ingest_plum_get_call(ingest_call_t *c);

/* bulk_queue's part of an upload (ingest_uploads.c calls these): the fields
 * beside the file and the file itself, held until the body is over (a Plum
 * client may send the fields after the file, and every row needs them),
 * and the ids of the calls queued. One request's; not thread-safe but for
 * ingest_plum_bulk_queued, which the caller serialises. */
typedef struct ingest_plum_bulk ingest_plum_bulk_t;
/* For the Plum route's request c (its deployment's is_pci permission). */
ingest_plum_bulk_t *ingest_plum_bulk_new(const ingest_call_t *c);
void ingest_plum_bulk_free(ingest_plum_bulk_t *b); /* NULL-safe */
/* One form field beside the file, or a piece of one (as
 * ingest_plum_form_add); beyond 64 KiB together they are refused (413) by
 * ingest_plum_bulk_defaults. */
void ingest_plum_bulk_field(ingest_plum_bulk_t *b, const char *key, const char *data, uint64_t off,
                            size_t size);
/* Holds size bytes of the file (in an unlinked file in TMPDIR, or /tmp);
 * false with err set when the disk does not take them. */
bool ingest_plum_bulk_hold(ingest_plum_bulk_t *b, const char *data, size_t size, ob_err_t *err);
/* Once the body is over: the fields as defaults for every row (native call
 * fields; caller deletes), or NULL with the answer set: 400 without a csv
 * part, 413 for too large fields, 422 naming a bad field (Plum's name). */
cJSON *ingest_plum_bulk_defaults(ob_http_req_t *req, ingest_plum_bulk_t *b,
                                 const deployment_t *dep);
/* Then the file held, a chunk per call into *data (valid until the next
 * call) and *len; false at its end, or with err set when it cannot be read. */
bool ingest_plum_bulk_next(ingest_plum_bulk_t *b, const char **data, size_t *len, ob_err_t *err);
/* Notes row's queued call (call_id). */
void ingest_plum_bulk_queued(ingest_plum_bulk_t *b, size_t row, const char *call_id);
/* Answers bulk_queue from the native answer (UploadAnswer) and its status
 * as Plum would: 200 with the upload's counts, the queued calls' ids (up to
 * INGEST_PLUM_LISTED_IDS, in file order), calls_url and a Link header to
 * the list of them, and the rejected rows; or {"error"} with 400 (a file
 * that could not be read), 413 or 503 (Retry-After). */
void ingest_plum_bulk_answer(ob_http_req_t *req, ingest_plum_bulk_t *b, const cJSON *native,
                             unsigned status);

/* True for a path of the Plum routes (/api/apps/..., /api/outbound/...). */
bool ingest_plum_path(const char *path);
/* Rewrites a problem answer (application/problem+json) set on req as Plum's
 * error: {"error": "<detail>: <field>: <message>; ..."} as application/json,
 * 422 becoming 400; status, headers and any other answer are unchanged. The
 * router calls it for every answer on a Plum path. */
void ingest_plum_answer(ob_http_req_t *req);

/* How bulk_queue answers with the queued calls' ids: listed up to this many,
 * above it only as the link to the upload's calls. */
#define INGEST_PLUM_LISTED_IDS 1000

/* The absolute URL of path on the host the client asked (Host, and
 * X-Forwarded-Proto behind a TLS proxy), pool-owned: for Link headers,
 * which Plum clients follow as they are. */
const char *ingest_plum_url(ob_http_req_t *req, const char *path);

/* bulk_queue's form fields beside the file (Plum's names: start_timestamp,
 * max_attempts, result_url, is_pci, ...) as defaults for every row; returns
 * them as native call fields (caller deletes), or NULL with a 422 problem
 * naming the Plum field set on req. */
cJSON *ingest_plum_stream_defaults(ob_http_req_t *req, const cJSON *form, const deployment_t *dep,
                                   bool pci_allowed);

/* Plum form parsing, apart from the HTTP request so it can be tested and
 * fuzzed. ingest_plum_form_add records one form value, or a piece of one
 * at byte offset off (libmicrohttpd's post processor splits long values),
 * as a string member key of form; a repeated key keeps its first value. */
void ingest_plum_form_add(cJSON *form, const char *key, const char *data, uint64_t off,
                          size_t size);
/* What the translation below needs beside the form. */
typedef struct {
    bool pci_allowed; /* the deployment accepts is_pci=1 (plum_pci_allowed) */
    int64_t now_ms;   /* the present, for times such as "tomorrow 9am" */
} ingest_plum_opts_t;
/* Translates a Plum form (string members, or a JSON object's typed ones) to
 * a native call object for ingest_validate_call (caller deletes): Plum's
 * names become native ones, English times (ingest_parse_natural_time) unix
 * seconds, a 0 or empty time none, and is_pci is checked and dropped.
 * Returns NULL with every problem appended to errors, under the Plum name
 * (reattempt_wait out of range, a time that is none of those forms, is_pci
 * not 0 or 1, or 1 where the deployment does not allow it). */
cJSON *ingest_plum_to_call(const cJSON *form, const ingest_plum_opts_t *o, cJSON *errors);

/* GET /api/v1/openapi.json (ingest_openapi.c): the API's OpenAPI document. */
void ingest_openapi(ingest_call_t *c);

/* GET / and GET /console/{file} (ingest_console.c): the web console's static
 * files, public, with a strict Content-Security-Policy. */
void ingest_console_index(ingest_call_t *c);
void ingest_console_file(ingest_call_t *c);

/* ob_http_stream_fn: starts the streaming routes (uploads). */
void ingest_stream(void *ctx, ob_http_req_t *req);

/* Route handlers (ingest_queue.c): a deployment's queue as a whole. */
/* Produces the command that cancels the pending calls of deployment
 * c->param[0] accepted until now; false with a 503 problem (starting with
 * what) when Kafka did not take it. */
bool ingest_send_cancel(ingest_call_t *c, const char *what, char command_id[37],
                        int64_t *requested_at_ms);
void ingest_cancel_queue(ingest_call_t *c);
void ingest_pause_queue(ingest_call_t *c);
void ingest_resume_queue(ingest_call_t *c);
void ingest_queue_summary(ingest_call_t *c);

#include <stdbool.h>

/* Resolves the request's key (Bearer, or Basic email:key) to its account
 * (account_id, 37 bytes); key_hash gets the key's SHA-256 for the per-key
 * limits. On failure the problem response is set and false is returned. */
bool ingest_auth(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, char *account_id,
                 char key_hash[65]);

/* Lower-case hex SHA-256 of key into out (65 bytes). */
void ingest_key_hash(const char *key, char out[65]);

#endif
