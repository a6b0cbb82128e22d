/* Table-driven tests of the CSV reader, header mapping and writer (services/ingest/ingest_csv.c).
 */
#include "ingest_csv.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers: what a reader delivered, as text ---- */

/* Rows as "row@line:field|field" lines, "!col" appended when a field is not
 * UTF-8; bytes outside printable ASCII are written as \n, \r, \t or \xhh. */
typedef struct {
    FILE *f;     /* open_memstream over text */
    char *text;  /* what was delivered */
    size_t size; /* strlen(text) */
} collect_t;

static void put_row(FILE *f, const ingest_csv_row_t *row)
{
    fprintf(f, "%zu@%zu:", row->row, row->line);
    for (size_t i = 0; i < row->nfields; i++) {
        if (i)
            fputc('|', f);
        for (size_t k = 0; k < row->lengths[i]; k++) {
            unsigned char c = (unsigned char)row->fields[i][k];
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
        cr_assert_eq(row->fields[i][row->lengths[i]], '\0');
    }
    if (row->bad_utf8_col)
        fprintf(f, "!%zu", row->bad_utf8_col);
    fputc('\n', f);
}

static ob_rc_t collect_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    (void)err;
    put_row(((collect_t *)opaque)->f, header);
    return OB_OK;
}

static ob_rc_t collect_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header,
                           void *opaque, ob_err_t *err)
{
    (void)err;
    cr_assert_eq(header->row, 0);
    put_row(((collect_t *)opaque)->f, row);
    return OB_OK;
}

/* Parses in[0..len) fed in chunks of `chunk` bytes with delimiter delim
 * (or detecting it); *out is the delivered text (caller frees). */
static ob_rc_t parse_chunked(const char *in, size_t len, size_t chunk, char delim, char **out,
                             ob_err_t *err)
{
    collect_t c = {0};
    c.f = open_memstream(&c.text, &c.size);
    ingest_csv_reader_t *r = ingest_csv_reader_new(collect_header, collect_row, &c);
    ingest_csv_reader_set_delimiter(r, delim);
    ob_rc_t rc = OB_OK;
    for (size_t off = 0; off < len && rc == OB_OK; off += chunk)
        rc = ingest_csv_feed(r, in + off, len - off < chunk ? len - off : chunk, err);
    if (rc == OB_OK)
        rc = ingest_csv_finish(r, err);
    ingest_csv_reader_free(r);
    fclose(c.f);
    *out = c.text;
    return rc;
}

/* ---- the reader, fed in every chunk size ---- */

typedef struct {
    const char *name;      /* what the case shows */
    const char *input;     /* the upload */
    size_t len;            /* its length when it holds a NUL, else 0 */
    const char *rows;      /* what is delivered (also before an error) */
    ob_rc_t rc;            /* what feed or finish returns */
    const char *error_has; /* substring of the error, when rc is not OB_OK */
    char delim;            /* delimiter set; 0 (unset): detected */
} parse_case_t;

