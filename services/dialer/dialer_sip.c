/*
 * The sip carrier: places calls through one SIP trunk with libre (baresip's
 * SIP stack). libre is single-threaded and owns its own poll loop, so it runs
 * on a thread of its own: the worker's start, hangup and extend become
 * messages on a libre mqueue, and what the calls do comes back through a
 * mutex-guarded list that run() empties on the worker's thread, where the
 * callbacks fire. Neither side ever waits for the other.
 */
#include "dialer_sip.h"
#include "ob_common.h"
#include "ob_log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define SIP_POLL_MS 10 /* how soon run() wants to be called while calls are up */

ob_result_t sip_result(int code)
{
    switch (code) {
    case 486:
    case 600:
        return OB_RESULT_BUSY;
    case 408:
    case 480:
        return OB_RESULT_NOANSWER;
    case 404:
    case 410:
    case 484:
    case 604:
        return OB_RESULT_INFORMATIONTONE;
    default:
        break;
    }
    if (code >= 500 && code <= 599)
        return OB_RESULT_LINEFAILURE;
    return OB_RESULT_UNKNOWN; /* 487 included: we never see it after our own CANCEL */
}

const char *carrier_sip_result(int code)
{
    return ob_result_name(sip_result(code));
}

/* ---- the SIP thread ---------------------------------------------------- */

void sip_push_event(sip_carrier_t *s, const sip_event_t *ev)
{
    pthread_mutex_lock(&s->lock);
    if (s->nevents == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->events = ob_xrealloc(s->events, s->cap * sizeof(*s->events));
    }
    s->events[s->nevents++] = *ev;
    pthread_mutex_unlock(&s->lock);
}

static int64_t since(uint64_t t)
{
    return t ? (int64_t)(tmr_jiffies() - t) : 0;
}

int sip_port_take(sip_carrier_t *s)
{
    for (int k = 0; k < s->nports; k++) {
        int i = (s->port_next + k) % s->nports;
        if (!s->port_used[i]) {
            s->port_used[i] = 1;
            s->port_next = (i + 1) % s->nports;
            ob_metric_add(&s->opts.metrics[SIP_M_RTP_PORTS], 1);
            return s->opts.rtp_port_min + 2 * i;
        }
    }
    return 0;
}

void sip_port_give(sip_carrier_t *s, int port)
{
    if (port == 0)
        return;
    int i = (port - s->opts.rtp_port_min) / 2;
    OB_ASSERT(i >= 0 && i < s->nports && s->port_used[i]);
    s->port_used[i] = 0;
    ob_metric_add(&s->opts.metrics[SIP_M_RTP_PORTS], -1);
}

static void call_free_now(void *arg)
{
    sip_call_t *sc = arg;
    tmr_cancel(&sc->free_tmr);
    if (sc->le.list)
        list_unlink(&sc->le);
    ob_detect_free(sc->detect);
    sip_media_free(sc);
    free(sc->to_uri);
    free(sc->from_uri);
    free(sc->post_dial);
    free(sc->call_id);
    free(sc);
}

/* Ends a call: its RTP port goes back to the pool at once, the session
 * (mem_deref sends BYE or CANCEL as it stands, and libre keeps what it needs
 * for that) is let go, and the worker hears of the end. */
static void finish(sip_call_t *sc, bool answered, ob_result_t result, int code, const char *fmt,
                   ...) OB_PRINTF(5, 6);
static void finish(sip_call_t *sc, bool answered, ob_result_t result, int code, const char *fmt,
                   ...)
{
    sip_carrier_t *s = sc->s;
    if (sc->ended)
        return;
    /* What plays, the connect and the first audio's timing come first. */
    sip_media_ended(sc);
    sip_connect_ended(sc);
    sc->ended = true;
    tmr_cancel(&sc->ring_tmr);
    tmr_cancel(&sc->resp_tmr);
    tmr_cancel(&sc->telev_tmr);
    sip_rx_remove(s, &sc->rx);
    sc->rtp = mem_deref(sc->rtp);
    sc->rtp_enc = mem_deref(sc->rtp_enc);
    sc->telev = mem_deref(sc->telev);
    sip_port_give(s, sc->rtp_port);
    sc->rtp_port = 0;
    sc->sess = mem_deref(sc->sess);
    if (sc->le.list)
        list_unlink(&sc->le);
    s->live[sc->slot] = NULL;

    /* An answered call's result is what answered, as the detector heard it. */
    const ob_detect_result_t *r = ob_detect_result(sc->detect);
    const char *name = ob_result_name(result);
    if (answered && r->verdict != OB_DETECT_PENDING && result == OB_RESULT_UNKNOWN)
        name = ob_detect_name(r->verdict);
    sip_event_t ev = {
        .kind = EV_ENDED,
        .slot = sc->slot,
        .seq = sc->seq,
        .answered = answered,
        .result = name,
        .code = code,
    };
    if (r->verdict != OB_DETECT_PENDING)
        ev.detected = *r;
    int64_t invited = sc->invite_at ? since(sc->invite_at) : 0;
    ev.ring_ms = (int)(answered ? (int64_t)(sc->answer_at - sc->invite_at) : invited);
    ev.talk_ms = (int)(answered ? since(sc->answer_at) : 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev.reason, sizeof(ev.reason), fmt, ap);
    va_end(ap);
    if (!answered && code != 200)
        ob_metric_add(&s->opts.metrics[SIP_M_FAILURES], 1);
    OB_LOG(OB_LOG_DEBUG, "sip", OB_KV("call_id", sc->call_id), "ended %s (%d %s)", name, code,
           ev.reason);
    sip_push_event(s, &ev);
    /* Not freed here: this may run inside one of the session's handlers. */
    list_append(&s->dead, &sc->le, sc);
    tmr_start(&sc->free_tmr, 0, call_free_now, sc);
}

