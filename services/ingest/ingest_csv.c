/*
 * CSV for call uploads over libcsv. libcsv reports fields and rows but not
 * where they are, so the reader hands it one physical line at a time: the
 * line count is then exact at every callback, because a row can only end at
 * a line break or at the end of input. Each row is copied into a buffer the
 * reader reuses, so memory is bounded by the largest row the limits allow.
 * Until the delimiter is known the input is held back (at most the header
 * line, up to DETECT_MAX bytes), then parsed as if it had just arrived.
 */
#include "ingest_csv.h"

#include <cjson/cJSON.h>
#include <csv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libcsv grows its field buffer through a realloc hook that has no context
 * pointer, so the cap is a constant. Refusing to grow past it makes
 * csv_parse stop with CSV_ENOMEM, reported as an oversize field; fields
 * between the limit and the cap are caught by the length check in on_field. */
#define PARSER_BLOCK   4096
#define PARSER_BUF_MAX (INGEST_CSV_FIELD_MAX + PARSER_BLOCK)
/* Input looked at to choose the delimiter when the header line is longer. */
#define DETECT_MAX INGEST_CSV_FIELD_MAX

/* The fields of one row, stored back to back; reused from row to row. */
typedef struct {
    char *bytes;         /* field values, each followed by a NUL */
    size_t used;         /* bytes of `bytes` in use */
    size_t cap;          /* bytes allocated */
    size_t *offsets;     /* where each field starts in bytes */
    size_t *lengths;     /* length of each field, without its NUL */
    const char **fields; /* pointers into bytes, set when the row is delivered */
    size_t n;            /* fields stored */
    size_t fcap;         /* entries allocated in offsets, lengths and fields */
} rowbuf_t;

struct ingest_csv_reader {
    struct csv_parser parser;       /* libcsv state: the field being read */
    ingest_csv_header_fn on_header; /* may be NULL */
    ingest_csv_row_fn on_row;       /* never NULL */
    void *opaque;                   /* passed to both callbacks */
    rowbuf_t cur;                   /* the row being read */
    rowbuf_t header;                /* the header row, kept for on_row */
    ingest_csv_row_t header_view;   /* the header as passed to on_row */
    bool have_header;               /* the header has been delivered */
    size_t rows;                    /* data rows delivered */
    size_t line;                    /* physical line of the next input byte */
    bool after_cr;                  /* the last byte was CR: an LF now ends no line */
    size_t row_line;                /* line where the current row starts; 0 before it starts */
    bool row_nonempty;              /* some field of the current row is not empty */
    bool row_too_wide;              /* the current row passed INGEST_CSV_FIELDS_MAX */
    size_t row_bad_utf8;            /* 1-based column of the first bad field, or 0 */
    unsigned bom_seen;              /* leading bytes that matched the BOM so far */
    bool bom_done;                  /* the BOM was skipped or cannot come any more */
    char delim;                     /* field delimiter; 0 while it is being detected */
    char *held;                     /* input held back while detecting */
    size_t nheld, cap_held;         /* its bytes used and allocated */
    bool scan_quoted;               /* detecting: inside a quoted field */
    bool scan_text;                 /* detecting: the current line has text */
    size_t counts[3];               /* detecting: each candidate on the current line */
    bool finished;                  /* ingest_csv_finish was called */
    ob_rc_t rc;                     /* first failure; every later call returns it */
    ob_err_t fail;                  /* its message, also handed to the callbacks */
};

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

/* What a header line may be delimited by, in the order ties are settled:
 * Excel writes ';' where the decimal mark is a comma, and TAB for "Text". */
static const char candidates[3] = {',', ';', '\t'};

static void *bounded_realloc(void *p, size_t n)
{
    return n > PARSER_BUF_MAX ? NULL : ob_xrealloc(p, n);
}

static void fail(ingest_csv_reader_t *r, ob_rc_t rc, const char *fmt, ...) OB_PRINTF(3, 4);

