-- Webhook helpers. Defined here once, replaced on start-up whenever this
-- file changed.

-- The HMAC-SHA256 key of a deployment's webhooks: 64 hex characters from
-- two random UUIDs (gen_random_uuid is built in; pgcrypto may not be
-- installed on the user's cluster).
CREATE OR REPLACE FUNCTION new_webhook_secret() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
$$;
