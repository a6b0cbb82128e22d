/*
 * Audio files to the dialer's 8 kHz mono (see ob_audio.h). Every format is
 * first decoded to float mono at its own rate (channels averaged), then
 * converted to 8 kHz by libsamplerate and to 16-bit with clipping, so 24-
 * and 32-bit sources keep their precision through the filter. G.711 is
 * SpanDSP's (the ITU-T G.711 tables, as the carriers use).
 */
#include "ob_audio.h"

#include <limits.h>
#include <math.h>
#include <samplerate.h>
#include <spandsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RATE_MIN     4000
#define RATE_MAX     192000
#define CHANNELS_MAX 32

#define WAVE_PCM        1
#define WAVE_FLOAT      3
#define WAVE_ALAW       6
#define WAVE_MULAW      7
#define WAVE_EXTENSIBLE 0xFFFE

/* How the samples of a file are stored. */
typedef enum {
    ENC_U8,    /* unsigned 8-bit PCM (WAV) */
    ENC_S8,    /* signed 8-bit PCM (Sun .au) */
    ENC_S16LE, /* 16-bit PCM, little-endian (WAV) */
    ENC_S16BE, /* 16-bit PCM, big-endian (L16, .au) */
    ENC_S24LE, /* 24-bit PCM (WAV) */
    ENC_S24BE, /* 24-bit PCM (.au) */
    ENC_S32LE, /* 32-bit PCM (WAV) */
    ENC_S32BE, /* 32-bit PCM (.au) */
    ENC_F32LE, /* IEEE float (WAV) */
    ENC_F32BE, /* IEEE float (.au) */
    ENC_F64LE, /* IEEE double (WAV) */
    ENC_ULAW,  /* G.711 mu-law */
    ENC_ALAW,  /* G.711 A-law */
} enc_t;

/* A run of interleaved frames and how to read them. */
typedef struct {
    const uint8_t *data; /* first frame */
    size_t frames;       /* whole frames */
    size_t stride;       /* bytes from one frame to the next (WAV block align) */
    int channels;        /* samples in a frame */
    enc_t enc;           /* how one sample is stored */
    int rate;            /* frames per second */
} pcm_t;

