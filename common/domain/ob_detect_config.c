/*
 * Callee-type detection settings and names (see ob_detect.h), apart from
 * the detector so that what validates a deployment's thresholds (ingest)
 * does not link SpanDSP.
 */
#include "ob_detect.h"
#include "ob_vocab.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

void ob_detect_defaults(ob_detect_config_t *cfg)
{
    *cfg = (ob_detect_config_t){
        .initial_silence_ms = 2500,
        .greeting_ms = 6000,
        .after_greeting_silence_ms = 800,
        .total_analysis_ms = 7000,
        .min_word_ms = 100,
        .max_words = 0,
        .beep_wait_ms = 20000,
        .greeting_silence_ms = 3000,
        .late_beep_ms = 6000,
        .bias = OB_DETECT_BALANCED,
    };
}

/* The biases' names, in ob_detect_bias_t's order. */
static const char *const bias_names[] = {
    [OB_DETECT_BALANCED] = "balanced",
    [OB_DETECT_FAVOUR_PERSON] = "person",
    [OB_DETECT_FAVOUR_MACHINE] = "machine",
};

const char *ob_detect_bias_name(ob_detect_bias_t b)
{
    return (size_t)b < OB_COUNTOF(bias_names) ? bias_names[b] : "balanced";
}

/* "bias": one of bias_names. */
static bool parse_bias(const cJSON *item, ob_detect_config_t *cfg)
{
    for (size_t i = 0; cJSON_IsString(item) && i < OB_COUNTOF(bias_names); i++)
        if (strcmp(item->valuestring, bias_names[i]) == 0) {
            cfg->bias = (ob_detect_bias_t)i;
            return true;
        }
    return false;
}

/* Each threshold: its name, where it goes, and its range. */
static const struct {
    const char *name;
    size_t off;
    int min, max;
} thresholds[] = {
    {"initial_silence_ms", offsetof(ob_detect_config_t, initial_silence_ms), 500, 10000},
    {"greeting_ms", offsetof(ob_detect_config_t, greeting_ms), 500, 10000},
    {"after_greeting_silence_ms", offsetof(ob_detect_config_t, after_greeting_silence_ms), 200,
     5000},
    {"total_analysis_ms", offsetof(ob_detect_config_t, total_analysis_ms), 1000, 30000},
    {"min_word_ms", offsetof(ob_detect_config_t, min_word_ms), 20, 1000},
    {"max_words", offsetof(ob_detect_config_t, max_words), 0, 20},
    {"beep_wait_ms", offsetof(ob_detect_config_t, beep_wait_ms), 0, 60000},
    {"greeting_silence_ms", offsetof(ob_detect_config_t, greeting_silence_ms), 500, 10000},
    {"late_beep_ms", offsetof(ob_detect_config_t, late_beep_ms), 0, 10000},
};

ob_rc_t ob_detect_config_parse(const char *json, ob_detect_config_t *cfg, ob_err_t *err)
{
    ob_detect_defaults(cfg);
    if (!json || !json[0])
        return OB_OK;
    cJSON *root = cJSON_Parse(json);
    ob_rc_t rc = OB_OK;
    if (!cJSON_IsObject(root)) {
        ob_err_set(err, "detection must be an object of thresholds in ms (and a bias)");
        rc = OB_EINVAL;
    }
    const cJSON *item, *members = rc == OB_OK ? root : (const cJSON *)NULL;
    cJSON_ArrayForEach(item, members)
    {
        if (strcmp(item->string, "bias") == 0) {
            if (!cJSON_IsNull(item) && !parse_bias(item, cfg)) {
                ob_err_set(err, "detection.bias must be \"person\", \"balanced\" or \"machine\"");
                rc = OB_EINVAL;
                break;
            }
            continue;
        }
        size_t k = 0;
        while (k < OB_COUNTOF(thresholds) && strcmp(thresholds[k].name, item->string) != 0)
            k++;
        if (k == OB_COUNTOF(thresholds)) {
            ob_err_set(err, "detection.%.64s is not a threshold", item->string);
            rc = OB_EINVAL;
            break;
        }
        double v = item->valuedouble;
        if (!cJSON_IsNumber(item) || v != floor(v) || v < thresholds[k].min ||
            v > thresholds[k].max) {
            ob_err_set(err, "detection.%s must be an integer from %d to %d", thresholds[k].name,
                       thresholds[k].min, thresholds[k].max);
            rc = OB_EINVAL;
            break;
        }
        *(int *)((char *)cfg + thresholds[k].off) = (int)v;
    }
    cJSON_Delete(root);
    if (rc != OB_OK)
        ob_detect_defaults(cfg);
    return rc;
}

const char *ob_detect_name(ob_detect_verdict_t v)
{
    switch (v) {
    case OB_DETECT_VOICE:
        return ob_result_name(OB_RESULT_VOICE);
    case OB_DETECT_MACHINE:
        return ob_result_name(OB_RESULT_ANSWERINGMACHINE);
    case OB_DETECT_FAX:
        return ob_result_name(OB_RESULT_FAX);
    case OB_DETECT_INFOTONE:
        return ob_result_name(OB_RESULT_INFORMATIONTONE);
    case OB_DETECT_UNKNOWN:
        return ob_result_name(OB_RESULT_UNKNOWN);
    default:
        return "processing";
    }
}
