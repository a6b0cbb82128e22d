-- A queue cancellation takes effect at once for releases. Ingest sets
-- cancel_before to the cancellation's requested_at as soon as Kafka holds
-- the command; until the scheduler has applied the command in order with
-- the deployment's calls (and cleared the marker), no call accepted up to
-- then is released, even if the queue is resumed in the meantime.
ALTER TABLE deployments ADD COLUMN cancel_before timestamptz;
