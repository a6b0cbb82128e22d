/*
 * The dialer's media (see dialer_media.h): one cache of entries, keyed by
 * what was asked for, each pending, ready or failed. Renders go to a thread
 * of ours through a queue and come back through a second one, both under
 * one mutex, collected by dialer_media_run; fetches run on libcurl's multi
 * interface, driven by dialer_media_run too. Only the main thread touches
 * entries: the render thread sees copies of what it renders.
 */
#include "dialer_media.h"
#include "ob_audio.h"
#include "ob_log.h"
#include "ob_tts.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loop wake-up while work is in progress: renders and transfers are polled. */
#define MEDIA_TICK_MS 2
/* Redirects a play follows (each one guarded like the first request). */
#define MEDIA_MAX_REDIRECTS 3
/* The hash table starts with this many buckets and doubles with the entries. */
#define MEDIA_BUCKETS_MIN 256

typedef enum { ENTRY_PENDING, ENTRY_READY, ENTRY_FAILED } entry_state_t;

typedef struct entry {
    char *key;                   /* "s <rate> <voice length> <voice> <text>" or "p <url>" (owned) */
    uint64_t hash;               /* of key */
    struct entry *chain;         /* next in its bucket */
    struct entry *older, *newer; /* in the LRU list; not linked while pending */
    entry_state_t state;         /* pending, ready or failed */
    dialer_audio_t *audio;       /* ready: the audio (one reference held) */
    char *why;                   /* failed: why (owned) */
    int64_t failed_ms;           /* failed: monotonic time of the failure */
    long long bytes;             /* what it counts against the cache, once settled */
} entry_t;

/* A render handed to the thread: copies of what it needs, and its result. */
typedef struct render {
    struct render *next; /* in the queue or the done list */
    entry_t *entry;      /* pending while the render is out: main thread's only */
    char *text;          /* owned */
    char *voice;         /* owned */
    int rate;            /* words per minute */
    int16_t *samples;    /* result (owned) */
    size_t n;            /* samples */
    ob_rc_t rc;          /* result code */
    ob_err_t err;        /* and its detail */
} render_t;

/* A fetch of a play's URL. */
typedef struct fetch {
    struct fetch *prev, *next;   /* in m->fetches */
    entry_t *entry;              /* pending while the fetch runs */
    dialer_media_t *m;           /* its module, for the write callback */
    CURL *easy;                  /* transfer */
    uint8_t *body;               /* bytes so far (owned) */
    size_t len, cap;             /* used, allocated */
    curl_off_t announced;        /* Content-Length when over the limit, else -1 */
    bool too_big;                /* cut at fetch_max_bytes */
    char error[CURL_ERROR_SIZE]; /* libcurl's detail */
    ob_url_guard_t guard;        /* refuses denied addresses, says which */
} fetch_t;

struct dialer_media {
    dialer_media_opts_t o;    /* settings (copied) */
    entry_t **buckets;        /* the cache's hash table */
    size_t nbuckets;          /* a power of two */
    size_t nentries;          /* entries, pending ones too */
    entry_t *oldest, *newest; /* LRU list of settled entries */
    long long bytes;          /* what settled entries count */
    long long hits, misses;   /* ready answers from the cache; work started */
    char **stale;             /* failure texts handed out, freed by the next run */
    size_t nstale, capstale;  /* used, allocated */

    pthread_t thread;             /* the render thread */
    pthread_mutex_t mu;           /* guards queue, done and stop */
    pthread_cond_t cv;            /* the thread waits on it for work */
    render_t *queue, *queue_tail; /* renders waiting for the thread */
    render_t *done;               /* renders finished, for dialer_media_run */
    bool stop;                    /* the thread is to end */
    int renders;                  /* main thread: renders out (queued, rendering or done) */

    CURLM *multi;     /* fetches */
    fetch_t *fetches; /* in flight */
    int nfetches;     /* their count */
};

/* ---- The render thread ---- */

