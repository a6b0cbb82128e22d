/*
 * Every SQL statement the ingest runs (ingest_store.c): handlers say what
 * they want read or written and never write SQL. Each function runs on the
 * caller's borrowed connection, blocks until Postgres answers, and returns
 * OB_OK or the code ob_pg_exec gave (err says why); "not found" is not an
 * error but an out value. Strings handed back are allocated from the
 * caller's pool. Every value is a parameter.
 */
#ifndef INGEST_STORE_H
#define INGEST_STORE_H

#include "ingest.h"

/* A resource's JSON view, read by id as the account's own. */
typedef enum {
    INGEST_VIEW_APPLICATION,     /* an application */
    INGEST_VIEW_DEPLOYMENT,      /* a deployment with its settings */
    INGEST_VIEW_CALL,            /* call_view(): the call, its attempts and events */
    INGEST_VIEW_PLUM_CALL,       /* {call_id, call_details: plum_call_details()} */
    INGEST_VIEW_CALL_DELIVERIES, /* the call's webhook deliveries with their tries */
    INGEST_VIEW_UPLOAD,          /* an upload's outcome and rejected rows */
} ingest_view_t;

/* The JSON text of view for id owned by account_id into *json, or NULL when
 * there is none (unknown, another account's, or deleted). */
ob_rc_t ingest_store_view(PGconn *conn, ob_pool_t *pool, ingest_view_t view, const char *id,
                          const char *account_id, char **json, ob_err_t *err) OB_MUSTCHECK;

/* One page of a list, newest or oldest first as the list says. */
typedef struct {
    const char *items;   /* JSON array text of the page's items */
    long count;          /* how many */
    const char *last_id; /* the last item's id: the next page's cursor */
} ingest_page_t;

/* A deployment of the account into *dep; *found false when there is none. */
ob_rc_t ingest_store_deployment(PGconn *conn, const char *deployment_id, const char *account_id,
                                deployment_t *dep, bool *found, ob_err_t *err) OB_MUSTCHECK;

/* The deployment's calls not completed. */
ob_rc_t ingest_store_pending_count(PGconn *conn, const char *deployment_id, long *count,
                                   ob_err_t *err) OB_MUSTCHECK;

/* The account and email of a key that is not revoked (and whose account's
 * email is email, case-insensitively, when email is not NULL) into *hit;
 * *found false when there is none. */
ob_rc_t ingest_store_find_key(PGconn *conn, const char *key_hash, const char *email,
                              ingest_key_entry_t *hit, bool *found, ob_err_t *err) OB_MUSTCHECK;

/* An API key as stored: its SHA-256, never the key. */
typedef struct {
    const char *key_id;     /* UUIDv7 */
    const char *account_id; /* owner */
    const char *key_hash;   /* lower-case hex SHA-256 of the key */
    const char *prefix;     /* its first characters, to tell keys apart */
    const char *label;      /* the owner's name for it ("" if none) */
} ingest_store_key_t;

/* Creates an account (capacity NULL: no account-wide limit) and its first
 * key in one transaction; OB_ECONFLICT when the email is taken. */
