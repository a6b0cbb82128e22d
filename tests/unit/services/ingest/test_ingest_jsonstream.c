/* Table-driven tests of the batch body splitter (services/ingest/ingest_jsonstream.c). */
#include "ingest_jsonstream.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers: what a splitter delivered, as text ---- */

/* Elements as "index@line:text" lines; bytes outside printable ASCII are
 * written as \n, \r, \t or \xhh. */
typedef struct {
    FILE *f;     /* open_memstream over text */
    char *text;  /* what was delivered */
    size_t size; /* strlen(text) */
} collect_t;

static ob_rc_t collect(void *opaque, size_t index, size_t line, const char *json, size_t len,
                       ob_err_t *err)
{
    FILE *f = ((collect_t *)opaque)->f;
    (void)err;
    cr_assert_eq(json[len], '\0', "the text is NUL-terminated");
    fprintf(f, "%zu@%zu:", index, line);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)json[k];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('\n', f);
    return OB_OK;
}

/* Splits in[0..len) fed in chunks of `chunk` bytes; *out is the delivered
 * text (caller frees). After a failure, checks that feeding and finishing
 * again give the same code and message. */
static ob_rc_t split_chunked(ingest_jsonstream_mode_t mode, size_t max, const char *in, size_t len,
                             size_t chunk, char **out, ob_err_t *err)
{
    collect_t c = {0};
    ob_err_t again = {{0}};
    c.f = open_memstream(&c.text, &c.size);
    ingest_jsonstream_t *s = ingest_jsonstream_new(mode, max, collect, &c);
    ob_rc_t rc = OB_OK;
    for (size_t off = 0; off < len && rc == OB_OK; off += chunk)
        rc = ingest_jsonstream_feed(s, in + off, len - off < chunk ? len - off : chunk, err);
    if (rc == OB_OK)
        rc = ingest_jsonstream_finish(s, err);
    if (rc != OB_OK) {
        cr_expect_eq(ingest_jsonstream_feed(s, "{}\n", 3, &again), rc,
                     "a failed splitter stays so");
        cr_expect_str_eq(again.msg, err->msg);
        memset(&again, 0, sizeof(again));
        cr_expect_eq(ingest_jsonstream_finish(s, &again), rc, "a failed splitter stays so");
        cr_expect_str_eq(again.msg, err->msg);
    }
    ingest_jsonstream_free(s);
    fclose(c.f);
    *out = c.text;
    return rc;
}

/* ---- the splitter, fed in every chunk size ---- */

#define A INGEST_JSONSTREAM_AUTO
#define R INGEST_JSONSTREAM_ARRAY
#define N INGEST_JSONSTREAM_NDJSON

typedef struct {
    const char *name;              /* what the case shows */
    ingest_jsonstream_mode_t mode; /* as created */
    size_t max;                    /* max_element; 0 for 1024 */
    const char *input;             /* the body */
    size_t len;                    /* its length when it holds a NUL, else 0 */
    const char *elements;          /* what is delivered (also before an error) */
    const char *error;             /* the exact error, or NULL for OB_OK */
} split_case_t;

