/* The dialer's media cache (services/dialer/dialer_media.c): says rendered
 * once on the render thread and then served from the cache, plays fetched
 * from a local HTTP server (libmicrohttpd, in this process) and decoded,
 * failures cached and named, work for the same key joined, the cache kept
 * to its size by dropping the least recently used, and the URL policy
 * applied to every connection. */
#include "dialer_media.h"
#include "ob_audio.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENTENCE  "Your appointment is tomorrow at nine"
#define MAX_BYTES 50000

/* ---- The file server ---- */

typedef struct {
    struct MHD_Daemon *d; /* serving */
    int port;             /* on 127.0.0.1 */
    atomic_int hits;      /* requests answered */
    uint8_t *wav;         /* a 1 s 1 kHz tone at 8 kHz, WAV */
    size_t wav_len;       /* its bytes */
} server_t;

static server_t srv;

/* A 1 kHz tone at amplitude 0.5 for secs at rate. */
static int16_t *tone(int rate, double secs, size_t *n)
{
    *n = (size_t)(rate * secs);
    int16_t *x = malloc(*n * sizeof(int16_t));
    for (size_t i = 0; i < *n; i++)
        x[i] = (int16_t)lrint(16384 * sin(2 * M_PI * 1000 * (double)i / rate));
    return x;
}

