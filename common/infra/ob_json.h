/*
 * JSON text from outside, parsed strictly: what cJSON would accept silently
 * but store wrongly is refused. One module for every reader of such text:
 * the ingest's request bodies and batch elements, the Plum routes, the
 * values of form fields and CSV cells, and the Kafka messages (proto).
 */
#ifndef OB_JSON_H
#define OB_JSON_H

#include "ob_pool.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Why a text was refused. */
typedef enum {
    OB_JSON_OK,         /* parsed */
    OB_JSON_SYNTAX,     /* not one JSON value */
    OB_JSON_NOT_UTF8,   /* bytes that are not UTF-8 (RFC 8259 text) */
    OB_JSON_NUL_ESCAPE, /* a \u0000 escape: the string would end there */
    OB_JSON_DUPLICATE,  /* an object names a member twice: which value counts would be a guess */
} ob_json_fault_t;

/* Parses text[0..len) as one JSON value; the caller frees it with
 * cJSON_Delete. Returns NULL with *fault saying why (and OB_JSON_OK on
 * success). With end NULL the whole of text is checked (cJSON leaves what
 * follows the value unread); with end non-NULL, text may go on after the
 * value, only the value is checked, and *end is where it stopped (on
 * OB_JSON_SYNTAX, where parsing failed). Pure; safe from any thread. */
cJSON *ob_json_parse(const char *text, size_t len, const char **end, ob_json_fault_t *fault);

/* A client-facing sentence for fault ("the body is not valid JSON", ...);
 * NULL for OB_JSON_OK. Static text. */
const char *ob_json_fault_text(ob_json_fault_t fault);

/* The name of the first member of object, at any depth, whose name or
 * string value is not UTF-8 text without NUL ("call_parameters.name";
 * pool-owned), or NULL: for values that did not come from JSON text checked
 * as a whole (form fields, CSV cells, call_parameters given as text). */
const char *ob_json_bad_text_field(ob_pool_t *pool, const cJSON *object);

#endif
