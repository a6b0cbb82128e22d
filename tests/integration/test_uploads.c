/*
 * CSV uploads through real HTTP: good rows are queued and dialed, bad rows
 * are reported with row, line, field and reason without failing the upload,
 * the report can be fetched again as JSON and CSV, multipart works like the
 * console sends it, files as spreadsheets export them are read (titles,
 * ';', extensions, numbers in scientific notation), a dry run queues
 * nothing, and a large upload streams with bounded memory.
 */
#include "harness_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_stack_t s;
static h_tenant_t t;
static PGconn *pg;
static h_client_t c; /* t's */

static void teardown(void)
{
    h_stack_kill(&s);
    if (pg)
        PQfinish(pg);
}

/* POSTs body to t's deployment's /uploads<query>, under key when not NULL. */
static h_resp_t post_upload(const char *content_type, const char *query, const char *key,
                            const char *body)
{
    char suffix[256];
    snprintf(suffix, sizeof(suffix), "/uploads%s", query);
    return h_deployment_request(&c, "POST", suffix, content_type, key, body);
}

static h_resp_t upload(const char *content_type, const char *query, const char *body)
{
    return post_upload(content_type, query, NULL, body);
}

static const char good_and_bad[] = "\xEF\xBB\xBF"
                                   "Phone,message_reference,max_attempts,customer\r\n"
                                   "+1 212 555 0100,first,1,Sam\r\n"
                                   "not a number,second,1,Kim\r\n"
                                   "\r\n"
                                   "(212) 555-0101,\"third, with comma\",11,Lee\r\n"
                                   "212.555.0102,\"fourth \"\"quoted\"\"\",2,\"Ann, Jr.\"\r\n"
                                   "+12125550103,fifth\r\n";

Test(uploads, good_rows_queue_and_bad_rows_are_reported, .timeout = 180, .fini = teardown)
{
    const char *const fast[] = {"OB_SIM_TIME_SCALE=200", NULL};
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    c = h_client(&s, &t, pg);
    cr_assert(h_stack_up(&s, 1, fast));

    h_resp_t r = upload("text/csv", "?retry_interval_s=120", good_and_bad);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "status"), "completed");
    cr_expect_str_eq(h_json_path(r.body, "rows"), "5");
    cr_expect_str_eq(h_json_path(r.body, "queued"), "2");
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "3");
    /* Row 2 (line 3): the phone; row 3 (line 5, after a blank line): attempts;
     * row 5: too few fields. */
    cr_expect_str_eq(h_json_path(r.body, "errors.0.row"), "2");
    cr_expect_str_eq(h_json_path(r.body, "errors.0.line"), "3");
    cr_expect_str_eq(h_json_path(r.body, "errors.0.field"), "phone_number");
    cr_expect_str_eq(h_json_path(r.body, "errors.1.row"), "3");
    cr_expect_str_eq(h_json_path(r.body, "errors.1.line"), "5");
    cr_expect_str_eq(h_json_path(r.body, "errors.1.field"), "max_attempts");
    cr_expect_str_eq(h_json_path(r.body, "errors.2.row"), "5");
    cr_expect_str_eq(h_json_path(r.body, "errors.2.code"), "invalid_row");
    char *upload_id = h_json_path(r.body, "upload_id");
    char *calls = h_json_path(r.body, "links.calls");
    h_resp_free(&r);

    /* The queued rows become calls of this upload and complete. */
    const char *p[] = {upload_id};
    for (int i = 0; i < 300; i++) {
        char *n = h_pg_value(pg,
                             "SELECT count(*) FROM calls WHERE upload_id = $1"
                             " AND state = 'completed'",
                             1, p);
        bool done = strcmp(n, "2") == 0;
        free(n);
        if (done)
            break;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    r = h_get(&c, calls);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "calls.0.message_reference"), "fourth \"quoted\"");
    cr_expect_str_eq(h_json_path(r.body, "calls.0.phone_number"), "+12125550102");
    cr_expect_str_eq(h_json_path(r.body, "calls.0.state"), "completed");
    cr_expect_str_eq(h_json_path(r.body, "calls.1.message_reference"), "first");
    cr_expect_null(h_json_path(r.body, "calls.2"));
    char *call_id = h_json_path(r.body, "calls.0.call_id");
    h_resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/calls/%s", call_id);
    r = h_get(&c, path);
    cr_expect_str_eq(h_json_path(r.body, "call_parameters.customer"), "Ann, Jr.");
    cr_expect_str_eq(h_json_path(r.body, "retry_interval_s"), "120");
    cr_expect_str_eq(h_json_path(r.body, "max_attempts"), "2");
    h_resp_free(&r);

    /* The report, again, as JSON and as a spreadsheet. */
    snprintf(path, sizeof(path), "/api/v1/uploads/%s", upload_id);
    r = h_get(&c, path);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "3");
    cr_expect_str_eq(h_json_path(r.body, "errors.1.field"), "max_attempts");
    h_resp_free(&r);
    h_tenant_t other;
    h_tenant(pg, &other, 1);
    h_client_t theirs = h_client(&s, &other, pg);
    r = h_get(&theirs, path);
    cr_expect_eq(r.status, 404, "another account sees the upload");
    h_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/uploads/%s/report.csv", upload_id);
    r = h_get(&c, path);
    cr_expect_eq(r.status, 200);
    cr_expect(r.content_type && strstr(r.content_type, "text/csv"));
    cr_expect(strncmp(r.body, "\xEF\xBB\xBFrow,line,field,code,message\r\n2,3,phone_number,", 40) ==
                  0,
              "%s", r.body);
    h_resp_free(&r);
    cr_expect(h_stack_down(&s));
}

