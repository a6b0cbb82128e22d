/*
 * The sip carrier's connect (see dialer_sip.h): hands an answered call over
 * to another party. Runs on the SIP thread.
 */
#include "dialer_sip.h"
#include "ob_common.h"

#include "ob_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The second leg's URI: a sip: URI as given, a number through the trunk. */
static char *connect_uri(const sip_carrier_t *s, const char *to)
{
    if (strncmp(to, "sip:", 4) == 0 || strncmp(to, "sips:", 5) == 0)
        return ob_xstrdup(to);
    return ob_xasprintf("sip:%s@%s", to, s->trunk);
}

bool sip_connect_command(carrier_t *c, void *call, const carrier_connect_t *to)
{
    sip_carrier_t *s = (sip_carrier_t *)c;
    if (!to->to || !to->to[0] || s->active + s->legs >= s->opts.channels)
        return false; /* the second leg needs a channel of the trunk */
    sip_cmd_t *cmd = ob_xcalloc(1, sizeof(*cmd));
    cmd->to_uri = connect_uri(s, to->to);
    if (to->caller_id && to->caller_id[0])
        cmd->from_uri = ob_xasprintf("sip:%s@%s", to->caller_id, s->from_domain);
    size_t len = 1;
    for (int i = 0; i < to->nheaders; i++)
        len += strlen(to->headers[i]) + 2;
    cmd->headers = ob_xmalloc(len);
    cmd->headers[0] = '\0';
    for (int i = 0; i < to->nheaders; i++) {
        /* A header with a line break would inject others: left out. */
        if (strpbrk(to->headers[i], "\r\n") || !strchr(to->headers[i], ':'))
            continue;
        strcat(cmd->headers, to->headers[i]);
        strcat(cmd->headers, "\r\n");
    }
    cmd->ring_timeout_ms = to->ring_timeout_ms > 0 ? to->ring_timeout_ms : s->opts.ring_timeout_ms;
    cmd->refer = to->refer;
    if (!sip_command(s, CMD_CONNECT, call, cmd)) {
        free(cmd->to_uri);
        free(cmd->from_uri);
        free(cmd->headers);
        free(cmd);
        return false;
    }
    s->legs++;
    return true;
}

/* The worker thread's side above; the SIP thread's below. */

/* Leg A stays up this long after the trunk accepted a REFER, for the trunk
 * to take the call over and end our leg itself. */
#define REFER_GRACE_MS 2000

struct sip_leg {
    sip_call_t *a;             /* the first leg, whose connect this is */
    char *to_uri;              /* the party it goes to */
    char *from_uri;            /* the second leg's From */
    char *headers;             /* "Name: value\r\n" lines for it */
    int ring_timeout_ms;       /* it rings this long at most */
    struct sip_request *refer; /* the REFER while it waits for an answer */
    bool accepted;             /* the trunk accepted the REFER */
    struct tmr tmr;            /* ring timeout; after a REFER, the grace */
    struct sipsess *sess;      /* the second leg's INVITE dialog */
    struct udp_sock *rtp;      /* its RTP socket */
    sip_rx_t rx;               /* its reading by the media clock */
    struct rtp_sock *enc;      /* RTP header state of what we send it */
    int rtp_port;              /* its port, 0 when none */
    struct sa peer;            /* where the second party wants RTP */
    int audio_pt;              /* the codec its answer chose: 0 or 8 */
    int telev_pt;              /* its telephone-event payload type, -1 if none */
    uint64_t bridged_at;       /* tmr_jiffies() of its answer, 0 before */
    bool to_a_started;         /* relayed to leg A already (the marker bit went) */
    bool to_b_started;         /* relayed to the second leg already */
    struct mbuf *pkt;          /* the packet being relayed, reused */
};

/* The connect is over: reported (once, before anything else of leg A's
 * end), the second leg let go (BYE or CANCEL as it stands). */
