/*
 * Strict JSON parsing over cJSON: cJSON checks the grammar only, so UTF-8,
 * \u0000 escapes and repeated member names are checked here, once, for every
 * reader of JSON that came from outside.
 */
#include "ob_json.h"

#include <stdlib.h>
#include <string.h>

/* True if text[0..len) holds a \u0000 escape inside a string. */
static bool has_nul_escape(const char *text, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') {
            in_string = !in_string;
        } else if (in_string && text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character */
        }
    }
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True if an object in item (at any depth) names a member twice. */
static bool has_duplicate_member(const cJSON *item)
{
    const cJSON *child;
    int n = cJSON_GetArraySize(item);
    const char **names =
        cJSON_IsObject(item) && n > 1 ? ob_xmalloc((size_t)n * sizeof(*names)) : NULL;
    bool dup = false;
    int k = 0;
    cJSON_ArrayForEach(child, item)
    {
        if (names)
            names[k++] = child->string;
        dup = dup || has_duplicate_member(child);
    }
    if (names && !dup) {
        qsort(names, (size_t)k, sizeof(*names), by_name);
        for (int i = 1; i < k && !dup; i++)
            dup = strcmp(names[i - 1], names[i]) == 0;
    }
    free(names);
    return dup;
}

cJSON *ob_json_parse(const char *text, size_t len, const char **end, ob_json_fault_t *fault)
{
    const char *stop = NULL;
    /* Not null-terminated-only: cJSON stops after the value either way. */
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
    size_t used = v && end ? (size_t)(stop - text) : len;
    if (end)
        *end = stop;
    if (!v)
        *fault = OB_JSON_SYNTAX;
    else if (!ob_utf8_valid(text, used))
        *fault = OB_JSON_NOT_UTF8;
    else if (has_nul_escape(text, used))
        *fault = OB_JSON_NUL_ESCAPE;
    else if (has_duplicate_member(v))
        *fault = OB_JSON_DUPLICATE;
    else
        *fault = OB_JSON_OK;
    if (*fault == OB_JSON_OK)
        return v;
    cJSON_Delete(v);
    return NULL;
}

const char *ob_json_fault_text(ob_json_fault_t fault)
{
    switch (fault) {
    case OB_JSON_OK:
        break;
    case OB_JSON_SYNTAX:
        return "the body is not valid JSON";
    case OB_JSON_NOT_UTF8:
        return "the body is not UTF-8 text (JSON must be UTF-8)";
    case OB_JSON_NUL_ESCAPE:
        return "a JSON string holds \\u0000, which no field accepts";
    case OB_JSON_DUPLICATE:
        return "a JSON object names the same member twice";
    }
    return NULL;
}

const char *ob_json_bad_text_field(ob_pool_t *pool, const cJSON *object)
{
    const cJSON *child;
    cJSON_ArrayForEach(child, object)
    {
        const char *name = child->string ? child->string : "";
        if (!ob_utf8_valid(name, strlen(name)))
            return ob_pool_strdup(pool, "(a member name)");
        if (cJSON_IsString(child) && !ob_utf8_valid(child->valuestring, strlen(child->valuestring)))
            return name;
        if (cJSON_IsObject(child) || cJSON_IsArray(child)) {
            const char *inner = ob_json_bad_text_field(pool, child);
            if (inner)
                return ob_pool_printf(pool, "%s.%s", name, inner);
        }
    }
    return NULL;
}
