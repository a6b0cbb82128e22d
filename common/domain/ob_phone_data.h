/*
 * Facts from libphonenumber's metadata that its C++ API does not expose,
 * generated at build time by tools/gen_phone_data.py from Debian's
 * python3-phonenumbers (build/gen/ob_phone_data.c).
 */
#ifndef OB_PHONE_DATA_H
#define OB_PHONE_DATA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The python3-phonenumbers release the tables come from ("8.12.57"). */
extern const char ob_phone_data_version[];

/* Country calling codes whose main region has leading digits, ascending. */
extern const int ob_phone_cc_main_leading_digits[];
extern const size_t ob_phone_cc_main_leading_digits_len;

/*
 * Each country code's national prefix for parsing: the main region's, which
 * libphonenumber tries to strip from a number given with + (+44 020 ... ->
 * +44 20 ...). A POSIX extended regular expression anchored at the start of
 * the national number. Codes without one are absent. Ascending by code.
 */
typedef struct {
    int code;        /* country calling code */
    const char *ere; /* "^(0)" */
} ob_phone_prefix_rule_t;

extern const ob_phone_prefix_rule_t ob_phone_national_prefix_for_parsing[];
extern const size_t ob_phone_national_prefix_for_parsing_len;

#ifdef __cplusplus
}
#endif

#endif
