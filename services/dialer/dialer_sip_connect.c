/*
 * The sip carrier's connect (see dialer_sip.h): hands an answered call over
 * to another party. Runs on the SIP thread.
 */
#include "dialer_sip.h"
#include "ob_common.h"

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

void sip_connect_start(sip_call_t *sc, sip_cmd_t *cmd)
{
    (void)cmd;
    sip_event_t ev = {.kind = EV_HANDED_OVER, .slot = sc->slot, .seq = sc->seq, .result = "failed"};
    sip_push_event(sc->s, &ev);
}

bool sip_connect_relay(sip_call_t *sc, const struct rtp_header *hdr, struct mbuf *mb)
{
    (void)sc;
    (void)hdr;
    (void)mb;
    return false;
}

void sip_connect_ended(sip_call_t *sc)
{
    (void)sc;
}
