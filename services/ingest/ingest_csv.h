/*
 * CSV for call uploads and upload reports: a streaming reader over libcsv
 * that takes input in chunks of any size, holds at most one row and finds
 * the delimiter itself; the mapping of the upload's header row to call
 * fields, forgiving of how spreadsheets title columns; and a writer for
 * cells that spreadsheets open safely.
 */
#ifndef INGEST_CSV_H
#define INGEST_CSV_H

#include "ob_common.h"

#include <stdio.h>

#define INGEST_CSV_FIELD_MAX    65536          /* bytes in one field, after unquoting */
#define INGEST_CSV_FIELDS_MAX   1000           /* fields in one row */
#define INGEST_CSV_UTF8_BOM     "\xEF\xBB\xBF" /* write it first so Excel reads a report as UTF-8 */
#define INGEST_CSV_DELIM_DETECT '\0' /* ingest_csv_reader_set_delimiter: choose from the header */

/* One record, valid only during the callback that receives it (the header
 * passed to on_row stays valid until ingest_csv_reader_free). */
typedef struct {
    size_t row;                /* 1-based data row, not counting blank lines; the header is 0 */
    size_t line;               /* 1-based physical line where the row starts, for messages */
    size_t nfields;            /* fields in this row; may differ from the header's */
    const char *const *fields; /* NUL-terminated values, unquoted and unescaped */
    const size_t *lengths;     /* byte length of each value, without the NUL */
    size_t bad_utf8_col;       /* 0, or 1-based column of the first field that is not UTF-8 */
} ingest_csv_row_t;

/* Callbacks return OB_OK to go on; any other code stops the parse, and
 * ingest_csv_feed or ingest_csv_finish returns it with the message the callback put
 * in err (err is never NULL). */
typedef ob_rc_t (*ingest_csv_header_fn)(const ingest_csv_row_t *header, void *opaque,
                                        ob_err_t *err);
typedef ob_rc_t (*ingest_csv_row_fn)(const ingest_csv_row_t *row, const ingest_csv_row_t *header,
                                     void *opaque, ob_err_t *err);

typedef struct ingest_csv_reader ingest_csv_reader_t;

/*
 * Creates a reader (RFC 4180 with the leniency of spreadsheet exports):
 * - a UTF-8 BOM at the very start is skipped, however the input is chunked;
 * - fields are delimited by ',', or by what ingest_csv_reader_set_delimiter
 *   chose: by default the header line decides (see there);
 * - CRLF, LF and CR end lines; quoted fields may hold commas, newlines and
 *   quotes written as "";
 * - unquoted fields lose surrounding spaces and tabs, quoted fields keep
 *   everything between the quotes;
 * - a quote inside an unquoted field is kept as a literal character (Excel);
 * - blank lines, and rows whose fields are all empty (",,," as spreadsheets
 *   write empty rows), are skipped: they count as lines, never as rows;
 * - the first remaining row is the header, passed to on_header (may be NULL);
 *   every later row goes to on_row (required), whatever its field count;
 * - a field that is not valid UTF-8 (or holds a NUL byte) does not stop the
 *   parse: the row is delivered with bad_utf8_col set, to be rejected alone.
 * Never returns NULL (out of memory aborts). Not thread-safe; free with
 * ingest_csv_reader_free.
 */
ingest_csv_reader_t *ingest_csv_reader_new(ingest_csv_header_fn on_header, ingest_csv_row_fn on_row,
                                           void *opaque);

/*
 * Sets the field delimiter: ',', ';', TAB or '|'; or INGEST_CSV_DELIM_DETECT,
 * the default: whichever of ',', ';' and TAB occurs most often outside
 * quotes in the first line that has text (the header; blank lines before it
 * do not count, nor does anything past its first 64 KiB), ',' on a tie or
 * when there is none, so a one-column file reads as before. Input is held
 * back until that line ends. Call before the first ingest_csv_feed (asserted).
 */
void ingest_csv_reader_set_delimiter(ingest_csv_reader_t *r, char delim);

/* The delimiter in use: the one set, or the one detected, or
 * INGEST_CSV_DELIM_DETECT while the header line is still being read. */
char ingest_csv_reader_delimiter(const ingest_csv_reader_t *r);

/*
 * Reads a delimiter as a client names it in an option: ",", ";", "|", a
 * TAB, "\t", or (case-insensitive) comma, semicolon, pipe, tab; "auto" is
 * INGEST_CSV_DELIM_DETECT. Returns false, leaving *delim alone, otherwise
 * (NULL included).
 */
bool ingest_csv_delimiter_parse(const char *text, char *delim);

/*
 * Parses the next len bytes of input, calling back for every row they
 * complete; chunk boundaries may fall anywhere, even inside a field or the
 * BOM. Does no I/O. Returns OB_OK; OB_EINVAL (err names the line) for a
 * field longer than INGEST_CSV_FIELD_MAX or a row with more than
 * INGEST_CSV_FIELDS_MAX fields; or a callback's code. After a failure the reader
 * only returns that failure again.
 */
ob_rc_t ingest_csv_feed(ingest_csv_reader_t *r, const char *data, size_t len,
                        ob_err_t *err) OB_MUSTCHECK;

