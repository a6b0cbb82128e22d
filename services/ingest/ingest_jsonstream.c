/*
 * Batch call bodies split into elements without parsing them: one pass over
 * the bytes tracks strings, escapes and nesting, which is all it takes to
 * find where a JSON value ends. State lives in the struct between bytes, so
 * a chunk may end anywhere; only the element being read is buffered.
 */
#include "ingest_jsonstream.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define BUF_START 256 /* first allocation for an element, grown by doubling */

static const char msg_auto[] =
    "the body must be a JSON array of calls or NDJSON (one call object per line)";
static const char msg_array[] = "the body must be a JSON array of calls";

typedef enum {
    PH_BOM,       /* at the very start, matching a UTF-8 BOM */
    PH_START,     /* before the first byte that is not whitespace (AUTO, ARRAY) */
    PH_ARR_FIRST, /* after '[': a value or ']' */
    PH_ARR_NEXT,  /* after ',': a value */
    PH_ARR_ELEM,  /* inside an array element */
    PH_ARR_AFTER, /* after an element: ',' or ']' */
    PH_ARR_DONE,  /* after the final ']': whitespace only */
    PH_LINES,     /* NDJSON, between elements */
    PH_LINE_ELEM, /* NDJSON, inside a line's element */
} phase_t;

typedef enum {
    KIND_CONTAINER, /* an object or array: ends where its nesting returns to 0 */
    KIND_STRING,    /* ends at its closing quote */
    KIND_TOKEN,     /* a bare number, literal or typo: ends at a delimiter */
} kind_t;

struct ingest_jsonstream {
    ingest_jsonstream_mode_t mode; /* as created; AUTO stays AUTO, phase tells what was picked */
    size_t max;                    /* bytes allowed in one element */
    ingest_jsonstream_fn fn;       /* the element callback */
    void *opaque;                  /* passed to fn */
    phase_t phase;                 /* where in the body the next byte is */
    unsigned bom_seen;             /* leading bytes that matched the BOM so far */
    size_t line;                   /* 1-based line of the next byte */
    size_t index;                  /* elements delivered */
    char *buf;                     /* the element being read, kept from element to element */
    size_t len;                    /* bytes of buf in use */
    size_t cap;                    /* bytes allocated, at most max + 1 */
    size_t content_len;            /* len up to the element's last byte that is not whitespace */
    size_t elem_line;              /* line where the element starts */
    kind_t kind;                   /* what ends an array element */
    unsigned depth;                /* '{' and '[' open in the element */
    uint64_t brackets;             /* bit d-1 is set when level d was opened by '[' */
    bool in_string;                /* inside a string of the element */
    bool escape;                   /* the last byte in the string was an unescaped '\' */
    bool in_callback;              /* fn is running; feeding from it is a programmer error */
    bool finished;                 /* ingest_jsonstream_finish was called */
    ob_rc_t rc;                    /* first failure; every later call returns it */
    ob_err_t fail;                 /* its message, also handed to fn */
};

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

static void fail(ingest_jsonstream_t *s, const char *fmt, ...) OB_PRINTF(2, 3);

static void fail(ingest_jsonstream_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail.msg, sizeof(s->fail.msg), fmt, ap);
    va_end(ap);
    s->rc = OB_EINVAL;
}

/* JSON's whitespace (RFC 8259): nothing else may stand between values. */
static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Bytes that end a bare token; anything else, even a NUL, is part of it. */
static bool ends_token(unsigned char c)
{
    switch (c) {
    case ',':
    case ':':
    case '[':
    case ']':
    case '{':
    case '}':
    case '"':
        return true;
    default:
        return is_ws(c);
    }
}

/* A byte that begins a value, so that finding it after a value means the
 * ',' between them was forgotten rather than that the text is garbage. */
