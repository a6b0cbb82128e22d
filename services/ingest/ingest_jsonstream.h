/*
 * Streaming splitter for batch call requests: takes a body that is a JSON
 * array of values or NDJSON, in chunks of any size, and hands each element's
 * raw JSON text to a callback, holding at most one element in memory. It
 * finds boundaries only (strings, escapes, nesting); the caller parses.
 */
#ifndef INGEST_JSONSTREAM_H
#define INGEST_JSONSTREAM_H

#include "ob_common.h"

#define INGEST_JSONSTREAM_DEPTH_MAX 64 /* nesting levels allowed inside one element */

typedef enum {
    INGEST_JSONSTREAM_AUTO,   /* the first byte decides: '[' array, '{' NDJSON */
    INGEST_JSONSTREAM_ARRAY,  /* one JSON array of values */
    INGEST_JSONSTREAM_NDJSON, /* one JSON value per line */
} ingest_jsonstream_mode_t;

typedef struct ingest_jsonstream ingest_jsonstream_t;

/*
 * One element: its 1-based index among the elements, the 1-based line where
 * it starts, and its raw text, len bytes plus a NUL. The text belongs to the
 * splitter and is valid only during the call. It is one JSON value only when
 * the client sent one: parse it with cJSON_ParseWithOpts(json, &end, 1) so
 * that text after the value is refused, and refuse strlen(json) != len (a NUL
 * byte, never valid JSON). cJSON accepts raw control characters such as a
 * newline inside strings, which an array element can hold. Return OB_OK to
 * go on; any other code stops the stream, and feed or finish returns it with
 * the message put in err (err is never NULL; left empty, a message naming
 * the element is filled in).
 */
typedef ob_rc_t (*ingest_jsonstream_fn)(void *opaque, size_t index, size_t line, const char *json,
                                        size_t len, ob_err_t *err);

/*
 * Creates a splitter. Rules common to both formats:
 * - a UTF-8 BOM at the very start is skipped, however the input is chunked;
 * - lines end at LF (CR is whitespace, so CRLF works);
 * - an element is at most max_element bytes (> 0), not counting the
 *   whitespace around it, and nests at most INGEST_JSONSTREAM_DEPTH_MAX levels.
 * Array: '[' then values separated by ',' then ']', with JSON whitespace
 * anywhere between; an element is exactly one value's text (an object, an
 * array, a string, or a bare token such as 42, true or a typo like tru,
 * which ends at whitespace or at one of , : [ ] { } "). Values of any kind
 * are delivered; "[]" delivers none. Structure is strict: a missing or extra
 * ',', a ']' that does not match its '[', or anything after the final ']' but
 * whitespace stops the stream.
 * NDJSON: every line that is not blank is one element, its text the line
 * without leading and trailing whitespace. A line that is not one valid
 * value ("42", "{\"a\":", "{} {}") is still delivered, for the caller to
 * refuse as one bad row, since the next line starts afresh. So a raw newline
 * inside a string (not allowed in JSON) ends the element there: the string's
 * two parts arrive as two bad elements rather than desynchronising the rest
 * of the body. Only the last line can stop the stream, when the body ends
 * inside a string or an open '{' or '[' on it without a final newline: that
 * is a truncated body, not a bad row. An empty body has no elements.
 * AUTO: the first byte that is not whitespace picks array ('[') or NDJSON
 * ('{'); an empty or other body is refused.
 * Never returns NULL (out of memory aborts). Not thread-safe; free with
 * ingest_jsonstream_free.
 */
ingest_jsonstream_t *ingest_jsonstream_new(ingest_jsonstream_mode_t mode, size_t max_element,
                                           ingest_jsonstream_fn fn, void *opaque);

/*
 * Splits the next len bytes of the body, calling back for every element
 * they complete; chunk boundaries may fall anywhere, even inside an escape or
 * a UTF-8 character. Does no I/O; must not be called from the callback.
 * Returns OB_OK; OB_EINVAL for a structure error, an element larger than
 * max_element or nested too deep, err naming the line (and the element when
 * there is one); or a callback's code. After a failure the splitter only
 * returns that failure again, from feed and finish alike.
 */
ob_rc_t ingest_jsonstream_feed(ingest_jsonstream_t *s, const char *data, size_t len,
                               ob_err_t *err) OB_MUSTCHECK;

/*
 * Ends the body: delivers a last NDJSON line that has no final newline.
 * Returns what ingest_jsonstream_feed returns, or OB_EINVAL when the body ends
 * inside an element or before the array's ']', or is empty (array and
 * AUTO). Call once; feeding or finishing again after a success is a
 * programmer error.
 */
ob_rc_t ingest_jsonstream_finish(ingest_jsonstream_t *s, ob_err_t *err) OB_MUSTCHECK;

/* Frees the splitter and the element it holds; NULL is fine. */
void ingest_jsonstream_free(ingest_jsonstream_t *s);

#endif