Test(uploads, multipart_and_refusals, .timeout = 120, .fini = teardown)
{
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    c = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    const char *multipart =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"list.csv\"\r\n"
        "Content-Type: text/csv\r\n\r\n"
        "phone_number,message_reference\n+12125550100,m1\n+12125550101,m2\n"
        "\r\n--XyZ--\r\n";
    h_resp_t r = upload("multipart/form-data; boundary=XyZ", "", multipart);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "queued"), "2");
    char *id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/uploads/%s", id);
    r = h_get(&c, path);
    cr_expect_str_eq(h_json_path(r.body, "file_name"), "list.csv");
    h_resp_free(&r);

    r = upload("text/csv", "", "name,message_reference\nSam,x\n");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "phone"), "%s", r.body);
    cr_expect_str_eq(h_json_path(r.body, "status"), "failed");
    h_resp_free(&r);

    r = upload("application/json", "", "[]");
    cr_expect_eq(r.status, 415, "%s", r.body);
    h_resp_free(&r);

    r = upload("text/csv", "?max_attempts=99", "phone\n+12125550100\n");
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(strstr(r.body, "\"field\":\"max_attempts\""), "%s", r.body);
    h_resp_free(&r);

    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
}

static h_resp_t upload_keyed(const char *query, const char *key, const char *body)
{
    return post_upload("text/csv", query, key, body);
}

/* A column of the call of an upload with this message_reference (NULL if
 * there is none), as the scheduler recorded it. */
static char *call_value(const char *upload_id, const char *reference, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM calls WHERE upload_id = $1 AND message_reference = $2", column);
    const char *p[] = {upload_id, reference};
    return h_pg_value(pg, sql, 2, p);
}

/* Waits until the scheduler recorded n calls of the uploads (a Postgres
 * array literal of their ids); false after 30 s. */
static bool wait_recorded(const char *upload_ids, const char *n)
{
    const char *p[] = {upload_ids};
    for (int i = 0; i < 300; i++) {
        char *got =
            h_pg_value(pg, "SELECT count(*) FROM calls WHERE upload_id = ANY($1::uuid[])", 1, p);
        bool done = strcmp(got, n) == 0;
        free(got);
        if (done)
            return true;
        h_sleep_ms(100);
    }
    return false;
}

