/*
 * The libphonenumber boundary, and the only C++ in outbound: reads one number
 * into E.164 and its region, and turns libphonenumber's parse errors and
 * length reasons into messages a client understands. Only the extern "C"
 * functions declared in ob_phone.h leave this file, and no exception does.
 */
extern "C" {
/* ob_common.h and ob_phone.h are C headers without C++ guards. */
#include "ob_phone.h"
}

#include <phonenumbers/phonenumberutil.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

/*
 * GetInstance builds the metadata once under pthread_once and never frees it
 * (a reachable "leaky singleton", which LeakSanitizer does not report); its
 * const methods are safe to call from many threads at once.
 */
static const PhoneNumberUtil &util()
{
    return *PhoneNumberUtil::GetInstance();
}

/* The separators ob_phone.c lets through (its SEPARATORS plus white space). */
static bool is_separator(char c)
{
    return std::isspace(static_cast<unsigned char>(c)) || std::strchr(".-()/", c);
}

/*
 * Without a region libphonenumber knows no international prefix. 00 is the
 * one most countries use and the one ob_phone_parse has always accepted, so
 * it is read as + when no region is given.
 */
static std::string plus_for_00(const std::string &s)
{
    size_t i = 0;
    int zeros = 0;
    for (; i < s.size() && zeros < 2; i++) {
        if (s[i] == '0')
            zeros++;
        else if (!is_separator(s[i]))
            return s;
    }
    return zeros == 2 ? "+" + s.substr(i) : s;
}

static bool starts_with_plus(const std::string &s)
{
    for (char c : s) {
        if (c == '+')
            return true;
        if (!is_separator(c))
            return false;
    }
    return false;
}

/* "+44 (GB)" for the country code's main region, "+800" when it has none. */
static std::string country(int code)
{
    std::string region;
    util().GetRegionCodeForCountryCode(code, &region);
    std::string s = "+" + std::to_string(code);
    if (region.size() == 2 && region != "ZZ")
        s += " (" + region + ")";
    return s;
}

static ob_rc_t parse_error(PhoneNumberUtil::ErrorType e, const std::string &text, bool no_region,
                           const char *what, ob_err_t *err)
{
    switch (e) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
        return OB_OK;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        if (no_region && !starts_with_plus(text))
            ob_err_set(err,
                       "%s must be in international format (+ and country code) or the "
                       "deployment needs a default region",
                       what);
        else
            ob_err_set(err, "%s has an invalid country code", what);
        break;
    case PhoneNumberUtil::NOT_A_NUMBER:
        ob_err_set(err, "%s could not be parsed: it does not look like a phone number", what);
        break;
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
        ob_err_set(err, "%s could not be parsed: too few digits after the international prefix",
                   what);
        break;
    case PhoneNumberUtil::TOO_SHORT_NSN:
        ob_err_set(err, "%s could not be parsed: too few digits", what);
        break;
    case PhoneNumberUtil::TOO_LONG_NSN:
        ob_err_set(err, "%s could not be parsed: too many digits", what);
        break;
    default:
        ob_err_set(err, "%s could not be parsed: libphonenumber error %d", what, (int)e);
        break;
    }
    return OB_EINVAL;
}

static ob_rc_t length_error(PhoneNumberUtil::ValidationResult v, const PhoneNumber &n,
                            const char *what, ob_err_t *err)
{
    std::string cc = country(n.country_code());
    switch (v) {
    case PhoneNumberUtil::IS_POSSIBLE:
        return OB_OK;
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
        ob_err_set(err,
                   "%s is too short for %s: it looks like a local number without its area code",
                   what, cc.c_str());
        break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE:
        ob_err_set(err, "%s has an invalid country code", what);
        break;
    case PhoneNumberUtil::TOO_SHORT:
        ob_err_set(err, "%s is too short for %s", what, cc.c_str());
        break;
    case PhoneNumberUtil::TOO_LONG:
        ob_err_set(err, "%s is too long for %s", what, cc.c_str());
        break;
    case PhoneNumberUtil::INVALID_LENGTH:
    default:
        ob_err_set(err, "%s has a number of digits that %s does not use", what, cc.c_str());
        break;
    }
    return OB_EINVAL;
}