static bool starts_value(unsigned char c)
{
    return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') ||
           (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A byte as messages show it: 'x' when printable, else its hex value. */
static const char *shown(unsigned char c, char buf[16])
{
    if (c > 0x20 && c < 0x7F)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static phase_t first_phase(const ingest_jsonstream_t *s)
{
    return s->mode == INGEST_JSONSTREAM_NDJSON ? PH_LINES : PH_START;
}

static void start_element(ingest_jsonstream_t *s, kind_t kind)
{
    s->len = 0;
    s->content_len = 0;
    s->elem_line = s->line;
    s->kind = kind;
    s->depth = 0;
    s->brackets = 0;
    s->in_string = false;
    s->escape = false;
}

/* Stores one byte of the element. Whitespace is what NDJSON trims at the end
 * of a line, so a run of it may pass the limit without being stored: the
 * element is too large only if something other than whitespace follows. An
 * array element always ends on a byte that is not whitespace, so the same
 * rule is exact there too. */
static void append(ingest_jsonstream_t *s, unsigned char c)
{
    if (s->len == s->max) {
        if (!is_ws(c))
            fail(s, "element %zu (line %zu) is larger than %zu bytes", s->index + 1, s->elem_line,
                 s->max);
        return;
    }
    if (s->len + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : BUF_START;
        if (cap > s->max + 1)
            cap = s->max + 1;
        s->buf = ob_xrealloc(s->buf, cap);
        s->cap = cap;
    }
    s->buf[s->len++] = (char)c;
    if (!is_ws(c))
        s->content_len = s->len;
}

/* Follows strings and nesting. strict (array mode) refuses a closing bracket
 * of the wrong kind, because the element's end could not be found after it;
 * an NDJSON line ends at its newline whatever it holds, so there a wrong or
 * extra closer is only the caller's parse error. */
static void track(ingest_jsonstream_t *s, unsigned char c, bool strict)
{
    uint64_t bit;
    if (s->in_string) {
        if (s->escape)
            s->escape = false;
        else if (c == '\\')
            s->escape = true;
        else if (c == '"')
            s->in_string = false;
        return;
    }
    switch (c) {
    case '"':
        s->in_string = true;
        break;
    case '{':
    case '[':
        if (s->depth == INGEST_JSONSTREAM_DEPTH_MAX) {
            fail(s, "element %zu (line %zu) nests deeper than %d levels", s->index + 1,
                 s->elem_line, INGEST_JSONSTREAM_DEPTH_MAX);
            break;
        }
        bit = (uint64_t)1 << s->depth;
        s->brackets = c == '[' ? s->brackets | bit : s->brackets & ~bit;
        s->depth++;
        break;
    case '}':
    case ']':
        if (!s->depth)
            break;
        s->depth--;
        bit = (uint64_t)1 << s->depth;
        if (strict && ((s->brackets & bit) != 0) != (c == ']'))
            fail(s, "line %zu: in element %zu (line %zu), '%c' closes a '%c'", s->line,
                 s->index + 1, s->elem_line, c, c == ']' ? '{' : '[');
        break;
    default:
        break;
    }
}

/* The closer the innermost open level needs. */
static char missing_closer(const ingest_jsonstream_t *s)
{
    return s->brackets & ((uint64_t)1 << (s->depth - 1)) ? ']' : '}';
}

static void deliver(ingest_jsonstream_t *s)
{
    ob_rc_t rc;
    s->len = s->content_len;
    s->buf[s->len] = '\0';
    s->index++;
    s->fail.msg[0] = '\0';
    s->in_callback = true;
    rc = s->fn(s->opaque, s->index, s->elem_line, s->buf, s->len, &s->fail);
    s->in_callback = false;
    if (rc != OB_OK) {
        s->rc = rc;
        if (!s->fail.msg[0])
            ob_err_set(&s->fail, "element %zu (line %zu): the body was stopped at this element",
                       s->index, s->elem_line);
    }
}

static void array_after(ingest_jsonstream_t *s, unsigned char c)
{
    char b[16];
    if (is_ws(c))
        return;
    if (c == ',')
        s->phase = PH_ARR_NEXT;
    else if (c == ']')
        s->phase = PH_ARR_DONE;
    else if (starts_value(c))
        fail(s, "line %zu: a ',' is missing after element %zu", s->line, s->index);
    else
        fail(s, "line %zu: unexpected %s after element %zu (a ',' or ']' should follow)", s->line,
             shown(c, b), s->index);
}

static void array_element(ingest_jsonstream_t *s, unsigned char c)
{
    if (s->kind == KIND_TOKEN && ends_token(c)) {
        deliver(s);
        s->phase = PH_ARR_AFTER;
        if (s->rc == OB_OK)
            array_after(s, c);
        return;
    }
    append(s, c);
    if (s->rc == OB_OK)
        track(s, c, true);
    if (s->rc == OB_OK && s->kind != KIND_TOKEN && !s->depth && !s->in_string) {
        deliver(s);
        s->phase = PH_ARR_AFTER;
    }
}

/* Where an array element should start (after '[' or ','). */
static void array_value(ingest_jsonstream_t *s, unsigned char c)
{
    char b[16];
    if (is_ws(c))
        return;
    if (c == ']' && s->phase == PH_ARR_FIRST) {
        s->phase = PH_ARR_DONE;
    } else if ((c == ']' || c == ',') && s->phase == PH_ARR_NEXT) {
        fail(s, "line %zu: a value is missing after the ',' that follows element %zu", s->line,
             s->index);
    } else if (c == ',') {
        fail(s, "line %zu: a value is missing before the first ','", s->line);
    } else if (c == '}' || c == ':') {
        fail(s, "line %zu: unexpected %s where element %zu should start", s->line, shown(c, b),
             s->index + 1);
    } else {
        start_element(s, c == '{' || c == '[' ? KIND_CONTAINER
                         : c == '"'           ? KIND_STRING
                                              : KIND_TOKEN);
        s->phase = PH_ARR_ELEM;
        array_element(s, c);
    }
}

static void line_element(ingest_jsonstream_t *s, unsigned char c)
{
    if (c == '\n') {
        deliver(s);
        s->phase = PH_LINES;
        return;
    }
    append(s, c);
    if (s->rc == OB_OK)
        track(s, c, false);
}

/* One byte of the body after the BOM; the line count moves after it. */
static void step(ingest_jsonstream_t *s, unsigned char c)
{
    char b[16];
    switch (s->phase) {
    case PH_BOM:
        OB_ASSERT(!"the BOM is handled before step");
        break;
    case PH_START:
        if (is_ws(c))
            break;
        if (c == '[') {
            s->phase = PH_ARR_FIRST;
        } else if (c == '{' && s->mode == INGEST_JSONSTREAM_AUTO) {
            s->phase = PH_LINES;
            step(s, c);
        } else {
            fail(s, "line %zu: %s%s", s->line,
                 s->mode == INGEST_JSONSTREAM_AUTO ? msg_auto : msg_array,
                 s->mode == INGEST_JSONSTREAM_AUTO ? "" : ", starting with '['");
        }
        break;
    case PH_ARR_FIRST:
    case PH_ARR_NEXT:
        array_value(s, c);
        break;
    case PH_ARR_ELEM:
        array_element(s, c);
        break;
    case PH_ARR_AFTER:
        array_after(s, c);
        break;
    case PH_ARR_DONE:
        if (!is_ws(c))
            fail(s, "line %zu: unexpected %s after the closing ']' of the array", s->line,
                 shown(c, b));
        break;
    case PH_LINES:
        if (is_ws(c))
            break;
        start_element(s, KIND_CONTAINER);
        s->phase = PH_LINE_ELEM;
        line_element(s, c);
        break;
    case PH_LINE_ELEM:
        line_element(s, c);
        break;
    }
}

/* The body did not start with a whole BOM: the bytes held back were data. */
static void end_bom(ingest_jsonstream_t *s)
{
    s->phase = first_phase(s);
    for (unsigned i = 0; i < s->bom_seen && s->rc == OB_OK; i++)
        step(s, utf8_bom[i]);
}

static void feed_byte(ingest_jsonstream_t *s, unsigned char c)
{
    if (s->phase == PH_BOM) {
        if (c == utf8_bom[s->bom_seen]) {
            if (++s->bom_seen == sizeof(utf8_bom))
                s->phase = first_phase(s);
            return;
        }
        end_bom(s);
        if (s->rc != OB_OK)
            return;
    }
    step(s, c);
    if (c == '\n')
        s->line++;
}

static ob_rc_t result(const ingest_jsonstream_t *s, ob_err_t *err)
{
    if (s->rc != OB_OK)
        ob_err_set(err, "%s", s->fail.msg);
    return s->rc;
}

ingest_jsonstream_t *ingest_jsonstream_new(ingest_jsonstream_mode_t mode, size_t max_element,
                                           ingest_jsonstream_fn fn, void *opaque)
{
    OB_ASSERT(fn != NULL);
    OB_ASSERT(max_element > 0 && max_element < SIZE_MAX);
    OB_ASSERT(mode == INGEST_JSONSTREAM_AUTO || mode == INGEST_JSONSTREAM_ARRAY ||
              mode == INGEST_JSONSTREAM_NDJSON);
    ingest_jsonstream_t *s = ob_xcalloc(1, sizeof(*s));
    s->mode = mode;
    s->max = max_element;
    s->fn = fn;
    s->opaque = opaque;
    s->phase = PH_BOM;
    s->line = 1;
    s->rc = OB_OK;
    return s;
}

ob_rc_t ingest_jsonstream_feed(ingest_jsonstream_t *s, const char *data, size_t len, ob_err_t *err)
{
    const unsigned char *p = (const unsigned char *)data;
    if (s->rc == OB_OK) {
        OB_ASSERT(!s->finished && !s->in_callback);
        for (size_t i = 0; i < len && s->rc == OB_OK; i++)
            feed_byte(s, p[i]);
    }
    return result(s, err);
}

ob_rc_t ingest_jsonstream_finish(ingest_jsonstream_t *s, ob_err_t *err)
{
    if (s->rc != OB_OK)
        goto out;
    OB_ASSERT(!s->finished && !s->in_callback);
    s->finished = true;
    if (s->phase == PH_BOM)
        end_bom(s);
    if (s->rc != OB_OK)
        goto out;
    switch (s->phase) {
    case PH_BOM:
    case PH_START:
        fail(s, "the body is empty: it must be a JSON array of calls%s",
             s->mode == INGEST_JSONSTREAM_AUTO ? " or NDJSON (one call object per line)" : "");
        break;
    case PH_ARR_ELEM:
    case PH_LINE_ELEM:
        if (s->in_string)
            fail(s, "the body ends inside element %zu (line %zu): a string is not closed",
                 s->index + 1, s->elem_line);
        else if (s->depth)
            fail(s, "the body ends inside element %zu (line %zu): a '%c' is missing", s->index + 1,
                 s->elem_line, missing_closer(s));
        else if (s->phase == PH_LINE_ELEM)
            deliver(s);
        else /* a bare token: complete, but the array is not */
            fail(s, "line %zu: the body ends before the closing ']' of the array", s->line);
        break;
    case PH_ARR_FIRST:
    case PH_ARR_NEXT:
    case PH_ARR_AFTER:
        fail(s, "line %zu: the body ends before the closing ']' of the array", s->line);
        break;
    case PH_ARR_DONE:
    case PH_LINES:
        break;
    }
out:
    return result(s, err);
}

void ingest_jsonstream_free(ingest_jsonstream_t *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}
