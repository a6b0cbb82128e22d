/*
 * The process stop flag (the only process-wide mutable global) and the
 * SIGTERM/SIGINT handlers. The first signal asks for a drain; a second one
 * means exit now with OB_EXIT_UNDRAINED.
 */
#ifndef OB_SIGNAL_H
#define OB_SIGNAL_H

#include <signal.h>

/* Non-zero once a drain was requested. Written only by the signal handler. */
extern volatile sig_atomic_t ob_stop_requested;

/* Installs handlers for SIGTERM and SIGINT and ignores SIGPIPE. */
void ob_signal_install(void);

#endif