static split_case_t split_cases[] = {
    /* arrays */
    {"array of objects", A, 0, "[{\"a\":1},{\"b\":2}]", 0, "1@1:{\"a\":1}\n2@1:{\"b\":2}\n", NULL},
    {"pretty array with CRLF", A, 0,
     "[\r\n  {\r\n    \"a\": 1\r\n  },\r\n  {\"b\": [1, 2]}\r\n]\r\n", 0,
     "1@2:{\\r\\n    \"a\": 1\\r\\n  }\n2@5:{\"b\": [1, 2]}\n", NULL},
    {"any values", A, 0, "[1, \"x\", {}, [], true, null, -1.5e3,[[]]]", 0,
     "1@1:1\n2@1:\"x\"\n3@1:{}\n4@1:[]\n5@1:true\n6@1:null\n7@1:-1.5e3\n8@1:[[]]\n", NULL},
    {"empty array", A, 0, "[]", 0, "", NULL},
    {"empty array with whitespace", A, 0, " \t[ \r\n ]\n\n", 0, "", NULL},
    {"whitespace around elements", A, 0, "\t[\n\n {} \n ,\n\n{ }\t]\n\n", 0, "1@3:{}\n2@6:{ }\n",
     NULL},
    {"BOM", A, 0, "\xEF\xBB\xBF[{}]", 0, "1@1:{}\n", NULL},
    {"BOM then whitespace", R, 0, "\xEF\xBB\xBF\r\n[{}]", 0, "1@2:{}\n", NULL},
    {"explicit array mode", R, 0, "[{\"a\":1}]", 0, "1@1:{\"a\":1}\n", NULL},
    {"strings holding ] , } { [ \\\" \\\\", A, 0, "[{\"a\":\"],}{[\\\"\\\\\"},\"]\",\",\"]", 0,
     "1@1:{\"a\":\"],}{[\\\"\\\\\"}\n2@1:\"]\"\n3@1:\",\"\n", NULL},
    {"string ending in an escaped backslash", A, 0, "[\"a\\\\\",\"\\\\\"]", 0,
     "1@1:\"a\\\\\"\n2@1:\"\\\\\"\n", NULL},
    {"escaped quote then a real one", A, 0, "[{\"a\":\"\\\"}\"}]", 0, "1@1:{\"a\":\"\\\"}\"}\n",
     NULL},
    {"unicode escapes and UTF-8", A, 0,
     "[{\"n\":\"\\u00e9\\ud83d\\ude00\",\"m\":\"\xC3\xA9\xF0\x9F\x98\x80\"}]", 0,
     "1@1:{\"n\":\"\\u00e9\\ud83d\\ude00\",\"m\":\"\\xc3\\xa9\\xf0\\x9f\\x98\\x80\"}\n", NULL},
    {"nested", A, 0, "[{\"a\":{\"b\":[{\"c\":[[]]}]}},[[1],{\"d\":[2]}]]", 0,
     "1@1:{\"a\":{\"b\":[{\"c\":[[]]}]}}\n2@1:[[1],{\"d\":[2]}]\n", NULL},
    {"bare tokens end at delimiters", A, 0, "[12,true ,null\n,tru]", 0,
     "1@1:12\n2@1:true\n3@1:null\n4@2:tru\n", NULL},
    {"newline inside a string is passed on", A, 0, "[\"a\nb\",{}]", 0, "1@1:\"a\\nb\"\n2@2:{}\n",
     NULL},
    {"NUL inside a string is passed on", A, 0, "[\"a\0b\"]", 7, "1@1:\"a\\x00b\"\n", NULL},
    {"element of exactly max bytes", A, 8, "[{\"a\":12}, \"123456\"]", 0,
     "1@1:{\"a\":12}\n2@1:\"123456\"\n", NULL},
    /* array structure errors */
    {"not an array", R, 0, "{\"a\":1}", 0, "",
     "line 1: the body must be a JSON array of calls, starting with '['"},
    {"neither array nor NDJSON", A, 0, "\n  x[]", 0, "",
     "line 2: the body must be a JSON array of calls or NDJSON (one call object per line)"},
    {"a BOM prefix is data", A, 0, "\xEF\xBB[]", 0, "",
     "line 1: the body must be a JSON array of calls or NDJSON (one call object per line)"},
    {"empty body", A, 0, "", 0, "",
     "the body is empty: it must be a JSON array of calls or NDJSON (one call object per line)"},
    {"BOM and whitespace only", A, 0, "\xEF\xBB\xBF \r\n\t", 0, "",
     "the body is empty: it must be a JSON array of calls or NDJSON (one call object per line)"},
    {"empty body, array mode", R, 0, " \n", 0, "",
     "the body is empty: it must be a JSON array of calls"},
    {"partial BOM only", A, 0, "\xEF\xBB", 0, "",
     "line 1: the body must be a JSON array of calls or NDJSON (one call object per line)"},
    {"extra closing brace", A, 0, "[{}}{}]", 0, "1@1:{}\n",
     "line 1: unexpected '}' after element 1 (a ',' or ']' should follow)"},
    {"missing comma", A, 0, "[{},\n{} {}]", 0, "1@1:{}\n2@2:{}\n",
     "line 2: a ',' is missing after element 2"},
    {"missing comma between strings", A, 0, "[\"a\" \"b\"]", 0, "1@1:\"a\"\n",
     "line 1: a ',' is missing after element 1"},
    {"missing comma after a token", A, 0, "[1 2]", 0, "1@1:1\n",
     "line 1: a ',' is missing after element 1"},
    {"colon ends a token", A, 0, "[a:1]", 0, "1@1:a\n",
     "line 1: unexpected ':' after element 1 (a ',' or ']' should follow)"},
    {"colon after an element", A, 0, "[{}:1]", 0, "1@1:{}\n",
     "line 1: unexpected ':' after element 1 (a ',' or ']' should follow)"},
    {"control byte after an element", A, 0, "[{}\x01]", 0, "1@1:{}\n",
     "line 1: unexpected byte 0x01 after element 1 (a ',' or ']' should follow)"},
    {"trailing comma", A, 0, "[{},\n]", 0, "1@1:{}\n",
     "line 2: a value is missing after the ',' that follows element 1"},
    {"double comma", A, 0, "[{},,{}]", 0, "1@1:{}\n",
     "line 1: a value is missing after the ',' that follows element 1"},
    {"leading comma", A, 0, "[ ,{}]", 0, "", "line 1: a value is missing before the first ','"},
    {"closing brace where a value starts", A, 0, "[{},}]", 0, "1@1:{}\n",
     "line 1: unexpected '}' where element 2 should start"},
    {"wrong closing bracket", A, 0, "[{},\n{\"a\":[1,2}]", 0, "1@1:{}\n",
     "line 2: in element 2 (line 2), '}' closes a '['"},
    {"wrong closing brace", A, 0, "[[{]]", 0, "",
     "line 1: in element 1 (line 1), ']' closes a '{'"},
    {"content after the array", A, 0, "[{}]\n x", 0, "1@1:{}\n",
     "line 2: unexpected 'x' after the closing ']' of the array"},
    {"second array", A, 0, "[{}][]", 0, "1@1:{}\n",
     "line 1: unexpected '[' after the closing ']' of the array"},
    {"end before ]", A, 0, "[{\"a\":1}\n", 0, "1@1:{\"a\":1}\n",
     "line 2: the body ends before the closing ']' of the array"},
    {"end after [", A, 0, "[", 0, "", "line 1: the body ends before the closing ']' of the array"},
    {"end after ,", A, 0, "[{},", 0, "1@1:{}\n",
     "line 1: the body ends before the closing ']' of the array"},
    {"end in a token", A, 0, "[1", 0, "",
     "line 1: the body ends before the closing ']' of the array"},
    {"end in a string", A, 0, "[{},\n{\"a\":\"x", 0, "1@1:{}\n",
     "the body ends inside element 2 (line 2): a string is not closed"},
    {"end in an escape", A, 0, "[\"x\\", 0, "",
     "the body ends inside element 1 (line 1): a string is not closed"},
    {"end in an object", A, 0, "[{},\n{\"a\":[1,2]", 0, "1@1:{}\n",
     "the body ends inside element 2 (line 2): a '}' is missing"},
    {"end in an inner array", A, 0, "[{\"a\":[1,2", 0, "",
     "the body ends inside element 1 (line 1): a ']' is missing"},
    {"element over max", A, 8, "[{\"a\":1},\n{\"a\":\"123\"}]", 0, "1@1:{\"a\":1}\n",
     "element 2 (line 2) is larger than 8 bytes"},
    {"token over max", A, 3, "[123,1234]", 0, "1@1:123\n",
     "element 2 (line 1) is larger than 3 bytes"},
    {"whitespace inside an element counts", A, 4, "[{  \n  }]", 0, "",
     "element 1 (line 1) is larger than 4 bytes"},
    /* NDJSON */
    {"NDJSON", A, 0, "{\"a\":1}\n{\"b\":2}\n", 0, "1@1:{\"a\":1}\n2@2:{\"b\":2}\n", NULL},
    {"NDJSON CRLF, blank lines, no final newline", A, 0, "\r\n{\"a\":1}\r\n\r\n  \t\r\n{\"b\":2}",
     0, "1@2:{\"a\":1}\n2@5:{\"b\":2}\n", NULL},
    {"NDJSON with BOM", A, 0, "\xEF\xBB\xBF{\"a\":1}\n", 0, "1@1:{\"a\":1}\n", NULL},
    {"NDJSON whitespace around a line is trimmed", A, 0, "  {\"a\": 1}  \t\r\n", 0,
     "1@1:{\"a\": 1}\n", NULL},
    {"NDJSON lines that are not objects are passed on", A, 0,
     "{}\n42\n\"x\"\n[1]\n{\"a\":\n}\n{} {}\n{}", 0,
     "1@1:{}\n2@2:42\n3@3:\"x\"\n4@4:[1]\n5@5:{\"a\":\n6@6:}\n7@7:{} {}\n8@8:{}\n", NULL},
    {"NDJSON strings holding braces and quotes", A, 0,
     "{\"a\":\"}\\\"{\\\\\"}\n{\"b\":\"]\\n[\"}\n", 0,
     "1@1:{\"a\":\"}\\\"{\\\\\"}\n2@2:{\"b\":\"]\\n[\"}\n", NULL},
    {"NDJSON newline inside a string ends the line", A, 0, "{\"a\":\"x\ny\"}\n{}\n", 0,
     "1@1:{\"a\":\"x\n2@2:y\"}\n3@3:{}\n", NULL},
    {"NDJSON truncated line then more", A, 0, "{\"a\":\n{\"b\":\"\n{}\n", 0,
     "1@1:{\"a\":\n2@2:{\"b\":\"\n3@3:{}\n", NULL},
    {"NDJSON unicode escapes and UTF-8", A, 0, "{\"n\":\"\\ud83d\\ude00\xF0\x9F\x98\x80\"}\n", 0,
     "1@1:{\"n\":\"\\ud83d\\ude00\\xf0\\x9f\\x98\\x80\"}\n", NULL},
    {"NDJSON mode accepts any first line", N, 0, "[1]\n\n{}\n", 0, "1@1:[1]\n2@3:{}\n", NULL},
    {"NDJSON mode keeps a BOM prefix as data", N, 0, "\xEF\xBB{}\n", 0, "1@1:\\xef\\xbb{}\n", NULL},
    {"NDJSON mode, empty body", N, 0, "", 0, "", NULL},
    {"NDJSON mode, blank lines only", N, 0, "\xEF\xBB\xBF\n \r\n\t\n", 0, "", NULL},
    {"NDJSON last line complete without newline", A, 0, "{\"a\":[1,{}]}", 0, "1@1:{\"a\":[1,{}]}\n",
     NULL},
    {"NDJSON element of exactly max bytes", A, 8, "  {\"a\":12}                \r\n", 0,
     "1@1:{\"a\":12}\n", NULL},
    {"NDJSON end in a string", A, 0, "{\"a\":1}\n{\"b\":\"x", 0, "1@1:{\"a\":1}\n",
     "the body ends inside element 2 (line 2): a string is not closed"},
    {"NDJSON end in an object", A, 0, "{\"a\":1}\n\n{\"b\":{}", 0, "1@1:{\"a\":1}\n",
     "the body ends inside element 2 (line 3): a '}' is missing"},
    {"NDJSON end in an array", A, 0, "{\"a\":[1", 0, "",
     "the body ends inside element 1 (line 1): a ']' is missing"},
    {"NDJSON element over max", A, 8, "{\"a\":12}\r\n{\"a\":123}\n", 0, "1@1:{\"a\":12}\n",
     "element 2 (line 2) is larger than 8 bytes"},
    {"NDJSON text after long whitespace is over max", A, 8, "{\"a\":1}         x\n", 0, "",
     "element 1 (line 1) is larger than 8 bytes"},
};

