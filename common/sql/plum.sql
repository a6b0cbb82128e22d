-- Plum's view of a call (the Plum-compatible routes and result_url bodies
-- of Plum-queued calls; docs/plum.md). Defined here once, replaced on
-- start-up whenever this file changed.

-- Plum's status of a call: its state until it is over, then how it ended:
-- completed (answered), canceled, rejected (refused without dialing by a
-- do-not-call list) or failed (unanswered, expired, out of its window).
CREATE OR REPLACE FUNCTION plum_status(p_state text, p_status text, p_reason text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN p_state IS DISTINCT FROM 'completed' THEN p_state
            WHEN p_status = 'completed' THEN 'completed'
            WHEN p_reason = 'cancelled' THEN 'canceled'
            WHEN p_reason IN ('dnc', 'suppressed') THEN 'rejected'
            ELSE 'failed' END
$$;

-- Plum's name for one event of a call: queued, dialing, connected; an
-- attempt that ended unanswered and will be retried is failed; the last
-- event is disconnected (it was answered) or the call's Plum status.
CREATE OR REPLACE FUNCTION plum_event(p_type text, p_data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE p_type
    WHEN 'outbound.call.queued' THEN 'queued'
    WHEN 'outbound.call.dialing' THEN 'dialing'
    WHEN 'outbound.call.connected' THEN 'connected'
    WHEN 'outbound.call.retry_scheduled' THEN 'failed'
    WHEN 'outbound.call.completed' THEN
        CASE WHEN p_data->>'status' = 'completed' THEN 'disconnected'
             ELSE plum_status('completed', p_data->>'status', p_data->>'reason') END
    ELSE substr(p_type, length('outbound.call.') + 1) END
$$;

-- Plum's call_details of a call: what GET /api/outbound/{call_id} answers
-- (under "call_details") and what a Plum-queued call's result_url receives,
-- from this one definition. Times are unix seconds, counts are numbers;
-- end_timestamp is null when the call has none. call_id, phone_number,
-- message_reference, call_parameters, completed_timestamp, state, result
-- and reason are ours, beside Plum's members.
CREATE OR REPLACE FUNCTION plum_call_details(p_call uuid) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'call_id', c.call_id,
    'status', plum_status(c.state, c.status, c.reason),
    'phone_number', c.phone_number,
    'message_reference', c.message_reference,
    'call_parameters', c.call_parameters,
    'attempts', c.attempts_made,
    'max_attempts', c.max_attempts,
    'reattempt_wait', c.retry_interval_s,
    'queued_timestamp', extract(epoch FROM c.accepted_at)::bigint,
    'last_attempt_timestamp', (SELECT extract(epoch FROM max(a.dialing_at))::bigint
        FROM attempts a WHERE a.call_id = c.call_id),
    'start_timestamp', extract(epoch FROM c.not_before)::bigint,
    'end_timestamp', extract(epoch FROM c.expires_at)::bigint,
    'completed_timestamp', extract(epoch FROM c.completed_at)::bigint,
    'duration', coalesce((SELECT round(sum(a.talk_ms) / 1000.0)::int FROM attempts a
        WHERE a.call_id = c.call_id), 0),
    'state', c.state, 'result', c.result, 'reason', c.reason,
    'events', coalesce((SELECT json_agg(json_build_object(
        'event', plum_event(e.type, e.data),
        'timestamp', extract(epoch FROM e.occurred_at)::bigint,
        'attempt', (e.data->>'attempt')::int, 'result', e.data->>'result')
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;
