/*
 * libFuzzer target: the CSV upload reader (services/ingest/ingest_csv.c) as an upload
 * drives it: header mapping, the per-row checks, the row's call_parameters,
 * and every cell written back through the report writer. The first byte
 * picks the chunk size (low bits), so chunk boundaries fall everywhere, and
 * the phone_column option (high bits). The delimiter is detected.
 */
#include "ingest_csv.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ingest_csv_col_t *roles;  /* from the header, as the upload keeps them */
    const char *phone_column; /* the upload's option, or NULL */
    FILE *report;             /* cells are written here */
} upload_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ob_rc_t on_header(const ingest_csv_row_t *header, void *opaque, ob_err_t *err)
{
    upload_t *u = opaque;
    u->roles = ob_xcalloc(header->nfields, sizeof(ingest_csv_col_t));
    return ingest_csv_map_header(header, u->phone_column, u->roles, err);
}

static ob_rc_t on_row(const ingest_csv_row_t *row, const ingest_csv_row_t *header, void *opaque,
                      ob_err_t *err)
{
    upload_t *u = opaque;
    ob_err_t row_err = {{0}};
    (void)err;
    if (ingest_csv_row_check(row, header->nfields, &row_err) != OB_OK) {
        OB_ASSERT(row_err.msg[0] != '\0');
        return OB_OK;
    }
    /* The upload parses it back into the call's call_parameters. */
    char *params = ingest_csv_parameters_json(row, header, u->roles);
    cJSON *parsed = cJSON_Parse(params);
    OB_ASSERT(cJSON_IsObject(parsed));
    cJSON_Delete(parsed);
    free(params);
    ingest_csv_write_row(u->report, (const char *const *)row->fields, row->nfields);
    return OB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    upload_t u = {.report = fopen("/dev/null", "w")};
    ob_err_t err = {{0}};
    if (size == 0 || !u.report)
        goto out;
    static const char *const picks[] = {NULL, "2", "Phone Number", "0"};
    size_t chunk = data[0] % 16 == 0 ? size : data[0] % 16;
    u.phone_column = picks[(data[0] >> 4) % OB_COUNTOF(picks)];
    data++;
    size--;
    ingest_csv_reader_t *r = ingest_csv_reader_new(on_header, on_row, &u);
    ob_rc_t rc = OB_OK;
    for (size_t off = 0; off < size && rc == OB_OK; off += chunk)
        rc = ingest_csv_feed(r, (const char *)data + off, size - off < chunk ? size - off : chunk,
                             &err);
    if (rc == OB_OK)
        rc = ingest_csv_finish(r, &err);
    /* A refusal is stored as the upload's detail: Postgres text, UTF-8. */
    OB_ASSERT(rc == OB_OK || (err.msg[0] != '\0' && ob_utf8_valid(err.msg, strlen(err.msg))));
    ingest_csv_reader_free(r);
out:
    free(u.roles);
    if (u.report)
        fclose(u.report);
    return 0;
}
