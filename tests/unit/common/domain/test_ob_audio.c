/* Tests of audio decoding and conversion (common/domain/ob_audio.c), checked
 * as a listener would: a 1 kHz tone in every accepted file format (built
 * here byte by byte, and by sox) comes out at 8 kHz still at 1 kHz, at its
 * level and its length; G.711 stays within its quantisation error; bad
 * files are refused naming what is wrong. */
#include "ob_audio.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SAMPLES (300 * 8000)

/* ---- What a listener measures ---- */

/* Frequency by zero crossings over the middle of x (the ends hold the
 * filter's transients). */
static double frequency(const int16_t *x, size_t n, int rate)
{
    size_t from = n / 10, to = n - n / 10, crossings = 0;
    size_t first = 0, last = 0;
    for (size_t i = from + 1; i < to; i++)
        if ((x[i - 1] < 0) != (x[i] < 0)) {
            if (!crossings)
                first = i;
            last = i;
            crossings++;
        }
    if (crossings < 2)
        return 0;
    return (double)(crossings - 1) / 2.0 / ((double)(last - first) / rate);
}

/* RMS of the middle of x, as a fraction of full scale. */
static double level(const int16_t *x, size_t n)
{
    size_t from = n / 10, to = n - n / 10;
    double sum = 0;
    for (size_t i = from; i < to; i++)
        sum += (double)x[i] * x[i];
    return sqrt(sum / (double)(to - from)) / 32768.0;
}

/* ---- Files built here ---- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void le(buf_t *b, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

typedef enum { E_U8, E_S16, E_S24, E_S32, E_F32, E_ULAW, E_ALAW, E_S16BE } enc_t;

/* One sample of a 1 kHz tone at amplitude amp (fraction of full scale). */
static void sample(buf_t *b, enc_t e, double v)
{
    switch (e) {
    case E_U8:
        le(b, (uint32_t)lrint(128 + v * 127), 1);
        break;
    case E_S16:
        le(b, (uint32_t)(int32_t)lrint(v * 32767), 2);
        break;
    case E_S16BE: {
        uint16_t s = (uint16_t)(int16_t)lrint(v * 32767);
        uint8_t be[2] = {(uint8_t)(s >> 8), (uint8_t)s};
        put(b, be, 2);
        break;
    }
    case E_S24:
        le(b, (uint32_t)(int32_t)lrint(v * 8388607), 3);
        break;
    case E_S32:
        le(b, (uint32_t)(int32_t)lrint(v * 2147483647.0), 4);
        break;
    case E_F32: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        le(b, u, 4);
        break;
    }
    case E_ULAW:
        le(b, ob_audio_ulaw((int16_t)lrint(v * 32767)), 1);
        break;
    case E_ALAW:
        le(b, ob_audio_alaw((int16_t)lrint(v * 32767)), 1);
        break;
    }
}

static int bits_of(enc_t e)
{
    static const int bits[] = {8, 16, 24, 32, 32, 8, 8, 16};
    return bits[e];
}

static void tone_samples(buf_t *b, enc_t e, int rate, int channels, double secs, double amp)
{
    size_t frames = (size_t)(secs * rate);
    for (size_t i = 0; i < frames; i++)
        for (int c = 0; c < channels; c++)
            sample(b, e, amp * sin(2 * M_PI * 1000.0 * (double)i / rate));
}

/* How a built WAV is laid out. */
typedef enum {
    L_PLAIN,      /* fmt, data */
    L_FMT_LAST,   /* data before fmt */
    L_ODD_CHUNK,  /* a LIST chunk of odd size (padded) before fmt, fact after */
    L_EXTENSIBLE, /* WAVE_FORMAT_EXTENSIBLE */
    L_STREAMED,   /* data size 0xFFFFFFFF, RIFF size 0 (a recording never closed) */
    L_RAW,        /* no WAV: the samples alone */
} layout_t;

