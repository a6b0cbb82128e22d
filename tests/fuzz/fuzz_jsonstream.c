/*
 * libFuzzer target: the batch body splitter (services/ingest/ingest_jsonstream.c). The
 * first byte picks the mode and the chunk size, the second the element size
 * limit; every element is parsed the way the batch handler parses it, and
 * the splitter's promises (length, NUL, line numbers) are checked.
 */
#include "ingest_jsonstream.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    size_t last_index; /* index of the element before, 0 at first */
    size_t last_line;  /* and its line */
} seen_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ob_rc_t on_element(void *opaque, size_t index, size_t line, const char *json, size_t len,
                          ob_err_t *err)
{
    seen_t *s = opaque;
    const char *end = NULL;
    (void)err;
    OB_ASSERT(index == s->last_index + 1);
    OB_ASSERT(line >= 1 && line >= s->last_line);
    OB_ASSERT(json[len] == '\0');
    s->last_index = index;
    s->last_line = line;
    cJSON *v = cJSON_ParseWithOpts(json, &end, 1);
    if (v)
        OB_ASSERT(end >= json && (size_t)(end - json) <= len);
    cJSON_Delete(v);
    return OB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ingest_jsonstream_mode_t modes[] = {
        INGEST_JSONSTREAM_AUTO, INGEST_JSONSTREAM_ARRAY, INGEST_JSONSTREAM_NDJSON};
    seen_t seen = {0};
    ob_err_t err = {{0}};
    if (size < 2)
        return 0;
    ingest_jsonstream_mode_t mode = modes[data[0] % 3];
    size_t chunk = data[0] / 3 % 16 == 0 ? size : data[0] / 3 % 16;
    size_t max_element = data[1] < 128 ? (size_t)data[1] + 1 : 128 * 1024;
    data += 2;
    size -= 2;
    ingest_jsonstream_t *s = ingest_jsonstream_new(mode, max_element, on_element, &seen);
    ob_rc_t rc = OB_OK;
    for (size_t off = 0; off < size && rc == OB_OK; off += chunk)
        rc = ingest_jsonstream_feed(s, (const char *)data + off,
                                    size - off < chunk ? size - off : chunk, &err);
    if (rc == OB_OK)
        rc = ingest_jsonstream_finish(s, &err);
    OB_ASSERT(rc == OB_OK || err.msg[0] != '\0');
    ingest_jsonstream_free(s);
    return 0;
}