static void leg_over(sip_leg_t *leg, const char *outcome, int code, int talk_ms)
{
    sip_call_t *sc = leg->a;
    sip_event_t ev = {.kind = EV_HANDED_OVER,
                      .slot = sc->slot,
                      .seq = sc->seq,
                      .result = outcome,
                      .code = code,
                      .talk_ms = talk_ms};
    sip_push_event(sc->s, &ev);
    sc->leg = NULL;
    tmr_cancel(&leg->tmr);
    leg->refer = mem_deref(leg->refer);
    leg->sess = mem_deref(leg->sess);
    sip_rx_remove(sc->s, &leg->rx);
    leg->rtp = mem_deref(leg->rtp);
    leg->enc = mem_deref(leg->enc);
    sip_port_give(sc->s, leg->rtp_port);
    leg->pkt = mem_deref(leg->pkt);
    free(leg->to_uri);
    free(leg->from_uri);
    free(leg->headers);
    free(leg);
}

static int talked(const sip_leg_t *leg)
{
    return leg->bridged_at ? (int)(tmr_jiffies() - leg->bridged_at) : 0;
}

/* Sends a packet one party sent to the other: its payload as it came, or
 * G.711 turned from mu-law to A-law or back when the legs chose different
 * codecs; telephone-events under the other side's payload type. */
static void relay(sip_leg_t *leg, bool to_a, const struct rtp_header *hdr, struct mbuf *mb)
{
    sip_call_t *sc = leg->a;
    int from_pt = to_a ? leg->audio_pt : sc->audio_pt;
    int to_pt = to_a ? sc->audio_pt : leg->audio_pt;
    int from_telev = to_a ? leg->telev_pt : sc->peer_telev_pt;
    int to_telev = to_a ? sc->peer_telev_pt : leg->telev_pt;
    struct udp_sock *sock = to_a ? sc->rtp : leg->rtp;
    struct rtp_sock *enc = to_a ? sc->rtp_enc : leg->enc;
    const struct sa *dst = to_a ? &sc->peer_rtp : &leg->peer;
    bool *started = to_a ? &leg->to_a_started : &leg->to_b_started;
    int pt;
    if (hdr->pt == 0 || hdr->pt == 8)
        pt = to_pt;
    else if ((int)hdr->pt == from_telev || hdr->pt == DTMF_PT_DEFAULT)
        pt = to_telev;
    else
        return;
    (void)from_pt;
    if (pt < 0 || !sock || !enc || !sa_isset(dst, SA_ALL))
        return;
    size_t n = mbuf_get_left(mb);
    if (n > 1024)
        return;
    if (!leg->pkt)
        leg->pkt = mbuf_alloc(RTP_HEADER_SIZE + 1024);
    struct mbuf *out = leg->pkt;
    out->pos = out->end = RTP_HEADER_SIZE;
    const uint8_t *p = mbuf_buf(mb);
    if ((hdr->pt == 0 || hdr->pt == 8) && (int)hdr->pt != to_pt) {
        for (size_t i = 0; i < n; i++)
            (void)mbuf_write_u8(out, hdr->pt == 0 ? ulaw_to_alaw(p[i]) : alaw_to_ulaw(p[i]));
    } else {
        (void)mbuf_write_mem(out, p, n);
    }
    out->pos = 0;
    bool marker = hdr->m || !*started;
    if (rtp_encode(enc, false, marker, (uint8_t)pt, hdr->ts, out) == 0) {
        out->pos = 0;
        (void)udp_send(sock, dst, out);
        *started = true;
    }
}

bool sip_connect_relay(sip_call_t *sc, const struct rtp_header *hdr, struct mbuf *mb)
{
    sip_leg_t *leg = sc->leg;
    if (!leg || !leg->bridged_at)
        return false;
    relay(leg, false, hdr, mb);
    return true;
}

/* What the second party sends: to leg A (its early media too, a ringback
 * the callee hears while the party is called). */
