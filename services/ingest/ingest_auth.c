/*
 * API-key authentication. Keys are random bearer tokens; only their SHA-256
 * is stored, so a database leak does not reveal usable keys. A wrong key and
 * an unknown key get the same answer.
 */
#include "ingest.h"

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

bool ingest_auth(ingest_ctx_t *ctx, ob_http_req_t *req, PGconn *conn, char *account_id)
{
    const char *h = ob_http_header(req, "Authorization");
    char hash[65] = {0};
    PGresult *res = NULL;
    ob_err_t err = {{0}};
    (void)ctx;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        ob_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"outbound\"");
        ob_http_problem(req, 401, "unauthenticated", NULL,
                        "send your API key as 'Authorization: Bearer <key>'");
        return false;
    }
    ingest_key_hash(h + 7, hash);
    const char *params[] = {hash};
    ob_rc_t rc = ob_pg_exec(
        conn, "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", 1,
        params, &res, &err);
    if (rc != OB_OK) {
        ob_http_add_header(req, "Retry-After", "1");
        ob_http_problem(req, 503, "database_unavailable", NULL, "cannot check the API key now");
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        ob_http_add_header(req, "WWW-Authenticate",
                           "Bearer realm=\"outbound\", error=\"invalid_token\"");
        ob_http_problem(req, 401, "invalid_api_key", NULL, "the API key is unknown or revoked");
        return false;
    }
    snprintf(account_id, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return true;
}