static parse_case_t parse_cases[] = {
    {"LF", "phone,name\n+1,Sam\n+2,Al\n", 0, "0@1:phone|name\n1@2:+1|Sam\n2@3:+2|Al\n", OB_OK, NULL,
     0},
    {"CRLF", "phone,name\r\n+1,Sam\r\n+2,Al\r\n", 0, "0@1:phone|name\n1@2:+1|Sam\n2@3:+2|Al\n",
     OB_OK, NULL, 0},
    {"CR", "phone,name\r+1,Sam\r+2,Al\r", 0, "0@1:phone|name\n1@2:+1|Sam\n2@3:+2|Al\n", OB_OK, NULL,
     0},
    {"mixed endings", "h\r\n1\n2\r3\n\r4", 0, "0@1:h\n1@2:1\n2@3:2\n3@4:3\n4@6:4\n", OB_OK, NULL,
     0},
    {"no final newline", "phone,name\n+1,Sam", 0, "0@1:phone|name\n1@2:+1|Sam\n", OB_OK, NULL, 0},
    {"header only", "phone,name\r\n", 0, "0@1:phone|name\n", OB_OK, NULL, 0},
    {"BOM skipped", "\xEF\xBB\xBFphone,name\n+1,Sam\n", 0, "0@1:phone|name\n1@2:+1|Sam\n", OB_OK,
     NULL, 0},
    {"BOM prefix is data", "\xEF\xBBphone\n1\n", 0, "0@1:\\xef\\xbbphone!1\n1@2:1\n", OB_OK, NULL,
     0},
    {"BOM later is data",
     "h\n\xEF\xBB\xBF"
     "1\n",
     0, "0@1:h\n1@2:\\xef\\xbb\\xbf1\n", OB_OK, NULL, 0},
    {"quoted comma, quote, newline", "phone,note\n+1,\"a, \"\"b\"\"\nc\"\n+2,x\n", 0,
     "0@1:phone|note\n1@2:+1|a, \"b\"\\nc\n2@4:+2|x\n", OB_OK, NULL, 0},
    {"quoted CRLF is one line", "h\r\n\"a\r\nb\"\r\nc\r\n", 0, "0@1:h\n1@2:a\\r\\nb\n2@4:c\n",
     OB_OK, NULL, 0},
    {"blank lines count as lines only", "\n\nphone\n\n  \n+1\n\r\n+2\n", 0,
     "0@3:phone\n1@6:+1\n2@8:+2\n", OB_OK, NULL, 0},
    {"empty spreadsheet rows skipped", "phone,name\n,\n+1,Sam\n , \n\"\",\n+2,Al\n,", 0,
     "0@1:phone|name\n1@3:+1|Sam\n2@6:+2|Al\n", OB_OK, NULL, 0},
    {"unquoted trimmed, quoted kept", "phone,name\n  +1  ,\" Sam \"\n\t+2\t, \"Al\" \n", 0,
     "0@1:phone|name\n1@2:+1| Sam \n2@3:+2|Al\n", OB_OK, NULL, 0},
    {"empty quoted field", "a,b,c\n1,\"\",3\n", 0, "0@1:a|b|c\n1@2:1||3\n", OB_OK, NULL, 0},
    {"stray quotes in unquoted fields kept", "phone,name\n+1,O\"Brien\n+2,5\" disk\n", 0,
     "0@1:phone|name\n1@2:+1|O\"Brien\n2@3:+2|5\" disk\n", OB_OK, NULL, 0},
    {"short and long rows delivered", "a,b,c\n1\n1,2,3,4\n", 0, "0@1:a|b|c\n1@2:1\n2@3:1|2|3|4\n",
     OB_OK, NULL, 0},
    {"invalid UTF-8 flags the row, parse goes on", "phone,name\n+1,\xff\n+2,Al\n", 0,
     "0@1:phone|name\n1@2:+1|\\xff!2\n2@3:+2|Al\n", OB_OK, NULL, 0},
    {"overlong, surrogate, too high, truncated",
     "p,n\n\xC0\xAF,1\n+2,\xED\xA0\x80\n+3,\xF4\x90\x80\x80\n+4,\xE2\x82\n+5,"
     "\xE2\x82\xAC\xF0\x9F\x93"
     "\x9E\n+6,\xE0\x80\xAF\n+7,\xF0\x80\x80\xAF\n",
     0,
     "0@1:p|n\n1@2:\\xc0\\xaf|1!1\n2@3:+2|\\xed\\xa0\\x80!2\n3@4:+3|\\xf4\\x90\\x80\\x80!2\n"
     "4@5:+4|\\xe2\\x82!2\n5@6:+5|\\xe2\\x82\\xac\\xf0\\x9f\\x93\\x9e\n"
     "6@7:+6|\\xe0\\x80\\xaf!2\n7@8:+7|\\xf0\\x80\\x80\\xaf!2\n",
     OB_OK, NULL, 0},
    {"NUL byte flags the row", "p,n\n+1,a\0b\n+2,c\n", 16, "0@1:p|n\n1@2:+1|a\\x00b!2\n2@3:+2|c\n",
     OB_OK, NULL, 0},
    {"closing quote at end of input", "h\n\"a\"", 0, "0@1:h\n1@2:a\n", OB_OK, NULL, 0},
    {"unterminated quote", "phone,name\n+1,Sam\n+2,\"Al\n+3,Bo\n", 0,
     "0@1:phone|name\n1@2:+1|Sam\n", OB_EINVAL, "line 3: a quoted field is never closed", 0},
    {"text after a closing quote reopens it", "phone,name\n+1,\"Al\"x,y\n+2,Bo\n", 0,
     "0@1:phone|name\n", OB_EINVAL, "line 2: a quoted field is never closed", 0},
    {"empty input", "", 0, "", OB_EINVAL, "no header row", 0},
    {"blank lines only", "\n\r\n  \n", 0, "", OB_EINVAL, "no header row", 0},
    {"BOM only", "\xEF\xBB\xBF", 0, "", OB_EINVAL, "no header row", 0},
    /* The delimiter, detected from the header line. */
    {"';' detected", "phone;name\n+1;Sam\n", 0, "0@1:phone|name\n1@2:+1|Sam\n", OB_OK, NULL, 0},
    {"';' detected, decimal commas are data", "Phone;Amount;Note\n+1;1,5;a, b\n", 0,
     "0@1:Phone|Amount|Note\n1@2:+1|1,5|a, b\n", OB_OK, NULL, 0},
    {"TAB detected", "phone\tname\n+1\t Sam \n+2\t\"a\tb\"\n", 0,
     "0@1:phone|name\n1@2:+1|Sam\n2@3:+2|a\\tb\n", OB_OK, NULL, 0},
    {"TAB detected, empty fields kept", "a\tb\tc\n1\t\t3\n", 0, "0@1:a|b|c\n1@2:1||3\n", OB_OK,
     NULL, 0},
    {"quoted delimiters do not count", "\"a;b;c\",d\n1,2\n", 0, "0@1:a;b;c|d\n1@2:1|2\n", OB_OK,
     NULL, 0},
    {"the most frequent wins", "a;b;c,d\n1;2;3,4\n", 0, "0@1:a|b|c,d\n1@2:1|2|3,4\n", OB_OK, NULL,
     0},
    {"a tie is ','", "a,b;c\n1,2;3\n", 0, "0@1:a|b;c\n1@2:1|2;3\n", OB_OK, NULL, 0},
    {"one column is ','", "phone\n+1,x\n", 0, "0@1:phone\n1@2:+1|x\n", OB_OK, NULL, 0},
    {"blank and empty lines before the header do not count", "\n \t \n;;\r\nphone;name\n+1;Sam\n",
     0, "0@4:phone|name\n1@5:+1|Sam\n", OB_OK, NULL, 0},
    {"a quoted line break in the header", "\"Phone\nNumber\";x\n1;2\n", 0,
     "0@1:Phone\\nNumber|x\n1@3:1|2\n", OB_OK, NULL, 0},
    {"Excel CSV UTF-8, ';' and CRLF",
     "\xEF\xBB\xBF\"Phone Number\";\"Name\"\r\n\"617 555 0106\";\"Doe; Jane\"\r\n", 0,
     "0@1:Phone Number|Name\n1@2:617 555 0106|Doe; Jane\n", OB_OK, NULL, 0},
    {"header without a line end", "a;b", 0, "0@1:a|b\n", OB_OK, NULL, 0},
    {"a broken header is found after detection", "a;\"b\n", 0, "", OB_EINVAL,
     "line 1: a quoted field is never closed", 0},
    /* The delimiter, set. */
    {"';' set", "a,b;c\n1,2;3\n", 0, "0@1:a,b|c\n1@2:1,2|3\n", OB_OK, NULL, ';'},
    {"',' set on a ';' header", "a;b;c\n1;2;3\n", 0, "0@1:a;b;c\n1@2:1;2;3\n", OB_OK, NULL, ','},
    {"'|' set", "a|b\n1|\"x|y\"\n", 0, "0@1:a|b\n1@2:1|x|y\n", OB_OK, NULL, '|'},
    {"TAB set", "a\tb,c\n1\t2,3\n", 0, "0@1:a|b,c\n1@2:1|2,3\n", OB_OK, NULL, '\t'},
};