static void on_leg_rtp(const struct sa *src, struct mbuf *mb, void *arg)
{
    sip_leg_t *leg = arg;
    struct rtp_header hdr;
    if (rtp_hdr_decode(&hdr, mb) != 0 || hdr.ver != RTP_VERSION)
        return;
    if (!sa_isset(&leg->peer, SA_ALL))
        leg->peer = *src;
    if (!leg->a->ended)
        relay(leg, true, &hdr, mb);
}

static int leg_answer(const struct sip_msg *msg, void *arg)
{
    sip_leg_t *leg = arg;
    sip_read_sdp(msg, &leg->peer, &leg->audio_pt, &leg->telev_pt);
    return 0;
}

static void leg_progress(const struct sip_msg *msg, void *arg)
{
    sip_leg_t *leg = arg;
    if (mbuf_get_left(msg->mb) > 0)
        sip_read_sdp(msg, &leg->peer, &leg->audio_pt, &leg->telev_pt);
}

static void leg_established(const struct sip_msg *msg, void *arg)
{
    sip_leg_t *leg = arg;
    (void)msg;
    leg->bridged_at = tmr_jiffies();
    tmr_cancel(&leg->tmr);
}

static void leg_close(int err, const struct sip_msg *msg, void *arg)
{
    sip_leg_t *leg = arg;
    sip_call_t *sc = leg->a;
    if (leg->bridged_at) {
        /* The second party hung up: the first leg ends with it. */
        leg_over(leg, "answered", 200, talked(leg));
        sip_end_answered(sc, "OK (the connected party hung up)");
        return;
    }
    if (msg && !msg->req && msg->scode >= 300) {
        ob_result_t r = sip_result(msg->scode);
        leg_over(leg,
                 r == OB_RESULT_BUSY       ? "busy"
                 : r == OB_RESULT_NOANSWER ? "noanswer"
                                           : "failed",
                 msg->scode, 0);
        return;
    }
    (void)err;
    leg_over(leg, "failed", 0, 0);
}

static void leg_ring_timeout(void *arg)
{
    leg_over(arg, "noanswer", 0, 0); /* mem_deref sends the CANCEL */
}

/* Calls the party: an INVITE through the trunk offering leg A's codec
 * first (so that the legs agree and nothing is transcoded), on an RTP port
 * of the range, with the connect's headers. */
static void bridge(sip_leg_t *leg)
{
    sip_call_t *sc = leg->a;
    sip_carrier_t *s = sc->s;
    struct sa local;
    struct mbuf *sdp = NULL;
    int err = 0;
    leg->rtp_port = sip_port_take(s);
    if (!leg->rtp_port) {
        leg_over(leg, "failed", 0, 0);
        return;
    }
    if (sa_set_str(&local, s->local_addr, (uint16_t)leg->rtp_port) != 0 ||
        udp_listen(&leg->rtp, &local, on_leg_rtp, leg) != 0 || rtp_alloc(&leg->enc) != 0) {
        leg_over(leg, "failed", 0, 0);
        return;
    }
    sip_rx_add(s, &leg->rx, leg->rtp, on_leg_rtp, leg);
    int first = sc->audio_pt, second = first == 0 ? 8 : 0;
    sdp = mbuf_alloc(512);
    err = mbuf_printf(sdp,
                      "v=0\r\n"
                      "o=outbound %llu 2 IN IP4 %s\r\n"
                      "s=outbound\r\n"
                      "c=IN IP4 %s\r\n"
                      "t=0 0\r\n"
                      "m=audio %d RTP/AVP %d %d %d\r\n"
                      "a=rtpmap:0 PCMU/8000\r\n"
                      "a=rtpmap:8 PCMA/8000\r\n"
                      "a=rtpmap:%d telephone-event/8000\r\n"
                      "a=fmtp:%d 0-16\r\n"
                      "a=ptime:20\r\n"
                      "a=sendrecv\r\n",
                      (unsigned long long)sc->seq, s->local_addr, s->local_addr, leg->rtp_port,
                      first, second, DTMF_PT_DEFAULT, DTMF_PT_DEFAULT, DTMF_PT_DEFAULT);
    sdp->pos = 0;
    if (!err)
        err = sipsess_connect(&leg->sess, s->ss, leg->to_uri, NULL, leg->from_uri, "outbound", NULL,
                              0, "application/sdp", sdp, sip_on_auth, sc, false, sip_refuse_offer,
                              leg_answer, leg_progress, leg_established, NULL, NULL, leg_close, leg,
                              "%s", leg->headers);
    mem_deref(sdp);
    if (err) {
        leg_over(leg, "failed", 0, 0);
        return;
    }
    ob_metric_add(&s->opts.metrics[SIP_M_INVITES], 1);
    tmr_start(&leg->tmr, (uint64_t)leg->ring_timeout_ms, leg_ring_timeout, leg);
}

