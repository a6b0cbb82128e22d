/*
 * The sip carrier's parts (private to dialer_sip*.c): the calls and the
 * carrier as the SIP thread holds them, the commands and events that cross
 * between the worker's thread and the SIP thread, and what each file does
 * for the others. dialer_sip.c places and ends calls; dialer_sip_media.c
 * sends audio and hears digits and the greeting's end; dialer_sip_connect.c
 * hands an answered call over. Everything here runs on the SIP thread
 * unless it says otherwise.
 */
#ifndef DIALER_SIP_H
#define DIALER_SIP_H

#include "dialer_carrier.h"
#include "ob_vocab.h"

#include <re.h>

#include <pthread.h>
#include <spandsp.h>

#define RESULT_REASON_MAX 160 /* bytes of a reason phrase kept */
#define DTMF_PT_DEFAULT   101 /* telephone-event payload type we offer */
#define PTIME_MS          20  /* RTP audio packets: 20 ms, 160 samples */
#define PTIME_SAMPLES     160

/* Messages to the SIP thread. */
enum {
    CMD_START,
    CMD_HANGUP,
    CMD_EXTEND,
    CMD_PLAY,
    CMD_SILENCE, /* the worker's stop: what plays stops */
    CMD_CONNECT,
    CMD_QUIT, /* the carrier is destroyed */
};

/* A command naming a call by its slot and the sequence number it was
 * started with, so one that crosses the call's end is recognised as stale. */
typedef struct {
    int slot;              /* channel */
    uint64_t seq;          /* the call's start number */
    int talk_ms;           /* CMD_EXTEND: stay up this long from now */
    dialer_audio_t *audio; /* CMD_PLAY: a reference of the command's own */
    int loop;              /* CMD_PLAY: times over */
    bool barge_in;         /* CMD_PLAY: a digit stops it */
    char *to_uri;          /* CMD_CONNECT: the second leg's URI (owned) */
    char *from_uri;        /* CMD_CONNECT: its From, NULL for the call's (owned) */
    char *headers;         /* CMD_CONNECT: "Name: value\r\n" lines, maybe "" (owned) */
    int ring_timeout_ms;   /* CMD_CONNECT: ring this long at most */
    bool refer;            /* CMD_CONNECT: REFER first */
} sip_cmd_t;

/* What the SIP thread reports to the worker. */
typedef enum {
    EV_ANSWERED,
    EV_DECIDED,
    EV_ENDED,
    EV_PLAYED,
    EV_DIGIT,
    EV_GREETING_OVER,
    EV_FIRST_AUDIO,
    EV_HANDED_OVER,
} sip_event_kind_t;

typedef struct {
    sip_event_kind_t kind;          /* which */
    int slot;                       /* channel */
    uint64_t seq;                   /* the call's start number */
    bool answered;                  /* EV_ENDED: it had been answered */
    const char *result;             /* EV_ENDED: static string; EV_HANDED_OVER: outcome */
    int ring_ms;                    /* EV_ENDED: INVITE to answer or end */
    int talk_ms;                    /* EV_ENDED: answer to hang-up; EV_HANDED_OVER: bridged */
    int code;                       /* EV_ENDED, EV_HANDED_OVER: final SIP status, 0 if none */
    char reason[RESULT_REASON_MAX]; /* EV_ENDED: reason phrase or why no response decided */
    const char *callee_type;        /* EV_DECIDED: the detector's verdict (static) */
    int decision_ms;                /* EV_DECIDED: after the answer */
    ob_detect_result_t detected;    /* EV_ENDED: the detector's result; why NULL if none */
    int played_ms;                  /* EV_PLAYED: audio sent; EV_FIRST_AUDIO: its time */
    bool flag;                      /* EV_PLAYED: interrupted; EV_DIGIT: inband; ..._OVER: beep */
    char digit;                     /* EV_DIGIT: the key */
    int at_ms;                      /* EV_GREETING_OVER: when; EV_FIRST_AUDIO: greeting end */
} sip_event_t;

typedef struct sip_carrier sip_carrier_t;
typedef struct sip_leg sip_leg_t;

/* An RTP socket read by the media clock (dialer_sip_media.c) rather than
 * by libre's poll loop, which reads one datagram per socket per turn: with
 * a thousand RTP sockets ready, the SIP socket got one read per thousand
 * packets and answers waited seconds. */
typedef struct {
    struct le le;        /* in the carrier's rx list */
    struct udp_sock *us; /* the socket (its owner's), NULL once removed */
    udp_recv_h *h;       /* what a datagram goes to */
    void *arg;           /* its argument */
} sip_rx_t;

