-- The soak's invariants (design brief section 5) as counters, one
-- "name<TAB>count" row each; every count but accepted and final must be 0.
WITH acc AS (SELECT s.call_id, s.deployment_id, c.state, c.result_url
             FROM soak_accepted s LEFT JOIN calls c USING (call_id)),
all_dialed AS (SELECT * FROM attempts WHERE dialing_at IS NOT NULL),
-- Per batch or upload: the calls carrying its reference, their distinct
-- phone numbers (one per good row) and those not completed.
per_request AS (SELECT b.ref, b.rows, b.queued, count(c.call_id) AS calls,
                       count(DISTINCT c.phone_number) AS phones,
                       count(c.call_id) FILTER (WHERE c.state <> 'completed') AS open
                FROM soak_bulk b LEFT JOIN calls c ON c.message_reference = b.ref
                GROUP BY b.ref, b.rows, b.queued),
-- Every call known accepted, and when: a 202 that named it, or the final
-- answer of the batch or upload whose row it is.
known AS (SELECT call_id, deployment_id, answered_at FROM soak_accepted
          UNION ALL SELECT c.call_id, c.deployment_id, b.answered_at FROM calls c
              JOIN soak_bulk b ON b.ref = c.message_reference
              WHERE NOT EXISTS (SELECT 1 FROM soak_accepted s WHERE s.call_id = c.call_id)),
-- The dialed attempts of the calls known accepted.
dialed AS (SELECT a.* FROM all_dialed a WHERE a.call_id IN (SELECT call_id FROM known))
SELECT 'accepted', count(*) FROM soak_accepted
UNION ALL SELECT 'final', count(*) FROM acc WHERE state = 'completed'
-- 1. Accepted and not completed (or not there at all) after the settle
-- period; the rows of batches and uploads as well.
UNION ALL SELECT 'lost', (SELECT count(*) FROM acc WHERE state IS DISTINCT FROM 'completed')
    + (SELECT coalesce(sum(open), 0) FROM per_request)
-- 7. Accepted means visible: a read right after the 202, on either ingest,
-- by either route, answered 404, named another call, or said unrecorded
-- and not queued (503 recording_behind and no answer are retried, not counted).
UNION ALL SELECT 'read-not-visible', count(*) FROM soak_reads
    WHERE status = 404 OR status < 0 OR (status = 200 AND recorded = 'false' AND state <> 'queued')
-- 7. The same for a cancel: a cancel of a call named by a 202 answered 404
-- (409 call_not_recorded is the answer while it is not recorded).
UNION ALL SELECT 'cancel-not-found', count(*) FROM soak_cancels k JOIN soak_accepted s USING (call_id)
    WHERE k.status = 404
-- 7. Each row of a batch or upload queued exactly once, however many times
-- it was retried (or cut off by a killed ingest): no more calls than good
-- rows and no phone number twice, none missing, and the final answer
-- counted every good row.
UNION ALL SELECT 'rows-twice', coalesce(sum(greatest(calls - rows, 0) + (calls - phones)), 0)
    FROM per_request
UNION ALL SELECT 'rows-missing', coalesce(sum(greatest(rows - phones, 0)), 0) FROM per_request
UNION ALL SELECT 'rows-answer-wrong', count(*) FROM per_request WHERE queued <> rows
-- Refused (a definite 4xx/5xx answer) and queued all the same.
UNION ALL SELECT 'refused-but-queued', count(*) FROM calls c
    JOIN soak_requests r ON r.ref = c.message_reference WHERE r.status >= 400
-- 2. Two attempts of a call at once, more dialed attempts than max_attempts,
-- or one attempt dialed twice (two dialing events with different ids).
UNION ALL SELECT 'double-dialed', count(DISTINCT call_id) FROM (
    SELECT a.call_id FROM dialed a JOIN dialed b ON a.call_id = b.call_id
        AND a.attempt < b.attempt AND b.dialing_at < coalesce(a.ended_at, 'infinity')
    UNION ALL SELECT d.call_id FROM dialed d JOIN calls c USING (call_id)
        GROUP BY d.call_id, c.max_attempts HAVING count(*) > c.max_attempts
    UNION ALL SELECT e.call_id FROM soak_events e JOIN soak_accepted USING (call_id)
        WHERE e.type = 'outbound.call.dialing'
        GROUP BY e.call_id, e.attempt HAVING count(DISTINCT e.event_id) > 1) x