static int enc_bytes(enc_t e)
{
    switch (e) {
    case ENC_U8:
    case ENC_S8:
    case ENC_ULAW:
    case ENC_ALAW:
        return 1;
    case ENC_S16LE:
    case ENC_S16BE:
        return 2;
    case ENC_S24LE:
    case ENC_S24BE:
        return 3;
    case ENC_S32LE:
    case ENC_S32BE:
    case ENC_F32LE:
    case ENC_F32BE:
        return 4;
    case ENC_F64LE:
        return 8;
    }
    return 1;
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* One stored sample as a float in [-1, 1]. */
static float sample_at(const uint8_t *p, enc_t e)
{
    switch (e) {
    case ENC_U8:
        return ((int)p[0] - 128) / 128.0f;
    case ENC_S8:
        return (int8_t)p[0] / 128.0f;
    case ENC_S16LE:
        return (int16_t)le16(p) / 32768.0f;
    case ENC_S16BE:
        return (int16_t)(p[0] << 8 | p[1]) / 32768.0f;
    case ENC_S24LE:
        return (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) /
               2147483648.0f;
    case ENC_S24BE:
        return (int32_t)((uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24) /
               2147483648.0f;
    case ENC_S32LE:
        return (float)((int32_t)le32(p) / 2147483648.0);
    case ENC_S32BE:
        return (float)((int32_t)be32(p) / 2147483648.0);
    case ENC_F32LE:
    case ENC_F32BE: {
        uint32_t u = e == ENC_F32LE ? le32(p) : be32(p);
        float f;
        memcpy(&f, &u, sizeof(f));
        return isfinite(f) ? f : 0.0f; /* NaN and infinities are noise, not sound */
    }
    case ENC_F64LE: {
        uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
        double d;
        memcpy(&d, &u, sizeof(d));
        return isfinite(d) ? (float)d : 0.0f;
    }
    case ENC_ULAW:
        return ulaw_to_linear(p[0]) / 32768.0f;
    case ENC_ALAW:
        return alaw_to_linear(p[0]) / 32768.0f;
    }
    return 0.0f;
}

/* Converts n float samples at rate to 8 kHz floats (malloc'd). libsamplerate
 * copies nothing when the rates are equal, so neither do we. */
static ob_rc_t to_8k(float *in, size_t n, int rate, float **out, size_t *out_n, ob_err_t *err)
{
    *out = NULL;
    *out_n = 0;
    if (rate == OB_AUDIO_RATE || n == 0) {
        *out = ob_xmalloc(n * sizeof(float));
        memcpy(*out, in, n * sizeof(float));
        *out_n = n;
        return OB_OK;
    }
    double ratio = (double)OB_AUDIO_RATE / rate;
    size_t cap = (size_t)ceil((double)n * ratio) + 16;
    if (n > LONG_MAX || cap > LONG_MAX) {
        ob_err_set(err, "audio of %zu samples is too long to convert", n);
        return OB_EINVAL;
    }
    float *o = ob_xmalloc(cap * sizeof(float));
    SRC_DATA d = {
        .data_in = in,
        .data_out = o,
        .input_frames = (long)n,
        .output_frames = (long)cap,
        .src_ratio = ratio,
    };
    int rc = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
    if (rc != 0) {
        ob_err_set(err, "resampling %d Hz to 8000 Hz: %s", rate, src_strerror(rc));
        free(o);
        return OB_ERR;
    }
    *out = o;
    *out_n = (size_t)d.output_frames_gen;
    return OB_OK;
}

static int16_t clip16(float f)
{
    float s = f * 32768.0f;
    if (s >= 32767.0f)
        return 32767;
    if (s <= -32768.0f)
        return -32768;
    return (int16_t)lrintf(s);
}

/* The frames of p, mixed to mono, at 8 kHz, bounded by max_samples. */
static ob_rc_t pcm_decode(const pcm_t *p, const char *what, size_t max_samples, int16_t **out,
                          size_t *n, ob_err_t *err)
{
    float *mono = NULL, *conv = NULL;
    size_t conv_n = 0;
    ob_rc_t rc = OB_EINVAL;

    if (p->rate < RATE_MIN || p->rate > RATE_MAX) {
        ob_err_set(err, "%s: rate %d Hz is outside %d-%d", what, p->rate, RATE_MIN, RATE_MAX);
        goto out;
    }
    if (p->channels < 1 || p->channels > CHANNELS_MAX) {
        ob_err_set(err, "%s: %d channels (1 to %d are read)", what, p->channels, CHANNELS_MAX);
        goto out;
    }
    if (p->frames == 0) {
        ob_err_set(err, "%s: no audio (the data is empty)", what);
        goto out;
    }
    /* Checked before any work, so a long file costs nothing. */
    double seconds = (double)p->frames / p->rate;
    if (seconds * OB_AUDIO_RATE > (double)max_samples + 1.0) {
        ob_err_set(err, "%s: %.1f s of audio, longer than %zu s", what, seconds,
                   max_samples / OB_AUDIO_RATE);
        goto out;
    }
    mono = ob_xmalloc(p->frames * sizeof(float));
    int bytes = enc_bytes(p->enc);
    for (size_t i = 0; i < p->frames; i++) {
        const uint8_t *f = p->data + i * p->stride;
        float sum = 0.0f;
        for (int c = 0; c < p->channels; c++)
            sum += sample_at(f + (size_t)c * bytes, p->enc);
        mono[i] = sum / (float)p->channels;
    }
    rc = to_8k(mono, p->frames, p->rate, &conv, &conv_n, err);
    if (rc != OB_OK)
        goto out;
    if (conv_n > max_samples)
        conv_n = max_samples; /* the filter's rounding, not a longer file */
    *out = ob_xmalloc(conv_n * sizeof(int16_t));
    for (size_t i = 0; i < conv_n; i++)
        (*out)[i] = clip16(conv[i]);
    *n = conv_n;
out:
    free(mono);
    free(conv);
    return rc;
}

/* ---- WAV ---- */

static const char *wave_format_name(uint32_t tag)
{
    static const struct {
        uint32_t tag;     /* WAVE_FORMAT_* */
        const char *name; /* what users call it */
    } names[] = {
        {0x0002, "MS ADPCM"},    {0x0011, "IMA ADPCM"},   {0x0014, "G.723 ADPCM"},
        {0x0031, "GSM 6.10"},    {0x0040, "G.721 ADPCM"}, {0x0045, "G.726 ADPCM"},
        {0x0050, "MPEG"},        {0x0055, "MP3"},         {0x0064, "G.726 ADPCM"},
        {0x0065, "G.722 ADPCM"}, {0x0161, "WMA"},         {0x2000, "AC-3"},
        {0x674f, "Ogg Vorbis"},  {0xF1AC, "FLAC"},
    };
    for (size_t i = 0; i < OB_COUNTOF(names); i++)
        if (names[i].tag == tag)
            return names[i].name;
    return "unknown";
}

/* The WAV in data: its chunks walked in any order (fmt and data may have
 * others, LIST, fact, cue, between and around them; odd sizes are padded
 * to even). A data chunk whose size runs past the end of the file (a
 * recording streamed with its size unknown, 0 or 0xFFFFFFFF) is read to
 * the end. */
static ob_rc_t wav_decode(const uint8_t *data, size_t len, size_t max_samples, int16_t **out,
                          size_t *n, ob_err_t *err)
{
    const uint8_t *fmt = NULL, *body = NULL;
    size_t fmt_len = 0, body_len = 0;

    if (len < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0) {
        ob_err_set(err, "WAV: not a RIFF WAVE file");
        return OB_EINVAL;
    }
    size_t at = 12;
    while (at + 8 <= len) {
        const uint8_t *id = data + at;
        size_t size = le32(data + at + 4);
        at += 8;
        if (size > len - at) {
            if (memcmp(id, "data", 4) != 0) {
                ob_err_set(err, "WAV: chunk \"%.4s\" of %zu bytes runs past the end of the file",
                           (const char *)id, size);
                return OB_EINVAL;
            }
            size = len - at;
        }
        if (memcmp(id, "fmt ", 4) == 0 && !fmt) {
            fmt = data + at;
            fmt_len = size;
        } else if (memcmp(id, "data", 4) == 0 && !body) {
            body = data + at;
            body_len = size;
        }
        at += size + (size & 1);
        if (at > len)
            break;
    }
    if (!fmt) {
        ob_err_set(err, "WAV: no fmt chunk");
        return OB_EINVAL;
    }
    if (!body) {
        ob_err_set(err, "WAV: no data chunk");
        return OB_EINVAL;
    }
    if (fmt_len < 16) {
        ob_err_set(err, "WAV: fmt chunk of %zu bytes, shorter than 16", fmt_len);
        return OB_EINVAL;
    }
    uint32_t tag = le16(fmt);
    uint32_t channels = le16(fmt + 2);
    uint32_t rate = le32(fmt + 4);
    uint32_t align = le16(fmt + 12);
    uint32_t bits = le16(fmt + 14);
    if (tag == WAVE_EXTENSIBLE) {
        /* cbSize, valid bits, channel mask, then the sub-format GUID whose
         * first two bytes are the format tag proper. */
        if (fmt_len < 40) {
            ob_err_set(err, "WAV: WAVE_FORMAT_EXTENSIBLE fmt chunk of %zu bytes, shorter than 40",
                       fmt_len);
            return OB_EINVAL;
        }
        tag = le16(fmt + 24);
    }
    enc_t enc;
    if (tag == WAVE_PCM && bits == 8)
        enc = ENC_U8;
    else if (tag == WAVE_PCM && bits == 16)
        enc = ENC_S16LE;
    else if (tag == WAVE_PCM && bits == 24)
        enc = ENC_S24LE;
    else if (tag == WAVE_PCM && bits == 32)
        enc = ENC_S32LE;
    else if (tag == WAVE_FLOAT && bits == 32)
        enc = ENC_F32LE;
    else if (tag == WAVE_FLOAT && bits == 64)
        enc = ENC_F64LE;
    else if (tag == WAVE_MULAW && bits == 8)
        enc = ENC_ULAW;
    else if (tag == WAVE_ALAW && bits == 8)
        enc = ENC_ALAW;
    else if (tag == WAVE_PCM || tag == WAVE_FLOAT || tag == WAVE_MULAW || tag == WAVE_ALAW) {
        ob_err_set(err,
                   "WAV: %u-bit %s is not supported: use 8, 16, 24 or 32-bit PCM, 32-bit "
                   "float or 8-bit G.711",
                   bits,
                   tag == WAVE_PCM     ? "PCM"
                   : tag == WAVE_FLOAT ? "float"
                                       : "G.711");
        return OB_EINVAL;
    } else {
        ob_err_set(err, "WAV: format %u (%s) is not supported: use PCM or G.711", tag,
                   wave_format_name(tag));
        return OB_EINVAL;
    }
    size_t frame = (size_t)enc_bytes(enc) * (channels ? channels : 1);
    if (channels == 0 || channels > CHANNELS_MAX) {
        ob_err_set(err, "WAV: %u channels (1 to %d are read)", channels, CHANNELS_MAX);
        return OB_EINVAL;
    }
    if (align < frame) {
        ob_err_set(err, "WAV: block align %u is less than a frame of %u channels of %u bits", align,
                   channels, bits);
        return OB_EINVAL;
    }
    pcm_t p = {
        body, body_len / align, align, (int)channels, enc, rate > INT_MAX ? INT_MAX : (int)rate};
    return pcm_decode(&p, "WAV", max_samples, out, n, err);
}

/* ---- Sun .au, the file behind many an audio/basic ---- */

static ob_rc_t au_decode(const uint8_t *data, size_t len, size_t max_samples, int16_t **out,
                         size_t *n, ob_err_t *err)
{
    if (len < 24) {
        ob_err_set(err, "au: header of %zu bytes, shorter than 24", len);
        return OB_EINVAL;
    }
    uint32_t off = be32(data + 4), size = be32(data + 8), code = be32(data + 12);
    uint32_t rate = be32(data + 16), channels = be32(data + 20);
    static const enc_t by_code[] = {
        [1] = ENC_ULAW,  [2] = ENC_S8,    [3] = ENC_S16BE,
        [4] = ENC_S24BE, [5] = ENC_S32BE, [6] = ENC_F32BE,
    };
    enc_t enc;
    if (code == 27)
        enc = ENC_ALAW;
    else if (code >= 1 && code <= 6)
        enc = by_code[code];
    else {
        ob_err_set(err, "au: encoding %u is not supported: use G.711 or linear PCM", code);
        return OB_EINVAL;
    }
    if (off < 24 || off > len) {
        ob_err_set(err, "au: data offset %u is outside the file", off);
        return OB_EINVAL;
    }
    size_t avail = len - off;
    if (size != 0xFFFFFFFFu && size < avail)
        avail = size;
    if (channels == 0 || channels > CHANNELS_MAX) {
        ob_err_set(err, "au: %u channels (1 to %d are read)", channels, CHANNELS_MAX);
        return OB_EINVAL;
    }
    size_t frame = (size_t)enc_bytes(enc) * channels;
    pcm_t p = {data + off,    avail / frame, frame,
               (int)channels, enc,           rate > INT_MAX ? INT_MAX : (int)rate};
    return pcm_decode(&p, "au", max_samples, out, n, err);
}

/* ---- MIME types ---- */

/* The value of parameter name in a MIME type's parameters ("; rate=16000"),
 * as a positive int: 0 when absent, -1 when not a number. */
static long mime_param(const char *params, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = params; p && *p;) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl;
            while (*v == ' ')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ' || *v == '"')
                    v++;
                char *end;
                long x = strtol(v, &end, 10);
                return end == v || x <= 0 ? -1 : x;
            }
        }
        p = strchr(p, ';');
    }
    return 0;
}

