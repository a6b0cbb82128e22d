/*
 * Postgres helpers over libpq: connecting, applying the numbered SQL
 * migrations (embedded in the binary at build time) under an advisory lock,
 * parameterised queries with the error put into ob_err_t, and a small
 * connection pool for threaded callers.
 */
#ifndef OB_PG_H
#define OB_PG_H

#include "ob_common.h"
#include "ob_metrics.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* One embedded migration (generated from common/migrations/NNN_name.sql). */
typedef struct {
    int version;      /* NNN */
    const char *name; /* file name */
    const char *sql;  /* file contents */
} ob_migration_t;

extern const ob_migration_t ob_migrations[];
extern const size_t ob_migrations_count;
/* The SQL functions (generated from the files in common/sql; version unused): each
 * file is run again whenever its contents change. */
extern const ob_migration_t ob_sql_functions[];
extern const size_t ob_sql_functions_count;

/* Connects (blocking); on failure *out is NULL and err says why. The caller
 * closes with PQfinish. */
ob_rc_t ob_pg_connect(const char *dsn, PGconn **out, ob_err_t *err) OB_MUSTCHECK;

/* Applies every migration newer than the database's version, each in its own
 * transaction, then every SQL function file whose contents differ from what
 * the database last ran of it (all in one transaction), holding a session
 * advisory lock so that concurrent services do not race. Returns the number
 * of migrations applied through *applied (may be NULL). */
ob_rc_t ob_pg_migrate(PGconn *conn, int *applied, ob_err_t *err) OB_MUSTCHECK;

/* Runs a parameterised statement (text parameters, NULL for SQL NULL).
 * On OB_OK *out (if not NULL) holds the result, which the caller PQclears;
 * on failure nothing is returned and err holds PQerrorMessage. A lost
 * connection yields OB_EDEPENDENCY, a unique violation OB_ECONFLICT, a
 * deadlock or serialization failure OB_EAGAIN (run the transaction again). */
ob_rc_t ob_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                   PGresult **out, ob_err_t *err) OB_MUSTCHECK;

/* Shorthand for BEGIN / COMMIT / ROLLBACK. */
ob_rc_t ob_pg_begin(PGconn *conn, ob_err_t *err) OB_MUSTCHECK;
ob_rc_t ob_pg_commit(PGconn *conn, ob_err_t *err) OB_MUSTCHECK;
void ob_pg_rollback(PGconn *conn);

/* Makes sure *conn is usable, reconnecting if it is broken. */
ob_rc_t ob_pg_ensure(PGconn **conn, const char *dsn, ob_err_t *err) OB_MUSTCHECK;

typedef struct ob_pg_pool ob_pg_pool_t;

/* A fixed-size pool of lazily opened connections. */
ob_pg_pool_t *ob_pg_pool_new(const char *dsn, size_t size);
/* Borrows a healthy connection, waiting up to wait_ms; OB_EAGAIN when none
 * freed up, OB_EDEPENDENCY when Postgres cannot be reached. */
ob_rc_t ob_pg_pool_get(ob_pg_pool_t *pool, int wait_ms, PGconn **out, ob_err_t *err) OB_MUSTCHECK;
/* Returns a borrowed connection; a broken one is closed and reopened later. */
void ob_pg_pool_put(ob_pg_pool_t *pool, PGconn *conn);
void ob_pg_pool_free(ob_pg_pool_t *pool);

/* A service's outbound_postgres_write_duration_seconds{op} histogram: its
 * write transactions timed from BEGIN (or the statement) to COMMIT, by op, a
 * small fixed set of names such as "transitions". Buckets 0.5 ms to 10 s.
 * Free with ob_metric_family_free. */
ob_metric_family_t *ob_pg_write_metrics_new(void);

/* Records one write of op that started at mono_start_us (ob_mono_us) and
 * ended now; NULL-safe. */
void ob_pg_write_observe(ob_metric_family_t *f, const char *op, int64_t mono_start_us);

#endif