-- 3. Peak of attempts dialing or connected at once, above the capacity.
UNION ALL SELECT 'over-capacity', count(*) FROM (
    SELECT deployment_id, max(running) AS peak FROM (
        SELECT deployment_id, sum(delta) OVER (PARTITION BY deployment_id ORDER BY at, delta)
            AS running FROM (
            SELECT deployment_id, dialing_at AS at, 1 AS delta FROM all_dialed
            UNION ALL SELECT deployment_id, ended_at, -1 FROM all_dialed WHERE ended_at IS NOT NULL) e
        ) r GROUP BY deployment_id) p
    JOIN deployments d USING (deployment_id) WHERE p.peak > d.capacity
-- 4. Dialed outside the campaign window, before not_before or after expires_at.
UNION ALL SELECT 'outside-window', count(*) FROM dialed a JOIN calls c USING (call_id)
    WHERE a.dialing_at < c.not_before OR a.dialing_at > c.expires_at
       OR (EXISTS (SELECT 1 FROM soak_windows w WHERE w.deployment_id = a.deployment_id)
           AND NOT EXISTS (SELECT 1 FROM soak_windows w WHERE w.deployment_id = a.deployment_id
                           AND a.dialing_at >= w.open_from AND a.dialing_at < w.open_to))
-- 5. Dialed after a cancel of the call was answered 200. Not after it was
-- sent: a cancel takes effect in its transaction, and one sent while the call
-- was ringing can take effect once that attempt ended unanswered (the call
-- then pending its retry, which the cancel ends: 200). Found by make test's
-- soak on a loaded machine, where the request took 1.5 s.
UNION ALL SELECT 'dialed-after-cancel', count(DISTINCT call_id) FROM all_dialed a
    JOIN soak_cancels k USING (call_id) WHERE k.status = 200 AND a.dialing_at > k.answered_at
-- A cancel of a call being dialed (202): the attempt in motion at the answer
-- goes on, no other is dialed after it (no retry). In motion means released
-- to a dialer by then: the platform answers 202 "being dialed" from the
-- release on, and a released dial job is dialed (soak.py counts those).
UNION ALL SELECT 'dialed-after-cancel-dialing', count(DISTINCT call_id) FROM all_dialed a
    JOIN soak_cancels k USING (call_id) WHERE k.status = 202 AND a.released_at > k.answered_at
-- A queue cancel (native or Plum, 202) covers every call accepted before it
-- was sent (its first try: retried under its key, the first try may be the
-- one that acted): none of them is dialed after its answer but the attempt
-- in motion then (the same as above).
UNION ALL SELECT 'dialed-after-queue-cancel', count(DISTINCT call_id) FROM all_dialed a
    JOIN known s USING (call_id) JOIN soak_queue_cancels q ON q.deployment_id = s.deployment_id
    WHERE s.answered_at < q.sent_at AND a.released_at > q.answered_at
-- Released while its deployment was paused. released_at is the scheduler's
-- time just before the release statement, which reads paused itself; a
-- statement that began just before the pause committed, or a resume that
-- committed before its client sent it (a retry), is covered by 1 s of
-- slack each side.
UNION ALL SELECT 'released-while-paused', count(*) FROM attempts a JOIN soak_pauses p USING (deployment_id)
    WHERE a.released_at > p.paused_at + interval '1 second'
      AND a.released_at < p.resumed_at - interval '1 second'
-- 6. Every final status on the topic and at the result_url, once.
UNION ALL SELECT 'event-missing', count(*) FROM acc WHERE state = 'completed' AND NOT EXISTS (
    SELECT 1 FROM soak_events e WHERE e.call_id = acc.call_id AND e.type = 'outbound.call.completed')
UNION ALL SELECT 'event-duplicate-unmarked', count(*) FROM (SELECT call_id FROM soak_events
    WHERE type = 'outbound.call.completed' GROUP BY call_id HAVING count(DISTINCT event_id) > 1) x
UNION ALL SELECT 'webhook-missing', count(*) FROM acc JOIN deployments d USING (deployment_id)
    WHERE acc.state = 'completed' AND coalesce(acc.result_url, d.result_url) IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM soak_hooks h WHERE h.call_id = acc.call_id)
UNION ALL SELECT 'webhook-duplicate-unmarked', count(*) FROM (SELECT call_id FROM soak_hooks
    GROUP BY call_id HAVING count(DISTINCT event_id) > 1 OR bool_or(event_id <> body_event_id)) x;