static void fail(ingest_csv_reader_t *r, ob_rc_t rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail.msg, sizeof(r->fail.msg), fmt, ap);
    va_end(ap);
    r->rc = rc;
}

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. NUL
 * is refused too, because fields are handed out as C strings. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t more;
        if (c >= 0x01 && c <= 0x7F) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            more = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            more = 3;
        else
            return false;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (n - i - 1 < more || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += more + 1;
    }
    return true;
}

static void rowbuf_add(rowbuf_t *b, const void *s, size_t len)
{
    if (b->n == b->fcap) {
        b->fcap = b->fcap ? b->fcap * 2 : 16;
        if (b->fcap > INGEST_CSV_FIELDS_MAX)
            b->fcap = INGEST_CSV_FIELDS_MAX;
        b->offsets = ob_xrealloc(b->offsets, b->fcap * sizeof(*b->offsets));
        b->lengths = ob_xrealloc(b->lengths, b->fcap * sizeof(*b->lengths));
        b->fields = ob_xrealloc(b->fields, b->fcap * sizeof(*b->fields));
    }
    if (b->used + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->used + len + 1)
            cap *= 2;
        b->bytes = ob_xrealloc(b->bytes, cap);
        b->cap = cap;
    }
    if (len)
        memcpy(b->bytes + b->used, s, len);
    b->bytes[b->used + len] = '\0';
    b->offsets[b->n] = b->used;
    b->lengths[b->n] = len;
    b->n++;
    b->used += len + 1;
}

static ingest_csv_row_t rowbuf_view(rowbuf_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->fields[i] = b->bytes + b->offsets[i];
    return (ingest_csv_row_t){.nfields = b->n, .fields = b->fields, .lengths = b->lengths};
}

static void rowbuf_free(rowbuf_t *b)
{
    free(b->bytes);
    free(b->offsets);
    free(b->lengths);
    free(b->fields);
}

static void reset_row(ingest_csv_reader_t *r)
{
    r->cur.n = 0;
    r->cur.used = 0;
    r->row_line = 0;
    r->row_nonempty = false;
    r->row_too_wide = false;
    r->row_bad_utf8 = 0;
}

/* libcsv field callback. Past INGEST_CSV_FIELDS_MAX fields are only looked at,
 * not stored, so that a blank ",,,," row of any width is still skipped. */
static void on_field(void *data, size_t len, void *opaque)
{
    ingest_csv_reader_t *r = opaque;
    if (r->rc != OB_OK)
        return;
    if (len > INGEST_CSV_FIELD_MAX) {
        fail(r, OB_EINVAL, "line %zu: a field is longer than %d bytes", r->row_line,
             INGEST_CSV_FIELD_MAX);
        return;
    }
    if (len)
        r->row_nonempty = true;
    if (r->cur.n == INGEST_CSV_FIELDS_MAX) {
        r->row_too_wide = true;
        return;
    }
    rowbuf_add(&r->cur, data, len);
    if (!r->row_bad_utf8 && !utf8_valid(data, len))
        r->row_bad_utf8 = r->cur.n;
}

static void deliver(ingest_csv_reader_t *r)
{
    ingest_csv_row_t view = rowbuf_view(&r->cur);
    ob_rc_t rc = OB_OK;
    rowbuf_t swap;

    view.line = r->row_line;
    view.bad_utf8_col = r->row_bad_utf8;
    r->fail.msg[0] = '\0';
    if (r->have_header) {
        view.row = ++r->rows;
        rc = r->on_row(&view, &r->header_view, r->opaque, &r->fail);
    } else {
        if (r->on_header)
            rc = r->on_header(&view, r->opaque, &r->fail);
        /* Keep the header by swapping buffers; view points into the arrays
         * that move to r->header, so it stays valid as the header view. */
        swap = r->header;
        r->header = r->cur;
        r->cur = swap;
        r->header_view = view;
        r->have_header = true;
    }
    if (rc != OB_OK) {
        r->rc = rc;
        if (!r->fail.msg[0])
            ob_err_set(&r->fail, "line %zu: the upload was stopped at this row", view.line);
    }
}

