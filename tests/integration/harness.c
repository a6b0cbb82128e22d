/*
 * Implementation of the integration harness. Processes are started with
 * posix_spawn and their stderr goes to build/test-logs/<prefix>-<name>.log,
 * which the test prints on failure.
 */
#include "harness.h"
#include "ob_common.h"
#include "ob_log.h"
#include "ob_pg.h"
#include "ob_uuid.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *h_kafka(void)
{
    return env_or("OB_TEST_KAFKA", "127.0.0.1:19092");
}

const char *h_pg_dsn(void)
{
    return env_or("OB_TEST_PG_DSN", "postgresql://outbound@127.0.0.1:19432/outbound");
}

static const char *bin_dir(void)
{
    return env_or("OB_TEST_BIN_DIR", "build/bin");
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

void h_unique(char *out, size_t len, const char *stem)
{
    char id[OB_UUID_STRLEN + 1];
    ob_uuid_v7(id);
    /* The random tail of a UUIDv7 is unique enough for names. */
    snprintf(out, len, "%s%d%.12s", stem, (int)getpid(), id + 24);
}

static char **build_env(const char *const *base, const char *const *extra)
{
    size_t n = 0, m = 0;
    for (const char *const *e = base; e && *e; e++)
        n++;
    for (const char *const *e = extra; e && *e; e++)
        m++;
    char **env = ob_xcalloc(n + m + 1, sizeof(char *));
    size_t o = 0;
    /* Extra settings replace inherited ones of the same name. */
    for (const char *const *e = base; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        bool replaced = false;
        for (const char *const *x = extra; x && *x && eq; x++)
            replaced |= strncmp(*x, *e, (size_t)(eq - *e) + 1) == 0;
        if (!replaced)
            env[o++] = (char *)*e;
    }
    for (const char *const *e = extra; e && *e; e++)
        env[o++] = (char *)*e;
    env[o] = NULL;
    return env;
}

/* fork + exec rather than posix_spawn so the child can ask to be sent
 * SIGTERM when the test process dies: a failed or timed-out test never
 * leaves services running. */
static pid_t spawn(const char *service, char **env, const char *log)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/outbound-%s", bin_dir(), service);
    cr_assert(access(path, X_OK) == 0, "cannot run %s", path);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open("/dev/null", O_RDWR);
        if (fd < 0 || devnull < 0)
            _exit(127);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(fd, 2);
        char *argv[] = {path, NULL};
        execve(path, argv, env);
        _exit(127);
    }
    return pid;
}

