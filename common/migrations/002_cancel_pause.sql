-- Cancelling, expiring and pausing.
--
-- end_pending_calls() is the one definition of ending calls that have not
-- started dialing: a released attempt whose job no dialer took yet is ended as
-- noattempt (the dialer that receives the job then refuses it), and the call
-- completes as uncalled/noattempt, or as failed with its last result if an
-- earlier attempt was dialed. Callers lock the calls first; calls that started
-- dialing in the meantime are left alone.
ALTER TABLE deployments ADD COLUMN paused boolean NOT NULL DEFAULT false;

-- What every function that ends calls returns, one row per call ended.
CREATE TYPE ended_call AS (call_id uuid, deployment_id uuid, account_id uuid, status text,
                           result text, phone_number text, message_reference text,
                           attempts_made int, max_attempts int);

CREATE FUNCTION end_pending_calls(p_calls uuid[], p_reason text)
RETURNS SETOF ended_call LANGUAGE sql AS $$
    WITH ended AS (
        UPDATE attempts a SET state = 'ended', ended_at = now(), result = 'noattempt',
            reason = p_reason
        WHERE a.call_id = ANY(p_calls) AND a.state = 'released'
        RETURNING a.call_id),
    dialed AS (
        SELECT DISTINCT a.call_id FROM attempts a
        WHERE a.call_id = ANY(p_calls) AND a.dialing_at IS NOT NULL)
    UPDATE calls c SET state = 'completed',
        status = CASE WHEN c.call_id IN (SELECT d.call_id FROM dialed d) THEN 'failed' ELSE 'uncalled' END,
        result = CASE WHEN c.call_id IN (SELECT d.call_id FROM dialed d) THEN c.result ELSE 'noattempt' END,
        reason = p_reason, active_attempt = NULL, completed_at = now(), updated_at = now()
    WHERE c.call_id = ANY(p_calls) AND c.state = 'queued'
    RETURNING c.call_id, c.deployment_id, c.account_id, c.status, c.result, c.phone_number,
              c.message_reference, c.attempts_made, c.max_attempts
$$;

-- A call is pending while queued with no attempt, or with one not yet taken.
CREATE FUNCTION call_is_pending(c calls) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT c.state = 'queued' AND (c.active_attempt IS NULL OR EXISTS (
        SELECT 1 FROM attempts a WHERE a.call_id = c.call_id
        AND a.attempt = c.active_attempt AND a.state = 'released'))
$$;

-- One call (p_call) or every call of the deployment accepted up to p_before.
CREATE FUNCTION cancel_pending(p_deployment uuid, p_call uuid, p_before timestamptz)
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.deployment_id = p_deployment AND (p_call IS NULL OR c.call_id = p_call)
          AND c.accepted_at <= p_before AND call_is_pending(c)
        ORDER BY c.call_id FOR UPDATE), 'cancelled')
$$;

-- Calls of the given call-requests partitions whose expiry has come.
CREATE FUNCTION expire_pending(p_partitions int[])
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.request_partition = ANY(p_partitions) AND c.state = 'queued'
          AND c.expires_at <= now() AND call_is_pending(c)
        ORDER BY c.call_id LIMIT 10000 FOR UPDATE SKIP LOCKED), 'expired')
$$;