void sip_read_sdp(const struct sip_msg *msg, struct sa *peer, int *audio_pt, int *telev_pt)
{
    size_t len = mbuf_get_left(msg->mb);
    if (len == 0 || len > 8192)
        return;
    char *sdp = ob_xmalloc(len + 1);
    memcpy(sdp, mbuf_buf(msg->mb), len);
    sdp[len] = '\0';
    char addr[64] = "";
    int port = 0;
    for (char *line = strtok(sdp, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        int pt = 0, first = -1;
        if (sscanf(line, "c=IN IP4 %63s", addr) == 1)
            continue;
        if (sscanf(line, "m=audio %d RTP/AVP %d", &port, &first) >= 1) {
            if (first == 0 || first == 8)
                *audio_pt = first; /* the answer's first format is the one it sends */
            continue;
        }
        /* end is set only when the whole literal after the number matched
         * (sscanf counts the number alone as a success). */
        int end = 0;
        if (sscanf(line, "a=rtpmap:%d telephone-event/8000%n", &pt, &end) == 1 && end > 0)
            *telev_pt = pt;
    }
    free(sdp);
    if (addr[0] && port > 0 && port < 65536 && sa_set_str(peer, addr, (uint16_t)port) != 0)
        sa_init(peer, AF_UNSPEC);
}

static void read_sdp(sip_call_t *sc, const struct sip_msg *msg)
{
    sip_read_sdp(msg, &sc->peer_rtp, &sc->audio_pt, &sc->peer_telev_pt);
}

static void telev_tick(void *arg)
{
    sip_call_t *sc = arg;
    struct mbuf *mb = mbuf_alloc(64);
    bool marker = false;
    mb->pos = mb->end = RTP_HEADER_SIZE;
    /* telev_poll fills in one event packet every ptime while digits wait. */
    int err = telev_poll(sc->telev, &marker, mb);
    if (err == 0 && sa_isset(&sc->peer_rtp, SA_ALL)) {
        if (marker)
            sc->telev_ts += 8000; /* a new event: its own timestamp */
        mb->pos = 0;
        if (rtp_encode(sc->rtp_enc, false, marker, (uint8_t)sc->peer_telev_pt, sc->telev_ts, mb) ==
            0) {
            mb->pos = 0;
            (void)udp_send(sc->rtp, &sc->peer_rtp, mb);
        }
    }
    mem_deref(mb);
    tmr_start(&sc->telev_tmr, TELEV_PTIME, telev_tick, sc);
}

/* Queues the post-dial digits as RFC 4733 events (press and release each),
 * sent every ptime on the answered call's RTP stream. */
static void send_post_dial(sip_call_t *sc)
{
    if (!sc->post_dial || sc->peer_telev_pt < 0 || !sc->rtp) {
        if (sc->post_dial)
            OB_LOG(OB_LOG_WARN, "sip", OB_KV("call_id", sc->call_id),
                   "post-dial digits not sent: the trunk offered no telephone-event");
        return;
    }
    if (telev_alloc(&sc->telev, TELEV_PTIME) != 0)
        return;
    int sent = 0;
    for (const char *d = sc->post_dial; *d; d++) {
        int code = telev_digit2code(*d);
        if (code < 0)
            continue; /* a pause character (',' or 'w') has no event */
        (void)telev_send(sc->telev, code, false);
        (void)telev_send(sc->telev, code, true);
        sent++;
    }
    ob_metric_add(&sc->s->opts.metrics[SIP_M_DTMF], sent);
    sc->telev_ts = (uint32_t)(tmr_jiffies() * 8);
    tmr_start(&sc->telev_tmr, 0, telev_tick, sc);
}

void sip_end_answered(sip_call_t *sc, const char *reason)
{
    finish(sc, true, OB_RESULT_UNKNOWN, 200, "%s", reason);
}

static void talk_limit(void *arg)
{
    sip_call_t *sc = arg;
    if (sc->extended)
        finish(sc, true, OB_RESULT_UNKNOWN, 200,
               "OK (hung up: the application's stay_connected_s ended)");
    else
        finish(sc, true, OB_RESULT_UNKNOWN, 200, "OK (hung up at the talk limit, %d s)",
               sc->s->opts.talk_limit_ms / 1000);
}

static void ring_timeout(void *arg)
{
    sip_call_t *sc = arg;
    finish(sc, false, OB_RESULT_NOANSWER, 0, "ring timeout after %d ms: CANCEL sent",
           sc->s->opts.ring_timeout_ms);
}

static void response_timeout(void *arg)
{
    sip_call_t *sc = arg;
    if (!sc->responded)
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "no response from the trunk in %d ms",
               sc->s->opts.response_timeout_ms);
}