ParameterizedTestParameters(csv, parse_in_every_chunk_size)
{
    return cr_make_param_array(parse_case_t, parse_cases, OB_COUNTOF(parse_cases));
}

ParameterizedTest(parse_case_t *c, csv, parse_in_every_chunk_size)
{
    size_t len = c->len ? c->len : strlen(c->input);
    for (size_t chunk = 1; chunk <= (len ? len : 1); chunk++) {
        ob_err_t err = {{0}};
        char *rows = NULL;
        ob_rc_t rc = parse_chunked(c->input, len, chunk, c->delim, &rows, &err);
        cr_expect_eq(rc, c->rc, "%s, chunks of %zu: rc %d (%s)", c->name, chunk, rc, err.msg);
        cr_expect_str_eq(rows, c->rows, "%s, chunks of %zu", c->name, chunk);
        if (c->error_has)
            cr_expect(strstr(err.msg, c->error_has) != NULL, "%s: error \"%s\" lacks \"%s\"",
                      c->name, err.msg, c->error_has);
        free(rows);
    }
}

Test(csv, bom_split_over_three_feeds)
{
    static const char *const parts[] = {"\xEF", "\xBB", "\xBF", "phone\r\n+1\r\n"};
    collect_t c = {0};
    ob_err_t err = {{0}};
    c.f = open_memstream(&c.text, &c.size);
    ingest_csv_reader_t *r = ingest_csv_reader_new(collect_header, collect_row, &c);
    for (size_t i = 0; i < OB_COUNTOF(parts); i++)
        cr_assert_eq(ingest_csv_feed(r, parts[i], strlen(parts[i]), &err), OB_OK, "%s", err.msg);
    cr_assert_eq(ingest_csv_finish(r, &err), OB_OK, "%s", err.msg);
    ingest_csv_reader_free(r);
    fclose(c.f);
    cr_expect_str_eq(c.text, "0@1:phone\n1@2:+1\n");
    free(c.text);
}

static ob_rc_t count_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    (void)err;
    *(size_t *)opaque = header->nfields;
    return OB_OK;
}

static ob_rc_t ignore_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                          ob_err_t *err)
{
    (void)row, (void)header, (void)opaque, (void)err;
    return OB_OK;
}

/* A header line longer than the part looked at: the delimiter is chosen
 * from its first 64 KiB, and nothing held back is lost. */
