/*
 * The sip carrier's media on an answered call (see dialer_sip.h): audio the
 * worker plays goes out as RTP, 20 ms a packet, on one clock for all calls;
 * what the callee sends back is searched for key presses, as RFC 4733
 * telephone-events and as in-band DTMF tones. Runs on the SIP thread.
 */
#include "dialer_sip.h"
#include "ob_common.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* A late tick sends the packets it missed, up to this many at once; time
 * beyond that is let go rather than sent as a burst the callee's jitter
 * buffer would drop. */
#define MAX_BURST 3
/* A play's first packet goes out at once unless the next tick is this
 * close (or the call sent in this period already): no two packets closer
 * than half a ptime. */
#define SEND_NOW_MS 10

/* Datagrams read from one socket per tick at most: a 20 ms period brings
 * one packet per stream; the rest is a backlog worked off over ticks. */
#define RX_BURST 8
#define RX_MAX   2048 /* largest datagram read */

static const char telev_keys[] = "0123456789*#ABCD"; /* RFC 4733 events 0-15 */

static void push(sip_call_t *sc, sip_event_t ev)
{
    ev.slot = sc->slot;
    ev.seq = sc->seq;
    sip_push_event(sc->s, &ev);
}

/* What plays is over: reported, and our reference dropped. */
static void play_over(sip_call_t *sc, bool interrupted)
{
    if (!sc->audio)
        return;
    push(sc, (sip_event_t){.kind = EV_PLAYED,
                           .played_ms = (int)(sc->played_samples / 8),
                           .flag = interrupted});
    dialer_audio_unref(sc->audio);
    sc->audio = NULL;
    if (sc->play_le.list)
        list_unlink(&sc->play_le);
}

/* Sends the next 20 ms of what plays (the last packet padded with
 * silence) in the codec the answer chose; ends the play after its last. */
static void send_packet(sip_call_t *sc)
{
    sip_carrier_t *s = sc->s;
    const dialer_audio_t *a = sc->audio;
    uint8_t payload[PTIME_SAMPLES];
    bool alaw = sc->audio_pt == 8, done = false;
    for (int i = 0; i < PTIME_SAMPLES; i++) {
        if (sc->play_pos >= a->n && sc->loops_left > 0) {
            sc->loops_left--;
            sc->play_pos = 0;
        }
        int16_t v = 0;
        if (sc->play_pos < a->n) {
            v = a->samples[sc->play_pos++];
            sc->played_samples++;
        }
        payload[i] = alaw ? linear_to_alaw(v) : linear_to_ulaw(v);
    }
    done = sc->play_pos >= a->n && sc->loops_left == 0;

    if (!s->pkt)
        s->pkt = mbuf_alloc(RTP_HEADER_SIZE + PTIME_SAMPLES + 16);
    struct mbuf *mb = s->pkt;
    /* As telev_tick: the payload after room for the header, which
     * rtp_encode writes at pos 0. */
    mb->pos = mb->end = RTP_HEADER_SIZE;
    (void)mbuf_write_mem(mb, payload, sizeof(payload));
    mb->pos = 0;
    if (sc->rtp && sa_isset(&sc->peer_rtp, SA_ALL) &&
        rtp_encode(sc->rtp_enc, false, sc->spurt_start, (uint8_t)sc->audio_pt, sc->rtp_ts, mb) ==
            0) {
        mb->pos = 0;
        if (udp_send(sc->rtp, &sc->peer_rtp, mb) == 0 && !sc->first_audio_at)
            sc->first_audio_at = tmr_jiffies();
    }
    sc->spurt_start = false;
    sc->rtp_ts += PTIME_SAMPLES;
    sc->last_tick = s->tick_no + 1;
    if (done)
        play_over(sc, false);
}

/* Reads what the clock's sockets received, each datagram to its handler.
 * A handler may end a call or a leg and so change the list: the pass stops
 * there (what is left waits for the next tick). */
