/*
 * libFuzzer target: the phone normaliser (common/domain/ob_phone.c over
 * libphonenumber). The first two bytes are the default region (a zero byte
 * means none), the rest the number as a client sends it. A number accepted
 * once must be accepted again, unchanged, from its own E.164 form: that is
 * what the scheduler and dialer read back.
 */
#include "ob_phone.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ob_phone_t phone, again;
    ob_err_t err = {{0}};
    char region[3] = "";
    if (size < 2)
        return 0;
    if (data[0] && data[1]) {
        region[0] = (char)data[0];
        region[1] = (char)data[1];
    }
    char *input = ob_xstrndup((const char *)data + 2, size - 2);
    (void)ob_phone_region_valid(region);
    ob_rc_t rc = ob_phone_parse_region(input, region[0] ? region : NULL, &phone, &err);
    if (rc == OB_OK) {
        OB_ASSERT(phone.e164[0] == '+');
        ob_err_t err2 = {{0}};
        OB_ASSERT(ob_phone_parse(phone.e164, &again, &err2) == OB_OK);
        OB_ASSERT(strcmp(again.e164, phone.e164) == 0);
        if (phone.caller_id[0])
            OB_ASSERT(ob_phone_parse(phone.caller_id, &again, &err2) == OB_OK);
    } else {
        OB_ASSERT(err.msg[0] != '\0' && phone.e164[0] == '\0');
    }
    free(input);
    return 0;
}