typedef enum { KIND_UNKNOWN, KIND_WAV, KIND_ULAW, KIND_ALAW, KIND_L16 } kind_t;

static kind_t mime_kind(const char *type, size_t len)
{
    static const struct {
        const char *type; /* lower-case MIME type */
        kind_t kind;      /* what it holds */
    } types[] = {
        {"audio/wav", KIND_WAV},      {"audio/x-wav", KIND_WAV},         {"audio/wave", KIND_WAV},
        {"audio/vnd.wave", KIND_WAV}, {"audio/basic", KIND_ULAW},        {"audio/pcmu", KIND_ULAW},
        {"audio/x-mulaw", KIND_ULAW}, {"audio/x-alaw-basic", KIND_ALAW}, {"audio/pcma", KIND_ALAW},
        {"audio/x-alaw", KIND_ALAW},  {"audio/l16", KIND_L16},
    };
    for (size_t i = 0; i < OB_COUNTOF(types); i++)
        if (strlen(types[i].type) == len && strncasecmp(types[i].type, type, len) == 0)
            return types[i].kind;
    return KIND_UNKNOWN;
}

/* Raw samples of a headerless type: G.711 (rate 8000 unless given) or L16
 * (network byte order, RFC 2586; its rate required). */
static ob_rc_t raw_decode(const uint8_t *data, size_t len, kind_t kind, const char *name,
                          const char *params, size_t max_samples, int16_t **out, size_t *n,
                          ob_err_t *err)
{
    long rate = mime_param(params, "rate");
    long channels = mime_param(params, "channels");
    if (rate < 0 || channels < 0) {
        ob_err_set(err, "%s: %s is not a positive number", name, rate < 0 ? "rate" : "channels");
        return OB_EINVAL;
    }
    if (kind == KIND_L16 && rate == 0) {
        ob_err_set(err, "%s: no rate (audio/L16;rate=N)", name);
        return OB_EINVAL;
    }
    enc_t enc = kind == KIND_L16 ? ENC_S16BE : kind == KIND_ULAW ? ENC_ULAW : ENC_ALAW;
    if (channels == 0)
        channels = 1;
    if (channels > CHANNELS_MAX) {
        ob_err_set(err, "%s: %ld channels (1 to %d are read)", name, channels, CHANNELS_MAX);
        return OB_EINVAL;
    }
    size_t frame = (size_t)enc_bytes(enc) * (size_t)channels;
    pcm_t p = {data,  len / frame,
               frame, (int)channels,
               enc,   rate == 0 ? OB_AUDIO_RATE : rate > INT_MAX ? INT_MAX : (int)rate};
    return pcm_decode(&p, name, max_samples, out, n, err);
}