/*
 * Ends the input: delivers the last row (with or without a final newline).
 * Returns what ingest_csv_feed returns, or OB_EINVAL when a quoted field is never
 * closed (err names the line where its row starts) or there is no header.
 * Call once; feeding after it is a programmer error.
 */
ob_rc_t ingest_csv_finish(ingest_csv_reader_t *r, ob_err_t *err) OB_MUSTCHECK;

/* Frees the reader and the rows it holds; NULL is fine. */
void ingest_csv_reader_free(ingest_csv_reader_t *r);

/*
 * The row checks every upload applies, as one message: OB_EINVAL when a field
 * is not UTF-8, when the row has fewer fields than the header's ncolumns, or
 * more unless the extra ones are empty (trailing commas); OB_OK otherwise.
 * err reads "row 7 (line 9): ...".
 */
ob_rc_t ingest_csv_row_check(const ingest_csv_row_t *row, size_t ncolumns,
                             ob_err_t *err) OB_MUSTCHECK;

/* Column roles for the call upload format. */
typedef enum {
    INGEST_CSV_COL_PHONE,               /* phone_number, phone, number, destination, mobile, cell,
                                       telephone, tel, to, msisdn and their combinations */
    INGEST_CSV_COL_MESSAGE_REFERENCE,   /* message_reference */
    INGEST_CSV_COL_MAX_ATTEMPTS,        /* max_attempts */
    INGEST_CSV_COL_RETRY_INTERVAL,      /* retry_interval_s, retry_interval (seconds) */
    INGEST_CSV_COL_MAX_RETRIES,         /* max_retries (Plum: attempts after the first) */
    INGEST_CSV_COL_RETRY_INTERVAL_PLUM, /* reattempt_wait (Plum) */
    INGEST_CSV_COL_NOT_BEFORE,          /* start_timestamp, scheduled_timestamp, not_before,
                                       scheduled_time */
    INGEST_CSV_COL_EXPIRES_AT,          /* end_timestamp, expiration_timestamp, expires_at,
                                       expiration_time */
    INGEST_CSV_COL_PRIORITY,            /* priority */
    INGEST_CSV_COL_RESULT_URL,          /* result_url */
    INGEST_CSV_COL_CALLER_ID,           /* ani, caller_id */
    INGEST_CSV_COL_PARAMETER,           /* any other name: a call_parameters member */
    INGEST_CSV_COL_IGNORED,             /* never assigned here; a caller sets it to drop a column */
} ingest_csv_col_t;

/* The canonical name of a role ("phone_number", ...), for messages. Static. */
const char *ingest_csv_col_name(ingest_csv_col_t col);

/*
 * Fills roles[0 .. header->nfields-1] from the header names. A name is
 * matched to a call field (the names in ingest_csv_col_t) regardless of ASCII
 * case, spaces, tabs, '_', '-' and '.': "Phone Number", "phone-number" and
 * "PHONE_NUMBER" all name the phone column, "Message Reference" the
 * message_reference. Any other name is a call parameter, keyed by the name
 * as written (trimmed).
 * phone_column, when not NULL, says which column holds the phone numbers:
 * its 1-based number ("3"), or its name, matched the same way; that column
 * is the phone column whatever its name, and any other column whose name
 * looks like a phone number's becomes a call parameter.
 * Returns OB_EINVAL with a message a client can act on when a name is empty
 * or not UTF-8; a known column or a parameter name appears twice (two
 * phone-like columns without phone_column: the message names both); there
 * is no phone column (the message lists the columns seen and the names
 * accepted); or phone_column names no column, or more than one.
 */
ob_rc_t ingest_csv_map_header(const ingest_csv_row_t *header, const char *phone_column,
                              ingest_csv_col_t *roles, ob_err_t *err) OB_MUSTCHECK;

/*
 * The row's INGEST_CSV_COL_PARAMETER cells as JSON object text, keyed by their
 * trimmed header names, values as strings; empty cells are left out, so a
 * row without parameters gives "{}". Fields beyond the header are ignored.
 * row and header must have passed the UTF-8 checks (asserted). Never NULL;
 * the caller frees the result with free().
 */
char *ingest_csv_parameters_json(const ingest_csv_row_t *row, const ingest_csv_row_t *header,
                                 const ingest_csv_col_t *roles);

/*
 * Writes one cell (NULL as empty) for a spreadsheet, RFC 4180-quoted when it
 * holds a comma, quote, CR or LF or starts or ends with a space or tab.
 * Formula injection (OWASP): when the first character after any leading
 * spaces is '=', '+', '-', '@', TAB, CR or LF, a single quote is written in
 * front, unless the whole value (spaces trimmed) is a plain number: an
 * optional sign, digits, and optionally '.' and digits. So "-5", "12.50" and
 * E.164 "+12125550100" stay as they are (a spreadsheet reads them as numbers,
 * which runs nothing), while "=1+2", "-2+3", "@SUM(A1)" and also
 * "+1 212 555 0100" become "'=1+2", ...: with spaces a spreadsheet would
 * evaluate a phone number as a formula and show an error, the apostrophe
 * keeps it readable. Write errors are left in f: check ferror(f) at the end.
 */
void ingest_csv_write_cell(FILE *f, const char *value);

/* Writes n cells separated by commas and ended by CRLF (RFC 4180). */
void ingest_csv_write_row(FILE *f, const char *const *cells, size_t n);

#endif
