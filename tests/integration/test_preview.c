/*
 * The console's Preview through real HTTP: POST /api/v1/app:preview with a
 * say verb answers a WAV file a listener hears as speech (8 kHz 16-bit
 * mono, of a plausible length, with energy), and bad verbs are refused with
 * a 422 naming the field: an unknown voice, empty or too long text, a rate
 * out of range, a play verb.
 */
#include "harness_client.h"
#include "ob_audio.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_stack_t s;

static void teardown(void)
{
    h_stack_kill(&s);
}

typedef struct {
    uint8_t *data; /* the body */
    size_t len;    /* its bytes */
} body_t;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    body_t *b = arg;
    b->data = realloc(b->data, b->len + size * n);
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    return size * n;
}

/* POSTs body to the preview with key; the answer's bytes, status and type. */
static body_t preview(const char *key, const char *json, long *status, char *type, size_t tlen)
{
    body_t b = {NULL, 0};
    char url[128], auth[192];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/app:preview", s.ingest_port);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(type, tlen, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return b;
}

/* Seconds of the WAV and the share of its 20 ms frames over -35 dBFS. */
static void hear(const body_t *b, double *seconds, double *voiced)
{
    cr_assert_geq(b->len, 44);
    cr_expect(memcmp(b->data, "RIFF", 4) == 0 && memcmp(b->data + 8, "WAVEfmt ", 8) == 0);
    cr_expect_eq(b->data[20] | b->data[21] << 8, 1, "PCM");
    cr_expect_eq(b->data[22], 1, "mono");
    cr_expect_eq(b->data[24] | b->data[25] << 8, 8000, "8 kHz");
    cr_expect_eq(b->data[34], 16, "16-bit");
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_audio_decode(b->data, b->len, "audio/wav", 300 * 8000, &x, &n, &err), OB_OK,
                 "%s", err.msg);
    size_t frames = n / 160, loud = 0;
    for (size_t f = 0; f < frames; f++) {
        double sum = 0;
        for (size_t i = 0; i < 160; i++)
            sum += (double)x[f * 160 + i] * x[f * 160 + i];
        loud += sqrt(sum / 160) / 32768.0 > pow(10, -35 / 20.0);
    }
    *seconds = n / 8000.0;
    *voiced = frames ? (double)loud / frames : 0;
    free(x);
}

Test(preview, say_is_heard_and_bad_verbs_are_named, .timeout = 120, .fini = teardown)
{
    h_tenant_t t;
    h_stack_init(&s);
    PGconn *pg = h_pg(&s);
    h_tenant(pg, &t, 5);
    h_client_t me = h_client(&s, &t, pg);
    h_start(&s, "ingest", "ingest", NULL);
    cr_assert(h_wait_ready(&s.procs[0], 60000));

    /* A say: what the callee would hear. */
    long status = 0;
    char type[64];
    double secs = 0, voiced = 0, fast_secs = 0;
    body_t b = preview(t.api_key,
                       "{\"verb\":\"say\",\"text\":\"Your appointment is tomorrow at nine\","
                       "\"voice\":\"en-us\",\"rate\":160}",
                       &status, type, sizeof(type));
    cr_assert_eq(status, 200, "%.*s", (int)b.len, (char *)b.data);
    cr_expect_str_eq(type, "audio/wav");
    hear(&b, &secs, &voiced);
    cr_expect(secs > 1.0 && secs < 5.0, "%.2f s of speech", secs);
    cr_expect(voiced > 0.5, "only %.0f%% of it voiced", voiced * 100);
    free(b.data);
    b = preview(t.api_key,
                "{\"verb\":\"say\",\"text\":\"Your appointment is tomorrow at nine\","
                "\"rate\":400, \"loop\": 2}",
                &status, type, sizeof(type));
    cr_assert_eq(status, 200);
    hear(&b, &fast_secs, &voiced);
    cr_expect_lt(fast_secs, secs * 0.6, "rate 400: %.2f s, rate 160: %.2f s", fast_secs, secs);
    free(b.data);
    b = preview(t.api_key,
                "{\"verb\":\"say\",\"text\":\"Votre rendez-vous est demain\","
                "\"voice\":\"fr\"}",
                &status, type, sizeof(type));
    cr_expect_eq(status, 200);
    free(b.data);

    /* Bad verbs: 422 naming the field. */
    char long_text[4100 + 64];
    snprintf(long_text, sizeof(long_text), "{\"verb\":\"say\",\"text\":\"%04001d\"}", 0);
    static const struct {
        const char *body;  /* sent */
        const char *field; /* named in errors[0] */
        const char *text;  /* in the answer */
    } bad[] = {
        {"{\"verb\":\"say\",\"text\":\"Hello\",\"voice\":\"xx\"}", "voice",
         "voice xx: no such espeak-ng voice"},
        {"{\"verb\":\"say\",\"text\":\"  \"}", "text", "text is empty"},
        {"{\"verb\":\"say\"}", "text", "text is required"},
        {NULL, "text", "text must be at most 4000 bytes (it has 4001)"},
        {"{\"verb\":\"say\",\"text\":\"Hello\",\"rate\":500}", "rate",
         "rate must be an integer from 80 to 450"},
        {"{\"verb\":\"play\",\"url\":\"https://example.com/a.wav\"}", "verb",
         "the preview renders say only"},
        {"{\"verb\":\"hangup\"}", "verb", "verb \\\"hangup\\\" has no audio to preview"},
        {"{\"verb\":\"say\",\"text\":\"Hello\",\"speed\":2}", "speed", "not a field of a say verb"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h_resp_t r =
            h_api(&me, "POST", "/api/v1/app:preview", bad[i].body ? bad[i].body : long_text);
        cr_expect_eq(r.status, 422, "%s: %s", bad[i].text, r.body);
        cr_expect(r.content_type && strcmp(r.content_type, "application/problem+json") == 0);
        char *field = h_json_path(r.body, "errors.0.field");
        cr_expect(field && strcmp(field, bad[i].field) == 0, "%s: %s", bad[i].text, r.body);
        cr_expect(strstr(r.body, bad[i].text), "want \"%s\" in %s", bad[i].text, r.body);
        free(field);
        h_resp_free(&r);
    }

    /* Not JSON, and no key. */
    h_resp_t r = h_api(&me, "POST", "/api/v1/app:preview", "{\"verb\":");
    cr_expect_eq(r.status, 400, "%s", r.body);
    h_resp_free(&r);
    r = h_http(s.ingest_port, "POST", "/api/v1/app:preview", NULL, "{\"verb\":\"say\"}");
    cr_expect_eq(r.status, 401, "%s", r.body);
    h_resp_free(&r);
    r = h_api(&me, "GET", "/api/v1/app:preview", NULL);
    cr_expect_eq(r.status, 405, "%s", r.body);
    h_resp_free(&r);

    PQfinish(pg);
    cr_expect_eq(h_stop(&s.procs[0], 30000), 0);
}