ParameterizedTestParameters(jsonstream, split_in_every_chunk_size)
{
    return cr_make_param_array(split_case_t, split_cases, OB_COUNTOF(split_cases));
}

ParameterizedTest(split_case_t *c, jsonstream, split_in_every_chunk_size)
{
    size_t len = c->len ? c->len : strlen(c->input);
    size_t max = c->max ? c->max : 1024;
    for (size_t chunk = 1; chunk <= (len ? len : 1); chunk++) {
        ob_err_t err = {{0}};
        char *elements = NULL;
        ob_rc_t rc = split_chunked(c->mode, max, c->input, len, chunk, &elements, &err);
        cr_expect_eq(rc, c->error ? OB_EINVAL : OB_OK, "%s, chunks of %zu: rc %d (%s)", c->name,
                     chunk, rc, err.msg);
        cr_expect_str_eq(elements, c->elements, "%s, chunks of %zu", c->name, chunk);
        if (c->error)
            cr_expect_str_eq(err.msg, c->error, "%s, chunks of %zu", c->name, chunk);
        free(elements);
    }
}

/* ---- nesting ---- */

typedef struct {
    ingest_jsonstream_mode_t mode; /* as created */
    unsigned depth;                /* levels of the element */
    const char *error;             /* the exact error, or NULL for OB_OK */
} depth_case_t;

