/*
 * The call-control document: strict parsing into ob_appdoc_t, and the
 * {{name}} templates of its text fields. Parsing refuses anything it does
 * not understand (an unknown member is a typo the user would otherwise
 * hear as silence), and every message names the verb's place, its kind and
 * the field, so a 422 tells the client what to fix.
 */
#include "ob_appdoc.h"
#include "ob_json.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const verb_names[OB_VERB_COUNT] = {
    [OB_VERB_SAY] = "say",     [OB_VERB_PLAY] = "play",     [OB_VERB_GATHER] = "gather",
    [OB_VERB_PAUSE] = "pause", [OB_VERB_HANGUP] = "hangup", [OB_VERB_CONNECT] = "connect",
};

/* The members each verb accepts besides "verb"; NULL-terminated. */
static const char *const verb_members[OB_VERB_COUNT][10] = {
    [OB_VERB_SAY] = {"text", "voice", "rate", "loop", NULL},
    [OB_VERB_PLAY] = {"url", "loop", NULL},
    [OB_VERB_GATHER] = {"num_digits", "finish_on_key", "timeout_s", "action_url", "prompt", NULL},
    [OB_VERB_PAUSE] = {"length_s", NULL},
    [OB_VERB_HANGUP] = {NULL},
    [OB_VERB_CONNECT] = {"to", "caller_id", "timeout_s", "headers", "refer", "action_url", NULL},
};

#define NAME_MAX_LEN  64 /* a template name's characters */
#define VOICE_MAX_LEN 40 /* an espeak-ng voice name's characters */

const char *ob_verb_name(ob_verb_kind_t k)
{
    if ((int)k < 0 || k >= OB_VERB_COUNT)
        return NULL;
    return verb_names[k];
}

/* ---- parsing ---- */

/* Where the verb being read sits, for messages: "verbs[2] (gather)". */
typedef struct {
    char where[96];   /* "verbs[2]" or "verbs[2].prompt[0]" */
    const char *kind; /* the verb's name, NULL before it is known */
} place_t;

static ob_rc_t fail(ob_err_t *err, const place_t *p, const char *fmt, ...) OB_PRINTF(3, 4);

static ob_rc_t fail(ob_err_t *err, const place_t *p, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (p->kind)
        ob_err_set(err, "%s (%s): %s", p->where, p->kind, what);
    else
        ob_err_set(err, "%s: %s", p->where, what);
    return OB_EINVAL;
}

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Length of the placeholder "{{name}}" at s, or 0 when s does not start one;
 * its name is s[2..2+*name_len). */
static size_t placeholder_at(const char *s, size_t *name_len)
{
    if (s[0] != '{' || s[1] != '{')
        return 0;
    size_t n = 0;
    while (n <= NAME_MAX_LEN && is_name_char(s[2 + n]))
        n++;
    if (n == 0 || n > NAME_MAX_LEN || s[2 + n] != '}' || s[3 + n] != '}')
        return 0;
    *name_len = n;
    return n + 4;
}

static bool has_placeholder(const char *s)
{
    size_t n;
    for (; *s; s++)
        if (placeholder_at(s, &n))
            return true;
    return false;
}

static bool is_e164(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = strspn(s + 1, "0123456789");
    return s[1 + n] == '\0' && n >= 2 && n <= 15;
}

/* "sip:" or "sips:", then a user part or host of printable characters
 * without spaces, quotes or angle brackets (what a Refer-To or a request
 * URI can carry as it is). */
static bool is_sip_uri(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "sip:", 4) == 0)
        skip = 4;
    else if (strncasecmp(s, "sips:", 5) == 0)
        skip = 5;
    else
        return false;
    s += skip;
    if (*s == '\0' || *s == '@')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr("<>\"", *s))
            return false;
    return true;
}

bool ob_appdoc_to_valid(const char *to)
{
    return to && (is_e164(to) || is_sip_uri(to));
}

static bool is_integer(const cJSON *v, int lo, int hi, int *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return false;
    *out = (int)d;
    return true;
}