ob_rc_t ob_audio_decode(const uint8_t *data, size_t len, const char *content_type,
                        size_t max_samples, int16_t **out, size_t *n, ob_err_t *err)
{
    *out = NULL;
    *n = 0;
    const char *type = content_type ? content_type : "";
    while (*type == ' ')
        type++;
    size_t tlen = strcspn(type, "; \t");
    const char *params = type + tlen;
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(tlen < 60 ? tlen : 60), type);

    /* The file's own header wins over its label: a WAV served as
     * audio/basic played as G.711 would be noise. */
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WAVE", 4) == 0)
        return wav_decode(data, len, max_samples, out, n, err);
    if (len >= 4 && memcmp(data, ".snd", 4) == 0)
        return au_decode(data, len, max_samples, out, n, err);

    kind_t kind = mime_kind(type, tlen);
    switch (kind) {
    case KIND_WAV:
        return wav_decode(data, len, max_samples, out, n, err);
    case KIND_ULAW:
    case KIND_ALAW:
    case KIND_L16:
        return raw_decode(data, len, kind, name, params, max_samples, out, n, err);
    case KIND_UNKNOWN:
        break;
    }
    if (len >= 4 && (memcmp(data, "RIFX", 4) == 0 || memcmp(data, "RF64", 4) == 0))
        ob_err_set(err, "WAV: %.4s (big-endian or 64-bit WAV) is not supported: use RIFF WAVE",
                   (const char *)data);
    else if (tlen == 0 || strncasecmp(type, "application/octet-stream", tlen) == 0)
        ob_err_set(err, "not a WAV file (no RIFF header) and no audio Content-Type: use WAV "
                        "(PCM or G.711), audio/basic, audio/x-alaw-basic or audio/L16;rate=N");
    else
        ob_err_set(err,
                   "%s is not supported (and not a WAV file): use WAV (PCM or G.711), "
                   "audio/basic, audio/x-alaw-basic or audio/L16;rate=N",
                   name);
    return OB_EINVAL;
}

