/*
 * libpq glue. Every query goes through ob_pg_exec with text parameters so
 * that nothing user-supplied is ever spliced into SQL.
 */
#include "ob_pg.h"
#include "ob_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Arbitrary constant naming the migration lock ("outbound" in ASCII-ish). */
#define MIGRATION_LOCK_KEY "7306691229245714260"

static void trim_newline(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

ob_rc_t ob_pg_connect(const char *dsn, PGconn **out, ob_err_t *err)
{
    PGconn *c = PQconnectdb(dsn);
    *out = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        ob_err_set(err, "postgres: %s", PQerrorMessage(c));
        trim_newline(err ? err->msg : (char[1]){0});
        PQfinish(c);
        return OB_EDEPENDENCY;
    }
    /* Timestamps in answers are RFC 3339 UTC whatever the server's zone.
     * No JIT: the services' statements are short and run again and again,
     * and compiling the larger ones (the due-deployment and routing counts)
     * took a tenth of Postgres's CPU in make bench end to end. */
    PQclear(PQexec(c, "SET TIME ZONE 'UTC'; SET client_min_messages = warning; SET jit = off"));
    *out = c;
    return OB_OK;
}

ob_rc_t ob_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                   PGresult **out, ob_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (out)
        *out = NULL;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return OB_OK;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    ob_err_set(err, "postgres: %s", PQresultErrorMessage(res));
    if (err)
        trim_newline(err->msg);
    bool conflict = state && strcmp(state, "23505") == 0;
    /* Deadlock and serialization failures: the transaction may simply run
     * again. */
    bool transient = state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
    PQclear(res);
    if (PQstatus(conn) != CONNECTION_OK)
        return OB_EDEPENDENCY;
    return conflict ? OB_ECONFLICT : transient ? OB_EAGAIN : OB_ERR;
}

ob_rc_t ob_pg_begin(PGconn *conn, ob_err_t *err)
{
    return ob_pg_exec(conn, "BEGIN", 0, NULL, NULL, err);
}

ob_rc_t ob_pg_commit(PGconn *conn, ob_err_t *err)
{
    return ob_pg_exec(conn, "COMMIT", 0, NULL, NULL, err);
}

void ob_pg_rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

ob_rc_t ob_pg_ensure(PGconn **conn, const char *dsn, ob_err_t *err)
{
    if (*conn && PQstatus(*conn) == CONNECTION_OK)
        return OB_OK;
    if (*conn) {
        PQfinish(*conn);
        *conn = NULL;
    }
    return ob_pg_connect(dsn, conn, err);
}

/* The SQL function files (common/sql) whose contents the database has not
 * run yet, run in one transaction with their checksums recorded, so a
 * function's definition has one source and starts cost nothing when none
 * changed. Called under the migration lock, after the migrations, on which
 * the functions depend. */
static ob_rc_t apply_functions(PGconn *conn, ob_err_t *err)
{
    PGresult *res = NULL;
    ob_rc_t rc = ob_pg_exec(conn,
                            "CREATE TABLE IF NOT EXISTS schema_functions ("
                            " name text PRIMARY KEY, checksum text NOT NULL,"
                            " applied_at timestamptz NOT NULL DEFAULT now())",
                            0, NULL, NULL, err);
    if (rc != OB_OK || (rc = ob_pg_begin(conn, err)) != OB_OK)
        return rc;
    for (size_t i = 0; i < ob_sql_functions_count && rc == OB_OK; i++) {
        const ob_migration_t *f = &ob_sql_functions[i];
        const char *params[] = {f->name, f->sql};
        rc = ob_pg_exec(conn,
                        "SELECT 1 FROM schema_functions WHERE name = $1 AND checksum = md5($2)", 2,
                        params, &res, err);
        if (rc != OB_OK || PQntuples(res) > 0) {
            PQclear(res);
            continue;
        }
        PQclear(res);
        /* PQexec (not PQexecParams): a file holds many statements. */
        res = PQexec(conn, f->sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            ob_err_set(err, "common/sql/%s: %s", f->name, PQresultErrorMessage(res));
            rc = OB_ERR;
        }
        PQclear(res);
        if (rc == OB_OK)
            rc = ob_pg_exec(conn,
                            "INSERT INTO schema_functions (name, checksum) VALUES ($1, md5($2))"
                            " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
                            " applied_at = now()",
                            2, params, NULL, err);
        if (rc == OB_OK)
            OB_INFO("pg", "applied common/sql/%s", f->name);
    }
    if (rc == OB_OK)
        return ob_pg_commit(conn, err);
    ob_pg_rollback(conn);
    return rc;
}