/* Tells the worker the detector's verdict once there is one and the call
 * was answered (a verdict from early media waits for the answer), and
 * again when a late beep revised a voice verdict to a machine's. An
 * information tone ends the call at once, answered or not. */
static void tell_verdict(sip_call_t *sc)
{
    const ob_detect_result_t *r = ob_detect_result(sc->detect);
    if (r->verdict == OB_DETECT_PENDING || sc->ended)
        return;
    if (sc->verdict_told) {
        if (r->revised_from_ms < 0 || sc->revision_told)
            return;
        sc->revision_told = true;
    }
    if (r->verdict == OB_DETECT_INFOTONE) {
        sc->verdict_told = true;
        if (sc->answer_at)
            finish(sc, true, OB_RESULT_INFORMATIONTONE, 200,
                   "OK (hung up: special information tone)");
        else
            finish(sc, false, OB_RESULT_INFORMATIONTONE, 0,
                   "special information tone in early media: CANCEL sent");
        return;
    }
    if (!sc->answer_at)
        return;
    sc->verdict_told = true;
    sip_event_t ev = {.kind = EV_DECIDED,
                      .slot = sc->slot,
                      .seq = sc->seq,
                      .callee_type = ob_detect_name(r->verdict),
                      .decision_ms = r->decision_ms};
    sip_push_event(sc->s, &ev);
}

/* Tells the worker a machine's greeting is over, once, as soon as the
 * detector says so (after its verdict, told just before). */
static void tell_greeting_over(sip_call_t *sc)
{
    const ob_detect_result_t *r = ob_detect_result(sc->detect);
    if (!r->greeting_over || sc->over_told || !sc->verdict_told || sc->ended)
        return;
    sc->over_told = true;
    sip_event_t ev = {.kind = EV_GREETING_OVER,
                      .slot = sc->slot,
                      .seq = sc->seq,
                      .flag = r->beep,
                      .at_ms = r->greeting_over_ms};
    sip_push_event(sc->s, &ev);
}

static void on_rtp(const struct sa *src, struct mbuf *mb, void *arg)
{
    sip_call_t *sc = arg;
    struct rtp_header hdr;
    if (rtp_hdr_decode(&hdr, mb) != 0 || hdr.ver != RTP_VERSION)
        return;
    if (!sa_isset(&sc->peer_rtp, SA_ALL))
        sc->peer_rtp = *src; /* symmetric RTP when no SDP said where */
    if (sc->ended)
        return;
    if (sc->leg)
        (void)sip_connect_relay(sc, &hdr, mb); /* and we listen on */
    if (sc->answer_at && (hdr.pt == DTMF_PT_DEFAULT || (int)hdr.pt == sc->peer_telev_pt)) {
        sip_media_telev(sc, &hdr, mb);
        return;
    }
    if (hdr.pt != 0 && hdr.pt != 8)
        return;
    /* PCMU or PCMA audio, early media included: the detector hears it, and
     * after the answer the DTMF receiver. */
    sc->audio_packets++;
    ob_metric_add(&sc->s->opts.metrics[SIP_M_RTP_PACKETS], 1);
    int16_t linear[PTIME_SAMPLES];
    const uint8_t *p = mbuf_buf(mb);
    for (size_t left = mbuf_get_left(mb), k; left > 0 && !sc->ended; left -= k, p += k) {
        k = left < PTIME_SAMPLES ? left : PTIME_SAMPLES;
        for (size_t j = 0; j < k; j++)
            linear[j] = hdr.pt == 8 ? alaw_to_linear(p[j]) : ulaw_to_linear(p[j]);
        ob_detect_feed(sc->detect, linear, k);
        tell_verdict(sc);
        tell_greeting_over(sc);
        if (sc->answer_at && !sc->ended)
            sip_media_inband(sc, linear, k);
    }
}