void h_stack_init(h_stack_t *s)
{
    memset(s, 0, sizeof(*s));
    h_unique(s->prefix, sizeof(s->prefix), "t");
    const char *base = h_pg_dsn();
    snprintf(s->dsn, sizeof(s->dsn), "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? '&' : '?', s->prefix);
    PGconn *c = PQconnectdb(base);
    cr_assert(PQstatus(c) == CONNECTION_OK, "postgres: %s", PQerrorMessage(c));
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", s->prefix);
    PGresult *res = PQexec(c, sql);
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
}

h_proc_t *h_start(h_stack_t *s, const char *service, const char *name, const char *const *extra_env)
{
    cr_assert(s->nprocs < H_MAX_PROCS);
    cr_assert(s->prefix[0], "call h_stack_init first");
    h_proc_t *p = &s->procs[s->nprocs++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->port = h_free_port();
    mkdir("build/test-logs", 0755);
    char stem[128];
    snprintf(stem, sizeof(stem), "%s-%s", s->prefix, name);
    snprintf(p->log, sizeof(p->log), "build/test-logs/%s.log", stem);

    char port[32], prefix[96], kafka[256], dsn[600], instance[96];
    snprintf(port, sizeof(port), "OB_HTTP_PORT=%d", p->port);
    snprintf(prefix, sizeof(prefix), "OB_TOPIC_PREFIX=%s.", s->prefix);
    snprintf(kafka, sizeof(kafka), "OB_KAFKA_BOOTSTRAP_SERVERS=%s", h_kafka());
    snprintf(dsn, sizeof(dsn), "OB_PG_DSN=%s", s->dsn);
    snprintf(instance, sizeof(instance), "OB_INSTANCE_ID=%s-%s", s->prefix, name);
    const char *settings[] = {port,
                              prefix,
                              kafka,
                              dsn,
                              instance,
                              "OB_TOPIC_PARTITIONS=4",
                              "OB_LOG_LEVEL=debug",
                              "ASAN_OPTIONS=detect_leaks=1",
                              NULL,
                              NULL};
    /* The tests' receivers listen on loopback, which dialers refuse by
     * default; a test that wants the refusal sets OB_DIALER_URL_ALLOW= in
     * extra_env. */
    if (strcmp(service, "dialer") == 0)
        settings[OB_COUNTOF(settings) - 2] = "OB_DIALER_URL_ALLOW=127.0.0.0/8,::1";
    char **with_settings = build_env((const char *const *)environ, settings);
    char **env = build_env((const char *const *)with_settings, extra_env);
    p->pid = spawn(service, env, p->log);
    free(with_settings);
    free(env);
    if (strcmp(service, "ingest") == 0)
        s->ingest_port = p->port;
    return p;
}

/* True when the service on port says it is ready: 200 with the services'
 * readiness JSON, so that another process that took the port (a test's
 * receiver in a test process running beside this one) is not taken for it. */
static bool says_ready(int port)
{
    h_resp_t r = h_http(port, "GET", "/readyz", NULL, NULL);
    bool ready = r.status == 200 && r.body && strstr(r.body, "\"status\":\"ready\"");
    h_resp_free(&r);
    return ready;
}

/* True when the file at path says text. */
static bool log_says(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

bool h_wait_ready(const h_proc_t *p, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            cr_log_error("%s exited early (code %d); see %s", p->name,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, p->log);
            return false;
        }
        if (says_ready(p->port))
            return true;
        h_sleep_ms(100);
    }
    cr_log_error("%s not ready after %d ms; see %s", p->name, timeout_ms, p->log);
    return false;
}

int h_stop(h_proc_t *p, int timeout_ms)
{
    int status = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        h_sleep_ms(20);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    return -1;
}

bool h_stack_up(h_stack_t *s, int ndialers, const char *const *dialer_env)
{
    h_start(s, "scheduler", "scheduler", NULL);
    for (int i = 0; i < ndialers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dialer-%d", i + 1);
        h_start(s, "dialer", name, dialer_env);
    }
    h_start(s, "ingest", "ingest", NULL);
    for (int i = 0; i < s->nprocs; i++) {
        /* A port taken between h_free_port and the service's bind (by a test
         * process beside this one): the service cannot listen and exits;
         * it starts again, in its slot, on another port. */
        for (int tries = 0; !h_wait_ready(&s->procs[i], 60000); tries++) {
            h_proc_t *p = &s->procs[i];
            if (tries == 2 || !log_says(p->log, "cannot listen"))
                return false;
            char name[sizeof(p->name)], service[sizeof(p->name)];
            snprintf(name, sizeof(name), "%s", p->name);
            snprintf(service, sizeof(service), "%.*s", (int)strcspn(name, "-"), name);
            cr_log_warn("%s could not listen on port %d; starting it on another", name, p->port);
            int n = s->nprocs; /* h_start appends: start it at the end, then move it here */
            h_start(s, service, name, strcmp(service, "dialer") == 0 ? dialer_env : NULL);
            s->procs[i] = s->procs[n];
            s->nprocs = n;
        }
    }
    return true;
}

bool h_stack_down(h_stack_t *s)
{
    bool ok = true;
    /* Front to back: ingest first, dialers last, as an operator would. */
    for (int i = s->nprocs - 1; i >= 0; i--) {
        h_proc_t *p = &s->procs[i];
        if (!p->pid)
            continue;
        int code = h_stop(p, 60000);
        if (code != 0) {
            cr_log_error("%s exited %d after SIGTERM; see %s", p->name, code, p->log);
            ok = false;
        }
    }
    return ok;
}

void h_stack_kill(h_stack_t *s)
{
    for (int i = 0; i < s->nprocs; i++) {
        if (s->procs[i].pid > 0) {
            kill(s->procs[i].pid, SIGKILL);
            waitpid(s->procs[i].pid, NULL, 0);
            s->procs[i].pid = 0;
        }
    }
}

int h_run_env(const char *service, const char *const *envp, char **err_out)
{
    char log[256];
    int status = 0;
    mkdir("build/test-logs", 0755);
    h_unique(log, sizeof(log), "build/test-logs/run-");
    strncat(log, ".log", sizeof(log) - strlen(log) - 1);
    pid_t pid = spawn(service, (char **)envp, log);
    waitpid(pid, &status, 0);
    FILE *f = fopen(log, "r");
    char *buf = ob_xcalloc(1, 65536);
    if (f) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
    }
    *err_out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct {
    char *data; /* accumulated bytes */
    size_t len; /* bytes used */
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf_t *b = ud;
    size_t n = size * nmemb;
    b->data = ob_xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

h_resp_t h_http(int port, const char *method, const char *path, const char *const *headers,
                const char *body)
{
    h_resp_t r = {0};
    buf_t b = {ob_xcalloc(1, 1), 0};
    char url[1024];
    struct curl_slist *hl = NULL;
    CURL *c = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    /* Long enough for the million-row upload of test_uploads on a 2-core
     * machine that is busy with other work (it took over 30 s there). */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        r.content_type = ct ? ob_xstrdup(ct) : NULL;
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = b.data;
    if (r.status != 0) {
        /* One line per answer, for tools/check_openapi.py. A single write(2)
         * on an O_APPEND descriptor keeps lines whole across test processes. */
        cJSON *rec = cJSON_CreateObject();
        size_t plen = strcspn(path, "?");
        char *p = ob_xstrndup(path, plen);
        cJSON_AddStringToObject(rec, "method", method);
        cJSON_AddStringToObject(rec, "path", p);
        cJSON_AddNumberToObject(rec, "status", (double)r.status);
        if (r.content_type)
            cJSON_AddStringToObject(rec, "content_type", r.content_type);
        else
            cJSON_AddNullToObject(rec, "content_type");
        cJSON_AddStringToObject(rec, "body", b.data);
        char *text = cJSON_PrintUnformatted(rec);
        if (text) {
            size_t n = strlen(text);
            char *line = ob_xcalloc(1, n + 2);
            memcpy(line, text, n);
            line[n] = '\n';
            mkdir("build", 0755);
            mkdir("build/test-logs", 0755);
            int fd =
                open("build/test-logs/http.jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                ssize_t w = write(fd, line, n + 1);
                (void)w;
                close(fd);
            }
            free(line);
            cJSON_free(text);
        }
        free(p);
        cJSON_Delete(rec);
    }
    return r;
}

void h_resp_free(h_resp_t *r)
{
    free(r->body);
    free(r->content_type);
    r->body = r->content_type = NULL;
}

PGconn *h_pg(const h_stack_t *s)
{
    ob_err_t err = {{0}};
    PGconn *c = NULL;
    cr_assert(ob_pg_connect(s->dsn, &c, &err) == OB_OK, "%s", err.msg);
    /* Tenants are seeded before any service starts, so migrate here too
     * (quietly: the services log the migrations of their own). */
    ob_log_init("test", OB_LOG_WARN);
    cr_assert(ob_pg_migrate(c, NULL, &err) == OB_OK, "migrations: %s", err.msg);
    return c;
}

char *h_pg_value(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(res));
    char *v = NULL;
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = ob_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

long h_pg_long(PGconn *c, const char *sql, int n, const char *const *params)
{
    char *v = h_pg_value(c, sql, n, params);
    long r = v ? atol(v) : -1;
    free(v);
    return r;
}

void h_tenant(PGconn *c, h_tenant_t *t, int capacity)
{
    char *app = t->application_id, *email = t->email, key_id[37], cap[16], hash[65];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    ob_uuid_v7(t->account_id);
    ob_uuid_v7(app);
    ob_uuid_v7(t->deployment_id);
    ob_uuid_v7(key_id);
    snprintf(t->email, sizeof(t->email), "%s@test.invalid", t->account_id);
    snprintf(t->api_key, sizeof(t->api_key), "obk_test_%s", key_id);
    snprintf(cap, sizeof(cap), "%d", capacity);
    EVP_Digest(t->api_key, strlen(t->api_key), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(hash + 2 * i, 3, "%02x", md[i]);

    const char *acc[] = {t->account_id, email};
    free(h_pg_value(c, "INSERT INTO accounts (account_id, email, name) VALUES ($1, $2, 'test')", 2,
                    acc));
    const char *ap[] = {app, t->account_id};
    free(h_pg_value(c,
                    "INSERT INTO applications (application_id, account_id, name)"
                    " VALUES ($1, $2, 'test app')",
                    2, ap));
    const char *dep[] = {t->deployment_id, app, t->account_id, cap};
    free(h_pg_value(c,
                    "INSERT INTO deployments (deployment_id, application_id, account_id, name,"
                    " capacity, retry_interval_s) VALUES ($1, $2, $3, 'test deployment', $4, 60)",
                    4, dep));
    const char *key[] = {key_id, t->account_id, hash};
    free(h_pg_value(c,
                    "INSERT INTO api_keys (key_id, account_id, key_hash, key_prefix)"
                    " VALUES ($1, $2, $3, 'obk_test')",
                    3, key));
}

static rd_kafka_t *probe_consumer(const char *topic)
{
    char errstr[512], group[128];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    h_unique(group, sizeof(group), "probe-");
    rd_kafka_conf_set(conf, "bootstrap.servers", h_kafka(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert(rk != NULL, "%s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    return rk;
}

bool h_read_topic(const char *topic, h_message_fn fn, void *arg)
{
    rd_kafka_t *rk = probe_consumer(topic);
    int eofs = 0, partitions = -1;
    int64_t deadline = ob_mono_ms() + 20000;
    while (ob_mono_ms() < deadline && (partitions < 0 || eofs < partitions)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_topic_partition_list_t *parts = NULL;
            rd_kafka_assignment(rk, &parts);
            partitions = parts ? parts->cnt : 0;
            rd_kafka_topic_partition_list_destroy(parts);
            eofs++;
        } else if (!m->err) {
            fn(arg, m->payload, m->len);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return partitions > 0 && eofs >= partitions;
}

typedef struct {
    FILE *out;
    const char *schema;
    int n;
} capture_t;

static void capture_one(void *arg, const void *payload, size_t len)
{
    capture_t *c = arg;
    fprintf(c->out, "%s %.*s\n", c->schema, (int)len, (const char *)payload);
    c->n++;
}

int h_capture_topic(const h_stack_t *s, const char *suffix, const char *schema)
{
    char topic[128], path[256];
    snprintf(topic, sizeof(topic), "%s.%s", s->prefix, suffix);
    snprintf(path, sizeof(path), "build/test-logs/%s-messages.jsonl", s->prefix);
    capture_t c = {fopen(path, "a"), schema, 0};
    cr_assert_not_null(c.out, "cannot write %s", path);
    bool unused = h_read_topic(topic, capture_one, &c);
    (void)unused;
    fclose(c.out);
    return c.n;
}

char *h_event_types(const h_stack_t *s, const char *call_id, int count, int timeout_ms)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "%s.call-events", s->prefix);
    rd_kafka_t *rk = probe_consumer(topic);
    char *types = ob_xcalloc(1, 1);
    int64_t deadline = ob_mono_ms() + timeout_ms;
    int seen = 0;
    while (seen < count && ob_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (!m->err) {
            cJSON *ev = cJSON_ParseWithLength(m->payload, m->len);
            const cJSON *subject = cJSON_GetObjectItem(ev, "subject");
            const cJSON *type = cJSON_GetObjectItem(ev, "type");
            if (cJSON_IsString(subject) && strcmp(subject->valuestring, call_id) == 0 &&
                cJSON_IsString(type)) {
                char *next = ob_xasprintf("%s%s%s", types, types[0] ? "," : "", type->valuestring);
                free(types);
                types = next;
                seen++;
            }
            cJSON_Delete(ev);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return types;
}

char *h_json_str(const char *json, const char *member)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, member);
    char *v = cJSON_IsString(item) ? ob_xstrdup(item->valuestring) : NULL;
    cJSON_Delete(root);
    return v;
}

char *h_json_path(const char *json, const char *path)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *item = root;
    char *copy = ob_xstrdup(path), *save = NULL;
    for (char *tok = strtok_r(copy, ".", &save); tok && item; tok = strtok_r(NULL, ".", &save)) {
        char *end = NULL;
        long idx = strtol(tok, &end, 10);
        item = cJSON_IsArray(item) && *end == '\0' ? cJSON_GetArrayItem(item, (int)idx)
                                                   : cJSON_GetObjectItemCaseSensitive(item, tok);
    }
    char *v = NULL;
    if (cJSON_IsString(item)) {
        v = ob_xstrdup(item->valuestring);
    } else if (item && !cJSON_IsNull(item)) {
        char *text = cJSON_PrintUnformatted(item);
        v = ob_xstrdup(text);
        cJSON_free(text);
    }
    cJSON_Delete(root);
    free(copy);
    return v;
}

long h_metric(const h_proc_t *p, const char *name)
{
    h_resp_t r = h_http(p->port, "GET", "/metrics", NULL, NULL);
    long v = -1;
    size_t len = strlen(name);
    for (const char *line = r.body; r.status == 200 && line && *line;) {
        if (strncmp(line, name, len) == 0 && line[len] == ' ') {
            v = atol(line + len + 1);
            break;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    h_resp_free(&r);
    return v;
}

bool h_header(const char *head, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r\n");
            snprintf(out, len, "%.*s", (int)(vlen < len ? vlen : len - 1), v);
            return true;
        }
    }
    return false;
}

long h_json_long(const char *json, const char *path)
{
    char *v = h_json_path(json, path);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

void h_expect_path(const char *json, const char *path, const char *want)
{
    char *got = h_json_path(json, path);
    if (want)
        cr_expect(got && strcmp(got, want) == 0, "%s is %s, want %s in %s", path, got, want, json);
    else
        cr_expect_null(got, "%s is %s, want null in %s", path, got, json);
    free(got);
}

bool h_log_has(const h_proc_t *p, const char *text)
{
    FILE *f = fopen(p->log, "r");
    if (!f)
        return false;
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap + 1);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = '\0';
    bool found = strstr(buf, text) != NULL;
    free(buf);
    return found;
}

struct h_server {
    int fd;            /* listening socket */
    int port;          /* its port */
    volatile int stop; /* ends the accept loop */
    pthread_t thread;  /* accept loop */
    h_handler_fn fn;   /* answers requests */
    void *arg;         /* its argument */
};

typedef struct {
    h_server_t *srv;
    int fd;
} h_conn_t;

static void *serve_conn(void *arg)
{
    h_conn_t *c = arg;
    size_t cap = 1 << 20, used = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        char *end = NULL;
        while (!(end = (buf[used] = '\0', strstr(buf, "\r\n\r\n")))) {
            ssize_t n = used < cap ? read(c->fd, buf + used, cap - used) : 0;
            if (n <= 0)
                goto out;
            used += (size_t)n;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char cl[32] = "0";
        end[2] = '\0';
        h_header(buf, "Content-Length", cl, sizeof(cl));
        size_t body_len = strtoul(cl, NULL, 10);
        while (used < head_len + body_len) {
            ssize_t n = used < cap ? read(c->fd, buf + used, cap - used) : 0;
            if (n <= 0)
                goto out;
            used += (size_t)n;
        }
        char saved = buf[head_len + body_len];
        buf[head_len + body_len] = '\0';
        const char *answer = "";
        int status = c->srv->fn(c->srv->arg, buf, buf + head_len, body_len, &answer);
        buf[head_len + body_len] = saved;
        char resp[512];
        int rl = snprintf(resp, sizeof(resp),
                          "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          status, strlen(answer), answer);
        /* The client may have given up on a slow answer: no SIGPIPE. */
        if (send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL) != rl)
            goto out;
        memmove(buf, buf + head_len + body_len, used - head_len - body_len);
        used -= head_len + body_len;
    }
out:
    free(buf);
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    h_server_t *srv = arg;
    while (!srv->stop) {
        struct pollfd p = {.fd = srv->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(srv->fd, NULL, NULL);
        if (fd < 0)
            continue;
        h_conn_t *c = malloc(sizeof(*c));
        c->srv = srv;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, c);
        pthread_detach(t);
    }
    return NULL;
}

h_server_t *h_server_start(h_handler_fn fn, void *arg)
{
    return h_server_start_on(h_free_port(), fn, arg);
}

h_server_t *h_server_start_on(int port, h_handler_fn fn, void *arg)
{
    h_server_t *srv = calloc(1, sizeof(*srv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    srv->fn = fn;
    srv->arg = arg;
    srv->port = port;
    sa.sin_port = htons((uint16_t)srv->port);
    srv->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert(bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "server port %d", srv->port);
    cr_assert(listen(srv->fd, 128) == 0);
    pthread_create(&srv->thread, NULL, accept_loop, srv);
    return srv;
}

int h_server_port(const h_server_t *srv)
{
    return srv->port;
}

void h_server_stop(h_server_t *srv)
{
    if (!srv)
        return;
    srv->stop = 1;
    pthread_join(srv->thread, NULL);
    close(srv->fd);
    free(srv);
}
