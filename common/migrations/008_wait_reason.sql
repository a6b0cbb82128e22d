-- Why a pending call is waiting, for users and operators: paused (its
-- deployment's queue is paused), window (its campaign window is closed;
-- the scheduler moved it to the next opening), scheduled (its start time has
-- not come), retry_wait (waiting between attempts) or capacity (due, waiting
-- for a free line). NULL for a call that is not pending.
CREATE FUNCTION wait_reason(c calls, p_paused boolean, p_now timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN c.state <> 'queued' OR c.active_attempt IS NOT NULL THEN NULL
        WHEN p_paused THEN 'paused'
        WHEN c.next_attempt_at > p_now THEN
            coalesce(c.waiting_for,
                     CASE WHEN c.attempts_made > 0 THEN 'retry_wait' ELSE 'scheduled' END)
        ELSE 'capacity' END
$$;