int sip_on_auth(char **user, char **pass, const char *realm, void *arg)
{
    sip_call_t *sc = arg;
    (void)realm;
    if (!sc->s->username[0])
        return EAUTH; /* no credentials: the 401/407 ends the call */
    int err = str_dup(user, sc->s->username);
    err |= str_dup(pass, sc->s->password);
    return err;
}

int sip_refuse_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    (void)descp;
    (void)msg;
    (void)arg;
    return ENOSYS; /* we always send the offer */
}

static int on_answer(const struct sip_msg *msg, void *arg)
{
    read_sdp(arg, msg);
    return 0;
}

static void on_progress(const struct sip_msg *msg, void *arg)
{
    sip_call_t *sc = arg;
    sc->responded = true;
    tmr_cancel(&sc->resp_tmr);
    if (mbuf_get_left(msg->mb) > 0)
        read_sdp(sc, msg); /* 183 with early media */
}

static void on_established(const struct sip_msg *msg, void *arg)
{
    sip_call_t *sc = arg;
    sip_carrier_t *s = sc->s;
    (void)msg;
    sc->responded = true;
    sc->answer_at = tmr_jiffies();
    tmr_cancel(&sc->resp_tmr);
    tmr_start(&sc->ring_tmr, (uint64_t)s->opts.talk_limit_ms, talk_limit, sc);
    sip_event_t ev = {.kind = EV_ANSWERED, .slot = sc->slot, .seq = sc->seq};
    sip_push_event(s, &ev);
    ob_detect_answered(sc->detect);
    sip_media_answered(sc);
    tell_verdict(sc); /* one heard in early media (a fax tone) */
    send_post_dial(sc);
}

static void on_close(int err, const struct sip_msg *msg, void *arg)
{
    sip_call_t *sc = arg;
    if (sc->answer_at) {
        /* The callee hung up (BYE), or the dialog failed mid-call. */
        if (err && err != ECONNRESET)
            finish(sc, true, OB_RESULT_UNKNOWN, 200, "OK (dialog lost: %s)", strerror(err));
        else
            finish(sc, true, OB_RESULT_UNKNOWN, 200, "OK (callee hung up)");
        return;
    }
    if (msg && !msg->req && msg->scode >= 300) {
        char reason[RESULT_REASON_MAX];
        pl_strcpy(&msg->reason, reason, sizeof(reason));
        finish(sc, false, sip_result(msg->scode), msg->scode, "%s", reason);
    } else if (err == ETIMEDOUT) {
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "timeout: no final response to the INVITE");
    } else {
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "transport error: %s",
               err ? strerror(err) : "dialog closed");
    }
}

/* Sends the INVITE with our SDP offer: PCMU, PCMA and telephone-event on
 * an RTP port of the range. */
static void place(sip_call_t *sc)
{
    sip_carrier_t *s = sc->s;
    struct mbuf *sdp = NULL;
    struct sa local;
    int err;

    sc->invite_at = tmr_jiffies();
    sc->rtp_port = sip_port_take(s);
    if (!sc->rtp_port) {
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "no RTP port free in %d-%d",
               s->opts.rtp_port_min, s->opts.rtp_port_max);
        return;
    }
    if (sa_set_str(&local, s->local_addr, (uint16_t)sc->rtp_port) != 0 ||
        (err = udp_listen(&sc->rtp, &local, on_rtp, sc)) != 0 ||
        (err = rtp_alloc(&sc->rtp_enc)) != 0) {
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "RTP port %d: %s", sc->rtp_port,
               strerror(errno));
        return;
    }
    sip_rx_add(s, &sc->rx, sc->rtp, on_rtp, sc);
    sdp = mbuf_alloc(512);
    err = mbuf_printf(sdp,
                      "v=0\r\n"
                      "o=outbound %llu 1 IN IP4 %s\r\n"
                      "s=outbound\r\n"
                      "c=IN IP4 %s\r\n"
                      "t=0 0\r\n"
                      "m=audio %d RTP/AVP 0 8 %d\r\n"
                      "a=rtpmap:0 PCMU/8000\r\n"
                      "a=rtpmap:8 PCMA/8000\r\n"
                      "a=rtpmap:%d telephone-event/8000\r\n"
                      "a=fmtp:%d 0-16\r\n"
                      "a=ptime:20\r\n"
                      "a=sendrecv\r\n",
                      (unsigned long long)sc->seq, s->local_addr, s->local_addr, sc->rtp_port,
                      DTMF_PT_DEFAULT, DTMF_PT_DEFAULT, DTMF_PT_DEFAULT);
    sdp->pos = 0;
    if (!err)
        err =
            sipsess_connect(&sc->sess, s->ss, sc->to_uri, NULL, sc->from_uri, "outbound", NULL, 0,
                            "application/sdp", sdp, sip_on_auth, sc, false, sip_refuse_offer,
                            on_answer, on_progress, on_established, NULL, NULL, on_close, sc, NULL);
    mem_deref(sdp);
    if (err) {
        finish(sc, false, OB_RESULT_LINEFAILURE, 0, "INVITE not sent: %s", strerror(err));
        return;
    }
    ob_metric_add(&s->opts.metrics[SIP_M_INVITES], 1);
    tmr_start(&sc->resp_tmr, (uint64_t)s->opts.response_timeout_ms, response_timeout, sc);
    tmr_start(&sc->ring_tmr, (uint64_t)s->opts.ring_timeout_ms, ring_timeout, sc);
}

