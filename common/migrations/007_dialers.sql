-- Dialers announce themselves, so that the scheduler routes each dial job to
-- a dialer with a free channel instead of letting the partitioner choose.
--
-- A dialer upserts its row at start, on every rebalance of outbound.dial-jobs
-- and every second (seen_at is the heartbeat), and deletes it when it drains;
-- a row not seen for a few seconds belongs to a dead dialer and is ignored.
-- attempts.job_partition is the dial-jobs partition a released attempt's job
-- was routed to (also in dial_jobs, for the publisher and its relay): until a
-- dialer takes it, the job holds a channel of whichever dialer consumes that
-- partition.
CREATE TABLE dialers (
    instance_id text PRIMARY KEY,              -- OB_INSTANCE_ID of the dialer
    carrier     text NOT NULL,                 -- sim, sip
    channels    int  NOT NULL CHECK (channels >= 0),
    active      int  NOT NULL DEFAULT 0,       -- calls in progress at seen_at
    partitions  int[] NOT NULL DEFAULT '{}',   -- dial-jobs partitions assigned to it
    seen_at     timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE attempts ADD COLUMN job_partition int;  -- NULL: keyed by call, not routed

-- What the scheduler counts against each dialer's channels: the calls it is
-- dialing and the jobs waiting in its partitions.
CREATE INDEX attempts_worker_busy ON attempts (worker) WHERE state IN ('dialing', 'connected');
CREATE INDEX attempts_waiting_partition ON attempts (job_partition) WHERE state = 'released';

-- As in 001, plus the partition to produce the job to.
CREATE OR REPLACE VIEW dial_jobs AS
SELECT a.job_id, a.call_id, a.deployment_id, c.account_id, a.attempt, c.phone_number,
       c.caller_id, c.post_dial, c.message_reference, c.call_parameters::text AS call_parameters,
       c.max_attempts, c.retry_interval_s,
       (extract(epoch FROM a.lease_until) * 1000)::bigint AS lease_until_ms,
       coalesce(d.start_url, ap.start_url) AS start_url,
       c.request_partition, a.state, a.released_at, a.job_published_at, a.job_partition
FROM attempts a
JOIN calls c USING (call_id)
JOIN deployments d ON d.deployment_id = a.deployment_id
JOIN applications ap ON ap.application_id = d.application_id;