/* A number of seconds from lo_ms to hi_ms once in milliseconds. */
static bool is_seconds(const cJSON *v, int lo_ms, int hi_ms, int *out_ms)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return false;
    double ms = round(v->valuedouble * 1000.0);
    if (!(ms >= lo_ms && ms <= hi_ms))
        return false;
    *out_ms = (int)ms;
    return true;
}

/* A string member, copied to *out; OB_EINVAL when it is not a string, is
 * empty or longer than max bytes. Absent: *out stays NULL. */
static ob_rc_t get_text(const cJSON *obj, const char *name, size_t max, const place_t *p,
                        char **out, ob_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v)
        return OB_OK;
    if (!cJSON_IsString(v))
        return fail(err, p, "%s must be a string", name);
    size_t len = strlen(v->valuestring);
    if (len == 0)
        return fail(err, p, "%s must not be empty", name);
    if (len > max)
        return fail(err, p, "%s must be at most %zu bytes (it has %zu)", name, max, len);
    *out = ob_xstrdup(v->valuestring);
    return OB_OK;
}

/* An http or https URL member (a template), copied to *out. */
static ob_rc_t get_url(const cJSON *obj, const char *name, const place_t *p, char **out,
                       ob_err_t *err)
{
    if (get_text(obj, name, OB_APPDOC_MAX_URL, p, out, err) != OB_OK)
        return OB_EINVAL;
    if (*out && strncasecmp(*out, "http://", 7) != 0 && strncasecmp(*out, "https://", 8) != 0)
        return fail(err, p, "%s must be an http:// or https:// URL", name);
    return OB_OK;
}

static ob_rc_t parse_list(const cJSON *arr, const char *where, bool prompt, ob_verb_t **out, int *n,
                          ob_err_t *err);

/* Names the members obj has that kind does not accept, all of them. */
static ob_rc_t check_members(const cJSON *obj, ob_verb_kind_t kind, const place_t *p, ob_err_t *err)
{
    char unknown[300] = "";
    size_t used = 0;
    int count = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        bool known = strcmp(m->string, "verb") == 0;
        for (int i = 0; !known && verb_members[kind][i]; i++)
            known = strcmp(m->string, verb_members[kind][i]) == 0;
        if (known)
            continue;
        count++;
        if (used < sizeof(unknown) - 1)
            used += (size_t)snprintf(unknown + used, sizeof(unknown) - used, "%s\"%.64s\"",
                                     count > 1 ? ", " : "", m->string);
    }
    if (count == 0)
        return OB_OK;
    return fail(err, p, "unknown member%s %s", count > 1 ? "s" : "", unknown);
}

