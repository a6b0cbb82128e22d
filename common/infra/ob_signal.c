/*
 * Signal handling: handlers only set the flag (or _exit on the second
 * signal), everything else happens in the services' main loops.
 */
#include "ob_signal.h"
#include "ob_common.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t ob_stop_requested = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (ob_stop_requested) {
        static const char msg[] = "{\"level\":\"warn\",\"msg\":\"second signal: exiting now\"}\n";
        ssize_t unused = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)unused;
        _exit(OB_EXIT_UNDRAINED);
    }
    ob_stop_requested = 1;
}

void ob_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