static void *render_loop(void *arg)
{
    dialer_media_t *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (!m->queue && !m->stop)
            pthread_cond_wait(&m->cv, &m->mu);
        if (m->stop)
            break;
        render_t *r = m->queue;
        m->queue = r->next;
        if (!m->queue)
            m->queue_tail = NULL;
        pthread_mutex_unlock(&m->mu);
        r->rc = ob_tts_render(r->text, r->voice, r->rate, m->o.render_timeout_ms, &r->samples,
                              &r->n, &r->err);
        pthread_mutex_lock(&m->mu);
        r->next = m->done;
        m->done = r;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void render_free(render_t *r)
{
    free(r->text);
    free(r->voice);
    free(r->samples);
    free(r);
}

/* ---- The cache ---- */

static uint64_t hash_of(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static entry_t *find(dialer_media_t *m, const char *key, uint64_t h)
{
    for (entry_t *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->chain)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void grow(dialer_media_t *m)
{
    size_t n = m->nbuckets * 2;
    entry_t **b = ob_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < m->nbuckets; i++) {
        while (m->buckets[i]) {
            entry_t *e = m->buckets[i];
            m->buckets[i] = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

/* A new pending entry for key (taken). */
static entry_t *insert(dialer_media_t *m, char *key, uint64_t h)
{
    if (m->nentries >= m->nbuckets)
        grow(m);
    entry_t *e = ob_xcalloc(1, sizeof(*e));
    e->key = key;
    e->hash = h;
    e->state = ENTRY_PENDING;
    e->chain = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->nentries++;
    return e;
}

static void lru_unlink(dialer_media_t *m, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_push(dialer_media_t *m, entry_t *e)
{
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

/* A failure text handed out stays valid until the next dialer_media_run. */
static void retire(dialer_media_t *m, char *why)
{
    if (!why)
        return;
    if (m->nstale == m->capstale) {
        m->capstale = m->capstale ? m->capstale * 2 : 16;
        m->stale = ob_xrealloc(m->stale, m->capstale * sizeof(*m->stale));
    }
    m->stale[m->nstale++] = why;
}

/* Takes a settled entry out of the cache and frees it. */
static void drop(dialer_media_t *m, entry_t *e)
{
    entry_t **link = &m->buckets[e->hash & (m->nbuckets - 1)];
    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    lru_unlink(m, e);
    m->bytes -= e->bytes;
    m->nentries--;
    dialer_audio_unref(e->audio);
    retire(m, e->why);
    free(e->key);
    free(e);
}

/* Least recently used entries go until the cache fits, but never keep:
 * the entry just settled, which someone is waiting for. */
static void evict(dialer_media_t *m, const entry_t *keep)
{
    while (m->bytes > m->o.cache_bytes && m->oldest && m->oldest != keep)
        drop(m, m->oldest);
}

/* A pending entry settles: ready with audio (taken), or failed with why. */
static void settle(dialer_media_t *m, entry_t *e, dialer_audio_t *audio, const char *why)
{
    OB_ASSERT(e->state == ENTRY_PENDING);
    if (audio) {
        e->state = ENTRY_READY;
        e->audio = audio;
    } else {
        e->state = ENTRY_FAILED;
        e->why = ob_xstrdup(why);
        e->failed_ms = ob_mono_ms();
        OB_LOG(OB_LOG_WARN, "media", NULL, "%s", why);
    }
    e->bytes = (long long)(strlen(e->key) + sizeof(*e)) +
               (audio ? (long long)audio->n * 2 : (long long)strlen(why));
    m->bytes += e->bytes;
    lru_push(m, e);
    evict(m, e);
}

/* The cached entry of key, or a new pending one (*fresh set) when there is
 * none or its failure has expired. key is taken. */
static entry_t *lookup(dialer_media_t *m, char *key, bool *fresh)
{
    uint64_t h = hash_of(key);
    entry_t *e = find(m, key, h);
    *fresh = false;
    if (e && e->state == ENTRY_FAILED &&
        ob_mono_ms() - e->failed_ms >=
            (m->o.failed_ttl_ms > 0 ? m->o.failed_ttl_ms : DIALER_MEDIA_FAILED_TTL_MS)) {
        lru_unlink(m, e);
        m->bytes -= e->bytes;
        e->bytes = 0;
        retire(m, e->why);
        e->why = NULL;
        e->state = ENTRY_PENDING;
        *fresh = true;
    }
    if (e) {
        free(key);
    } else {
        e = insert(m, key, h);
        *fresh = true;
    }
    if (*fresh) {
        m->misses++;
    } else if (e->state != ENTRY_PENDING) {
        lru_unlink(m, e); /* used now: the newest */
        lru_push(m, e);
    }
    return e;
}

static dialer_media_state_t answer(dialer_media_t *m, const entry_t *e, dialer_audio_t **audio,
                                   const char **why)
{
    switch (e->state) {
    case ENTRY_READY:
        m->hits++;
        *audio = dialer_audio_ref(e->audio);
        return DIALER_MEDIA_READY;
    case ENTRY_FAILED:
        *why = e->why;
        return DIALER_MEDIA_FAILED;
    case ENTRY_PENDING:
        break;
    }
    return DIALER_MEDIA_PENDING;
}

/* ---- Say ---- */

dialer_media_state_t dialer_media_say(dialer_media_t *m, const char *text, const char *voice,
                                      int rate, dialer_audio_t **audio, const char **why)
{
    if (!voice)
        voice = "en-us";
    bool fresh = false;
    entry_t *e =
        lookup(m, ob_xasprintf("s %d %zu %s %s", rate, strlen(voice), voice, text), &fresh);
    if (fresh) {
        render_t *r = ob_xcalloc(1, sizeof(*r));
        r->entry = e;
        r->text = ob_xstrdup(text);
        r->voice = ob_xstrdup(voice);
        r->rate = rate;
        pthread_mutex_lock(&m->mu);
        if (m->queue_tail)
            m->queue_tail->next = r;
        else
            m->queue = r;
        m->queue_tail = r;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        m->renders++;
    }
    return answer(m, e, audio, why);
}

/* Renders the thread has finished, settled in their entries. */
static void collect_renders(dialer_media_t *m)
{
    pthread_mutex_lock(&m->mu);
    render_t *done = m->done;
    m->done = NULL;
    pthread_mutex_unlock(&m->mu);
    while (done) {
        render_t *r = done;
        done = r->next;
        m->renders--;
        char why[sizeof(r->err.msg) + 64] = "";
        size_t max = (size_t)m->o.max_audio_ms * (OB_AUDIO_RATE / 1000);
        if (r->rc != OB_OK)
            snprintf(why, sizeof(why), "say: %s", r->err.msg);
        else if (r->n > max)
            snprintf(why, sizeof(why), "say: %.1f s of speech, longer than %d s",
                     r->n / (double)OB_AUDIO_RATE, m->o.max_audio_ms / 1000);
        if (why[0]) {
            settle(m, r->entry, NULL, why);
        } else {
            settle(m, r->entry, dialer_audio_new(r->samples, r->n), NULL);
            r->samples = NULL; /* the audio holds them */
        }
        render_free(r);
    }
}

/* ---- Play ---- */

/* Keeps a 200's body up to fetch_max_bytes; a transfer that would pass it
 * is cut there (returning short fails it with CURLE_WRITE_ERROR), at once
 * when its Content-Length says so. Other answers' bodies are dropped. */
static size_t collect(char *data, size_t size, size_t count, void *arg)
{
    fetch_t *f = arg;
    size_t n = size * count;
    curl_off_t cl = -1;
    long status = 0;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return n; /* an error page: its status says it all */
    if (f->len == 0 &&
        curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > f->m->o.fetch_max_bytes) {
        f->announced = cl;
        f->too_big = true;
        return 0;
    }
    if ((long long)(f->len + n) > f->m->o.fetch_max_bytes) {
        f->too_big = true;
        return 0;
    }
    if (f->len + n > f->cap) {
        f->cap = (f->len + n) * 2;
        if ((long long)f->cap > f->m->o.fetch_max_bytes)
            f->cap = (size_t)f->m->o.fetch_max_bytes;
        f->body = ob_xrealloc(f->body, f->cap);
    }
    memcpy(f->body + f->len, data, n);
    f->len += n;
    return n;
}

static void fetch_start(dialer_media_t *m, entry_t *e, const char *url)
{
    fetch_t *f = ob_xcalloc(1, sizeof(*f));
    f->entry = e;
    f->m = m;
    f->announced = -1;
    CURL *c = curl_easy_init();
    OB_ASSERT(c != NULL); /* fails only without memory */
    f->easy = c;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MEDIA_MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "outbound-dialer/1");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->o.fetch_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);        /* the resolver must not raise SIGALRM */
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* gzip shrinks WAV on the wire */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->error);
    curl_easy_setopt(c, CURLOPT_PRIVATE, f);
    f->guard.policy = m->o.urls;
    ob_url_guard_curl(c, &f->guard);
    f->next = m->fetches;
    if (m->fetches)
        m->fetches->prev = f;
    m->fetches = f;
    m->nfetches++;
    curl_multi_add_handle(m->multi, c);
}

static void fetch_free(dialer_media_t *m, fetch_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        m->fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
    m->nfetches--;
    curl_multi_remove_handle(m->multi, f->easy);
    curl_easy_cleanup(f->easy);
    free(f->body);
    free(f);
}

/* A fetch ended: its body decoded, or why not. */
static void fetch_done(dialer_media_t *m, fetch_t *f, CURLcode code)
{
    const char *url = f->entry->key + 2;
    char why[sizeof(ob_err_t) + OB_URL_MAX + 128] = "", refused[128];
    long status = 0;
    char *type = NULL;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &type);

    if (code != CURLE_OK && ob_url_guard_error(&f->guard, refused, sizeof(refused)))
        snprintf(why, sizeof(why), "play %s: refused by the URL policy: %s", url, refused);
    else if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf(why, sizeof(why), "play %s: not fetched within %d ms", url, m->o.fetch_timeout_ms);
    else if (code == CURLE_TOO_MANY_REDIRECTS)
        snprintf(why, sizeof(why), "play %s: more than %d redirects", url, MEDIA_MAX_REDIRECTS);
    else if (status != 0 && status != 200)
        snprintf(why, sizeof(why), "play %s: answered %ld", url, status);
    else if (f->too_big && f->announced > 0)
        snprintf(why, sizeof(why), "play %s: %lld bytes, over the %lld limit", url,
                 (long long)f->announced, m->o.fetch_max_bytes);
    else if (f->too_big)
        snprintf(why, sizeof(why), "play %s: over %lld bytes, the limit", url,
                 m->o.fetch_max_bytes);
    else if (code != CURLE_OK)
        snprintf(why, sizeof(why), "play %s: %s", url,
                 f->error[0] ? f->error : curl_easy_strerror(code));
    if (why[0]) {
        settle(m, f->entry, NULL, why);
        return;
    }
    int16_t *samples = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    size_t max = (size_t)m->o.max_audio_ms * (OB_AUDIO_RATE / 1000);
    if (ob_audio_decode(f->body, f->len, type, max, &samples, &n, &err) != OB_OK) {
        snprintf(why, sizeof(why), "play %s: %s", url, err.msg);
        settle(m, f->entry, NULL, why);
        return;
    }
    OB_LOG(OB_LOG_DEBUG, "media", NULL, "play %s: %zu bytes of %s, %.1f s", url, f->len,
           type ? type : "no type", n / (double)OB_AUDIO_RATE);
    settle(m, f->entry, dialer_audio_new(samples, n), NULL);
}

dialer_media_state_t dialer_media_play(dialer_media_t *m, const char *url, dialer_audio_t **audio,
                                       const char **why)
{
    bool fresh = false;
    entry_t *e = lookup(m, ob_xasprintf("p %s", url), &fresh);
    if (fresh) {
        ob_err_t err = {{0}};
        if (ob_url_check("play", url, &err) != OB_OK) {
            char *msg = ob_xasprintf("play %.*s: %s", OB_URL_MAX, url, err.msg);
            settle(m, e, NULL, msg);
            free(msg);
        } else {
            fetch_start(m, e, url);
        }
    }
    return answer(m, e, audio, why);
}

static void run_fetches(dialer_media_t *m)
{
    int still = 0, left = 0;
    CURLMsg *msg;
    curl_multi_perform(m->multi, &still);
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        fetch_t *f = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        CURLcode code = msg->data.result;
        fetch_done(m, f, code);
        fetch_free(m, f);
    }
}

/* ---- The module ---- */

int64_t dialer_media_run(dialer_media_t *m, int64_t now_ms)
{
    for (size_t i = 0; i < m->nstale; i++)
        free(m->stale[i]);
    m->nstale = 0;
    if (m->renders > 0)
        collect_renders(m);
    if (m->nfetches > 0)
        run_fetches(m);
    return m->renders > 0 || m->nfetches > 0 ? now_ms + MEDIA_TICK_MS : INT64_MAX;
}

ob_rc_t dialer_media_new(const dialer_media_opts_t *opts, dialer_media_t **out, ob_err_t *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ob_err_set(err, "libcurl: global initialisation failed");
        return OB_ERR;
    }
    dialer_media_t *m = ob_xcalloc(1, sizeof(*m));
    m->o = *opts;
    m->nbuckets = MEDIA_BUCKETS_MIN;
    m->buckets = ob_xcalloc(m->nbuckets, sizeof(*m->buckets));
    if (!(m->multi = curl_multi_init())) {
        ob_err_set(err, "libcurl: cannot create a multi handle");
        goto fail;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    int rc = pthread_create(&m->thread, NULL, render_loop, m);
    if (rc != 0) {
        ob_err_set(err, "cannot start the render thread: %s", strerror(rc));
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        curl_multi_cleanup(m->multi);
        goto fail;
    }
    *out = m;
    return OB_OK;
fail:
    free(m->buckets);
    free(m);
    curl_global_cleanup();
    return OB_ERR;
}

void dialer_media_free(dialer_media_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    for (render_t *lists[2] = {m->queue, m->done}, **l = lists; l < lists + 2; l++)
        while (*l) {
            render_t *r = *l;
            *l = r->next;
            render_free(r);
        }
    while (m->fetches)
        fetch_free(m, m->fetches);
    for (size_t i = 0; i < m->nbuckets; i++)
        while (m->buckets[i]) {
            entry_t *e = m->buckets[i];
            m->buckets[i] = e->chain;
            dialer_audio_unref(e->audio);
            free(e->why);
            free(e->key);
            free(e);
        }
    for (size_t i = 0; i < m->nstale; i++)
        free(m->stale[i]);
    free(m->stale);
    free(m->buckets);
    curl_multi_cleanup(m->multi);
    curl_global_cleanup();
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

void dialer_media_stats(const dialer_media_t *m, long long *entries, long long *bytes,
                        long long *hits, long long *misses)
{
    *entries = (long long)m->nentries;
    *bytes = m->bytes;
    *hits = m->hits;
    *misses = m->misses;
}