/* As Excel saves "CSV UTF-8 (Comma delimited)": a BOM, CRLF, the column
 * titles as typed, quotes only where a cell needs them (a quoted line
 * break in row 3), a number the sheet showed in scientific notation, an
 * extension typed after a number. */
static const char excel_csv[] = "\xEF\xBB\xBF"
                                "Phone Number,Name,Message Reference,Notes\r\n"
                                "617 555 0106 ext. 12,Ann Lee,ref-1,\"Says \"\"hi\"\", twice\"\r\n"
                                "1.61755E+10,Bob Ray,ref-2,\r\n"
                                "(212) 555-0101,\"Cy, Jr.\",ref-3,\"two\r\nlines\"\r\n";

/* As LibreOffice saves CSV in a locale whose decimal mark is a comma: ';'
 * between cells, text cells quoted, numbers not (1,5 and the rounded
 * 4,47556E+11), and a "Mobile" column. */
static const char libreoffice_csv[] = "\xEF\xBB\xBF"
                                      "\"Mobile\";\"Name\";\"Amount\";\"Message Reference\"\r\n"
                                      "\"+44 20 7555 0110\";\"Doe; Jane\";1,5;\"eu-1\"\r\n"
                                      "4,47556E+11;\"Max\";2;\"eu-2\"\r\n"
                                      "\"+1 212 555 0102 x7\";\"Kim\";3;\"eu-3\"\r\n";

