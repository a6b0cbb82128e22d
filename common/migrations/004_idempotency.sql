-- Idempotency keys: the first answer to a request carrying an Idempotency-Key
-- is kept, so a client that retries gets it again and nothing is queued twice.
CREATE TABLE idempotency_keys (
    account_id    uuid NOT NULL REFERENCES accounts,
    key           text NOT NULL,
    route         text NOT NULL,            -- method and path it was used on
    request_hash  text,                     -- SHA-256 of the body, when known up front
    status_code   int,                      -- NULL while the first request is in progress
    response      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