static buf_t wav(enc_t e, int rate, int channels, double secs, layout_t l)
{
    static const int tag[] = {1, 1, 1, 1, 3, 7, 6, 1};
    buf_t fmt = {0}, data = {0}, out = {0};
    int bytes = bits_of(e) / 8;
    le(&fmt, l == L_EXTENSIBLE ? 0xFFFE : (uint32_t)tag[e], 2);
    le(&fmt, (uint32_t)channels, 2);
    le(&fmt, (uint32_t)rate, 4);
    le(&fmt, (uint32_t)(rate * channels * bytes), 4);
    le(&fmt, (uint32_t)(channels * bytes), 2);
    le(&fmt, (uint32_t)bits_of(e), 2);
    if (l == L_EXTENSIBLE) {
        static const uint8_t guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                              0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
        le(&fmt, 22, 2);
        le(&fmt, (uint32_t)bits_of(e), 2);
        le(&fmt, channels == 2 ? 3 : 4, 4);
        le(&fmt, (uint32_t)tag[e], 2);
        put(&fmt, guid_tail, sizeof(guid_tail));
    }
    tone_samples(&data, e, rate, channels, secs, 0.5);

    put(&out, "RIFF", 4);
    le(&out, 0, 4); /* set below */
    put(&out, "WAVE", 4);
    if (l == L_ODD_CHUNK) {
        put(&out, "LIST", 4);
        le(&out, 5, 4);
        put(&out, "INFOx\0", 6); /* 5 bytes and the pad */
    }
    if (l != L_FMT_LAST) {
        put(&out, "fmt ", 4);
        le(&out, (uint32_t)fmt.n, 4);
        put(&out, fmt.b, fmt.n);
    }
    if (l == L_ODD_CHUNK) {
        put(&out, "fact", 4);
        le(&out, 4, 4);
        le(&out, (uint32_t)(data.n / (size_t)(bytes * channels)), 4);
    }
    put(&out, "data", 4);
    le(&out, l == L_STREAMED ? 0xFFFFFFFFu : (uint32_t)data.n, 4);
    put(&out, data.b, data.n);
    if (data.n & 1)
        put(&out, "", 1);
    if (l == L_FMT_LAST) {
        put(&out, "fmt ", 4);
        le(&out, (uint32_t)fmt.n, 4);
        put(&out, fmt.b, fmt.n);
    }
    uint32_t riff = l == L_STREAMED ? 0 : (uint32_t)(out.n - 8);
    for (int i = 0; i < 4; i++)
        out.b[4 + i] = (uint8_t)(riff >> (8 * i));
    free(fmt.b);
    free(data.b);
    return out;
}

/* ---- Tones in every accepted form come out right ---- */

typedef struct {
    const char *name;         /* the case */
    enc_t enc;                /* sample encoding */
    int rate;                 /* file rate */
    int channels;             /* channels (the tone in each) */
    layout_t layout;          /* how the file is laid out */
    const char *content_type; /* given with the bytes */
    double tolerance;         /* relative level error allowed */
} tone_case_t;

static tone_case_t tone_cases[] = {
    {"wav 16-bit 8 kHz", E_S16, 8000, 1, L_PLAIN, "audio/wav", 0.01},
    {"wav 16-bit 16 kHz sniffed", E_S16, 16000, 1, L_PLAIN, NULL, 0.01},
    {"wav 16-bit 44.1 kHz stereo", E_S16, 44100, 2, L_PLAIN, "audio/x-wav", 0.01},
    {"wav 8-bit unsigned 11025", E_U8, 11025, 1, L_PLAIN, "audio/wave", 0.03},
    {"wav 24-bit 48 kHz", E_S24, 48000, 1, L_PLAIN, "audio/wav", 0.01},
    {"wav 32-bit 96 kHz", E_S32, 96000, 1, L_PLAIN, "audio/wav", 0.01},
    {"wav float 22050", E_F32, 22050, 1, L_PLAIN, "audio/wav", 0.01},
    {"wav mu-law 8 kHz", E_ULAW, 8000, 1, L_PLAIN, "audio/wav", 0.03},
    {"wav A-law 8 kHz", E_ALAW, 8000, 1, L_PLAIN, "audio/wav", 0.03},
    {"wav fmt after data", E_S16, 8000, 1, L_FMT_LAST, "audio/wav", 0.01},
    {"wav odd LIST chunk, fact", E_S16, 12000, 1, L_ODD_CHUNK, "audio/wav", 0.01},
    {"wav odd LIST chunk, 8-bit odd data", E_U8, 8000, 1, L_ODD_CHUNK, "audio/wav", 0.03},
    {"wav extensible 24-bit 6 ch", E_S24, 44100, 6, L_EXTENSIBLE, "audio/wav", 0.01},
    {"wav extensible float stereo", E_F32, 48000, 2, L_EXTENSIBLE, "audio/wav", 0.01},
    {"wav streamed (sizes unknown)", E_S16, 16000, 1, L_STREAMED, "audio/wav", 0.01},
    {"wav labelled audio/basic", E_S16, 8000, 1, L_PLAIN, "audio/basic", 0.01},
    {"raw mu-law", E_ULAW, 8000, 1, L_RAW, "audio/basic", 0.03},
    {"raw PCMU", E_ULAW, 8000, 1, L_RAW, "audio/PCMU", 0.03},
    {"raw A-law", E_ALAW, 8000, 1, L_RAW, "audio/x-alaw-basic", 0.03},
    {"raw PCMA", E_ALAW, 8000, 1, L_RAW, "audio/PCMA", 0.03},
    {"L16 big-endian 16 kHz", E_S16BE, 16000, 1, L_RAW, "audio/L16;rate=16000", 0.01},
    {"L16 44.1 kHz stereo", E_S16BE, 44100, 2, L_RAW, "audio/L16; rate=44100; channels=2", 0.01},
};