ob_rc_t ingest_store_create_account(PGconn *conn, const char *account_id, const char *email,
                                    const char *name, const char *capacity,
                                    const ingest_store_key_t *key, ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ingest_store_insert_key(PGconn *conn, const ingest_store_key_t *key,
                                ob_err_t *err) OB_MUSTCHECK;
/* {"api_keys": [...]} of the account, never their hashes. */
ob_rc_t ingest_store_list_keys(PGconn *conn, ob_pool_t *pool, const char *account_id, char **json,
                               ob_err_t *err) OB_MUSTCHECK;
/* Revokes the account's key (again is fine); *key_hash gets its hash, or
 * NULL when the account has no such key. */
ob_rc_t ingest_store_revoke_key(PGconn *conn, ob_pool_t *pool, const char *key_id,
                                const char *account_id, char **key_hash,
                                ob_err_t *err) OB_MUSTCHECK;

/* Postgres answers at all (readiness). */
ob_rc_t ingest_store_ping(PGconn *conn, ob_err_t *err) OB_MUSTCHECK;

/* Queues. Marks the deployment so releases stop at once for the calls
 * accepted before at_ms (migration 009). */
ob_rc_t ingest_store_mark_cancel(PGconn *conn, const char *deployment_id, int64_t at_ms,
                                 ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ingest_store_set_paused(PGconn *conn, const char *deployment_id, const char *account_id,
                                bool paused, ob_err_t *err) OB_MUSTCHECK;
/* The queue's summary as JSON text (the deployment, its calls counted by
 * state, by final status and, pending ones, by what they wait for) and its
 * campaign window's definition (NULL: none); *json NULL when the account
 * has no such deployment. */
ob_rc_t ingest_store_queue_summary(PGconn *conn, ob_pool_t *pool, const char *deployment_id,
                                   const char *account_id, char **json, char **window,
                                   ob_err_t *err) OB_MUSTCHECK;

/* Calls. What the list of a deployment's calls is filtered by (NULL: not
 * at all); numbers as text. */
typedef struct {
    const char *deployment_id;     /* the deployment */
    const char *account_id;        /* its owner */
    const char *state;             /* a state, or "pending": any but completed */
    const char *status;            /* a final status */
    const char *result;            /* an attempt result */
    const char *message_reference; /* the client's reference */
    const char *since_ms;          /* accepted at or after (unix ms) */
    const char *until_ms;          /* accepted before (unix ms) */
    const char *cursor;            /* the last call_id of the previous page */
    const char *limit;             /* page size */
    const char *upload_id;         /* queued by this upload */
    const char *phone_number;      /* E.164 */
} ingest_calls_query_t;

/* One page of the calls q selects, newest first. */
ob_rc_t ingest_store_list_calls(PGconn *conn, ob_pool_t *pool, const ingest_calls_query_t *q,
                                ingest_page_t *page, ob_err_t *err) OB_MUSTCHECK;
/* A recorded call's deployment, state and reason ("" if none) as stored;
 * *deployment_id NULL when the account has no such call (yet). */
ob_rc_t ingest_store_call_state(PGconn *conn, ob_pool_t *pool, const char *call_id,
                                const char *account_id, char **deployment_id, char **state,
                                char **reason, ob_err_t *err) OB_MUSTCHECK;
/* One page of a deployment's webhook deliveries (state NULL: any), newest
 * first. */
ob_rc_t ingest_store_list_deliveries(PGconn *conn, ob_pool_t *pool, const char *deployment_id,
                                     const char *account_id, const char *state, const char *cursor,
                                     const char *limit, ingest_page_t *page,
                                     ob_err_t *err) OB_MUSTCHECK;

/* The Plum routes' deployment: *found false unless deployment_id is the
 * account's and belongs to application_id; *deleted when either was
 * deleted; *pci_allowed its plum_pci_allowed setting. */
ob_rc_t ingest_store_plum_deployment(PGconn *conn, const char *deployment_id,
                                     const char *application_id, const char *account_id,
                                     bool *found, bool *deleted, bool *pci_allowed,
                                     ob_err_t *err) OB_MUSTCHECK;

/* Idempotency keys. What a claim found: the key claimed now, or the row
 * of the request that has it (pool strings). */
typedef struct {
    bool found;               /* false: claimed by another request this very moment */
    bool claimed;             /* this request has the key now */
    const char *route;        /* "METHOD path" of the key's first request */
    const char *request_hash; /* its body's hash, or NULL */
    bool answered;            /* an answer is kept (status below) */
    unsigned status;          /* the kept answer's status; 0 after a 5xx/429 */
    const char *response;     /* the kept answer's body */
    int64_t created_ms;       /* the key's first use */
    const char *left_s;       /* seconds its claim still runs, as text */
} ingest_store_claim_t;

/* Claims key for the account's request on route: a key never used,
 * released after a 5xx/429 (status 0), or held by a request whose lease
 * ran out (its ingest died), with the same route and body_hash, is claimed
 * for lease_ms; otherwise *out describes who has it. */
ob_rc_t ingest_store_idem_claim(PGconn *conn, ob_pool_t *pool, const char *account_id,
                                const char *key, const char *route, const char *body_hash,
                                long long lease_ms, ingest_store_claim_t *out,
                                ob_err_t *err) OB_MUSTCHECK;
/* Keeps the answer (status, body) of the key's request. */
ob_rc_t ingest_store_idem_keep(PGconn *conn, const char *account_id, const char *key,
                               unsigned status, const char *body, ob_err_t *err) OB_MUSTCHECK;
/* Leaves the key claimable again (status 0) with its first time. */
ob_rc_t ingest_store_idem_release(PGconn *conn, const char *account_id, const char *key,
                                  ob_err_t *err) OB_MUSTCHECK;
/* Extends by lease_ms the claims of the n (account, key) pairs still
 * without an answer (one UPDATE). */
ob_rc_t ingest_store_idem_renew(PGconn *conn, const char *const *accounts, const char *const *keys,
                                size_t n, long long lease_ms, ob_err_t *err) OB_MUSTCHECK;

/* Uploads. A rejected row, as kept for the report. */
typedef struct {
    size_t row, line; /* where */
    char *field;      /* call field, or NULL for the whole row */
    char *code;       /* stable code */
    char *message;    /* human detail */
} ingest_row_error_t;

/* What an upload came to. */
typedef struct {
    const char *upload_id; /* the upload */
    const char *status;    /* "completed" or "failed" */
    const char *detail;    /* why it failed, or NULL */
    const char *file_name; /* the multipart file name, or NULL */
    size_t rows;           /* rows read */
    size_t queued;         /* rows queued */
    size_t rejected;       /* rows rejected */
} ingest_upload_outcome_t;

ob_rc_t ingest_store_create_upload(PGconn *conn, const char *upload_id, const char *account_id,
                                   const char *deployment_id, bool dry_run,
                                   ob_err_t *err) OB_MUSTCHECK;
/* Stores the outcome and the n rejected rows, in one transaction. */
ob_rc_t ingest_store_finish_upload(PGconn *conn, const ingest_upload_outcome_t *o,
                                   const ingest_row_error_t *errors, size_t n,
                                   ob_err_t *err) OB_MUSTCHECK;
/* Calls row(arg, cells) for each rejected row of the account's upload in
 * file order: row, line, field, code, message as text ("" for none);
 * *found false when the account has no such upload. */
ob_rc_t ingest_store_upload_errors(PGconn *conn, const char *upload_id, const char *account_id,
                                   void (*row)(void *arg, const char *const cells[5]), void *arg,
                                   bool *found, ob_err_t *err) OB_MUSTCHECK;

/* Applications and deployments as resources: one table each, soft-deleted. */
typedef enum {
    INGEST_RES_APPLICATIONS, /* applications */
    INGEST_RES_DEPLOYMENTS,  /* deployments */
} ingest_res_t;

/* Inserts a row with id and account_id and the n columns cols (the
 * caller's field tables name them; never client text) set to vals. */
ob_rc_t ingest_store_insert(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, const char *const *cols,
                            const char *const *vals, int n, ob_err_t *err) OB_MUSTCHECK;
/* Sets the n columns of the account's row id, unless deleted. */
ob_rc_t ingest_store_update(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, const char *const *cols,
                            const char *const *vals, int n, ob_err_t *err) OB_MUSTCHECK;
/* Soft-deletes the account's row id (a deployment is deactivated too);
 * *deleted false when there was none to delete. */
ob_rc_t ingest_store_delete(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *id,
                            const char *account_id, bool *deleted, ob_err_t *err) OB_MUSTCHECK;
/* One page of the account's rows, oldest first, after cursor (NULL: from
 * the start); for deployments, filter (NULL: none) is an application_id. */
ob_rc_t ingest_store_list(PGconn *conn, ob_pool_t *pool, ingest_res_t res, const char *account_id,
                          const char *cursor, const char *limit, const char *filter,
                          ingest_page_t *page, ob_err_t *err) OB_MUSTCHECK;
/* Whether the account's application exists (not deleted). */
ob_rc_t ingest_store_application_exists(PGconn *conn, const char *application_id,
                                        const char *account_id, bool *exists,
                                        ob_err_t *err) OB_MUSTCHECK;
/* Whether the account's application has deployments not deleted. */
ob_rc_t ingest_store_application_used(PGconn *conn, const char *application_id,
                                      const char *account_id, bool *used,
                                      ob_err_t *err) OB_MUSTCHECK;

#endif
