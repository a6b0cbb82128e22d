/*
 * libFuzzer target: the call-control document (common/domain/ob_appdoc.c).
 * The input is a document; when it parses, every template in it (say text,
 * URLs, connect's to) is rendered over fixed call_parameters, as text and as
 * a URL, with the document's own bounds. A 0x00 byte, if any, splits the
 * input: what follows it is the call_parameters instead.
 */
#include "ob_appdoc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed_params =
    "{\"name\":\"Ana Lee\",\"n\":42,\"b\":true,\"z\":null,\"o\":{\"k\":[1,\"&\"]}}";

static void render(const char *tmpl, const char *params, size_t max)
{
    if (!tmpl)
        return;
    ob_err_t err;
    for (int url = 0; url < 2; url++) {
        char *s = ob_appdoc_render(tmpl, params, url != 0, max, &err);
        if (s && strlen(s) > max)
            abort();
        free(s);
    }
}

static void render_verbs(const ob_verb_t *verbs, int n, const char *params)
{
    for (int i = 0; i < n; i++) {
        const ob_verb_t *v = &verbs[i];
        if (!ob_verb_name(v->kind))
            abort();
        render(v->text, params, OB_APPDOC_MAX_TEXT);
        render(v->url, params, OB_APPDOC_MAX_URL);
        render(v->action_url, params, OB_APPDOC_MAX_URL);
        render(v->to, params, OB_APPDOC_MAX_URL);
        render_verbs(v->prompt, v->nprompt, params);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t doc_len = nul ? (size_t)(nul - data) : size;
    char *params = nul ? strndup((const char *)nul + 1, size - doc_len - 1) : NULL;
    ob_appdoc_t doc;
    ob_err_t err;
    if (ob_appdoc_parse((const char *)data, doc_len, &doc, &err) == OB_OK) {
        if (doc.nverbs < 1 || doc.nverbs > OB_APPDOC_MAX_VERBS)
            abort();
        render_verbs(doc.verbs, doc.nverbs, params ? params : fixed_params);
        render_verbs(doc.machine, doc.nmachine, params ? params : fixed_params);
    } else if (doc.verbs || doc.machine || !err.msg[0]) {
        abort();
    }
    ob_appdoc_clear(&doc);
    free(params);
    return 0;
}
