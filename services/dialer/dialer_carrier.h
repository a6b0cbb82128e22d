/*
 * The carrier interface: what a dialer needs from a telephone network. The
 * worker starts calls and hangs them up; the carrier reports answer and end
 * through callbacks from its run function, on the worker's thread. The
 * worker knows nothing of which carrier it drives.
 */
#ifndef DIALER_CARRIER_H
#define DIALER_CARRIER_H

#include "dialer_audio.h"
#include "ob_common.h"
#include "ob_detect.h"
#include "ob_metrics.h"

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
    /* The network's own account of how the call ended, reported just before
     * ended: a SIP final response's status code (0 when none decided it: a
     * transport error, no response, our CANCEL) and reason phrase, valid only
     * during the call. Carriers without one (sim) never call it; may be NULL. */
    void (*outcome)(void *worker, void *call, int code, const char *reason);
    /* What the audio detector made of the call (verdict, confidence, rule,
     * beep), reported just before ended by carriers that listen (sip);
     * valid only during the call; may be NULL. */
    void (*detected)(void *worker, void *call, const ob_detect_result_t *r);

    /* ---- media on an answered call (the application on answer) ---- */
    /* What play started has ended: played all of it (interrupted false),
     * or was cut short by stop, a barge-in digit or the call's end
     * (interrupted true); played_ms is how much of it went out. Reported
     * once per play, before any later play's. May be NULL. */
    void (*played)(void *worker, void *call, int played_ms, bool interrupted);
    /* The callee pressed a key ('0'-'9', '*', '#', 'A'-'D'), heard as an
     * RFC 4733 telephone-event (inband false) or as in-band DTMF tones
     * (inband true); one report per key press. May be NULL. */
    void (*digit)(void *worker, void *call, char digit, bool inband);
    /* A machine's greeting is over: its beep ended (beep true) or, when
     * no beep came, the greeting fell silent long enough to speak over
     * it; at_ms is when, after the answer. Reported at most once per call,
     * after decided said answeringmachine, as soon as it is heard. May be
     * NULL. */
    void (*greeting_over)(void *worker, void *call, bool beep, int at_ms);
    /* The timing of our first audio on the call, reported just before
     * ended when play ever sent any: greeting_end_ms is when the callee's
     * first words ended (the detector's, after the answer; -1 when it
     * heard none) and first_audio_ms when our first audio packet went out
     * (after the answer). May be NULL. */
    void (*first_audio)(void *worker, void *call, int greeting_end_ms, int first_audio_ms);
    /* A connect ended: outcome is "answered", "busy", "noanswer",
     * "failed" or "referred" (the trunk took a REFER), code the second
     * leg's final SIP status (0 when none), talk_ms how long the legs were
     * bridged. The first leg then ends as usual (ended). May be NULL. */
    void (*handed_over)(void *worker, void *call, const char *outcome, int code, int talk_ms);
} carrier_events_t;

/* Where a connect hands the callee over. Strings are the caller's and need
 * to live only during connect. */
typedef struct {
    const char *to;        /* E.164 number (dialed through the trunk) or a sip: URI */
    const char *caller_id; /* E.164 the second leg shows, or NULL: the call's */
    int ring_timeout_ms;   /* the second leg rings this long at most */
    const char **headers;  /* SIP headers for the second leg (or the REFER), "Name: value" */
    int nheaders;          /* their count */
    bool refer;            /* try REFER first; bridge when the trunk refuses it */
} carrier_connect_t;

/* What to dial: the job's number and options. The strings are the caller's
 * and need to live only during start. */
typedef struct {
    const char *call_id;              /* the call */
    int attempt;                      /* its attempt */
    const char *phone;                /* E.164 number to dial */
    const char *caller_id;            /* E.164 caller id (;ani=), or NULL */
    const char *post_dial;            /* digits to send once answered (;postd=), or NULL */
    const ob_detect_config_t *detect; /* the deployment's detection thresholds */
} carrier_dial_t;

typedef struct carrier carrier_t;

