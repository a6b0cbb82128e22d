-- Calls that will not be due for a while (a retry waiting, a later start)
-- are checked against their campaign window as soon as they are scheduled,
-- not when they come due: one that cannot be tried before its expiry ends
-- at once, and one due while the window is closed waits for its opening.
-- window_checked is the next_attempt_at the scheduler last checked.
ALTER TABLE calls ADD COLUMN window_checked timestamptz;
CREATE INDEX calls_window_unchecked ON calls (request_partition)
    WHERE state = 'queued' AND active_attempt IS NULL
      AND window_checked IS DISTINCT FROM next_attempt_at;