static ob_rc_t parse_say(const cJSON *o, const place_t *p, ob_verb_t *v, ob_err_t *err)
{
    if (get_text(o, "text", OB_APPDOC_MAX_TEXT, p, &v->text, err) != OB_OK)
        return OB_EINVAL;
    if (!v->text)
        return fail(err, p, "text is required");
    if (get_text(o, "voice", VOICE_MAX_LEN, p, &v->voice, err) != OB_OK)
        return OB_EINVAL;
    /* Handed to espeak-ng as a name, never a path. */
    if (v->voice && strspn(v->voice, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_+-") != strlen(v->voice))
        return fail(err, p, "voice must be an espeak-ng voice or language such as \"en-us\"");
    if (!v->voice)
        v->voice = ob_xstrdup("en-us");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rate");
    v->rate = 160;
    if (rate && !is_integer(rate, 80, 450, &v->rate))
        return fail(err, p, "rate must be an integer from 80 to 450 (words per minute)");
    return OB_OK;
}

static ob_rc_t parse_gather(const cJSON *o, const place_t *p, ob_verb_t *v, ob_err_t *err)
{
    const cJSON *nd = cJSON_GetObjectItemCaseSensitive(o, "num_digits");
    if (nd && !is_integer(nd, 1, OB_APPDOC_MAX_DIGITS, &v->num_digits))
        return fail(err, p, "num_digits must be an integer from 1 to %d", OB_APPDOC_MAX_DIGITS);
    const cJSON *fk = cJSON_GetObjectItemCaseSensitive(o, "finish_on_key");
    v->finish_on_key = '#';
    if (fk) {
        const char *s = cJSON_IsString(fk) ? fk->valuestring : NULL;
        if (!s || strlen(s) > 1 || (s[0] && !strchr("0123456789*#", s[0])))
            return fail(err, p, "finish_on_key must be one of 0-9, * and #, or \"\" for none");
        v->finish_on_key = s[0];
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "timeout_s");
    v->timeout_ms = 5000;
    if (t && !is_seconds(t, 1000, OB_APPDOC_MAX_WAIT_MS, &v->timeout_ms))
        return fail(err, p, "timeout_s must be a number of seconds from 1 to %d",
                    OB_APPDOC_MAX_WAIT_MS / 1000);
    if (get_url(o, "action_url", p, &v->action_url, err) != OB_OK)
        return OB_EINVAL;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (pr) {
        if (!cJSON_IsArray(pr))
            return fail(err, p, "prompt must be an array of say, play and pause verbs");
        char where[96];
        snprintf(where, sizeof(where), "%.80s.prompt", p->where);
        if (parse_list(pr, where, true, &v->prompt, &v->nprompt, err) != OB_OK)
            return OB_EINVAL;
    }
    return OB_OK;
}

static ob_rc_t parse_connect(const cJSON *o, const place_t *p, ob_verb_t *v, ob_err_t *err)
{
    if (get_text(o, "to", OB_APPDOC_MAX_URL, p, &v->to, err) != OB_OK)
        return OB_EINVAL;
    if (!v->to)
        return fail(err, p, "to is required");
    /* A template's value comes at render time; the dialer checks it then. */
    if (!has_placeholder(v->to) && !ob_appdoc_to_valid(v->to))
        return fail(err, p, "to must be an E.164 number (+ and digits) or a sip: or sips: URI");
    if (get_text(o, "caller_id", 16, p, &v->caller_id, err) != OB_OK)
        return OB_EINVAL;
    if (v->caller_id && !is_e164(v->caller_id))
        return fail(err, p, "caller_id must be an E.164 number (+ and digits)");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "timeout_s");
    v->timeout_ms = 30000;
    if (t && !is_seconds(t, 1000, OB_APPDOC_MAX_RING_MS, &v->timeout_ms))
        return fail(err, p, "timeout_s must be a number of seconds from 1 to %d",
                    OB_APPDOC_MAX_RING_MS / 1000);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
    v->headers = true;
    if (h && !cJSON_IsBool(h))
        return fail(err, p, "headers must be true or false");
    if (h)
        v->headers = cJSON_IsTrue(h);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "refer");
    if (r && !cJSON_IsBool(r))
        return fail(err, p, "refer must be true or false");
    v->refer = r && cJSON_IsTrue(r);
    return get_url(o, "action_url", p, &v->action_url, err);
}

