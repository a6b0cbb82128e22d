-- Per-result retry rules and the one definition of concluding an attempt.
--
-- retry_rules maps an unanswered result (busy, noanswer, informationtone,
-- linefailure, unknown) to the seconds to wait before the next attempt, or to
-- "never". A call's own rules come first, then its deployment's, then the
-- call's retry_interval_s. conclude_attempt() is used by the dialer when an
-- attempt ends and by the scheduler when an attempt's lease expired, so the
-- two cannot disagree about what happens next.
ALTER TABLE calls ADD COLUMN retry_rules jsonb NOT NULL DEFAULT '{}';
ALTER TABLE deployments ADD COLUMN retry_rules jsonb NOT NULL DEFAULT '{}';

-- Seconds before the next attempt after p_result; NULL when the rule says never.
CREATE FUNCTION retry_wait_s(p_call_rules jsonb, p_deployment_rules jsonb, p_interval_s int,
                             p_result text)
RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN r IS NULL THEN p_interval_s
                WHEN jsonb_typeof(r) = 'number' THEN (r #>> '{}')::int
                ELSE NULL END
    FROM (SELECT coalesce(p_call_rules -> p_result, p_deployment_rules -> p_result) AS r) x
$$;

-- Ends attempt p_attempt of p_call (dialing or connected) with p_result and
-- p_reason, then completes the call (answered), queues its next attempt by
-- the retry rules, or fails it (reason retry_rule, max_attempts or expired).
-- Returns the call as concluded_call (its new state, status, result, reason
-- and next attempt time, with what its event needs); no row when the attempt
-- was already concluded (a duplicate or a race).
CREATE TYPE concluded_call AS (call_id uuid, deployment_id uuid, account_id uuid, state text,
                               status text, result text, reason text, phone_number text,
                               message_reference text, attempts_made int, max_attempts int,
                               next_attempt_at timestamptz);

CREATE FUNCTION conclude_attempt(p_call uuid, p_attempt int, p_result text, p_reason text,
                                 p_answered boolean, p_ring_ms int, p_talk_ms int)
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
        reason = p_reason, ring_ms = p_ring_ms, talk_ms = p_talk_ms
    WHERE a.call_id = p_call AND a.attempt = p_attempt AND a.state IN ('dialing', 'connected');
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

-- Attempts holding a lease, by when it runs out (the scheduler's lease pass).
CREATE INDEX attempts_leased ON attempts (lease_until)
    WHERE state IN ('released', 'dialing', 'connected');
