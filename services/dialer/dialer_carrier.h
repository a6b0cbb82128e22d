/*
 * The carrier interface: what a dialer needs from a telephone network. The
 * worker starts calls and hangs them up; the carrier reports answer and end
 * through callbacks from its run function, on the worker's thread. The
 * worker knows nothing of which carrier it drives.
 */
#ifndef DIALER_CARRIER_H
#define DIALER_CARRIER_H

#include <stdbool.h>
#include <stdint.h>

/* Callbacks into the worker; call is the worker's handle for the call. */
typedef struct {
    /* The callee answered; callee_type is the detected type, or
     * "processing" while detection is still running. */
    void (*answered)(void *worker, void *call, const char *callee_type);
    /* The call ended. result is a callee type when answered (voice,
     * answeringmachine, fax, unknown) or why nobody answered (busy, noanswer,
     * informationtone, linefailure). */
    void (*ended)(void *worker, void *call, bool was_answered, const char *result, int ring_ms,
                  int talk_ms);
    /* The callee type of a call answered as "processing" is decided (before
     * ended), decision_ms (nominal) after the answer; may be NULL. */
    void (*decided)(void *worker, void *call, const char *callee_type, int decision_ms);
} carrier_events_t;

typedef struct carrier carrier_t;

typedef struct {
    const char *name; /* "sim" */
    /* Places a call to an E.164 number; false if no channel is free. */
    bool (*start)(carrier_t *c, void *call, const char *call_id, int attempt, const char *phone);
    /* Ends a call now (the application or a drain asked for it); the carrier
     * reports it through ended. */
    void (*hangup)(carrier_t *c, void *call);
    /* Keeps an answered call up talk_ms (nominal) from now, then ends it as
     * usual (the application asked to stay connected); no-op otherwise. */
    void (*extend)(carrier_t *c, void *call, int talk_ms);
    /* Advances the carrier to now_ms, firing callbacks; returns the time of
     * its next deadline, or INT64_MAX when idle. */
    int64_t (*run)(carrier_t *c, int64_t now_ms);
    /* Calls in progress. */
    int (*active)(const carrier_t *c);
    void (*destroy)(carrier_t *c);
} carrier_ops_t;

struct carrier {
    const carrier_ops_t *ops;       /* implementation */
    const carrier_events_t *events; /* where results go */
    void *worker;                   /* first argument of the callbacks */
};

/* The embedded simulated carrier (dialer_sim.c). time_scale > 1 makes its
 * calls that many times faster; seed makes outcomes reproducible. */
carrier_t *carrier_sim_new(int channels, double time_scale, uint64_t seed,
                           const carrier_events_t *events, void *worker);

/* Outcome the sim carrier gives a number, for documentation and tests:
 * writes the result name and whether it answers. */
void carrier_sim_outcome(const char *phone, const char *call_id, int attempt, uint64_t seed,
                         const char **result, bool *answers, int *ring_ms, int *talk_ms);

#endif