static ob_rc_t parse_verb(const cJSON *o, place_t *p, bool prompt, ob_verb_t *v, ob_err_t *err)
{
    if (!cJSON_IsObject(o))
        return fail(err, p, "must be an object with a verb");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "verb");
    if (!name)
        return fail(err, p, "verb is required");
    if (!cJSON_IsString(name))
        return fail(err, p, "verb must be a string");
    int k = 0;
    while (k < OB_VERB_COUNT && strcmp(verb_names[k], name->valuestring) != 0)
        k++;
    if (k == OB_VERB_COUNT)
        return fail(err, p, "unknown verb \"%.40s\" (say, play, gather, pause, hangup or connect)",
                    name->valuestring);
    v->kind = (ob_verb_kind_t)k;
    p->kind = verb_names[k];
    if (prompt && k != OB_VERB_SAY && k != OB_VERB_PLAY && k != OB_VERB_PAUSE)
        return fail(err, p, "a gather's prompt holds only say, play and pause");
    if (check_members(o, v->kind, p, err) != OB_OK)
        return OB_EINVAL;
    if (k == OB_VERB_SAY || k == OB_VERB_PLAY) {
        const cJSON *loop = cJSON_GetObjectItemCaseSensitive(o, "loop");
        v->loop = 1;
        if (loop && !is_integer(loop, 1, OB_APPDOC_MAX_LOOP, &v->loop))
            return fail(err, p, "loop must be an integer from 1 to %d", OB_APPDOC_MAX_LOOP);
    }
    switch (v->kind) {
    case OB_VERB_SAY:
        return parse_say(o, p, v, err);
    case OB_VERB_PLAY:
        if (get_url(o, "url", p, &v->url, err) != OB_OK)
            return OB_EINVAL;
        return v->url ? OB_OK : fail(err, p, "url is required");
    case OB_VERB_GATHER:
        return parse_gather(o, p, v, err);
    case OB_VERB_PAUSE: {
        const cJSON *len = cJSON_GetObjectItemCaseSensitive(o, "length_s");
        v->timeout_ms = 1000;
        if (len && !is_seconds(len, 100, OB_APPDOC_MAX_PAUSE_MS, &v->timeout_ms))
            return fail(err, p, "length_s must be a number of seconds from 0.1 to %d",
                        OB_APPDOC_MAX_PAUSE_MS / 1000);
        return OB_OK;
    }
    case OB_VERB_CONNECT:
        return parse_connect(o, p, v, err);
    default:
        return OB_OK;
    }
}

static void verbs_free(ob_verb_t *verbs, int n)
{
    for (int i = 0; i < n; i++) {
        ob_verb_t *v = &verbs[i];
        free(v->text);
        free(v->voice);
        free(v->url);
        free(v->action_url);
        free(v->to);
        free(v->caller_id);
        verbs_free(v->prompt, v->nprompt);
    }
    free(verbs);
}

/* A list of 1 to OB_APPDOC_MAX_VERBS verbs at where ("verbs", "machine",
 * "verbs[2].prompt"); *out NULL on failure. */
static ob_rc_t parse_list(const cJSON *arr, const char *where, bool prompt, ob_verb_t **out, int *n,
                          ob_err_t *err)
{
    place_t p = {.kind = NULL};
    snprintf(p.where, sizeof(p.where), "%s", where);
    int count = cJSON_GetArraySize(arr);
    if (count == 0)
        return fail(err, &p, "must hold at least one verb");
    if (count > OB_APPDOC_MAX_VERBS)
        return fail(err, &p, "at most %d verbs", OB_APPDOC_MAX_VERBS);
    ob_verb_t *verbs = ob_xcalloc((size_t)count, sizeof(*verbs));
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        place_t vp = {.kind = NULL};
        snprintf(vp.where, sizeof(vp.where), "%s[%d]", where, i);
        /* Counted before parsing, so a half-read verb is freed too. */
        i++;
        if (parse_verb(o, &vp, prompt, &verbs[i - 1], err) != OB_OK) {
            verbs_free(verbs, i);
            return OB_EINVAL;
        }
    }
    *out = verbs;
    *n = count;
    return OB_OK;
}