static ssize_t chunked_zeros(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= 4 * MAX_BYTES)
        return MHD_CONTENT_READER_END_OF_STREAM;
    memset(buf, 0, max);
    return (ssize_t)max;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_len, void **state)
{
    server_t *s = cls;
    (void)method, (void)version, (void)upload, (void)upload_len;
    if (!*state) { /* the headers: answer on the next call */
        *state = s;
        return MHD_YES;
    }
    atomic_fetch_add(&s->hits, 1);
    struct MHD_Response *r = NULL;
    unsigned status = 200;
    const char *type = "audio/wav";
    if (strcmp(url, "/tone.wav") == 0) {
        r = MHD_create_response_from_buffer(s->wav_len, s->wav, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/tone.l16") == 0 || strcmp(url, "/tone.ul") == 0) {
        bool l16 = url[6] == 'l';
        size_t n;
        int16_t *x = tone(l16 ? 16000 : 8000, 1.0, &n);
        size_t len = l16 ? 2 * n : n;
        uint8_t *b = malloc(len);
        for (size_t i = 0; i < n; i++)
            if (l16)
                b[2 * i] = (uint8_t)((uint16_t)x[i] >> 8), b[2 * i + 1] = (uint8_t)x[i];
            else
                b[i] = ob_audio_ulaw(x[i]);
        free(x);
        r = MHD_create_response_from_buffer(len, b, MHD_RESPMEM_MUST_FREE);
        type = l16 ? "audio/L16;rate=16000" : "audio/basic";
    } else if (strcmp(url, "/big.wav") == 0) {
        r = MHD_create_response_from_buffer(2 * MAX_BYTES, calloc(1, 2 * MAX_BYTES),
                                            MHD_RESPMEM_MUST_FREE);
    } else if (strcmp(url, "/big-chunked") == 0) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, chunked_zeros, NULL, NULL);
    } else if (strcmp(url, "/page.html") == 0) {
        static char page[] = "<html><body>Hello</body></html>";
        r = MHD_create_response_from_buffer(strlen(page), page, MHD_RESPMEM_PERSISTENT);
        type = "text/html; charset=utf-8";
    } else if (strcmp(url, "/moved") == 0 || strcmp(url, "/loop") == 0) {
        r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", url[1] == 'm' ? "/tone.wav" : "/loop");
        status = 302;
    } else if (strcmp(url, "/slow") == 0) {
        usleep(1500 * 1000);
        r = MHD_create_response_from_buffer(s->wav_len, s->wav, MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(9, "not found", MHD_RESPMEM_PERSISTENT);
        status = 404;
        type = "text/plain";
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static void server_up(void)
{
    size_t n;
    int16_t *x = tone(8000, 1.0, &n);
    srv.wav = ob_audio_wav(x, n, &srv.wav_len);
    free(x);
    atomic_store(&srv.hits, 0);
    srv.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                             NULL, NULL, serve, &srv, MHD_OPTION_END);
    cr_assert(srv.d);
    srv.port = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void server_down(void)
{
    MHD_stop_daemon(srv.d);
    free(srv.wav);
}

static const char *url_of(const char *path)
{
    static char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    return url;
}

/* ---- The module ---- */

static dialer_media_t *m;
static const ob_url_policy_t no_ranges; /* refuses nothing */

static dialer_media_opts_t opts(void)
{
    return (dialer_media_opts_t){
        .cache_bytes = 64 << 20,
        .fetch_max_bytes = MAX_BYTES,
        .fetch_timeout_ms = 500,
        .render_timeout_ms = 3000,
        .max_audio_ms = 300000,
        .urls = &no_ranges,
    };
}

static void up_with(dialer_media_opts_t o)
{
    ob_err_t err = {{0}};
    server_up();
    cr_assert_eq(dialer_media_new(&o, &m, &err), OB_OK, "%s", err.msg);
}

static void up(void)
{
    up_with(opts());
}

static void down(void)
{
    dialer_media_free(m);
    m = NULL;
    server_down();
}

/* Asks until the answer is no longer PENDING (5 s at most), running the
 * module meanwhile. */
static dialer_media_state_t wait_say(const char *text, const char *voice, int rate,
                                     dialer_audio_t **a, const char **why)
{
    dialer_media_state_t st;
    int64_t deadline = ob_mono_ms() + 5000;
    while ((st = dialer_media_say(m, text, voice, rate, a, why)) == DIALER_MEDIA_PENDING &&
           ob_mono_ms() < deadline) {
        dialer_media_run(m, ob_mono_ms());
        usleep(1000);
    }
    return st;
}

static dialer_media_state_t wait_play(const char *url, dialer_audio_t **a, const char **why)
{
    dialer_media_state_t st;
    int64_t deadline = ob_mono_ms() + 5000;
    while ((st = dialer_media_play(m, url, a, why)) == DIALER_MEDIA_PENDING &&
           ob_mono_ms() < deadline) {
        dialer_media_run(m, ob_mono_ms());
        usleep(1000);
    }
    return st;
}

static double frequency(const dialer_audio_t *a)
{
    size_t crossings = 0, first = 0, last = 0;
    for (size_t i = a->n / 10 + 1; i < a->n - a->n / 10; i++)
        if ((a->samples[i - 1] < 0) != (a->samples[i] < 0)) {
            if (!crossings)
                first = i;
            last = i;
            crossings++;
        }
    return crossings < 2 ? 0 : (crossings - 1) / 2.0 / ((last - first) / 8000.0);
}

static void stats(long long *entries, long long *bytes, long long *hits, long long *misses)
{
    dialer_media_stats(m, entries, bytes, hits, misses);
}

/* ---- Say ---- */

Test(media, say_is_pending_then_ready_then_cached, .init = up, .fini = down)
{
    dialer_audio_t *a = NULL, *b = NULL;
    const char *why = NULL;
    cr_expect_eq(dialer_media_say(m, SENTENCE, "en-us", 175, &a, &why), DIALER_MEDIA_PENDING);
    cr_expect_eq(dialer_media_say(m, SENTENCE, "en-us", 175, &a, &why), DIALER_MEDIA_PENDING,
                 "asked again while rendering: joins the render");
    cr_assert_eq(wait_say(SENTENCE, "en-us", 175, &a, &why), DIALER_MEDIA_READY, "%s", why);
    int ms = dialer_audio_ms(a);
    cr_expect(ms > 1000 && ms < 5000, "%d ms of speech", ms);
    cr_expect_eq(dialer_media_say(m, SENTENCE, "en-us", 175, &b, &why), DIALER_MEDIA_READY);
    cr_expect_eq(a, b, "the cache hands out the same audio");
    long long entries, bytes, hits, misses;
    stats(&entries, &bytes, &hits, &misses);
    cr_expect_eq(misses, 1, "rendered %lld times", misses);
    cr_expect_eq(hits, 2);
    cr_expect_eq(entries, 1);
    cr_expect_geq(bytes, (long long)a->n * 2);
    cr_expect_eq(dialer_media_run(m, 1000), INT64_MAX, "idle once settled");
    dialer_audio_unref(a);
    dialer_audio_unref(b);
}

Test(media, say_keys_on_voice_and_rate, .init = up, .fini = down)
{
    dialer_audio_t *slow = NULL, *fast = NULL, *fr = NULL, *dflt = NULL;
    const char *why = NULL;
    cr_assert_eq(wait_say(SENTENCE, "en-us", 120, &slow, &why), DIALER_MEDIA_READY, "%s", why);
    cr_assert_eq(wait_say(SENTENCE, "en-us", 300, &fast, &why), DIALER_MEDIA_READY, "%s", why);
    cr_assert_eq(wait_say(SENTENCE, "fr", 120, &fr, &why), DIALER_MEDIA_READY, "%s", why);
    cr_assert_eq(wait_say(SENTENCE, NULL, 120, &dflt, &why), DIALER_MEDIA_READY, "%s", why);
    cr_expect_lt(dialer_audio_ms(fast), dialer_audio_ms(slow) * 6 / 10);
    cr_expect_neq(fr, slow);
    cr_expect_eq(dflt, slow, "no voice is en-us, the same entry");
    dialer_audio_unref(slow);
    dialer_audio_unref(fast);
    dialer_audio_unref(fr);
    dialer_audio_unref(dflt);
}

typedef struct {
    const char *text;  /* said */
    const char *voice; /* in */
    int max_audio_ms;  /* longest audio kept */
    int timeout_ms;    /* render bound */
    const char *why;   /* the failure (prefix) */
} say_fail_t;

static say_fail_t say_fails[] = {
    {SENTENCE, "xx", 300000, 3000, "say: voice xx: no such espeak-ng voice"},
    {"", "en-us", 300000, 3000, "say: text is empty"},
    {SENTENCE ". " SENTENCE ". " SENTENCE, "en-us", 1000, 3000, "say: "},
    {SENTENCE ". " SENTENCE ". " SENTENCE ". " SENTENCE, "en-us", 300000, 5,
     "say: render took over 5 ms"},
};

ParameterizedTestParameters(media, say_failures_are_named_and_cached)
{
    return cr_make_param_array(say_fail_t, say_fails, OB_COUNTOF(say_fails));
}

ParameterizedTest(say_fail_t *c, media, say_failures_are_named_and_cached, .fini = down)
{
    dialer_media_opts_t o = opts();
    o.max_audio_ms = c->max_audio_ms;
    o.render_timeout_ms = c->timeout_ms;
    up_with(o);
    dialer_audio_t *a = NULL;
    const char *why = NULL;
    cr_assert_eq(wait_say(c->text, c->voice, 175, &a, &why), DIALER_MEDIA_FAILED);
    cr_expect(strncmp(why, c->why, strlen(c->why)) == 0, "got \"%s\", want \"%s\"", why, c->why);
    if (c->max_audio_ms == 1000)
        cr_expect(strstr(why, "s of speech, longer than 1 s"), "%s", why);
    /* asked again: failed at once, not rendered again */
    const char *again = NULL;
    cr_expect_eq(dialer_media_say(m, c->text, c->voice, 175, &a, &again), DIALER_MEDIA_FAILED);
    cr_expect_str_eq(again, why);
    long long entries, bytes, hits, misses;
    stats(&entries, &bytes, &hits, &misses);
    cr_expect_eq(misses, 1);
    cr_expect_null(a);
}

/* ---- Play ---- */

typedef struct {
    const char *path; /* on the server */
    const char *why;  /* the failure after "play <url>: ", NULL: played */
} play_case_t;

static play_case_t play_cases[] = {
    {"/tone.wav", NULL},
    {"/tone.l16", NULL}, /* audio/L16;rate=16000, big-endian, resampled */
    {"/tone.ul", NULL},  /* audio/basic */
    {"/moved", NULL},    /* a redirect to /tone.wav */
    {"/missing.wav", "answered 404"},
    {"/big.wav", "100000 bytes, over the 50000 limit"},
    {"/big-chunked", "over 50000 bytes, the limit"},
    {"/page.html", "text/html is not supported (and not a WAV file): use WAV (PCM or G.711), "
                   "audio/basic, audio/x-alaw-basic or audio/L16;rate=N"},
    {"/loop", "more than 3 redirects"},
    {"/slow", "not fetched within 500 ms"},
};

ParameterizedTestParameters(media, plays_are_fetched_decoded_or_named)
{
    return cr_make_param_array(play_case_t, play_cases, OB_COUNTOF(play_cases));
}

ParameterizedTest(play_case_t *c, media, plays_are_fetched_decoded_or_named, .init = up,
                  .fini = down)
{
    char url[256];
    snprintf(url, sizeof(url), "%s", url_of(c->path));
    dialer_audio_t *a = NULL, *b = NULL;
    const char *why = NULL;
    cr_expect_eq(dialer_media_play(m, url, &a, &why), DIALER_MEDIA_PENDING);
    dialer_media_state_t st = wait_play(url, &a, &why);
    if (!c->why) {
        cr_assert_eq(st, DIALER_MEDIA_READY, "%s: %s", c->path, why);
        cr_expect(labs((long)a->n - 8000) <= 8, "%s: %zu samples, not 1 s", c->path, a->n);
        cr_expect(fabs(frequency(a) - 1000) < 5, "%s: %.1f Hz", c->path, frequency(a));
        cr_expect_eq(dialer_media_play(m, url, &b, &why), DIALER_MEDIA_READY);
        cr_expect_eq(a, b);
        dialer_audio_unref(a);
        dialer_audio_unref(b);
    } else {
        cr_assert_eq(st, DIALER_MEDIA_FAILED, "%s", c->path);
        char want[512];
        snprintf(want, sizeof(want), "play %s: %s", url, c->why);
        cr_expect_str_eq(why, want);
        cr_expect_eq(dialer_media_play(m, url, &a, &why), DIALER_MEDIA_FAILED, "cached");
    }
    int hits = atomic_load(&srv.hits);
    cr_expect(hits == 1 || (strcmp(c->path, "/moved") == 0 && hits == 2) ||
                  (strcmp(c->path, "/loop") == 0 && hits == 4),
              "%s: %d requests", c->path, hits);
}

Test(media, plays_of_the_same_url_share_one_fetch, .init = up, .fini = down)
{
    const char *url = url_of("/tone.wav");
    dialer_audio_t *a = NULL;
    const char *why = NULL;
    for (int i = 0; i < 5; i++)
        cr_expect_eq(dialer_media_play(m, url, &a, &why), DIALER_MEDIA_PENDING);
    cr_assert_eq(wait_play(url, &a, &why), DIALER_MEDIA_READY, "%s", why);
    cr_expect_eq(atomic_load(&srv.hits), 1);
    dialer_audio_unref(a);
}

Test(media, play_urls_outside_the_policy_are_refused)
{
    ob_url_ranges_t *deny = NULL;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_url_ranges_parse("127.0.0.0/8", &deny, &err), OB_OK);
    ob_url_policy_t policy = {deny, NULL, "OB_DIALER_URL_DENY"};
    dialer_media_opts_t o = opts();
    o.urls = &policy;
    up_with(o);
    const char *url = url_of("/tone.wav");
    dialer_audio_t *a = NULL;
    const char *why = NULL;
    cr_assert_eq(wait_play(url, &a, &why), DIALER_MEDIA_FAILED);
    char want[512];
    snprintf(want, sizeof(want),
             "play %s: refused by the URL policy: address 127.0.0.1 is in 127.0.0.0/8, "
             "refused by OB_DIALER_URL_DENY",
             url);
    cr_expect_str_eq(why, want);
    cr_expect_eq(atomic_load(&srv.hits), 0, "the server was reached");
    cr_expect_eq(wait_play("ftp://example.com/a.wav", &a, &why), DIALER_MEDIA_FAILED);
    cr_expect_str_eq(why, "play ftp://example.com/a.wav: play must be an http:// or https:// URL");
    down();
    ob_url_ranges_free(deny);
}

/* A failure is kept failed_ttl_ms (DIALER_MEDIA_FAILED_TTL_MS in the
 * dialer), then the work is tried again. */
Test(media, failures_expire, .fini = down, .timeout = 30)
{
    dialer_media_opts_t o = opts();
    o.failed_ttl_ms = 2000;
    up_with(o);
    const char *url = url_of("/slow");
    dialer_audio_t *a = NULL;
    const char *why = NULL;
    cr_assert_eq(wait_play(url, &a, &why), DIALER_MEDIA_FAILED);
    usleep((o.failed_ttl_ms - 1000) * 1000);
    cr_expect_eq(dialer_media_play(m, url, &a, &why), DIALER_MEDIA_FAILED, "still cached");
    usleep(1500 * 1000);
    cr_expect_eq(dialer_media_play(m, url, &a, &why), DIALER_MEDIA_PENDING, "tried again");
    cr_expect_eq(wait_play(url, &a, &why), DIALER_MEDIA_FAILED);
    cr_expect_eq(atomic_load(&srv.hits), 2);
}

/* ---- The cache's size ---- */

Test(media, the_least_recently_used_go_first, .fini = down)
{
    /* room for three seconds of audio (16,000 bytes each) and their keys */
    dialer_media_opts_t o = opts();
    o.cache_bytes = 3 * 16000 + 3 * 400;
    up_with(o);
    dialer_audio_t *kept = NULL, *a = NULL;
    const char *why = NULL;
    char urls[6][300];
    for (int i = 0; i < 6; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s?n=%d", url_of("/tone.wav"), i);
        cr_assert_eq(wait_play(urls[i], &a, &why), DIALER_MEDIA_READY, "%s", why);
        if (i == 0)
            kept = a; /* held by a call while the cache drops it */
        else
            dialer_audio_unref(a);
        /* the first is used again each time, so stays the most recent */
        if (i == 1 || i == 2) {
            cr_expect_eq(dialer_media_play(m, urls[0], &a, &why), DIALER_MEDIA_READY);
            dialer_audio_unref(a);
        }
    }
    long long entries, bytes, hits, misses;
    stats(&entries, &bytes, &hits, &misses);
    cr_expect_leq(bytes, o.cache_bytes);
    cr_expect_eq(entries, 3, "%lld entries in %lld bytes", entries, bytes);
    cr_expect_eq(misses, 6);
    /* 0 (used last before 3) went before 4 and 5, 1 and 2 before it */
    cr_expect_eq(dialer_media_play(m, urls[5], &a, &why), DIALER_MEDIA_READY);
    dialer_audio_unref(a);
    cr_expect_eq(dialer_media_play(m, urls[4], &a, &why), DIALER_MEDIA_READY);
    dialer_audio_unref(a);
    cr_expect_eq(dialer_media_play(m, urls[1], &a, &why), DIALER_MEDIA_PENDING, "1 was dropped");
    cr_expect_eq(atomic_load(&srv.hits), 6);
    /* the audio a call holds outlives its entry */
    cr_expect_eq(kept->n, 8000);
    cr_expect(fabs(frequency(kept) - 1000) < 5);
    dialer_audio_unref(kept);
}

Test(media, free_with_work_in_flight, .init = server_up, .fini = server_down)
{
    dialer_media_opts_t o = opts();
    ob_err_t err = {{0}};
    cr_assert_eq(dialer_media_new(&o, &m, &err), OB_OK);
    dialer_audio_t *a = NULL;
    const char *why = NULL;
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%s, number %d", SENTENCE, i);
        cr_expect_eq(dialer_media_say(m, text, NULL, 175, &a, &why), DIALER_MEDIA_PENDING);
    }
    cr_expect_eq(dialer_media_play(m, url_of("/slow"), &a, &why), DIALER_MEDIA_PENDING);
    cr_expect_lt(dialer_media_run(m, 0), INT64_MAX, "busy");
    dialer_media_free(m);
    m = NULL;
    dialer_media_free(NULL);
}
