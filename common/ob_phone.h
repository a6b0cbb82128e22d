/*
 * Phone number normalisation to E.164. Accepts the forms clients send
 * (tel: URIs, spaces, dots, dashes, parentheses, a leading 00 or +) and the
 * Plum parameters ;ani= (caller id) and ;postd= (post-dial digits).
 */
#ifndef OB_PHONE_H
#define OB_PHONE_H

#include "ob_common.h"

#define OB_PHONE_MAX 64

typedef struct {
    char e164[OB_PHONE_MAX];      /* "+15550100" */
    char caller_id[OB_PHONE_MAX]; /* from ;ani=, "" if absent */
    char post_dial[OB_PHONE_MAX]; /* from ;postd=, "" if absent */
} ob_phone_t;

/* Parses input; on OB_EINVAL err says what is wrong with the number. */
ob_rc_t ob_phone_parse(const char *input, ob_phone_t *out, ob_err_t *err) OB_MUSTCHECK;

#endif
