/*
 * Start-up steps every service shares, so that each main.c reads as a table
 * of contents: load and validate configuration (exit 78 on any problem),
 * start logging and signals, wait for Postgres and migrate it, make sure the
 * topics exist.
 */
#ifndef OB_SERVICE_H
#define OB_SERVICE_H

#include "ob_common.h"
#include "ob_config.h"

#include <libpq-fe.h>

/* Loads the base settings and the service's own table into cfg (whose first
 * member is an ob_base_config_t), starts logging and installs the signal
 * handlers. Returns OB_EXIT_OK or OB_EXIT_CONFIG after logging every problem. */
int ob_service_configure(const char *svc, const ob_cfg_spec_t *specs, void *cfg);

/* Raises the open-file limit towards its hard limit so that want
 * descriptors (connections, sockets, files) fit; logs a warning naming the
 * limit when the hard limit is lower. */
void ob_service_want_files(long want);

/* Connects to Postgres, retrying until timeout_ms or a stop signal, then
 * applies pending migrations. On failure logs why and returns non-OK. */
ob_rc_t ob_service_connect_pg(const ob_base_config_t *base, int timeout_ms,
                              PGconn **out) OB_MUSTCHECK;

/* Creates the three topics if they are missing, retrying until timeout_ms. */
ob_rc_t ob_service_ensure_topics(const ob_base_config_t *base, int timeout_ms) OB_MUSTCHECK;

/* Sleeps up to ms, returning early when a stop was requested. */
void ob_service_sleep(int ms);

/* Topic name suffixes. */
#define OB_TOPIC_CALL_REQUESTS "call-requests"
#define OB_TOPIC_DIAL_JOBS     "dial-jobs"
#define OB_TOPIC_CALL_EVENTS   "call-events"

#endif
