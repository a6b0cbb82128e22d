/*
 * A crash never wedges a client: ingest is SIGKILLed in the middle of a
 * large CSV upload (and of a calls:batch) sent with an Idempotency-Key; a
 * new ingest comes up, the client retries the same request with the same
 * key, is told to wait while the dead request's claim runs out, then gets
 * its answer, and every row ends up queued exactly once: the rows the dead
 * request had queued are not queued again, the others are.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static h_stack_t s;
static h_tenant_t t;

static void teardown(void)
{
    h_stack_kill(&s);
}

/* A body made row by row as curl reads it, slowly when paced, so that the
 * request is still in progress when ingest is killed. */
typedef struct {
    bool batch;        /* NDJSON calls instead of CSV rows */
    size_t rows;       /* rows in the body */
    size_t base;       /* row i calls +1212 (base + i) */
    size_t next;       /* next row to write (0: the CSV header) */
    size_t pace_every; /* rows between pauses; 0: no pauses */
    char buf[128];     /* the row being sent */
    size_t len, off;   /* its length and how much of it was sent */
    int port;          /* the ingest */
    const char *key;   /* Idempotency-Key */
    long status;       /* the answer's status, 0 when the connection broke */
    char *answer;      /* its body (malloc'd) */
    size_t answer_len; /* bytes in answer */
} sender_t;

/* Row i's phone number: distinct valid New York numbers. */
static void phone(const sender_t *w, size_t i, char out[16])
{
    snprintf(out, 16, "+1212%07zu", w->base + i);
}

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
    sender_t *w = arg;
    size_t room = size * n, put = 0;
    while (put < room) {
        if (w->off == w->len) {
            if (w->next > w->rows)
                break;
            char number[16];
            if (w->next == 0 && !w->batch) {
                w->len =
                    (size_t)snprintf(w->buf, sizeof(w->buf), "phone_number,message_reference\n");
            } else {
                size_t row = w->next - (w->batch ? 0 : 1);
                if (w->batch && row == w->rows)
                    break;
                phone(w, row, number);
                w->len = w->batch ? (size_t)snprintf(w->buf, sizeof(w->buf),
                                                     "{\"phone_number\": \"%s\"}\n", number)
                                  : (size_t)snprintf(w->buf, sizeof(w->buf), "%s,row-%zu\n", number,
                                                     row);
                if (w->pace_every && row % w->pace_every == 0 && row > 0)
                    h_sleep_ms(50);
            }
            w->off = 0;
            __atomic_store_n(&w->next, w->next + 1, __ATOMIC_RELAXED);
        }
        size_t k = w->len - w->off < room - put ? w->len - w->off : room - put;
        memcpy(dst + put, w->buf + w->off, k);
        w->off += k;
        put += k;
    }
    return put;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    sender_t *w = arg;
    w->answer = realloc(w->answer, w->answer_len + size * n + 1);
    memcpy(w->answer + w->answer_len, data, size * n);
    w->answer_len += size * n;
    w->answer[w->answer_len] = '\0';
    return size * n;
}

static void *send_body(void *arg)
{
    sender_t *w = arg;
    char url[256], auth[128], idem[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/deployments/%s/%s", w->port,
             t.deployment_id, w->batch ? "calls:batch" : "uploads");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.api_key);
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", w->key);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, idem);
    h = curl_slist_append(h, w->batch ? "Content-Type: application/x-ndjson"
                                      : "Content-Type: text/csv");
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
    h = curl_slist_append(h, "Expect:");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, w);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    w->status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &w->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return NULL;
}

static long count(PGconn *pg, const char *sql)
{
    const char *p[] = {t.deployment_id};
    return h_pg_long(pg, sql, 1, p);
}

/* Sends rows under key, kills ingest once some of them were recorded, then
 * retries until answered, and checks every row is queued exactly once. */