static void refer_grace_over(void *arg)
{
    sip_leg_t *leg = arg;
    sip_call_t *sc = leg->a;
    leg_over(leg, "referred", 202, 0);
    sip_end_answered(sc, "OK (referred: the trunk took the call)");
}

/* The trunk's answer to our REFER: accepted, the call is the trunk's now
 * (leg A is left to it for a moment, then ended); refused, the party is
 * called on a second leg instead. */
static void on_refer_response(int err, const struct sip_msg *msg, void *arg)
{
    sip_leg_t *leg = arg;
    if (!err && msg && msg->scode < 200)
        return;
    leg->refer = NULL; /* the transaction is over and lets go of it itself */
    if (!err && msg && msg->scode < 300) {
        leg->accepted = true;
        tmr_start(&leg->tmr, REFER_GRACE_MS, refer_grace_over, leg);
        return;
    }
    OB_LOG(OB_LOG_DEBUG, "sip", OB_KV("call_id", leg->a->call_id), "REFER refused (%d): bridging",
           msg ? msg->scode : 0);
    bridge(leg);
}

/* REFER on leg A's dialog (RFC 3515), Refer-To the party, with the
 * connect's headers. */
static void send_refer(sip_leg_t *leg)
{
    sip_call_t *sc = leg->a;
    struct sip_dialog *dlg = sc->sess ? sipsess_dialog(sc->sess) : NULL;
    int err = dlg ? sip_drequestf(&leg->refer, sc->s->sip, true, "REFER", dlg, 0, NULL, NULL,
                                  on_refer_response, leg,
                                  "Refer-To: <%s>\r\n"
                                  "Referred-By: <%s>\r\n"
                                  "%s"
                                  "Content-Length: 0\r\n"
                                  "\r\n",
                                  leg->to_uri, sc->from_uri, leg->headers)
                  : ENOENT;
    if (err)
        bridge(leg);
}

void sip_connect_start(sip_call_t *sc, sip_cmd_t *cmd)
{
    sip_media_stop(sc); /* what plays now is cut: the party is called */
    sip_leg_t *leg = ob_xcalloc(1, sizeof(*leg));
    leg->a = sc;
    leg->to_uri = ob_xstrdup(cmd->to_uri);
    leg->from_uri = ob_xstrdup(cmd->from_uri ? cmd->from_uri : sc->from_uri);
    leg->headers = ob_xstrdup(cmd->headers ? cmd->headers : "");
    leg->ring_timeout_ms = cmd->ring_timeout_ms;
    leg->audio_pt = sc->audio_pt;
    leg->telev_pt = -1;
    sa_init(&leg->peer, AF_UNSPEC);
    tmr_init(&leg->tmr);
    sc->leg = leg;
    if (cmd->refer)
        send_refer(leg);
    else
        bridge(leg);
}

void sip_connect_ended(sip_call_t *sc)
{
    sip_leg_t *leg = sc->leg;
    if (!leg)
        return;
    if (leg->bridged_at)
        leg_over(leg, "answered", 200, talked(leg));
    else if (leg->accepted)
        leg_over(leg, "referred", 202, 0); /* the trunk took it and ended our leg */
    else
        leg_over(leg, "noanswer", 0, 0); /* the callee left while the party was called */
}
