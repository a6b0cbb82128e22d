-- A cancel also stops the retries of the calls it found in flight.
--
-- A queue cancel (cancel_pending() with no call) ends every pending call
-- accepted up to its time at once, as before; a call that was dialing or
-- connected then could not be ended, and its attempt, once over, used to
-- schedule a retry that was dialed after the cancel (found by the soak at
-- 40 requests/s: dialed-after-cancel). Now the cancel marks such calls
-- (cancel_requested_at), and conclude_attempts() ends a marked call when its
-- attempt ends instead of queueing another: status failed (it was dialed),
-- its last result, reason cancelled. An answered attempt completes as usual
-- (the cancel came too late to matter), and a call whose attempts or expiry
-- were used up anyway keeps that reason. A single-call cancel of a call
-- being dialed does the same (POST /api/v1/calls/{id}:cancel answers 202).
ALTER TABLE calls ADD COLUMN cancel_requested_at timestamptz;

-- One call (p_call) or every call of the deployment accepted up to p_before:
-- the pending ones end now, the ones in flight are marked. Every call
-- concerned is locked first, in call_id order as conclude_attempts() locks
-- them, so that the two never wait for each other in a circle.
CREATE OR REPLACE FUNCTION cancel_pending(p_deployment uuid, p_call uuid, p_before timestamptz)
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT 1 FROM calls c
        WHERE c.deployment_id = p_deployment AND (p_call IS NULL OR c.call_id = p_call)
          AND c.accepted_at <= p_before AND c.state <> 'completed'
        ORDER BY c.call_id FOR UPDATE) locked;
    UPDATE calls SET cancel_requested_at = coalesce(calls.cancel_requested_at, now())
    WHERE calls.call_id IN (
        SELECT c.call_id FROM calls c
        WHERE c.deployment_id = p_deployment AND (p_call IS NULL OR c.call_id = p_call)
          AND c.accepted_at <= p_before AND c.state <> 'completed' AND NOT call_is_pending(c)
        ORDER BY c.call_id FOR UPDATE);
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.deployment_id = p_deployment AND (p_call IS NULL OR c.call_id = p_call)
          AND c.accepted_at <= p_before AND call_is_pending(c)
        ORDER BY c.call_id FOR UPDATE), 'cancelled')
$$;

-- conclude_attempts() as in 017, but a call marked by a cancel is not
-- queued again: it fails with reason cancelled.
CREATE OR REPLACE FUNCTION conclude_attempts(p_ends json)
RETURNS TABLE (i int, call_id uuid, deployment_id uuid, account_id uuid, state text,
               status text, result text, reason text, phone_number text,
               message_reference text, attempts_made int, max_attempts int,
               next_attempt_at timestamptz)
LANGUAGE sql AS $$
    WITH e AS (
        SELECT * FROM json_to_recordset(p_ends) AS e(i int, call_id uuid, attempt int,
            result text, reason text, answered boolean, ring_ms int, talk_ms int,
            decision_ms int)),
    -- The calls first, locked in call_id order as cancel_pending() locks them.
    -- The guards are wrapped in IS TRUE so that rows are found by primary
    -- key: a bare active_attempt = ... lets the planner pick a partial index
    -- of the calls in flight, which statistics taken while nothing was in
    -- flight call empty, and read it whole for every batch.
    c AS (
        SELECT c.*, e.i AS e_i, e.attempt AS e_attempt, e.result AS e_result,
            e.reason AS e_reason, e.answered AS e_answered, e.ring_ms AS e_ring_ms,
            e.talk_ms AS e_talk_ms, e.decision_ms AS e_decision_ms
        FROM calls c JOIN e ON c.call_id = e.call_id
        WHERE (c.active_attempt = e.attempt) IS TRUE
        ORDER BY c.call_id FOR UPDATE OF c),
    a AS (
        UPDATE attempts a SET state = 'ended', ended_at = now(), result = c.e_result,
            reason = c.e_reason, ring_ms = c.e_ring_ms, talk_ms = c.e_talk_ms,
            decision_ms = c.e_decision_ms
        FROM c
        WHERE a.call_id = c.call_id AND a.attempt = c.e_attempt
          AND (a.state IN ('dialing', 'connected')
               OR (a.state = 'released' AND c.e_result = 'noattempt')) IS TRUE
        RETURNING c.*),
    -- From a alone: the planner sees one row in each CTE, so a join of c and
    -- a would be a quadratic nested loop.
    w AS (
        SELECT a.*, CASE WHEN a.e_answered THEN NULL
                         ELSE retry_wait_s(a.retry_rules, d.retry_rules, a.retry_interval_s,
                                           a.e_result) END AS wait_s
        FROM a JOIN deployments d ON d.deployment_id = a.deployment_id),
    o AS (
        SELECT w.*, now() + make_interval(secs => coalesce(w.wait_s, 0)) AS next_at,
            CASE WHEN w.e_answered THEN 'completed'
                 WHEN w.wait_s IS NOT NULL AND w.attempts_made < w.max_attempts
                      AND (w.expires_at IS NULL
                           OR now() + make_interval(secs => w.wait_s) < w.expires_at)
                      AND w.cancel_requested_at IS NULL
                 THEN 'queued'
                 ELSE 'failed' END AS outcome,
            CASE WHEN w.attempts_made >= w.max_attempts THEN 'max_attempts'
                 WHEN w.wait_s IS NULL THEN 'retry_rule'
                 WHEN w.expires_at IS NOT NULL
                      AND now() + make_interval(secs => w.wait_s) >= w.expires_at
                 THEN 'expired'
                 ELSE 'cancelled' END AS failed_reason,
            -- A call none of whose attempts was dialed ends uncalled, not
            -- failed (as end_pending_calls() decides for pending calls).
            w.e_result <> 'noattempt' OR EXISTS (
                SELECT 1 FROM attempts p WHERE p.call_id = w.call_id
                AND p.dialing_at IS NOT NULL) AS dialed
        FROM w),
    u AS (
        UPDATE calls SET
            state = CASE WHEN o.outcome = 'queued' THEN 'queued' ELSE 'completed' END,
            status = CASE WHEN o.outcome = 'queued' THEN calls.status
                          WHEN o.outcome = 'failed' AND NOT o.dialed THEN 'uncalled'
                          ELSE o.outcome END,
            result = o.e_result,
            reason = CASE o.outcome WHEN 'completed' THEN o.e_reason
                                    WHEN 'failed' THEN o.failed_reason
                                    ELSE calls.reason END,
            active_attempt = NULL,
            next_attempt_at = CASE WHEN o.outcome = 'queued' THEN o.next_at
                                   ELSE calls.next_attempt_at END,
            completed_at = CASE WHEN o.outcome = 'queued' THEN calls.completed_at ELSE now() END,
            updated_at = now()
        FROM o WHERE calls.call_id = o.call_id
        RETURNING o.e_i, calls.call_id, calls.deployment_id, calls.account_id, calls.state,
            CASE WHEN o.outcome = 'queued' THEN NULL ELSE calls.status END AS status,
            o.e_result,
            CASE o.outcome WHEN 'failed' THEN o.failed_reason ELSE o.e_reason END AS reason,
            calls.phone_number, calls.message_reference, o.attempts_made, o.max_attempts,
            CASE WHEN o.outcome = 'queued' THEN o.next_at END AS next_attempt_at)
    SELECT * FROM u
$$;
