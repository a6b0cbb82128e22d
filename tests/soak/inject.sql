-- The checker's self-test: one violation of each kind, injected into the
-- finished run's tables inside a transaction that soak.py rolls back, so
-- that check.sql must count every one of them (a check that cannot fail
-- proves nothing).
-- lost: an accepted call back to queued.
UPDATE calls SET state = 'queued'
    WHERE call_id = (SELECT min(call_id::text)::uuid FROM soak_accepted);
-- refused-but-queued: a call whose request was answered 503.
INSERT INTO soak_requests VALUES ('soak-injected', 503);
UPDATE calls SET message_reference = 'soak-injected'
    WHERE call_id = (SELECT max(call_id::text)::uuid FROM soak_accepted);
-- double-dialed and over-capacity: a copy of a dialed attempt of d0
-- (capacity 1), 10 ms later.
INSERT INTO attempts (call_id, attempt, deployment_id, job_id, state, released_at, lease_until,
                      dialing_at, ended_at)
    SELECT a.call_id, 99, a.deployment_id, gen_random_uuid(), 'ended', a.released_at,
           a.lease_until, a.dialing_at + interval '10 ms', a.ended_at
    FROM attempts a JOIN deployments d USING (deployment_id) JOIN soak_accepted USING (call_id)
    WHERE d.name = 'd0' AND a.dialing_at IS NOT NULL AND a.ended_at IS NOT NULL LIMIT 1;
-- outside-window: an attempt of d2 dialed 10 s after its window closed.
UPDATE attempts SET dialing_at = (SELECT min(w.open_to) + interval '10 s' FROM soak_windows w
                                  JOIN deployments d USING (deployment_id) WHERE d.name = 'd2')
    WHERE (call_id, attempt) = (SELECT a.call_id, a.attempt FROM attempts a
        JOIN deployments d USING (deployment_id) JOIN soak_accepted USING (call_id)
        WHERE d.name = 'd2' AND a.dialing_at IS NOT NULL LIMIT 1);
-- dialed-after-cancel: a cancel answered 200 half a second before a dialing.
INSERT INTO soak_cancels SELECT a.call_id, 200, a.dialing_at - interval '1 s',
                                a.dialing_at - interval '0.5 s', ''
    FROM attempts a JOIN soak_accepted USING (call_id) WHERE a.dialing_at IS NOT NULL LIMIT 1;
-- dialed-after-cancel-dialing: a cancel of the call being dialed answered
-- 202 a second before another attempt was released (and dialed).
INSERT INTO soak_cancels SELECT a.call_id, 202, a.released_at - interval '2 s',
                                a.released_at - interval '1 s', 'dialing:1'
    FROM attempts a WHERE a.dialing_at IS NOT NULL ORDER BY a.dialing_at DESC LIMIT 1;
-- dialed-after-queue-cancel: a queue cancel answered just before the
-- release of a dialed call accepted before it.
INSERT INTO soak_queue_cancels SELECT s.deployment_id, 'native', a.released_at - interval '10 ms',
                                      a.released_at - interval '5 ms', ''
    FROM attempts a JOIN soak_accepted s USING (call_id)
    WHERE a.dialing_at IS NOT NULL AND s.answered_at < a.released_at - interval '20 ms' LIMIT 1;
-- cancel-not-found: a cancel of an accepted call answered 404.
INSERT INTO soak_cancels SELECT call_id, 404, answered_at, answered_at, '' FROM soak_accepted LIMIT 1;
-- read-not-visible: a read right after a 202 answered 404.
INSERT INTO soak_reads SELECT call_id, false, 'plum', 404, '', '', 3 FROM soak_accepted LIMIT 1;
-- rows-twice and rows-missing: the first row's call of one batch or upload
-- moved to another (which then has its phone number twice and a call more
-- than rows, and the first one a row missing); rows-answer-wrong: an answer
-- that counted a row too many.
UPDATE calls SET message_reference = (SELECT max(ref) FROM soak_bulk WHERE rows > 0)
    WHERE call_id = (SELECT c.call_id FROM calls c WHERE c.phone_number = '+12122000000'
                     AND c.message_reference = (SELECT min(ref) FROM soak_bulk WHERE rows > 0));
UPDATE soak_bulk SET queued = queued + 1 WHERE ref = (SELECT min(ref) FROM soak_bulk);
-- released-while-paused: a pause around a release.
INSERT INTO soak_pauses SELECT deployment_id, released_at - interval '5 s',
                               released_at + interval '5 s' FROM attempts LIMIT 1;
-- event-duplicate-unmarked (and double-dialed): events again under new ids.
INSERT INTO soak_events SELECT gen_random_uuid()::text, type, call_id, attempt FROM soak_events
    WHERE call_id = (SELECT min(call_id::text)::uuid FROM soak_accepted)
      AND type IN ('outbound.call.completed', 'outbound.call.dialing');
-- event-missing: a completed call's event gone.
DELETE FROM soak_events WHERE type = 'outbound.call.completed'
    AND call_id = (SELECT max(call_id::text)::uuid FROM soak_accepted);
-- webhook-duplicate-unmarked and webhook-missing: a second webhook under
-- another id for one call, and every webhook of another gone.
INSERT INTO soak_hooks SELECT received_at, call_id, 'injected', 'injected' FROM soak_hooks LIMIT 1;
DELETE FROM soak_hooks WHERE call_id = (SELECT max(call_id::text)::uuid FROM soak_hooks);
