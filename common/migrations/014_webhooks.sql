-- result_url webhooks. The dialers' webhook sender turns each
-- outbound.call.completed event into one delivery (event_id is the dedup
-- key, so a replayed event changes nothing), whose payload is built once,
-- so every retry sends the same bytes. Deliveries are due when
-- next_attempt_at has come; a sender claims one by pushing next_attempt_at
-- past its transfer timeout (a lease), so several dialers share the work and
-- a dead one's claims come due again by themselves.

-- The HMAC-SHA256 key of a deployment's webhooks: 64 hex characters from
-- two random UUIDs (gen_random_uuid is built in; pgcrypto may not be
-- installed on the user's cluster).
CREATE FUNCTION new_webhook_secret() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
$$;
ALTER TABLE deployments ADD COLUMN webhook_secret text NOT NULL DEFAULT new_webhook_secret();

-- The call details of GET /api/v1/calls/{id}, for webhook payloads.
CREATE FUNCTION call_view(p_call uuid) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'call_id', c.call_id, 'deployment_id', c.deployment_id, 'state', c.state,
    'status', c.status, 'result', c.result, 'reason', c.reason,
    'phone_number', c.phone_number, 'caller_id', c.caller_id, 'post_dial', c.post_dial,
    'message_reference', c.message_reference, 'call_parameters', c.call_parameters,
    'priority', c.priority, 'max_attempts', c.max_attempts,
    'retry_interval_s', c.retry_interval_s, 'retry_rules', c.retry_rules,
    'attempts_made', c.attempts_made,
    'accepted_at', c.accepted_at, 'not_before', c.not_before, 'expires_at', c.expires_at,
    'next_attempt_at', CASE WHEN c.state = 'completed' THEN NULL ELSE c.next_attempt_at END,
    'waiting_for', wait_reason(c, (SELECT d.paused FROM deployments d
        WHERE d.deployment_id = c.deployment_id), now()),
    'updated_at', c.updated_at, 'completed_at', c.completed_at,
    'duration_s', (SELECT round(sum(a.talk_ms) / 1000.0, 3)::float8 FROM attempts a
        WHERE a.call_id = c.call_id),
    'attempts', coalesce((SELECT json_agg(json_build_object(
        'attempt', a.attempt, 'state', a.state, 'result', a.result, 'reason', a.reason,
        'released_at', a.released_at, 'dialing_at', a.dialing_at,
        'connected_at', a.connected_at, 'ended_at', a.ended_at,
        'ring_ms', a.ring_ms, 'talk_ms', a.talk_ms) ORDER BY a.attempt)
        FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),
    'events', coalesce((SELECT json_agg(json_build_object(
        'id', e.event_id, 'type', e.type, 'time', e.occurred_at, 'data', e.data)
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;

-- state: pending (due at next_attempt_at) -> delivered (a 2xx answer) or
-- failed (no 2xx before created_at + the sender's maximum age).
CREATE TABLE webhook_deliveries (
    delivery_id     uuid PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,       -- the completed event: dedup key
    call_id         uuid NOT NULL REFERENCES calls,
    deployment_id   uuid NOT NULL,
    account_id      uuid NOT NULL,
    url             text NOT NULL,              -- the call's result_url, else its deployment's
    body            text NOT NULL,              -- the payload, sent byte for byte on every try
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        int  NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),  -- due time, or a sender's claim
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_status     int,                        -- HTTP status of the last try (NULL: none)
    last_error      text                        -- why the last try failed
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_call ON webhook_deliveries (call_id);
CREATE INDEX webhook_deliveries_deployment ON webhook_deliveries (deployment_id, delivery_id DESC);

-- One row per try, the delivery log of the API.
CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries,
    attempt     int  NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms int  NOT NULL,
    http_status int,                            -- NULL when no answer came
    error       text,                           -- NULL when it succeeded
    PRIMARY KEY (delivery_id, attempt)
);