/* Sends the INVITEs the CPS limit allows now; the rest wait their turn. */
static void pace(void *arg)
{
    sip_carrier_t *s = arg;
    uint64_t gap = s->opts.cps > 0 ? (uint64_t)(1000.0 / s->opts.cps) : 0;
    while (s->paced.head) {
        uint64_t now = tmr_jiffies();
        if (now < s->next_invite_at) {
            tmr_start(&s->pace_tmr, s->next_invite_at - now, pace, s);
            break;
        }
        sip_call_t *sc = s->paced.head->data;
        list_unlink(&sc->le);
        s->next_invite_at = (s->next_invite_at > now - gap ? s->next_invite_at : now) + gap;
        place(sc);
    }
    ob_metric_set(&s->opts.metrics[SIP_M_PACED], (int64_t)list_count(&s->paced));
}

/* A command for the call in slot, if it is still the one started as seq. */
static sip_call_t *call_of(sip_carrier_t *s, const sip_cmd_t *cmd)
{
    sip_call_t *sc = s->live[cmd->slot];
    return sc && sc->seq == cmd->seq && !sc->ended ? sc : NULL;
}

static void stop_now(void *arg)
{
    (void)arg;
    re_cancel();
}

static void sip_exited(void *arg)
{
    sip_carrier_t *s = arg;
    s->sip_exited = true;
    re_cancel();
}

static void on_command(int id, void *data, void *arg)
{
    sip_carrier_t *s = arg;
    sip_call_t *sc = NULL;
    switch (id) {
    case CMD_START:
        sc = data;
        s->live[sc->slot] = sc;
        list_append(&s->paced, &sc->le, sc);
        pace(s);
        return;
    case CMD_HANGUP:
        sc = call_of(s, data);
        if (sc && sc->answer_at)
            finish(sc, true, OB_RESULT_UNKNOWN, 200,
                   "OK (hung up by the dialer: application or drain)");
        else if (sc && sc->invite_at)
            finish(sc, false, OB_RESULT_NOANSWER, 0,
                   "hung up by the dialer while ringing: CANCEL sent");
        else if (sc)
            finish(sc, false, OB_RESULT_NOANSWER, 0,
                   "hung up by the dialer before its INVITE (waiting for the CPS limit)");
        break;
    case CMD_EXTEND:
        sc = call_of(s, data);
        if (sc && sc->answer_at) {
            sc->extended = true;
            tmr_start(&sc->ring_tmr, (uint64_t)((const sip_cmd_t *)data)->talk_ms, talk_limit, sc);
        }
        break;
    case CMD_PLAY: {
        sip_cmd_t *cmd = data;
        sc = call_of(s, cmd);
        if (sc && sc->answer_at)
            sip_media_play(sc, cmd->audio, cmd->loop, cmd->barge_in);
        else
            dialer_audio_unref(cmd->audio); /* stale, or not answered: a no-op */
        break;
    }
    case CMD_SILENCE:
        sc = call_of(s, data);
        if (sc)
            sip_media_stop(sc);
        break;
    case CMD_CONNECT: {
        sip_cmd_t *cmd = data;
        sc = call_of(s, cmd);
        if (sc && sc->answer_at && !sc->leg) {
            sip_connect_start(sc, cmd);
        } else {
            /* Its leg count on the worker's side goes with a handed_over. */
            sip_event_t ev = {
                .kind = EV_HANDED_OVER, .slot = cmd->slot, .seq = cmd->seq, .result = "failed"};
            sip_push_event(s, &ev);
        }
        free(cmd->to_uri);
        free(cmd->from_uri);
        free(cmd->headers);
        break;
    }
    case CMD_QUIT:
        for (int i = 0; i < s->opts.channels; i++)
            if (s->live[i])
                finish(s->live[i], s->live[i]->answer_at != 0, OB_RESULT_UNKNOWN, 0,
                       "dialer stopped");
        /* BYEs and CANCELs still in flight get up to 2 s: the stack's exit
         * handler runs once the last session let go of it. */
        sipsess_close_all(s->ss);
        s->ss = mem_deref(s->ss);
        sip_close(s->sip, false);
        tmr_start(&s->stop_tmr, 2000, stop_now, s);
        break;
    }
    free(data);
}