static depth_case_t depth_cases[] = {
    {R, INGEST_JSONSTREAM_DEPTH_MAX, NULL},
    {R, INGEST_JSONSTREAM_DEPTH_MAX + 1, "element 2 (line 2) nests deeper than 64 levels"},
    {N, INGEST_JSONSTREAM_DEPTH_MAX, NULL},
    {N, INGEST_JSONSTREAM_DEPTH_MAX + 1, "element 2 (line 2) nests deeper than 64 levels"},
    {N, 1000, "element 2 (line 2) nests deeper than 64 levels"},
};

ParameterizedTestParameters(jsonstream, nesting_limit)
{
    return cr_make_param_array(depth_case_t, depth_cases, OB_COUNTOF(depth_cases));
}

/* Element 2 is {"a":[{"a":[... with depth levels, alternating objects and
 * arrays, closed again. */
ParameterizedTest(depth_case_t *c, jsonstream, nesting_limit)
{
    bool array = c->mode == INGEST_JSONSTREAM_ARRAY;
    char *in = NULL, *elements = NULL;
    size_t len = 0;
    ob_err_t err = {{0}};
    FILE *f = open_memstream(&in, &len);
    fputs(array ? "[{},\n" : "{}\n", f);
    for (unsigned i = 0; i < c->depth; i++)
        fputs(i % 2 ? "[" : "{\"a\":", f);
    fputs("1", f);
    for (unsigned i = c->depth; i-- > 0;)
        fputs(i % 2 ? "]" : "}", f);
    fputs(array ? "]" : "\n", f);
    fclose(f);

    static const size_t chunks[] = {1, 3, 4096};
    for (size_t k = 0; k < OB_COUNTOF(chunks); k++) {
        ob_rc_t rc = split_chunked(c->mode, 1 << 16, in, len, chunks[k], &elements, &err);
        cr_expect_eq(rc, c->error ? OB_EINVAL : OB_OK, "depth %u: %s", c->depth, err.msg);
        if (c->error) {
            cr_expect_str_eq(err.msg, c->error);
            cr_expect_str_eq(elements, "1@1:{}\n");
        } else {
            static const char prefix[] = "1@1:{}\n2@2:{\"a\":[{\"a\":[";
            cr_expect(strncmp(elements, prefix, strlen(prefix)) == 0, "%s", elements);
        }
        free(elements);
    }
    free(in);
}