ob_rc_t ob_appdoc_parse(const char *json, size_t len, ob_appdoc_t *out, ob_err_t *err)
{
    memset(out, 0, sizeof(*out));
    ob_rc_t rc = OB_EINVAL;
    cJSON *root = NULL;
    if (len > OB_APPDOC_MAX_BYTES) {
        ob_err_set(err, "app: at most %d bytes of JSON (it has %zu)", OB_APPDOC_MAX_BYTES, len);
        goto out;
    }
    const char *end = NULL;
    ob_json_fault_t fault;
    root = ob_json_parse(json, len, &end, &fault);
    if (root && end) {
        /* Only white space may follow the document. */
        while (end < json + len && *end && strchr(" \t\r\n", *end))
            end++;
        if (end < json + len) {
            fault = OB_JSON_SYNTAX;
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (!root) {
        if (fault == OB_JSON_SYNTAX)
            ob_err_set(err, "app: not JSON (at byte %zu)",
                       end && end >= json ? (size_t)(end - json) : (size_t)0);
        else
            ob_err_set(err, "app: %s", ob_json_fault_text(fault));
        goto out;
    }
    const cJSON *verbs = root, *machine = NULL;
    if (cJSON_IsObject(root)) {
        const cJSON *m;
        cJSON_ArrayForEach(m, root)
        {
            if (strcmp(m->string, "verbs") != 0 && strcmp(m->string, "machine") != 0) {
                ob_err_set(err, "app: unknown member \"%.64s\" (verbs, machine)", m->string);
                goto out;
            }
        }
        verbs = cJSON_GetObjectItemCaseSensitive(root, "verbs");
        machine = cJSON_GetObjectItemCaseSensitive(root, "machine");
        if (!verbs) {
            ob_err_set(err, "app: verbs is required");
            goto out;
        }
    } else if (!cJSON_IsArray(root)) {
        ob_err_set(err, "app: must be an object with verbs, or an array of verbs");
        goto out;
    }
    if (!cJSON_IsArray(verbs)) {
        ob_err_set(err, "verbs: must be an array of verbs");
        goto out;
    }
    if (parse_list(verbs, "verbs", false, &out->verbs, &out->nverbs, err) != OB_OK)
        goto out;
    if (machine && !cJSON_IsNull(machine)) {
        if (!cJSON_IsArray(machine)) {
            ob_err_set(err, "machine: must be an array of verbs");
            goto out;
        }
        if (parse_list(machine, "machine", false, &out->machine, &out->nmachine, err) != OB_OK)
            goto out;
    }
    rc = OB_OK;
out:
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_appdoc_clear(out);
    return rc;
}

void ob_appdoc_clear(ob_appdoc_t *doc)
{
    if (!doc)
        return;
    verbs_free(doc->verbs, doc->nverbs);
    verbs_free(doc->machine, doc->nmachine);
    memset(doc, 0, sizeof(*doc));
}

/* ---- rendering ---- */

/* A growing string that refuses to pass max bytes. */
typedef struct {
    char *s;    /* the text, NUL-terminated */
    size_t len; /* its bytes */
    size_t cap; /* allocated */
    size_t max; /* the most bytes allowed */
    bool over;  /* something did not fit */
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->over || n > b->max - b->len) {
        b->over = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap *= 2;
        b->s = ob_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* The value, percent-encoded (RFC 3986: unreserved characters kept) for a URL. */
static void put_value(buf_t *b, const char *s, bool url)
{
    if (!url) {
        put(b, s, strlen(s));
        return;
    }
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && !b->over; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static void put_param(buf_t *b, const cJSON *params, const char *name, size_t name_len, bool url)
{
    char key[NAME_MAX_LEN + 1];
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    const cJSON *v = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, key) : NULL;
    if (!v || cJSON_IsNull(v))
        return;
    if (cJSON_IsString(v)) {
        put_value(b, v->valuestring, url);
        return;
    }
    char *text = cJSON_PrintUnformatted(v);
    put_value(b, text, url);
    cJSON_free(text);
}

char *ob_appdoc_render(const char *tmpl, const char *params_json, bool url, size_t max,
                       ob_err_t *err)
{
    cJSON *params = NULL;
    if (params_json && params_json[0])
        params = cJSON_Parse(params_json);
    buf_t b = {.cap = 64, .max = max};
    b.s = ob_xmalloc(b.cap);
    b.s[0] = '\0';
    const char *s = tmpl;
    while (*s && !b.over) {
        const char *open = strstr(s, "{{");
        if (!open) {
            put(&b, s, strlen(s));
            break;
        }
        put(&b, s, (size_t)(open - s));
        size_t name_len = 0, n = placeholder_at(open, &name_len);
        if (n) {
            put_param(&b, params, open + 2, name_len, url);
            s = open + n;
        } else {
            /* Not a placeholder: one brace is literal, and the next may open one ("{{{a}}"). */
            put(&b, open, 1);
            s = open + 1;
        }
    }
    cJSON_Delete(params);
    if (b.over) {
        free(b.s);
        ob_err_set(err, "the rendered text would be longer than %zu bytes", max);
        return NULL;
    }
    return b.s;
}
