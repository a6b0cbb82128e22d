-- The functions over calls and attempts: ending, cancelling, expiring and
-- concluding them, and how they are shown. Each is defined here once, and
-- replaced on start-up whenever this file changed (ob_pg_migrate; schema
-- changes stay in common/migrations).

-- A call is pending while queued with no attempt, or with one not yet taken.
CREATE OR REPLACE FUNCTION call_is_pending(c calls) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT c.state = 'queued' AND (c.active_attempt IS NULL OR EXISTS (
        SELECT 1 FROM attempts a WHERE a.call_id = c.call_id
        AND a.attempt = c.active_attempt AND a.state = 'released'))
$$;

-- The one definition of ending calls that have not started dialing: a
-- released attempt whose job no dialer took yet is ended as noattempt (the
-- dialer that receives the job then refuses it), and the call completes as
-- uncalled/noattempt, or as failed with its last result if an earlier
-- attempt was dialed. Callers lock the calls first; calls that started
-- dialing in the meantime are left alone.
CREATE OR REPLACE FUNCTION end_pending_calls(p_calls uuid[], p_reason text)
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

-- One call (p_call) or every call of the deployment accepted up to
-- p_before: the pending ones end now (cancelled), the ones in flight are
-- marked (cancel_requested_at) so that conclude_attempts() ends them instead
-- of queueing a retry. Every call concerned is locked first, in call_id
-- order as conclude_attempts() locks them, so that the two never wait for
-- each other in a circle.
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

-- Calls of the given call-requests partitions whose expiry has come by
-- p_now, at most 10,000 a call, skipping those another transaction holds.
CREATE OR REPLACE FUNCTION expire_pending(p_partitions int[], p_now timestamptz)
RETURNS SETOF ended_call LANGUAGE plpgsql AS $$
DECLARE
    expired uuid[];
BEGIN
    expired := ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.request_partition = ANY(p_partitions) AND c.state = 'queued'
          AND c.expires_at <= p_now AND call_is_pending(c)
        ORDER BY c.call_id LIMIT 10000 FOR UPDATE SKIP LOCKED);
    IF cardinality(expired) > 0 THEN
        RETURN QUERY SELECT * FROM end_pending_calls(expired, 'expired');
    END IF;
END
$$;

-- Ends the given calls, still pending, because no window opens for them
-- before their expiry (or within a year).
CREATE OR REPLACE FUNCTION end_window_closed(p_calls uuid[])
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.call_id = ANY(p_calls) AND c.state = 'queued' AND c.active_attempt IS NULL
        ORDER BY c.call_id FOR UPDATE), 'window_closed')
$$;

-- Seconds before the next attempt after p_result; NULL when the rule says never.
CREATE OR REPLACE FUNCTION retry_wait_s(p_call_rules jsonb, p_deployment_rules jsonb, p_interval_s int,
                             p_result text)
RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN r IS NULL THEN p_interval_s
                WHEN jsonb_typeof(r) = 'number' THEN (r #>> '{}')::int
                ELSE NULL END
    FROM (SELECT coalesce(p_call_rules -> p_result, p_deployment_rules -> p_result) AS r) x
$$;

-- Concludes a batch of attempts in one statement, as the dialers write
-- their transitions. Each element of p_ends: {i, call_id, attempt, result,
-- reason, answered, ring_ms, talk_ms, decision_ms, connected}; connected
-- true writes a dialing attempt's connected_at with its end (the dialer's
-- connected transition, when the call ended before it was written: one
-- update of each row instead of two). An answered attempt
-- completes the call; an unanswered one queues the next attempt after
-- retry_wait_s() when attempts and the expiry allow and no cancel marked the
-- call, else fails the call (reason max_attempts, retry_rule, expired or
-- cancelled). A released attempt the dialer never tried can end with result
-- noattempt; a call that fails without any attempt dialed is uncalled, not
-- failed. Returns one row per attempt concluded, with its index i; an
-- attempt already concluded (a duplicate or a race) returns none.
CREATE OR REPLACE FUNCTION conclude_attempts(p_ends json)
RETURNS TABLE (i int, call_id uuid, deployment_id uuid, account_id uuid, state text,
               status text, result text, reason text, phone_number text,
               message_reference text, attempts_made int, max_attempts int,
               next_attempt_at timestamptz)
