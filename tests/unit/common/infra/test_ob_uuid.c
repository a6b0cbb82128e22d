/* UUIDv7 layout and validation (common/infra/ob_uuid.c). */
#include "ob_common.h"
#include "ob_uuid.h"

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

Test(uuid, v7_layout_from_known_inputs)
{
    const uint8_t rnd[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    char out[OB_UUID_STRLEN + 1];
    ob_uuid_v7_from(0x017F22E279B0LL, rnd, out);
    /* Timestamp first, then version 7 and variant 10xx overwrite the random bits. */
    cr_assert_str_eq(out, "017f22e2-79b0-7fff-bfff-ffffffffffff");
}

Test(uuid, generated_ids_are_valid_sortable_and_distinct)
{
    char a[OB_UUID_STRLEN + 1], b[OB_UUID_STRLEN + 1];
    ob_uuid_v7(a);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    ob_uuid_v7(b);
    cr_expect(ob_uuid_valid(a));
    cr_expect_eq(a[14], '7');
    cr_expect(strchr("89ab", a[19]) != NULL);
    cr_expect(strcmp(a, b) < 0, "%s should sort before %s", a, b);
}

Test(uuid, validation_rejects_malformed)
{
    cr_expect(ob_uuid_valid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"));
    cr_expect_not(ob_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398"));
    cr_expect_not(ob_uuid_valid("017f22e2x79b0-7cc3-98c4-dc0c0c07398f"));
    cr_expect_not(ob_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398g"));
    cr_expect_not(ob_uuid_valid(""));
    cr_expect_not(ob_uuid_valid(NULL));
}

Test(uuid, ids_of_one_process_sort_in_creation_order)
{
    char prev[OB_UUID_STRLEN + 1], next[OB_UUID_STRLEN + 1];
    ob_uuid_v7(prev);
    for (int i = 0; i < 100000; i++) {
        ob_uuid_v7(next);
        cr_assert(strcmp(prev, next) < 0, "%s then %s", prev, next);
        memcpy(prev, next, sizeof(prev));
    }
}
