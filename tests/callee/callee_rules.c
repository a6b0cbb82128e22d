/*
 * The test callee's rules file and audio files. The rules are read once at
 * start; a number's entry starts as a copy of "default" and overrides the
 * fields it names, so a file lists only what differs. Unknown fields are
 * refused: a misspelt "ring_ms" would otherwise answer at once, silently.
 */
#include "callee_rules.h"
#include "ob_json.h"

#include <errno.h>
#include <samplerate.h>
#include <spandsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE       (64u << 20) /* bytes of a rules or audio file */
#define MAX_AUDIO_S    600         /* seconds of a greeting */
#define MAX_DIGITS     64          /* keys in one rule */
#define MAX_MS         3600000     /* bound of every *_ms field */
#define WAV_PCM        1           /* WAV format tags */
#define WAV_FLOAT      3
#define WAV_ALAW       6
#define WAV_ULAW       7
#define WAV_EXTENSIBLE 0xFFFE

static ob_rc_t read_file(const char *path, uint8_t **out, size_t *len, ob_err_t *err)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    ob_rc_t rc = OB_EINVAL;
    if (!f) {
        ob_err_set(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t cap = 1 << 16, n = 0;
    buf = ob_xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= MAX_FILE) {
            ob_err_set(err, "%s: larger than %u bytes", path, MAX_FILE);
            goto out;
        }
        cap *= 2;
        buf = ob_xrealloc(buf, cap + 1);
    }
    if (ferror(f)) {
        ob_err_set(err, "%s: read failed", path);
        goto out;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
    rc = OB_OK;
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* One sample of frame i, channel c, of the WAV data as linear 16-bit. */
static float wav_sample(const uint8_t *d, int tag, int bits, int ch, size_t i, int c)
{
    size_t bytes = (size_t)bits / 8, at = (i * (size_t)ch + (size_t)c) * bytes;
    switch (tag) {
    case WAV_ULAW:
        return ulaw_to_linear(d[at]);
    case WAV_ALAW:
        return alaw_to_linear(d[at]);
    case WAV_FLOAT: {
        float v;
        memcpy(&v, d + at, sizeof(v));
        return v * 32767.0f;
    }
    default:
        break;
    }
    if (bits == 8)
        return (float)((int)d[at] - 128) * 256.0f;
    /* 16, 24 or 32-bit little-endian: the top 16 bits. */
    return (float)(int16_t)le16(d + at + bytes - 2);
}

static ob_rc_t wav_decode(const char *path, const uint8_t *d, size_t len, int16_t **out, size_t *n,
                          ob_err_t *err)
{
    const uint8_t *fmt = NULL, *data = NULL;
    size_t data_len = 0;
    for (size_t at = 12; at + 8 <= len;) {
        uint32_t size = le32(d + at + 4);
        const uint8_t *body = d + at + 8;
        size_t left = len - at - 8;
        if (!memcmp(d + at, "fmt ", 4) && size >= 16 && size <= left)
            fmt = body;
        else if (!memcmp(d + at, "data", 4)) {
            data = body;
            data_len = size < left ? size : left; /* a streamed WAV says 0 or too much */
            if (size == 0)
                data_len = left;
            break;
        }
        at += 8 + (size_t)size + (size & 1);
    }
    if (!fmt || !data) {
        ob_err_set(err, "%s: WAV without %s chunk", path, fmt ? "a data" : "a fmt");
        return OB_EINVAL;
    }
    int tag = le16(fmt), ch = le16(fmt + 2), bits = le16(fmt + 14);
    int rate = (int)le32(fmt + 4);
    if (tag == WAV_EXTENSIBLE)
        tag = le16(fmt + 24); /* the sub-format GUID starts with the tag */
    bool ok = (tag == WAV_PCM && (bits == 8 || bits == 16 || bits == 24 || bits == 32)) ||
              (tag == WAV_FLOAT && bits == 32) ||
              ((tag == WAV_ULAW || tag == WAV_ALAW) && bits == 8);
    if (!ok || ch < 1 || ch > 8 || rate < 4000 || rate > 192000) {
        ob_err_set(err,
                   "%s: WAV format %d, %d-bit, %d channel(s), %d Hz is not supported: use PCM "
                   "or G.711 (e.g. sox in.wav -r 8000 -c 1 -b 16 out.wav)",
                   path, tag, bits, ch, rate);
        return OB_EINVAL;
    }
    size_t frames = data_len / ((size_t)ch * (size_t)bits / 8);
    if (frames > (size_t)rate * MAX_AUDIO_S) {
        ob_err_set(err, "%s: longer than %d s", path, MAX_AUDIO_S);
        return OB_EINVAL;
    }
    float *mono = ob_xmalloc((frames + 1) * sizeof(float));
    for (size_t i = 0; i < frames; i++) {
        float sum = 0;
        for (int c = 0; c < ch; c++)
            sum += wav_sample(data, tag, bits, ch, i, c);
        mono[i] = sum / (float)ch / 32768.0f;
    }
    size_t outn = frames;
    float *res = mono;
    if (rate != CALLEE_RATE && frames > 0) {
        double ratio = (double)CALLEE_RATE / rate;
        outn = (size_t)((double)frames * ratio) + 16;
        res = ob_xmalloc(outn * sizeof(float));
        SRC_DATA src = {.data_in = mono,
                        .data_out = res,
                        .input_frames = (long)frames,
                        .output_frames = (long)outn,
                        .src_ratio = ratio};
        int e = src_simple(&src, SRC_SINC_MEDIUM_QUALITY, 1);
        if (e) {
            ob_err_set(err, "%s: resampling: %s", path, src_strerror(e));
            free(mono);
            free(res);
            return OB_EINVAL;
        }
        outn = (size_t)src.output_frames_gen;
        free(mono);
    }
    int16_t *s = ob_xmalloc((outn + 1) * sizeof(int16_t));
    for (size_t i = 0; i < outn; i++) {
        float v = res[i] * 32768.0f;
        s[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
    }
    free(res);
    *out = s;
    *n = outn;
    return OB_OK;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcasecmp(s + a - b, tail) == 0;
}

ob_rc_t callee_audio_read(const char *path, int16_t **out, size_t *n, ob_err_t *err)
{
    uint8_t *d = NULL;
    size_t len = 0;
    ob_rc_t rc = read_file(path, &d, &len, err);
    if (rc != OB_OK)
        goto out;
    if (len >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WAVE", 4)) {
        rc = wav_decode(path, d, len, out, n, err);
        goto out;
    }
    bool ulaw = ends_with(path, ".ul") || ends_with(path, ".ulaw") || ends_with(path, ".pcmu");
    bool alaw = ends_with(path, ".al") || ends_with(path, ".alaw") || ends_with(path, ".pcma");
    size_t count = ulaw || alaw ? len : len / 2;
    if (count > (size_t)CALLEE_RATE * MAX_AUDIO_S) {
        ob_err_set(err, "%s: longer than %d s", path, MAX_AUDIO_S);
        rc = OB_EINVAL;
        goto out;
    }
    int16_t *s = ob_xmalloc((count + 1) * sizeof(int16_t));
    for (size_t i = 0; i < count; i++)
        s[i] = ulaw ? ulaw_to_linear(d[i]) : alaw ? alaw_to_linear(d[i]) : (int16_t)le16(d + 2 * i);
    *out = s;
    *n = count;
out:
    free(d);
    return rc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

ob_rc_t callee_wav_write(const char *path, const int16_t *samples, size_t n, ob_err_t *err)
{
    uint8_t h[44] = "RIFF....WAVEfmt ";
    uint32_t bytes = (uint32_t)(n * 2);
    put32(h + 4, 36 + bytes);
    put32(h + 16, 16);
    h[20] = WAV_PCM;
    h[22] = 1; /* mono */
    put32(h + 24, CALLEE_RATE);
    put32(h + 28, CALLEE_RATE * 2);
    h[32] = 2;  /* block align */
    h[34] = 16; /* bits */
    memcpy(h + 36, "data", 4);
    put32(h + 40, bytes);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(h, 1, sizeof(h), f) == sizeof(h) &&
              (n == 0 || fwrite(samples, 2, n, f) == n); /* little-endian host */
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        ob_err_set(err, "%s: %s", path, strerror(errno));
        return OB_ERR;
    }
    return OB_OK;
}

/* ---- the rules file ------------------------------------------------------ */

/* The audio of path (relative to dir), loaded once however many rules name it. */
static ob_rc_t audio_of(callee_rules_t *r, const char *dir, const char *name,
                        const callee_audio_t **out, ob_err_t *err)
{
    char *path = name[0] == '/' || !dir[0] ? ob_xstrdup(name) : ob_xasprintf("%s/%s", dir, name);
    for (size_t i = 0; i < r->naudio; i++)
        if (!strcmp(r->audio[i]->path, path)) {
            *out = r->audio[i];
            free(path);
            return OB_OK;
        }
    callee_audio_t *a = ob_xcalloc(1, sizeof(*a));
    a->path = path;
    ob_rc_t rc = callee_audio_read(path, &a->samples, &a->n, err);
    if (rc != OB_OK) {
        free(a->path);
        free(a);
        return rc;
    }
    r->audio = ob_xrealloc(r->audio, (r->naudio + 1) * sizeof(*r->audio));
    r->audio[r->naudio++] = a;
    *out = a;
    return OB_OK;
}

static ob_rc_t get_int(const cJSON *v, const char *where, int lo, int hi, int *out, ob_err_t *err)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valueint < lo ||
        v->valueint > hi) {
        ob_err_set(err, "%s: must be a whole number in %d..%d", where, lo, hi);
        return OB_EINVAL;
    }
    *out = v->valueint;
    return OB_OK;
}

