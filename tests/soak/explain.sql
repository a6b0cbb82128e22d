-- What the soak prints when a check failed: the first violations of each
-- new check, with their ids and times, one "check<TAB>detail" row each
-- (soak.py runs it after check.sql when a counter is not 0).
WITH all_dialed AS (SELECT * FROM attempts WHERE dialing_at IS NOT NULL),
known AS (SELECT call_id, deployment_id, answered_at FROM soak_accepted
          UNION ALL SELECT c.call_id, c.deployment_id, b.answered_at FROM calls c
              JOIN soak_bulk b ON b.ref = c.message_reference
              WHERE NOT EXISTS (SELECT 1 FROM soak_accepted s WHERE s.call_id = c.call_id))
(SELECT 'read-not-visible', format('call %s read %s ms after its 202 on the %s ingest by the %s'
        ' route: %s %s (recorded in Postgres at %s, accepted at %s)', r.call_id, r.ms,
        CASE WHEN r.same THEN 'same' ELSE 'other' END, r.route, r.status, r.recorded,
        c.recorded_at, s.answered_at)
    FROM soak_reads r LEFT JOIN calls c USING (call_id) LEFT JOIN soak_accepted s USING (call_id)
    WHERE r.status = 404 OR r.status < 0 OR (r.status = 200 AND r.recorded = 'false'
                                              AND r.state <> 'queued')
    ORDER BY r.route, r.ms LIMIT 10)
UNION ALL
(SELECT 'cancel-not-found', format('call %s accepted %s: cancel sent %s answered %s: 404',
        k.call_id, s.answered_at, k.sent_at, k.answered_at)
    FROM soak_cancels k JOIN soak_accepted s USING (call_id) WHERE k.status = 404 LIMIT 10)
UNION ALL
(SELECT 'rows', format('%s (%s, %s tries, answered %s): %s good rows, answer counted %s,'
        ' %s calls, %s distinct numbers', b.ref, b.kind, b.tries, b.answered_at, b.rows, b.queued,
        count(c.call_id), count(DISTINCT c.phone_number))
    FROM soak_bulk b LEFT JOIN calls c ON c.message_reference = b.ref
    GROUP BY b.ref, b.kind, b.tries, b.answered_at, b.rows, b.queued
    HAVING count(c.call_id) <> b.rows OR count(DISTINCT c.phone_number) <> b.rows
        OR b.queued <> b.rows LIMIT 10)
UNION ALL
(SELECT 'dialed-after-cancel', format('call %s (%s): cancel %s sent %s answered %s (seen %s);'
        ' attempt %s released %s dialing %s ended %s %s', a.call_id, d.name, k.status, k.sent_at,
        k.answered_at, coalesce(nullif(k.dialing, ''), 'not dialing'), a.attempt, a.released_at,
        a.dialing_at, a.ended_at, a.result)
    FROM all_dialed a JOIN soak_cancels k USING (call_id) JOIN deployments d USING (deployment_id)
    WHERE (k.status = 200 AND a.dialing_at > k.sent_at)
       OR (k.status = 202 AND a.released_at > k.answered_at) LIMIT 10)
UNION ALL
(SELECT 'dialed-after-queue-cancel', format('call %s (%s, accepted %s): queue cancel (%s) sent %s'
        ' answered %s; attempt %s released %s dialing %s ended %s %s; call %s %s %s',
        a.call_id, d.name, s.answered_at, q.route, q.sent_at, q.answered_at, a.attempt,
        a.released_at, a.dialing_at, a.ended_at, a.result, c.status, c.reason, c.completed_at)
    FROM all_dialed a JOIN known s USING (call_id) JOIN calls c USING (call_id)
    JOIN deployments d ON d.deployment_id = s.deployment_id
    JOIN soak_queue_cancels q ON q.deployment_id = s.deployment_id
    WHERE s.answered_at < q.sent_at AND a.released_at > q.answered_at LIMIT 10)
UNION ALL
(SELECT 'lost', format('call %s (%s) accepted %s: %s', s.call_id, d.name, s.answered_at,
        coalesce(c.state, 'not in calls'))
    FROM soak_accepted s LEFT JOIN calls c USING (call_id) JOIN deployments d
        ON d.deployment_id = s.deployment_id
    WHERE c.state IS DISTINCT FROM 'completed' LIMIT 10);