ParameterizedTestParameters(audio, tone_keeps_frequency_level_and_length)
{
    return cr_make_param_array(tone_case_t, tone_cases, OB_COUNTOF(tone_cases));
}

ParameterizedTest(tone_case_t *c, audio, tone_keeps_frequency_level_and_length)
{
    buf_t b = {0};
    if (c->layout == L_RAW)
        tone_samples(&b, c->enc, c->rate, c->channels, 1.0, 0.5);
    else
        b = wav(c->enc, c->rate, c->channels, 1.0, c->layout);
    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_audio_decode(b.b, b.n, c->content_type, MAX_SAMPLES, &x, &n, &err);
    cr_assert_eq(rc, OB_OK, "%s: %s", c->name, err.msg);
    cr_expect(labs((long)n - 8000) <= 8, "%s: %zu samples, not 1 s", c->name, n);
    double f = frequency(x, n, 8000);
    cr_expect(fabs(f - 1000) < 5, "%s: %.1f Hz, not 1000", c->name, f);
    double lv = level(x, n), want = 0.5 / sqrt(2);
    cr_expect(fabs(lv - want) < want * c->tolerance, "%s: level %.4f, not %.4f", c->name, lv, want);
    free(x);
    free(b.b);
}

/* ---- Files written by sox ---- */

typedef struct {
    const char *name;         /* the case */
    const char *sox;          /* sox output options and the file's name */
    const char *content_type; /* given with the bytes */
} sox_case_t;

static sox_case_t sox_cases[] = {
    {"16-bit 16 kHz", "-r 16000 -b 16 -e signed-integer t.wav", "audio/wav"},
    {"24-bit 44.1 kHz stereo", "-r 44100 -c 2 -b 24 -e signed-integer t.wav", "audio/wav"},
    {"32-bit float 48 kHz", "-r 48000 -b 32 -e floating-point t.wav", NULL},
    {"8-bit unsigned 22050", "-r 22050 -b 8 -e unsigned-integer t.wav", "audio/x-wav"},
    {"mu-law WAV", "-r 8000 -e mu-law t.wav", "audio/wav"},
    {"A-law WAV", "-r 8000 -e a-law t.wav", "audio/wav"},
    {"6 channels (extensible)", "-r 16000 -c 6 -b 16 t.wav", "audio/wav"},
    {"raw mu-law", "-r 8000 -t ul t.ul", "audio/basic"},
    {"raw A-law", "-r 8000 -t al t.al", "audio/x-alaw-basic"},
    {"L16", "-r 16000 -b 16 -e signed-integer -B -t raw t.raw", "audio/L16;rate=16000"},
    {"Sun au mu-law", "-r 8000 -e mu-law t.au", "audio/basic"},
    {"Sun au 16-bit 32 kHz", "-r 32000 -b 16 -e signed-integer t.au", NULL},
};

