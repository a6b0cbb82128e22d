/*
 * Plum-compatible routes (ingest_plum.c): Plum's form fields translated to
 * native call fields, native answers rewritten as Plum's, and bulk_queue's
 * part of an upload. Handlers run on the request's HTTP worker thread; the
 * translation functions are pure (tested and fuzzed apart from HTTP).
 */
#ifndef INGEST_PLUM_H
#define INGEST_PLUM_H

#include "ingest.h"

/* Route handlers; {app}/{dep} come as param[0..1].
 * They answer as Plum documents: 200 with a Link header for a queued call,
 * errors as {"error": "..."} (bad data 400, a deleted deployment 409). */
void ingest_plum_queue(ingest_call_t *c);
void ingest_plum_cancel(ingest_call_t *c);
void ingest_plum_get_call(ingest_call_t *c);

/* Checks that the deployment c->param[1] belongs to application c->param[0]
 * and neither was deleted (else the problem is set: 404, or 409 as Plum
 * answers for a deleted one), notes what the Plum routes need of it
 * (queued_via, pci_allowed), and moves it to param[0], where the native
 * handlers expect it. Borrows c->conn. */
bool ingest_plum_deployment(ingest_call_t *c);

/* bulk_queue's part of an upload (ingest_uploads.c calls these): the fields
 * beside the file and the file itself, held until the body is over (a Plum
 * client may send the fields after the file, and every row needs them),
 * and the ids of the calls queued. One request's; not thread-safe but for
 * ingest_plum_bulk_queued, which the caller serialises. */
typedef struct ingest_plum_bulk ingest_plum_bulk_t;
/* For the Plum route's request c (its deployment's is_pci permission); never
 * NULL; the caller frees with ingest_plum_bulk_free. */
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

#endif