ob_rc_t ob_pg_migrate(PGconn *conn, int *applied, ob_err_t *err)
{
    PGresult *res = NULL;
    ob_rc_t rc;
    int current = 0, count = 0;

    rc = ob_pg_exec(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", 0, NULL, NULL, err);
    if (rc != OB_OK)
        return rc;
    rc = ob_pg_exec(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL, NULL, err);
    if (rc != OB_OK)
        goto out;
    rc = ob_pg_exec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res,
                    err);
    if (rc != OB_OK)
        goto out;
    current = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;

    for (size_t i = 0; i < ob_migrations_count; i++) {
        const ob_migration_t *m = &ob_migrations[i];
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[] = {version, m->name, m->sql};
        if (m->version <= current) {
            /* An applied migration must never change, nor be missing below
             * a later one (a database migrated by another branch's build):
             * refuse to run on a schema that differs from what this binary
             * expects rather than skip it without a word. */
            const char *check[] = {version, m->sql};
            rc = ob_pg_exec(conn,
                            "SELECT name, checksum IS DISTINCT FROM md5($2)"
                            " FROM schema_migrations WHERE version = $1",
                            2, check, &res, err);
            if (rc == OB_OK && PQntuples(res) == 0) {
                ob_err_set(err,
                           "migration %s was never applied to this database, though later ones"
                           " were (it was migrated by a build that did not have it); migrate it"
                           " by hand or start from an empty database",
                           m->name);
                rc = OB_ERR;
            } else if (rc == OB_OK && PQgetvalue(res, 0, 1)[0] == 't') {
                ob_err_set(err,
                           "migration %s was applied with different contents than this build's %s;"
                           " migrations must not be edited once applied",
                           PQgetvalue(res, 0, 0), m->name);
                rc = OB_ERR;
            }
            PQclear(res);
            res = NULL;
            if (rc != OB_OK)
                goto out;
            continue;
        }
        if ((rc = ob_pg_begin(conn, err)) != OB_OK)
            goto out;
        /* PQexec (not PQexecParams) so a migration may hold many statements. */
        res = PQexec(conn, m->sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            ob_err_set(err, "migration %s: %s", m->name, PQresultErrorMessage(res));
            ob_pg_rollback(conn);
            rc = OB_ERR;
            goto out;
        }
        PQclear(res);
        res = NULL;
        rc = ob_pg_exec(conn,
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES ($1, $2, md5($3))",
                        3, params, NULL, err);
        if (rc == OB_OK)
            rc = ob_pg_commit(conn, err);
        if (rc != OB_OK) {
            ob_pg_rollback(conn);
            goto out;
        }
        OB_INFO("pg", "applied migration %s", m->name);
        count++;
    }
    rc = apply_functions(conn, err);
out:
    PQclear(res);
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")"));
    if (applied)
        *applied = count;
    return rc;
}

struct ob_pg_pool {
    pthread_mutex_t mu; /* guards the arrays */
    pthread_cond_t cv;  /* signalled when a slot is returned */
    char *dsn;          /* connection string */
    size_t size;        /* number of slots */
    PGconn **idle;      /* stack of idle connections (NULL = not opened yet) */
    size_t nidle;       /* entries in idle */
};

ob_pg_pool_t *ob_pg_pool_new(const char *dsn, size_t size)
{
    ob_pg_pool_t *p = ob_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->dsn = ob_xstrdup(dsn);
    p->size = size;
    p->idle = ob_xcalloc(size, sizeof(PGconn *));
    p->nidle = size; /* all slots free, unopened */
    return p;
}

ob_rc_t ob_pg_pool_get(ob_pg_pool_t *p, int wait_ms, PGconn **out, ob_err_t *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0 && p->nidle == 0) {
            pthread_mutex_unlock(&p->mu);
            ob_err_set(err, "all %zu database connections are busy", p->size);
            return OB_EAGAIN;
        }
    }
    PGconn *c = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);

    ob_rc_t rc = ob_pg_ensure(&c, p->dsn, err);
    if (rc != OB_OK) {
        ob_pg_pool_put(p, NULL);
        return rc;
    }
    *out = c;
    return OB_OK;
}

void ob_pg_pool_put(ob_pg_pool_t *p, PGconn *conn)
{
    if (conn && (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)) {
        PQfinish(conn); /* broken or left mid-transaction: reopen on next use */
        conn = NULL;
    }
    pthread_mutex_lock(&p->mu);
    OB_ASSERT(p->nidle < p->size);
    p->idle[p->nidle++] = conn;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void ob_pg_pool_free(ob_pg_pool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    free(p->dsn);
    free(p);
}

ob_metric_family_t *ob_pg_write_metrics_new(void)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    return ob_metric_family_new("outbound_postgres_write_duration_seconds",
                                "Time of one write transaction to Postgres, by what it writes",
                                OB_METRIC_HISTOGRAM, bounds, OB_COUNTOF(bounds), 8, "op=\"other\"");
}

void ob_pg_write_observe(ob_metric_family_t *f, const char *op, int64_t mono_start_us)
{
    if (!f)
        return;
    char labels[64];
    snprintf(labels, sizeof(labels), "op=\"%s\"", op);
    ob_metric_family_observe(f, labels, (double)(ob_mono_us() - mono_start_us) / 1e6);
}