Test(csv, delimiter_of_a_header_longer_than_64k)
{
    enum { FIELDS = 800, WIDTH = 100 };
    static const size_t chunks[] = {1000, 65536, SIZE_MAX};
    char *in = ob_xmalloc(FIELDS * (WIDTH + 1) + 16);
    size_t len = 0;
    for (int i = 0; i < FIELDS; i++) {
        memset(in + len, 'a' + i % 26, WIDTH);
        len += WIDTH;
        in[len++] = i + 1 < FIELDS ? ';' : '\n';
    }
    cr_assert_gt(len, 65536);
    for (size_t k = 0; k < OB_COUNTOF(chunks); k++) {
        size_t nfields = 0;
        ob_err_t err = {{0}};
        ob_rc_t rc = OB_OK;
        ingest_csv_reader_t *r = ingest_csv_reader_new(count_header, ignore_row, &nfields);
        for (size_t off = 0; off < len && rc == OB_OK; off += chunks[k])
            rc = ingest_csv_feed(r, in + off, len - off < chunks[k] ? len - off : chunks[k], &err);
        cr_expect_eq(ingest_csv_reader_delimiter(r), ';');
        if (rc == OB_OK)
            rc = ingest_csv_finish(r, &err);
        ingest_csv_reader_free(r);
        cr_expect_eq(rc, OB_OK, "%s", err.msg);
        cr_expect_eq(nfields, FIELDS, "chunks of %zu", chunks[k]);
    }
    free(in);
}

typedef struct {
    const char *text; /* a delimiter option as a client writes it */
    bool ok;          /* whether it is understood */
    char delim;       /* and as what */
} delim_case_t;

static delim_case_t delim_cases[] = {
    {",", true, ','},    {";", true, ';'},     {"\t", true, '\t'},       {"|", true, '|'},
    {"\\t", true, '\t'}, {"TAB", true, '\t'},  {"semicolon", true, ';'}, {"Comma", true, ','},
    {"pipe", true, '|'}, {"auto", true, '\0'}, {"", false, 0},           {":", false, 0},
    {";;", false, 0},    {"space", false, 0},  {NULL, false, 0},
};

ParameterizedTestParameters(csv, delimiter_option)
{
    return cr_make_param_array(delim_case_t, delim_cases, OB_COUNTOF(delim_cases));
}

ParameterizedTest(delim_case_t *c, csv, delimiter_option)
{
    char delim = 'x';
    cr_expect_eq(ingest_csv_delimiter_parse(c->text, &delim), c->ok, "\"%s\"",
                 c->text ? c->text : "(null)");
    cr_expect_eq(delim, c->ok ? c->delim : 'x', "\"%s\"", c->text ? c->text : "(null)");
}

/* ---- limits ---- */

typedef struct {
    const char *name;      /* what the case shows */
    size_t field_len;      /* bytes of 'x' in each field of line 2 */
    bool quoted;           /* whether those fields are quoted */
    size_t nfields;        /* fields on line 2 */
    ob_rc_t rc;            /* expected result */
    const char *error_has; /* substring of the error */
    size_t rows;           /* data rows delivered */
} limit_case_t;

static limit_case_t limit_cases[] = {
    {"64 KiB field", INGEST_CSV_FIELD_MAX, false, 1, OB_OK, NULL, 2},
    {"64 KiB quoted field", INGEST_CSV_FIELD_MAX, true, 1, OB_OK, NULL, 2},
    {"field one byte over", INGEST_CSV_FIELD_MAX + 1, false, 1, OB_EINVAL,
     "line 2: a field is longer than 65536 bytes", 0},
    {"quoted field one byte over", INGEST_CSV_FIELD_MAX + 1, true, 1, OB_EINVAL,
     "line 2: a field is longer than 65536 bytes", 0},
    {"1 MiB field", 1 << 20, false, 1, OB_EINVAL, "line 2: a field is longer than 65536 bytes", 0},
    {"1 MiB quoted field", 1 << 20, true, 1, OB_EINVAL, "line 2: a field is longer", 0},
    {"1000 fields", 1, false, INGEST_CSV_FIELDS_MAX, OB_OK, NULL, 2},
    {"1001 fields", 1, false, INGEST_CSV_FIELDS_MAX + 1, OB_EINVAL,
     "line 2: the row has more than 1000 fields", 0},
    {"5000 empty fields are a blank row", 0, false, 5000, OB_OK, NULL, 1},
};

static ob_rc_t count_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                         ob_err_t *err)
{
    (void)row, (void)header, (void)err;
    (*(size_t *)opaque)++;
    return OB_OK;
}

ParameterizedTestParameters(csv, limits)
{
    return cr_make_param_array(limit_case_t, limit_cases, OB_COUNTOF(limit_cases));
}

ParameterizedTest(limit_case_t *c, csv, limits)
{
    static const size_t chunks[] = {1, 7, 4096, 65536, SIZE_MAX};
    size_t cap = 64 + c->nfields * (c->field_len + 3);
    char *in = ob_xmalloc(cap);
    size_t len = (size_t)sprintf(in, "h\n");
    for (size_t i = 0; i < c->nfields; i++) {
        if (i)
            in[len++] = ',';
        if (c->quoted)
            in[len++] = '"';
        memset(in + len, 'x', c->field_len);
        len += c->field_len;
        if (c->quoted)
            in[len++] = '"';
    }
    len += (size_t)sprintf(in + len, "\nnext\n");

    for (size_t k = 0; k < OB_COUNTOF(chunks); k++) {
        size_t rows = 0;
        ob_err_t err = {{0}};
        ob_rc_t rc = OB_OK;
        ingest_csv_reader_t *r = ingest_csv_reader_new(NULL, count_row, &rows);
        for (size_t off = 0; off < len && rc == OB_OK; off += chunks[k])
            rc = ingest_csv_feed(r, in + off, len - off < chunks[k] ? len - off : chunks[k], &err);
        if (rc == OB_OK)
            rc = ingest_csv_finish(r, &err);
        ingest_csv_reader_free(r);
        cr_expect_eq(rc, c->rc, "%s, chunks of %zu: %s", c->name, chunks[k], err.msg);
        cr_expect_eq(rows, c->rows, "%s, chunks of %zu", c->name, chunks[k]);
        if (c->error_has)
            cr_expect(strstr(err.msg, c->error_has) != NULL, "%s: error \"%s\" lacks \"%s\"",
                      c->name, err.msg, c->error_has);
    }
    free(in);
}