/* ---- callbacks stop the stream ---- */

typedef struct {
    size_t stop_at;   /* element whose callback fails */
    bool set_message; /* whether the callback fills err */
    size_t seen;      /* elements the callback saw */
} stop_t;

static ob_rc_t stop_element(void *opaque, size_t index, size_t line, const char *json, size_t len,
                            ob_err_t *err)
{
    stop_t *s = opaque;
    (void)line, (void)json, (void)len;
    s->seen++;
    if (index != s->stop_at)
        return OB_OK;
    if (s->set_message)
        ob_err_set(err, "call %zu refused", index);
    return OB_EAGAIN;
}

typedef struct {
    const char *input;    /* the body */
    size_t stop_at;       /* see stop_t */
    bool set_message;     /* see stop_t */
    ob_rc_t rc;           /* what feed, finish and both again return */
    const char *error;    /* their exact message */
    size_t seen;          /* elements delivered before the stop */
    bool stops_in_finish; /* the failing element is delivered by finish */
} stop_case_t;

static stop_case_t stop_cases[] = {
    {"[{},\n{},\n{}]", 2, true, OB_EAGAIN, "call 2 refused", 2, false},
    {"[{},\n{},\n{}]", 2, false, OB_EAGAIN,
     "element 2 (line 2): the body was stopped at this element", 2, false},
    {"[1,\n22,\n3]", 2, false, OB_EAGAIN,
     "element 2 (line 2): the body was stopped at this element", 2, false},
    {"{}\n{}\n{}\n", 3, true, OB_EAGAIN, "call 3 refused", 3, false},
    {"{}\n{}\n{}", 3, false, OB_EAGAIN, "element 3 (line 3): the body was stopped at this element",
     3, true},
};

