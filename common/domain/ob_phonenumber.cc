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
#include "ob_phone_data.h"

#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <list>
#include <memory>
#include <new>
#include <regex.h>
#include <string>
#include <vector>

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

/*
 * Without a region libphonenumber knows no international prefix. 00 is the
 * one most countries use and the one ob_phone_parse has always accepted, so
 * it is read as + when no region is given. s is compact (see compact()).
 */
static std::string plus_for_00(const std::string &s)
{
    return s.compare(0, 2, "00") == 0 ? "+" + s.substr(2) : s;
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
        if (no_region && text[0] != '+')
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

/*
 * The digits and the + alone: ob_phone.c has let only those and separators
 * through, libphonenumber drops the separators too, and its parse runs
 * regular expressions over every character it is given, so handing it the
 * compact form gives the same number for about 40% less work.
 */
static std::string compact(const char *number, size_t len)
{
    std::string s;
    s.reserve(len);
    for (size_t i = 0; i < len; i++)
        if (std::isdigit(static_cast<unsigned char>(number[i])) || number[i] == '+')
            s += number[i];
    return s;
}

/*
 * True if the country code's main region (the first of its list) may claim a
 * number by its leading digits alone, without validating it.
 */
static bool main_region_has_leading_digits(int code)
{
    const int *end = ob_phone_cc_main_leading_digits + ob_phone_cc_main_leading_digits_len;
    return std::binary_search(ob_phone_cc_main_leading_digits, end, code);
}

/*
 * IsValidNumber, with the region it found: GetRegionCodeForNumber, which for
 * a code several regions share validates the number against each in turn,
 * then IsValidNumberForRegion, which validates it again. Most numbers are
 * their country code's main region's (+1 numbers are mostly US), and the
 * region search tries that one first: when the main region has no leading
 * digits, a number valid for it is its number, and one validation is enough.
 */
static bool valid_number(const PhoneNumber &n, std::string *region)
{
    int code = n.country_code();
    util().GetRegionCodeForCountryCode(code, region);
    if (!main_region_has_leading_digits(code) && util().IsValidNumberForRegion(n, *region))
        return true;
    util().GetRegionCodeForNumber(n, region);
    return util().IsValidNumberForRegion(n, *region);
}

/*
 * The national prefix patterns of ob_phone_data.h, compiled on first use by
 * each thread (glibc's regexec takes a lock on the pattern it runs).
 */
class PrefixRules
{
  public:
    PrefixRules() : compiled_(ob_phone_national_prefix_for_parsing_len)
    {
    }
    PrefixRules(const PrefixRules &) = delete;
    PrefixRules &operator=(const PrefixRules &) = delete;
    ~PrefixRules()
    {
        for (auto &re : compiled_)
            if (re)
                regfree(re.get());
    }

    /* True if libphonenumber may strip a national prefix from nsn (or if the
     * pattern would not compile, which only means the slow path is taken). */
    bool may_strip(int code, const char *nsn)
    {
        const ob_phone_prefix_rule_t *begin = ob_phone_national_prefix_for_parsing;
        const ob_phone_prefix_rule_t *end = begin + ob_phone_national_prefix_for_parsing_len;
        const ob_phone_prefix_rule_t *rule = std::lower_bound(
            begin, end, code, [](const ob_phone_prefix_rule_t &r, int c) { return r.code < c; });
        if (rule == end || rule->code != code)
            return false;
        std::unique_ptr<regex_t> &re = compiled_[rule - begin];
        if (!re) {
            re.reset(new regex_t);
            if (regcomp(re.get(), rule->ere, REG_EXTENDED | REG_NOSUB) != 0) {
                re.reset();
                return true;
            }
        }
        return regexec(re.get(), nsn, 0, nullptr, 0) == 0;
    }

  private:
    std::vector<std::unique_ptr<regex_t>> compiled_;
};

/*
 * Parse, for the common case of + and digits, in a tenth of the time: the
 * same steps libphonenumber takes for such a number (the country code is
 * the shortest 1-3 digit prefix that is one, and the rest is the national
 * number, with Italian leading zeros kept), taken only when its national
 * prefix for parsing cannot apply. Returns false, leaving n alone, whenever
 * the input needs libphonenumber's Parse (and its error messages).
 */
static bool parse_plus_digits(const std::string &text, PhoneNumber *n)
{
    static thread_local PrefixRules rules;
    if (text.size() < 4 || text[0] != '+' || text[1] == '0')
        return false;
    for (size_t len = 1; len <= 3; len++) {
        int code = std::atoi(text.substr(1, len).c_str());
        std::list<std::string> regions;
        util().GetRegionCodesForCountryCallingCode(code, &regions);
        if (regions.empty())
            continue;
        std::string nsn = text.substr(1 + len);
        /* libphonenumber's MIN_LENGTH_FOR_NSN and MAX_LENGTH_FOR_NSN. */
        if (nsn.size() < 2 || nsn.size() > 17 || rules.may_strip(code, nsn.c_str()))
            return false;
        n->set_country_code(code);
        n->set_national_number(std::strtoull(nsn.c_str(), nullptr, 10));
        if (nsn.size() > 1 && nsn[0] == '0') {
            n->set_italian_leading_zero(true);
            int zeros = 1;
            while ((size_t)zeros < nsn.size() - 1 && nsn[zeros] == '0')
                zeros++;
            if (zeros != 1)
                n->set_number_of_leading_zeros(zeros);
        }
        return true;
    }
    return false;
}

static ob_rc_t normalise(const std::string &input, const std::string &region, const char *what,
                         char *e164, char *region_out, ob_err_t *err)
{
    bool no_region = region == "ZZ";
    std::string text = no_region ? plus_for_00(input) : input;
    PhoneNumber n;
    std::string formatted, number_region;

    if (!parse_plus_digits(text, &n)) {
        ob_rc_t rc = parse_error(util().Parse(text, region, &n), text, no_region, what, err);
        if (rc != OB_OK)
            return rc;
    }
    ob_rc_t rc;
    if ((rc = length_error(util().IsPossibleNumberWithReason(n), n, what, err)) != OB_OK)
        return rc;
    if (!valid_number(n, &number_region)) {
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
        rc = normalise(compact(number, len), region, what, e164, region_out, err);
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