Test(csv, two_hundred_thousand_rows_in_64k_chunks)
{
    enum { ROWS = 200000, CHUNK = 65536 };
    char *in = NULL;
    size_t len = 0, rows = 0;
    ob_err_t err = {{0}};
    FILE *f = open_memstream(&in, &len);
    fputs("\xEF\xBB\xBFphone_number,customer,note\r\n", f);
    for (int i = 0; i < ROWS; i++)
        fprintf(f, "+1212555%04d,Customer %d,\"owes $%d, \"\"soon\"\"\"\r\n", i % 10000, i, i);
    fclose(f);

    ingest_csv_reader_t *r = ingest_csv_reader_new(NULL, count_row, &rows);
    for (size_t off = 0; off < len; off += CHUNK)
        cr_assert_eq(ingest_csv_feed(r, in + off, len - off < CHUNK ? len - off : CHUNK, &err),
                     OB_OK, "%s", err.msg);
    cr_assert_eq(ingest_csv_finish(r, &err), OB_OK, "%s", err.msg);
    ingest_csv_reader_free(r);
    free(in);
    cr_expect_eq(rows, ROWS);
}

/* ---- callbacks stop the parse ---- */

typedef struct {
    size_t stop_at;   /* data row whose callback fails; 0 = the header's */
    bool set_message; /* whether the callback fills err */
    size_t rows_seen; /* data rows the callback saw */
    bool header_ok;   /* on_row saw the header intact */
} stop_t;

static ob_rc_t stop_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    stop_t *s = opaque;
    (void)header;
    if (s->stop_at == 0 && s->set_message)
        ob_err_set(err, "header refused");
    return s->stop_at == 0 ? OB_ECONFLICT : OB_OK;
}

static ob_rc_t stop_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                        ob_err_t *err)
{
    stop_t *s = opaque;
    s->rows_seen++;
    s->header_ok = header->nfields == 2 && strcmp(header->fields[1], "name") == 0 &&
                   header->line == 1 && header->row == 0;
    if (row->row != s->stop_at)
        return OB_OK;
    if (s->set_message)
        ob_err_set(err, "row %zu refused", row->row);
    return OB_EAGAIN;
}

typedef struct {
    size_t stop_at;        /* see stop_t */
    bool set_message;      /* see stop_t */
    ob_rc_t rc;            /* what feed and finish return */
    const char *error_has; /* substring of their error */
    size_t rows_seen;      /* data rows delivered before the stop */
} stop_case_t;

static stop_case_t stop_cases[] = {
    {2, true, OB_EAGAIN, "row 2 refused", 2},
    {2, false, OB_EAGAIN, "line 3: the upload was stopped at this row", 2},
    {0, true, OB_ECONFLICT, "header refused", 0},
};

ParameterizedTestParameters(csv, callback_failure_stops_the_parse)
{
    return cr_make_param_array(stop_case_t, stop_cases, OB_COUNTOF(stop_cases));
}

ParameterizedTest(stop_case_t *c, csv, callback_failure_stops_the_parse)
{
    static const char in[] = "phone,name\n+1,a\n+2,b\n+3,c\n";
    stop_t s = {.stop_at = c->stop_at, .set_message = c->set_message};
    ob_err_t err = {{0}};
    ingest_csv_reader_t *r = ingest_csv_reader_new(stop_header, stop_row, &s);
    cr_expect_eq(ingest_csv_feed(r, in, strlen(in), &err), c->rc);
    cr_expect(strstr(err.msg, c->error_has) != NULL, "\"%s\" lacks \"%s\"", err.msg, c->error_has);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(ingest_csv_feed(r, "+4,d\n", 5, &err), c->rc, "a failed reader stays failed");
    cr_expect(strstr(err.msg, c->error_has) != NULL);
    cr_expect_eq(ingest_csv_finish(r, &err), c->rc);
    ingest_csv_reader_free(r);
    cr_expect_eq(s.rows_seen, c->rows_seen);
    if (s.rows_seen)
        cr_expect(s.header_ok, "on_row gets the header as it was read");
}

/* ---- row checks, header mapping and parameters, on parsed uploads ---- */

typedef struct {
    const char *phone_column;   /* the option given to ingest_csv_map_header */
    ingest_csv_col_t roles[16]; /* from ingest_csv_map_header */
    ob_rc_t map_rc;             /* its result */
    ob_err_t map_err;           /* its message */
    ob_rc_t check_rc;           /* ingest_csv_row_check on the first data row */
    ob_err_t check_err;         /* its message */
    char *json;                 /* ingest_csv_parameters_json of the first data row */
} upload_t;

