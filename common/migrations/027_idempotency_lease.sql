-- An Idempotency-Key's claim is a lease (services/ingest/ingest_idempotency.c):
-- the ingest handling the first request renews claimed_until every second
-- while the request is in progress. A claim whose ingest died (SIGKILL,
-- crash, lost host) is no longer renewed, and a retry with the same key
-- takes it over once claimed_until has passed, instead of being told
-- "in progress" forever. Rows claimed before this column existed count as
-- leased for 30 s from their first use.
ALTER TABLE idempotency_keys ADD COLUMN claimed_until timestamptz;