static void drain(sip_carrier_t *s)
{
    if (!s->rxmb)
        s->rxmb = mbuf_alloc(RX_MAX);
    unsigned gen = s->rx_gen;
    for (struct le *le = s->rx.head; le && gen == s->rx_gen; le = le->next) {
        sip_rx_t *rx = le->data;
        int fd = udp_sock_fd(rx->us, AF_INET);
        for (int k = 0; k < RX_BURST && fd >= 0 && gen == s->rx_gen; k++) {
            struct sockaddr_storage from;
            socklen_t flen = sizeof(from);
            struct mbuf *mb = s->rxmb;
            ssize_t n =
                recvfrom(fd, mb->buf, mb->size, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
            if (n <= 0)
                break; /* EAGAIN: drained */
            mb->pos = 0;
            mb->end = (size_t)n;
            struct sa src;
            if (sa_set_sa(&src, (struct sockaddr *)&from) == 0)
                rx->h(&src, mb, rx->arg);
        }
    }
}

static void tick(void *arg);

static void clock_start(sip_carrier_t *s)
{
    if (tmr_isrunning(&s->tick_tmr))
        return;
    s->tick_base = tmr_jiffies();
    s->ticks = 0;
    tmr_start(&s->tick_tmr, PTIME_MS, tick, s);
}

void sip_rx_add(sip_carrier_t *s, sip_rx_t *rx, struct udp_sock *us, udp_recv_h *h, void *arg)
{
    udp_thread_detach(us); /* out of libre's poll loop: read by the clock */
    rx->us = us;
    rx->h = h;
    rx->arg = arg;
    list_append(&s->rx, &rx->le, rx);
    s->rx_gen++;
    clock_start(s);
}

void sip_rx_remove(sip_carrier_t *s, sip_rx_t *rx)
{
    if (!rx->le.list)
        return;
    list_unlink(&rx->le);
    rx->us = NULL;
    s->rx_gen++;
}

/* The carrier's clock: every 20 ms, one packet for each call that plays,
 * then what every call's socket received. How many periods are due is
 * counted from tmr_jiffies() since the clock started, so a late tick
 * catches up (up to MAX_BURST) and the ticks do not drift; sending first
 * keeps our packets on time whatever the reading costs. It stops when
 * nothing plays and no socket is listed. */
static void tick(void *arg)
{
    sip_carrier_t *s = arg;
    uint64_t now = tmr_jiffies();
    uint64_t elapsed = (now - s->tick_base) / PTIME_MS;
    uint64_t n = elapsed > s->ticks ? elapsed - s->ticks : 0;
    if (n > MAX_BURST) {
        s->ticks = elapsed - MAX_BURST;
        n = MAX_BURST;
    }
    for (uint64_t k = 0; k < n && s->playing.head; k++) {
        s->ticks++;
        s->tick_no++;
        for (struct le *le = s->playing.head; le;) {
            sip_call_t *sc = le->data;
            le = le->next; /* send_packet may take sc off the list */
            send_packet(sc);
        }
    }
    s->ticks = elapsed; /* the periods have passed, whether anything played or not */
    drain(s);
    if (!s->playing.head && !s->rx.head)
        return;
    now = tmr_jiffies();
    uint64_t next = s->tick_base + (s->ticks + 1) * PTIME_MS;
    tmr_start(&s->tick_tmr, next > now ? next - now : 0, tick, s);
}

void sip_media_play(sip_call_t *sc, dialer_audio_t *audio, int loop, bool barge_in)
{
    sip_carrier_t *s = sc->s;
    play_over(sc, true); /* what played stops first */
    sc->audio = audio;
    sc->play_pos = 0;
    sc->loops_left = loop > 1 ? loop - 1 : 0;
    sc->barge_in = barge_in;
    sc->played_samples = 0;
    if (audio->n == 0) {
        play_over(sc, false);
        return;
    }
    /* A talkspurt: marker bit, and a timestamp on the wall clock's time
     * line that never goes back on this stream. */
    uint32_t now_ts = (uint32_t)(tmr_jiffies() * 8);
    if (!sc->rtp_ts_set || (int32_t)(now_ts - sc->rtp_ts) > 0)
        sc->rtp_ts = now_ts;
    sc->rtp_ts_set = true;
    sc->spurt_start = true;
    list_append(&s->playing, &sc->play_le, sc);
    clock_start(s);
    if (sc->last_tick != s->tick_no + 1 && tmr_get_expire(&s->tick_tmr) >= SEND_NOW_MS)
        send_packet(sc);
}

void sip_media_stop(sip_call_t *sc)
{
    play_over(sc, true);
}

/* A key pressed: counted, stops a play that allows barge-in, and reported
 * (after the play's end, so the worker sees the play over first). */
static void digit(sip_call_t *sc, char key, bool inband)
{
    if (inband && sc->telev_heard)
        return; /* a phone sending both would give each key twice */
    ob_metric_add(&sc->s->opts.metrics[SIP_M_DIGITS_IN], 1);
    if (sc->audio && sc->barge_in)
        play_over(sc, true);
    push(sc, (sip_event_t){.kind = EV_DIGIT, .digit = key, .flag = inband});
}

static void on_dtmf(void *arg, const char *digits, int len)
{
    sip_call_t *sc = arg;
    for (int i = 0; i < len && !sc->ended; i++)
        digit(sc, digits[i], true);
}

void sip_media_answered(sip_call_t *sc)
{
    if (!sc->dtmf)
        sc->dtmf = dtmf_rx_init(NULL, on_dtmf, sc);
}

/* RFC 4733: event (8 bits), E, R, volume (6), duration (16). Every packet
 * of one key press, its repeated end packets included, carries the
 * timestamp of its start: the first one seen is the press. */
void sip_media_telev(sip_call_t *sc, const struct rtp_header *hdr, struct mbuf *mb)
{
    if (mbuf_get_left(mb) < 4)
        return;
    uint8_t event = mbuf_buf(mb)[0];
    if (event >= sizeof(telev_keys) - 1)
        return; /* not a key (a tone or a line event) */
    if (sc->telev_heard && hdr->ts == sc->telev_rx_ts)
        return;
    sc->telev_heard = true;
    sc->telev_rx_ts = hdr->ts;
    digit(sc, telev_keys[event], false);
}

void sip_media_inband(sip_call_t *sc, const int16_t *samples, size_t n)
{
    if (sc->dtmf && !sc->telev_heard)
        dtmf_rx(sc->dtmf, samples, (int)n);
}

void sip_media_ended(sip_call_t *sc)
{
    play_over(sc, true);
    if (!sc->first_audio_at)
        return;
    const ob_detect_result_t *r = ob_detect_result(sc->detect);
    push(sc, (sip_event_t){.kind = EV_FIRST_AUDIO,
                           .at_ms = r->greeting_end_ms,
                           .played_ms = (int)(sc->first_audio_at - sc->answer_at)});
}

void sip_media_free(sip_call_t *sc)
{
    dialer_audio_unref(sc->audio);
    sc->audio = NULL;
    if (sc->play_le.list)
        list_unlink(&sc->play_le);
    if (sc->dtmf)
        dtmf_rx_free(sc->dtmf);
    sc->dtmf = NULL;
}

void sip_media_close(sip_carrier_t *s)
{
    tmr_cancel(&s->tick_tmr);
    s->pkt = mem_deref(s->pkt);
    s->rxmb = mem_deref(s->rxmb);
}
