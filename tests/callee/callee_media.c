/*
 * One test call's RTP. Sending is paced by the caller's tick against a
 * schedule fixed at the answer (every 20 ms from it), so a late tick sends
 * what was due and the stream's average rate stays exact. What is heard is
 * placed on the recording by its RTP timestamp, anchored at the arrival of
 * the stream's first packet, so jitter does not smear it and a pause in
 * sending (no packets) stays a pause.
 */
#include "callee_media.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_FRAMES       10   /* a key's slot: 100 ms of tone, 100 ms off */
#define KEY_ON_FRAMES    5    /* ... of which the tone */
#define PAUSE_FRAMES     25   /* ',' : 500 ms */
#define EVENT_VOLUME     10   /* RFC 4733 volume field: -10 dBm0 */
#define END_REPEATS      3    /* RFC 4733: the end packet is sent three times */
#define MAX_CATCH_UP     3    /* packets sent at once after a late tick */
#define REANCHOR_SAMPLES 8000 /* timestamp this far from arrival: a new timeline */
#define TELEV_DEFAULT    101  /* what we offer, and assume when no SDP said */

int64_t callee_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void append_char(char *buf, size_t size, char c)
{
    size_t n = strlen(buf);
    if (n + 1 < size) {
        buf[n] = c;
        buf[n + 1] = 0;
    }
}

static void heard_event(callee_media_t *m, const struct rtp_header *h, const uint8_t *p, size_t len)
{
    if (len < 4 || !(p[1] & 0x80))
        return;
    /* The end packet comes three times with the event's timestamp. */
    if (m->heard_any && h->ts == m->heard_ts)
        return;
    m->heard_any = true;
    m->heard_ts = h->ts;
    int d = telev_code2digit(p[0]);
    if (d > 0)
        append_char(m->digits_heard, sizeof(m->digits_heard), (char)d);
}

static void record(callee_media_t *m, const struct rtp_header *h, const uint8_t *p, size_t len,
                   int64_t now)
{
    int64_t arrival = (now - m->answer_us) * CALLEE_RATE / 1000000;
    int64_t pos = m->rec_pos0 + (int32_t)(h->ts - m->rec_ts0);
    if (m->rec_pos0 < 0 || h->ssrc != m->rec_ssrc || llabs(pos - arrival) > REANCHOR_SAMPLES) {
        m->rec_pos0 = arrival;
        m->rec_ts0 = h->ts;
        m->rec_ssrc = h->ssrc;
        pos = arrival;
    }
    if (pos < 0 || pos + (int64_t)len > m->max_samples)
        return;
    size_t end = (size_t)pos + len;
    if (end > m->rec_cap) {
        size_t cap = m->rec_cap ? m->rec_cap : CALLEE_RATE * 4;
        while (cap < end)
            cap *= 2;
        m->rec = ob_xrealloc(m->rec, cap * sizeof(int16_t));
        memset(m->rec + m->rec_cap, 0, (cap - m->rec_cap) * sizeof(int16_t));
        m->rec_cap = cap;
    }
    for (size_t i = 0; i < len; i++)
        m->rec[pos + (int64_t)i] = h->pt == 8 ? alaw_to_linear(p[i]) : ulaw_to_linear(p[i]);
    if ((int64_t)end > m->st.recorded)
        m->st.recorded = (int64_t)end;
}

static void heard_audio(callee_media_t *m, const struct rtp_header *h, const uint8_t *p, size_t len,
                        int64_t now)
{
    m->st.packets++;
    m->st.bytes += (int64_t)len;
    if (m->first_us == 0) {
        m->first_us = now;
        if (m->answer_us)
            m->st.first_ms = (double)(now - m->answer_us) / 1000.0;
        if (m->rule->digits && m->rule->digits_after_ms >= 0)
            m->digits_us = now + (int64_t)m->rule->digits_after_ms * 1000;
    } else {
        if (m->ngaps == m->capgaps) {
            m->capgaps = m->capgaps ? m->capgaps * 2 : 256;
            m->gaps_us = ob_xrealloc(m->gaps_us, m->capgaps * sizeof(*m->gaps_us));
        }
        int64_t gap = now - m->last_us;
        m->gaps_us[m->ngaps++] = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
        if (gap > 2 * CALLEE_PTIME_US)
            m->st.gaps_over_40ms++;
    }
    m->last_us = now;
    if (m->record && m->answer_us)
        record(m, h, p, len, now);
}