static ob_rc_t get_bool(const cJSON *v, const char *where, bool *out, ob_err_t *err)
{
    if (!cJSON_IsBool(v)) {
        ob_err_set(err, "%s: must be true or false", where);
        return OB_EINVAL;
    }
    *out = cJSON_IsTrue(v);
    return OB_OK;
}

static ob_rc_t get_str(const cJSON *v, const char *where, const char **out, ob_err_t *err)
{
    if (!cJSON_IsString(v)) {
        ob_err_set(err, "%s: must be a string", where);
        return OB_EINVAL;
    }
    *out = v->valuestring;
    return OB_OK;
}

/* Applies the members of obj to rule; where names it in errors ("numbers.123"). */
static ob_rc_t parse_rule(callee_rules_t *r, const char *dir, const cJSON *obj, const char *where,
                          callee_rule_t *rule, ob_err_t *err)
{
    char at[256];
    const char *s = NULL;
    ob_rc_t rc = OB_OK;
    if (!cJSON_IsObject(obj)) {
        ob_err_set(err, "%s: must be an object", where);
        return OB_EINVAL;
    }
    for (const cJSON *m = obj->child; m && rc == OB_OK; m = m->next) {
        const char *k = m->string;
        snprintf(at, sizeof(at), "%s.%s", where, k);
        if (!strcmp(k, "ring_ms"))
            rc = get_int(m, at, 0, MAX_MS, &rule->ring_ms, err);
        else if (!strcmp(k, "reject")) {
            if (cJSON_IsNull(m) || cJSON_IsFalse(m))
                rule->reject = 0;
            else
                rc = get_int(m, at, 300, 699, &rule->reject, err);
        } else if (!strcmp(k, "codec")) {
            if ((rc = get_str(m, at, &s, err)) != OB_OK)
                break;
            if (!strcasecmp(s, "PCMU"))
                rule->codec_pt = 0;
            else if (!strcasecmp(s, "PCMA"))
                rule->codec_pt = 8;
            else {
                ob_err_set(err, "%s: \"%s\" is not PCMU or PCMA", at, s);
                rc = OB_EINVAL;
            }
        } else if (!strcmp(k, "greeting")) {
            if (cJSON_IsNull(m))
                rule->greeting = NULL;
            else if ((rc = get_str(m, at, &s, err)) == OB_OK &&
                     (rc = audio_of(r, dir, s, &rule->greeting, err)) != OB_OK) {
                ob_err_t inner = *err;
                ob_err_set(err, "%s: %s", at, inner.msg);
            }
        } else if (!strcmp(k, "greeting_after_ms"))
            rc = get_int(m, at, 0, MAX_MS, &rule->greeting_after_ms, err);
        else if (!strcmp(k, "digits")) {
            if ((rc = get_str(m, at, &s, err)) != OB_OK)
                break;
            size_t n = strlen(s);
            if (n > MAX_DIGITS || strspn(s, "0123456789*#ABCDabcd,") != n) {
                ob_err_set(err, "%s: \"%s\": up to %d of 0-9 * # A-D and ',' (a pause)", at, s,
                           MAX_DIGITS);
                rc = OB_EINVAL;
                break;
            }
            free(rule->digits);
            rule->digits = n ? ob_xstrdup(s) : NULL;
        } else if (!strcmp(k, "dtmf_mode")) {
            if ((rc = get_str(m, at, &s, err)) != OB_OK)
                break;
            if (!strcmp(s, "rfc4733"))
                rule->dtmf_mode = CALLEE_DTMF_RFC4733;
            else if (!strcmp(s, "inband"))
                rule->dtmf_mode = CALLEE_DTMF_INBAND;
            else {
                ob_err_set(err, "%s: \"%s\" is not rfc4733 or inband", at, s);
                rc = OB_EINVAL;
            }
        } else if (!strcmp(k, "digits_after_ms")) {
            rc = get_int(m, at, 0, MAX_MS, &rule->digits_after_ms, err);
            rule->digits_at_ms = -1;
        } else if (!strcmp(k, "digits_at_ms")) {
            rc = get_int(m, at, 0, MAX_MS, &rule->digits_at_ms, err);
            rule->digits_after_ms = -1;
        } else if (!strcmp(k, "hangup_after_ms")) {
            if (cJSON_IsNull(m))
                rule->hangup_after_ms = -1;
            else
                rc = get_int(m, at, 0, MAX_MS, &rule->hangup_after_ms, err);
        } else if (!strcmp(k, "accept_refer"))
            rc = get_bool(m, at, &rule->accept_refer, err);
        else if (!strcmp(k, "refer_reject")) {
            if ((rc = get_int(m, at, 300, 699, &rule->refer_reject, err)) == OB_OK &&
                rule->refer_reject != 405 && rule->refer_reject != 603) {
                ob_err_set(err, "%s: must be 405 or 603", at);
                rc = OB_EINVAL;
            }
        } else if (!strcmp(k, "refer_notify"))
            rc = get_bool(m, at, &rule->refer_notify, err);
        else if (!strcmp(k, "send_rtp"))
            rc = get_bool(m, at, &rule->send_rtp, err);
        else if (!strcmp(k, "comment"))
            continue; /* free text for the reader of the file */
        else {
            ob_err_set(err, "%s: unknown field", at);
            rc = OB_EINVAL;
        }
    }
    if (rc == OB_OK && rule->digits_after_ms < 0 && rule->digits_at_ms < 0)
        rule->digits_at_ms = 0;
    return rc;
}

