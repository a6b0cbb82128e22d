/*
 * Accounts (admin key) and API keys (ingest_accounts.c). Route handlers;
 * each runs on the request's HTTP worker thread.
 */
#ifndef INGEST_ACCOUNTS_H
#define INGEST_ACCOUNTS_H

#include "ingest.h"

/* POST /accounts (admin key): the account and its first key, shown once. */
void ingest_create_account(ingest_call_t *c);
/* POST, GET /api-keys and DELETE /api-keys/{}: the account's own keys. */
void ingest_create_key(ingest_call_t *c);
void ingest_list_keys(ingest_call_t *c);
void ingest_revoke_key(ingest_call_t *c);

#endif
