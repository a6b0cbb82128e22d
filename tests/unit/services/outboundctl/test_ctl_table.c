/* outboundctl's readable output (services/outboundctl/ctl_table.c): column
 * alignment, JSON members as cells, byte counts and the progress bar. */
#include "ctl_table.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

/* Prints t into a string (malloc'd). */
static char *render(const ctl_table_t *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ctl_table_print(t, f);
    fclose(f);
    return buf;
}

Test(ctl_table, columns_align_and_lines_do_not_end_in_spaces)
{
    static const char *const head[] = {"CALL", "STATE", "REF"};
    static const char *const r1[] = {"a1", "completed", "order-42"};
    static const char *const r2[] = {"b22222", NULL, ""};
    ctl_table_t t;
    ctl_table_init(&t, 3, head);
    ctl_table_add(&t, r1);
    ctl_table_add(&t, r2);
    char *out = render(&t);
    cr_expect_str_eq(out, "CALL    STATE      REF\n"
                          "a1      completed  order-42\n"
                          "b22222  -          -\n");
    free(out);
    ctl_table_free(&t);
}

Test(ctl_table, width_counts_characters_not_bytes)
{
    static const char *const head[] = {"NAME", "X"};
    static const char *const r1[] = {"Zoë", "1"};
    ctl_table_t t;
    ctl_table_init(&t, 2, head);
    ctl_table_add(&t, r1);
    char *out = render(&t);
    cr_expect_str_eq(out, "NAME  X\nZoë   1\n");
    free(out);
    ctl_table_free(&t);
}

Test(ctl_table, a_header_alone_prints)
{
    static const char *const head[] = {"A", "B"};
    ctl_table_t t;
    ctl_table_init(&t, 2, head);
    char *out = render(&t);
    cr_expect_str_eq(out, "A  B\n");
    free(out);
    ctl_table_free(&t);
}

typedef struct {
    const char *member; /* member of the object below */
    const char *want;   /* the cell */
} cell_case_t;

static cell_case_t cell_cases[] = {
    {"s", "text"},   {"n", "42"},  {"neg", "-3"},  {"f", "0.5"},       {"t", "true"},
    {"no", "false"}, {"null", ""}, {"absent", ""}, {"o", "{\"a\":1}"}, {"big", "1700000000123"},
};

ParameterizedTestParameters(ctl_table, cell)
{
    return cr_make_param_array(cell_case_t, cell_cases, sizeof(cell_cases) / sizeof(cell_cases[0]));
}

ParameterizedTest(cell_case_t *c, ctl_table, cell)
{
    cJSON *o = cJSON_Parse("{\"s\":\"text\",\"n\":42,\"neg\":-3,\"f\":0.5,\"t\":true,"
                           "\"no\":false,\"null\":null,\"o\":{\"a\":1},\"big\":1700000000123}");
    char buf[64];
    cr_expect_str_eq(ctl_cell(o, c->member, buf, sizeof(buf)), c->want, "%s", c->member);
    cJSON_Delete(o);
}

Test(ctl_table, a_long_cell_is_truncated_not_overrun)
{
    cJSON *o = cJSON_Parse("{\"s\":\"abcdefghij\"}");
    char buf[5];
    cr_expect_str_eq(ctl_cell(o, "s", buf, sizeof(buf)), "abcd");
    cJSON_Delete(o);
}

typedef struct {
    long long n;      /* bytes */
    const char *want; /* formatted */
} bytes_case_t;

static bytes_case_t bytes_cases[] = {
    {0, "0 B"},
    {1023, "1023 B"},
    {1024, "1.0 KiB"},
    {1536, "1.5 KiB"},
    {27LL * 1024 * 1024, "27.0 MiB"},
    {3LL * 1024 * 1024 * 1024, "3.0 GiB"},
};

ParameterizedTestParameters(ctl_table, bytes)
{
    return cr_make_param_array(bytes_case_t, bytes_cases,
                               sizeof(bytes_cases) / sizeof(bytes_cases[0]));
}

ParameterizedTest(bytes_case_t *c, ctl_table, bytes)
{
    char buf[32];
    ctl_bytes(c->n, buf, sizeof(buf));
    cr_expect_str_eq(buf, c->want);
}

typedef struct {
    long long now, total; /* bytes sent, of */
    int width;            /* bar width */
    const char *want;     /* the line */
} progress_case_t;

static progress_case_t progress_cases[] = {
    {0, 1000, 10, "[          ]   0%  0 B / 1000 B"},
    {500, 1000, 10, "[#####     ]  50%  500 B / 1000 B"},
    {1000, 1000, 10, "[##########] 100%  1000 B / 1000 B"},
    {2048, 1000, 4, "[####] 100%  1000 B / 1000 B"},
    {2048, 0, 10, "2.0 KiB sent"},
    {2048, -1, 10, "2.0 KiB sent"},
};

ParameterizedTestParameters(ctl_table, progress)
{
    return cr_make_param_array(progress_case_t, progress_cases,
                               sizeof(progress_cases) / sizeof(progress_cases[0]));
}

ParameterizedTest(progress_case_t *c, ctl_table, progress)
{
    char buf[256];
    ctl_progress_line(c->now, c->total, c->width, buf, sizeof(buf));
    cr_expect_str_eq(buf, c->want);
}
