/*
 * libFuzzer target: the message decoders of proto/ob_proto.c, which read
 * whatever is on the topics. The first byte picks the decoder, the rest is
 * the message. A message that decodes must encode to text that decodes
 * again to the same encoding (what a consumer re-publishes is what it read).
 */
#include "ob_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef ob_rc_t (*decode_fn)(const char *json, size_t len, void *out, ob_err_t *err);
typedef char *(*encode_fn)(const void *m);
typedef void (*clear_fn)(void *m);

/* The data member is decoded into a struct the caller zeroed. */
static ob_rc_t event_data_decode(const char *json, size_t len, void *out, ob_err_t *err)
{
    memset(out, 0, sizeof(ob_call_event_t));
    ob_rc_t rc = ob_call_event_data_decode(json, len, out, err);
    if (rc != OB_OK)
        ob_call_event_clear(out);
    return rc;
}

static const struct {
    decode_fn decode; /* text -> struct */
    encode_fn encode; /* struct -> text */
    clear_fn clear;   /* frees the struct's strings */
} codecs[] = {
    {(decode_fn)ob_call_request_decode, (encode_fn)ob_call_request_encode,
     (clear_fn)ob_call_request_clear},
    {(decode_fn)ob_cancel_deployment_decode, (encode_fn)ob_cancel_deployment_encode,
     (clear_fn)ob_cancel_deployment_clear},
    {(decode_fn)ob_dial_job_decode, (encode_fn)ob_dial_job_encode, (clear_fn)ob_dial_job_clear},
    {(decode_fn)ob_call_event_decode, (encode_fn)ob_call_event_encode,
     (clear_fn)ob_call_event_clear},
    {event_data_decode, (encode_fn)ob_call_event_data_encode, (clear_fn)ob_call_event_clear},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    union {
        ob_call_request_t request;
        ob_cancel_deployment_t cancel;
        ob_dial_job_t job;
        ob_call_event_t event;
    } m, again;
    ob_err_t err = {{0}};
    char kind[32];
    if (size < 1)
        return 0;
    size_t which = data[0] % (sizeof(codecs) / sizeof(codecs[0]));
    const char *json = (const char *)data + 1;
    size--;
    ob_request_kind(json, size, kind);
    OB_ASSERT(memchr(kind, '\0', sizeof(kind)) != NULL);
    if (codecs[which].decode(json, size, &m, &err) != OB_OK) {
        OB_ASSERT(err.msg[0] != '\0');
        return 0;
    }
    char *text = codecs[which].encode(&m);
    OB_ASSERT(codecs[which].decode(text, strlen(text), &again, &err) == OB_OK);
    char *text2 = codecs[which].encode(&again);
    OB_ASSERT(strcmp(text, text2) == 0);
    free(text);
    free(text2);
    codecs[which].clear(&m);
    codecs[which].clear(&again);
    return 0;
}
