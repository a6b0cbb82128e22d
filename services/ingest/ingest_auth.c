/*
 * API-key authentication. Keys are random bearer tokens; only their SHA-256
 * is stored, so a database leak does not reveal usable keys. A wrong key and
 * an unknown key get the same answer.
 */
#include "ingest_auth.h"
#include "ingest_cache.h"
#include "ingest_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void ingest_key_hash(const char *key, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(key, strlen(key), md, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Splits "Basic base64(email:key)" into email and key (pool-owned). */
static bool basic_credentials(ob_http_req_t *req, const char *h, char **email, char **key)
{
    const char *b64 = h + 6;
    size_t len = strlen(b64);
    if (len == 0 || len > 1024 || len % 4 != 0)
        return false;
    unsigned char *out = ob_pool_alloc(req->pool, len + 1);
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return false;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    for (const char *p = b64 + len; p > b64 && p[-1] == '='; p--)
        n--;
    out[n] = '\0';
    char *colon = memchr(out, ':', (size_t)n);
    if (!colon || strlen((char *)out) != (size_t)n)
        return false;
    *colon = '\0';
    *email = (char *)out;
    *key = colon + 1;
    return **email && **key;
}

bool ingest_auth(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, char *account_id,
                 char hash[65])
{
    const char *h = ob_http_header(req, "Authorization");
    char *email = NULL, *key = NULL;
    ob_err_t err = {{0}};
    bool found = false;

    /* Bearer keys for the native API; HTTP Basic (account email and key) as
     * Plum's API takes them, so its clients work unchanged. */
    if (h && strncasecmp(h, "Bearer ", 7) == 0 && h[7])
        key = (char *)h + 7;
    else if (!h || strncasecmp(h, "Basic ", 6) != 0 || !basic_credentials(req, h, &email, &key))
        key = NULL;
    if (!key) {
        ob_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"outbound\"");
        ob_http_problem(req, 401, "unauthenticated", NULL,
                        "send your API key as 'Authorization: Bearer <key>' (or HTTP Basic with"
                        " the account email and the key)");
        return false;
    }
    ingest_key_hash(key, hash);
    ingest_key_entry_t hit;
    if (ingest_cache_get(ctx->keys, hash, &hit) && (!email || strcasecmp(email, hit.email) == 0)) {
        snprintf(account_id, 37, "%s", hit.account_id);
        return true;
    }
    if (ingest_store_find_key(conn, hash, email, &hit, &found, &err) != OB_OK) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "cannot check the API key now");
        return false;
    }
    if (!found) {
        ob_http_add_header(req, "WWW-Authenticate",
                           "Bearer realm=\"outbound\", error=\"invalid_token\"");
        ob_http_problem(req, 401, "invalid_api_key", NULL,
                        "the API key is unknown or revoked (or not the email's)");
        return false;
    }
    snprintf(account_id, 37, "%s", hit.account_id);
    ingest_cache_put(ctx->keys, hash, &hit);
    return true;
}

bool ingest_is_admin(const ingest_ctx_t *ctx, ob_http_req_t *req)
{
    const char *admin = ctx->cfg->admin_key;
    const char *h = ob_http_header(req, "Authorization");
    if (!admin[0] || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    size_t n = strlen(admin);
    return strlen(h + 7) == n && CRYPTO_memcmp(h + 7, admin, n) == 0;
}

void ingest_forget_key(ingest_ctx_t *ctx, const char *key_hash)
{
    ingest_cache_drop(ctx->keys, key_hash);
}