static void on_rtp(const struct sa *src, struct mbuf *mb, void *arg)
{
    callee_media_t *m = arg;
    struct rtp_header h;
    if (rtp_hdr_decode(&h, mb) != 0 || h.ver != RTP_VERSION)
        return;
    if (!sa_isset(&m->peer, SA_ALL))
        m->peer = *src; /* symmetric RTP when no SDP said where */
    int64_t now = callee_now_us();
    int telev = m->telev_pt >= 0 ? m->telev_pt : TELEV_DEFAULT;
    if (h.pt == telev)
        heard_event(m, &h, mbuf_buf(mb), mbuf_get_left(mb));
    else if (h.pt == 0 || h.pt == 8)
        heard_audio(m, &h, mbuf_buf(mb), mbuf_get_left(mb), now);
}

int callee_media_open(callee_media_t *m, const char *ip, int port, const callee_rule_t *rule,
                      bool record_on, int max_ms)
{
    struct sa laddr, bound;
    memset(m, 0, sizeof(*m));
    m->rule = rule;
    m->pt = rule->codec_pt;
    m->telev_pt = -1;
    m->digit_frame = -1;
    m->rec_pos0 = -1;
    m->marker = true;
    m->record = record_on;
    m->max_samples = (int64_t)max_ms * CALLEE_RATE / 1000;
    m->st.first_ms = -1;
    sa_init(&m->peer, AF_UNSPEC);
    int err = sa_set_str(&laddr, ip, (uint16_t)port);
    if (!err)
        err = udp_listen(&m->sock, &laddr, on_rtp, m);
    if (!err)
        err = udp_local_get(m->sock, &bound);
    if (!err)
        err = rtp_alloc(&m->enc);
    if (err) {
        m->sock = mem_deref(m->sock);
        m->enc = mem_deref(m->enc);
        return err;
    }
    m->port = sa_port(&bound);
    return 0;
}

bool callee_media_sdp(callee_media_t *m, const char *sdp, size_t len)
{
    char *text = ob_xstrndup(sdp, len), *save = NULL;
    char addr[64] = "";
    int port = -1;
    bool pcmu = false, pcma = false;
    for (char *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        int pt = 0, off = 0;
        if (sscanf(line, "c=IN IP4 %63s", addr) == 1)
            continue;
        if (port < 0 && sscanf(line, "m=audio %d RTP/AVP%n", &port, &off) == 1 && off > 0) {
            for (char *p = line + off; *p;) {
                char *end = NULL;
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                pcmu |= v == 0;
                pcma |= v == 8;
                p = end;
            }
            continue;
        }
        /* sscanf counts %d alone: the %n says the name matched too. */
        int named = 0;
        if (sscanf(line, "a=rtpmap:%d telephone-event/8000%n", &pt, &named) == 1 && named > 0)
            m->telev_pt = pt;
    }
    free(text);
    if (!pcmu && !pcma)
        return false;
    m->pt = m->rule->codec_pt == 8 ? (pcma ? 8 : 0) : (pcmu ? 0 : 8);
    if (addr[0] && port > 0 && port < 65536 && sa_set_str(&m->peer, addr, (uint16_t)port) != 0)
        sa_init(&m->peer, AF_UNSPEC);
    return true;
}