static void on_incoming(const struct sip_msg *msg, void *arg)
{
    sip_carrier_t *s = arg;
    (void)sip_treply(NULL, s->sip, msg, 603, "Decline"); /* we only place calls */
}

static int stack_up(sip_carrier_t *s)
{
    struct sa laddr, nsv[8];
    uint32_t nsn = OB_COUNTOF(nsv);
    char domain[64] = "";
    int err = 0;

    if (dns_srv_get(domain, sizeof(domain), nsv, &nsn) == 0 && nsn > 0)
        err = dnsc_alloc(&s->dnsc, NULL, nsv, nsn);
    if (err)
        snprintf(s->start_why, sizeof(s->start_why), "DNS client: %s", strerror(err));
    if (!err && (err = sip_alloc(&s->sip, s->dnsc, 1024, 1024, 1024, "outbound", sip_exited, s)))
        snprintf(s->start_why, sizeof(s->start_why), "SIP stack: %s", strerror(err));
    if (!err && (err = sa_set_str(&laddr, s->local_addr, (uint16_t)s->opts.local_port)))
        snprintf(s->start_why, sizeof(s->start_why), "OB_SIP_LOCAL_ADDR %s is no IP address",
                 s->local_addr);
    if (!err && (err = sip_transp_add(s->sip, SIP_TRANSP_UDP, &laddr)))
        snprintf(s->start_why, sizeof(s->start_why), "SIP on %s:%d (UDP): %s", s->local_addr,
                 s->opts.local_port, strerror(err));
    if (!err)
        /* A burst of INVITEs brings two or three responses each, and the
         * default receive buffer (about 200 KB) drops them once a few
         * hundred calls start at once. */
        ob_udp_buffers(s->opts.local_port, 4 << 20);
    if (!err && (err = sipsess_listen(&s->ss, s->sip, 1024, on_incoming, s)))
        snprintf(s->start_why, sizeof(s->start_why), "SIP sessions: %s", strerror(err));
    if (!err && (err = mqueue_alloc(&s->mq, on_command, s)))
        snprintf(s->start_why, sizeof(s->start_why), "SIP queue: %s", strerror(err));
    return err;
}

static void *sip_thread(void *arg)
{
    sip_carrier_t *s = arg;
#if defined(__SSE__)
    /* Denormal floats flushed to zero on this thread: SpanDSP's tone
     * receivers (the detector's CNG/CED, the DTMF receiver) decay into
     * denormals on digital silence, where each operation costs ~100 times
     * more (29 us a 20 ms frame instead of 9 in bench/media.sh's profile);
     * no detection depends on values below 1e-38. */
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
#endif
    /* A socket per call (RTP) beside the SIP ones. */
    (void)fd_setsize(s->opts.channels + 256);
    int err = stack_up(s);
    pthread_mutex_lock(&s->lock);
    s->start_err = err ? err : 0;
    s->ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (!err)
        (void)re_main(NULL); /* until CMD_QUIT; NULL: no signal handlers of its own */
    tmr_cancel(&s->pace_tmr);
    tmr_cancel(&s->stop_tmr);
    sip_media_close(s);
    /* Calls still paced never went out. */
    while (s->paced.head)
        call_free_now(s->paced.head->data);
    while (s->dead.head)
        call_free_now(s->dead.head->data);
    s->mq = mem_deref(s->mq);
    s->ss = mem_deref(s->ss);
    if (s->sip_exited || err) {
        s->sip = mem_deref(s->sip);
    } else if (s->sip) {
        /* Sessions still hold it (a BYE unanswered): cut their transactions,
         * which lets them go, and with them the stack. */
        OB_WARN("sip", "SIP transactions still open at exit: closed");
        sip_close(s->sip, true);
        s->sip = NULL;
    }
    s->dnsc = mem_deref(s->dnsc);
    return NULL;
}

/* ---- the worker side --------------------------------------------------- */