static ob_rc_t normalise(const std::string &input, const std::string &region, const char *what,
                         char *e164, char *region_out, ob_err_t *err)
{
    bool no_region = region == "ZZ";
    std::string text = no_region ? plus_for_00(input) : input;
    PhoneNumber n;
    std::string formatted, number_region;

    ob_rc_t rc = parse_error(util().Parse(text, region, &n), text, no_region, what, err);
    if (rc != OB_OK)
        return rc;
    if ((rc = length_error(util().IsPossibleNumberWithReason(n), n, what, err)) != OB_OK)
        return rc;
    /* IsValidNumber is GetRegionCodeForNumber plus IsValidNumberForRegion;
     * the region search is the costly part, so it is done once. */
    util().GetRegionCodeForNumber(n, &number_region);
    if (!util().IsValidNumberForRegion(n, number_region)) {
        ob_err_set(err, "%s is not a valid number for %s", what, country(n.country_code()).c_str());
        return OB_EINVAL;
    }
    /* Dropping an extension would dial the wrong party; ob_phone.c's character
     * check keeps them out, this keeps the boundary honest on its own. */
    if (!n.extension().empty()) {
        ob_err_set(err, "%s has an extension; send the digits in ;postd= instead", what);
        return OB_EINVAL;
    }
    util().Format(n, PhoneNumberUtil::E164, &formatted);
    if (formatted.size() >= OB_PHONE_MAX) {
        ob_err_set(err, "%s is too long", what);
        return OB_EINVAL;
    }
    std::snprintf(e164, OB_PHONE_MAX, "%s", formatted.c_str());
    if (region_out) {
        /* "ZZ" means unknown and "001" a non-geographic code such as +800. */
        bool geographic = number_region.size() == 2 && number_region != "ZZ";
        std::snprintf(region_out, 3, "%s", geographic ? number_region.c_str() : "");
    }
    return OB_OK;
}

/* Out of memory aborts, as ob_xmalloc does. */
[[noreturn]] static void oom()
{
    std::fputs("{\"level\":\"fatal\",\"msg\":\"out of memory in libphonenumber\"}\n", stderr);
    std::abort();
}

extern "C" ob_rc_t ob_phonenumber_normalise(const char *number, size_t len, const char *region,
                                            const char *what, char e164[OB_PHONE_MAX],
                                            char *region_out, ob_err_t *err)
{
    ob_rc_t rc = OB_ERR;
    e164[0] = '\0';
    if (region_out)
        region_out[0] = '\0';
    try {
        rc = normalise(std::string(number, len), region, what, e164, region_out, err);
    } catch (const std::bad_alloc &) {
        oom();
    } catch (const std::exception &e) {
        ob_err_set(err, "%s could not be parsed: libphonenumber failed: %s", what, e.what());
    } catch (...) {
        ob_err_set(err, "%s could not be parsed: libphonenumber failed", what);
    }
    return rc;
}

extern "C" bool ob_phone_region_valid(const char *region)
{
    if (!region || !std::isalpha(static_cast<unsigned char>(region[0])) ||
        !std::isalpha(static_cast<unsigned char>(region[1])) || region[2] != '\0')
        return false;
    char upper[3] = {(char)std::toupper(static_cast<unsigned char>(region[0])),
                     (char)std::toupper(static_cast<unsigned char>(region[1])), '\0'};
    bool valid = false;
    try {
        /* 0 for "ZZ" and for codes without metadata. */
        valid = util().GetCountryCodeForRegion(upper) != 0;
    } catch (const std::bad_alloc &) {
        oom();
    } catch (...) {
        valid = false;
    }
    return valid;
}