ParameterizedTestParameters(audio, sox_files_decode)
{
    return cr_make_param_array(sox_case_t, sox_cases, OB_COUNTOF(sox_cases));
}

ParameterizedTest(sox_case_t *c, audio, sox_files_decode)
{
    char dir[] = "/tmp/test_ob_audio.XXXXXX";
    cr_assert(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cd %s && sox -D -n %s synth 1 sine 1000 vol 0.5", dir, c->sox);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, strrchr(c->sox, ' ') + 1);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    uint8_t *data = malloc(4 << 20);
    size_t len = fread(data, 1, 4 << 20, f);
    fclose(f);
    unlink(path);
    rmdir(dir);

    int16_t *x = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_audio_decode(data, len, c->content_type, MAX_SAMPLES, &x, &n, &err), OB_OK,
                 "%s: %s", c->name, err.msg);
    cr_expect(labs((long)n - 8000) <= 8, "%s: %zu samples", c->name, n);
    double fr = frequency(x, n, 8000), lv = level(x, n), want = 0.5 / sqrt(2);
    cr_expect(fabs(fr - 1000) < 5, "%s: %.1f Hz", c->name, fr);
    cr_expect(fabs(lv - want) < want * 0.03, "%s: level %.4f, not %.4f", c->name, lv, want);
    free(x);
    free(data);
}

/* ---- Bad files ---- */

typedef enum {
    B_MP3,
    B_NO_DATA,
    B_NO_FMT,
    B_SHORT,
    B_CHUNK_PAST_END,
    B_RATE_LOW,
    B_12BIT,
    B_EMPTY_DATA,
    B_TOO_LONG,
    B_TEXT,
    B_RIFX,
    B_ZERO_CHANNELS,
} bad_t;

typedef struct {
    bad_t what;               /* how the file is broken */
    const char *content_type; /* given with it */
    const char *error;        /* substring of the error */
} bad_case_t;

static bad_case_t bad_cases[] = {
    {B_MP3, "audio/wav", "WAV: format 85 (MP3) is not supported: use PCM or G.711"},
    {B_NO_DATA, "audio/wav", "WAV: no data chunk"},
    {B_NO_FMT, NULL, "WAV: no fmt chunk"},
    {B_SHORT, "audio/wav", "WAV: not a RIFF WAVE file"},
    {B_CHUNK_PAST_END, "audio/wav", "WAV: chunk \"LIST\" of 1000 bytes runs past the end"},
    {B_RATE_LOW, "audio/wav", "WAV: rate 2000 Hz is outside 4000-192000"},
    {B_12BIT, "audio/wav", "WAV: 12-bit PCM is not supported"},
    {B_EMPTY_DATA, "audio/wav", "WAV: no audio (the data is empty)"},
    {B_TOO_LONG, "audio/wav", "WAV: 3.0 s of audio, longer than 2 s"},
    {B_TEXT, "text/html; charset=utf-8", "text/html is not supported (and not a WAV file)"},
    {B_TEXT, NULL, "not a WAV file (no RIFF header) and no audio Content-Type"},
    {B_TEXT, "audio/mpeg", "audio/mpeg is not supported"},
    {B_TEXT, "audio/L16", "audio/L16: no rate"},
    {B_TEXT, "audio/L16;rate=abc", "audio/L16: rate is not a positive number"},
    {B_TEXT, "audio/L16;rate=2000", "audio/L16: rate 2000 Hz is outside 4000-192000"},
    {B_RIFX, NULL, "WAV: RIFX (big-endian or 64-bit WAV) is not supported"},
    {B_ZERO_CHANNELS, "audio/wav", "WAV: 0 channels"},
};