static bool sip_start(carrier_t *c, void *call, const carrier_dial_t *dial)
{
    sip_carrier_t *s = (sip_carrier_t *)c;
    int slot = -1;
    for (int i = 0; i < s->opts.channels && slot < 0; i++)
        if (!s->calls[i])
            slot = i;
    if (slot < 0 || s->active + s->legs >= s->opts.channels)
        return false;
    sip_call_t *sc = ob_xcalloc(1, sizeof(*sc));
    sc->s = s;
    sc->slot = slot;
    sc->seq = ++s->next_seq;
    sc->peer_telev_pt = -1;
    sc->audio_pt = 0;
    sa_init(&sc->peer_rtp, AF_UNSPEC);
    tmr_init(&sc->ring_tmr);
    tmr_init(&sc->resp_tmr);
    tmr_init(&sc->telev_tmr);
    tmr_init(&sc->free_tmr);
    const char *from = dial->caller_id && dial->caller_id[0] ? dial->caller_id : s->anon_id;
    sc->to_uri = ob_xasprintf("sip:%s@%s", dial->phone, s->trunk);
    sc->from_uri = ob_xasprintf("sip:%s@%s", from, s->from_domain);
    sc->post_dial = dial->post_dial && dial->post_dial[0] ? ob_xstrdup(dial->post_dial) : NULL;
    sc->call_id = ob_xstrdup(dial->call_id);
    sc->detect = ob_detect_new(dial->detect);
    if (mqueue_push(s->mq, CMD_START, sc) != 0) {
        call_free_now(sc);
        return false;
    }
    s->calls[slot] = call;
    s->seqs[slot] = sc->seq;
    s->active++;
    return true;
}

static int slot_of(const sip_carrier_t *s, const void *call)
{
    for (int i = 0; i < s->opts.channels; i++)
        if (s->calls[i] == call)
            return i;
    return -1;
}

bool sip_command(sip_carrier_t *s, int id, void *call, sip_cmd_t *cmd)
{
    int slot = slot_of(s, call);
    if (slot < 0)
        return false;
    cmd->slot = slot;
    cmd->seq = s->seqs[slot];
    if (mqueue_push(s->mq, id, cmd) != 0) {
        OB_WARN("sip", "command %d not queued", id);
        return false;
    }
    return true;
}

static void simple_command(sip_carrier_t *s, int id, void *call, int talk_ms)
{
    sip_cmd_t *cmd = ob_xcalloc(1, sizeof(*cmd));
    cmd->talk_ms = talk_ms;
    if (!sip_command(s, id, call, cmd))
        free(cmd);
}

static void sip_hangup(carrier_t *c, void *call)
{
    simple_command((sip_carrier_t *)c, CMD_HANGUP, call, 0);
}

static void sip_extend(carrier_t *c, void *call, int talk_ms)
{
    simple_command((sip_carrier_t *)c, CMD_EXTEND, call, talk_ms);
}

static void sip_play(carrier_t *c, void *call, dialer_audio_t *audio, int loop, bool barge_in)
{
    sip_cmd_t *cmd = ob_xcalloc(1, sizeof(*cmd));
    cmd->audio = dialer_audio_ref(audio); /* dropped on the SIP thread */
    cmd->loop = loop < 1 ? 1 : loop;
    cmd->barge_in = barge_in;
    if (!sip_command((sip_carrier_t *)c, CMD_PLAY, call, cmd)) {
        dialer_audio_unref(cmd->audio);
        free(cmd);
    }
}

static void sip_stop(carrier_t *c, void *call)
{
    simple_command((sip_carrier_t *)c, CMD_SILENCE, call, 0);
}

/* Fires the callback of an event other than the call's end. */
static void other_event(sip_carrier_t *s, void *call, const sip_event_t *ev)
{
    const carrier_events_t *e = s->base.events;
    void *w = s->base.worker;
    switch (ev->kind) {
    case EV_DECIDED:
        if (e->decided)
            e->decided(w, call, ev->callee_type, ev->decision_ms);
        break;
    case EV_PLAYED:
        if (e->played)
            e->played(w, call, ev->played_ms, ev->flag);
        break;
    case EV_DIGIT:
        if (e->digit)
            e->digit(w, call, ev->digit, ev->flag);
        break;
    case EV_GREETING_OVER:
        if (e->greeting_over)
            e->greeting_over(w, call, ev->flag, ev->at_ms);
        break;
    case EV_FIRST_AUDIO:
        if (e->first_audio)
            e->first_audio(w, call, ev->at_ms, ev->played_ms);
        break;
    case EV_HANDED_OVER:
        if (e->handed_over && ev->result)
            e->handed_over(w, call, ev->result, ev->code, ev->talk_ms);
        break;
    default:
        break;
    }
}

/* Fires the callbacks of what the SIP thread reported. An event whose slot
 * has since been given to another call cannot happen: a slot is free only
 * after its EV_ENDED was taken here. */