/* libcsv row callback (c is the terminator, or -1 at the end of input). */
static void on_record(int c, void *opaque)
{
    ingest_csv_reader_t *r = opaque;
    (void)c;
    if (r->rc != OB_OK)
        return;
    if (r->row_too_wide && r->row_nonempty)
        fail(r, OB_EINVAL, "line %zu: the row has more than %d fields", r->row_line,
             INGEST_CSV_FIELDS_MAX);
    else if (r->row_nonempty)
        deliver(r);
    reset_row(r);
}

static void parse_piece(ingest_csv_reader_t *r, const unsigned char *s, size_t n)
{
    size_t done = csv_parse(&r->parser, s, n, on_field, on_record, r);
    if (done == n || r->rc != OB_OK)
        return;
    if (csv_error(&r->parser) == CSV_ENOMEM)
        fail(r, OB_EINVAL, "line %zu: a field is longer than %d bytes", r->row_line,
             INGEST_CSV_FIELD_MAX);
    else
        fail(r, OB_EINVAL, "line %zu: %s", r->row_line, csv_strerror(csv_error(&r->parser)));
}

/* Feeds libcsv up to and including each line break, counting lines: CR, LF
 * and CRLF each end one line, also inside quoted fields, as an editor counts.
 * A row starts at its first byte that libcsv does not skip as blank. */
static void parse_lines(ingest_csv_reader_t *r, const unsigned char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n && r->rc == OB_OK; i++) {
        unsigned char c = s[i];
        if (c == '\r' || c == '\n') {
            parse_piece(r, s + start, i + 1 - start);
            if (c == '\r' || !r->after_cr)
                r->line++;
            r->after_cr = c == '\r';
            start = i + 1;
        } else {
            r->after_cr = false;
            if (!r->row_line && c != ' ' && c != '\t')
                r->row_line = r->line;
        }
    }
    if (start < n && r->rc == OB_OK)
        parse_piece(r, s + start, n - start);
}

/* Counts the candidates on each line until a line with text ends (blank
 * lines and ",,," lines before the header do not count); true then. A quote
 * toggles quoting, so delimiters and line breaks inside quotes are data. */
static bool scan(ingest_csv_reader_t *r, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *cand = memchr(candidates, s[i], sizeof(candidates));
        if (s[i] == '"')
            r->scan_quoted = !r->scan_quoted;
        else if (r->scan_quoted)
            r->scan_text = true;
        else if ((s[i] == '\r' || s[i] == '\n') && r->scan_text)
            return true;
        else if (s[i] == '\r' || s[i] == '\n')
            memset(r->counts, 0, sizeof(r->counts));
        else if (cand)
            r->counts[cand - candidates]++;
        else if (s[i] != ' ')
            r->scan_text = true;
    }
    return false;
}

/* The most frequent candidate on the header line; ',' when there is none. */
static void choose_delimiter(ingest_csv_reader_t *r)
{
    size_t best = 0;
    for (size_t i = 1; i < OB_COUNTOF(candidates); i++)
        if (r->counts[i] > r->counts[best])
            best = i;
    r->delim = candidates[best];
    csv_set_delim(&r->parser, (unsigned char)r->delim);
}

/* Parses what was held back, once the delimiter is known. */
static void release_held(ingest_csv_reader_t *r)
{
    if (r->nheld)
        parse_lines(r, (const unsigned char *)r->held, r->nheld);
    free(r->held);
    r->held = NULL;
    r->nheld = r->cap_held = 0;
}

/* Input after the BOM: parsed at once when the delimiter is known, else held
 * back until the header line is complete (or DETECT_MAX bytes long). */
