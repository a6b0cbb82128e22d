-- Callee-type decision time, and attempts that were never tried.
--
-- decision_ms: how long after the answer the callee type (voice,
-- answeringmachine, fax, unknown) was decided; NULL for unanswered attempts.
ALTER TABLE attempts ADD COLUMN decision_ms int;

-- conclude_attempt() as in 005, with the attempt's decision_ms (NULL when
-- none), and it also ends a released attempt the dialer never tried (result
-- noattempt: its deployment's start_url or result_url did not answer 200
-- when it asked first).
DROP FUNCTION conclude_attempt(uuid, int, text, text, boolean, int, int);
CREATE FUNCTION conclude_attempt(p_call uuid, p_attempt int, p_result text, p_reason text,
                                 p_answered boolean, p_ring_ms int, p_talk_ms int,
                                 p_decision_ms int)
RETURNS SETOF concluded_call LANGUAGE plpgsql AS $$
DECLARE
    c calls;
    wait_s int;
    next_at timestamptz;
    final_reason text;
BEGIN
    SELECT * INTO c FROM calls WHERE call_id = p_call AND active_attempt = p_attempt FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE attempts a SET state = 'ended', ended_at = now(), result = p_result,
        reason = p_reason, ring_ms = p_ring_ms, talk_ms = p_talk_ms, decision_ms = p_decision_ms
    WHERE a.call_id = p_call AND a.attempt = p_attempt
      AND (a.state IN ('dialing', 'connected') OR (a.state = 'released' AND p_result = 'noattempt'));
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_answered THEN
        UPDATE calls SET state = 'completed', status = 'completed', result = p_result,
            reason = p_reason, active_attempt = NULL, completed_at = now(), updated_at = now()
        WHERE call_id = p_call;
        RETURN QUERY SELECT c.call_id, c.deployment_id, c.account_id, 'completed'::text,
            'completed'::text, p_result, p_reason, c.phone_number, c.message_reference,
            c.attempts_made, c.max_attempts, NULL::timestamptz;
        RETURN;
    END IF;
    wait_s := retry_wait_s(c.retry_rules,
                           (SELECT d.retry_rules FROM deployments d
                            WHERE d.deployment_id = c.deployment_id),
                           c.retry_interval_s, p_result);
    next_at := now() + make_interval(secs => coalesce(wait_s, 0));
    IF wait_s IS NOT NULL AND c.attempts_made < c.max_attempts
       AND (c.expires_at IS NULL OR next_at < c.expires_at) THEN
        UPDATE calls SET state = 'queued', result = p_result, active_attempt = NULL,
            next_attempt_at = next_at, updated_at = now()
        WHERE call_id = p_call;
        RETURN QUERY SELECT c.call_id, c.deployment_id, c.account_id, 'queued'::text, NULL::text,
            p_result, p_reason, c.phone_number, c.message_reference, c.attempts_made,
            c.max_attempts, next_at;
        RETURN;
    END IF;
    final_reason := CASE WHEN c.attempts_made >= c.max_attempts THEN 'max_attempts'
                         WHEN wait_s IS NULL THEN 'retry_rule'
                         ELSE 'expired' END;
    UPDATE calls SET state = 'completed', status = 'failed', result = p_result,
        reason = final_reason, active_attempt = NULL, completed_at = now(), updated_at = now()
    WHERE call_id = p_call;
    RETURN QUERY SELECT c.call_id, c.deployment_id, c.account_id, 'completed'::text,
        'failed'::text, p_result, final_reason, c.phone_number, c.message_reference,
        c.attempts_made, c.max_attempts, NULL::timestamptz;
END
$$;

-- call_view() as in 015, with each attempt's decision_ms.
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
        'decision_ms', a.decision_ms) ORDER BY a.attempt)
        FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),
    'events', coalesce((SELECT json_agg(json_build_object(
        'id', e.event_id, 'type', e.type, 'time', e.occurred_at, 'data', e.data)
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;