static ob_rc_t upload_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    upload_t *u = opaque;
    (void)err;
    cr_assert(header->nfields <= OB_COUNTOF(u->roles));
    u->map_rc = ingest_csv_map_header(header, u->phone_column, u->roles, &u->map_err);
    return OB_OK;
}

static ob_rc_t upload_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                          ob_err_t *err)
{
    upload_t *u = opaque;
    (void)err;
    if (row->row != 1)
        return OB_OK;
    u->check_rc = ingest_csv_row_check(row, header->nfields, &u->check_err);
    if (u->map_rc == OB_OK && u->check_rc == OB_OK)
        u->json = ingest_csv_parameters_json(row, header, u->roles);
    return OB_OK;
}

static void upload(const char *in, const char *phone_column, upload_t *u)
{
    ob_err_t err = {{0}};
    memset(u, 0, sizeof(*u));
    u->phone_column = phone_column;
    u->map_rc = u->check_rc = OB_ERR;
    ingest_csv_reader_t *r = ingest_csv_reader_new(upload_header, upload_row, u);
    cr_assert_eq(ingest_csv_feed(r, in, strlen(in), &err), OB_OK, "%s", err.msg);
    cr_assert_eq(ingest_csv_finish(r, &err), OB_OK, "%s", err.msg);
    ingest_csv_reader_free(r);
}

typedef struct {
    const char *header;       /* header line */
    const char *roles;        /* role names joined by ',', or NULL when refused */
    const char *error_has;    /* substring of the refusal */
    const char *phone_column; /* the option, or NULL */
} map_case_t;

static map_case_t map_cases[] = {
    {"phone_number,message_reference,max_attempts,retry_interval_s,priority,result_url,caller_id,"
     "not_before,expires_at",
     "phone_number,message_reference,max_attempts,retry_interval_s,priority,result_url,caller_id,"
     "not_before,expires_at",
     NULL, NULL},
    {"Destination , ANI,Scheduled_Time,expiration_timestamp,customer",
     "phone_number,caller_id,not_before,expires_at,call parameter", NULL, NULL},
    {"number,start_timestamp,end_timestamp,reattempt_wait,max_retries",
     "phone_number,not_before,expires_at,reattempt_wait,max_retries", NULL, NULL},
    {"PHONE,\" Name \",scheduled_timestamp,expiration_time,retry_interval",
     "phone_number,call parameter,not_before,expires_at,retry_interval_s", NULL, NULL},
    {"phone,Name,name", "phone_number,call parameter,call parameter", NULL, NULL},
    {"phone,Phone_Number", NULL,
     "header columns 1 (\"phone\") and 2 (\"Phone_Number\") both look like the phone number; say "
     "which with phone_column=1 or phone_column=2, or rename the other",
     NULL},
    {"ani,phone,caller_id", NULL, "columns 1 (\"ani\") and 3 (\"caller_id\") both give caller_id",
     NULL},
    {"phone,max_attempts,max_retries", NULL, "both give max_attempts", NULL},
    {"phone,reattempt_wait,retry_interval_s", NULL, "both give retry_interval_s", NULL},
    {"phone,not_before,start_timestamp", NULL, "both give not_before", NULL},
    {"phone,end_timestamp,expires_at", NULL, "both give expires_at", NULL},
    {"name,email", NULL,
     "the header has no phone number column (its columns are \"name\", \"email\"): title it "
     "Phone Number, Phone, Mobile, Cell, Telephone, Tel, To, Number or Destination (case, "
     "spaces, _ and - do not matter), or name it with phone_column",
     NULL},
    /* How spreadsheets title the columns: case, spaces, '_', '-' and '.' do not matter. */
    {"Phone Number,Name", "phone_number,call parameter", NULL, NULL},
    {"\" phone-number \",PHONE NUMBER X", "phone_number,call parameter", NULL, NULL},
    {"Mobile,Message Reference,Max Attempts,Retry Interval,Caller ID,Result URL,Not Before,"
     "Expires At,Priority",
     "phone_number,message_reference,max_attempts,retry_interval_s,caller_id,result_url,"
     "not_before,expires_at,priority",
     NULL, NULL},
    {"Cell,Max-Retries,Reattempt Wait,Start Timestamp,End_Timestamp",
     "phone_number,max_retries,reattempt_wait,not_before,expires_at", NULL, NULL},
    {"Telephone,Retry Interval S,Scheduled Time,Expiration-Time",
     "phone_number,retry_interval_s,not_before,expires_at", NULL, NULL},
    {"Tel.,ANI", "phone_number,caller_id", NULL, NULL},
    {"To,Body", "phone_number,call parameter", NULL, NULL},
    {"Account Number,Number", "call parameter,phone_number", NULL, NULL},
    {"MSISDN", "phone_number", NULL, NULL},
    {"Cell Phone", "phone_number", NULL, NULL},
    {"Mobile Number", "phone_number", NULL, NULL},
    {"Telephone Number", "phone_number", NULL, NULL},
    {"Téléphone,Numéro", NULL, "no phone number column", NULL},
    {"Phone,Mobile", NULL,
     "header columns 1 (\"Phone\") and 2 (\"Mobile\") both look like the phone number", NULL},
    {"Message Reference,phone,message_reference", NULL,
     "header columns 1 (\"Message Reference\") and 3 (\"message_reference\") both give "
     "message_reference",
     NULL},
    {"a,b,c,d,e,f,g,h,phone_no", NULL,
     "(its columns are \"a\", \"b\", \"c\", \"d\", \"e\", \"f\" and 3 more)", NULL},
    {"Customer name is written here in full,x", NULL,
     "(its columns are \"Customer name is wri...\", \"x\")", NULL},
    /* phone_column says which column holds the numbers. */
    {"Phone,Mobile", "call parameter,phone_number", NULL, "Mobile"},
    {"Phone,Mobile", "phone_number,call parameter", NULL, "1"},
    {"Name,Contact", "call parameter,phone_number", NULL, "2"},
    {"Name,Contact", "call parameter,phone_number", NULL, "contact"},
    {"Name,Direct Line", "call parameter,phone_number", NULL, "direct_line"},
    {"Phone_Number,Mobile", "phone_number,call parameter", NULL, "phone number"},
    {"a,b", NULL, "phone_column 5 is not a column of this file: it has 2 (\"a\", \"b\")", "5"},
    {"a,b", NULL, "phone_column 0 is not a column of this file", "0"},
    {"Phone,Name", NULL,
     "phone_column \"Fax\" names no column of this file; its columns are \"Phone\", \"Name\"",
     "Fax"},
    {"Phone,PHONE", NULL,
     "phone_column \"phone\" matches columns 1 and 2; give the column's number instead", "phone"},
    {"Phone,,Name", NULL, "header column 2 has no name", "1"},
    {"phone,,name", NULL, "header column 2 has no name", NULL},
    {"phone,\"  \"", NULL, "header column 2 has no name", NULL},
    {"phone,name,name", NULL, "header columns 2 and 3 are both named \"name\"", NULL},
    {"phone,\xff", NULL, "header column 2 is not valid UTF-8", NULL},
};