static void take(ingest_csv_reader_t *r, const unsigned char *s, size_t n)
{
    if (!r->delim) {
        if (!scan(r, s, n) && r->nheld + n <= DETECT_MAX) {
            if (r->nheld + n > r->cap_held) {
                r->cap_held = r->nheld + n > 2 * r->cap_held ? r->nheld + n : 2 * r->cap_held;
                r->held = ob_xrealloc(r->held, r->cap_held);
            }
            if (n)
                memcpy(r->held + r->nheld, s, n);
            r->nheld += n;
            return;
        }
        choose_delimiter(r);
        release_held(r);
    }
    if (r->rc == OB_OK)
        parse_lines(r, s, n);
}

/* The input did not start with a whole BOM: the bytes held back were data. */
static void end_bom(ingest_csv_reader_t *r)
{
    r->bom_done = true;
    take(r, utf8_bom, r->bom_seen);
}

/* Consumes the BOM bytes at the start of s, however the BOM is split. */
static size_t skip_bom(ingest_csv_reader_t *r, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (!r->bom_done && i < n) {
        if (s[i] == utf8_bom[r->bom_seen]) {
            i++;
            r->bom_seen++;
            r->bom_done = r->bom_seen == sizeof(utf8_bom);
        } else {
            end_bom(r);
        }
    }
    return i;
}

static ob_rc_t result(const ingest_csv_reader_t *r, ob_err_t *err)
{
    if (r->rc != OB_OK)
        ob_err_set(err, "%s", r->fail.msg);
    return r->rc;
}

ingest_csv_reader_t *ingest_csv_reader_new(ingest_csv_header_fn on_header, ingest_csv_row_fn on_row,
                                           void *opaque)
{
    OB_ASSERT(on_row != NULL);
    ingest_csv_reader_t *r = ob_xcalloc(1, sizeof(*r));
    /* Options stay 0 while parsing: CSV_STRICT would refuse the stray quotes
     * spreadsheets write; we copy every field, so CSV_APPEND_NULL is moot. */
    OB_ASSERT(csv_init(&r->parser, 0) == 0);
    csv_set_realloc_func(&r->parser, bounded_realloc);
    csv_set_blk_size(&r->parser, PARSER_BLOCK);
    r->on_header = on_header;
    r->on_row = on_row;
    r->opaque = opaque;
    r->line = 1;
    r->rc = OB_OK;
    return r;
}

void ingest_csv_reader_set_delimiter(ingest_csv_reader_t *r, char delim)
{
    OB_ASSERT(r->bom_seen == 0 && !r->bom_done && !r->nheld && !r->finished);
    OB_ASSERT(delim == INGEST_CSV_DELIM_DETECT || strchr(",;\t|", delim));
    r->delim = delim;
    if (delim)
        csv_set_delim(&r->parser, (unsigned char)delim);
}

char ingest_csv_reader_delimiter(const ingest_csv_reader_t *r)
{
    return r->delim;
}

bool ingest_csv_delimiter_parse(const char *text, char *delim)
{
    static const struct {
        const char *name; /* as a client writes it */
        char delim;       /* what it means */
    } names[] = {
        {",", ','},     {";", ';'},
        {"|", '|'},     {"\t", '\t'},
        {"comma", ','}, {"semicolon", ';'},
        {"pipe", '|'},  {"tab", '\t'},
        {"\\t", '\t'},  {"auto", INGEST_CSV_DELIM_DETECT},
    };
    for (size_t i = 0; text && i < OB_COUNTOF(names); i++)
        if (strcasecmp(text, names[i].name) == 0) {
            *delim = names[i].delim;
            return true;
        }
    return false;
}

ob_rc_t ingest_csv_feed(ingest_csv_reader_t *r, const char *data, size_t len, ob_err_t *err)
{
    OB_ASSERT(!r->finished);
    if (r->rc == OB_OK && len) {
        const unsigned char *s = (const unsigned char *)data;
        size_t skipped = skip_bom(r, s, len);
        if (r->rc == OB_OK)
            take(r, s + skipped, len - skipped);
    }
    return result(r, err);
}