ob_rc_t ob_audio_resample(const int16_t *in, size_t n, int rate, int16_t **out, size_t *out_n,
                          ob_err_t *err)
{
    *out = NULL;
    *out_n = 0;
    if (rate < RATE_MIN || rate > RATE_MAX) {
        ob_err_set(err, "rate %d Hz is outside %d-%d", rate, RATE_MIN, RATE_MAX);
        return OB_EINVAL;
    }
    if (rate == OB_AUDIO_RATE) {
        *out = ob_xmalloc(n * sizeof(int16_t));
        memcpy(*out, in, n * sizeof(int16_t));
        *out_n = n;
        return OB_OK;
    }
    float *f = ob_xmalloc(n * sizeof(float)), *conv = NULL;
    size_t conv_n = 0;
    for (size_t i = 0; i < n; i++)
        f[i] = in[i] / 32768.0f;
    ob_rc_t rc = to_8k(f, n, rate, &conv, &conv_n, err);
    if (rc == OB_OK) {
        *out = ob_xmalloc(conv_n * sizeof(int16_t));
        for (size_t i = 0; i < conv_n; i++)
            (*out)[i] = clip16(conv[i]);
        *out_n = conv_n;
    }
    free(f);
    free(conv);
    return rc;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

uint8_t *ob_audio_wav(const int16_t *samples, size_t n, size_t *len)
{
    OB_ASSERT(n <= (UINT32_MAX - 44) / 2);
    uint32_t bytes = (uint32_t)(n * 2);
    uint8_t *w = ob_xmalloc(44 + (size_t)bytes);
    memcpy(w, "RIFF", 4);
    put32(w + 4, 36 + bytes);
    memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16);
    put16(w + 20, WAVE_PCM);
    put16(w + 22, 1);
    put32(w + 24, OB_AUDIO_RATE);
    put32(w + 28, OB_AUDIO_RATE * 2);
    put16(w + 32, 2);
    put16(w + 34, 16);
    memcpy(w + 36, "data", 4);
    put32(w + 40, bytes);
    for (size_t i = 0; i < n; i++)
        put16(w + 44 + 2 * i, (uint16_t)samples[i]);
    *len = 44 + (size_t)bytes;
    return w;
}

uint8_t ob_audio_ulaw(int16_t s)
{
    return linear_to_ulaw(s);
}

uint8_t ob_audio_alaw(int16_t s)
{
    return linear_to_alaw(s);
}

int16_t ob_audio_from_ulaw(uint8_t u)
{
    return ulaw_to_linear(u);
}

int16_t ob_audio_from_alaw(uint8_t a)
{
    return alaw_to_linear(a);
}
