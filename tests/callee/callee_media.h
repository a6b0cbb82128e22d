/*
 * One test call's media: the RTP socket, what the callee sends (its
 * greeting, then silence, every 20 ms, with its keys as RFC 4733 events or
 * as in-band tones mixed in) and what it hears (counted, timed, decoded and
 * placed on a timeline from the answer for the recording). Runs on libre's
 * loop; the caller drives sending with callee_media_tick.
 */
#ifndef CALLEE_MEDIA_H
#define CALLEE_MEDIA_H

#include "callee_rules.h"

#include <re.h>
#include <spandsp.h>

#define CALLEE_PTIME_US 20000 /* one packet of audio */
#define CALLEE_FRAME    160   /* samples in it */

/* Numbers of what was heard, for the report. */
typedef struct {
    int64_t packets;        /* audio RTP packets received (PCMU or PCMA) */
    int64_t bytes;          /* their payload bytes */
    double first_ms;        /* first one after the answer, ms; -1 if none */
    double gap_p50_ms;      /* inter-arrival gaps of audio packets */
    double gap_p99_ms;      /* ... */
    double gap_max_ms;      /* ... */
    int64_t gaps_over_40ms; /* gaps of more than two packets' time */
    int64_t sent;           /* RTP packets sent (audio and events) */
    int64_t recorded;       /* samples on the recording's timeline */
} callee_media_stats_t;

typedef struct {
    struct udp_sock *sock;     /* our RTP socket; NULL when closed */
    struct rtp_sock *enc;      /* sequence and SSRC of what we send */
    int port;                  /* its local port */
    struct sa peer;            /* where the caller wants RTP (its SDP; else first source) */
    int pt;                    /* audio payload type we send: 0 PCMU or 8 PCMA */
    int telev_pt;              /* the caller's telephone-event type; -1 none */
    const callee_rule_t *rule; /* what to send; borrowed */
    bool sending;              /* answered and not ended */
    int64_t answer_us;         /* mono time of the answer, 0 before */
    int64_t next_us;           /* when the next packet is due */
    uint32_t ts;               /* RTP timestamp of the next audio packet */
    bool marker;               /* the next audio packet starts a talkspurt */
    size_t greet_pos;          /* samples of the greeting sent */
    int64_t digits_us;         /* when the first key goes; 0 not yet known */
    size_t digit_i;            /* next key of rule->digits */
    int digit_frame;           /* 20 ms frames into the current key's slot; -1 between */
    uint32_t event_ts;         /* RFC 4733: the current event's timestamp */
    dtmf_tx_state_t *dtmf;     /* in-band tone generator, NULL until needed */
    char digits_sent[80];      /* keys pressed so far */
    char digits_heard[80];     /* RFC 4733 events received (ends) */
    uint32_t heard_ts;         /* timestamp of the last event end counted */
    bool heard_any;            /* heard_ts is set */
    int64_t first_us;          /* first audio packet received, 0 none */
    int64_t last_us;           /* the previous one, for the gap */
    uint32_t *gaps_us;         /* inter-arrival gaps */
    size_t ngaps, capgaps;     /* its use and size */
    callee_media_stats_t st;   /* counts so far */
    bool record;               /* keep the heard audio */
    int64_t max_samples;       /* the recording's bound */
    int16_t *rec;              /* heard audio, sample 0 at the answer */
    size_t rec_cap;            /* its size */
    uint32_t rec_ssrc;         /* stream the timeline is anchored to */
    uint32_t rec_ts0;          /* its RTP timestamp at ... */
    int64_t rec_pos0;          /* ... this sample; -1 not anchored */
} callee_media_t;

/* Opens the RTP socket on ip at port (0: any free port), receiving at once.
 * rule is borrowed for the call's life. record keeps what is heard, up to
 * max_ms. Returns 0 or an errno (EADDRINUSE: try another port). */
int callee_media_open(callee_media_t *m, const char *ip, int port, const callee_rule_t *rule,
                      bool record, int max_ms);

/* Reads an SDP offer or answer: the caller's address, port and
 * telephone-event type, and picks the audio codec (the rule's if offered,
 * else the other G.711). Returns false when no G.711 was offered. */
bool callee_media_sdp(callee_media_t *m, const char *sdp, size_t len);

/* Our SDP for the chosen codec (an answer; with offer, an offer of both
 * G.711 types and telephone-event 101) on ip; caller frees with mem_deref. */
struct mbuf *callee_media_sdp_out(const callee_media_t *m, const char *ip, bool offer);

/* The call is answered at now_us: sending starts. */
void callee_media_answered(callee_media_t *m, int64_t now_us);

/* Sends what is due at now_us; returns when it wants to be called next
 * (INT64_MAX when it sends nothing). */
int64_t callee_media_tick(callee_media_t *m, int64_t now_us);

/* Stops sending and receiving, closes the socket, and fills *st (the gap
 * percentiles computed here). The recording stays until callee_media_free. */
void callee_media_close(callee_media_t *m, callee_media_stats_t *st);

/* The recording: *n samples from the answer; borrowed. */
const int16_t *callee_media_recording(const callee_media_t *m, size_t *n);

void callee_media_free(callee_media_t *m);

/* Monotonic clock, microseconds. */
int64_t callee_now_us(void);

#endif
