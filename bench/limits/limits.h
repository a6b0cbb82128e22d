/*
 * What the limit tools of bench/limits share: a monotonic clock in seconds
 * and the process's peak resident memory. Each tool measures what a part of
 * outbound is built on, alone, and prints one JSON line of its result.
 */
#ifndef BENCH_LIMITS_H
#define BENCH_LIMITS_H

#include <sys/resource.h>
#include <time.h>

/* Monotonic time in seconds. */
static inline double limits_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peak resident set size of this process so far, in kB. */
static inline long limits_peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

#endif
