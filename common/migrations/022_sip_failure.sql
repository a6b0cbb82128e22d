-- The SIP outcome of an attempt placed through the sip carrier: the final
-- response's status code and reason phrase (486 "Busy Here"), or NULL code
-- with a reason when no response decided it (a transport error, no answer
-- from the trunk, our CANCEL at the ring timeout). NULL for sim attempts.
-- Written by the dialer in the transaction that concludes the attempt.
ALTER TABLE attempts ADD COLUMN sip_code int, ADD COLUMN sip_reason text;

-- The sip trunk's calls-per-second limit, announced by each dialer beside
-- its channels (NULL: no limit, as for the sim carrier).
ALTER TABLE dialers ADD COLUMN calls_per_second float8;

-- call_view() as in 017, with each attempt's sip_code and sip_reason.
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
        'sip_reason', a.sip_reason) ORDER BY a.attempt)
        FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),
    'events', coalesce((SELECT json_agg(json_build_object(
        'id', e.event_id, 'type', e.type, 'time', e.occurred_at, 'data', e.data)
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;