ob_rc_t ingest_csv_finish(ingest_csv_reader_t *r, ob_err_t *err)
{
    OB_ASSERT(!r->finished);
    r->finished = true;
    if (r->rc == OB_OK && !r->bom_done)
        end_bom(r);
    if (r->rc == OB_OK && !r->delim) {
        choose_delimiter(r);
        release_held(r);
    }
    if (r->rc == OB_OK) {
        /* libcsv checks for a quoted field left open (CSV_STRICT_FINI) only
         * in strict mode, and reads the options only at the start of
         * csv_fini, so strictness is switched on for the end alone. */
        csv_set_opts(&r->parser, CSV_STRICT | CSV_STRICT_FINI);
        if (csv_fini(&r->parser, on_field, on_record, r) != 0 && r->rc == OB_OK)
            fail(r, OB_EINVAL, "line %zu: a quoted field is never closed (a '\"' is missing)",
                 r->row_line);
    }
    if (r->rc == OB_OK && !r->have_header)
        fail(r, OB_EINVAL, "the file is empty: there is no header row");
    return result(r, err);
}

void ingest_csv_reader_free(ingest_csv_reader_t *r)
{
    if (!r)
        return;
    csv_free(&r->parser);
    free(r->held);
    rowbuf_free(&r->cur);
    rowbuf_free(&r->header);
    free(r);
}

ob_rc_t ingest_csv_row_check(const ingest_csv_row_t *row, size_t ncolumns, ob_err_t *err)
{
    bool extra = false;
    for (size_t i = ncolumns; i < row->nfields; i++)
        extra = extra || row->lengths[i] > 0;
    if (row->bad_utf8_col)
        ob_err_set(err, "row %zu (line %zu): column %zu is not valid UTF-8 text", row->row,
                   row->line, row->bad_utf8_col);
    else if (row->nfields < ncolumns || extra)
        ob_err_set(err, "row %zu (line %zu) has %zu fields but the header has %zu columns",
                   row->row, row->line, row->nfields, ncolumns);
    return row->bad_utf8_col || row->nfields < ncolumns || extra ? OB_EINVAL : OB_OK;
}

/* ---- header mapping ---- */

typedef struct {
    const char *name;     /* header name: lower case, none of the characters same_name skips */
    ingest_csv_col_t col; /* its role */
} alias_t;

static const alias_t aliases[] = {
    {"phonenumber", INGEST_CSV_COL_PHONE},
    {"phone", INGEST_CSV_COL_PHONE},
    {"number", INGEST_CSV_COL_PHONE},
    {"destination", INGEST_CSV_COL_PHONE},
    {"mobile", INGEST_CSV_COL_PHONE},
    {"mobilenumber", INGEST_CSV_COL_PHONE},
    {"mobilephone", INGEST_CSV_COL_PHONE},
    {"cell", INGEST_CSV_COL_PHONE},
    {"cellnumber", INGEST_CSV_COL_PHONE},
    {"cellphone", INGEST_CSV_COL_PHONE},
    {"telephone", INGEST_CSV_COL_PHONE},
    {"telephonenumber", INGEST_CSV_COL_PHONE},
    {"tel", INGEST_CSV_COL_PHONE},
    {"to", INGEST_CSV_COL_PHONE},
    {"msisdn", INGEST_CSV_COL_PHONE},
    {"messagereference", INGEST_CSV_COL_MESSAGE_REFERENCE},
    {"maxattempts", INGEST_CSV_COL_MAX_ATTEMPTS},
    {"retryintervals", INGEST_CSV_COL_RETRY_INTERVAL},
    {"retryinterval", INGEST_CSV_COL_RETRY_INTERVAL},
    {"maxretries", INGEST_CSV_COL_MAX_RETRIES},
    {"reattemptwait", INGEST_CSV_COL_RETRY_INTERVAL_PLUM},
    {"starttimestamp", INGEST_CSV_COL_NOT_BEFORE},
    {"scheduledtimestamp", INGEST_CSV_COL_NOT_BEFORE},
    {"notbefore", INGEST_CSV_COL_NOT_BEFORE},
    {"scheduledtime", INGEST_CSV_COL_NOT_BEFORE},
    {"endtimestamp", INGEST_CSV_COL_EXPIRES_AT},
    {"expirationtimestamp", INGEST_CSV_COL_EXPIRES_AT},
    {"expiresat", INGEST_CSV_COL_EXPIRES_AT},
    {"expirationtime", INGEST_CSV_COL_EXPIRES_AT},
    {"priority", INGEST_CSV_COL_PRIORITY},
    {"resulturl", INGEST_CSV_COL_RESULT_URL},
    {"ani", INGEST_CSV_COL_CALLER_ID},
    {"callerid", INGEST_CSV_COL_CALLER_ID},
};

