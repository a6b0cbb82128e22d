-- The window pre-check reads only calls not due yet (next_attempt_at later
-- than now): with the time in the index, the due ones of a large backlog are
-- skipped instead of read every second.
DROP INDEX calls_window_unchecked;
CREATE INDEX calls_window_unchecked ON calls (request_partition, next_attempt_at)
    WHERE state = 'queued' AND active_attempt IS NULL
      AND window_checked IS DISTINCT FROM next_attempt_at;
