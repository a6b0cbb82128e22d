/*
 * Phone number to time zones: a longest-prefix match over the generated
 * table, one binary search per prefix length, longest first, as
 * libphonenumber's mapper does with its own prefix maps.
 */
#include "ob_phone_tz.h"

#include <stdlib.h>
#include <string.h>

static int compare_prefix(const void *key, const void *elem)
{
    return strcmp(key, ((const ob_phone_tz_prefix_t *)elem)->prefix);
}

size_t ob_phone_tz_lookup(const char *e164, const char **zones, size_t max)
{
    if (!e164 || e164[0] != '+')
        return 0;
    const char *digits = e164 + 1;
    size_t ndigits = strspn(digits, "0123456789");
    if (ndigits == 0 || digits[ndigits] != '\0' ||
        ndigits >= sizeof(ob_phone_tz_prefixes[0].prefix))
        return 0;

    char key[sizeof(ob_phone_tz_prefixes[0].prefix)];
    size_t len = ndigits < ob_phone_tz_longest_prefix ? ndigits : ob_phone_tz_longest_prefix;
    for (; len > 0; len--) {
        memcpy(key, digits, len);
        key[len] = '\0';
        const ob_phone_tz_prefix_t *hit =
            bsearch(key, ob_phone_tz_prefixes, ob_phone_tz_prefixes_len,
                    sizeof(ob_phone_tz_prefixes[0]), compare_prefix);
        if (!hit)
            continue;
        const ob_phone_tz_list_t *list = &ob_phone_tz_lists[hit->list];
        for (size_t i = 0; i < list->len && i < max; i++)
            zones[i] = ob_phone_tz_names[ob_phone_tz_list_items[list->start + i]];
        return list->len;
    }
    return 0;
}