static void rule_free(callee_rule_t *rule)
{
    free(rule->number);
    free(rule->digits);
}

static const callee_rule_t RULE_DEFAULT = {
    .codec_pt = 0,
    .dtmf_mode = CALLEE_DTMF_RFC4733,
    .digits_after_ms = -1,
    .digits_at_ms = 0,
    .hangup_after_ms = -1,
    .refer_reject = 603,
    .refer_notify = true,
    .send_rtp = true,
};

ob_rc_t callee_rules_load(const char *path, callee_rules_t *out, ob_err_t *err)
{
    uint8_t *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    char *dir = NULL;
    ob_rc_t rc = OB_OK;
    ob_err_t inner = {{0}};

    memset(out, 0, sizeof(*out));
    out->deflt = RULE_DEFAULT;
    if (!path)
        return OB_OK;
    if ((rc = read_file(path, &text, &len, err)) != OB_OK)
        goto out;
    ob_json_fault_t fault;
    root = ob_json_parse((const char *)text, len, NULL, &fault);
    if (!root) {
        ob_err_set(err, "%s: %s", path, ob_json_fault_text(fault));
        rc = OB_EINVAL;
        goto out;
    }
    const char *slash = strrchr(path, '/');
    dir = slash ? ob_xstrndup(path, (size_t)(slash - path)) : ob_xstrdup("");
    if (!cJSON_IsObject(root)) {
        ob_err_set(err, "%s: must be an object with \"default\" and \"numbers\"", path);
        rc = OB_EINVAL;
        goto out;
    }
    for (const cJSON *m = root->child; m; m = m->next)
        if (strcmp(m->string, "default") && strcmp(m->string, "numbers") &&
            strcmp(m->string, "comment")) {
            ob_err_set(err, "%s: %s: unknown field (default, numbers)", path, m->string);
            rc = OB_EINVAL;
            goto out;
        }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "default");
    if (d && (rc = parse_rule(out, dir, d, "default", &out->deflt, &inner)) != OB_OK)
        goto fail;
    const cJSON *nums = cJSON_GetObjectItemCaseSensitive(root, "numbers");
    if (nums && !cJSON_IsObject(nums)) {
        ob_err_set(&inner, "numbers: must be an object of number: rule");
        rc = OB_EINVAL;
        goto fail;
    }
    size_t count = (size_t)cJSON_GetArraySize(nums);
    out->numbers = ob_xcalloc(count + 1, sizeof(*out->numbers));
    for (const cJSON *m = nums ? nums->child : NULL; m; m = m->next) {
        char where[160];
        snprintf(where, sizeof(where), "numbers.%s", m->string);
        callee_rule_t *rule = &out->numbers[out->nnumbers++];
        *rule = out->deflt;
        rule->number = ob_xstrdup(m->string);
        rule->digits = out->deflt.digits ? ob_xstrdup(out->deflt.digits) : NULL;
        if ((rc = parse_rule(out, dir, m, where, rule, &inner)) != OB_OK)
            goto fail;
    }
    goto out;
