-- Campaign windows. A deployment's campaign_window is the JSON object that
-- common/ob_window.h describes (weekly hours in a named zone or the callee's,
-- holidays); NULL means always open. The scheduler decides windows, since
-- they need ICU and the callee's zones: a due call whose window is closed
-- gets its next_attempt_at moved to the next opening and waiting_for set to
-- 'window', so it is not looked at again before then and users can see why
-- it waits.
ALTER TABLE deployments ADD COLUMN campaign_window jsonb;
ALTER TABLE calls ADD COLUMN waiting_for text;

-- expire_pending() at the scheduler's clock (which tests may set apart from
-- the real one): calls of the given partitions whose expiry has come.
CREATE FUNCTION expire_pending(p_partitions int[], p_now timestamptz)
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.request_partition = ANY(p_partitions) AND c.state = 'queued'
          AND c.expires_at <= p_now AND call_is_pending(c)
        ORDER BY c.call_id LIMIT 10000 FOR UPDATE SKIP LOCKED), 'expired')
$$;

-- Ends the given calls, still pending, because no window opens for them
-- before their expiry (or within a year).
CREATE FUNCTION end_window_closed(p_calls uuid[])
RETURNS SETOF ended_call LANGUAGE sql AS $$
    SELECT * FROM end_pending_calls(ARRAY(
        SELECT c.call_id FROM calls c
        WHERE c.call_id = ANY(p_calls) AND c.state = 'queued' AND c.active_attempt IS NULL
        ORDER BY c.call_id FOR UPDATE), 'window_closed')
$$;
