-- The application on answer (docs/application.md): a call-control document
-- on a deployment and on a call (the call's replaces the deployment's),
-- and what it did on each attempt: the verb log, in order (a JSON array of
-- {verb, started_ms, duration_ms, outcome, digits?, error?, detail?}, the
-- times in ms after the answer), the digits its last gather read, and the
-- two times of the 2-second rule, in ms after the answer: when the callee's
-- first words ended (the detector's greeting end) and when our first audio
-- went out. NULL where unknown or none.
ALTER TABLE deployments ADD COLUMN app jsonb;
ALTER TABLE calls ADD COLUMN app jsonb;
ALTER TABLE attempts ADD COLUMN verbs jsonb, ADD COLUMN digits text,
    ADD COLUMN greeting_end_ms int, ADD COLUMN first_audio_ms int;

-- dial_jobs as in 025, with the document the dialer runs: the call's own,
-- else its deployment's.
CREATE OR REPLACE VIEW dial_jobs AS
SELECT a.job_id, a.call_id, a.deployment_id, c.account_id, a.attempt, c.phone_number,
       c.caller_id, c.post_dial, c.message_reference, c.call_parameters::text AS call_parameters,
       c.max_attempts, c.retry_interval_s,
       (extract(epoch FROM a.lease_until) * 1000)::bigint AS lease_until_ms,
       coalesce(d.start_url, ap.start_url) AS start_url,
       c.request_partition, a.state, a.released_at, a.job_published_at, a.job_partition,
       d.detection::text AS detection,
       coalesce(c.app, d.app)::text AS app
FROM attempts a
JOIN calls c USING (call_id)
JOIN deployments d ON d.deployment_id = a.deployment_id
JOIN applications ap ON ap.application_id = d.application_id;