Test(uploads, spreadsheet_exports_and_dry_run, .timeout = 180, .fini = teardown)
{
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5); /* default_region US: national numbers are US ones */
    c = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    h_start(&s, "scheduler", "scheduler", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));
    cr_assert(h_wait_ready(&s.procs[1], 60000));
    char key[64], ids[512];
    h_unique(key, sizeof(key), "csv");

    /* A dry run reports what the upload would do, and queues nothing. */
    h_resp_t r = upload_keyed("?dry_run=true", key, excel_csv);
    cr_assert_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "dry_run", "true");
    h_expect_path(r.body, "status", "completed");
    h_expect_path(r.body, "rows", "3");
    h_expect_path(r.body, "accepted", "2");
    h_expect_path(r.body, "queued", "0");
    h_expect_path(r.body, "rejected", "1");
    h_expect_path(r.body, "errors.0.row", "2");
    h_expect_path(r.body, "errors.0.line", "3");
    h_expect_path(r.body, "errors.0.field", "phone_number");
    h_expect_path(r.body, "errors.0.code", "invalid_phone_number");
    char *msg = h_json_path(r.body, "errors.0.message");
    cr_expect(msg && strstr(msg, "\"1.61755E+10\" is in scientific notation") &&
                  strstr(msg, "format the column as text"),
              "%s", msg);
    free(msg);
    h_expect_path(r.body, "links.calls", NULL);
    char *dry_id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/uploads/%s", dry_id);
    r = h_get(&c, path);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "dry_run", "true");
    h_expect_path(r.body, "queued", "0");
    h_expect_path(r.body, "accepted", "2");
    h_expect_path(r.body, "errors.0.line", "3");
    h_resp_free(&r);

    /* The same file under the same Idempotency-Key: the dry run did not
     * use the key, so this is the first real upload, not a replay. */
    r = upload_keyed("", key, excel_csv);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_expect_path(r.body, "dry_run", "false");
    h_expect_path(r.body, "queued", "2");
    h_expect_path(r.body, "accepted", "2");
    h_expect_path(r.body, "rejected", "1");
    h_expect_path(r.body, "errors.0.row", "2");
    char *excel_id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);

    /* The ';' file is read as such, whatever its header's name for the number. */
    r = upload("text/csv", "", libreoffice_csv);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_expect_path(r.body, "rows", "3");
    h_expect_path(r.body, "queued", "2");
    h_expect_path(r.body, "errors.0.row", "2");
    h_expect_path(r.body, "errors.0.line", "3");
    msg = h_json_path(r.body, "errors.0.message");
    cr_expect(msg && strstr(msg, "\"4,47556E+11\" is in scientific notation"), "%s", msg);
    free(msg);
    char *libre_id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);

    /* Another delimiter is named; without it the refusal shows the one
     * column it read, and the names it accepts. */
    static const char piped[] = "Phone Number|Name\r\n+1 212 555 0103|Pat\r\n";
    r = upload("text/csv", "", piped);
    cr_expect_eq(r.status, 422, "%s", r.body);
    h_expect_path(r.body, "status", "failed");
    char *detail = h_json_path(r.body, "detail");
    cr_expect(detail && strstr(detail, "no phone number column (its columns are \"Phone "
                                       "Number|Name\"): title it Phone Number, Phone, Mobile"),
              "%s", detail);
    free(detail);
    h_resp_free(&r);
    r = upload("text/csv", "?delimiter=pipe", piped);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_expect_path(r.body, "queued", "1");
    char *piped_id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);

    /* Two columns that could hold the number: refused, naming both, until
     * phone_column says which; the other one reaches the application. */
    static const char two[] =
        "Phone,Mobile,Message Reference\r\n+12125550104,+12125550105,both\r\n";
    r = upload("text/csv", "", two);
    cr_expect_eq(r.status, 422, "%s", r.body);
    detail = h_json_path(r.body, "detail");
    cr_expect(detail && strstr(detail, "header columns 1 (\"Phone\") and 2 (\"Mobile\") both look "
                                       "like the phone number; say which with phone_column=1"),
              "%s", detail);
    free(detail);
    h_resp_free(&r);
    r = upload("text/csv", "?phone_column=mobile", two);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_expect_path(r.body, "queued", "1");
    char *two_id = h_json_path(r.body, "upload_id");
    h_resp_free(&r);

    /* Options that are not understood are refused before the file is read. */
    r = upload("text/csv", "?delimiter=colon&dry_run=yes&phone_column=", piped);
    cr_expect_eq(r.status, 422, "%s", r.body);
    h_expect_path(r.body, "code", "validation_failed");
    h_expect_path(r.body, "errors.0.field", "delimiter");
    h_expect_path(r.body, "errors.1.field", "dry_run");
    h_expect_path(r.body, "errors.2.field", "phone_column");
    h_resp_free(&r);

    /* The calls as queued. Every upload's messages go to the deployment's
     * one partition in order: once the real uploads' calls are recorded,
     * any call of the dry run before them would be too. */
    snprintf(ids, sizeof(ids), "{%s,%s,%s,%s}", excel_id, libre_id, piped_id, two_id);
    cr_assert(wait_recorded(ids, "6"), "the uploads' calls were not all recorded");
    const char *dp[] = {t.deployment_id};
    char *all = h_pg_value(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1", 1, dp);
    cr_expect_str_eq(all, "6", "the dry run queued calls");
    free(all);
    static const struct {
        const char *upload;    /* which upload: 0 excel, 1 libreoffice, 2 piped, 3 two */
        const char *reference; /* message_reference of the row */
        const char *column;    /* a column of calls */
        const char *want;      /* its value */
    } want[] = {
        {"0", "ref-1", "phone_number", "+16175550106"},
        {"0", "ref-1", "post_dial", "12"},
        {"0", "ref-1", "call_parameters->>'Name'", "Ann Lee"},
        {"0", "ref-1", "call_parameters->>'Notes'", "Says \"hi\", twice"},
        {"0", "ref-3", "phone_number", "+12125550101"},
        {"0", "ref-3", "post_dial IS NULL", "t"},
        {"0", "ref-3", "call_parameters->>'Name'", "Cy, Jr."},
        {"0", "ref-3", "call_parameters->>'Notes'", "two\r\nlines"},
        {"1", "eu-1", "phone_number", "+442075550110"},
        {"1", "eu-1", "call_parameters->>'Name'", "Doe; Jane"},
        {"1", "eu-1", "call_parameters->>'Amount'", "1,5"},
        {"1", "eu-3", "phone_number", "+12125550102"},
        {"1", "eu-3", "post_dial", "7"},
        {"3", "both", "phone_number", "+12125550105"},
        {"3", "both", "call_parameters->>'Phone'", "+12125550104"},
    };
    const char *uploads[] = {excel_id, libre_id, piped_id, two_id};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char *v = call_value(uploads[want[i].upload[0] - '0'], want[i].reference, want[i].column);
        cr_expect(v && strcmp(v, want[i].want) == 0, "%s %s: %s, not %s", want[i].reference,
                  want[i].column, v ? v : "(none)", want[i].want);
        free(v);
    }
    char *pat = h_pg_value(pg, "SELECT phone_number FROM calls WHERE upload_id = $1", 1,
                           (const char *[]){piped_id});
    cr_expect_str_eq(pat, "+12125550103");
    free(pat);
    /* And through the API, as a client reads the call. */
    char *call_id = call_value(excel_id, "ref-1", "call_id::text");
    snprintf(path, sizeof(path), "/api/v1/calls/%s", call_id);
    r = h_get(&c, path);
    cr_expect_eq(r.status, 200, "%s", r.body);
    h_expect_path(r.body, "post_dial", "12");
    h_expect_path(r.body, "call_parameters.Notes", "Says \"hi\", twice");
    h_resp_free(&r);
    free(call_id);
    free(dry_id);
    free(excel_id);
    free(libre_id);
    free(piped_id);
    free(two_id);

    cr_expect_eq(h_stop(&s.procs[1], 30000), 0);
    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
}

