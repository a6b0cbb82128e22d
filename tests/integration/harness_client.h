/*
 * The integration tests' API client: requests to a stack's ingest as one
 * tenant (its API key, its deployment), and the waits on what those
 * requests started, so that no test file keeps its own copy of them.
 */
#ifndef HARNESS_CLIENT_H
#define HARNESS_CLIENT_H

#include "harness.h"

/* A client bound to a stack and a tenant. A plain value: copy it to change a
 * field. Everything it points to is borrowed and must outlive it. */
typedef struct {
    const h_stack_t *stack;    /* whose ingest answers */
    const h_tenant_t *tenant;  /* the tenant; NULL for a bare key (h_client_key) */
    const char *deployment_id; /* where h_deployment_* and h_queue* go; NULL for a bare key */
    PGconn *pg;                /* what h_wait_row and h_wait_value poll; may be NULL */
    int port;                  /* the ingest asked; 0: the stack's, read at each request */
    char auth[192];            /* "Authorization: Bearer <key>" */
} h_client_t;

/* A client of stack s as tenant t, on t's deployment; pg (may be NULL) is
 * only used by the waits on Postgres. */
h_client_t h_client(const h_stack_t *s, const h_tenant_t *t, PGconn *pg);
/* A client of stack s with api_key alone (an account made through the API):
 * no deployment, no Postgres. Asserts the key fits in auth. */
h_client_t h_client_key(const h_stack_t *s, const char *api_key);
/* A copy of c that queues to and manages deployment_id (of the same
 * account; borrowed) instead. */
h_client_t h_client_on(const h_client_t *c, const char *deployment_id);

/* One request with the client's key and, when not NULL, "Content-Type:
 * content_type" and "Idempotency-Key: idempotency_key". Asserts nothing;
 * the caller frees the answer with h_resp_free. */
h_resp_t h_request(const h_client_t *c, const char *method, const char *path,
                   const char *content_type, const char *idempotency_key, const char *body);
/* h_request with Content-Type application/json and no Idempotency-Key. */
h_resp_t h_api(const h_client_t *c, const char *method, const char *path, const char *body);
/* h_request with nothing but the key (GET /api/v1/calls/..., say). */
h_resp_t h_get(const h_client_t *c, const char *path);
/* h_request to /api/v1/deployments/<the client's deployment><suffix>;
 * asserts the client has a deployment. */
h_resp_t h_deployment_request(const h_client_t *c, const char *method, const char *suffix,
                              const char *content_type, const char *idempotency_key,
                              const char *body);
/* h_deployment_request with Content-Type application/json and no
 * Idempotency-Key. */
h_resp_t h_deployment_api(const h_client_t *c, const char *method, const char *suffix,
                          const char *body);

/* POSTs one call (body, JSON) to the client's deployment, asserts 202 and
 * returns its call_id (malloc'd; caller frees). */
char *h_queue_json(const h_client_t *c, const char *body);
/* h_queue_json of {"phone_number": phone, "max_attempts": 1}. */
char *h_queue(const h_client_t *c, const char *phone);
/* POSTs a JSON array of calls to the deployment's calls:batch, asserts 202
 * and that n of them were accepted; returns the answer (caller frees with
 * h_resp_free) for its results.<i>.call_id. */
h_resp_t h_queue_batch(const h_client_t *c, const char *body, long n);

/* GET /api/v1/calls/{call_id} with the key alone; caller frees with h_resp_free. */
h_resp_t h_get_call(const h_client_t *c, const char *call_id);
/* h_json_path of the call's GET, which must answer 200 (asserted);
 * malloc'd, NULL if absent or null. */
char *h_call_field(const h_client_t *c, const char *call_id, const char *json_path);

/* POSTs body (JSON) to path, asserts 201 and returns the member id_field
 * (an h_json_path) of the answer (malloc'd; caller frees). */
char *h_create(const h_client_t *c, const char *path, const char *body, const char *id_field);

/* Polls GET /api/v1/calls/{id} every 100 ms until its state is "completed";
 * returns that body (malloc'd; caller frees) or NULL on timeout. */
char *h_wait_completed(const h_client_t *c, const char *call_id, int timeout_ms);
/* Polls sql (one parameter, $1 = call_id) on c->pg (asserted not NULL) every
 * 100 ms, at most timeout_ms / 100 times, until it returns a non-null value,
 * and returns it (malloc'd; caller frees). Fails the test when it never does. */
char *h_wait_value(const h_client_t *c, const char *sql, const char *call_id, int timeout_ms);
/* h_wait_value of "SELECT 1 FROM calls WHERE call_id = $1 AND <condition>". */
void h_wait_row(const h_client_t *c, const char *call_id, const char *condition, int timeout_ms);

/* The admin key of tests that start ingest with
 * "OB_INGEST_ADMIN_KEY=" H_ADMIN_KEY. */
#define H_ADMIN_KEY "admin-key-for-tests-0123456789abcdef"

/* Creates an account through ingest's admin API (H_ADMIN_KEY), asserts 201
 * and returns its first API key (malloc'd; caller frees). */
char *h_admin_account(const h_stack_t *s, const char *email, const char *name);
/* Writes "Authorization: Basic base64(email:key)" (Plum's) to out. */
void h_basic_auth(char *out, size_t len, const char *email, const char *key);

#endif