/* One call, owned by the SIP thread from CMD_START to its end. */
typedef struct {
    struct le le;             /* in the CPS queue while it waits */
    sip_carrier_t *s;         /* its carrier */
    int slot;                 /* channel */
    uint64_t seq;             /* start number */
    char *to_uri;             /* sip:<number>@<trunk> */
    char *from_uri;           /* sip:<caller id>@<domain> */
    char *post_dial;          /* digits to send once answered, or NULL */
    char *call_id;            /* for logs */
    struct sipsess *sess;     /* the INVITE dialog, NULL once closed */
    struct udp_sock *rtp;     /* our RTP socket, NULL when none */
    sip_rx_t rx;              /* its reading by the media clock */
    struct rtp_sock *rtp_enc; /* RTP header state (sequence, SSRC) for what we send */
    int rtp_port;             /* its port, 0 when none */
    struct sa peer_rtp;       /* where the trunk wants RTP (its SDP) */
    int peer_telev_pt;        /* the trunk's telephone-event payload type, -1 if none */
    int audio_pt;             /* the codec the answer chose: 0 PCMU or 8 PCMA */
    struct telev *telev;      /* RFC 4733 sender of the post-dial digits */
    struct tmr telev_tmr;     /* paces telephone-event packets */
    uint32_t telev_ts;        /* RTP timestamp of the current event */
    struct tmr ring_tmr;      /* ring timeout, then the talk limit */
    struct tmr resp_tmr;      /* no-response timeout */
    struct tmr free_tmr;      /* frees the call outside libre's callbacks */
    uint64_t invite_at;       /* tmr_jiffies() when the INVITE went out */
    uint64_t answer_at;       /* when the 200 came, 0 before */
    bool responded;           /* any response came */
    bool ended;               /* reported ended; waiting to be freed */
    bool extended;            /* the application set how long it stays up */
    int64_t audio_packets;    /* RTP audio packets received (early media included) */
    ob_detect_t *detect;      /* callee-type detector fed with that audio */
    bool verdict_told;        /* its verdict went to the worker (or ended the call) */
    bool over_told;           /* the greeting's end went to the worker */
    bool revision_told;       /* a voice verdict's revision (late beep) went to it */

    /* sending audio (dialer_sip_media.c) */
    struct le play_le;       /* in s->playing while audio plays */
    dialer_audio_t *audio;   /* what plays (a reference of ours), NULL when nothing */
    size_t play_pos;         /* its next sample */
    int loops_left;          /* plays of it still to start after this one */
    bool barge_in;           /* a digit stops it */
    int64_t played_samples;  /* samples of it sent, loops included */
    bool spurt_start;        /* the next packet starts a talkspurt (marker bit) */
    uint32_t rtp_ts;         /* RTP timestamp of the next audio packet */
    bool rtp_ts_set;         /* rtp_ts follows an earlier packet */
    uint64_t last_tick;      /* tick_no + 1 when its latest packet went out, 0 never */
    uint64_t first_audio_at; /* tmr_jiffies() of the call's first audio packet, 0 none */

    /* hearing digits (dialer_sip_media.c) */
    dtmf_rx_state_t *dtmf; /* SpanDSP's in-band DTMF receiver, from the answer */
    bool telev_heard;      /* RFC 4733 events came: in-band detections are ignored */
    uint32_t telev_rx_ts;  /* timestamp of the latest event reported */

    sip_leg_t *leg; /* a connect's second leg (dialer_sip_connect.c), NULL when none */
} sip_call_t;

struct sip_carrier {
    carrier_t base;              /* must be first */
    carrier_sip_opts_t opts;     /* settings (strings copied below) */
    char *trunk, *local_addr;    /* owned copies */
    char *username, *password;   /* owned copies */
    char *from_domain, *anon_id; /* owned copies */

    /* worker side */
    void **calls;        /* worker handle per slot, NULL when free */
    uint64_t *seqs;      /* start number per slot */
    uint64_t next_seq;   /* last start number given */
    int active;          /* slots in use */
    int legs;            /* second legs of connects, until their handed_over */
    pthread_t thread;    /* the SIP thread */
    bool thread_started; /* joined by destroy */
    bool libre_up;       /* libre_init succeeded */

    /* shared */
    pthread_mutex_t lock; /* guards events, ready, start_err */
    pthread_cond_t cond;  /* signals ready */
    sip_event_t *events;  /* reported, not yet taken by run() */
    size_t nevents, cap;  /* its size and capacity */
    bool ready;           /* the thread finished starting */
    int start_err;        /* errno-style result of the start, 0 if fine */
    char start_why[160];  /* what failed */
    struct mqueue *mq;    /* commands into the thread (set before ready) */