ParameterizedTestParameters(jsonstream, callback_failure_stops_the_stream)
{
    return cr_make_param_array(stop_case_t, stop_cases, OB_COUNTOF(stop_cases));
}

ParameterizedTest(stop_case_t *c, jsonstream, callback_failure_stops_the_stream)
{
    stop_t s = {.stop_at = c->stop_at, .set_message = c->set_message};
    ob_err_t err = {{0}};
    ingest_jsonstream_t *js = ingest_jsonstream_new(INGEST_JSONSTREAM_AUTO, 100, stop_element, &s);
    ob_rc_t rc = ingest_jsonstream_feed(js, c->input, strlen(c->input), &err);
    cr_expect_eq(rc, c->stops_in_finish ? OB_OK : c->rc);
    if (rc == OB_OK)
        rc = ingest_jsonstream_finish(js, &err);
    cr_expect_eq(rc, c->rc);
    cr_expect_str_eq(err.msg, c->error);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(ingest_jsonstream_feed(js, "{}\n", 3, &err), c->rc, "a failed splitter stays so");
    cr_expect_str_eq(err.msg, c->error);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(ingest_jsonstream_finish(js, &err), c->rc);
    cr_expect_str_eq(err.msg, c->error);
    ingest_jsonstream_free(js);
    cr_expect_eq(s.seen, c->seen);
}

/* ---- a full-size batch ---- */

enum { BATCH = 100000, BATCH_CHUNK = 65536 };