struct mbuf *callee_media_sdp_out(const callee_media_t *m, const char *ip, bool offer)
{
    struct mbuf *mb = mbuf_alloc(512);
    int other = m->pt == 0 ? 8 : 0;
    int telev = offer ? TELEV_DEFAULT : m->telev_pt;
    char fmts[32];
    if (offer)
        snprintf(fmts, sizeof(fmts), "%d %d %d", m->pt, other, telev);
    else if (telev >= 0)
        snprintf(fmts, sizeof(fmts), "%d %d", m->pt, telev);
    else
        snprintf(fmts, sizeof(fmts), "%d", m->pt);
    int err = mbuf_printf(mb,
                          "v=0\r\n"
                          "o=ob-test-callee %d 1 IN IP4 %s\r\n"
                          "s=ob-test-callee\r\n"
                          "c=IN IP4 %s\r\n"
                          "t=0 0\r\n"
                          "m=audio %d RTP/AVP %s\r\n"
                          "a=rtpmap:%d %s/8000\r\n",
                          m->port, ip, ip, m->port, fmts, m->pt, m->pt == 8 ? "PCMA" : "PCMU");
    if (!err && offer)
        err = mbuf_printf(mb, "a=rtpmap:%d %s/8000\r\n", other, other == 8 ? "PCMA" : "PCMU");
    if (!err && telev >= 0)
        err =
            mbuf_printf(mb, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", telev, telev);
    if (!err)
        err = mbuf_printf(mb, "a=ptime:20\r\na=sendrecv\r\n");
    OB_ASSERT(err == 0);
    mb->pos = 0;
    return mb;
}

void callee_media_answered(callee_media_t *m, int64_t now_us)
{
    m->answer_us = now_us;
    m->next_us = now_us;
    m->sending = true;
    m->ts = (uint32_t)rand_u32();
    if (m->rule->digits && m->rule->digits_at_ms >= 0)
        m->digits_us = now_us + (int64_t)m->rule->digits_at_ms * 1000;
    /* Audio heard before the answer (none is expected) starts the timeline now. */
    if (m->first_us && m->rule->digits && m->rule->digits_after_ms >= 0)
        m->digits_us = now_us + (int64_t)m->rule->digits_after_ms * 1000;
}

/* Sends one RTP packet: header, then len bytes of payload. */
static void send_rtp(callee_media_t *m, int pt, bool marker, uint32_t ts, const uint8_t *payload,
                     size_t len)
{
    if (!sa_isset(&m->peer, SA_ALL))
        return;
    struct mbuf *mb = mbuf_alloc(RTP_HEADER_SIZE + len);
    mb->pos = mb->end = RTP_HEADER_SIZE;
    int err = mbuf_write_mem(mb, payload, len);
    mb->pos = 0;
    if (!err)
        err = rtp_encode(m->enc, false, marker, (uint8_t)pt, ts, mb);
    mb->pos = 0;
    if (!err && udp_send(m->sock, &m->peer, mb) == 0)
        m->st.sent++;
    mem_deref(mb);
}

static void send_event(callee_media_t *m, int code, bool marker, bool end, int frames)
{
    uint16_t duration = (uint16_t)(frames * CALLEE_FRAME);
    uint8_t ev[4] = {(uint8_t)code, (uint8_t)((end ? 0x80 : 0) | EVENT_VOLUME),
                     (uint8_t)(duration >> 8), (uint8_t)duration};
    send_rtp(m, m->telev_pt, marker, m->event_ts, ev, sizeof(ev));
}

/* Advances the keys by one 20 ms frame, mixing in-band tones into frame. */
static void key_frame(callee_media_t *m, int16_t *frame)
{
    const char *digits = m->rule->digits;
    if (!digits || !m->digits_us || m->next_us < m->digits_us || !digits[m->digit_i])
        return;
    char c = digits[m->digit_i];
    bool inband = m->rule->dtmf_mode == CALLEE_DTMF_INBAND;
    if (m->digit_frame < 0) {
        m->digit_frame = 0;
        m->event_ts = m->ts;
        if (c != ',' && !inband && m->telev_pt < 0)
            fprintf(stderr,
                    "ob-test-callee: key %c not sent: the caller offered no "
                    "telephone-event\n",
                    c);
        else if (c != ',')
            append_char(m->digits_sent, sizeof(m->digits_sent), c);
        if (c != ',' && inband) {
            if (!m->dtmf) {
                m->dtmf = dtmf_tx_init(NULL);
                dtmf_tx_set_timing(m->dtmf, KEY_ON_FRAMES * 20, (KEY_FRAMES - KEY_ON_FRAMES) * 20);
            }
            dtmf_tx_put(m->dtmf, &c, 1);
        }
    }
    int f = m->digit_frame;
    if (c != ',' && inband) {
        int16_t tone[CALLEE_FRAME] = {0};
        int n = dtmf_tx(m->dtmf, tone, CALLEE_FRAME);
        for (int i = 0; i < n; i++) {
            int v = frame[i] + tone[i];
            frame[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        }
    } else if (c != ',' && m->telev_pt >= 0) {
        int code = telev_digit2code(c);
        if (f < KEY_ON_FRAMES)
            send_event(m, code, f == 0, false, f + 1);
        else if (f == KEY_ON_FRAMES)
            for (int i = 0; i < END_REPEATS; i++)
                send_event(m, code, false, true, KEY_ON_FRAMES);
    }
    if (++m->digit_frame >= (c == ',' ? PAUSE_FRAMES : KEY_FRAMES)) {
        m->digit_frame = -1;
        m->digit_i++;
    }
}

static void send_frame(callee_media_t *m)
{
    int16_t frame[CALLEE_FRAME] = {0};
    uint8_t payload[CALLEE_FRAME];
    const callee_audio_t *g = m->rule->greeting;
    if (g && m->greet_pos < g->n &&
        m->next_us >= m->answer_us + (int64_t)m->rule->greeting_after_ms * 1000) {
        size_t n = g->n - m->greet_pos < CALLEE_FRAME ? g->n - m->greet_pos : CALLEE_FRAME;
        memcpy(frame, g->samples + m->greet_pos, n * sizeof(int16_t));
        m->greet_pos += n;
    }
    key_frame(m, frame);
    for (int i = 0; i < CALLEE_FRAME; i++)
        payload[i] = m->pt == 8 ? linear_to_alaw(frame[i]) : linear_to_ulaw(frame[i]);
    send_rtp(m, m->pt, m->marker, m->ts, payload, sizeof(payload));
    m->marker = false;
    m->ts += CALLEE_FRAME;
}

int64_t callee_media_tick(callee_media_t *m, int64_t now_us)
{
    if (!m->sending || !m->rule->send_rtp)
        return INT64_MAX;
    for (int i = 0; i < MAX_CATCH_UP && m->next_us <= now_us; i++) {
        send_frame(m);
        m->next_us += CALLEE_PTIME_US;
    }
    /* Far behind (the loop stalled): start the schedule again from now
     * rather than send a burst. */
    if (m->next_us <= now_us - CALLEE_PTIME_US)
        m->next_us = now_us + CALLEE_PTIME_US;
    return m->next_us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p of n sorted gaps, in ms. */
static double rank_ms(const uint32_t *sorted, size_t n, int p)
{
    size_t k = (n * (size_t)p + 99) / 100;
    return sorted[k ? k - 1 : 0] / 1000.0;
}

void callee_media_close(callee_media_t *m, callee_media_stats_t *st)
{
    m->sending = false;
    m->sock = mem_deref(m->sock);
    m->enc = mem_deref(m->enc);
    if (m->dtmf) {
        dtmf_tx_free(m->dtmf);
        m->dtmf = NULL;
    }
    if (m->ngaps) {
        qsort(m->gaps_us, m->ngaps, sizeof(*m->gaps_us), cmp_u32);
        m->st.gap_p50_ms = rank_ms(m->gaps_us, m->ngaps, 50);
        m->st.gap_p99_ms = rank_ms(m->gaps_us, m->ngaps, 99);
        m->st.gap_max_ms = m->gaps_us[m->ngaps - 1] / 1000.0;
    }
    *st = m->st;
}

const int16_t *callee_media_recording(const callee_media_t *m, size_t *n)
{
    *n = (size_t)m->st.recorded;
    return m->rec;
}

void callee_media_free(callee_media_t *m)
{
    m->sock = mem_deref(m->sock);
    m->enc = mem_deref(m->enc);
    if (m->dtmf)
        dtmf_tx_free(m->dtmf);
    free(m->gaps_us);
    free(m->rec);
    memset(m, 0, sizeof(*m));
}