    /* SIP thread side */
    struct sip *sip;          /* the stack */
    struct sipsess_sock *ss;  /* session socket */
    struct dnsc *dnsc;        /* resolver, for a trunk given by name */
    sip_call_t **live;        /* the thread's call per slot */
    struct list paced;        /* calls waiting for the CPS limit */
    struct tmr pace_tmr;      /* sends the next paced INVITE */
    uint64_t next_invite_at;  /* earliest time of the next INVITE (CPS) */
    unsigned char *port_used; /* per even RTP port of the range */
    int nports;               /* even ports in the range */
    int port_next;            /* where the search for a free port starts */
    struct list dead;         /* ended calls waiting for free_tmr */
    struct tmr stop_tmr;      /* bounds the wait for BYEs at exit */
    bool sip_exited;          /* sip_close's exit handler ran: s->sip is ours again */

    /* the media clock (dialer_sip_media.c) */
    struct list playing; /* calls sending audio */
    struct tmr tick_tmr; /* one 20 ms tick for all of them */
    uint64_t tick_base;  /* tmr_jiffies() when the ticks started */
    uint64_t ticks;      /* periods since tick_base handled */
    uint64_t tick_no;    /* ticks ever (never restarts): a call's last_tick */
    struct mbuf *pkt;    /* the packet being built, reused */
    struct list rx;      /* RTP sockets the clock reads (sip_rx_t) */
    unsigned rx_gen;     /* bumped when rx changes: a read pass stops there */
    struct mbuf *rxmb;   /* a datagram read, reused */
};

/* dialer_sip.c */
/* Worker side: sends cmd (its slot and seq filled in here) to the SIP
 * thread; false, with cmd left to the caller, when the call is not ours or
 * the queue refused it. */
bool sip_command(sip_carrier_t *s, int id, void *call, sip_cmd_t *cmd);
void sip_push_event(sip_carrier_t *s, const sip_event_t *ev);
int sip_port_take(sip_carrier_t *s);
void sip_port_give(sip_carrier_t *s, int port);
/* The result of an unanswered INVITE's final status code. */
ob_result_t sip_result(int code);
/* Reads the c= address, the first audio payload type of the m= line (0 or
 * 8; else *audio_pt is left) and the telephone-event payload type of an
 * SDP body. */
void sip_read_sdp(const struct sip_msg *msg, struct sa *peer, int *audio_pt, int *telev_pt);

/* sipsess's offer handler for our dialogs: we always send the offer, so a
 * re-INVITE's offer is refused (ENOSYS). */
int sip_refuse_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg);
int sip_on_auth(char **user, char **pass, const char *realm, void *arg);
/* Ends an answered call as dialer_sip.c's finish does, with reason. */
void sip_end_answered(sip_call_t *sc, const char *reason);

/* dialer_sip_media.c */
/* Starts audio on an answered call (takes the command's reference). */
void sip_media_play(sip_call_t *sc, dialer_audio_t *audio, int loop, bool barge_in);
/* Stops what plays and reports it interrupted; no-op when nothing does. */
void sip_media_stop(sip_call_t *sc);
/* The call was answered: the in-band DTMF receiver starts. */
void sip_media_answered(sip_call_t *sc);
/* An RTP packet of an answered call: RFC 4733 events (pt) become digits. */
void sip_media_telev(sip_call_t *sc, const struct rtp_header *hdr, struct mbuf *mb);
/* n samples of an answered call's audio, for in-band DTMF. */
void sip_media_inband(sip_call_t *sc, const int16_t *samples, size_t n);
/* The call ends: what plays is reported interrupted, then the first audio's
 * timing, before the caller reports EV_ENDED. */
void sip_media_ended(sip_call_t *sc);
/* Frees the call's media state (its audio reference, the receiver). */
void sip_media_free(sip_call_t *sc);
/* The carrier stops: the media clock with it. */
void sip_media_close(sip_carrier_t *s);
/* Hands an RTP socket's reading to the media clock (every 20 ms, after the
 * packets due are sent, each socket is drained; h gets each datagram as
 * libre's udp handler would); the clock runs while any is listed. */
void sip_rx_add(sip_carrier_t *s, sip_rx_t *rx, struct udp_sock *us, udp_recv_h *h, void *arg);
/* Takes it back, before its socket is let go; no-op when not listed. */
void sip_rx_remove(sip_carrier_t *s, sip_rx_t *rx);

/* dialer_sip_connect.c */
/* Worker side: the carrier's connect operation (dialer_carrier.h). */
bool sip_connect_command(carrier_t *c, void *call, const carrier_connect_t *to);
/* Starts a connect (cmd and its strings stay the caller's). */
void sip_connect_start(sip_call_t *sc, sip_cmd_t *cmd);
/* Relays a packet leg A's peer sent to the second leg; true when it did. */
bool sip_connect_relay(sip_call_t *sc, const struct rtp_header *hdr, struct mbuf *mb);
/* Leg A ends: the second leg too, and handed_over is reported. */
void sip_connect_ended(sip_call_t *sc);

#endif