ParameterizedTestParameters(csv, map_header)
{
    return cr_make_param_array(map_case_t, map_cases, OB_COUNTOF(map_cases));
}

ParameterizedTest(map_case_t *c, csv, map_header)
{
    upload_t u;
    char in[512], got[512] = "";
    snprintf(in, sizeof(in), "%s\n", c->header);
    upload(in, c->phone_column, &u);
    if (!c->roles) {
        cr_assert_eq(u.map_rc, OB_EINVAL, "%s was accepted", c->header);
        cr_expect(strstr(u.map_err.msg, c->error_has) != NULL, "%s: \"%s\" lacks \"%s\"", c->header,
                  u.map_err.msg, c->error_has);
        cr_expect(ob_utf8_valid(u.map_err.msg, strlen(u.map_err.msg)), "%s", u.map_err.msg);
        return;
    }
    cr_assert_eq(u.map_rc, OB_OK, "%s: %s", c->header, u.map_err.msg);
    size_t n = 1;
    for (const char *p = c->roles; *p; p++)
        n += *p == ',';
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "," : "",
                 ingest_csv_col_name(u.roles[i]));
    cr_expect_str_eq(got, c->roles, "%s", c->header);
}

/* A message quotes at most 64 bytes of a name, cut before a character
 * rather than inside one: it is stored as text, which must be UTF-8. */
Test(csv, long_names_are_cut_between_characters)
{
    char name[128] = "a", in[300], want[128] = "named \"a";
    upload_t u;
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9"); /* é: 81 bytes in all, byte 64 inside a character */
    for (int i = 0; i < 31; i++)
        strcat(want, "\xc3\xa9");
    strcat(want, "\"; keep one");
    snprintf(in, sizeof(in), "phone,%s,%s\n", name, name);
    upload(in, NULL, &u);
    cr_assert_eq(u.map_rc, OB_EINVAL);
    cr_expect(strstr(u.map_err.msg, want) != NULL, "%s", u.map_err.msg);
    cr_expect(ob_utf8_valid(u.map_err.msg, strlen(u.map_err.msg)));
}

typedef struct {
    const char *in;   /* header and one data row */
    const char *json; /* ingest_csv_parameters_json of the row */
} params_case_t;

static params_case_t params_cases[] = {
    {"phone,customer,balance\n+1,Sam,12.5\n", "{\"customer\":\"Sam\",\"balance\":\"12.5\"}"},
    {"phone,customer,balance\n+1,,12.5\n", "{\"balance\":\"12.5\"}"},
    {"phone,priority,caller_id\n+1,5,+2\n", "{}"},
    {"phone,note\n+1,\"say \"\"hi\"\"\\\"\n", "{\"note\":\"say \\\"hi\\\"\\\\\"}"},
    {"phone,\" customer \"\n+1,Sam\n", "{\"customer\":\"Sam\"}"},
    {"phone,name,city\n+1,Zoë,\" Köln \"\n", "{\"name\":\"Zoë\",\"city\":\" Köln \"}"},
    {"phone,note\n+1,\"two\nlines\"\n", "{\"note\":\"two\\nlines\"}"},
};