static buf_t bad_file(bad_t what)
{
    buf_t b = {0};
    switch (what) {
    case B_MP3:
    case B_RATE_LOW:
    case B_12BIT:
    case B_ZERO_CHANNELS:
        b = wav(E_S16, 8000, 1, 0.1, L_PLAIN);
        if (what == B_MP3)
            b.b[20] = 0x55;
        else if (what == B_RATE_LOW)
            b.b[24] = 2000 & 0xFF, b.b[25] = 2000 >> 8;
        else if (what == B_12BIT)
            b.b[34] = 12;
        else
            b.b[22] = 0;
        break;
    case B_NO_DATA:
        b = wav(E_S16, 8000, 1, 0.1, L_PLAIN);
        b.n = 36; /* RIFF, WAVE and fmt only */
        break;
    case B_NO_FMT:
        b = wav(E_S16, 8000, 1, 0.1, L_FMT_LAST);
        b.n -= 24; /* the fmt chunk at the end cut off */
        break;
    case B_SHORT:
        put(&b, "RIFF\0\0\0\0WAV", 11);
        break;
    case B_CHUNK_PAST_END:
        put(&b, "RIFF\0\0\0\0WAVELIST", 16);
        le(&b, 1000, 4);
        put(&b, "abcd", 4);
        break;
    case B_EMPTY_DATA:
        b = wav(E_S16, 8000, 1, 0.0, L_PLAIN);
        break;
    case B_TOO_LONG:
        b = wav(E_S16, 8000, 1, 3.0, L_PLAIN);
        break;
    case B_TEXT:
        put(&b, "<html><body>Not found</body></html>", 35);
        break;
    case B_RIFX:
        b = wav(E_S16, 8000, 1, 0.1, L_PLAIN);
        memcpy(b.b, "RIFX", 4);
        break;
    }
    return b;
}

ParameterizedTestParameters(audio, bad_files_say_what_is_wrong)
{
    return cr_make_param_array(bad_case_t, bad_cases, OB_COUNTOF(bad_cases));
}

ParameterizedTest(bad_case_t *c, audio, bad_files_say_what_is_wrong)
{
    buf_t b = bad_file(c->what);
    int16_t *x = (int16_t *)1;
    size_t n = 99;
    ob_err_t err = {{0}};
    ob_rc_t rc = ob_audio_decode(b.b, b.n, c->content_type, 2 * 8000, &x, &n, &err);
    cr_expect_eq(rc, OB_EINVAL, "%s: rc %d", c->error, rc);
    cr_expect(strstr(err.msg, c->error), "got \"%s\", want \"%s\"", err.msg, c->error);
    cr_expect_null(x);
    cr_expect_eq(n, 0);
    free(b.b);
}

/* ---- Resampling ---- */

typedef struct {
    int rate;    /* of the tone */
    double freq; /* its frequency */
    double gain; /* expected level after: 1 kept, 0 removed (above 4 kHz) */
} resample_case_t;

static resample_case_t
    resample_cases[] =
        {
            {16000, 1000, 1}, {44100, 1000, 1}, {22050, 1000, 1}, {48000, 1000, 1},
            {11025, 3000, 1}, {4000, 1000, 1},  {192000, 440, 1}, {8000, 1000, 1},
            {44100, 6000, 0}, /* would alias to 2 kHz without the low-pass filter */
            {16000, 5000, 0}, /* would alias to 3 kHz */
};

ParameterizedTestParameters(audio, resampling_keeps_what_is_heard)
{
    return cr_make_param_array(resample_case_t, resample_cases, OB_COUNTOF(resample_cases));
}

ParameterizedTest(resample_case_t *c, audio, resampling_keeps_what_is_heard)
{
    size_t n = (size_t)c->rate; /* 1 s */
    int16_t *in = malloc(n * sizeof(int16_t)), *out = NULL;
    for (size_t i = 0; i < n; i++)
        in[i] = (int16_t)lrint(16384 * sin(2 * M_PI * c->freq * (double)i / c->rate));
    size_t out_n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_audio_resample(in, n, c->rate, &out, &out_n, &err), OB_OK, "%s", err.msg);
    cr_expect(labs((long)out_n - 8000) <= 2, "%d Hz: %zu samples", c->rate, out_n);
    double lv = level(out, out_n), want = 0.5 / sqrt(2);
    if (c->gain > 0) {
        double f = frequency(out, out_n, 8000);
        cr_expect(fabs(f - c->freq) < c->freq * 0.005, "%d Hz: tone at %.1f Hz, not %.0f", c->rate,
                  f, c->freq);
        cr_expect(fabs(lv - want) < want * 0.01, "%d Hz: level %.4f, not %.4f", c->rate, lv, want);
    } else {
        cr_expect(lv < want / 100, "%d Hz: %.0f Hz tone left at %.1f dB", c->rate, c->freq,
                  20 * log10(lv / want));
    }
    free(in);
    free(out);
}