fail:
    ob_err_set(err, "%s: %s", path, inner.msg);
out:
    if (rc != OB_OK)
        callee_rules_free(out);
    cJSON_Delete(root);
    free(text);
    free(dir);
    return rc;
}

const callee_rule_t *callee_rules_find(const callee_rules_t *rules, const char *number)
{
    const callee_rule_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < rules->nnumbers; i++) {
        const char *key = rules->numbers[i].number;
        size_t n = strlen(key);
        if (!strcmp(key, number))
            return &rules->numbers[i];
        if (n > 0 && key[n - 1] == '*' && !strncmp(key, number, n - 1) && n > best_len) {
            best = &rules->numbers[i];
            best_len = n;
        }
    }
    return best ? best : &rules->deflt;
}

void callee_rules_free(callee_rules_t *rules)
{
    rule_free(&rules->deflt);
    for (size_t i = 0; i < rules->nnumbers; i++)
        rule_free(&rules->numbers[i]);
    free(rules->numbers);
    for (size_t i = 0; i < rules->naudio; i++) {
        free(rules->audio[i]->path);
        free(rules->audio[i]->samples);
        free(rules->audio[i]);
    }
    free(rules->audio);
    memset(rules, 0, sizeof(*rules));
    rules->deflt = RULE_DEFAULT;
}