ParameterizedTestParameters(csv, parameters_json)
{
    return cr_make_param_array(params_case_t, params_cases, OB_COUNTOF(params_cases));
}

ParameterizedTest(params_case_t *c, csv, parameters_json)
{
    upload_t u;
    upload(c->in, NULL, &u);
    cr_assert_eq(u.map_rc, OB_OK, "%s", u.map_err.msg);
    cr_assert_eq(u.check_rc, OB_OK, "%s", u.check_err.msg);
    cr_assert_not_null(u.json);
    cr_expect_str_eq(u.json, c->json);
    free(u.json);
}

typedef struct {
    const char *row;       /* data row under the header "phone,a,b" */
    const char *error_has; /* substring of the row error, or NULL when the row is fine */
} check_case_t;

static check_case_t check_cases[] = {
    {"+1,x,y", NULL},
    {"+1,,", NULL},
    {"+1,x,y,,", NULL},
    {"+1,x", "row 1 (line 2) has 2 fields but the header has 3 columns"},
    {"+1,x,y,z", "row 1 (line 2) has 4 fields but the header has 3 columns"},
    {"+1,x\xC3,y", "row 1 (line 2): column 2 is not valid UTF-8"},
};

ParameterizedTestParameters(csv, row_check)
{
    return cr_make_param_array(check_case_t, check_cases, OB_COUNTOF(check_cases));
}

ParameterizedTest(check_case_t *c, csv, row_check)
{
    upload_t u;
    char in[128];
    snprintf(in, sizeof(in), "phone,a,b\n%s\n", c->row);
    upload(in, NULL, &u);
    free(u.json);
    if (!c->error_has) {
        cr_expect_eq(u.check_rc, OB_OK, "%s: %s", c->row, u.check_err.msg);
        return;
    }
    cr_expect_eq(u.check_rc, OB_EINVAL, "%s was accepted", c->row);
    cr_expect(strstr(u.check_err.msg, c->error_has) != NULL, "\"%s\" lacks \"%s\"", u.check_err.msg,
              c->error_has);
}

/* ---- the writer ---- */

typedef struct {
    const char *value; /* cell value (NULL allowed) */
    const char *out;   /* what is written */
} write_case_t;

static write_case_t write_cases[] = {
    {"abc", "abc"},
    {"", ""},
    {NULL, ""},
    {"café", "café"},
    {"a=b", "a=b"},
    {"a,b", "\"a,b\""},
    {"say \"hi\"", "\"say \"\"hi\"\"\""},
    {"line\nbreak", "\"line\nbreak\""},
    {"end\r", "\"end\r\""},
    {" lead", "\" lead\""},
    {"trail ", "\"trail \""},
    {"=1+2", "'=1+2"},
    {"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
    {"-2+3", "'-2+3"},
    {"@SUM(A1)", "'@SUM(A1)"},
    {"\t=1", "\"'\t=1\""},
    {"\r=1", "\"'\r=1\""},
    {"\n=1", "\"'\n=1\""},
    {" =1+2", "\"' =1+2\""},
    {"=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
    {"-", "'-"},
    {"-5.", "'-5."},
    {"-5", "-5"},
    {"-0.25", "-0.25"},
    {"12.50", "12.50"},
    {"+12125550100", "+12125550100"},
    {" +12125550100 ", "\" +12125550100 \""},
    {"+1 212 555 0100", "'+1 212 555 0100"},
    {"+1-212-555-0100", "'+1-212-555-0100"},
};

ParameterizedTestParameters(csv, write_cell)
{
    return cr_make_param_array(write_case_t, write_cases, OB_COUNTOF(write_cases));
}

ParameterizedTest(write_case_t *c, csv, write_cell)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ingest_csv_write_cell(f, c->value);
    cr_assert_eq(ferror(f), 0);
    fclose(f);
    cr_expect_str_eq(out, c->out, "value \"%s\"", c->value ? c->value : "(null)");
    free(out);
}

Test(csv, written_rows_read_back_unchanged)
{
    static const char *const header[] = {"phone", "note", "empty", "spaced"};
    static const char *const row[] = {"+12125550100", "a, \"b\"\r\nc", NULL, "  x  "};
    char *out = NULL, *rows = NULL;
    size_t len = 0;
    ob_err_t err = {{0}};
    FILE *f = open_memstream(&out, &len);
    ingest_csv_write_row(f, header, OB_COUNTOF(header));
    ingest_csv_write_row(f, row, OB_COUNTOF(row));
    fclose(f);
    cr_expect_str_eq(
        out, "phone,note,empty,spaced\r\n+12125550100,\"a, \"\"b\"\"\r\nc\",,\"  x  \"\r\n");
    cr_assert_eq(parse_chunked(out, len, len, INGEST_CSV_DELIM_DETECT, &rows, &err), OB_OK, "%s",
                 err.msg);
    cr_expect_str_eq(rows,
                     "0@1:phone|note|empty|spaced\n1@2:+12125550100|a, \"b\"\\r\\nc||  x  \n");
    free(rows);
    free(out);
}