Test(audio, resample_refuses_rates_out_of_range)
{
    int16_t in[4] = {0}, *out = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_expect_eq(ob_audio_resample(in, 4, 3999, &out, &n, &err), OB_EINVAL);
    cr_expect_str_eq(err.msg, "rate 3999 Hz is outside 4000-192000");
    cr_expect_eq(ob_audio_resample(in, 4, 192001, &out, &n, &err), OB_EINVAL);
    cr_expect_null(out);
}

/* ---- G.711 ---- */

typedef struct {
    const char *name;        /* law */
    uint8_t (*enc)(int16_t); /* linear to law */
    int16_t (*dec)(uint8_t); /* and back */
    uint8_t zero;            /* the code of silence */
} law_case_t;

static law_case_t law_cases[] = {
    {"mu-law", ob_audio_ulaw, ob_audio_from_ulaw, 0xFF},
    {"A-law", ob_audio_alaw, ob_audio_from_alaw, 0xD5},
};

ParameterizedTestParameters(audio, g711_round_trip_within_quantisation)
{
    return cr_make_param_array(law_case_t, law_cases, OB_COUNTOF(law_cases));
}

ParameterizedTest(law_case_t *c, audio, g711_round_trip_within_quantisation)
{
    cr_expect_eq(c->enc(0), c->zero, "%s: silence is 0x%02x", c->name, c->enc(0));
    /* Every linear value comes back within half a step of its segment:
     * 1/32 of its size (8 bits: 4 of level, 4 of mantissa), and a few
     * units near zero. */
    int worst = 0;
    for (int s = -32768; s <= 32767; s++) {
        int back = c->dec(c->enc((int16_t)s));
        int e = abs(back - s), bound = abs(s) / 32 + 16;
        cr_assert(e <= bound, "%s: %d came back %d", c->name, s, back);
        if (e > worst)
            worst = e;
    }
    cr_expect(worst > 0 && worst <= 1100, "%s: worst error %d", c->name, worst);
    /* Every code is a fixed point but mu-law's negative zero. */
    for (int code = 0; code < 256; code++)
        if (!(c->zero == 0xFF && code == 0x7F))
            cr_expect_eq(c->enc(c->dec((uint8_t)code)), code, "%s: code 0x%02x", c->name, code);
    /* A tone through it keeps over 35 dB of signal to noise. */
    double sig = 0, noise = 0;
    for (int i = 0; i < 8000; i++) {
        int16_t s = (int16_t)lrint(8000 * sin(2 * M_PI * 1000 * i / 8000.0 + 0.3));
        double e = c->dec(c->enc(s)) - s;
        sig += (double)s * s;
        noise += e * e;
    }
    cr_expect(10 * log10(sig / noise) > 35, "%s: SNR %.1f dB", c->name, 10 * log10(sig / noise));
}

/* ---- The WAV writer ---- */

Test(audio, wav_written_reads_back_exactly)
{
    int16_t s[1001];
    for (int i = 0; i < 1001; i++)
        s[i] = (int16_t)(i * 65 - 32000);
    size_t len = 0;
    uint8_t *w = ob_audio_wav(s, 1001, &len);
    cr_assert_eq(len, 44 + 2002);
    cr_expect(memcmp(w, "RIFF", 4) == 0 && memcmp(w + 8, "WAVEfmt ", 8) == 0);
    cr_expect_eq(w[24] | w[25] << 8, 8000, "rate");
    cr_expect_eq(w[22], 1, "mono");
    cr_expect_eq(w[34], 16, "16-bit");
    int16_t *back = NULL;
    size_t n = 0;
    ob_err_t err = {{0}};
    cr_assert_eq(ob_audio_decode(w, len, "audio/wav", MAX_SAMPLES, &back, &n, &err), OB_OK, "%s",
                 err.msg);
    cr_assert_eq(n, 1001);
    cr_expect(memcmp(back, s, sizeof(s)) == 0);
    free(back);
    free(w);
}
