-- Callee-type detection from call audio (common/ob_detect.c): how sure the
-- detector was (0-1), which rule decided ("long_greeting", "cng", ...),
-- and whether the beep that ends a machine's greeting was heard, and when
-- (ms after the answer). NULL when no detector listened (the sim carrier).
ALTER TABLE attempts ADD COLUMN confidence float8, ADD COLUMN decided_by text,
    ADD COLUMN beep boolean, ADD COLUMN beep_ms int;

-- A deployment's detection thresholds (ob_detect_config_t's names, in ms);
-- NULL or a missing member: the default.
ALTER TABLE deployments ADD COLUMN detection jsonb;

-- call_view() as in 022, with each attempt's detection.
CREATE OR REPLACE FUNCTION call_view(p_call uuid) RETURNS json LANGUAGE sql STABLE AS $$
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
        'ring_ms', a.ring_ms, 'talk_ms', a.talk_ms, 'app_status', a.app_status,
        'app_error', a.app_error, 'app_ms', a.app_ms,
        'decision_ms', a.decision_ms, 'sip_code', a.sip_code,
        'sip_reason', a.sip_reason, 'confidence', a.confidence,
        'decided_by', a.decided_by, 'beep', a.beep, 'beep_ms', a.beep_ms)
        ORDER BY a.attempt)
        FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),
    'events', coalesce((SELECT json_agg(json_build_object(
        'id', e.event_id, 'type', e.type, 'time', e.occurred_at, 'data', e.data)
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;

-- dial_jobs as in 007, with the deployment's detection thresholds.
CREATE OR REPLACE VIEW dial_jobs AS
SELECT a.job_id, a.call_id, a.deployment_id, c.account_id, a.attempt, c.phone_number,
       c.caller_id, c.post_dial, c.message_reference, c.call_parameters::text AS call_parameters,
       c.max_attempts, c.retry_interval_s,
       (extract(epoch FROM a.lease_until) * 1000)::bigint AS lease_until_ms,
       coalesce(d.start_url, ap.start_url) AS start_url,
       c.request_partition, a.state, a.released_at, a.job_published_at, a.job_partition,
       d.detection::text AS detection
FROM attempts a
JOIN calls c USING (call_id)
JOIN deployments d ON d.deployment_id = a.deployment_id
JOIN applications ap ON ap.application_id = d.application_id;
