/*
 * Readable output for outboundctl: aligned columns, as kubectl and docker
 * print them, so a table stays legible and still splits on whitespace.
 */
#include "ctl_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ctl_table_init(ctl_table_t *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    ctl_table_add(t, header);
}

void ctl_table_add(ctl_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = ob_xrealloc(t->cells, t->cap * t->ncols * sizeof(char *));
    }
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] && cells[c][0] ? cells[c] : "-";
        t->cells[t->nrows * t->ncols + c] = ob_xstrdup(s);
    }
    t->nrows++;
}

/* Characters, not bytes: continuation bytes of UTF-8 do not count. */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void ctl_table_print(const ctl_table_t *t, FILE *out)
{
    size_t *w = ob_xcalloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = width_of(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            fputs(s, out);
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(w[c] - width_of(s) + 2), "");
        }
        fputc('\n', out);
    }
    free(w);
}

void ctl_table_free(ctl_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

const char *ctl_cell(const cJSON *obj, const char *name, char *buf, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    buf[0] = '\0';
    if (!v || cJSON_IsNull(v)) {
        /* empty: the table shows "-" */
    } else if (cJSON_IsString(v)) {
        snprintf(buf, len, "%s", v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(buf, len, "%.0f", d);
        else
            snprintf(buf, len, "%g", d);
    } else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(buf, len, "%s", s ? s : "");
        cJSON_free(s);
    }
    return buf;
}

void ctl_bytes(long long n, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, len, "%lld B", n);
        return;
    }
    double v = (double)n / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < OB_COUNTOF(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

void ctl_progress_line(long long now, long long total, int width, char *buf, size_t len)
{
    char sent[32], all[32];
    if (total > 0 && now > total)
        now = total;
    ctl_bytes(now, sent, sizeof(sent));
    if (total <= 0 || width <= 0 || width > 200) {
        snprintf(buf, len, "%s sent", sent);
        return;
    }
    ctl_bytes(total, all, sizeof(all));
    char bar[201];
    int filled = (int)(now * width / total);
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : ' ';
    bar[width] = '\0';
    snprintf(buf, len, "[%s] %3d%%  %s / %s", bar, (int)(now * 100 / total), sent, all);
}

void ctl_print_rows(const cJSON *rows, size_t ncols, const char *const *head,
                    const char *const *keys, FILE *out)
{
    ctl_table_t t;
    char(*cells)[512] = ob_xcalloc(ncols, sizeof(*cells));
    const char **row = ob_xcalloc(ncols, sizeof(*row));
    ctl_table_init(&t, ncols, head);
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        for (size_t k = 0; k < ncols; k++)
            row[k] = ctl_cell(r, keys[k], cells[k], sizeof(cells[k]));
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, out);
    ctl_table_free(&t);
    free(row);
    free(cells);
}
