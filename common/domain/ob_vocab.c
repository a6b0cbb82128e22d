/*
 * The name tables of the vocabulary, built from the X-macro lists of
 * ob_vocab.h so that an enum and its names cannot drift apart. Lookups by
 * name scan the table: the longest has fourteen entries.
 */
#include "ob_vocab.h"
#include "ob_common.h"

#include <string.h>

#define NAME_ENTRY(e, s) [e] = s,

static const char *const state_names[] = {OB_STATE_LIST(NAME_ENTRY)};
static const char *const status_names[] = {OB_STATUS_LIST(NAME_ENTRY)};
static const char *const result_names[] = {OB_RESULT_LIST(NAME_ENTRY)};
static const char *const reason_names[] = {OB_REASON_LIST(NAME_ENTRY)};
static const char *const wait_names[] = {OB_WAIT_LIST(NAME_ENTRY)};

_Static_assert(OB_COUNTOF(state_names) == OB_STATE_COUNT, "one name per state");
_Static_assert(OB_COUNTOF(status_names) == OB_STATUS_COUNT, "one name per status");
_Static_assert(OB_COUNTOF(result_names) == OB_RESULT_COUNT, "one name per result");
_Static_assert(OB_COUNTOF(reason_names) == OB_REASON_COUNT, "one name per reason");
_Static_assert(OB_COUNTOF(wait_names) == OB_WAIT_COUNT, "one name per wait");
_Static_assert(OB_RESULT_NOATTEMPT == OB_RESULT_COUNT - 1, "noattempt follows the dialed results");

/* The index of text in names[0..n), or -1. */
static int lookup(const char *const *names, int n, const char *text)
{
    if (!text)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], text) == 0)
            return i;
    return -1;
}

static const char *name_of(const char *const *names, int n, int v)
{
    OB_ASSERT(v >= 0 && v < n);
    return names[v];
}

const char *ob_state_name(ob_state_t v)
{
    return name_of(state_names, OB_STATE_COUNT, (int)v);
}

const char *ob_status_name(ob_status_t v)
{
    return name_of(status_names, OB_STATUS_COUNT, (int)v);
}

const char *ob_result_name(ob_result_t v)
{
    return name_of(result_names, OB_RESULT_COUNT, (int)v);
}

const char *ob_reason_name(ob_reason_t v)
{
    return name_of(reason_names, OB_REASON_COUNT, (int)v);
}

const char *ob_wait_name(ob_wait_t v)
{
    return name_of(wait_names, OB_WAIT_COUNT, (int)v);
}

bool ob_state_parse(const char *text, ob_state_t *out)
{
    int i = lookup(state_names, OB_STATE_COUNT, text);
    if (i >= 0)
        *out = (ob_state_t)i;
    return i >= 0;
}

bool ob_status_parse(const char *text, ob_status_t *out)
{
    int i = lookup(status_names, OB_STATUS_COUNT, text);
    if (i >= 0)
        *out = (ob_status_t)i;
    return i >= 0;
}

bool ob_result_parse(const char *text, ob_result_t *out)
{
    int i = lookup(result_names, OB_RESULT_COUNT, text);
    if (i >= 0)
        *out = (ob_result_t)i;
    return i >= 0;
}

bool ob_reason_parse(const char *text, ob_reason_t *out)
{
    int i = lookup(reason_names, OB_REASON_COUNT, text);
    if (i >= 0)
        *out = (ob_reason_t)i;
    return i >= 0;
}

bool ob_wait_parse(const char *text, ob_wait_t *out)
{
    int i = lookup(wait_names, OB_WAIT_COUNT, text);
    if (i >= 0)
        *out = (ob_wait_t)i;
    return i >= 0;
}

bool ob_result_retried(ob_result_t v)
{
    return v >= OB_RESULT_RETRIED_FIRST && v <= OB_RESULT_RETRIED_LAST;
}

bool ob_reason_of_result(ob_result_t v, ob_reason_t *out)
{
    return ob_result_retried(v) && ob_reason_parse(ob_result_name(v), out);
}
