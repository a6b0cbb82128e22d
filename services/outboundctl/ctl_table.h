/*
 * outboundctl's readable output, kept free of the network so the unit tests
 * can check it: aligned tables, a JSON member as one cell of text, and the
 * upload progress bar.
 */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include "ob_common.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Rows of text cells, printed with columns aligned. */
typedef struct {
    size_t ncols; /* cells per row */
    size_t nrows; /* rows added, the header included */
    size_t cap;   /* rows allocated */
    char **cells; /* nrows * ncols copies, owned */
} ctl_table_t;

/* Starts a table whose first row is the header (ncols names). */
void ctl_table_init(ctl_table_t *t, size_t ncols, const char *const *header);

/* Appends a row of ncols cells (copied); a NULL or empty cell shows "-". */
void ctl_table_add(ctl_table_t *t, const char *const *cells);

/* Prints every row, cells separated by two spaces and padded to the widest
 * cell of their column (counted in UTF-8 characters); the last column is not
 * padded, so no line ends in spaces. */
void ctl_table_print(const ctl_table_t *t, FILE *out);

/* Frees the cells; the table can be initialised again. */
void ctl_table_free(ctl_table_t *t);

/* Member name of obj as text for a cell: strings as they are, numbers in
 * decimal (no ".0" for whole numbers), true/false, and "" for null or a
 * missing member; objects and arrays as compact JSON. Writes to buf (len
 * bytes, truncated) and returns buf. */
const char *ctl_cell(const cJSON *obj, const char *name, char *buf, size_t len);

/* Prints the objects of the JSON array rows as a table: ncols columns
 * headed head[k], the cells ctl_cell(row, keys[k]). */
void ctl_print_rows(const cJSON *rows, size_t ncols, const char *const *head,
                    const char *const *keys, FILE *out);

/* Formats a byte count with a binary unit: "512 B", "1.5 KiB", "27.0 MiB". */
void ctl_bytes(long long n, char *buf, size_t len);

/* Formats an upload progress line of the given bar width:
 * "[#########           ]  45%  12.3 MiB / 27.0 MiB"; total <= 0 shows only
 * the bytes sent. */
void ctl_progress_line(long long now, long long total, int width, char *buf, size_t len);

#endif
