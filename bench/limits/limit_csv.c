/*
 * The CSV upload's limit: libcsv alone reading and splitting the upload's
 * file into rows and fields (the same parser options ingest_csv sets), with no
 * validation, no phone numbers and no Kafka. Reads in 64 KiB blocks, as an
 * upload's body arrives; prints one JSON line with the time and peak memory.
 *
 * Usage: limit_csv FILE
 */
#include "limits.h"

#include <csv.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
    long rows;   /* rows ended */
    long fields; /* fields seen */
    size_t max;  /* widest field */
} counts_t;

static void on_field(void *s, size_t len, void *arg)
{
    counts_t *c = arg;
    (void)s;
    c->fields++;
    if (len > c->max)
        c->max = len;
}

static void on_row(int ch, void *arg)
{
    counts_t *c = arg;
    (void)ch;
    c->rows++;
}

int main(int argc, char **argv)
{
    static char buf[1 << 16];
    struct csv_parser p;
    bool parser = false;
    counts_t c = {0};
    size_t n, bytes = 0;
    FILE *f = NULL;
    int code = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 64;
    }
    f = fopen(argv[1], "rb");
    if (!f || csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        perror(argv[1]);
        goto out;
    }
    parser = true;
    double start = limits_now();
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        bytes += n;
        if (csv_parse(&p, buf, n, on_field, on_row, &c) != n) {
            fprintf(stderr, "%s: %s\n", argv[1], csv_strerror(csv_error(&p)));
            goto out;
        }
    }
    csv_fini(&p, on_field, on_row, &c);
    double seconds = limits_now() - start;
    /* The header is a row too; the upload reports data rows. */
    printf("{\"tool\":\"csv\",\"rows\":%ld,\"fields\":%ld,\"bytes\":%zu,\"seconds\":%.4f,"
           "\"rows_per_s\":%.1f,\"peak_rss_kb\":%ld}\n",
           c.rows - 1, c.fields, bytes, seconds, (double)(c.rows - 1) / seconds,
           limits_peak_rss_kb());
    code = 0;
out:
    if (parser)
        csv_free(&p);
    if (f)
        fclose(f);
    return code;
}