/* Peak resident memory of a process, in KiB (VmHWM). */
static long peak_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* OB_TEST_UPLOAD_ROWS rows (default 1,000,000) in one upload: every row is
 * queued and the ingest's memory does not grow with the file. */
Test(uploads, a_million_rows_stream_with_bounded_memory, .timeout = 600, .fini = teardown)
{
    const char *env_rows = getenv("OB_TEST_UPLOAD_ROWS");
    long rows = env_rows ? atol(env_rows) : 1000000;
    h_stack_init(&s);
    pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    c = h_client(&s, &t, pg);
    /* No scheduler records the calls: what ingest holds of them to answer
     * GET (docs/reliability.md) is capped apart, at 16 MiB here; the test is
     * about the upload's own memory. */
    const char *const env[] = {"OB_INGEST_ACCEPTED_MAX_BYTES=16777216", NULL};
    h_start(&s, "ingest", "ingest", env);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    size_t cap = (size_t)rows * 48 + 64, len = 0;
    char *csv = malloc(cap);
    cr_assert_not_null(csv);
    len += (size_t)snprintf(csv, cap, "phone_number,message_reference,customer\n");
    for (long i = 0; i < rows; i++)
        len +=
            (size_t)snprintf(csv + len, cap - len, "+1212555%04ld,ref-%ld,c%ld\n", i % 10000, i, i);
    long before = peak_kib(s.procs[0].pid);
    h_resp_t r = upload("text/csv", "", csv);
    long after = peak_kib(s.procs[0].pid);
    free(csv);
    cr_assert_eq(r.status, 201, "%.500s", r.body);
    char want[32];
    snprintf(want, sizeof(want), "%ld", rows);
    cr_expect_str_eq(h_json_path(r.body, "queued"), want);
    cr_expect_str_eq(h_json_path(r.body, "rejected"), "0");
    h_resp_free(&r);
    /* The file is tens of megabytes; the ingest holds one row at a time
     * (plus the producer's queue), so its peak grows far less than that.
     * (Not under AddressSanitizer, whose quarantine keeps freed memory.) */
#ifndef __SANITIZE_ADDRESS__
    cr_expect(after - before < 100 * 1024, "peak memory grew from %ld to %ld KiB for %zu bytes",
              before, after, len);
#endif
    cr_log_info("%ld rows, %zu bytes: ingest peak %ld -> %ld KiB", rows, len, before, after);
    cr_expect_eq(h_stop(&s.procs[0], 60000), 0);
}