/* The phone column titles a refusal suggests; docs/csv.md lists them all. */
#define PHONE_TITLES "Phone Number, Phone, Mobile, Cell, Telephone, Tel, To, Number or Destination"

static const char *const col_names[] = {
    [INGEST_CSV_COL_PHONE] = "phone_number",
    [INGEST_CSV_COL_MESSAGE_REFERENCE] = "message_reference",
    [INGEST_CSV_COL_MAX_ATTEMPTS] = "max_attempts",
    [INGEST_CSV_COL_RETRY_INTERVAL] = "retry_interval_s",
    [INGEST_CSV_COL_MAX_RETRIES] = "max_retries",
    [INGEST_CSV_COL_RETRY_INTERVAL_PLUM] = "reattempt_wait",
    [INGEST_CSV_COL_NOT_BEFORE] = "not_before",
    [INGEST_CSV_COL_EXPIRES_AT] = "expires_at",
    [INGEST_CSV_COL_PRIORITY] = "priority",
    [INGEST_CSV_COL_RESULT_URL] = "result_url",
    [INGEST_CSV_COL_CALLER_ID] = "caller_id",
    [INGEST_CSV_COL_PARAMETER] = "call parameter",
    [INGEST_CSV_COL_IGNORED] = "ignored",
};

const char *ingest_csv_col_name(ingest_csv_col_t col)
{
    OB_ASSERT((size_t)col < OB_COUNTOF(col_names));
    return col_names[col];
}

/* The call field a role sets: the Plum columns set the same fields as ours,
 * so a header may not carry both. */
static ingest_csv_col_t call_field(ingest_csv_col_t col)
{
    if (col == INGEST_CSV_COL_MAX_RETRIES)
        return INGEST_CSV_COL_MAX_ATTEMPTS;
    if (col == INGEST_CSV_COL_RETRY_INTERVAL_PLUM)
        return INGEST_CSV_COL_RETRY_INTERVAL;
    return col;
}

static const char *trim(const char *s, size_t len, size_t *out_len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    *out_len = len;
    return s;
}

/* How spreadsheets and people vary one title: "Phone Number",
 * "phone_number", "Phone-Number" and "Tel." are the same names. */
static bool ignorable(char c)
{
    return c == ' ' || c == '\t' || c == '_' || c == '-' || c == '.';
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a and b are one name but for ASCII case and ignorable characters. */
static bool same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < alen && ignorable(a[i]))
            i++;
        while (j < blen && ignorable(b[j]))
            j++;
        if (i == alen || j == blen)
            return i == alen && j == blen;
        if (ascii_lower(a[i++]) != ascii_lower(b[j++]))
            return false;
    }
}

static ingest_csv_col_t role_of(const char *name, size_t len)
{
    for (size_t i = 0; i < OB_COUNTOF(aliases); i++)
        if (same_name(name, len, aliases[i].name, strlen(aliases[i].name)))
            return aliases[i].col;
    return INGEST_CSV_COL_PARAMETER;
}

/* Header names are client data and may be 64 KiB long: messages quote at
 * most this much of one, cut where a UTF-8 character starts (the message is
 * stored as text, which must stay UTF-8). */
#define NAME_SHOWN   64
#define NAME_LISTED  20 /* of each name in a list of columns */
#define NAMES_LISTED 6  /* names in such a list */

