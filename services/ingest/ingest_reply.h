/*
 * How handlers answer (ingest_reply.c): problem details for validation and
 * database failures, a resource read by id, a page of a list, and the
 * checks on a request that every JSON route makes. Called on the request's
 * HTTP worker thread; every string handed back is the request pool's.
 */
#ifndef INGEST_REPLY_H
#define INGEST_REPLY_H

#include "ingest.h"
#include "ingest_store.h"

/* Appends {field, code, message} to a problem's errors array (copied). */
void ingest_add_error(cJSON *errors, const char *field, const char *code, const char *msg);

/* Sets a 503 problem with Retry-After for a failed Postgres operation and
 * logs err's detail (the client is not shown it). */
void ingest_database_problem(ob_http_req_t *req, const ob_err_t *err);

/* Answers status with the stored view of id (the request's account's
 * own); an invalid or unknown id (or another account's) is a 404
 * "<what>_not_found" saying "no <what> <id><hint>" (hint may be NULL), a
 * database failure a 503. Borrows c->conn. */
void ingest_reply_owned(ingest_call_t *c, ingest_view_t view, const char *id, unsigned status,
                        const char *what, const char *hint);

/* Answers 200 with {"<name>": page->items, "next_cursor": ...}: a full page
 * (limit items) may have a next one, named by its last id; a short page is
 * the last (null). */
void ingest_reply_page(ob_http_req_t *req, const char *name, const ingest_page_t *page, long limit);

/* Reads a list's paging query: cursor (a previous page's next_cursor, a
 * UUID, or NULL) and limit (1-1000, default_limit when absent, as text for
 * a query parameter); appends a problem to errors for each bad one. */
void ingest_page_query(ob_http_req_t *req, long default_limit, const char **cursor, char limit[16],
                       cJSON *errors);

/* True when the request body is declared as JSON (or undeclared); otherwise
 * sets a 415 problem. */
bool ingest_require_json(ob_http_req_t *req);

/* The request's body as a JSON object (the caller deletes it), parsed
 * strictly (ob_json_parse); an empty body is {} when empty_is_object.
 * NULL with a 415 or 400 problem set naming what is wrong. */
cJSON *ingest_object_body(ob_http_req_t *req, bool empty_is_object);

#endif