typedef struct {
    const char *name; /* "sim" or "sip" */
    /* Places a call to an E.164 number; false if no channel is free. */
    bool (*start)(carrier_t *c, void *call, const carrier_dial_t *dial);
    /* Ends a call now (the application or a drain asked for it); the carrier
     * reports it through ended. */
    void (*hangup)(carrier_t *c, void *call);
    /* Keeps an answered call up talk_ms (nominal) from now, then ends it as
     * usual (the application asked to stay connected); no-op otherwise. */
    void (*extend)(carrier_t *c, void *call, int talk_ms);
    /* Starts sending audio to an answered call (what was playing stops
     * first, reported through played as interrupted), loop times over (1
     * or more); with barge_in a digit from the callee stops it. Takes its
     * own reference to audio. No-op on a call not answered. */
    void (*play)(carrier_t *c, void *call, dialer_audio_t *audio, int loop, bool barge_in);
    /* Stops what plays (reported through played); no-op when nothing does. */
    void (*stop)(carrier_t *c, void *call);
    /* Hands an answered call over to another party (carrier_connect_t);
     * the outcome comes through handed_over. False when the carrier
     * cannot (no such feature, no channel for a second leg). */
    bool (*connect)(carrier_t *c, void *call, const carrier_connect_t *to);
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

/* Makes the sim carrier hear real audio: the recordings of a corpus made by
 * tools/detect_corpus.py (dir/manifest.tsv and its .raw files; those heard
 * after an answer). An answered call then plays one whose label is its
 * drawn outcome (chosen by call id) to the callee-type detector, and the
 * detector's verdict, time, confidence and rule become the call's. Returns
 * the recordings loaded; -1 with err set when the corpus cannot be read. */
int carrier_sim_play(carrier_t *c, const char *dir, ob_err_t *err);

/* Outcome the sim carrier gives a number, for documentation and tests:
 * writes the result name and whether it answers. */
void carrier_sim_outcome(const char *phone, const char *call_id, int attempt, uint64_t seed,
                         const char **result, bool *answers, int *ring_ms, int *talk_ms);

/* The sip carrier's metrics (dialer_sip.c), updated from its thread. */
enum {
    SIP_M_INVITES,     /* outbound_sip_invites_total */
    SIP_M_PACED,       /* outbound_sip_calls_waiting_cps: calls held back by the CPS limit */
    SIP_M_RTP_PORTS,   /* outbound_sip_rtp_ports_in_use */
    SIP_M_RTP_PACKETS, /* outbound_sip_rtp_packets_received_total */
    SIP_M_DTMF,        /* outbound_sip_dtmf_digits_sent_total */
    SIP_M_FAILURES,    /* outbound_sip_failures_total: calls ended by a SIP failure */
    SIP_M_DIGITS_IN,   /* outbound_sip_dtmf_digits_received_total: keys the callees pressed */
    SIP_M_COUNT,
};

/* Settings of the sip carrier (OB_SIP_*, see the README). */
typedef struct {
    int channels;             /* the trunk's concurrent calls (OB_DIALER_CHANNELS) */
    double cps;               /* INVITEs per second at most; 0: no limit */
    const char *trunk;        /* host or host:port of the trunk */
    const char *local_addr;   /* IP address SIP and RTP bind and advertise */
    int local_port;           /* SIP port (UDP) */
    int rtp_port_min;         /* RTP ports: even ones in [min, max] */
    int rtp_port_max;         /* ... */
    const char *username;     /* digest authentication, "" for none */
    const char *password;     /* ... */
    const char *from_domain;  /* host of the From URI, "" for the trunk's */
    const char *anonymous_id; /* From user when a call has no caller id */
    int ring_timeout_ms;      /* unanswered this long after the INVITE: CANCEL, noanswer */
    int response_timeout_ms;  /* no response at all this long: linefailure */
    int talk_limit_ms;        /* answered calls are hung up after this */
    ob_metric_t *metrics;     /* SIP_M_COUNT entries, outlive the carrier */
} carrier_sip_opts_t;

/* The sip carrier (dialer_sip.c): a libre user agent on its own thread,
 * placing calls through one trunk. Returns OB_ERR with err set when the
 * stack cannot start (the SIP port taken, a bad trunk address). Its events
 * fire on the caller's thread, from run. The strings of opts are copied. */
ob_rc_t carrier_sip_new(const carrier_sip_opts_t *opts, const carrier_events_t *events,
                        void *worker, carrier_t **out, ob_err_t *err) OB_MUSTCHECK;

/* The result an unanswered SIP call gets for a final response code. */
const char *carrier_sip_result(int code);

#endif