LANGUAGE sql AS $$
    WITH e AS (
        SELECT * FROM json_to_recordset(p_ends) AS e(i int, call_id uuid, attempt int,
            result text, reason text, answered boolean, ring_ms int, talk_ms int,
            decision_ms int, connected boolean)),
    -- The calls first, locked in call_id order as cancel_pending() locks them.
    -- The guards are wrapped in IS TRUE so that rows are found by primary
    -- key: a bare active_attempt = ... lets the planner pick a partial index
    -- of the calls in flight, which statistics taken while nothing was in
    -- flight call empty, and read it whole for every batch.
    c AS (
        SELECT c.*, e.i AS e_i, e.attempt AS e_attempt, e.result AS e_result,
            e.reason AS e_reason, e.answered AS e_answered, e.ring_ms AS e_ring_ms,
            e.talk_ms AS e_talk_ms, e.decision_ms AS e_decision_ms, e.connected AS e_connected
        FROM calls c JOIN e ON c.call_id = e.call_id
        WHERE (c.active_attempt = e.attempt) IS TRUE
        ORDER BY c.call_id FOR UPDATE OF c),
    a AS (
        UPDATE attempts a SET state = 'ended', ended_at = now(), result = c.e_result,
            connected_at = CASE WHEN c.e_connected IS TRUE THEN coalesce(a.connected_at, now())
                                ELSE a.connected_at END,
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

-- conclude_attempts() for one attempt, so the two cannot disagree (the
-- scheduler's expired leases use it).
CREATE OR REPLACE FUNCTION conclude_attempt(p_call uuid, p_attempt int, p_result text, p_reason text,
                                 p_answered boolean, p_ring_ms int, p_talk_ms int,
                                 p_decision_ms int)
RETURNS SETOF concluded_call LANGUAGE sql AS $$
    SELECT r.call_id, r.deployment_id, r.account_id, r.state, r.status, r.result, r.reason,
        r.phone_number, r.message_reference, r.attempts_made, r.max_attempts,
        r.next_attempt_at
    FROM conclude_attempts(json_build_array(json_build_object(
        'i', 0, 'call_id', p_call, 'attempt', p_attempt, 'result', p_result,
        'reason', p_reason, 'answered', p_answered, 'ring_ms', p_ring_ms,
        'talk_ms', p_talk_ms, 'decision_ms', p_decision_ms))) r
$$;

-- Why a pending call is waiting, for users and operators: paused (its
-- deployment's queue is paused), window (its campaign window is closed;
-- the scheduler moved it to the next opening), scheduled (its start time has
-- not come), retry_wait (waiting between attempts) or capacity (due, waiting
-- for a free line). NULL for a call that is not pending.
CREATE OR REPLACE FUNCTION wait_reason(c calls, p_paused boolean, p_now timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN c.state <> 'queued' OR c.active_attempt IS NOT NULL THEN NULL
        WHEN p_paused THEN 'paused'
        WHEN c.next_attempt_at > p_now THEN
            coalesce(c.waiting_for,
                     CASE WHEN c.attempts_made > 0 THEN 'retry_wait' ELSE 'scheduled' END)
        ELSE 'capacity' END
$$;

-- A call as GET /api/v1/calls/{call_id} shows it: its fields, its own
-- call-control document (app), why it is waiting, the digits gathered (the
-- latest attempt's that has some), and its attempts (with the detector's
-- verdict, the verbs run and the 2-second rule's times) and events in order.
CREATE OR REPLACE FUNCTION call_view(p_call uuid) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'call_id', c.call_id, 'deployment_id', c.deployment_id, 'state', c.state,
    'status', c.status, 'result', c.result, 'reason', c.reason,
    'phone_number', c.phone_number, 'caller_id', c.caller_id, 'post_dial', c.post_dial,
    'message_reference', c.message_reference, 'call_parameters', c.call_parameters,
    'app', c.app,
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
    'digits', (SELECT a.digits FROM attempts a WHERE a.call_id = c.call_id
        AND a.digits IS NOT NULL ORDER BY a.attempt DESC LIMIT 1),
    'attempts', coalesce((SELECT json_agg(json_build_object(
        'attempt', a.attempt, 'state', a.state, 'result', a.result, 'reason', a.reason,
        'released_at', a.released_at, 'dialing_at', a.dialing_at,
        'connected_at', a.connected_at, 'ended_at', a.ended_at,
        'ring_ms', a.ring_ms, 'talk_ms', a.talk_ms, 'app_status', a.app_status,
        'app_error', a.app_error, 'app_ms', a.app_ms,
        'decision_ms', a.decision_ms, 'sip_code', a.sip_code,
        'sip_reason', a.sip_reason, 'confidence', a.confidence,
        'decided_by', a.decided_by, 'beep', a.beep, 'beep_ms', a.beep_ms,
        'verbs', a.verbs, 'digits', a.digits, 'greeting_end_ms', a.greeting_end_ms,
        'first_audio_ms', a.first_audio_ms,
        'first_audio_gap_ms', a.first_audio_ms - a.greeting_end_ms)
        ORDER BY a.attempt)
        FROM attempts a WHERE a.call_id = c.call_id), '[]'::json),
    'events', coalesce((SELECT json_agg(json_build_object(
        'id', e.event_id, 'type', e.type, 'time', e.occurred_at,
        'data', e.data || jsonb_build_object('call_id', e.call_id, 'deployment_id', e.deployment_id))
        ORDER BY e.occurred_at, e.event_id)
        FROM call_events e WHERE e.call_id = c.call_id), '[]'::json))
FROM calls c WHERE c.call_id = p_call
$$;