static int shown_max(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return (int)len;
    while (max && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

static int shown(const char *s, size_t len)
{
    return shown_max(s, len, NAME_SHOWN);
}

/* The header's names as "\"a\", \"b\", ... and 3 more" into buf, for a
 * client to see what was read (a wrong delimiter shows as one long name). */
static void list_columns(const ingest_csv_row_t *header, char *buf, size_t cap)
{
    size_t used = 0, len;
    buf[0] = '\0';
    for (size_t i = 0; i < header->nfields && i < NAMES_LISTED && used < cap; i++) {
        const char *name = trim(header->fields[i], header->lengths[i], &len);
        int n = shown_max(name, len, NAME_LISTED);
        used += (size_t)snprintf(buf + used, cap - used, "%s\"%.*s%s\"", i ? ", " : "", n, name,
                                 (size_t)n < len ? "..." : "");
    }
    if (header->nfields > NAMES_LISTED && used < cap)
        snprintf(buf + used, cap - used, " and %zu more", header->nfields - NAMES_LISTED);
}

/* The 1-based column phone_column names (a number or a name), or 0 with
 * err set. */
static size_t pick_column(const ingest_csv_row_t *header, const char *want, ob_err_t *err)
{
    size_t wlen = strlen(want), found = 0, len;
    char cols[NAMES_LISTED * (NAME_LISTED + 8) + 32];
    list_columns(header, cols, sizeof(cols));
    if (wlen && wlen <= 6 && strspn(want, "0123456789") == wlen) {
        size_t n = strtoul(want, NULL, 10);
        if (n >= 1 && n <= header->nfields)
            return n;
        ob_err_set(err, "phone_column %s is not a column of this file: it has %zu (%s)", want,
                   header->nfields, cols);
        return 0;
    }
    for (size_t i = 0; i < header->nfields; i++) {
        const char *name = trim(header->fields[i], header->lengths[i], &len);
        if (!same_name(name, len, want, wlen))
            continue;
        if (found) {
            ob_err_set(err,
                       "phone_column \"%.*s\" matches columns %zu and %zu; give the column's "
                       "number instead",
                       shown(want, wlen), want, found, i + 1);
            return 0;
        }
        found = i + 1;
    }
    if (!found)
        ob_err_set(err, "phone_column \"%.*s\" names no column of this file; its columns are %s",
                   shown(want, wlen), want, cols);
    return found;
}

ob_rc_t ingest_csv_map_header(const ingest_csv_row_t *header, const char *phone_column,
                              ingest_csv_col_t *roles, ob_err_t *err)
{
    size_t first[INGEST_CSV_COL_PARAMETER]; /* 1-based column setting each call field, or 0 */
    size_t pick = 0;                        /* the column phone_column names, or 0 */
    ob_rc_t rc = OB_EINVAL;
    size_t len, other_len;
    const char *name, *other;
    char cols[NAMES_LISTED * (NAME_LISTED + 8) + 32];

    memset(first, 0, sizeof(first));
    if (header->bad_utf8_col) {
        ob_err_set(err, "header column %zu is not valid UTF-8 text", header->bad_utf8_col);
        goto out;
    }
    for (size_t i = 0; i < header->nfields; i++) {
        trim(header->fields[i], header->lengths[i], &len);
        if (!len) {
            ob_err_set(err, "header column %zu has no name", i + 1);
            goto out;
        }
    }
    if (phone_column && !(pick = pick_column(header, phone_column, err)))
        goto out;
    for (size_t i = 0; i < header->nfields; i++) {
        name = trim(header->fields[i], header->lengths[i], &len);
        roles[i] = role_of(name, len);
        /* The chosen column is the phone column; others that look like one
         * are kept for the application, as call parameters. */
        if (pick && i + 1 == pick)
            roles[i] = INGEST_CSV_COL_PHONE;
        else if (pick && roles[i] == INGEST_CSV_COL_PHONE)
            roles[i] = INGEST_CSV_COL_PARAMETER;
        if (roles[i] != INGEST_CSV_COL_PARAMETER) {
            size_t *seen = &first[call_field(roles[i])];
            if (*seen) {
                other = trim(header->fields[*seen - 1], header->lengths[*seen - 1], &other_len);
                if (roles[i] == INGEST_CSV_COL_PHONE)
                    ob_err_set(err,
                               "header columns %zu (\"%.*s\") and %zu (\"%.*s\") both look like "
                               "the phone number; say which with phone_column=%zu or "
                               "phone_column=%zu, or rename the other",
                               *seen, shown(other, other_len), other, i + 1, shown(name, len), name,
                               *seen, i + 1);
                else
                    ob_err_set(err,
                               "header columns %zu (\"%.*s\") and %zu (\"%.*s\") both give %s; "
                               "keep one",
                               *seen, shown(other, other_len), other, i + 1, shown(name, len), name,
                               ingest_csv_col_name(call_field(roles[i])));
                goto out;
            }
            *seen = i + 1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            other = trim(header->fields[j], header->lengths[j], &other_len);
            if (roles[j] == INGEST_CSV_COL_PARAMETER && other_len == len &&
                memcmp(other, name, len) == 0) {
                ob_err_set(err, "header columns %zu and %zu are both named \"%.*s\"; keep one",
                           j + 1, i + 1, shown(name, len), name);
                goto out;
            }
        }
    }
    if (!first[INGEST_CSV_COL_PHONE]) {
        list_columns(header, cols, sizeof(cols));
        ob_err_set(
            err,
            "the header has no phone number column (its columns are %s): title it " PHONE_TITLES
            " (case, spaces, _ and - do not matter), or name it with phone_column",
            cols);
        goto out;
    }
    rc = OB_OK;
out:
    return rc;
}

char *ingest_csv_parameters_json(const ingest_csv_row_t *row, const ingest_csv_row_t *header,
                                 const ingest_csv_col_t *roles)
{
    size_t n = row->nfields < header->nfields ? row->nfields : header->nfields;
    size_t len;
    char *text, *out;
    /* cJSON returns NULL only when out of memory, which aborts, as elsewhere. */
    cJSON *obj = cJSON_CreateObject();

    OB_ASSERT(obj != NULL);
    OB_ASSERT(!row->bad_utf8_col && !header->bad_utf8_col);
    for (size_t i = 0; i < n; i++) {
        if (roles[i] != INGEST_CSV_COL_PARAMETER || !row->lengths[i])
            continue;
        const char *name = trim(header->fields[i], header->lengths[i], &len);
        char *key = ob_xstrndup(name, len);
        OB_ASSERT(cJSON_AddStringToObject(obj, key, row->fields[i]) != NULL);
        free(key);
    }
    text = cJSON_PrintUnformatted(obj);
    OB_ASSERT(text != NULL);
    out = ob_xstrdup(text);
    cJSON_free(text);
    cJSON_Delete(obj);
    return out;
}

/* ---- writer ---- */

/* An optional sign, digits, and optionally '.' and digits. */
static bool plain_number(const char *s, size_t n)
{
    size_t i = 0, digits = 0, fraction = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            fraction++;
    return digits && i == n && (fraction || s[n - 1] != '.');
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

void ingest_csv_write_cell(FILE *f, const char *value)
{
    const char *v = value ? value : "";
    size_t n = strlen(v);
    size_t lead = strspn(v, " ");
    size_t end = n;
    while (end > lead && v[end - 1] == ' ')
        end--;
    bool formula = lead < n && strchr("=+-@\t\r\n", v[lead]) && !plain_number(v + lead, end - lead);
    bool quote = strpbrk(v, ",\"\r\n") || (n && (blank(v[0]) || blank(v[n - 1])));

    if (quote)
        fputc('"', f);
    if (formula)
        fputc('\'', f);
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    if (quote)
        fputc('"', f);
}

void ingest_csv_write_row(FILE *f, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        ingest_csv_write_cell(f, cells[i]);
    }
    fputs("\r\n", f);
}