/* Call i as clients send it: strings with delimiters, escapes and UTF-8. */
static cJSON *batch_call(size_t i)
{
    char phone[32], note[160];
    cJSON *call = cJSON_CreateObject();
    cJSON *params = cJSON_CreateObject();
    snprintf(phone, sizeof(phone), "+1212555%04zu", i % 10000);
    snprintf(note, sizeof(note),
             "call %zu: \"quoted\", [bracketed], {braced}, \\ caf\xC3\xA9 \xF0\x9F\x93\x9E\n", i);
    cr_assert(call && params);
    cr_assert(cJSON_AddStringToObject(call, "phone_number", phone));
    cr_assert(cJSON_AddNumberToObject(call, "priority", (double)(i % 10)));
    cr_assert(cJSON_AddStringToObject(params, "note", note));
    cr_assert(cJSON_AddNumberToObject(params, "row", (double)i));
    cJSON_AddItemToObject(call, "call_parameters", params);
    return call;
}

/* Prints call i the way the body holds it: pretty in arrays (tabs and
 * newlines inside elements), one line in NDJSON. Caller frees with cJSON_free. */
static char *batch_text(size_t i, bool pretty)
{
    cJSON *call = batch_call(i);
    char *text = pretty ? cJSON_Print(call) : cJSON_PrintUnformatted(call);
    cr_assert(text);
    cJSON_Delete(call);
    return text;
}

typedef struct {
    bool pretty;  /* array body (pretty elements) rather than NDJSON */
    size_t seen;  /* elements delivered */
    size_t lines; /* line where the next element is expected */
} batch_t;

static ob_rc_t check_call(void *opaque, size_t index, size_t line, const char *json, size_t len,
                          ob_err_t *err)
{
    batch_t *b = opaque;
    const char *end = NULL;
    char *expected = batch_text(index - 1, b->pretty);
    char *canonical = batch_text(index - 1, false);
    cJSON *parsed = cJSON_ParseWithOpts(json, &end, 1);
    char *reprinted = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    (void)err;

    b->seen++;
    cr_assert_eq(index, b->seen);
    cr_assert_eq(line, b->lines, "element %zu at line %zu, expected %zu", index, line, b->lines);
    cr_assert_eq(len, strlen(expected));
    cr_assert_str_eq(json, expected);
    cr_assert(parsed != NULL && end == json + len, "element %zu does not parse", index);
    cr_assert_str_eq(reprinted, canonical, "element %zu round-trips", index);
    for (const char *p = json; *p; p++)
        b->lines += *p == '\n';
    b->lines++; /* the newline after the element */
    cJSON_free(reprinted);
    cJSON_Delete(parsed);
    cJSON_free(canonical);
    cJSON_free(expected);
    return OB_OK;
}

ParameterizedTestParameters(jsonstream, hundred_thousand_calls_in_64k_chunks)
{
    static bool pretty[] = {true, false};
    return cr_make_param_array(bool, pretty, OB_COUNTOF(pretty));
}

ParameterizedTest(bool *pretty, jsonstream, hundred_thousand_calls_in_64k_chunks)
{
    char *in = NULL;
    size_t len = 0;
    ob_err_t err = {{0}};
    batch_t b = {.pretty = *pretty, .lines = *pretty ? 2 : 1};
    FILE *f = open_memstream(&in, &len);
    fputs(*pretty ? "\xEF\xBB\xBF[\n" : "", f);
    for (size_t i = 0; i < BATCH; i++) {
        char *text = batch_text(i, *pretty);
        fputs(text, f);
        fputs(*pretty ? (i + 1 < BATCH ? ",\n" : "\n]\n") : "\r\n", f);
        cJSON_free(text);
    }
    fclose(f);

    ingest_jsonstream_t *s = ingest_jsonstream_new(INGEST_JSONSTREAM_AUTO, 4096, check_call, &b);
    for (size_t off = 0; off < len; off += BATCH_CHUNK)
        cr_assert_eq(ingest_jsonstream_feed(
                         s, in + off, len - off < BATCH_CHUNK ? len - off : BATCH_CHUNK, &err),
                     OB_OK, "%s", err.msg);
    cr_assert_eq(ingest_jsonstream_finish(s, &err), OB_OK, "%s", err.msg);
    ingest_jsonstream_free(s);
    free(in);
    cr_expect_eq(b.seen, BATCH);
}
