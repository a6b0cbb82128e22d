/*
 * Accounts and API keys. Keys are 160 random bits shown once, at creation;
 * only their SHA-256 is stored. Creating an account needs the bootstrap admin
 * key from configuration (OB_INGEST_ADMIN_KEY); everything else is done by an
 * account's own keys.
 */
#include "ingest_accounts.h"
#include "ingest_auth.h"
#include "ingest_reply.h"
#include "ingest_store.h"
#include "ob_log.h"
#include "ob_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_PREFIX_LEN 12

/* Writes a new key "obk_" + 40 hex digits into out (45 bytes). */
static void new_key(char out[45])
{
    uint8_t rnd[20];
    ob_random_bytes(rnd, sizeof(rnd));
    memcpy(out, "obk_", 4);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", rnd[i]);
}

/* A new key for the account (pool strings): key gets the plaintext, shown
 * once; the row holds its hash. */
static ingest_store_key_t make_key(ob_pool_t *pool, const char *account_id, const char *label,
                                   char key[45], char key_id[OB_UUID_STRLEN + 1])
{
    char *hash = ob_pool_alloc(pool, 65);
    new_key(key);
    ob_uuid_v7(key_id);
    ingest_key_hash(key, hash);
    return (ingest_store_key_t){
        .key_id = key_id,
        .account_id = account_id,
        .key_hash = hash,
        .prefix = ob_pool_printf(pool, "%.*s", KEY_PREFIX_LEN, key),
        .label = label ? label : "",
    };
}

static cJSON *key_json(const char *key_id, const char *key, const char *label)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "key_id", key_id);
    char prefix[KEY_PREFIX_LEN + 1];
    snprintf(prefix, sizeof(prefix), "%s", key);
    cJSON_AddStringToObject(k, "key", key);
    cJSON_AddStringToObject(k, "prefix", prefix);
    cJSON_AddStringToObject(k, "label", label ? label : "");
    cJSON_AddStringToObject(k, "detail", "store the key now: it is not shown again");
    return k;
}

/* Parses an optional string member of at most max bytes; false with the
 * problem set when it is present but wrong. */
static bool optional_text(ob_http_req_t *req, const cJSON *body, const char *name, size_t max,
                          bool required, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, name);
    *out = NULL;
    if (!item && !required)
        return true;
    if (!cJSON_IsString(item) || strlen(item->valuestring) > max ||
        (required && !item->valuestring[0])) {
        cJSON *errors = cJSON_CreateArray();
        ingest_add_error(errors, name, required && !item ? "required" : "invalid_value",
                         ob_pool_printf(req->pool, "%s must be a string of at most %zu bytes%s",
                                        name, max, required ? " (required)" : ""));
        ob_http_problem(req, 422, "validation_failed", errors, "invalid %s", name);
        return false;
    }
    *out = ob_pool_strdup(req->pool, item->valuestring);
    return true;
}

void ingest_create_account(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    cJSON *body = ingest_object_body(req, true);
    const char *email = NULL, *name = NULL;
    char account_id[OB_UUID_STRLEN + 1], key_id[OB_UUID_STRLEN + 1], key[45];
    ob_err_t err = {{0}};
    ob_rc_t rc;

    if (!body || !optional_text(req, body, "email", 320, true, &email) ||
        !optional_text(req, body, "name", 200, false, &name))
        goto out;
    if (!strchr(email, '@')) {
        ob_http_problem(req, 422, "validation_failed", NULL, "email must be an email address");
        goto out;
    }
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(body, "capacity");
    char capacity[16] = "";
    if (cap && !cJSON_IsNull(cap)) {
        if (!cJSON_IsNumber(cap) || cap->valuedouble != (double)(long)cap->valuedouble ||
            cap->valuedouble < 1 || cap->valuedouble > 1000000) {
            ob_http_problem(req, 422, "validation_failed", NULL,
                            "capacity (the account's concurrent calls) must be an integer from 1"
                            " to 1000000, or null for no account-wide limit");
            goto out;
        }
        snprintf(capacity, sizeof(capacity), "%ld", (long)cap->valuedouble);
    }
    ob_uuid_v7(account_id);
    ingest_store_key_t first = make_key(req->pool, account_id, "first key", key, key_id);
    rc = ingest_store_create_account(c->conn, account_id, email, name ? name : email,
                                     capacity[0] ? capacity : NULL, &first, &err);
    if (rc != OB_OK) {
        if (rc == OB_ECONFLICT)
            ob_http_problem(req, 409, "account_exists", NULL, "an account with this email exists");
        else
            ingest_database_problem(req, &err);
        goto out;
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "account_id", account_id);
    cJSON_AddStringToObject(ans, "email", email);
    cJSON_AddStringToObject(ans, "name", name ? name : email);
    if (capacity[0])
        cJSON_AddNumberToObject(ans, "capacity", atol(capacity));
    else
        cJSON_AddNullToObject(ans, "capacity");
    cJSON_AddItemToObject(ans, "api_key", key_json(key_id, key, "first key"));
    ob_http_reply_json(req, 201, ans);
    cJSON_Delete(ans);
    OB_LOG(OB_LOG_INFO, "api", OB_KV("req_id", req->req_id), "account %s created", account_id);
out:
    cJSON_Delete(body);
}

void ingest_create_key(ingest_call_t *c)
{
    ob_http_req_t *req = c->req;
    cJSON *body = ingest_object_body(req, true);
    const char *label = NULL;
    char key_id[OB_UUID_STRLEN + 1], key[45];
    ob_err_t err = {{0}};
    if (!body || !optional_text(req, body, "label", 200, false, &label))
        goto out;
    ingest_store_key_t k = make_key(req->pool, c->account_id, label, key, key_id);
    if (ingest_store_insert_key(c->conn, &k, &err) != OB_OK) {
        ingest_database_problem(req, &err);
        goto out;
    }
    cJSON *ans = key_json(key_id, key, label);
    ob_http_reply_json(req, 201, ans);
    cJSON_Delete(ans);
out:
    cJSON_Delete(body);
}

void ingest_list_keys(ingest_call_t *c)
{
    char *body = NULL;
    ob_err_t err = {{0}};
    if (ingest_store_list_keys(c->conn, c->req->pool, c->account_id, &body, &err) != OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    ob_http_reply(c->req, 200, "application/json", body, strlen(body));
}

void ingest_revoke_key(ingest_call_t *c)
{
    char *hash = NULL;
    ob_err_t err = {{0}};
    if (!ob_uuid_valid(c->param[0])) {
        ob_http_problem(c->req, 404, "api_key_not_found", NULL, "no API key %s", c->param[0]);
        return;
    }
    if (ingest_store_revoke_key(c->conn, c->req->pool, c->param[0], c->account_id, &hash, &err) !=
        OB_OK) {
        ingest_database_problem(c->req, &err);
        return;
    }
    if (hash)
        ingest_forget_key(c->ctx, hash);
    if (!hash)
        ob_http_problem(c->req, 404, "api_key_not_found", NULL, "no API key %s", c->param[0]);
    else
        ob_http_reply(c->req, 204, "application/json", "", 0);
}