static void crash_and_retry(PGconn *pg, bool batch, size_t rows, size_t base, const char *key)
{
    long before = count(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1");
    /* Paced to take about 7.5 s (150 pauses of 50 ms) whatever the size. */
    sender_t first = {.batch = batch,
                      .rows = rows,
                      .base = base,
                      .pace_every = rows / 150,
                      .port = s.ingest_port,
                      .key = key};
    pthread_t th;
    pthread_create(&th, NULL, send_body, &first);
    /* In the middle: a third of the body sent. */
    for (int i = 0; i < 3000 && __atomic_load_n(&first.next, __ATOMIC_RELAXED) < rows / 3; i++)
        h_sleep_ms(10);
    h_proc_t *ingest = &s.procs[0];
    for (int i = 0; i < s.nprocs; i++)
        if (s.procs[i].port == s.ingest_port)
            ingest = &s.procs[i];
    kill(ingest->pid, SIGKILL);
    waitpid(ingest->pid, NULL, 0);
    ingest->pid = 0;
    size_t sent = __atomic_load_n(&first.next, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    cr_assert_eq(first.status, 0, "the first request was answered (%ld) before the kill: %s",
                 first.status, first.answer ? first.answer : "");
    cr_assert_lt(sent, rows, "the whole body was sent before the kill");
    /* What the dead request queued: recorded once the scheduler has read
     * all of it (the count stops moving). */
    long recorded = -1, last = -2;
    for (int i = 0; i < 60 && recorded != last; i++) {
        last = recorded;
        h_sleep_ms(1000);
        recorded = count(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1") - before;
    }
    cr_assert_gt(recorded, 0, "nothing was queued before the kill");
    cr_assert_lt(recorded, (long)rows, "every row was queued before the kill");

    h_proc_t *again = h_start(&s, "ingest", batch ? "ingest-batch" : "ingest-upload", NULL);
    cr_assert(h_wait_ready(again, 60000));
    /* The dead request's claim holds for its lease, then the retry takes over. */
    sender_t retry = {0};
    int waits = 0;
    for (int i = 0; i < 60; i++) {
        free(retry.answer);
        retry = (sender_t){
            .batch = batch, .rows = rows, .base = base, .port = s.ingest_port, .key = key};
        send_body(&retry);
        if (retry.status != 409)
            break;
        cr_assert(strstr(retry.answer, "idempotency_key_in_progress"), "%s", retry.answer);
        waits++;
        h_sleep_ms(1000);
    }
    cr_assert_eq(retry.status, batch ? 202 : 201, "%ld: %.500s", retry.status,
                 retry.answer ? retry.answer : "");
    cr_expect_leq(waits, 15, "the claim outlived its lease");
    cr_log_info("%s: killed with %zu of %zu rows sent and %ld calls recorded; the retry waited"
                " %d s for the claim",
                batch ? "batch" : "upload", sent, rows, recorded, waits);
    free(retry.answer);

    /* Every row exactly once. */
    long total = 0;
    for (int i = 0; i < 1200 && total < (long)rows; i++) {
        total = count(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1") - before;
        if (total < (long)rows)
            h_sleep_ms(100);
    }
    cr_expect_eq(total, (long)rows);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT phone_number) FROM calls WHERE deployment_id = $1"
             " AND phone_number >= '+1212%07zu' AND phone_number < '+1212%07zu'",
             base, base + rows);
    cr_expect_eq(count(pg, sql), (long)rows, "a row was queued twice or not at all");
    h_sleep_ms(1500);
    cr_expect_eq(count(pg, "SELECT count(*) FROM calls WHERE deployment_id = $1") - before,
                 (long)rows, "more calls than rows");
    free(first.answer);
}

Test(crash_retry, upload_and_batch_killed_midway_are_finished_by_a_retry, .timeout = 600,
     .fini = teardown)
{
    /* Under AddressSanitizer the same path with fewer rows: it looks for
     * memory errors there, not for what the size does. */
#ifdef __SANITIZE_ADDRESS__
    size_t rows = 60000;
#else
    size_t rows = 300000;
#endif
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    /* No dialer: the calls stay queued, where they are counted. */
    cr_assert(h_wait_ready(h_start(&s, "ingest", "ingest", NULL), 60000));
    cr_assert(h_wait_ready(h_start(&s, "scheduler", "scheduler", NULL), 60000));

    crash_and_retry(pg, false, rows, 2000000, "upload-crash-1");
    crash_and_retry(pg, true, rows / 3, 2500000, "batch-crash-1");
    cr_expect(h_stack_down(&s));
    PQfinish(pg);
}