static int64_t sip_run(carrier_t *c, int64_t now)
{
    sip_carrier_t *s = (sip_carrier_t *)c;
    pthread_mutex_lock(&s->lock);
    sip_event_t *evs = s->events;
    size_t n = s->nevents;
    s->events = NULL;
    s->nevents = s->cap = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        const sip_event_t *ev = &evs[i];
        void *call = s->calls[ev->slot];
        if (ev->kind == EV_HANDED_OVER)
            s->legs--; /* even for a call gone since: its connect is over */
        if (!call || s->seqs[ev->slot] != ev->seq)
            continue;
        if (ev->kind == EV_ANSWERED) {
            s->base.events->answered(s->base.worker, call, "processing");
            continue;
        }
        if (ev->kind != EV_ENDED) {
            other_event(s, call, ev);
            continue;
        }
        s->calls[ev->slot] = NULL;
        s->active--;
        if (s->base.events->outcome)
            s->base.events->outcome(s->base.worker, call, ev->code, ev->reason);
        if (ev->detected.why && s->base.events->detected)
            s->base.events->detected(s->base.worker, call, &ev->detected);
        s->base.events->ended(s->base.worker, call, ev->answered, ev->result, ev->ring_ms,
                              ev->talk_ms);
    }
    free(evs);
    return s->active > 0 ? now + SIP_POLL_MS : INT64_MAX;
}

static int sip_active(const carrier_t *c)
{
    return ((const sip_carrier_t *)c)->active;
}

static void sip_destroy(carrier_t *c)
{
    sip_carrier_t *s = (sip_carrier_t *)c;
    if (!s)
        return;
    if (s->thread_started) {
        if (s->mq && mqueue_push(s->mq, CMD_QUIT, NULL) != 0)
            OB_WARN("sip", "SIP thread not told to stop");
        pthread_join(s->thread, NULL);
    }
    if (s->active > 0)
        OB_WARN("sip", "%d call(s) still up when the carrier stopped", s->active);
    if (s->libre_up)
        libre_close();
    free(s->events);
    free(s->calls);
    free(s->seqs);
    free(s->live);
    free(s->port_used);
    free(s->trunk);
    free(s->local_addr);
    free(s->username);
    free(s->password);
    free(s->from_domain);
    free(s->anon_id);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

static const carrier_ops_t sip_ops = {
    .name = "sip",
    .start = sip_start,
    .hangup = sip_hangup,
    .extend = sip_extend,
    .play = sip_play,
    .stop = sip_stop,
    .connect = sip_connect_command,
    .run = sip_run,
    .active = sip_active,
    .destroy = sip_destroy,
};

ob_rc_t carrier_sip_new(const carrier_sip_opts_t *opts, const carrier_events_t *events,
                        void *worker, carrier_t **out, ob_err_t *err)
{
    sip_carrier_t *s = ob_xcalloc(1, sizeof(*s));
    ob_rc_t rc = OB_OK;
    s->base.ops = &sip_ops;
    s->base.events = events;
    s->base.worker = worker;
    s->opts = *opts;
    s->trunk = ob_xstrdup(opts->trunk);
    s->local_addr = ob_xstrdup(opts->local_addr);
    s->username = ob_xstrdup(opts->username);
    s->password = ob_xstrdup(opts->password);
    /* The From host defaults to the trunk's, without its port. */
    s->from_domain = opts->from_domain[0]
                         ? ob_xstrdup(opts->from_domain)
                         : ob_xasprintf("%.*s", (int)strcspn(opts->trunk, ":"), opts->trunk);
    s->anon_id = ob_xstrdup(opts->anonymous_id);
    s->calls = ob_xcalloc((size_t)opts->channels, sizeof(void *));
    s->seqs = ob_xcalloc((size_t)opts->channels, sizeof(uint64_t));
    s->live = ob_xcalloc((size_t)opts->channels, sizeof(sip_call_t *));
    s->nports = (opts->rtp_port_max - opts->rtp_port_min) / 2 + 1;
    s->port_used = ob_xcalloc((size_t)s->nports, 1);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    list_init(&s->paced);
    list_init(&s->dead);
    tmr_init(&s->pace_tmr);
    tmr_init(&s->stop_tmr);
    tmr_init(&s->tick_tmr);
    list_init(&s->playing);

    /* libre keeps one poll loop per process unless told otherwise; this
     * thread is its only user. */
    int e = libre_init();
    if (e) {
        ob_err_set(err, "libre: %s", strerror(e));
        rc = OB_ERR;
        goto out;
    }
    s->libre_up = true;
    if ((e = pthread_create(&s->thread, NULL, sip_thread, s)) != 0) {
        ob_err_set(err, "SIP thread: %s", strerror(e));
        rc = OB_ERR;
        goto out;
    }
    s->thread_started = true;
    pthread_mutex_lock(&s->lock);
    while (!s->ready)
        pthread_cond_wait(&s->cond, &s->lock);
    e = s->start_err;
    pthread_mutex_unlock(&s->lock);
    if (e) {
        ob_err_set(err, "sip carrier: %s", s->start_why);
        pthread_join(s->thread, NULL); /* it returned without entering its loop */
        s->thread_started = false;
        rc = OB_ERR;
    }
out:
    if (rc != OB_OK) {
        sip_destroy(&s->base);
        return rc;
    }
    *out = &s->base;
    return OB_OK;
}
